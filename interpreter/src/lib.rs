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
mod record;
mod report;
mod rhai_bridge;
mod rhai_module;
mod sandbox;
mod scan;
pub mod shard;
mod tensor;
mod tool;
mod types;
mod value;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use assay_grammar::{Program, StmtKind};
use sha2::{Digest, Sha256};

pub use cache::CallCache;

/// Calls faster than this many seconds are not stored in the call cache.
pub fn cache_min_seconds() -> f64 {
    cache::MIN_CACHED_SECONDS
}
pub use check::check;
pub use diag::{closest, Diag, SourceFile};
pub use diff::{diff_results, Change};
pub use eval::{
    execute, execute_with, progress, script_seed, step_rng, AssertOutcome, Outcome, RunOptions, Shown, Status,
    TraceEntry, MAX_CALL_DEPTH,
};
pub use record::{
    begin_run, canonical, finish_named, finish_run, npy_f32, npy_f32_header, num_json, read_regular, read_run,
    results_json, run_stem, trace_jsonl, write_files, write_run, write_shard_files, CallCacheFacts, Manifest, Replayed,
    RunDir, RunFiles, ScriptId, ShardId, ShardedCall,
};
pub use report::{escape as html_escape, report_html};
pub use rhai_module::RhaiModule;
pub use sandbox::{safe_artifact_name, Sandbox, SandboxError, MAX_READ_BYTES};
pub use scan::{mentions, Mentions};
pub use tensor::{Backing, Tensor};
pub use tool::{
    iter_values, to_numbers, to_tensor, tool_value, Arg, Args, Category, Default, ParamSpec, Registry, Signature, Tool,
    ToolCtx, ToolError,
};
pub use types::Type;
pub use value::{
    format_f32, format_num, Closure, Func, Handle, HandleKind, Image, Value, MAX_LIST_ITEMS, MAX_STRING_BYTES,
};

/// A script parsed, its modules loaded, and checked.
pub struct Prepared {
    pub file: Arc<SourceFile>,
    pub program: Option<Program>,
    pub modules: HashMap<String, Arc<RhaiModule>>,
    /// Module files read: path -> sha256.
    pub inputs: BTreeMap<PathBuf, String>,
    /// Every error found; empty means the script may run.
    pub diags: Vec<Diag>,
}

/// Parses, loads `use`d rhai modules (through the sandbox) and checks.
pub fn prepare(file: &Arc<SourceFile>, registry: &Registry, sandbox: &Sandbox) -> Prepared {
    prepare_with(file, registry, sandbox, &HashMap::new(), &[])
}

/// As `prepare`, with modules bound before the script starts (an agent's
/// black box: the script may call them but cannot rebind their names) and
/// names of values that will be bound (`execute_with`), with their types.
pub fn prepare_with(
    file: &Arc<SourceFile>,
    registry: &Registry,
    sandbox: &Sandbox,
    bound: &HashMap<String, Arc<RhaiModule>>,
    names: &[(String, Type)],
) -> Prepared {
    let mut prepared = Prepared {
        file: file.clone(),
        program: None,
        modules: bound.clone(),
        inputs: BTreeMap::new(),
        diags: Vec::new(),
    };
    let program = match assay_grammar::parse(&file.text) {
        Ok(p) => p,
        Err(e) => {
            prepared.diags.push(Diag::from_syntax(file, &e));
            return prepared;
        }
    };
    for s in &program.stmts {
        if let StmtKind::Use { path, alias } = &s.node {
            if bound.contains_key(&alias.node) {
                prepared.diags.push(
                    Diag::new(crate::Code::Use, format!("`{}` is already bound by the task", alias.node))
                        .at(file, alias.span, "taken")
                        .help("choose another name after `as`"),
                );
                continue;
            }
            if !path.node.ends_with(".rhai") {
                prepared.diags.push(
                    Diag::new(crate::Code::Use, format!("`use` loads rhai files, not `{}`", path.node))
                        .at(file, path.span, "not a .rhai file")
                        .help("write `use \"metrics.rhai\" as m`"),
                );
                continue;
            }
            match sandbox.read(&path.node) {
                Err(e) => prepared
                    .diags
                    .push(Diag::new(crate::Code::Use, e.message()).at(file, path.span, "cannot load").help(e.help())),
                Ok((real, bytes)) => {
                    let digest = hex::encode(Sha256::digest(&bytes));
                    let text = match String::from_utf8(bytes) {
                        Ok(t) => t,
                        Err(_) => {
                            prepared.diags.push(
                                Diag::new(crate::Code::Use, format!("`{}` is not UTF-8 text", path.node))
                                    .at(file, path.span, "not text")
                                    .help("a rhai module must be a UTF-8 text file"),
                            );
                            continue;
                        }
                    };
                    match RhaiModule::load(&alias.node, real.clone(), &path.node, &text, digest.clone()) {
                        Ok(m) => {
                            prepared.inputs.insert(real, digest);
                            prepared.modules.insert(alias.node.clone(), Arc::new(m));
                        }
                        Err(d) => prepared.diags.push(d.note(Diag::new(crate::Code::CalledFrom, "loaded here").at(
                            file,
                            path.span,
                            "this `use`",
                        ))),
                    }
                }
            }
        }
    }
    prepared.diags.extend(check::check_with(file, &program, registry, &prepared.modules, names));
    prepared.program = Some(program);
    prepared
}
