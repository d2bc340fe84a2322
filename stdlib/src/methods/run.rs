//! The model tools scripts call first: `onnx`, `run`, `capture`, `patch`,
//! `inspect`. Paths go through the sandbox; model digests go into the
//! manifest.

use std::sync::Arc;

use assay_interpreter::{to_tensor, Name, Tensor, ToolCtx, ToolError, Type, Value};
use ndarray::ArrayD;
use sha2::{Digest, Sha256};

use crate::core::declare::{tool, ToolResult};
use crate::core::kinds::{Inputs, TensorNames};
use crate::onnx::error::ModelError;
use crate::onnx::graph;
use crate::onnx::handle::{
    batched, changes_shape, each_batch, feeds, known_tensor, misshapen, model_type, outputs_record, port_value,
    select_names, ModelHandle,
};
use crate::onnx::model::{Card, Model};

tool! {
    /// Loads an ONNX model (from any exporter; external-data weights beside it are found) into ONNX
    /// Runtime. Its sha256 goes into the run's manifest.
    ///
    /// ```assay
    /// let m = onnx("fixtures/tiny.onnx")
    /// assert m.inputs[0].name == "x"
    /// assert m.outputs[0].shape == [2, 3]
    /// ```
    onnx in Models -> model_type();
    {
        /// the .onnx file, relative to the script's folder
        path: String,
        /// execution provider: "cpu" or "cuda" (needs onnxruntime-gpu and a GPU)
        provider: String = "cpu",
    }
    onnx
}

/// A plan to stream each of a CPU model's weights files, if every one can be.
fn streamable(
    bytes: &[u8],
    files: &[String],
    provider: crate::onnx::model::Provider,
) -> Option<Vec<crate::onnx::model::WeightStream>> {
    if files.is_empty() || provider != crate::onnx::model::Provider::Cpu {
        return None;
    }
    let proto = crate::onnx::graph::decode(bytes).ok()?;
    files.iter().map(|f| crate::onnx::model::WeightStream::plan(&proto, f)).collect()
}

fn onnx(p: onnx::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let display = p.path.clone();
    let provider = crate::onnx::model::Provider::parse(p.provider.as_str()).map_err(|e| p.provider.error(e))?;
    let path = ctx.resolve_read(&display).map_err(|e| e.at(p.path.name()))?;
    let bytes = ctx.read_file(&display).map_err(|e| e.at(p.path.name()))?;
    let sha = hex::encode(Sha256::digest(&bytes));
    // External weights are inputs of the run too, and must be inside the roots.
    let mut weights = Vec::new();
    let mut buffers = Vec::new();
    let dir = path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
    let files = crate::onnx::model::external_files_of(&bytes);
    for f in &files {
        if !dir.join(f).is_file() {
            return Err(p.path.error(format!("the weights of `{display}` are in an external-data file `{f}` that should sit beside it, and it is missing"))
                    .help("copy the .data file next to the .onnx file, under the name the model records"));
        }
    }
    // On the CPU each weights file is read once as a stream into the values
    // the sessions share (the digest is of the bytes used): a copy of the
    // files is never held. Models whose weights cannot be streamed (ranges
    // that overlap, large non-float weights) read each file whole.
    if let Some(plans) = streamable(&bytes, &files, provider) {
        // ONNX Runtime is loaded (from the provisioned library) before any
        // of its values is made.
        crate::onnx::runtime::runtime().map_err(|e| p.path.error(format!("cannot load `{display}`: {e}")))?;
        let mut streamed = crate::onnx::model::Streamed::default();
        for (f, mut plan) in files.iter().zip(plans) {
            let file = dir.join(f).display().to_string();
            let sha = ctx.read_file_with(&file, &mut |chunk| plan.feed(chunk)).map_err(|e| e.at(p.path.name()))?;
            let got = plan.finish(f).map_err(|e| p.path.error(format!("cannot load `{display}`: {e}")))?;
            streamed.shared.extend(got.shared);
            streamed.inline.extend(got.inline);
            weights.push(sha);
        }
        let mut model = Model::load_streamed(&path, &display, &bytes, sha, streamed).map_err(|e| {
            p.path
                .error(format!("cannot load `{display}`: {e}"))
                .help("check that the file is a complete .onnx model; `assay inspect FILE` shows what it contains")
        })?;
        model.weights_sha256 = weights;
        return Ok(Value::Handle(Arc::new(ModelHandle::new(model, Card::default()))));
    }
    for f in files {
        let file = dir.join(&f);
        // Read through the sandbox: it must be inside the roots, and its digest is recorded.
        let w = ctx.read_file(&file.display().to_string()).map_err(|e| e.at(p.path.name()))?;
        weights.push(hex::encode(Sha256::digest(&w)));
        buffers.push((f.clone(), Arc::<[u8]>::from(w)));
    }
    // The graph and the weights run from the bytes just digested: a file
    // swapped after this point is never what runs.
    let mut model = Model::load_with_weights(&path, &display, &bytes, sha, provider, buffers).map_err(|e| {
        p.path
            .error(format!("cannot load `{display}`: {e}"))
            .help("check that the file is a complete .onnx model; `assay inspect FILE` shows what it contains")
    })?;
    model.weights_sha256 = weights;
    Ok(Value::Handle(Arc::new(ModelHandle::new(model, Card::default()))))
}

tool! {
    /// Runs the model on inputs and returns its outputs by name, as float32 tensors. Inputs: a tensor
    /// (for a model with one required input), a record {name: tensor}, or text (a prompt or a list of
    /// prompts) for a language model. Prompts of different lengths are left-padded into one batch where
    /// the model takes attention_mask and position_ids (SmolLM2 does): each row's last position is its
    /// last token, and each row gives what it gives alone. A KV-cache model's cache inputs,
    /// attention_mask and position_ids are optional (positions are counted from a given mask, so right
    /// padding works too).
    ///
    /// ```assay
    /// let m = onnx("fixtures/tiny.onnx")
    /// let out = run(m, tensor([[1, 2, 3], [-5, 0, 1]]))
    /// assert out.z == tensor([[4, 2, 7], [0, 0, 3]])
    /// let d = onnx("fixtures/tiny_dynamic.onnx")
    /// assert run(d, zeros([5, 3]), batch: 2).z.shape == [5, 3]
    /// ```
    run in Models -> Type::record();
    {
        /// a model from onnx()
        model: ModelHandle,
        /// a record {input_name: tensor}, or one tensor if the model has one input
        inputs: Inputs,
        /// run this many rows at a time (0: all at once)
        batch: usize = 0,
    }
    run
}

fn run(p: run::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let m = p.model.clone();
    let f = feeds(&m, &p.inputs)?;
    let want = m.output_names();
    let batch = *p.batch;
    batched(f, p.inputs.name(), batch, |chunk| {
        m.run_plain_lazy(chunk, &want).map_err(|e| m.blame(e, p.inputs.name(), p.model.name()))
    })
    .map(outputs_record)
}

tool! {
    /// Runs the model and returns intermediate tensors by name. `tensors` is a name, a glob like
    /// "/blocks.3/*", or a list of them. The graph is rewritten to expose them; nothing else changes.
    /// Captured tensors stay in ONNX Runtime's buffers until used. With to_disk, each tensor is written
    /// to artifacts/streams/ as an .npy file `batch` rows at a time (memory does not grow with the
    /// rows) and the result gives each file: {file, shape, sha256}.
    ///
    /// ```assay
    /// let m = onnx("fixtures/tiny.onnx")
    /// let acts = capture(m, tensor([[1, -2, 3], [0, 0, 0]]), ["h", "y"])
    /// assert acts.h == tensor([[2, -3, 3.5], [1, -1, 0.5]])
    /// assert acts.y == tensor([[2, 0, 3.5], [1, 0, 0.5]])
    /// ```
    ///
    /// ```assay
    /// let m = onnx("fixtures/tiny_dynamic.onnx")
    /// let f = capture(m, zeros([5, 3]), "z", batch: 2, to_disk: true)
    /// assert f.z.shape == [5, 3] and f.z.file == "artifacts/streams/z.npy"
    /// ```
    capture in Models -> Type::record();
    {
        /// a model from onnx()
        model: ModelHandle,
        /// a record {input_name: tensor}, or one tensor
        inputs: Inputs,
        /// tensor names or globs
        tensors: TensorNames,
        /// run this many rows at a time (0: all at once)
        batch: usize = 0,
        /// stream each tensor to an .npy file in the run folder instead of returning it
        to_disk: bool = false,
    }
    capture
}

fn capture(p: capture::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let m = p.model.clone();
    let f = feeds(&m, &p.inputs)?;
    let names = select_names(&m, &p.tensors)?;
    let batch = *p.batch;
    if *p.to_disk {
        return capture_to_disk(&m, f, (p.inputs.name(), p.tensors.name()), &names, batch, ctx);
    }
    batched(f, p.inputs.name(), batch, |chunk| {
        m.capture_lazy(chunk, &names).map_err(|e| m.blame(e, p.inputs.name(), p.tensors.name()))
    })
    .map(outputs_record)
}

/// One .npy file being written a chunk of rows at a time.
struct Stream {
    file: std::io::BufWriter<std::fs::File>,
    hash: Sha256,
    rel: String,
    shape: Vec<usize>,
}

impl Stream {
    fn write(&mut self, bytes: &[u8], name: &str) -> Result<(), ToolError> {
        use std::io::Write as _;
        self.hash.update(bytes);
        self.file.write_all(bytes).map_err(|e| ToolError::new(format!("cannot write `{name}` to disk: {e}")))
    }
}

/// `capture(..., to_disk: true)`: each chunk's tensors are appended to
/// their files and dropped, so memory holds one chunk at a time.
fn capture_to_disk(
    m: &Model,
    feeds: Vec<(String, ArrayD<f32>)>,
    (inputs, tensors): (Name, Name),
    names: &[String],
    batch: usize,
    ctx: &mut dyn ToolCtx,
) -> Result<Value, ToolError> {
    let rows = feeds.first().and_then(|(_, t)| t.shape().first().copied()).unwrap_or(0);
    if rows == 0 || feeds.iter().any(|(_, t)| t.shape().first() != Some(&rows)) {
        return Err(ToolError::arg(
            inputs,
            "to_disk needs inputs with the same number of rows (their first axis), at least one",
        ));
    }
    let step = if batch == 0 { rows } else { batch };
    let mut streams: std::collections::BTreeMap<String, Stream> = std::collections::BTreeMap::new();
    each_batch(
        &feeds,
        inputs,
        rows,
        step,
        |chunk| m.capture_lazy(chunk, names).map_err(|e| m.blame(e, inputs, tensors)),
        |_, name, t| {
            let shape = t.shape();
            if !streams.contains_key(&name) {
                let mut full = shape.to_vec();
                full[0] = rows;
                let file_name = format!("{}.npy", stream_slug(&name, streams.len()));
                let (path, rel) = ctx.stream_file(&file_name)?;
                let f =
                    std::fs::File::create(&path).map_err(|e| ToolError::new(format!("cannot create {rel}: {e}")))?;
                let mut s = Stream { file: std::io::BufWriter::new(f), hash: Sha256::new(), rel, shape: full.clone() };
                s.write(&assay_interpreter::npy_f32_header(&full), &name)?;
                streams.insert(name.clone(), s);
            }
            let s = streams.get_mut(&name).ok_or_else(|| ToolError::new("a stream went missing"))?;
            if s.shape[1..] != shape[1..] {
                return Err(changes_shape(&name, &s.shape, shape));
            }
            let mut buf = Vec::with_capacity(1 << 16);
            for x in t.iter() {
                buf.extend_from_slice(&x.to_le_bytes());
                if buf.len() >= 1 << 16 {
                    s.write(&buf, &name)?;
                    buf.clear();
                }
            }
            s.write(&buf, &name)
        },
    )?;
    let mut fields = Vec::new();
    for (name, s) in streams {
        let Stream { file, hash, rel, shape } = s;
        let f = file.into_inner().map_err(|e| ToolError::new(format!("cannot finish {rel}: {e}")))?;
        f.sync_all().map_err(|e| ToolError::new(format!("cannot finish {rel}: {e}")))?;
        fields.push((
            name,
            Value::record([
                ("file", Value::str(&rel)),
                ("shape", Value::nums(shape.iter().map(|d| *d as f64))),
                ("sha256", Value::str(hex::encode(hash.finalize()))),
            ]),
        ));
    }
    Ok(Value::record(fields))
}

/// A file name for a tensor name: letters, digits, `-`, `_`, `.`; the
/// tensor's index keeps two names that read alike apart.
fn stream_slug(name: &str, i: usize) -> String {
    let s: String = name
        .trim_start_matches('/')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') { c } else { '_' })
        .take(96)
        .collect();
    let clean = name.trim_start_matches('/').chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if clean && !s.is_empty() {
        s
    } else {
        format!("{i:03}-{s}")
    }
}

tool! {
    /// Runs the model with one tensor replaced: `mask*value + (1-mask)*original`. The mask broadcasts
    /// against the tensor (a number, or e.g. one value per batch row); 1 replaces, 0 keeps.
    /// Zero-ablation is a value of zeros; mean-ablation a value of means. Returns the model's outputs.
    ///
    /// ```assay
    /// let m = onnx("fixtures/tiny.onnx")
    /// let x = tensor([[1, 2, 3], [1, 2, 3]])
    /// let out = patch(m, x, "y", zeros([2, 3]), mask: tensor([[1], [0]]))
    /// assert out.z[0] == tensor([0, 0, 0])
    /// assert out.z[1] == run(m, x).z[1]
    /// ```
    patch in Models -> Type::record();
    {
        /// a model from onnx()
        model: ModelHandle,
        /// a record {input_name: tensor}, or one tensor
        inputs: Inputs,
        /// the tensor to patch
        tensor: String,
        /// the replacement, a tensor of the tensor's shape (or broadcastable)
        value: Value,
        /// weight of the replacement: a number or a tensor
        mask: Value = 1.0,
    }
    patch
}

fn patch(p: patch::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let m = p.model.clone();
    let f = feeds(&m, &p.inputs)?;
    let t = p.tensor.clone();
    let value = to_tensor(&p.value).map_err(|e| p.value.error(e))?.to_array();
    let mask = to_tensor(&p.mask).map_err(|e| p.mask.error(e))?.to_array();
    // What is wrong with the tensor is found first, so that blame is never
    // read off an error's wording; what fails after that is the run.
    known_tensor(&m, &t, p.tensor.name())?;
    m.patch_type(&t).map_err(|e| m.blame(e, p.inputs.name(), p.tensor.name()))?;
    let want = m.output_names();
    let (vs, ms) = (value.shape().to_vec(), mask.shape().to_vec());
    m.patch(f.clone(), vec![(t.clone(), value, mask)], &want)
        .map(|out| outputs_record(out.into_iter().map(|(k, v)| (k, Tensor::new(v))).collect()))
        .map_err(|e| {
            let given = [(p.value.name(), t.as_str(), vs.as_slice()), (p.mask.name(), t.as_str(), ms.as_slice())];
            misshapen(&m, f, &given).unwrap_or_else(|| m.blame(e, p.inputs.name(), p.tensor.name()))
        })
}

/// One row per tensor: name, kind, producing op and node, dtype, shape.
pub fn inspect_rows(m: &Model) -> Result<Vec<Value>, ModelError> {
    let typed = m.every_tensor()?;
    let find = |n: &str| typed.iter().chain(m.inputs.iter()).chain(m.outputs.iter()).find(|p| p.name == n);
    let mut rows = Vec::new();
    for s in m.sites() {
        let (kind, op, node) = match &s.kind {
            graph::Kind::Input => ("input", String::new(), String::new()),
            graph::Kind::Initializer => continue,
            graph::Kind::Node { op, node, output, .. } => {
                (if *output { "output" } else { "intermediate" }, op.clone(), node.clone())
            }
        };
        let (dtype, shape) = match find(&s.name) {
            Some(p) => (Value::str(&p.dtype), port_value(p).record_field("shape")),
            None => (Value::None, Value::None),
        };
        rows.push(Value::record([
            ("name", Value::str(&s.name)),
            ("kind", Value::str(kind)),
            ("op", Value::str(op)),
            ("node", Value::str(node)),
            ("dtype", dtype),
            ("shape", shape),
        ]));
    }
    Ok(rows)
}

trait RecordField {
    fn record_field(&self, k: &str) -> Value;
}
impl RecordField for Value {
    fn record_field(&self, k: &str) -> Value {
        match self {
            Value::Record(r) => r.get(k).cloned().unwrap_or_default(),
            _ => Value::None,
        }
    }
}

tool! {
    /// Lists the model's tensors in graph order: name, kind (input, intermediate, output), producing op
    /// and node, dtype and inferred shape. `pattern` (a glob) filters by name.
    ///
    /// ```assay
    /// let m = onnx("fixtures/tiny.onnx")
    /// let ts = inspect(m)
    /// assert map(ts, t => t.name) == ["x", "h", "y", "z"]
    /// assert ts[2].op == "Relu" and ts[2].shape == [2, 3]
    /// assert len(inspect(m, pattern: "[hy]")) == 2
    /// ```
    inspect in Models -> Type::list(Type::record());
    {
        /// a model from onnx()
        model: ModelHandle,
        /// glob over tensor names, e.g. "*Relu*"
        pattern: Option<String> = None,
    }
    inspect
}

fn inspect(p: inspect::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let m = p.model.clone();
    let rows = inspect_rows(&m).map_err(|e| m.blame(e, p.model.name(), p.model.name()))?;
    let rows = match p.pattern.as_deref() {
        None => rows,
        Some(glob_text) => {
            let pat = glob::Pattern::new(glob_text)
                .map_err(|e| p.pattern.error(format!("bad pattern `{glob_text}`: {e}")))?;
            rows.into_iter().filter(|r| matches!(r.record_field("name"), Value::Str(n) if pat.matches(&n))).collect()
        }
    };
    Ok(Value::list(rows))
}
