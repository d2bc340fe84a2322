//! A loaded model: its protobuf, its digest, and ONNX Runtime sessions, one
//! per hook set (the unmodified model, a capture of some tensors, a patch),
//! created on first use and kept for the run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use ort::session::builder::PrepackedWeights;
use ort::session::Session;

use super::error::ModelError;
use super::graph;
use super::proto::ModelProto;

mod hooks;
mod ports;
mod run;
mod sessions;
mod stream;
pub use ports::*;
use run::*;
pub use sessions::*;
pub use stream::{Streamed, WeightStream};

pub struct Model {
    /// The path as the script wrote it.
    pub display: String,
    pub path: PathBuf,
    pub sha256: String,
    /// Rewritten sessions kept (see [`rewritten_sessions_for`]).
    pub keep_sessions: usize,
    /// Whether its sessions prepack weights (see [`prepack_for`]).
    pub prepack: bool,
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
    /// The model's large float weights as ONNX Runtime values, made once
    /// and handed to every CPU session (ONNX Runtime's shared initializers:
    /// a session uses the value instead of its own copy), so a run holds
    /// one copy of the weights however many hook sets it builds sessions
    /// for.
    shared: OnceLock<Vec<(String, Arc<ort::value::DynValue>)>>,
    /// The weights ONNX Runtime repacks for its kernels, shared the same
    /// way across this model's sessions.
    prepacked: OnceLock<PrepackedWeights>,
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

impl Model {
    /// Every tensor of the graph a script can name (inputs, initializers
    /// and node outputs), in graph order.
    pub fn sites(&self) -> Vec<super::graph::Site> {
        super::graph::sites(&self.proto)
    }

    /// A model error as a tool's error, blamed by its kind on parameter
    /// `inputs` (the feeds) or `tensors` (a tensor named or used), with the
    /// closest name the model has for an unknown tensor.
    pub fn blame(
        &self,
        e: ModelError,
        inputs: assay_interpreter::Name,
        tensors: assay_interpreter::Name,
    ) -> assay_interpreter::ToolError {
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
        // ONNX Runtime is loaded (from the provisioned library) before any
        // of its values is made.
        super::runtime::runtime().map_err(ModelError::Runtime)?;
        // The plain session shares its weights with every rewritten one too.
        let shared =
            (provider == Provider::Cpu).then(|| (shared_weights(&proto, path, &weights), PrepackedWeights::new()));
        // On the CPU, with the large float weights shared, the rest inline
        // (from the digested bytes): no session reads external data, so the
        // digested files are not kept (they would be a third copy of the
        // weights, beside the shared values and ONNX Runtime's prepacked
        // ones). The plain session is built from the graph as given,
        // likewise inlined.
        let lean = shared.as_ref().filter(|_| !weights.is_empty()).and_then(|(values, _)| {
            let plain = inline_unshared(&graph::decode(bytes).ok()?, path, &weights, values)?;
            Some((inline_unshared(&proto, path, &weights, values)?, graph::encode(&plain)))
        });
        let (proto, plain_bytes, weights) = match lean {
            Some((proto, plain)) => (proto, Some(plain), Vec::new()),
            None => (proto, None, weights),
        };
        let sharing = shared.as_ref().map(|(v, p)| (v.as_slice(), p));
        let session =
            plain_session(provider, path, &proto, &weights, sharing, plain_bytes.as_deref().unwrap_or(bytes))?;
        let mut m = Model::from_session(path, display, sha256, proto, Some(session), provider);
        m.weights = weights;
        if let Some((values, prepacked)) = shared {
            m.keep_shared(values, prepacked);
        }
        Ok(m)
    }

    /// A model whose external weights were read as streams (see
    /// `stream.rs`), on the CPU: the float weights arrive as the values
    /// every session shares, the rest put inline, so no session reads
    /// external data and no copy of the files is kept.
    pub fn load_streamed(
        path: &Path,
        display: &str,
        bytes: &[u8],
        sha256: String,
        streamed: Streamed,
    ) -> Result<Model, ModelError> {
        let proto = super::attention::canonicalize(graph::decode(bytes)?);
        super::runtime::runtime().map_err(ModelError::Runtime)?;
        let Streamed { shared, inline } = streamed;
        let proto = stream::inline_streamed(&proto, &inline);
        let plain = graph::encode(&stream::inline_streamed(&graph::decode(bytes)?, &inline));
        drop(inline);
        let prepacked = PrepackedWeights::new();
        let session = plain_session(Provider::Cpu, path, &proto, &[], Some((&shared, &prepacked)), &plain)?;
        let m = Model::from_session(path, display, sha256, proto, Some(session), Provider::Cpu);
        m.keep_shared(shared, prepacked);
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
        let mut b = builder(provider, prepack_for(bytes.len() as u64))?;
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
            keep_sessions: rewritten_sessions_for(weight_bytes(path, &proto), provider == Provider::Cpu),
            prepack: prepack_for(weight_bytes(path, &proto)),
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
            shared: OnceLock::new(),
            prepacked: OnceLock::new(),
        }
    }

    /// Keeps the weights every session of the model shares (CPU).
    fn keep_shared(&self, values: Vec<SharedValue>, prepacked: PrepackedWeights) {
        let _ = self.shared.set(values);
        let _ = self.prepacked.set(prepacked);
    }

    /// The outputs' names and types of a rewritten graph that is never run
    /// (the graph with every tensor exposed, for their types): a session
    /// built without graph optimisation or prepacked weights, sharing the
    /// weights, and dropped at once. Types come from ONNX Runtime's type
    /// inference, which optimisation never changes. SmolLM2's table took
    /// 0.51 s with an optimised, kept session and 0.11-0.14 s so (release
    /// build), and no longer takes a place among the kept sessions.
    fn output_types(&self, proto: &ModelProto) -> Result<Vec<Port>, ModelError> {
        let bytes = graph::encode(proto);
        let mut b = session_builder(self.provider, &self.path, &self.weights, false)?
            .with_optimization_level(ort::session::builder::GraphOptimizationLevel::Disable)
            .map_err(|e| ModelError::Runtime(e.to_string()))?;
        if self.provider == Provider::Cpu {
            let prepacked = self.prepacked.get_or_init(PrepackedWeights::new);
            let shared = self.shared.get_or_init(|| shared_weights(&self.proto, &self.path, &self.weights));
            b = share(b, proto, shared, prepacked)?;
        }
        let s = b
            .commit_from_memory(&bytes)
            .map_err(|e| ModelError::Graph(format!("ONNX Runtime rejected the rewritten model: {e}")))?;
        Ok(s.outputs().iter().map(|o| Port::from_outlet(o.name(), o.dtype())).collect())
    }

    /// The session for a hook set, building the rewritten model on first use.
    fn session(
        &self,
        key: &HookSet,
        make: impl FnOnce() -> Result<ModelProto, ModelError>,
    ) -> Result<Shared, ModelError> {
        let mut map = self.sessions.lock().map_err(|_| midway())?;
        if let Some(s) = map.get(key) {
            // The least recently used rewritten session goes first.
            let mut order = self.order.lock().map_err(|_| midway())?;
            if let Some(i) = order.iter().position(|k| k == key) {
                let k = order.remove(i);
                order.push(k);
            }
            return Ok(s.clone());
        }
        let proto = make()?;
        let bytes = graph::encode(&proto);
        let mut b = session_builder(self.provider, &self.path, &self.weights, self.prepack)?;
        if self.provider == Provider::Cpu {
            let prepacked = self.prepacked.get_or_init(PrepackedWeights::new);
            let shared = self.shared.get_or_init(|| shared_weights(&self.proto, &self.path, &self.weights));
            b = share(b, &proto, shared, prepacked)?;
        }
        let s = b
            .commit_from_memory(&bytes)
            .map_err(|e| ModelError::Graph(format!("ONNX Runtime rejected the rewritten model: {e}")))?;
        let s = Arc::new(Mutex::new(s));
        if *key == HookSet::Plain {
            // The unmodified model's session (deferred) is kept for the run.
            map.insert(HookSet::Plain, s.clone());
            return Ok(s);
        }
        // A session shares the large float weights but holds its own small
        // ones and its optimised graph: keep the unmodified
        // model and only the most recently used rewritten ones.
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
}

/// The session of the graph as loaded, built from `plain` (its bytes, the
/// weights no session shares inline where they were read) with the
/// external weights `weights` and, on the CPU, the shared values.
fn plain_session(
    provider: Provider,
    path: &Path,
    proto: &ModelProto,
    weights: &[(String, Arc<[u8]>)],
    shared: Option<(&[SharedValue], &PrepackedWeights)>,
    plain: &[u8],
) -> Result<Session, ModelError> {
    let mut b = session_builder(provider, path, weights, prepack_for(weight_bytes(path, proto)))?;
    if let Some((values, prepacked)) = shared {
        b = share(b, proto, values, prepacked)?;
    }
    b.commit_from_memory(plain).map_err(|e| ModelError::Graph(format!("ONNX Runtime cannot load the model: {e}")))
}

/// A weight every session of a model shares, by its initializer's name.
type SharedValue = (String, Arc<ort::value::DynValue>);

/// A session's lock poisoned by a call that panicked.
fn midway() -> ModelError {
    ModelError::Runtime("a previous model call failed midway".into())
}

#[cfg(test)]
mod tests;
