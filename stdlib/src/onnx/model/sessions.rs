//! ONNX Runtime sessions: how each is built (from the digested bytes), and
//! how many rewritten ones a model keeps.

use super::*;
use crate::onnx::error::ModelError;
use crate::onnx::proto::ModelProto;
use crate::onnx::runtime;
use ort::session::Session;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub(super) type Shared = Arc<Mutex<Session>>;

/// Rewritten-model sessions kept per model (besides the unmodified one):
/// at least this many, whatever the model's size...
pub(crate) const MAX_REWRITTEN_SESSIONS: usize = 3;

/// ...and more for small models, up to this many, while their weights'
/// copies stay within [`REWRITTEN_SESSIONS_BYTES`] (a script that switches
/// among a few hook sets should not rebuild a session on every switch).
pub(crate) const MOST_REWRITTEN_SESSIONS: usize = 16;

pub(crate) const REWRITTEN_SESSIONS_BYTES: u64 = 2 << 30;

/// How many rewritten sessions a model of `weight_bytes` keeps.
pub(crate) fn rewritten_sessions_for(weight_bytes: u64) -> usize {
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

pub(super) fn builder(provider: Provider) -> Result<ort::session::builder::SessionBuilder, ModelError> {
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
pub(super) fn session_builder(
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

/// The bytes of a model's weights: its file and its external-data files
/// (or, in memory, the initializers' raw data).
pub(super) fn weight_bytes(path: &Path, proto: &ModelProto) -> u64 {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let external: u64 =
        external_files(proto).iter().map(|f| std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0)).sum();
    let inline: u64 = graph_initializer_bytes(proto);
    file.max(inline) + external
}

pub(super) fn graph_initializer_bytes(proto: &ModelProto) -> u64 {
    proto
        .graph
        .as_ref()
        .map(|g| g.initializer.iter().map(|t| t.raw_data.as_ref().map_or(0, |d| d.len() as u64)).sum())
        .unwrap_or(0)
}
