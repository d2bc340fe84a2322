//! A loaded model: its protobuf, its digest, and ONNX Runtime sessions, one
//! per hook set (the unmodified model, a capture of some tensors, a patch),
//! created on first use and kept for the run.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use assay_interpreter::{Backing, Tensor as Lazy};
use ndarray::ArrayD;
use ndarray::ArrayViewD;
use ort::session::Session;
use ort::value::{DynValue, Tensor, TensorElementType, TensorValueType, ValueType};

use super::error::ModelError;
use super::graph;
use super::proto::{tensor_proto, ModelProto};
use super::runtime;

/// An f32 output left in ONNX Runtime's buffer.
struct OrtF32(Tensor<f32>);

impl Backing for OrtF32 {
    fn view(&self) -> ArrayViewD<'_, f32> {
        self.0.extract_array()
    }
}

/// One dimension of a declared shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Dim {
    Fixed(i64),
    Symbolic(String),
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Symbolic(s) if s.is_empty() => write!(f, "?"),
            Dim::Symbolic(s) => write!(f, "{s}"),
        }
    }
}

/// A model input, output or captured tensor as ONNX Runtime describes it.
#[derive(Debug, Clone)]
pub struct Port {
    pub name: String,
    pub dtype: String,
    pub elem: Option<TensorElementType>,
    pub shape: Option<Vec<Dim>>,
}

impl Port {
    fn from_outlet(name: &str, ty: &ValueType) -> Port {
        match ty {
            ValueType::Tensor { ty, shape, dimension_symbols } => {
                let dims = shape
                    .iter()
                    .enumerate()
                    .map(|(i, d)| {
                        if *d >= 0 {
                            Dim::Fixed(*d)
                        } else {
                            Dim::Symbolic(dimension_symbols.get(i).cloned().unwrap_or_default())
                        }
                    })
                    .collect();
                Port { name: name.into(), dtype: elem_str(*ty), elem: Some(*ty), shape: Some(dims) }
            }
            other => Port { name: name.into(), dtype: format!("{other:?}").to_lowercase(), elem: None, shape: None },
        }
    }

    pub fn shape_text(&self) -> String {
        match &self.shape {
            Some(d) => format!("[{}]", d.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")),
            None => "?".into(),
        }
    }
}

pub fn elem_str(t: TensorElementType) -> String {
    use TensorElementType as T;
    match t {
        T::Float32 => "float32",
        T::Float64 => "float64",
        T::Float16 => "float16",
        T::Bfloat16 => "bfloat16",
        T::Int8 => "int8",
        T::Int16 => "int16",
        T::Int32 => "int32",
        T::Int64 => "int64",
        T::Uint8 => "uint8",
        T::Uint16 => "uint16",
        T::Uint32 => "uint32",
        T::Uint64 => "uint64",
        T::Bool => "bool",
        T::String => "string",
        _ => "other",
    }
    .to_string()
}

fn onnx_elem(t: TensorElementType) -> Option<i32> {
    use tensor_proto::DataType as D;
    use TensorElementType as T;
    Some(match t {
        T::Float32 => D::Float,
        T::Float64 => D::Double,
        T::Float16 => D::Float16,
        T::Bfloat16 => D::Bfloat16,
        _ => return None,
    } as i32)
}

type Shared = Arc<Mutex<Session>>;

/// A KV cache in the convention of Hugging Face Optimum's decoder exports:
/// each input `past_key_values.L.key` / `.value` [N, heads, P, head_dim] has
/// an output `present.L.key` / `.value` [N, heads, P+T, head_dim], where P
/// is the number of earlier tokens and T the number fed now.
#[derive(Debug, Clone, PartialEq)]
pub struct KvSlot {
    pub past: String,
    pub present: String,
    pub heads: usize,
    pub head_dim: usize,
}

/// The model's KV-cache slots, if every `past_key_values.*` input has its
/// `present.*` output and fixed head sizes.
fn kv_slots(inputs: &[Port], outputs: &[Port]) -> Option<Vec<KvSlot>> {
    let mut slots = Vec::new();
    for p in inputs.iter().filter(|p| p.name.starts_with("past_key_values.")) {
        let rest = &p.name["past_key_values.".len()..];
        let present = format!("present.{rest}");
        let fixed = |i: usize| match p.shape.as_ref().and_then(|s| s.get(i)) {
            Some(Dim::Fixed(n)) if *n > 0 => Some(*n as usize),
            _ => None,
        };
        let rank4 = p.shape.as_ref().is_some_and(|s| s.len() == 4);
        if !rank4 || !outputs.iter().any(|o| o.name == present) {
            return None;
        }
        slots.push(KvSlot { past: p.name.clone(), present, heads: fixed(1)?, head_dim: fixed(3)? });
    }
    (!slots.is_empty()).then_some(slots)
}

/// Rewritten-model sessions kept per model (besides the unmodified one):
/// at least this many, whatever the model's size...
pub const MAX_REWRITTEN_SESSIONS: usize = 3;
/// ...and more for small models, up to this many, while their weights'
/// copies stay within [`REWRITTEN_SESSIONS_BYTES`] (a script that switches
/// among a few hook sets should not rebuild a session on every switch).
pub const MOST_REWRITTEN_SESSIONS: usize = 16;
pub const REWRITTEN_SESSIONS_BYTES: u64 = 2 << 30;

/// How many rewritten sessions a model of `weight_bytes` keeps.
pub fn rewritten_sessions_for(weight_bytes: u64) -> usize {
    let fit = REWRITTEN_SESSIONS_BYTES / weight_bytes.max(1);
    (fit as usize).clamp(MAX_REWRITTEN_SESSIONS, MOST_REWRITTEN_SESSIONS)
}

/// Which rewriting of the graph a session runs: the key of the sessions a
/// model keeps (one each, the most recent few; see
/// [`rewritten_sessions_for`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HookSet {
    /// The graph as loaded.
    Plain,
    /// Every node's output exposed (to read their types and shapes).
    EveryTensor,
    /// These tensors exposed as outputs (sorted, no repeats).
    Capture(Vec<String>),
    /// One tensor reduced inside the graph.
    Reduce { op: String, axes: Vec<i64>, tensor: String },
    /// These tensors patchable (`mask*new + (1-mask)*orig`) and these
    /// exposed, and whether only the last position is computed.
    Patch { patched: Vec<String>, capture: Vec<String>, last_position: bool },
    /// These tensors patchable and these steerable (`orig + vector`).
    PatchAdd { patched: Vec<String>, added: Vec<String> },
}

/// A fact learnt about a model by running it, so each is learnt once.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Fact {
    /// A patched batch may feed the target once and broadcast it over the
    /// rows (checked against feeding it per row) for these target inputs,
    /// patched tensors and wanted outputs.
    Broadcasts {
        targets: Vec<String>,
        patched: Vec<String>,
        outputs: Vec<String>,
        capture: Vec<String>,
        last_position: bool,
    },
    /// The graph runs one row per run only (an exporter's batch-1 cache).
    OneRowAtATime,
}

pub struct Model {
    /// The path as the script wrote it.
    pub display: String,
    pub path: PathBuf,
    pub sha256: String,
    /// Rewritten sessions kept (see [`rewritten_sessions_for`]).
    pub keep_sessions: usize,
    /// The sha256 of the external-data weights files, in order, where the
    /// model has any (a tool call's identity covers its weights too).
    pub weights_sha256: Vec<String>,
    pub proto: ModelProto,
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
    pub provider: Provider,
    sessions: Mutex<HashMap<HookSet, Shared>>,
    /// Rewritten sessions, least recently built first.
    order: Mutex<Vec<HookSet>>,
    every_tensor: OnceLock<Result<Vec<Port>, ModelError>>,
    /// The longest sequence (cached plus new tokens) the model's position
    /// table covers, where the graph says (see [`Model::max_positions`]).
    max_positions: OnceLock<Option<usize>>,
    /// The KV cache's slots, for decoders exported with one.
    pub kv: Option<Vec<KvSlot>>,
    /// Facts learnt about this model by running it (e.g. whether a hook set
    /// broadcasts a batch of one), so each is learnt once.
    memo: Mutex<HashMap<Fact, bool>>,
    /// External-data weights as they were read and digested (file name as
    /// the graph names it, bytes): every session, the plain one and each
    /// rewritten one, takes them from here, never from the file again, so
    /// a file swapped after it was digested is never run.
    weights: Vec<(String, Arc<[u8]>)>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Model({})", self.display)
    }
}

/// External-data files an initializer points to, relative to the model's folder.
/// The external-data files a serialized model's weights name (none for a
/// file that does not decode: loading it reports why).
pub fn external_files_of(bytes: &[u8]) -> Vec<String> {
    super::graph::decode(bytes).map(|m| external_files(&m)).unwrap_or_default()
}

pub fn external_files(m: &ModelProto) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(g) = &m.graph {
        for t in &g.initializer {
            for kv in &t.external_data {
                if kv.key() == "location" && !out.iter().any(|o| o == kv.value()) {
                    out.push(kv.value().to_string());
                }
            }
        }
    }
    out
}

/// What a model family knows that its graph does not say, carried by the
/// script's handle (`ModelHandle`) beside the generic `Model`. Empty for a
/// file loaded with `onnx()`; a built-in model's row in `models::BUILT_IN`
/// fills it (`model()` reads the row's class names, preprocessing and
/// tokenizer).
#[derive(Clone, Default)]
pub struct Card {
    /// Class names, for classifiers that come with them.
    pub labels: Vec<String>,
    /// How images become this model's input, for image models that say.
    pub preprocess: Option<Preprocess>,
    /// The tokenizer, for language models that come with one.
    pub tokenizer: Option<Arc<tokenizers::Tokenizer>>,
}

/// Image preprocessing: resize the short side, centre-crop, normalise.
#[derive(Debug, Clone, Copy)]
pub struct Preprocess {
    pub resize: u32,
    pub size: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

/// Where a model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Cpu,
    Cuda,
}

impl Provider {
    pub fn parse(s: &str) -> Result<Provider, String> {
        match s {
            "cpu" => Ok(Provider::Cpu),
            "cuda" => Ok(Provider::Cuda),
            other => Err(format!("unknown execution provider \"{other}\"; use \"cpu\" or \"cuda\"")),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
        }
    }
}

fn builder(provider: Provider) -> Result<ort::session::builder::SessionBuilder, ModelError> {
    let rt = runtime::runtime().map_err(ModelError::Runtime)?;
    let b = Session::builder(&rt.env).map_err(|e| ModelError::Runtime(e.to_string()))?;
    match provider {
        Provider::Cpu => Ok(b),
        Provider::Cuda => b.with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()]).map_err(|e| {
            ModelError::Runtime(format!("the CUDA execution provider is not available ({e}); it needs the onnxruntime-gpu library (set ASSAY_ORT_LIB to its libonnxruntime.so) and a CUDA GPU"))
        }),
    }
}

/// A session builder whose external-data weights come from `weights` (the
/// bytes that were digested) and, for files not among them, from the
/// model's folder.
fn session_builder(
    provider: Provider,
    path: &Path,
    weights: &[(String, Arc<[u8]>)],
) -> Result<ort::session::builder::SessionBuilder, ModelError> {
    // A bare file name's folder is the current one (ONNX Runtime refuses
    // an empty folder for external weights).
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.display().to_string(),
        _ => ".".to_string(),
    };
    let mut b = builder(provider)?
        .with_config_entry("session.model_external_initializers_file_folder_path", dir)
        .map_err(|e| ModelError::Runtime(e.to_string()))?;
    for (name, buffer) in weights {
        b = b
            .with_external_initializer_file_in_memory(name, buffer.clone())
            .map_err(|e| ModelError::Graph(format!("ONNX Runtime cannot take the weights `{name}`: {e}")))?;
    }
    Ok(b)
}

impl Model {
    /// Every tensor of the graph a script can name (inputs, initializers
    /// and node outputs), in graph order.
    pub fn sites(&self) -> Vec<super::graph::Site> {
        super::graph::sites(&self.proto)
    }

    /// A model error as a tool's error, blamed by its kind on parameter
    /// `inputs` (the feeds) or `tensors` (a tensor named or used), with the
    /// closest name the model has for an unknown tensor.
    pub fn blame(&self, e: ModelError, inputs: &str, tensors: &str) -> assay_interpreter::ToolError {
        let names = match e {
            ModelError::UnknownTensor(_) => self.sites().into_iter().map(|s| s.name).collect(),
            _ => Vec::new(),
        };
        e.blame(inputs, tensors, &names)
    }

    /// Loads a model file (already read and digested by the caller).
    pub fn load(
        path: &Path,
        display: &str,
        bytes: &[u8],
        sha256: String,
        provider: Provider,
    ) -> Result<Model, ModelError> {
        Model::load_with_weights(path, display, bytes, sha256, provider, Vec::new())
    }

    /// As [`Model::load`], with the external-data weights files given as
    /// the bytes the caller read and digested (by the name the graph gives
    /// them). The graph is built from `bytes` and the weights from these
    /// buffers: ONNX Runtime opens neither file again. A weights file the
    /// graph names and `weights` lacks is read from beside `path` (Assay's
    /// own cached models).
    pub fn load_with_weights(
        path: &Path,
        display: &str,
        bytes: &[u8],
        sha256: String,
        provider: Provider,
        weights: Vec<(String, Arc<[u8]>)>,
    ) -> Result<Model, ModelError> {
        let proto = super::attention::canonicalize(graph::decode(bytes)?);
        let dir = path.parent().unwrap_or(Path::new("."));
        for f in external_files(&proto) {
            if !weights.iter().any(|(n, _)| *n == f) && !dir.join(&f).is_file() {
                return Err(ModelError::Graph(format!(
                    "the model's weights are in an external-data file `{f}`, which is missing from {}",
                    dir.display()
                )));
            }
        }
        let mut b = session_builder(provider, path, &weights)?;
        let session = b
            .commit_from_memory(bytes)
            .map_err(|e| ModelError::Graph(format!("ONNX Runtime cannot load the model: {e}")))?;
        let mut m = Model::from_session(path, display, sha256, proto, Some(session), provider);
        m.weights = weights;
        Ok(m)
    }

    /// As [`Model::load`] for a model Assay built or verified itself (a
    /// built-in): its inputs and outputs are read from the graph and the
    /// ONNX Runtime session is created on the first run, so a script whose
    /// model calls all come from the call cache never pays for it.
    pub fn load_deferred(
        path: &Path,
        display: &str,
        bytes: &[u8],
        sha256: String,
        provider: Provider,
    ) -> Result<Model, ModelError> {
        let proto = super::attention::canonicalize(graph::decode(bytes)?);
        let (inputs, outputs) = declared_ports(&proto)?;
        let mut m = Model::from_session(path, display, sha256, proto, None, provider);
        m.kv = kv_slots(&inputs, &outputs);
        m.inputs = inputs;
        m.outputs = outputs;
        Ok(m)
    }

    /// A model from bytes in memory, without external-data weights: a small
    /// network a harness built and keeps from the script (it is no file).
    pub fn load_bytes(display: &str, bytes: &[u8], provider: Provider) -> Result<Model, ModelError> {
        let proto = super::attention::canonicalize(graph::decode(bytes)?);
        if !external_files(&proto).is_empty() {
            return Err(ModelError::Graph("a model loaded from memory cannot have external-data weights".into()));
        }
        let sha256 = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(bytes))
        };
        let mut b = builder(provider)?;
        let session = b
            .commit_from_memory(bytes)
            .map_err(|e| ModelError::Graph(format!("ONNX Runtime cannot load the model: {e}")))?;
        Ok(Model::from_session(Path::new(""), display, sha256, proto, Some(session), provider))
    }

    fn from_session(
        path: &Path,
        display: &str,
        sha256: String,
        proto: ModelProto,
        session: Option<Session>,
        provider: Provider,
    ) -> Model {
        let port = |o: &ort::value::Outlet| Port::from_outlet(o.name(), o.dtype());
        let inputs: Vec<Port> = session.iter().flat_map(|s| s.inputs().iter().map(port)).collect();
        let outputs: Vec<Port> = session.iter().flat_map(|s| s.outputs().iter().map(port)).collect();
        let kv = kv_slots(&inputs, &outputs);
        let mut sessions = HashMap::new();
        if let Some(session) = session {
            sessions.insert(HookSet::Plain, Arc::new(Mutex::new(session)));
        }
        Model {
            display: display.into(),
            path: path.to_path_buf(),
            sha256,
            weights_sha256: Vec::new(),
            keep_sessions: rewritten_sessions_for(weight_bytes(path, &proto)),
            proto,
            inputs,
            outputs,
            provider,
            sessions: Mutex::new(sessions),
            order: Mutex::new(Vec::new()),
            every_tensor: OnceLock::new(),
            max_positions: OnceLock::new(),
            kv,
            memo: Mutex::new(HashMap::new()),
            weights: Vec::new(),
        }
    }

    /// The session for a hook set, building the rewritten model on first use.
    fn session(
        &self,
        key: &HookSet,
        make: impl FnOnce() -> Result<ModelProto, ModelError>,
    ) -> Result<Shared, ModelError> {
        let mut map = self.sessions.lock().map_err(|_| midway())?;
        if let Some(s) = map.get(key) {
            return Ok(s.clone());
        }
        let proto = make()?;
        let bytes = graph::encode(&proto);
        let mut b = session_builder(self.provider, &self.path, &self.weights)?;
        let s = b
            .commit_from_memory(&bytes)
            .map_err(|e| ModelError::Graph(format!("ONNX Runtime rejected the rewritten model: {e}")))?;
        let s = Arc::new(Mutex::new(s));
        if *key == HookSet::Plain {
            // The unmodified model's session (deferred) is kept for the run.
            map.insert(HookSet::Plain, s.clone());
            return Ok(s);
        }
        // Each session holds its own copy of the weights: keep the unmodified
        // model and only the most recent rewritten ones.
        let mut order = self.order.lock().map_err(|_| midway())?;
        order.retain(|k| k != key);
        order.push(key.clone());
        while order.len() > self.keep_sessions {
            let old = order.remove(0);
            map.remove(&old);
        }
        map.insert(key.clone(), s.clone());
        Ok(s)
    }

    /// A fact recorded by [`Model::learn`], if any.
    pub fn fact(&self, fact: &Fact) -> Option<bool> {
        self.memo.lock().ok().and_then(|m| m.get(fact).copied())
    }

    pub fn learn(&self, fact: Fact, value: bool) {
        if let Ok(mut m) = self.memo.lock() {
            m.insert(fact, value);
        }
    }

    /// The outputs that can be computed at the last position only (see
    /// [`graph::last_position`]); an error saying why if none can.
    pub fn last_position_outputs(&self) -> Result<Vec<String>, ModelError> {
        let ports = self.every_tensor()?;
        last_position_of(&self.proto, &self.output_names(), ports).map(|(_, done)| done)
    }

    /// Every top-level tensor with its inferred type and shape, found by
    /// exposing all of them once and reading ONNX Runtime's metadata.
    pub fn every_tensor(&self) -> Result<&Vec<Port>, ModelError> {
        self.every_tensor
            .get_or_init(|| {
                let names: Vec<String> = graph::sites(&self.proto)
                    .into_iter()
                    .filter(|s| matches!(s.kind, graph::Kind::Node { .. }))
                    .map(|s| s.name)
                    .collect();
                let exposed = graph::expose(&self.proto, &names)?;
                let s = self.session(&HookSet::EveryTensor, || Ok(exposed))?;
                let s = s.lock().map_err(|_| midway())?;
                Ok(s.outputs().iter().map(|o| Port::from_outlet(o.name(), o.dtype())).collect())
            })
            .as_ref()
            .map_err(|e| e.clone())
    }

    fn port_of(&self, name: &str) -> Result<Port, ModelError> {
        if let Some(p) = self.inputs.iter().chain(self.outputs.iter()).find(|p| p.name == name) {
            return Ok(p.clone());
        }
        self.every_tensor()?
            .iter()
            .find(|p| p.name == name)
            .cloned()
            .ok_or_else(|| ModelError::UnknownTensor(name.to_string()))
    }

    /// Runs with the given hook set and returns the wanted outputs as f32.
    pub fn run(
        &self,
        key: &HookSet,
        make: impl FnOnce() -> Result<ModelProto, ModelError>,
        feeds: Vec<(String, ArrayD<f32>)>,
        want: &[String],
    ) -> Result<BTreeMap<String, ArrayD<f32>>, ModelError> {
        self.run_lazy(key, make, feeds, want).map(owned)
    }

    /// Runs the graph as loaded.
    pub fn run_plain(
        &self,
        feeds: Vec<(String, ArrayD<f32>)>,
        want: &[String],
    ) -> Result<BTreeMap<String, ArrayD<f32>>, ModelError> {
        self.run(&HookSet::Plain, || Ok(self.proto.clone()), feeds, want)
    }

    /// As [`Model::run_plain`], with outputs left in ONNX Runtime's buffers.
    pub fn run_plain_lazy(
        &self,
        feeds: Vec<(String, ArrayD<f32>)>,
        want: &[String],
    ) -> Result<BTreeMap<String, Lazy>, ModelError> {
        self.run_lazy(&HookSet::Plain, || Ok(self.proto.clone()), feeds, want)
    }

    /// As [`Model::run`], with f32 outputs left in ONNX Runtime's buffers
    /// (copied only if a script needs an array of its own).
    pub fn run_lazy(
        &self,
        key: &HookSet,
        make: impl FnOnce() -> Result<ModelProto, ModelError>,
        feeds: Vec<(String, ArrayD<f32>)>,
        want: &[String],
    ) -> Result<BTreeMap<String, Lazy>, ModelError> {
        let feeds = self.text_defaults(feeds);
        self.check_positions(&feeds)?;
        let s = self.session(key, make)?;
        let mut s = s.lock().map_err(|_| midway())?;
        let declared: Vec<Port> = s.inputs().iter().map(|o| Port::from_outlet(o.name(), o.dtype())).collect();
        for p in &declared {
            if !feeds.iter().any(|(n, _)| *n == p.name) {
                let names: Vec<String> =
                    self.inputs.iter().map(|p| format!("{} {} {}", p.name, p.dtype, p.shape_text())).collect();
                return Err(ModelError::Input(format!(
                    "missing input `{}`; the model takes: {}",
                    p.name,
                    names.join("; ")
                )));
            }
        }
        let mut values: Vec<(String, DynValue)> = Vec::new();
        for (name, arr) in feeds {
            let port = declared.iter().find(|p| p.name == name).ok_or_else(|| {
                let names: Vec<&str> = self.inputs.iter().map(|p| p.name.as_str()).collect();
                ModelError::Input(format!("the model has no input `{name}`; its inputs are: {}", names.join(", ")))
            })?;
            check_shape(port, arr.shape())?;
            values.push((name, to_ort(arr, port).map_err(ModelError::Input)?));
        }
        // The inputs are lent, not given: a graph output that is a graph
        // input (`capture(m, x, "input")`) is the input's own buffer, which
        // must outlive the copy below.
        let lent: Vec<(&str, &DynValue)> = values.iter().map(|(n, v)| (n.as_str(), v)).collect();
        let mut outputs = s.run(lent).map_err(|e| ModelError::Runtime(format!("ONNX Runtime failed: {e}")))?;
        let mut out = BTreeMap::new();
        for w in want {
            let v =
                outputs.remove(w).ok_or_else(|| ModelError::Runtime(format!("the run produced no output `{w}`")))?;
            // An output that is an input aliases the input's buffer, which
            // is freed on return: copy it.
            let aliased = values.iter().any(|(n, _)| n == w);
            let f32_tensor = matches!(v.dtype(), ValueType::Tensor { ty: TensorElementType::Float32, .. });
            let t = if f32_tensor && !aliased {
                let t = v
                    .downcast::<TensorValueType<f32>>()
                    .map_err(|e| ModelError::Runtime(format!("output `{w}`: {e}")))?;
                Lazy::backed(OrtF32(t))
            } else {
                Lazy::new(from_ort(&v).map_err(|e| ModelError::Runtime(format!("output `{w}`: {e}")))?)
            };
            out.insert(w.clone(), t);
        }
        Ok(out)
    }

    /// The model's outputs, less a KV cache's `present.*` (asked for by name
    /// where wanted).
    pub fn output_names(&self) -> Vec<String> {
        let cache = |n: &str| self.kv.iter().flatten().any(|s| s.present == n);
        self.outputs.iter().filter(|p| !cache(&p.name)).map(|p| p.name.clone()).collect()
    }

    /// The longest sequence the model's position table covers: the
    /// `max_positions` its metadata states (Assay's built models), or the
    /// rows of a learned position embedding that `position_ids` index
    /// (a Gather of an initializer by that input, as GPT-2 exports have).
    /// `None` where the graph does not say (e.g. rotary models computing
    /// angles on the fly).
    pub fn max_positions(&self) -> Option<usize> {
        *self.max_positions.get_or_init(|| {
            let stated = self.proto.metadata_props.iter().find(|p| p.key() == "max_positions");
            if let Some(n) = stated.and_then(|p| p.value().parse::<usize>().ok()) {
                return Some(n);
            }
            let g = self.proto.graph.as_ref()?;
            g.node.iter().find_map(|n| {
                let (data, idx) = (n.input.first()?, n.input.get(1)?);
                if n.op_type() != "Gather" || idx != "position_ids" {
                    return None;
                }
                let t = g.initializer.iter().find(|t| t.name() == data)?;
                (t.dims.len() == 2).then(|| usize::try_from(t.dims[0]).ok()).flatten()
            })
        })
    }

    /// Inputs a run fills when they are not given, for a model that takes
    /// `input_ids`: `attention_mask` (ones), `position_ids` (counted from
    /// the mask), `token_type_ids` (zeros) and, for a model with a KV cache,
    /// the cache itself (`past_key_values.*`, empty). See `text_defaults`.
    pub fn optional_input(&self, name: &str) -> bool {
        self.takes("input_ids") && matches!(name, "attention_mask" | "position_ids" | "token_type_ids")
            || self.kv.as_ref().is_some_and(|slots| slots.iter().any(|s| s.past == name))
    }

    fn takes(&self, name: &str) -> bool {
        self.inputs.iter().any(|i| i.name == name)
    }

    /// Whether prompts of different lengths can run as one left-padded
    /// batch: the model takes the attention mask and position ids, so each
    /// row's positions start at its first token.
    pub fn pads_left(&self) -> bool {
        self.takes("attention_mask") && self.takes("position_ids")
    }

    /// Refuses a sequence longer than the position table, with the limit,
    /// rather than the runtime's out-of-range or broadcast text.
    fn check_positions(&self, feeds: &[(String, ArrayD<f32>)]) -> Result<(), ModelError> {
        let Some(max) = self.max_positions() else { return Ok(()) };
        let t = feeds.iter().find(|(k, _)| k == "input_ids").and_then(|(_, v)| v.shape().get(1).copied());
        let past = feeds
            .iter()
            .find(|(k, _)| self.kv.iter().flatten().any(|s| s.past == *k))
            .and_then(|(_, v)| v.shape().get(2).copied())
            .unwrap_or(0);
        let from_ids = feeds
            .iter()
            .find(|(k, _)| k == "position_ids")
            .and_then(|(_, v)| v.iter().copied().fold(None, |m: Option<f32>, x| Some(m.map_or(x, |m| m.max(x)))))
            .map(|m| m as usize + 1);
        let len = from_ids.unwrap_or(0).max(t.map(|t| t + past).unwrap_or(0));
        if len > max {
            return Err(ModelError::Input(format!(
                "the sequence is {len} tokens{} but the model's position table holds {max}",
                if past > 0 { format!(" ({past} cached)") } else { String::new() }
            )));
        }
        Ok(())
    }

    /// For a model that takes `input_ids`: where not given, an empty past
    /// (P = 0) of the batch's size for a model with a KV cache,
    /// `attention_mask` (ones over P+T), `position_ids` (counted from a
    /// given mask, else P..P+T) and `token_type_ids` (zeros).
    fn text_defaults(&self, mut feeds: Vec<(String, ArrayD<f32>)>) -> Vec<(String, ArrayD<f32>)> {
        if !self.takes("input_ids") {
            return feeds;
        }
        let fed = |feeds: &[(String, ArrayD<f32>)], n: &str| feeds.iter().any(|(k, _)| k == n);
        let Some(ids) = feeds.iter().find(|(k, _)| k == "input_ids").map(|(_, v)| v.shape().to_vec()) else {
            return feeds;
        };
        let n = ids.first().copied().unwrap_or(1);
        let slots = self.kv.as_deref().unwrap_or_default();
        let past = feeds
            .iter()
            .find(|(k, _)| slots.iter().any(|s| s.past == *k))
            .map(|(_, v)| v.shape().get(2).copied().unwrap_or(0));
        if past.is_none() {
            for s in slots {
                feeds.push((s.past.clone(), ArrayD::zeros(vec![n, s.heads, 0, s.head_dim])));
            }
        }
        let (p, t) = (past.unwrap_or(0), ids.get(1).copied().unwrap_or(1));
        let takes = |name: &str| self.takes(name);
        if takes("token_type_ids") && !fed(&feeds, "token_type_ids") {
            feeds.push(("token_type_ids".into(), ArrayD::zeros(vec![n, t])));
        }
        if takes("attention_mask") && !fed(&feeds, "attention_mask") {
            feeds.push(("attention_mask".into(), ArrayD::ones(vec![n, p + t])));
        }
        if takes("position_ids") && !fed(&feeds, "position_ids") {
            // From a given mask as Hugging Face counts them (each row's
            // attended tokens so far, less one: left or right padding both
            // work), else P..P+T.
            let mask = feeds.iter().find(|(k, _)| k == "attention_mask").map(|(_, m)| m.clone());
            let pos = match mask.filter(|m| m.ndim() == 2 && m.shape()[0] == n && m.shape()[1] >= t) {
                Some(m) => {
                    let s = m.shape()[1];
                    let mut pos = ndarray::Array2::<f32>::zeros((n, t));
                    for r in 0..n {
                        let mut seen = 0.0f32;
                        for j in 0..s {
                            seen += m[[r, j]];
                            if j + t >= s {
                                pos[[r, j + t - s]] = (seen - 1.0).max(0.0);
                            }
                        }
                    }
                    pos
                }
                None => ndarray::Array2::from_shape_fn((n, t), |(_, j)| (p + j) as f32),
            };
            feeds.push(("position_ids".into(), pos.into_dyn()));
        }
        feeds
    }

    /// Runs `feeds` (a prefix of tokens) and returns its KV cache as the
    /// `past_key_values.*` feeds of a run that continues it.
    pub fn kv_prefix(&self, feeds: Vec<(String, ArrayD<f32>)>) -> Result<Vec<(String, ArrayD<f32>)>, ModelError> {
        let slots = self
            .kv
            .as_ref()
            .ok_or_else(|| ModelError::Graph("the model has no KV cache (`past_key_values.*` inputs)".into()))?;
        let want: Vec<String> = slots.iter().map(|s| s.present.clone()).collect();
        let mut out = self.run_plain(feeds, &want)?;
        slots
            .iter()
            .map(|s| {
                let v = out.remove(&s.present);
                v.map(|v| (s.past.clone(), v)).ok_or_else(|| ModelError::Runtime(format!("no `{}`", s.present)))
            })
            .collect()
    }

    /// Runs exposing the named tensors; returns them and the model outputs.
    pub fn capture(
        &self,
        feeds: Vec<(String, ArrayD<f32>)>,
        tensors: &[String],
    ) -> Result<BTreeMap<String, ArrayD<f32>>, ModelError> {
        self.capture_lazy(feeds, tensors).map(owned)
    }

    /// As [`Model::capture`], with the tensors left in ONNX Runtime's buffers.
    pub fn capture_lazy(
        &self,
        feeds: Vec<(String, ArrayD<f32>)>,
        tensors: &[String],
    ) -> Result<BTreeMap<String, Lazy>, ModelError> {
        let mut sorted = tensors.to_vec();
        sorted.sort();
        sorted.dedup();
        let key = HookSet::Capture(sorted.clone());
        let proto = &self.proto;
        self.run_lazy(&key, || graph::expose(proto, &sorted), feeds, &sorted)
    }

    /// Runs and returns `op` over `axes` of a tensor, computed inside the graph.
    pub fn reduced(
        &self,
        feeds: Vec<(String, ArrayD<f32>)>,
        tensor: &str,
        op: &str,
        axes: &[i64],
    ) -> Result<ArrayD<f32>, ModelError> {
        let key = HookSet::Reduce { op: op.to_string(), axes: axes.to_vec(), tensor: tensor.to_string() };
        let name = graph::reduced_name(op, tensor);
        let proto = &self.proto;
        let mut out = self.run(&key, || graph::reduce(proto, tensor, op, axes), feeds, std::slice::from_ref(&name))?;
        out.remove(&name).ok_or_else(|| ModelError::Runtime("the reduction produced no output".into()))
    }

    /// Runs with each named tensor mixed as `mask*new + (1-mask)*orig`.
    pub fn patch(
        &self,
        feeds: Vec<(String, ArrayD<f32>)>,
        patches: Vec<(String, ArrayD<f32>, ArrayD<f32>)>,
        want: &[String],
    ) -> Result<BTreeMap<String, ArrayD<f32>>, ModelError> {
        self.patch_capture(feeds, patches, want, &[], false)
    }

    /// The type a patch of tensor `t` takes; an error (about `t` alone)
    /// when the model has no such tensor or it cannot be patched: a graph
    /// input (pass another input instead) or a tensor that is not floating
    /// point. Tools call it first, so its errors blame the tensor argument.
    pub fn patch_type(&self, t: &str) -> Result<super::proto::TypeProto, ModelError> {
        if self.inputs.iter().any(|p| p.name == t) {
            return Err(ModelError::Tensor {
                name: t.to_string(),
                message: format!("`{t}` is a graph input; to change it, pass a different input instead"),
            });
        }
        // Initializers (weights) have declared types; other tensors are inferred.
        let is_init = graph::sites(&self.proto).iter().any(|s| s.name == t && s.kind == graph::Kind::Initializer);
        if is_init {
            if let Some(ty) = graph::declared_type(&self.proto, t) {
                if !graph::is_float(graph::elem_of(&ty)) {
                    return Err(ModelError::Tensor {
                        name: t.to_string(),
                        message: format!(
                            "`{t}` holds {} values; only floating-point tensors can be patched",
                            graph::elem_name(graph::elem_of(&ty))
                        ),
                    });
                }
                return Ok(ty);
            }
        }
        let port = self.port_of(t)?;
        let elem = port.elem.and_then(onnx_elem).ok_or_else(|| ModelError::Tensor {
            name: t.to_string(),
            message: format!("`{t}` holds {} values; only floating-point tensors can be patched", port.dtype),
        })?;
        Ok(port_type(&port, elem))
    }

    /// As `patch`, also returning the (patched-run) values of intermediate
    /// tensors `capture`; `want` may name them too. With `last_position`,
    /// the model's outputs are computed at the last position only where
    /// [`graph::last_position`] can (an error if it can for none).
    pub fn patch_capture(
        &self,
        mut feeds: Vec<(String, ArrayD<f32>)>,
        patches: Vec<(String, ArrayD<f32>, ArrayD<f32>)>,
        want: &[String],
        capture: &[String],
        last_position: bool,
    ) -> Result<BTreeMap<String, ArrayD<f32>>, ModelError> {
        let mut types = BTreeMap::new();
        for (t, _, _) in &patches {
            types.insert(t.clone(), self.patch_type(t)?);
        }
        let mut exposed = capture.to_vec();
        exposed.sort();
        exposed.dedup();
        let key = HookSet::Patch { patched: types.keys().cloned().collect(), capture: exposed.clone(), last_position };
        // Ranks are read before the session is built (building holds the lock
        // that reading them may need).
        let ports = if last_position { self.every_tensor()?.clone() } else { Vec::new() };
        let outputs = self.output_names();
        for (t, new, mask) in patches {
            feeds.push((graph::new_input(&t), new));
            feeds.push((graph::mask_input(&t), mask));
        }
        let proto = &self.proto;
        let mut all = want.to_vec();
        all.extend(exposed.iter().cloned());
        all.sort();
        all.dedup();
        self.run(
            &key,
            || {
                let mut p = graph::patch(proto, &types)?;
                if last_position {
                    p = last_position_of(&p, &outputs, &ports)?.0;
                }
                if exposed.is_empty() {
                    Ok(p)
                } else {
                    graph::expose(&p, &exposed)
                }
            },
            feeds,
            &all,
        )
    }
}

impl Model {
    /// Runs with `patches` (tensor, new value, mask: `T = mask*new +
    /// (1-mask)*orig`) and `adds` (tensor, vector: `T = orig + vector`), each
    /// broadcast over the tensor, so they apply at every position, also to
    /// tokens a KV-cache run adds one at a time.
    pub fn hooked(
        &self,
        mut feeds: Vec<(String, ArrayD<f32>)>,
        patches: Vec<(String, ArrayD<f32>, ArrayD<f32>)>,
        adds: Vec<(String, ArrayD<f32>)>,
        want: &[String],
    ) -> Result<BTreeMap<String, ArrayD<f32>>, ModelError> {
        if patches.is_empty() && adds.is_empty() {
            return self.run_plain(feeds, want);
        }
        let mut ptypes = BTreeMap::new();
        for (t, _, _) in &patches {
            ptypes.insert(t.clone(), self.patch_type(t)?);
        }
        let mut atypes = BTreeMap::new();
        for (t, _) in &adds {
            atypes.insert(t.clone(), self.patch_type(t)?);
        }
        let key =
            HookSet::PatchAdd { patched: ptypes.keys().cloned().collect(), added: atypes.keys().cloned().collect() };
        for (t, new, mask) in patches {
            feeds.push((graph::new_input(&t), new));
            feeds.push((graph::mask_input(&t), mask));
        }
        for (t, v) in adds {
            feeds.push((graph::add_input(&t), v));
        }
        let proto = &self.proto;
        self.run(&key, || graph::add(&graph::patch(proto, &ptypes)?, &atypes), feeds, want)
    }
}

/// A session's lock poisoned by a call that panicked.
fn midway() -> ModelError {
    ModelError::Runtime("a previous model call failed midway".into())
}

/// Outputs as arrays of their own (one copy each, out of ONNX Runtime's buffers).
fn owned(out: BTreeMap<String, Lazy>) -> BTreeMap<String, ArrayD<f32>> {
    out.into_iter().map(|(k, t)| (k, t.to_array())).collect()
}

/// The model rewritten to compute `outputs` at the last position only, and
/// the outputs this applied to; an error saying why if it applied to none.
fn last_position_of(
    m: &ModelProto,
    outputs: &[String],
    ports: &[Port],
) -> Result<(ModelProto, Vec<String>), ModelError> {
    let rank = |t: &str| ports.iter().find(|p| p.name == t).and_then(|p| p.shape.as_ref()).map(Vec::len);
    let (sliced, done, refused) = graph::last_position(m, outputs, &rank)?;
    if done.is_empty() {
        return Err(ModelError::Graph(format!(
            "cannot compute the outputs at the last position only: {}",
            refused.join("; ")
        )));
    }
    Ok((sliced, done))
}

/// The bytes of a model's weights: its file and its external-data files
/// (or, in memory, the initializers' raw data).
fn weight_bytes(path: &Path, proto: &ModelProto) -> u64 {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let external: u64 =
        external_files(proto).iter().map(|f| std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0)).sum();
    let inline: u64 = graph_initializer_bytes(proto);
    file.max(inline) + external
}

fn graph_initializer_bytes(proto: &ModelProto) -> u64 {
    proto
        .graph
        .as_ref()
        .map(|g| g.initializer.iter().map(|t| t.raw_data.as_ref().map_or(0, |d| d.len() as u64)).sum())
        .unwrap_or(0)
}

/// A graph's inputs (less initializers, as ONNX Runtime lists them) and
/// outputs with their declared element types and shapes.
fn declared_ports(m: &ModelProto) -> Result<(Vec<Port>, Vec<Port>), ModelError> {
    use super::proto::tensor_shape_proto::dimension::Value as DimValue;
    use super::proto::type_proto;
    let g = m.graph.as_ref().ok_or_else(|| ModelError::Graph("the model has no graph".into()))?;
    let port = |v: &super::proto::ValueInfoProto| -> Result<Port, ModelError> {
        let Some(type_proto::Value::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
            return Err(ModelError::Graph(format!("`{}` is not declared as a tensor", v.name())));
        };
        let elem = elem_from_onnx(t.elem_type());
        let shape = t.shape.as_ref().map(|s| {
            s.dim
                .iter()
                .map(|d| match &d.value {
                    Some(DimValue::DimValue(n)) if *n >= 0 => Dim::Fixed(*n),
                    Some(DimValue::DimParam(p)) => Dim::Symbolic(p.clone()),
                    _ => Dim::Symbolic(String::new()),
                })
                .collect()
        });
        Ok(Port {
            name: v.name().to_string(),
            dtype: elem.map(elem_str).unwrap_or_else(|| "other".into()),
            elem,
            shape: Some(shape.unwrap_or_default()),
        })
    };
    let inits: std::collections::HashSet<&str> = g.initializer.iter().map(|t| t.name()).collect();
    let inputs = g.input.iter().filter(|v| !inits.contains(v.name())).map(port).collect::<Result<_, _>>()?;
    let outputs = g.output.iter().map(port).collect::<Result<_, _>>()?;
    Ok((inputs, outputs))
}

fn elem_from_onnx(t: i32) -> Option<TensorElementType> {
    use tensor_proto::DataType as D;
    use TensorElementType as T;
    let d = D::try_from(t).ok()?;
    Some(match d {
        D::Float => T::Float32,
        D::Double => T::Float64,
        D::Float16 => T::Float16,
        D::Bfloat16 => T::Bfloat16,
        D::Int8 => T::Int8,
        D::Int16 => T::Int16,
        D::Int32 => T::Int32,
        D::Int64 => T::Int64,
        D::Uint8 => T::Uint8,
        D::Uint16 => T::Uint16,
        D::Uint32 => T::Uint32,
        D::Uint64 => T::Uint64,
        D::Bool => T::Bool,
        D::String => T::String,
        _ => return None,
    })
}

/// The ONNX type of a port: fixed dimensions kept, symbolic ones named.
fn port_type(port: &Port, elem: i32) -> super::proto::TypeProto {
    use super::proto::tensor_shape_proto::{dimension::Value as DimValue, Dimension};
    use super::proto::{type_proto, TensorShapeProto, TypeProto};
    let shape = port.shape.as_ref().map(|dims| TensorShapeProto {
        dim: dims
            .iter()
            .map(|d| Dimension {
                value: Some(match d {
                    Dim::Fixed(n) => DimValue::DimValue(*n),
                    Dim::Symbolic(s) => DimValue::DimParam(if s.is_empty() { "?".into() } else { s.clone() }),
                }),
                denotation: None,
            })
            .collect(),
    });
    TypeProto {
        value: Some(type_proto::Value::TensorType(type_proto::Tensor { elem_type: Some(elem), shape })),
        denotation: None,
    }
}

fn check_shape(port: &Port, got: &[usize]) -> Result<(), ModelError> {
    // A patch's mask and new value may take any shape that broadcasts (they
    // are declared without one); ONNX Runtime checks them.
    if port.name.starts_with("assay::mask::")
        || port.name.starts_with("assay::new::")
        || port.name.starts_with("assay::add::")
    {
        return Ok(());
    }
    let Some(dims) = &port.shape else { return Ok(()) };
    let fits = dims.len() == got.len()
        && dims.iter().zip(got).all(|(d, g)| match d {
            Dim::Fixed(n) => *n as usize == *g,
            Dim::Symbolic(_) => true,
        });
    if fits {
        Ok(())
    } else {
        Err(ModelError::Input(format!(
            "input `{}` must have shape {} ({}), got [{}]",
            port.name,
            port.shape_text(),
            port.dtype,
            got.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(", ")
        )))
    }
}

fn to_ort(arr: ArrayD<f32>, port: &Port) -> Result<DynValue, String> {
    use TensorElementType as T;
    let e = |r: ort::Result<DynValue>| r.map_err(|e| e.to_string());
    match port.elem {
        Some(T::Float32) | None => e(Tensor::from_array(arr).map(|t| t.into_dyn())),
        Some(T::Float64) => e(Tensor::from_array(arr.mapv(|x| x as f64)).map(|t| t.into_dyn())),
        Some(T::Int64) => e(Tensor::from_array(arr.mapv(|x| x as i64)).map(|t| t.into_dyn())),
        Some(T::Int32) => e(Tensor::from_array(arr.mapv(|x| x as i32)).map(|t| t.into_dyn())),
        Some(T::Int8) => e(Tensor::from_array(arr.mapv(|x| x as i8)).map(|t| t.into_dyn())),
        Some(T::Uint8) => e(Tensor::from_array(arr.mapv(|x| x as u8)).map(|t| t.into_dyn())),
        Some(T::Bool) => e(Tensor::from_array(arr.mapv(|x| x != 0.0)).map(|t| t.into_dyn())),
        Some(other) => {
            Err(format!("input `{}` takes {} values, which Assay cannot feed yet", port.name, elem_str(other)))
        }
    }
}

fn from_ort(v: &DynValue) -> Result<ArrayD<f32>, String> {
    use TensorElementType as T;
    let ty = match v.dtype() {
        ValueType::Tensor { ty, .. } => *ty,
        other => return Err(format!("is a {other:?}, not a tensor")),
    };
    let e = |err: ort::Error| err.to_string();
    Ok(match ty {
        T::Float32 => v.try_extract_array::<f32>().map_err(e)?.to_owned(),
        T::Float64 => v.try_extract_array::<f64>().map_err(e)?.mapv(|x| x as f32),
        T::Int64 => v.try_extract_array::<i64>().map_err(e)?.mapv(|x| x as f32),
        T::Int32 => v.try_extract_array::<i32>().map_err(e)?.mapv(|x| x as f32),
        T::Int8 => v.try_extract_array::<i8>().map_err(e)?.mapv(|x| x as f32),
        T::Uint8 => v.try_extract_array::<u8>().map_err(e)?.mapv(|x| x as f32),
        T::Bool => v.try_extract_array::<bool>().map_err(e)?.mapv(|x| if x { 1.0 } else { 0.0 }),
        other => return Err(format!("holds {} values, which Assay cannot read yet", elem_str(other))),
    })
}

#[cfg(test)]
#[path = "model_test.rs"]
mod tests;
