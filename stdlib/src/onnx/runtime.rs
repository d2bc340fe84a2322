//! ONNX Runtime with no manual setup. The shared library is found (an
//! explicit variable, Assay's cache, a Python onnxruntime install) or the
//! pinned PyPI wheel is fetched with pip, checked against its sha256, and
//! the library extracted into the cache. Every step says what it did.

#![allow(
    clippy::disallowed_methods,
    reason = "provisioning: fetches, checks and reads what goes into Assay's cache, before any script runs"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::fetch::cache_dir;

pub const ORT_VERSION: &str = "1.31.1";
const WHEEL_SHA256: &str = "5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f";
const LIB_FILE: &str = "libonnxruntime.so.1.31.1";
const LIB_IN_WHEEL: &str = "onnxruntime/capi/libonnxruntime.so.1.31.1";
const SHARED_PROVIDERS_IN_WHEEL: &str = "onnxruntime/capi/libonnxruntime_providers_shared.so";
/// The oldest library the `api-31` bindings accept.
const MIN_MINOR: u32 = 31;

/// The library in use and how it was found.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub library: PathBuf,
    /// One sentence for the user: "found in ...", "fetched ... and cached".
    pub how: String,
    pub version: String,
}

fn lib_version(path: &Path) -> Option<(u32, u32, u32)> {
    let name = path.file_name()?.to_str()?;
    let v = name.strip_prefix("libonnxruntime.so.")?;
    let mut it = v.split('.').map(|x| x.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

fn version_ok(path: &Path) -> bool {
    matches!(lib_version(path), Some((1, minor, _)) if minor >= MIN_MINOR)
}

fn from_env() -> Option<Result<Runtime, String>> {
    for var in ["ASSAY_ORT_LIB", "ORT_DYLIB_PATH"] {
        if let Some(p) = std::env::var_os(var) {
            let path = PathBuf::from(p);
            if !path.is_file() {
                return Some(Err(format!("{var} is set to {}, which is not a file", path.display())));
            }
            let version =
                lib_version(&path).map(|(a, b, c)| format!("{a}.{b}.{c}")).unwrap_or_else(|| "unknown".into());
            return Some(Ok(Runtime { how: format!("from ${var}"), library: path, version }));
        }
    }
    None
}

fn cached() -> Option<Runtime> {
    let path = cache_dir().join("onnxruntime").join(ORT_VERSION).join(LIB_FILE);
    path.is_file().then(|| Runtime {
        how: format!("cached at {}", path.display()),
        library: path,
        version: ORT_VERSION.into(),
    })
}

/// A Python onnxruntime (1.31 or newer) already on the machine.
fn from_python() -> Option<Runtime> {
    let out = Command::new("python3")
        .args(["-c", "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("capi");
    let mut libs: Vec<PathBuf> =
        std::fs::read_dir(&dir).ok()?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| version_ok(p)).collect();
    libs.sort();
    let library = libs.pop()?;
    let version = lib_version(&library).map(|(a, b, c)| format!("{a}.{b}.{c}"))?;
    Some(Runtime {
        how: format!("found the Python onnxruntime {version} install at {}", library.display()),
        library,
        version,
    })
}

const WHEEL: crate::fetch::Pinned = crate::fetch::Pinned {
    name: "onnxruntime",
    version: ORT_VERSION,
    file: "onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl",
    sha256: WHEEL_SHA256,
};

/// Downloads the pinned wheel (PyPI is reachable where crates.io is) and
/// extracts the library into the cache.
fn fetch() -> Result<Runtime, String> {
    use crate::fetch;
    let dest_dir = cache_dir().join("onnxruntime").join(ORT_VERSION);
    let wheel = fetch::pypi(&WHEEL, Some("manylinux_2_28_x86_64"))?;
    // The providers library first: the main library's presence means both are there.
    for (inner, name) in [(SHARED_PROVIDERS_IN_WHEEL, "libonnxruntime_providers_shared.so"), (LIB_IN_WHEEL, LIB_FILE)] {
        fetch::write_atomic(&dest_dir.join(name), &fetch::zip_member(&wheel, inner)?)?;
    }
    let library = dest_dir.join(LIB_FILE);
    Ok(Runtime {
        how: format!(
            "fetched onnxruntime {ORT_VERSION} from PyPI (sha256 checked) and cached it at {}",
            library.display()
        ),
        library,
        version: ORT_VERSION.into(),
    })
}

/// Finds or fetches the library, without loading it.
pub fn provision() -> Result<Runtime, String> {
    if let Some(r) = from_env() {
        return r;
    }
    if let Some(r) = cached() {
        return Ok(r);
    }
    if let Some(r) = from_python() {
        return Ok(r);
    }
    fetch()
}

/// The library in use and ONNX Runtime's environment (one per process).
pub struct Loaded {
    pub runtime: Runtime,
    pub env: ort::environment::Environment,
    /// Intra-op threads of the shared pool (see [`threads`]).
    pub threads: usize,
}

/// The size of ONNX Runtime's shared thread pool: `ASSAY_THREADS` if set
/// (above 0), else the CPUs this process may use — its affinity mask and
/// cgroup quota (`std::thread::available_parallelism`), and no more than
/// SLURM's `SLURM_CPUS_PER_TASK` where a job sets it. (ONNX Runtime's own
/// default counts the machine's cores, and so oversubscribes a job given
/// a share of them.)
pub fn threads() -> usize {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.trim().parse::<usize>().ok()).filter(|n| *n > 0);
    if let Some(n) = env("ASSAY_THREADS") {
        return n;
    }
    let usable = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    env("SLURM_CPUS_PER_TASK").map_or(usable, |slurm| slurm.min(usable))
}

/// Whether the pool's idle threads spin waiting for work: off unless
/// `ASSAY_SPIN=1`. Spinning wins a little on an idle machine and loses a
/// lot on a shared one (the spinning threads take the cores other
/// processes, and the pool's own busy threads, need).
pub fn spinning() -> bool {
    std::env::var("ASSAY_SPIN").is_ok_and(|v| v.trim() == "1")
}

/// Whether CPU sessions keep ONNX Runtime's memory arena: on unless
/// `ASSAY_ARENA=0`. Without it every run asks the system for its
/// activations afresh, and fresh pages cost: measured side by side (release
/// build, this repository's 2-core machine), EfficientNet-Lite0's plain
/// batch of 16 took 0.076 s with the arena (Python ONNX Runtime 0.075 s)
/// and 0.126 s without, SmolLM2's sweeps script 17.7 s against 22.3 s and
/// the peer suite's script 43-46 s against 49-54 s at the same peak memory
/// (1.59 GB). The cost is memory where a run keeps many sessions with large
/// activations: each session's arena keeps its largest run's activations
/// for the session's life (examples/class_mistakes.assay peaked at 1.01 GB
/// with it, 0.58 GB without, and ran 1.34x faster).
pub fn arena() -> bool {
    !std::env::var("ASSAY_ARENA").is_ok_and(|v| v.trim() == "0")
}

static RUNTIME: OnceLock<Result<Loaded, String>> = OnceLock::new();

/// The runtime, if this process has loaded it (for the run manifest).
pub fn loaded() -> Option<&'static Loaded> {
    RUNTIME.get().and_then(|r| r.as_ref().ok())
}

/// Loads ONNX Runtime once per process and creates its environment.
pub fn runtime() -> Result<&'static Loaded, String> {
    RUNTIME
        .get_or_init(|| {
            let rt = provision().map_err(|e| {
                format!("ONNX Runtime is not available: {e}. Set ASSAY_ORT_LIB to a libonnxruntime.so (1.31 or newer), or make `pip download` work")
            })?;
            let builder = ort::init_from(&rt.library).map_err(|e| format!("cannot load {}: {e}", rt.library.display()))?;
            // ONNX Runtime's own log lines would interleave with a script's output;
            // its errors come back as values. ASSAY_ORT_LOG=1 shows them.
            let show = std::env::var_os("ASSAY_ORT_LOG").is_some();
            let logger: ort::logging::LoggerFunction = std::sync::Arc::new(move |level, _cat, _id, loc, msg| {
                if show {
                    eprintln!("onnxruntime {level:?} {loc}: {msg}");
                }
            });
            // One thread pool shared by every session: a run holds a session per
            // hook set, and separate pools would compete for the cores.
            let threads = threads();
            let pool = ort::environment::GlobalThreadPoolOptions::default()
                .with_intra_threads(threads)
                .and_then(|p| p.with_spin_control(spinning()))
                .map_err(|e| format!("ONNX Runtime's thread pool ({threads} threads): {e}"))?;
            let env = builder
                .with_name("assay")
                .with_logger(logger)
                .with_global_thread_pool(pool)
                .build()
                .map_err(|e| format!("cannot start ONNX Runtime: {e}"))?;
            Ok(Loaded { runtime: rt, env, threads })
        })
        .as_ref()
        .map_err(|e| e.clone())
}
