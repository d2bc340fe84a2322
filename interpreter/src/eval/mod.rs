//! Evaluation of a checked program. Owns the run's state: scopes, the
//! seed, the trace of tool calls, records, asserts, shown items, files read
//! and artifacts. It writes nothing to disk; `record.rs` does that.

mod call;
mod expr;
mod ops;
mod stmt;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use assay_grammar::{Program, Span};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::code::Code;
use crate::diag::{Diag, SourceFile};
use crate::rhai_module::RhaiModule;
use crate::sandbox::Sandbox;
use crate::tool::Registry;
use crate::value::Value;

/// Where the evaluator is: the byte offset of the statement it started last.
/// A supervisor reads it to say which line a run was on when a budget ended it.
static PROGRESS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The byte offset of the statement being evaluated (in this process).
pub fn progress() -> usize {
    PROGRESS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Deepest chain of script function calls.
pub const MAX_CALL_DEPTH: usize = 200;

pub use crate::trace::TraceEntry;

#[derive(Debug, Clone)]
pub struct AssertOutcome {
    pub passed: bool,
    pub expr: String,
    pub message: Option<String>,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct Shown {
    pub title: Option<String>,
    pub values: Vec<Value>,
    pub line: usize,
}

/// How a run ended, as its manifest and report say it: `ok`,
/// `assert-failed`, `error`, or `partial` for a shard's record (its share
/// of the work, for a merge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    #[default]
    Ok,
    AssertFailed,
    Error,
    Partial,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::AssertFailed => "assert-failed",
            Status::Error => "error",
            Status::Partial => "partial",
        }
    }
    /// How a whole run ended.
    pub fn of(out: &Outcome) -> Status {
        if out.error.is_some() {
            Status::Error
        } else if out.asserts.iter().any(|a| !a.passed) {
            Status::AssertFailed
        } else {
            Status::Ok
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a run produced, whether it finished or stopped at an error.
#[derive(Debug, Default)]
pub struct Outcome {
    pub records: BTreeMap<String, Value>,
    pub asserts: Vec<AssertOutcome>,
    pub shows: Vec<Shown>,
    /// Every tool call, in memory up to a bound (see `crate::trace`).
    pub trace: crate::trace::Trace,
    /// Every file read by the script or its tools: absolute path -> sha256.
    pub inputs: BTreeMap<PathBuf, String>,
    /// The same reads by the path as named, made absolute against the
    /// script's folder without following links (`cur.txt`, not the file it
    /// points to): what a replay must find unchanged, links included.
    pub named_inputs: BTreeMap<String, String>,
    pub artifacts: Vec<(String, Vec<u8>)>,
    pub seed: u64,
    pub error: Option<Diag>,
    /// Tool calls answered from the call cache, and results stored in it.
    pub cache_hits: usize,
    pub cache_stored: usize,
    /// A shard's results for its share of each shardable call.
    pub partials: Vec<crate::shard::Partial>,
    /// The merge: shardable calls it answered from the shards, and those it
    /// ran whole because no shard had run them (`line: tool`).
    pub merged_calls: usize,
    pub merged_whole: Vec<String>,
    /// The run took something no file digest covers: a volatile tool's
    /// answer (a hosted model, the clock) or a folder's listing. Such a run
    /// is never replayed whole from the cache.
    pub outside: bool,
}

/// A runtime failure: message, the span of the failing expression, and the
/// chain of script function calls that led there.
#[derive(Debug, Clone)]
pub(crate) struct RuntimeError {
    pub code: Code,
    pub message: String,
    pub span: Span,
    pub help: Option<String>,
    pub stack: Vec<(String, Span)>,
    /// A diagnostic that points into another file (a rhai module).
    pub foreign: Option<Box<Diag>>,
}

impl RuntimeError {
    pub(crate) fn new(message: impl Into<String>, span: Span) -> Self {
        RuntimeError {
            code: crate::Code::Runtime,
            message: message.into(),
            span,
            help: None,
            stack: Vec::new(),
            foreign: None,
        }
    }
    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    pub(crate) fn code(mut self, code: Code) -> Self {
        self.code = code;
        self
    }

    pub(crate) fn to_diag(&self, file: &Arc<SourceFile>) -> Diag {
        let mut d = match &self.foreign {
            // The error is in a rhai file: point there, and note the script call.
            Some(f) => (**f).clone().note(Diag::new(crate::Code::CalledFrom, "called from the script here").at(
                file,
                self.span,
                "this call",
            )),
            None => Diag::new(self.code, self.message.clone())
                .at(file, self.span, "failed here")
                .maybe_help(self.help.clone()),
        };
        // Consecutive identical frames (recursion) are shown once with a count,
        // and a very deep stack keeps its innermost and outermost frames.
        let mut frames: Vec<(&str, Span, usize)> = Vec::new();
        for (name, span) in &self.stack {
            match frames.last_mut() {
                Some((n, s, count)) if *n == name.as_str() && *s == *span => *count += 1,
                _ => frames.push((name.as_str(), *span, 1)),
            }
        }
        const KEEP: usize = 4;
        let hidden = frames.len().saturating_sub(2 * KEEP);
        for (i, (name, span, count)) in frames.iter().enumerate() {
            if hidden > 0 && i == KEEP {
                d = d.note(Diag::new(crate::Code::CalledFrom, format!("... {hidden} more calls ...")));
            }
            if hidden > 0 && i >= KEEP && i < KEEP + hidden {
                continue;
            }
            let msg = if *count > 1 {
                format!("in `{name}`, called from here ({count} times in a row)")
            } else {
                format!("in `{name}`, called from here")
            };
            d = d.note(Diag::new(crate::Code::CalledFrom, msg).at(file, *span, format!("call to `{name}`")));
        }
        d
    }
}

pub(crate) enum Flow {
    Normal,
    Return(Value),
    Break,
    Continue,
}

pub(crate) type EvalResult<T> = Result<T, RuntimeError>;

struct Frame {
    scopes: Vec<HashMap<String, Value>>,
    captured: Vec<(String, Value)>,
}

/// The state of one execution.
pub(crate) struct Run<'a> {
    pub(crate) file: Arc<SourceFile>,
    pub(crate) registry: &'a Registry,
    pub(crate) sandbox: &'a Sandbox,
    pub(crate) seed: u64,
    frames: Vec<Frame>,
    pub(crate) step: u64,
    pub(crate) out: Outcome,
    /// Files read by the tool call in progress.
    pub(crate) call_inputs: Vec<BTreeMap<String, String>>,
    /// An error raised inside a function value that a tool called; kept so
    /// its span survives the trip through the tool.
    pub(crate) pending: Option<RuntimeError>,
    /// Where tool calls' results are kept between runs, if anywhere.
    pub(crate) cache: Option<&'a dyn crate::cache::CallCache>,
    /// What each tool call in progress did that bears on caching it.
    pub(crate) call_flags: Vec<CallFlags>,
    /// The run's folder, where tools may stream large outputs.
    pub(crate) run_folder: Option<PathBuf>,
    /// Names handed out by `stream_file`.
    pub(crate) streams: Vec<String>,
    pub(crate) shard: Option<&'a crate::shard::ShardMode>,
    /// Shardable calls in progress: only the outermost one is split.
    pub(crate) shardable_depth: usize,
}

/// What a tool call (and the functions it called) did that decides whether
/// its result may be cached.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CallFlags {
    pub rng: bool,
    pub uncacheable: bool,
}

/// What a run has besides its program: values bound before the script
/// starts (an agent's unit under study; the checker was told of them by
/// `prepare_with`), a call cache to answer deterministic tool calls from and
/// store them in (see `cache.rs`), and the run folder tools may stream large
/// outputs into (artifacts/streams/).
#[derive(Default, Clone, Copy)]
pub struct RunOptions<'a> {
    pub bindings: &'a [(String, Value)],
    pub cache: Option<&'a dyn crate::cache::CallCache>,
    pub run_folder: Option<&'a std::path::Path>,
    /// Whole, one shard, or the merge of shards (see `crate::shard`).
    pub shard: Option<&'a crate::shard::ShardMode>,
}

/// Runs a checked program. Never panics on user input; errors end the run
/// and are returned in `Outcome::error`, with everything produced so far.
pub fn execute(
    file: &Arc<SourceFile>,
    program: &Program,
    registry: &Registry,
    sandbox: &Sandbox,
    modules: &HashMap<String, Arc<RhaiModule>>,
    seed: u64,
) -> Outcome {
    execute_with(file, program, registry, sandbox, modules, seed, RunOptions::default())
}

/// As `execute`, with the run's options.
pub fn execute_with(
    file: &Arc<SourceFile>,
    program: &Program,
    registry: &Registry,
    sandbox: &Sandbox,
    modules: &HashMap<String, Arc<RhaiModule>>,
    seed: u64,
    opts: RunOptions,
) -> Outcome {
    let mut run = Run {
        file: file.clone(),
        registry,
        sandbox,
        seed,
        frames: vec![Frame { scopes: vec![HashMap::new()], captured: Vec::new() }],
        step: 0,
        out: Outcome { seed, trace: crate::trace::Trace::spilling_into(opts.run_folder), ..Outcome::default() },
        call_inputs: Vec::new(),
        pending: None,
        cache: opts.cache,
        call_flags: Vec::new(),
        run_folder: opts.run_folder.map(|p| p.to_path_buf()),
        streams: Vec::new(),
        shard: opts.shard,
        shardable_depth: 0,
    };
    for (alias, m) in modules {
        run.define(alias, Value::Module(m.clone()));
    }
    for (name, v) in opts.bindings {
        run.define(name, v.clone());
    }
    let result = run.exec_block_in_place(&program.stmts);
    let mut out = std::mem::take(&mut run.out);
    match result {
        Ok(_) => {}
        Err(e) => out.error = Some(e.to_diag(file).scrubbed(&file.text)),
    }
    out
}

/// The seed a script sets with `seed N`, if any.
pub fn script_seed(program: &Program) -> Option<u64> {
    program.stmts.iter().find_map(|s| match &s.node {
        assay_grammar::StmtKind::Seed(e) => match &e.node {
            assay_grammar::ExprKind::Number(n) if *n >= 0.0 => Some(*n as u64),
            _ => None,
        },
        _ => None,
    })
}

/// Randomness for one step: a pure function of the seed and the step.
pub fn step_rng(seed: u64, step: u64) -> ChaCha8Rng {
    let mut h = Sha256::new();
    h.update(b"assay-step-rng");
    h.update(seed.to_le_bytes());
    h.update(step.to_le_bytes());
    let digest: [u8; 32] = h.finalize().into();
    ChaCha8Rng::from_seed(digest)
}

impl<'a> Run<'a> {
    fn frame(&self) -> &Frame {
        // There is always the top-level frame.
        &self.frames[self.frames.len() - 1]
    }
    fn frame_mut(&mut self) -> &mut Frame {
        let n = self.frames.len() - 1;
        &mut self.frames[n]
    }

    pub(crate) fn define(&mut self, name: &str, v: Value) {
        if let Some(scope) = self.frame_mut().scopes.last_mut() {
            scope.insert(name.to_string(), v);
        }
    }

    pub(crate) fn lookup(&self, name: &str) -> Option<Value> {
        let f = self.frame();
        for scope in f.scopes.iter().rev() {
            if let Some(v) = scope.get(name) {
                return Some(v.clone());
            }
        }
        if let Some((_, v)) = f.captured.iter().rev().find(|(k, _)| k == name) {
            return Some(v.clone());
        }
        if self.frames.len() > 1 {
            if let Some(v) = self.frames[0].scopes[0].get(name) {
                return Some(v.clone());
            }
        }
        None
    }

    /// Reassigns the nearest binding; false if there is none.
    pub(crate) fn assign(&mut self, name: &str, v: Value) -> bool {
        let n = self.frames.len();
        for scope in self.frames[n - 1].scopes.iter_mut().rev() {
            if let Some(slot) = scope.get_mut(name) {
                *slot = v;
                return true;
            }
        }
        if let Some(slot) = self.frames[n - 1].captured.iter_mut().rev().find(|(k, _)| k == name) {
            slot.1 = v;
            return true;
        }
        if n > 1 {
            if let Some(slot) = self.frames[0].scopes[0].get_mut(name) {
                *slot = v;
                // A function that changes a global has an effect a cached
                // answer would skip.
                for f in self.call_flags.iter_mut() {
                    f.uncacheable = true;
                }
                return true;
            }
        }
        false
    }

    /// The digest of the globals that the script functions among `values`
    /// can read (functions read globals live): the names their bodies use,
    /// and, through global functions they name, the names those use.
    pub(crate) fn globals_digest(&self, values: &[Value]) -> String {
        use crate::value::Func;
        let globals = &self.frames[0].scopes[0];
        let mut todo: Vec<Arc<crate::value::Closure>> = Vec::new();
        let walk = |v: &Value, todo: &mut Vec<Arc<crate::value::Closure>>| {
            fn collect(v: &Value, todo: &mut Vec<Arc<crate::value::Closure>>) {
                match v {
                    Value::Func(Func::Script(c)) => {
                        todo.push(c.clone());
                        c.captured.iter().for_each(|(_, x)| collect(x, todo));
                    }
                    Value::List(items) => items.iter().for_each(|x| collect(x, todo)),
                    Value::Record(fields) => fields.values().for_each(|x| collect(x, todo)),
                    _ => {}
                }
            }
            collect(v, todo)
        };
        values.iter().for_each(|v| walk(v, &mut todo));
        let mut seen_fns = std::collections::HashSet::new();
        let mut names = std::collections::BTreeSet::new();
        while let Some(c) = todo.pop() {
            if !seen_fns.insert(Arc::as_ptr(&c.def) as usize) || seen_fns.len() > 10_000 {
                continue;
            }
            for n in crate::scan::mentions_in_fn(&c.def).names {
                if let Some(v) = globals.get(&n) {
                    if names.insert(n) {
                        walk(v, &mut todo);
                    }
                }
            }
        }
        let mut h = Sha256::new();
        for n in names {
            if let Some(v) = globals.get(&n) {
                h.update(n.as_bytes());
                h.update([0]);
                h.update(v.digest().as_bytes());
            }
        }
        hex::encode(h.finalize())
    }

    /// The locals a new closure captures (globals are looked up live).
    pub(crate) fn capture(&self) -> Vec<(String, Value)> {
        let f = self.frame();
        let mut out = f.captured.clone();
        let skip = if self.frames.len() == 1 { 1 } else { 0 };
        for scope in f.scopes.iter().skip(skip) {
            let mut names: Vec<(&String, &Value)> = scope.iter().collect();
            names.sort_by(|a, b| a.0.cmp(b.0));
            out.extend(names.into_iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        out
    }

    pub(crate) fn push_scope(&mut self) {
        self.frame_mut().scopes.push(HashMap::new());
    }
    pub(crate) fn pop_scope(&mut self) {
        self.frame_mut().scopes.pop();
    }

    pub(crate) fn push_frame(&mut self, captured: Vec<(String, Value)>) {
        self.frames.push(Frame { scopes: vec![HashMap::new()], captured });
    }
    pub(crate) fn pop_frame(&mut self) {
        if self.frames.len() > 1 {
            self.frames.pop();
        }
    }
    pub(crate) fn depth(&self) -> usize {
        self.frames.len() - 1
    }

    pub(crate) fn line_of(&self, span: Span) -> usize {
        self.file.line_col(span.start).0
    }
}
