//! The Assay interpreter: name resolution and static checks, evaluation,
//! values, the `Tool` trait and registry, run records, the rhai bridge and
//! the sandbox. It knows nothing of ONNX; tools arrive through the registry.

mod bind;
mod cache;
mod check;
/// The version every run record and call-cache key carries.
pub const ASSAY_VERSION: &str = env!("CARGO_PKG_VERSION");

pub mod code;
pub use code::Code;
mod diag;
mod diff;
mod eval;
mod owner;
mod pipeline;
mod record;
mod report;
mod rhai_bridge;
mod rhai_module;
mod sandbox;
mod scan;
pub mod shard;
mod tensor;
mod tool;
pub mod trace;
mod types;
mod value;

pub use cache::CallCache;
pub use owner::Lease;
pub use pipeline::{prepare, prepare_with, run_script, Prepared, Ran};

/// Calls faster than this many seconds are not stored in the call cache.
pub fn cache_min_seconds() -> f64 {
    cache::MIN_CACHED_SECONDS
}
pub use check::check;
pub use diag::{closest, escape_unsafe, unsafe_for_terminal, Diag, Severity, SourceFile};
pub use diff::{diff_results, Change};
pub use eval::{
    execute, execute_with, progress, script_seed, step_rng, AssertOutcome, Outcome, RunOptions, Shown, Status,
    TraceEntry, MAX_CALL_DEPTH,
};
pub use record::{
    begin_run, canonical, copy_trace, digest_regular, finish_named, finish_run, gunzip, npy_f32, npy_f32_header,
    num_json, open_regular, read_regular, read_regular_following, read_run, read_trace, results_json, run_stem,
    trace_file, trace_jsonl, write_files, write_run, write_shard_files, CallCacheFacts, Manifest, ManifestFile,
    Replayed, RunDir, RunFiles, ScriptId, ShardId, ShardedCall,
};
pub use report::{escape as html_escape, report_html};
pub use rhai_module::RhaiModule;
pub use sandbox::{safe_artifact_name, Sandbox, SandboxError, MAX_READ_BYTES};
pub use scan::{mentions, Mentions};
pub use tensor::{Backing, Tensor};
pub use tool::{
    iter_values, to_numbers, to_tensor, tool_value, Arg, Args, Bound, Category, Default, Name, ParamSpec, Registry,
    Signature, Tool, ToolCtx, ToolError,
};
pub use types::Type;
pub use value::{
    format_f32, format_num, Closure, Func, Handle, HandleKind, Image, Value, MAX_LIST_ITEMS, MAX_STRING_BYTES,
    MAX_TENSOR_ELEMENTS,
};
