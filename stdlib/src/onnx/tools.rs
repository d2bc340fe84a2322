//! The model tools scripts call: `onnx`, `run`, `capture`, `patch`,
//! `inspect`. Paths go through the sandbox; model digests go into the
//! manifest; every tensor crosses as float32.

use std::any::Any;
use std::sync::Arc;

use assay_interpreter::{to_tensor, Arg, Args, Handle, HandleKind, Tensor, ToolCtx, ToolError, Type, Value};
use ndarray::ArrayD;
use sha2::{Digest, Sha256};

use crate::core::declare::tool;
use crate::core::declare::Param;
use crate::onnx::graph;
use crate::onnx::model::{Card, Model, Port};

/// A model as a script value: the generic ONNX model and its card (what its
/// family knows that its graph does not say). Cheap to clone; a tool's
/// `model` parameter is one, and reads as the `Model` it holds.
#[derive(Clone)]
pub struct ModelHandle {
    pub model: Arc<Model>,
    pub card: Arc<Card>,
}

impl ModelHandle {
    pub fn new(model: Model, card: Card) -> Self {
        ModelHandle { model: Arc::new(model), card: Arc::new(card) }
    }
}

impl std::ops::Deref for ModelHandle {
    type Target = Model;
    fn deref(&self) -> &Model {
        &self.model
    }
}

impl std::fmt::Debug for ModelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ModelHandle({})", self.model.display)
    }
}

fn port_value(p: &Port) -> Value {
    let shape = match &p.shape {
        Some(d) => Value::list(
            d.iter()
                .map(|x| match x {
                    crate::onnx::model::Dim::Fixed(n) => Value::Num(*n as f64),
                    crate::onnx::model::Dim::Symbolic(s) => Value::str(if s.is_empty() { "?" } else { s }),
                })
                .collect(),
        ),
        None => Value::None,
    };
    Value::record([("name", Value::str(&p.name)), ("dtype", Value::str(&p.dtype)), ("shape", shape)])
}

impl Handle for ModelHandle {
    fn kind(&self) -> HandleKind {
        HandleKind::Model
    }
    fn describe(&self) -> String {
        let ins: Vec<String> = self.model.inputs.iter().map(|p| format!("{} {}", p.name, p.shape_text())).collect();
        format!("model {} ({})", self.model.display, ins.join(", "))
    }
    fn digest(&self) -> String {
        let mut d = format!("{}:{}", self.model.sha256, self.model.provider.name());
        for w in &self.model.weights_sha256 {
            d.push(':');
            d.push_str(w);
        }
        d
    }
    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "inputs" => Value::list(self.model.inputs.iter().map(port_value).collect()),
            "outputs" => Value::list(self.model.outputs.iter().map(port_value).collect()),
            "path" => Value::str(&self.model.display),
            "sha256" => Value::str(&self.model.sha256),
            "labels" => Value::list(self.card.labels.iter().map(Value::str).collect()),
            "provider" => Value::str(self.model.provider.name()),
            _ => return None,
        })
    }
    fn field_names(&self) -> Vec<&'static str> {
        vec!["inputs", "outputs", "path", "sha256", "labels", "provider"]
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

pub fn model_of(a: &Args, i: &str) -> Result<ModelHandle, ToolError> {
    a.handle::<ModelHandle>(i, "a model (from model() or onnx())").cloned()
}

fn model_type() -> Type {
    Type::Handle(HandleKind::Model)
}

/// The text a value holds: one string, or a non-empty list of strings.
pub fn texts_of(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::Str(s) => Some(vec![s.to_string()]),
        Value::List(items) if !items.is_empty() && items.iter().all(|v| matches!(v, Value::Str(_))) => {
            Some(items.iter().map(|v| v.to_text()).collect())
        }
        _ => None,
    }
}

/// Model inputs from a value (text, a tensor, a record of tensors); errors
/// point at argument `i`.
pub fn feeds_value(model: &ModelHandle, value: &Value, i: &str) -> Result<Vec<(String, ArrayD<f32>)>, ToolError> {
    let as_tensor = |v: &Value, what: &str| -> Result<ArrayD<f32>, ToolError> {
        to_tensor(v).map(|t| t.to_array()).map_err(|e| ToolError::arg(i, format!("{what}: {e}")))
    };
    // Text for a model with a tokenizer: token ids for its one input.
    if let Some(texts) = texts_of(value) {
        let tok = model.card.tokenizer.as_ref().ok_or_else(|| {
            ToolError::arg(i, "this model has no tokenizer, so it cannot take text; pass tensors")
                .help("language models from model(\"smollm2-135m\") take text")
        })?;
        let input = model.inputs.first().map(|p| p.name.clone()).unwrap_or_default();
        if texts.len() > 1 && model.pads_left() {
            // Texts of different lengths are left-padded, so each row's last
            // position is its last token; the mask hides the padding and
            // each row's positions start at its first token.
            let (ids, padding) = encode_padded(tok, &texts).map_err(|e| ToolError::arg(i, e))?;
            let mut feeds = vec![(input, ids)];
            if let Some((mask, positions)) = padding {
                feeds.push(("attention_mask".into(), mask));
                feeds.push(("position_ids".into(), positions));
            }
            return Ok(feeds);
        }
        let ids = encode_batch(tok, &texts).map_err(|e| ToolError::arg(i, e))?;
        return Ok(vec![(input, ids)]);
    }
    let names: Vec<&str> = model.inputs.iter().map(|p| p.name.as_str()).collect();
    let required: Vec<&str> = names.iter().copied().filter(|n| !model.optional_input(n)).collect();
    // Each required input with its dtype and shape, as the help lists them.
    let described = required
        .iter()
        .filter_map(|n| model.inputs.iter().find(|p| p.name == *n))
        .map(|p| format!("{} {} {}", p.name, p.dtype, p.shape_text()))
        .collect::<Vec<_>>()
        .join("; ");
    let optional = || {
        let cache = names.iter().filter(|n| n.starts_with("past_key_values.")).count();
        let mut o = Vec::new();
        if cache > 0 {
            o.push(format!("the KV cache (past_key_values.*, {cache} inputs; empty when left out)"));
        }
        for n in ["attention_mask", "position_ids", "token_type_ids"] {
            if names.contains(&n) && model.optional_input(n) {
                o.push(format!("{n} (filled when left out)"));
            }
        }
        o
    };
    match value {
        Value::Record(r) => {
            for k in r.keys() {
                if !names.contains(&k.as_str()) {
                    let help = match assay_interpreter::closest(k, names.iter().copied()) {
                        Some(c) => format!("did you mean `{c}`? the model takes: {described}"),
                        None => format!("the model takes: {described}"),
                    };
                    return Err(ToolError::arg(i, format!("the model has no input `{k}`")).help(help));
                }
            }
            if let Some(m) = required.iter().find(|n| !r.contains_key(**n)) {
                let opt = optional();
                return Err(ToolError::arg(
                    i,
                    format!("input `{m}` is missing; the model needs {}", required.join(", ")),
                )
                .help(if opt.is_empty() {
                    "pass a record {name: tensor} with each".to_string()
                } else {
                    format!("optional: {}", opt.join("; "))
                }));
            }
            r.iter().map(|(k, v)| Ok((k.clone(), as_tensor(v, &format!("input `{k}`"))?))).collect()
        }
        v => match required.as_slice() {
            [one] => Ok(vec![(one.to_string(), as_tensor(v, "inputs")?)]),
            _ => {
                let opt = optional();
                let example = required.iter().map(|n| format!("{n}: ...")).collect::<Vec<_>>().join(", ");
                Err(ToolError::arg(
                    i,
                    format!("the model needs {} inputs; pass a record {{{example}}}", required.len()),
                )
                .help(if opt.is_empty() {
                    format!("its inputs: {}", names.join(", "))
                } else {
                    format!("optional: {}", opt.join("; "))
                }))
            }
        },
    }
}

/// A padded batch's attention mask and position ids, [N, T] each.
pub type Padding = (ArrayD<f32>, ArrayD<f32>);

/// Token ids [N, T] for texts of any lengths, left-padded to the longest,
/// and, where any row is padded, the attention mask [N, T] (0 on padding)
/// and position ids [N, T] (0 from each row's first token).
pub fn encode_padded(tok: &tokenizers::Tokenizer, texts: &[String]) -> Result<(ArrayD<f32>, Option<Padding>), String> {
    let mut rows: Vec<Vec<u32>> = Vec::new();
    for t in texts {
        let enc = tok.encode(t.as_str(), false).map_err(|e| format!("cannot tokenize {t:?}: {e}"))?;
        if enc.get_ids().is_empty() {
            return Err(format!("text {} is empty: a language model needs at least one token", rows.len()));
        }
        rows.push(enc.get_ids().to_vec());
    }
    let t = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let n = rows.len();
    let pad = |r: usize| t - rows[r].len();
    let ids =
        ndarray::Array2::from_shape_fn((n, t), |(r, j)| if j < pad(r) { 0.0 } else { rows[r][j - pad(r)] as f32 });
    if rows.iter().all(|r| r.len() == t) {
        return Ok((ids.into_dyn(), None));
    }
    let mask = ndarray::Array2::from_shape_fn((n, t), |(r, j)| if j < pad(r) { 0.0 } else { 1.0 });
    let positions = ndarray::Array2::from_shape_fn((n, t), |(r, j)| j.saturating_sub(pad(r)) as f32);
    Ok((ids.into_dyn(), Some((mask.into_dyn(), positions.into_dyn()))))
}

/// Token ids [N, T] for texts that tokenize to the same length.
pub fn encode_batch(tok: &tokenizers::Tokenizer, texts: &[String]) -> Result<ArrayD<f32>, String> {
    let mut rows: Vec<Vec<u32>> = Vec::new();
    for t in texts {
        let enc = tok.encode(t.as_str(), false).map_err(|e| format!("cannot tokenize {t:?}: {e}"))?;
        rows.push(enc.get_ids().to_vec());
    }
    let len = rows.first().map(|r| r.len()).unwrap_or(0);
    if len == 0 {
        return Err("the text is empty: a language model needs at least one token".into());
    }
    if let Some((k, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != len) {
        return Err(format!(
            "texts must have the same number of tokens to run as one batch here (this model takes no attention_mask and position_ids to pad them): text 0 has {len}, text {k} has {}",
            r.len()
        ));
    }
    let data: Vec<f32> = rows.into_iter().flatten().map(|x| x as f32).collect();
    ArrayD::from_shape_vec(vec![texts.len(), len], data).map_err(|e| e.to_string())
}

/// Runs `f` on `batch` rows of the feeds at a time (all at once when
/// `batch` is 0 or covers them, or the feeds' rows differ) and joins the
/// batches' outputs. Each batch is copied into place and dropped before the
/// next runs, so memory holds the joined result and one batch.
pub fn batched(
    feeds: Vec<(String, ArrayD<f32>)>,
    batch: usize,
    mut f: impl FnMut(Vec<(String, ArrayD<f32>)>) -> Result<std::collections::BTreeMap<String, Tensor>, ToolError>,
) -> Result<std::collections::BTreeMap<String, Tensor>, ToolError> {
    use ndarray::{Axis, Slice};
    let rows = feeds.first().and_then(|(_, t)| t.shape().first().copied()).unwrap_or(0);
    let same = feeds.iter().all(|(_, t)| t.shape().first().copied() == Some(rows));
    if batch == 0 || rows <= batch || !same {
        return f(feeds);
    }
    let mut out: std::collections::BTreeMap<String, ArrayD<f32>> = std::collections::BTreeMap::new();
    each_batch(&feeds, rows, batch, f, |start, k, t| {
        let shape = t.shape();
        let joined = out.entry(k.clone()).or_insert_with(|| {
            let mut full = shape.to_vec();
            full[0] = rows;
            ArrayD::zeros(full)
        });
        if joined.shape()[1..] != shape[1..] {
            return Err(changes_shape(&k, joined.shape(), shape));
        }
        joined.slice_axis_mut(Axis(0), Slice::from(start..start + shape[0])).assign(&t.view());
        Ok(())
    })?;
    Ok(out.into_iter().map(|(k, v)| (k, Tensor::new(v))).collect())
}

/// Runs `run` on `step` rows of `feeds` at a time and hands `take` each
/// output of each batch with the row the batch starts at. Every output must
/// have the batch's rows first, or its batches could not be put together.
fn each_batch(
    feeds: &[(String, ArrayD<f32>)],
    rows: usize,
    step: usize,
    mut run: impl FnMut(Vec<(String, ArrayD<f32>)>) -> Result<std::collections::BTreeMap<String, Tensor>, ToolError>,
    mut take: impl FnMut(usize, String, Tensor) -> Result<(), ToolError>,
) -> Result<(), ToolError> {
    use ndarray::{Axis, Slice};
    let mut start = 0;
    while start < rows {
        let end = (start + step.max(1)).min(rows);
        let chunk =
            feeds.iter().map(|(k, t)| (k.clone(), t.slice_axis(Axis(0), Slice::from(start..end)).to_owned())).collect();
        for (k, t) in run(chunk)? {
            if t.shape().first() != Some(&(end - start)) {
                return Err(ToolError::arg(
                    "inputs",
                    format!(
                        "`{k}` has shape {:?}: its first axis is not the inputs' rows ({} in this batch), so it cannot be split and joined by rows",
                        t.shape(),
                        end - start
                    ),
                )
                .help("run all rows at once: batch: 0 (and, for capture, no to_disk)"));
            }
            take(start, k, t)?;
        }
        start = end;
    }
    Ok(())
}

fn changes_shape(name: &str, before: &[usize], now: &[usize]) -> ToolError {
    ToolError::new(format!("`{name}` changes shape between batches ({before:?} then {now:?})"))
}

fn outputs_record(out: std::collections::BTreeMap<String, Tensor>) -> Value {
    Value::record(out.into_iter().map(|(k, v)| (k, Value::Tensor(v))))
}

/// Tensor names from a name, a glob, or a list of them.
pub fn select_names(model: &Model, x: &Arg) -> Result<Vec<String>, ToolError> {
    let patterns: Vec<String> = match x.get() {
        Value::Str(s) => vec![s.to_string()],
        Value::List(items) => items
            .iter()
            .map(|v| match v {
                Value::Str(s) => Ok(s.to_string()),
                other => Err(x.error(format!("tensor names are strings, found a {}", other.type_name()))),
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(x.error(format!("expected a tensor name or a list of names, found a {}", other.type_name())))
        }
    };
    let all: Vec<String> =
        model.sites().into_iter().filter(|s| !matches!(s.kind, graph::Kind::Initializer)).map(|s| s.name).collect();
    let mut out = Vec::new();
    for p in &patterns {
        let is_glob = p.contains(['*', '?', '[']);
        if is_glob {
            let pat = glob::Pattern::new(p).map_err(|e| x.error(format!("bad pattern `{p}`: {e}")))?;
            let hits: Vec<&String> = all.iter().filter(|n| pat.matches(n)).collect();
            if hits.is_empty() {
                return Err(x
                    .error(format!("no tensor matches `{p}`"))
                    .help("`inspect(model)` or `assay inspect FILE` lists the tensors"));
            }
            out.extend(hits.into_iter().cloned());
        } else if all.contains(p) {
            out.push(p.clone());
        } else {
            return Err(no_tensor(&all, p, x.name()));
        }
    }
    out.dedup();
    Ok(out)
}

/// "The model has no tensor X", with the closest name as a suggestion:
/// the one wording of a missing tensor, blaming argument `i`.
fn no_tensor(names: &[String], t: &str, i: &str) -> ToolError {
    let help = match assay_interpreter::closest(t, names.iter().map(|s| s.as_str())) {
        Some(c) => format!("did you mean `{c}`? `inspect(model)` lists the tensors"),
        None => "`inspect(model)` or `assay inspect FILE` lists the tensors".into(),
    };
    ToolError::arg(i, format!("the model has no tensor `{t}`")).help(help)
}

/// Whether the model has a tensor (an input, intermediate, output or
/// weight) named `t`; otherwise the error for argument `i`.
pub(crate) fn known_tensor(m: &Model, t: &str, i: &str) -> Result<(), ToolError> {
    let sites = m.sites();
    if sites.iter().any(|s| s.name == t) {
        return Ok(());
    }
    let names: Vec<String> = sites.into_iter().map(|s| s.name).collect();
    Err(no_tensor(&names, t, i))
}

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
        provider: String = Value::str("cpu"),
    }
    |p, ctx| {
        let display = p.path.clone();
        let provider =
            crate::onnx::model::Provider::parse(p.provider.as_str()).map_err(|e| ToolError::arg("provider", e))?;
        let path = ctx.resolve_read(&display).map_err(|e| e.at("path"))?;
        let bytes = ctx.read_file(&display).map_err(|e| e.at("path"))?;
        let sha = hex::encode(Sha256::digest(&bytes));
        // External weights are inputs of the run too, and must be inside the roots.
        let mut weights = Vec::new();
        let dir = path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
        for f in crate::onnx::model::external_files_of(&bytes) {
            let p = dir.join(&f);
            if !p.is_file() {
                return Err(ToolError::arg("path", format!("the weights of `{display}` are in an external-data file `{f}` that should sit beside it, and it is missing"))
                    .help("copy the .data file next to the .onnx file, under the name the model records"));
            }
            // Read through the sandbox: it must be inside the roots, and its digest is recorded.
            let w = ctx.read_file(&p.display().to_string()).map_err(|e| e.at("path"))?;
            weights.push(hex::encode(Sha256::digest(&w)));
        }
        let mut model = Model::load(&path, &display, &bytes, sha, provider).map_err(|e| {
            ToolError::arg("path", format!("cannot load `{display}`: {e}"))
                .help("check that the file is a complete .onnx model; `assay inspect FILE` shows what it contains")
        })?;
        model.weights_sha256 = weights;
        Ok(Value::Handle(Arc::new(ModelHandle::new(model, Card::default()))))
    }
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
        inputs: Arg [Type::Any],
        /// run this many rows at a time (0: all at once)
        batch: usize = Value::Num(0.0),
    }
    |p, _| {
        let m = p.model.clone();
        let f = feeds_value(&m, p.inputs.get(), "inputs")?;
        let want = m.output_names();
        let batch = p.batch;
        batched(f, batch, |chunk| m.run_plain_lazy(chunk, &want).map_err(|e| m.blame(e, "inputs", "model")))
            .map(outputs_record)
    }
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
        inputs: Arg [Type::Any],
        /// tensor names or globs
        tensors: Arg [Type::OneOf(vec![Type::Str, Type::list(Type::Str)])],
        /// run this many rows at a time (0: all at once)
        batch: usize = Value::Num(0.0),
        /// stream each tensor to an .npy file in the run folder instead of returning it
        to_disk: bool = Value::Bool(false),
    }
    |p, ctx| {
        let m = p.model.clone();
        let f = feeds_value(&m, p.inputs.get(), "inputs")?;
        let names = select_names(&m, &p.tensors)?;
        let batch = p.batch;
        if p.to_disk {
            return capture_to_disk(&m, f, &names, batch, ctx);
        }
        batched(f, batch, |chunk| m.capture_lazy(chunk, &names).map_err(|e| m.blame(e, "inputs", "tensors")))
            .map(outputs_record)
    }
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
    names: &[String],
    batch: usize,
    ctx: &mut dyn ToolCtx,
) -> Result<Value, ToolError> {
    let rows = feeds.first().and_then(|(_, t)| t.shape().first().copied()).unwrap_or(0);
    if rows == 0 || feeds.iter().any(|(_, t)| t.shape().first() != Some(&rows)) {
        return Err(ToolError::arg(
            "inputs",
            "to_disk needs inputs with the same number of rows (their first axis), at least one",
        ));
    }
    let step = if batch == 0 { rows } else { batch };
    let mut streams: std::collections::BTreeMap<String, Stream> = std::collections::BTreeMap::new();
    each_batch(
        &feeds,
        rows,
        step,
        |chunk| m.capture_lazy(chunk, names).map_err(|e| m.blame(e, "inputs", "tensors")),
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
        inputs: Arg [Type::Any],
        /// the tensor to patch
        tensor: String,
        /// the replacement, a tensor of the tensor's shape (or broadcastable)
        value: Value,
        /// weight of the replacement: a number or a tensor
        mask: Value = Value::Num(1.0),
    }
    |p, _| {
        let m = p.model.clone();
        let f = feeds_value(&m, p.inputs.get(), "inputs")?;
        let t = p.tensor.clone();
        let value = to_tensor(&p.value).map_err(|e| ToolError::arg("value", e))?.to_array();
        let mask = to_tensor(&p.mask).map_err(|e| ToolError::arg("mask", e))?.to_array();
        // What is wrong with the tensor is found first, so that blame is never
        // read off an error's wording; what fails after that is the run.
        known_tensor(&m, &t, "tensor")?;
        m.patch_type(&t).map_err(|e| m.blame(e, "inputs", "tensor"))?;
        let want = m.output_names();
        let (vs, ms) = (value.shape().to_vec(), mask.shape().to_vec());
        m.patch(f.clone(), vec![(t.clone(), value, mask)], &want)
            .map(|out| outputs_record(out.into_iter().map(|(k, v)| (k, Tensor::new(v))).collect()))
            .map_err(|e| {
                let given = [("value", t.as_str(), vs.as_slice()), ("mask", t.as_str(), ms.as_slice())];
                misshapen(&m, f, &given).unwrap_or_else(|| m.blame(e, "inputs", "tensor"))
            })
    }
}

/// After a hooked run failed: the first value (argument, tensor, shape)
/// that does not broadcast to its tensor's shape on `feeds`, as an error
/// naming the shape it needs, rather than the runtime's broadcast text.
/// `None` if every shape fits (the failure was something else).
pub(crate) fn misshapen(
    m: &Model,
    feeds: Vec<(String, ArrayD<f32>)>,
    given: &[(&str, &str, &[usize])],
) -> Option<ToolError> {
    let names: Vec<String> = given.iter().map(|(_, t, _)| t.to_string()).collect();
    let actual = m.capture(feeds, &names).ok()?;
    given.iter().find_map(|(arg, t, shape)| {
        let a = actual.get(*t)?;
        (!broadcasts_to(shape, a.shape())).then(|| {
            let what = match *arg {
                "steer" => "steering vector",
                "patch" => "patch value or mask",
                other => other,
            };
            ToolError::arg(arg, format!("the {what} is {shape:?} but `{t}` is {:?} on these inputs", a.shape())).help(
                format!(
                    "give the tensor's shape {:?} or one that broadcasts to it (e.g. [{}] for every position)",
                    a.shape(),
                    a.shape().last().copied().unwrap_or(1)
                ),
            )
        })
    })
}

/// Whether an array of shape `a` broadcasts to shape `b` (NumPy's rule, one way).
pub(crate) fn broadcasts_to(a: &[usize], b: &[usize]) -> bool {
    a.len() <= b.len() && a.iter().rev().zip(b.iter().rev()).all(|(x, y)| *x == 1 || x == y)
}

/// One row per tensor: name, kind, producing op and node, dtype, shape.
pub fn inspect_rows(m: &Model) -> Result<Vec<Value>, String> {
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
        pattern: Option<String> = Value::None,
    }
    |p, _| {
        let m = p.model.clone();
        let rows = inspect_rows(&m).map_err(|e| ToolError::arg("model", e))?;
        let rows = match p.pattern.as_deref() {
            None => rows,
            Some(p) => {
                let pat =
                    glob::Pattern::new(p).map_err(|e| ToolError::arg("pattern", format!("bad pattern `{p}`: {e}")))?;
                rows.into_iter().filter(|r| matches!(r.record_field("name"), Value::Str(n) if pat.matches(&n))).collect()
            }
        };
        Ok(Value::list(rows))
    }
}

/// A model parameter: the handle from model() or onnx().
impl Param for ModelHandle {
    fn ty() -> Type {
        model_type()
    }
    fn read(a: &Args, name: &'static str) -> Result<Self, ToolError> {
        model_of(a, name)
    }
}
