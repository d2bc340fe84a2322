//! ONNX Runtime sessions: how each is built (from the digested bytes), and
//! how many rewritten ones a model keeps.

use super::*;
use crate::onnx::error::ModelError;
use crate::onnx::proto::ModelProto;
use crate::onnx::runtime;
use ort::session::Session;
use std::collections::HashMap;
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

/// Rewritten sessions a CPU model keeps at least, whatever its size: its
/// sessions share one copy of the large weights (ONNX Runtime's shared
/// initializers and prepacked weights), so a session costs its graph and
/// small constants. A script that alternates attribution patching (a
/// backward session) with head sweeps (patching and capture sessions)
/// would otherwise rebuild a session on every call; on SmolLM2 six kept
/// sessions made such a script's warm AtP calls 28x faster than three
/// (5.0 s to 0.18 s) and its rounds 1.7x, at no higher peak memory
/// (2.15 GB against 2.24 GB).
pub(crate) const SHARED_REWRITTEN_SESSIONS: usize = 6;

/// How many rewritten sessions a model of `weight_bytes` keeps; `shared`
/// where its sessions share the weights (CPU).
pub(crate) fn rewritten_sessions_for(weight_bytes: u64, shared: bool) -> usize {
    let fit = REWRITTEN_SESSIONS_BYTES / weight_bytes.max(1);
    let least = if shared { SHARED_REWRITTEN_SESSIONS } else { MAX_REWRITTEN_SESSIONS };
    (fit as usize).clamp(least, MOST_REWRITTEN_SESSIONS)
}

/// Which rewriting of the graph a session runs: the key of the sessions a
/// model keeps (one each, the most recent few; see
/// [`rewritten_sessions_for`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HookSet {
    /// The graph as loaded.
    Plain,
    /// These tensors exposed as outputs (sorted, no repeats).
    Capture(Vec<String>),
    /// One tensor reduced inside the graph.
    Reduce { op: String, axes: Vec<i64>, tensor: String },
    /// These tensors patchable (`mask*new + (1-mask)*orig`) and these
    /// exposed, and whether only the last position is computed.
    Patch { patched: Vec<String>, capture: Vec<String>, last_position: bool },
    /// These tensors patchable and these steerable (`orig + vector`).
    PatchAdd { patched: Vec<String>, added: Vec<String> },
    /// The backward graph from a metric on `tensor` to each of `wrt`.
    Grad { wrt: Vec<String>, tensor: String },
    /// These tensors patchable, and the backward graph from a metric on
    /// `tensor` to each patch's mask.
    PatchGrad { patched: Vec<String>, tensor: String },
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

/// Models with weights of at least this many bytes run without ONNX
/// Runtime's prepacked weights: a prepacked copy is a second copy of the
/// weights beside the shared values (which ONNX Runtime cannot free, as it
/// frees its own after packing). Measured on SmolLM2-135M (540 MB, below
/// it): without prepacking a script of AtP and head sweeps peaked at 1.64
/// GB instead of 2.17 GB (0.76x), its warm calls 1.05x-1.26x slower and
/// its session builds faster. For the 1-8B models where memory decides
/// what fits, the copy is the larger cost; `ASSAY_PREPACK=1` or `0` decides
/// for every model instead.
pub(crate) const PREPACK_BELOW: u64 = 1 << 30;

/// Whether a model of `weight_bytes` runs with prepacked weights.
pub(crate) fn prepack_for(weight_bytes: u64) -> bool {
    match std::env::var("ASSAY_PREPACK").ok().as_deref().map(str::trim) {
        Some("1") => true,
        Some("0") => false,
        _ => weight_bytes < PREPACK_BELOW,
    }
}

pub(super) fn builder(provider: Provider, prepack: bool) -> Result<ort::session::builder::SessionBuilder, ModelError> {
    let rt = runtime::runtime().map_err(ModelError::Runtime)?;
    let mut b = Session::builder(&rt.env).map_err(|e| ModelError::Runtime(e.to_string()))?;
    if !prepack {
        b = b.with_config_entry("session.disable_prepacking", "1").map_err(|e| ModelError::Runtime(e.to_string()))?;
    }
    match provider {
        // ONNX Runtime's arena unless `ASSAY_ARENA=0` (see `runtime::arena`
        // for what it costs and saves).
        Provider::Cpu => b
            .with_execution_providers([ort::ep::CPU::default().with_arena_allocator(runtime::arena()).build()])
            .map_err(|e| ModelError::Runtime(e.to_string())),
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
    prepack: bool,
) -> Result<ort::session::builder::SessionBuilder, ModelError> {
    // A bare file name's folder is the current one (ONNX Runtime refuses
    // an empty folder for external weights).
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.display().to_string(),
        _ => ".".to_string(),
    };
    let mut b = builder(provider, prepack)?
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

pub(super) use super::stream::{INLINE_AT_MOST, SHARE_AT_LEAST};

/// The external-data files of a model, read once each: from the bytes as
/// digested (`weights`), else from beside the model (Assay's own cache).
struct Files<'w> {
    dir: &'w Path,
    weights: &'w [(String, Arc<[u8]>)],
    read: HashMap<String, Option<Arc<[u8]>>>,
}

impl<'w> Files<'w> {
    fn new(path: &'w Path, weights: &'w [(String, Arc<[u8]>)]) -> Files<'w> {
        Files { dir: path.parent().unwrap_or(Path::new(".")), weights, read: HashMap::new() }
    }

    /// An initializer's bytes: inline, or its slice of an external file.
    fn bytes(&mut self, t: &crate::onnx::proto::TensorProto) -> Option<Vec<u8>> {
        if t.data_location.unwrap_or(0) != 1 {
            return t.raw_data.clone();
        }
        let (data, range) = self.external(t)?;
        Some(data[range].to_vec())
    }

    /// An external initializer's file and its range in it (not copied).
    fn external(&mut self, t: &crate::onnx::proto::TensorProto) -> Option<(Arc<[u8]>, std::ops::Range<usize>)> {
        let get = |k: &str| t.external_data.iter().find(|e| e.key() == k).map(|e| e.value().to_string());
        let (file, offset, length) = (get("location")?, get("offset"), get("length"));
        let (weights, dir) = (self.weights, self.dir);
        let data = self
            .read
            .entry(file.clone())
            .or_insert_with(|| {
                weights
                    .iter()
                    .find(|(n, _)| *n == file)
                    .map(|(_, b)| b.clone())
                    .or_else(|| crate::fetch::read_cached(&dir.join(&file)).ok().map(Arc::<[u8]>::from))
            })
            .clone()?;
        let offset: usize = offset.and_then(|o| o.parse().ok()).unwrap_or(0);
        let length: usize = match length.and_then(|l| l.parse().ok()) {
            Some(l) => l,
            // No length: the tensor's own size.
            None => {
                let size = match t.data_type() {
                    2 | 3 | 9 => 1,
                    4 | 5 | 10 | 16 => 2,
                    1 | 6 | 12 => 4,
                    7 | 11 | 13 => 8,
                    _ => return None,
                };
                t.dims.iter().map(|d| usize::try_from(*d).ok()).product::<Option<usize>>()?.checked_mul(size)?
            }
        };
        let range = offset..offset.checked_add(length)?;
        data.get(range.clone())?;
        Some((data, range))
    }
}

/// The model's float initializers of [`SHARE_AT_LEAST`] bytes or more as
/// ONNX Runtime values: inline ones from the graph, external ones from the
/// weights as digested (`weights`) or the file beside the model. One that
/// cannot be read stays with the session.
pub(super) fn shared_weights(
    proto: &ModelProto,
    path: &Path,
    weights: &[(String, Arc<[u8]>)],
) -> Vec<(String, Arc<ort::value::DynValue>)> {
    let Some(g) = proto.graph.as_ref() else { return Vec::new() };
    let mut files = Files::new(path, weights);
    // A model read from Assay's cache (a built-in) streams its files.
    let mut streamed = if weights.is_empty() { streamed_from_cache(proto, path) } else { None };
    let mut out = Vec::new();
    for t in &g.initializer {
        if t.data_type() != 1 {
            continue;
        }
        // External bytes are read in place (no copy of the slice first).
        let (file, inline);
        let bytes: &[u8] = if t.data_location.unwrap_or(0) == 1 {
            if let Some(values) = streamed.as_mut() {
                if let Some(v) = values.remove(t.name()) {
                    out.push((t.name().to_string(), v));
                }
                continue;
            }
            let Some((data, range)) = files.external(t) else { continue };
            file = data;
            &file[range]
        } else {
            let Some(raw) = t.raw_data.as_ref() else { continue };
            inline = raw;
            inline
        };
        if bytes.len() < SHARE_AT_LEAST || !bytes.len().is_multiple_of(4) {
            continue;
        }
        let shape: Vec<i64> = t.dims.clone();
        if shape.iter().map(|d| usize::try_from(*d).unwrap_or(0)).product::<usize>() * 4 != bytes.len() {
            continue;
        }
        let floats: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        if let Ok(v) = ort::value::Tensor::from_array((shape, floats)) {
            out.push((t.name().to_string(), Arc::new(v.into_dyn())));
        }
    }
    out
}

/// The shared float values of a model whose external-data files sit in
/// Assay's cache (a built-in model), each file streamed once (see
/// `stream.rs`): no copy of a file is held while they are made. `None`
/// where a file is not in the cache or cannot be streamed.
fn streamed_from_cache(proto: &ModelProto, path: &Path) -> Option<HashMap<String, Arc<ort::value::DynValue>>> {
    let files = external_files(proto);
    if files.is_empty() {
        return None;
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut out = HashMap::new();
    for f in &files {
        let mut plan = super::stream::WeightStream::plan(proto, f)?;
        crate::fetch::stream_cached(&dir.join(f), &mut |c| plan.feed(c)).ok()?;
        out.extend(plan.finish(f).ok()?.shared);
    }
    Some(out)
}

/// `proto` with every external initializer that `shared` does not cover
/// made inline, from the weights as digested: a session built from it with
/// the shared values reads no external data at all (ONNX Runtime only
/// checks that the files named for the shared ones exist; their bytes come
/// from the values), so the digested files need not be kept. `None` where
/// that would copy more than [`INLINE_AT_MOST`] into the graph (large
/// non-float weights) or an initializer cannot be read.
pub(super) fn inline_unshared(
    proto: &ModelProto,
    path: &Path,
    weights: &[(String, Arc<[u8]>)],
    shared: &[(String, Arc<ort::value::DynValue>)],
) -> Option<ModelProto> {
    let covered: std::collections::HashSet<&str> = shared.iter().map(|(n, _)| n.as_str()).collect();
    let mut out = proto.clone();
    let g = out.graph.as_mut()?;
    let mut files = Files::new(path, weights);
    let mut copied = 0u64;
    for t in g.initializer.iter_mut() {
        if t.data_location.unwrap_or(0) != 1 || covered.contains(t.name()) {
            continue;
        }
        let bytes = files.bytes(t)?;
        copied += bytes.len() as u64;
        if copied > INLINE_AT_MOST {
            return None;
        }
        t.raw_data = Some(bytes);
        t.external_data.clear();
        t.data_location = None;
    }
    Some(out)
}

/// `b` with the model's shared weights (those `proto` has) and its
/// prepacked-weights container.
pub(super) fn share(
    mut b: ort::session::builder::SessionBuilder,
    proto: &ModelProto,
    shared: &[(String, Arc<ort::value::DynValue>)],
    prepacked: &ort::session::builder::PrepackedWeights,
) -> Result<ort::session::builder::SessionBuilder, ModelError> {
    b = b.with_prepacked_weights(prepacked).map_err(|e| ModelError::Runtime(e.to_string()))?;
    let names: std::collections::HashSet<&str> =
        proto.graph.iter().flat_map(|g| g.initializer.iter().map(|t| t.name())).collect();
    for (name, value) in shared.iter().filter(|(n, _)| names.contains(n.as_str())) {
        b = b.with_initializer(name, value.clone()).map_err(|e| ModelError::Runtime(e.to_string()))?;
    }
    Ok(b)
}
