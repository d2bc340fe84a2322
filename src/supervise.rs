//! Running a script as an untrusted program. `assay run` and `assay verify`
//! never evaluate a script in their own process: they start a child (this
//! same binary, `assay __child`) that checks the script, provisions what it
//! names, lowers its memory limit, closes the kernel sandbox (Landlock:
//! read only the allowed roots, Assay's cache and the system's libraries;
//! write only into the run's unfinished folder; connect only to the
//! configured LLM endpoint's port; execute nothing) and only then runs it.
//! The parent enforces the wall-time budget, reads which line the child is
//! on, and when the child dies (out of memory, out of time, a crash) writes
//! the error run record itself. So a hostile script ends with a diagnostic
//! and a record, never an OOM kill of the caller, a hang or a lost run.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assay_interpreter::shard::{ShardMode, Share};
use assay_interpreter::{
    mentions, prepare, prepare_with, script_seed, trace_jsonl, write_files, CallCacheFacts, Diag, Handle, Manifest,
    Outcome, Registry, RhaiModule, RunFiles, RunOptions, Sandbox, ShardId, ShardedCall, SourceFile, Status, Type,
    Value,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

/// A tool object bound by a task, blinded: it works as the object it wraps
/// (tools reach the object through `as_any`), but says nothing of what it
/// is beyond its kind: no name, no index, no model, no digest to match.
struct Blinded(Arc<dyn Handle>);

impl std::fmt::Debug for Blinded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the {} under study", self.0.kind())
    }
}

impl Handle for Blinded {
    fn kind(&self) -> assay_interpreter::HandleKind {
        self.0.kind()
    }
    fn describe(&self) -> String {
        format!("the {} under study", self.0.kind())
    }
    fn digest(&self) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(format!("blinded:{}", self.0.digest()).as_bytes()))
    }
    fn call_tool(&self) -> Option<&'static str> {
        self.0.call_tool()
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self.0.as_any()
    }
}

/// The handle kinds a task may bind (the checker wants a static name).
fn handle_kind(kind: &str) -> assay_interpreter::HandleKind {
    match kind {
        "model" => assay_interpreter::HandleKind::Model,
        "dataset" => assay_interpreter::HandleKind::Dataset,
        _ => assay_interpreter::HandleKind::Unit,
    }
}

/// The hidden subcommand the child runs.
pub(crate) const CHILD_ARG: &str = "__child";

/// Memory, time and disk a run may use.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Budget {
    /// Bytes of memory the script's work may add (heap and anonymous maps).
    pub memory: u64,
    pub timeout: Duration,
    /// Bytes the run may write into its run folder (artifacts, streamed
    /// captures, staged cache entries), counted as disk blocks in use.
    #[serde(default = "default_disk")]
    pub disk: u64,
}

/// The default disk budget: 10 GiB.
const DEFAULT_DISK: u64 = 10 << 30;

fn default_disk() -> u64 {
    DEFAULT_DISK
}

impl Budget {
    /// Default memory: half the machine's memory (what is left covers the
    /// parent, the system and other work); default time: one hour; default
    /// disk: 10 GiB.
    pub(crate) fn defaults() -> Budget {
        let total = meminfo_total().unwrap_or(8 << 30);
        Budget { memory: total / 2, timeout: Duration::from_secs(3600), disk: DEFAULT_DISK }
    }
}

/// The disk a folder's files take (blocks in use, so a sparse file counts
/// what it holds), without following links; stops counting past `limit`.
fn disk_used(dir: &Path, limit: u64) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    let mut visited = 0usize;
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            visited += 1;
            let Ok(m) = e.path().symlink_metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total = total.saturating_add(m.blocks().saturating_mul(512));
            }
            if total > limit || visited > 1_000_000 {
                return total.max(limit.saturating_add(1));
            }
        }
    }
    total
}

fn meminfo_total() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Parses `512M`, `2G`, `1.5GiB`, `1000000` (bytes).
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("`{s}` is not a size; write e.g. 512M or 4G"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0f64.powi(4),
        _ => return Err(format!("`{s}` has an unknown unit; use K, M, G or T")),
    };
    let bytes = n * mult;
    if !bytes.is_finite() || bytes < (16 << 20) as f64 || bytes > 1e18 {
        return Err(format!("`{s}` is not a usable memory budget (at least 16M)"));
    }
    Ok(bytes as u64)
}

/// Parses `30`, `30s`, `5m`, `2h`, `250ms`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('s') if t.ends_with("ms") => (&t[..t.len() - 2], 0.001),
        Some('s') => (&t[..t.len() - 1], 1.0),
        Some('m') => (&t[..t.len() - 1], 60.0),
        Some('h') => (&t[..t.len() - 1], 3600.0),
        _ => (t, 1.0),
    };
    let n: f64 = num.parse().map_err(|_| format!("`{s}` is not a duration; write e.g. 30s, 5m or 2h"))?;
    let secs = n * mult;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e7 {
        return Err(format!("`{s}` is not a usable time budget"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// What the parent asks the child to do.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Job {
    pub name: String,
    pub text: String,
    /// The folder relative paths resolve against.
    pub base: PathBuf,
    pub roots: Vec<PathBuf>,
    pub seed: Option<u64>,
    /// The unfinished run folder the child writes into (and nowhere else).
    pub out: PathBuf,
    pub budget: Budget,
    pub color: bool,
    /// Test builds only: turn off the in-process checks to show the kernel's.
    pub bypass_checks: bool,
    /// Write the images the script shows to `shown/NN.png` in the run
    /// folder (for an agent's vision model); at most `MAX_SHOWN_IMAGES`.
    #[serde(default)]
    pub save_shown_images: bool,
    /// Assay statements the harness runs before the script (after the
    /// sandbox closes); each `record "name", value` of it is bound as `name`
    /// in the script, blinded (it describes itself as nothing more than its
    /// kind). With the kinds here the script is checked first.
    #[serde(default)]
    pub prelude: Option<(String, Vec<(String, String)>)>,
    /// Tools the script may not call (they would reveal a task's answer).
    #[serde(default)]
    pub deny_tools: Vec<String>,
    /// Black boxes bound before the script starts: (alias, rhai source).
    /// The script can call them; it cannot read them (they are no file).
    #[serde(default)]
    pub bound: Vec<(String, String)>,
    /// Whether tool calls are answered from and stored in the call cache.
    #[serde(default)]
    pub cache: crate::cache::CacheUse,
    /// Networks behind black boxes: (alias, ONNX bytes in base64). The
    /// box's rhai calls `net(x)`, which runs the network in ONNX Runtime;
    /// the bytes reach the child here, never as a file it could read.
    #[serde(default)]
    pub nets: Vec<(String, String)>,
    /// Whole, one shard, or the merge of shards.
    #[serde(default)]
    pub shard: ShardJob,
    /// The key for `describe`'s endpoint: it reaches the child in the job,
    /// never in its environment (which a script may read where the roots
    /// cover /proc). Set by `run_child` from ASSAY_LLM_KEY.
    #[serde(default)]
    pub llm_key: Option<Secret>,
}

/// A secret that is never printed.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// The variables the sandboxed child gets from the caller's environment:
/// what the C library, TLS and ONNX Runtime read, and Assay's own settings
/// less its keys. Everything else (credentials, tokens, the agent's key)
/// stays with the parent.
fn child_may_see(name: &std::ffi::OsStr) -> bool {
    let Some(name) = name.to_str() else { return false };
    const PLAIN: [&str; 14] = [
        "HOME",
        "PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "TERM",
        "NO_COLOR",
        "XDG_CACHE_HOME",
        "LD_LIBRARY_PATH",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "CUDA_VISIBLE_DEVICES",
        "NVIDIA_VISIBLE_DEVICES",
    ];
    PLAIN.contains(&name)
        || name.starts_with("LC_")
        || (name.starts_with("ASSAY_")
            && !name.ends_with("_KEY")
            && !name.contains("SECRET")
            && !name.contains("TOKEN"))
}

impl Job {
    /// A job for `text` (named `name`) read from `base` with `roots`, its
    /// record written into `out`: the whole script, no task (no prelude,
    /// bound boxes or denied tools), no colour, shown images not saved.
    pub(crate) fn new(
        name: String,
        text: String,
        base: PathBuf,
        roots: Vec<PathBuf>,
        out: PathBuf,
        budget: Budget,
        cache: crate::cache::CacheUse,
    ) -> Job {
        Job {
            name,
            text,
            base,
            roots,
            seed: None,
            out,
            budget,
            color: false,
            bypass_checks: false,
            save_shown_images: false,
            prelude: None,
            deny_tools: Vec::new(),
            bound: Vec::new(),
            nets: Vec::new(),
            cache,
            shard: ShardJob::Whole,
            llm_key: None,
        }
    }
}

/// How a run treats its shardable work (see `assay_interpreter::shard`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) enum ShardJob {
    #[default]
    Whole,
    /// Shard `index` of `count`: write a partial record.
    Part { index: usize, count: usize },
    /// Merge: each shard's partials.bin (base64) and, where it stopped
    /// early, why.
    Merge { partials: Vec<String>, stopped: Vec<Option<String>> },
}

/// One `show` as the parent prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ShowOut {
    pub title: Option<String>,
    pub line: usize,
    pub text: String,
}

/// What the child reports at the end, as one JSON line.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Report {
    CheckFailed { rendered: String, diagnostics: Vec<Json> },
    Done(Box<Done>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Done {
    pub status: String,
    pub records: usize,
    pub asserts: usize,
    /// (line, expression, message) of each failed assert.
    pub failed: Vec<(usize, String, Option<String>)>,
    pub tool_calls: usize,
    /// Of them, answered from the call cache.
    #[serde(default)]
    pub cached_calls: usize,
    pub shows: Vec<ShowOut>,
    pub error_rendered: Option<String>,
    pub diagnostics: Vec<Json>,
    pub sandbox: Json,
    /// A shard: its sharded calls as (tool, line), and where it stopped early.
    #[serde(default)]
    pub shard_calls: Vec<(String, usize)>,
    #[serde(default)]
    pub shard_stopped: Option<String>,
    /// A merge: calls answered from the shards, and calls run whole.
    #[serde(default)]
    pub merged_calls: usize,
    #[serde(default)]
    pub merged_whole: Vec<String>,
    /// The run took nothing from outside its files (see
    /// `assay_interpreter::Outcome::outside`): its record may be replayed.
    #[serde(default)]
    pub replayable: bool,
    /// This report is a replay of a kept record (no script ran).
    #[serde(default)]
    pub replayed: bool,
    /// Images among the shown values, all of them (an agent is told how
    /// many of them were not sent).
    #[serde(default)]
    pub shown_images: usize,
    /// The files read, by the path as named (links not followed): what a
    /// replay of this run must find unchanged.
    #[serde(default)]
    pub named_inputs: BTreeMap<String, String>,
}

/// The child's exit code when it ends because its parent is gone.
const ORPHANED: i32 = 125;

/// The most shown images one run writes for an agent.
pub(crate) const MAX_SHOWN_IMAGES: usize = 16;

/// The images among shown values (inside lists and records too), in
/// order: the first `MAX_SHOWN_IMAGES` kept, all of them counted.
fn shown_images<'v>(v: &'v Value, out: &mut Vec<&'v assay_interpreter::Image>, count: &mut usize) {
    match v {
        Value::Image(img) => {
            *count += 1;
            if out.len() < MAX_SHOWN_IMAGES {
                out.push(img);
            }
        }
        Value::List(items) => items.iter().for_each(|x| shown_images(x, out, count)),
        Value::Record(fields) => fields.values().for_each(|x| shown_images(x, out, count)),
        _ => {}
    }
}

/// How much of what a script shows reaches the terminal (all of it is in
/// report.html): a script cannot flood the caller's memory or screen.
const MAX_SHOW_CHARS: usize = 64 * 1024;
const MAX_SHOWS: usize = 1000;

fn clip_text(t: String) -> String {
    match t.char_indices().nth(MAX_SHOW_CHARS) {
        Some((cut, _)) => {
            let more = t[cut..].chars().count();
            format!("{}… ({more} more characters; see report.html)", &t[..cut])
        }
        None => t,
    }
}

/// How a child ended.
pub(crate) enum End {
    Report(Report),
    /// It died or was stopped; the parent wrote the error record.
    Died {
        diag: Box<Diag>,
    },
}

/// The 1-based line of a byte offset.
fn file_line(text: &str, offset: usize) -> usize {
    text.as_bytes().iter().take(offset.min(text.len())).filter(|b| **b == b'\n').count() + 1
}

/// The line a line-less diagnostic is attached to.
fn line_span(text: &str, line: usize) -> assay_grammar::Span {
    let mut start = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let end = start + l.trim_end_matches('\n').len();
            return assay_grammar::Span { start, end: end.max(start) };
        }
        start += l.len();
    }
    assay_grammar::Span { start: 0, end: 0 }
}

fn fmt_bytes(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
    } else {
        format!("{} MiB", b >> 20)
    }
}

/// Starts the child, feeds it the job, enforces the time budget, relays its
/// stderr (escaped) and turns its end into a report or an error record.
pub(crate) fn run_child(job: &Job) -> Result<End, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the assay binary: {e}"))?;
    let mut cmd = Command::new(exe);
    // An allow-list: no secret of the caller's reaches the child (the
    // agent's key is for the harness alone; describe's key comes in the job).
    cmd.arg(CHILD_ARG).env_clear();
    for (k, v) in std::env::vars_os() {
        if child_may_see(&k) {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the sandboxed run: {e}"))?;
    let mut job_json = serde_json::to_value(job).map_err(|e| e.to_string())?;
    if let Some(key) = std::env::var("ASSAY_LLM_KEY").ok().filter(|k| !k.trim().is_empty()) {
        job_json["llm_key"] = json!(key);
    }
    let job_text = job_json.to_string();
    if let Some(mut stdin) = child.stdin.take() {
        // The child reads the whole job before it does anything else.
        let _ = stdin.write_all(job_text.as_bytes());
    }
    let line = Arc::new(Mutex::new(None::<usize>));
    let report = Arc::new(Mutex::new(None::<String>));
    // The reader says when the child's stdout closes (it has exited), so the
    // parent wakes at once instead of polling.
    let (closed_tx, closed_rx) = std::sync::mpsc::channel::<()>();
    let out_thread = child.stdout.take().map(|stdout| {
        let (line, report) = (line.clone(), report.clone());
        std::thread::spawn(move || {
            let _closed = closed_tx;
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = l.strip_prefix("at ").and_then(|n| n.trim().parse().ok()) {
                    if let Ok(mut g) = line.lock() {
                        *g = Some(n);
                    }
                } else if let Some(r) = l.strip_prefix("report ") {
                    if let Ok(mut g) = report.lock() {
                        *g = Some(r.to_string());
                    }
                }
            }
        })
    });
    let tail = Arc::new(Mutex::new(String::new()));
    let err_thread = child.stderr.take().map(|stderr| {
        let tail = tail.clone();
        std::thread::spawn(move || relay_stderr(stderr, &tail))
    });
    let started = Instant::now();
    let mut timed_out = false;
    let mut disk_over = false;
    // Until stdout closes (or the time is up), checking the run folder's
    // size as it goes, then a short poll for the exit.
    loop {
        let left = job.budget.timeout.saturating_sub(started.elapsed());
        match closed_rx.recv_timeout(left.min(Duration::from_millis(250))) {
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        if started.elapsed() > job.budget.timeout {
            break;
        }
        if disk_used(&job.out, job.budget.disk) > job.budget.disk {
            disk_over = true;
            let _ = child.kill();
            break;
        }
    }
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => return Err(format!("lost the sandboxed run: {e}")),
        }
        if started.elapsed() > job.budget.timeout {
            timed_out = true;
            let _ = child.kill();
            match child.wait() {
                Ok(st) => break st,
                Err(e) => return Err(format!("lost the sandboxed run: {e}")),
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    // What the child wrote last (its record) counts too.
    disk_over |= !timed_out && disk_used(&job.out, job.budget.disk) > job.budget.disk;
    if let Some(t) = out_thread {
        let _ = t.join();
    }
    if let Some(t) = err_thread {
        let _ = t.join();
    }
    // Results the child computed are kept even if it died later on.
    crate::cache::publish(&job.out);
    let report_line = report.lock().ok().and_then(|g| g.clone());
    if !timed_out && !disk_over && status.success() {
        if let Some(r) = report_line {
            return serde_json::from_str(&r).map(End::Report).map_err(|e| format!("the sandboxed run's report: {e}"));
        }
    }
    // The child died or was stopped: say why, where, and leave a record.
    let tail = tail.lock().map(|t| t.clone()).unwrap_or_default();
    let line = line.lock().ok().and_then(|g| *g).map(|offset| file_line(&job.text, offset));
    let (code, message, help) = if disk_over {
        (
            assay_interpreter::Code::BudgetDisk,
            format!(
                "the script wrote more than its disk budget of {} into its run folder and was stopped",
                fmt_bytes(job.budget.disk)
            ),
            "write less (fewer or smaller artifacts and streamed captures), or give it more with --disk".to_string(),
        )
    } else {
        died_reason(timed_out, &status, &tail, &job.budget)
    };
    let file = SourceFile::new(job.name.clone(), job.text.clone());
    let where_ = line.map(|l| format!(" (it was running line {l})")).unwrap_or_default();
    let mut diag = Diag::new(code, format!("{message}{where_}")).help(help);
    if let Some(l) = line {
        diag = diag.at(&file, line_span(&job.text, l), "running here");
    }
    let mut out = Outcome { error: Some(diag.clone()), seed: job.seed.unwrap_or(0), ..Outcome::default() };
    let mut manifest = Manifest::of(&out, &job.name, &job.text, &job.base, &job.roots);
    manifest.sandbox = Some(
        json!({"ended": code, "memory_budget": job.budget.memory, "timeout_seconds": job.budget.timeout.as_secs_f64(), "disk_budget": job.budget.disk}),
    );
    let files = RunFiles::of(&file, &mut out, &manifest);
    // Whatever the child left half-written is replaced by the error record.
    let _ = std::fs::remove_dir_all(&job.out);
    write_files(&job.out, &files).map_err(|e| format!("cannot write the error record: {e}"))?;
    Ok(End::Died { diag: Box::new(diag) })
}

fn died_reason(
    timed_out: bool,
    status: &std::process::ExitStatus,
    tail: &str,
    budget: &Budget,
) -> (assay_interpreter::Code, String, String) {
    use std::os::unix::process::ExitStatusExt;
    if timed_out {
        return (
            assay_interpreter::Code::BudgetTime,
            format!("the script ran past its time budget of {:.0} s and was stopped", budget.timeout.as_secs_f64()),
            "make the script do less (fewer items, smaller batches), or give it more time with --timeout".into(),
        );
    }
    if tail.contains("memory allocation of") || tail.contains("cannot allocate memory") || status.signal() == Some(9) {
        return (
            assay_interpreter::Code::BudgetMemory,
            format!("the script used up its memory budget of {} and was stopped", fmt_bytes(budget.memory)),
            "make the script hold less at once (smaller tensors and lists, batch:), or raise the budget with --memory"
                .into(),
        );
    }
    if tail.contains("overflowed its stack") {
        return (
            assay_interpreter::Code::BudgetStack,
            "the script nested too deeply (its stack ran out) and was stopped".into(),
            "flatten deeply nested lists or recursion".into(),
        );
    }
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (_, Some(s)) => format!("signal {s}"),
        _ => "an unknown status".into(),
    };
    (
        assay_interpreter::Code::Crashed,
        format!("the sandboxed run ended without a result ({how})"),
        "this is a bug in Assay; please report it with the script".into(),
    )
}

/// Forwards the child's stderr with control characters escaped, keeping the
/// last few kilobytes to explain a death.
fn relay_stderr(mut stderr: impl Read, tail: &Mutex<String>) {
    let mut buf = [0u8; 4096];
    let mut err = std::io::stderr();
    loop {
        let n = match stderr.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let text = String::from_utf8_lossy(&buf[..n]);
        // The runtime's own last words on an exhausted budget are explained
        // by the diagnostic that follows; everything else is passed on.
        let shown: String = text
            .split_inclusive('\n')
            .filter(|l| {
                !l.starts_with("memory allocation of")
                    && !l.contains("has overflowed its stack")
                    && !l.starts_with("fatal runtime error")
            })
            .collect();
        let _ = err.write_all(crate::out::escape_controls(&shown).as_bytes());
        if let Ok(mut t) = tail.lock() {
            t.push_str(&text);
            if t.len() > 8192 {
                let cut = t.len() - 8192;
                let cut = (cut..t.len()).find(|i| t.is_char_boundary(*i)).unwrap_or(t.len());
                t.replace_range(..cut, "");
            }
        }
    }
}

/// What the kernel sandbox enforced, for the manifest and the tests.
fn restrict(job: &Job, runtime_library: Option<&Path>) -> Json {
    use landlock::{
        Access, AccessFs, AccessNet, NetPort, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
    };
    let abi = ABI::V6;
    let read = AccessFs::from_read(abi);
    let mut readable: Vec<PathBuf> = job.roots.clone();
    readable.push(assay_stdlib::fetch::cache_dir());
    readable.push(crate::cache::dir());
    if let Some(dir) = runtime_library.and_then(Path::parent) {
        readable.push(dir.to_path_buf());
    }
    // The system's libraries and what the C library and ONNX Runtime read
    // about the machine; /etc only file by file (never /etc/shadow).
    for p in [
        "/usr/lib",
        "/usr/lib64",
        "/lib",
        "/lib64",
        "/usr/share/zoneinfo",
        "/etc/ld.so.cache",
        "/etc/localtime",
        "/etc/resolv.conf",
        "/etc/hosts",
        "/etc/nsswitch.conf",
        "/etc/gai.conf",
        "/etc/ssl/certs",
        // Not /proc/self as a whole: /proc/self/environ holds the LLM key.
        "/proc/self/cgroup",
        "/proc/self/mountinfo",
        "/proc/self/status",
        "/proc/cpuinfo",
        "/proc/meminfo",
        "/proc/stat",
        "/sys/devices/system/cpu",
        "/sys/fs/cgroup",
        "/dev/null",
        "/dev/urandom",
    ] {
        readable.push(PathBuf::from(p));
    }
    let writable = vec![job.out.clone()];
    let llm_port = std::env::var("ASSAY_LLM_URL").ok().and_then(|u| endpoint_port(&u));
    // Test builds can pretend the kernel has no Landlock, to check that the
    // run says so instead of going on silently.
    let pretend_missing = cfg!(debug_assertions) && std::env::var_os("ASSAY_TEST_PRETEND_NO_LANDLOCK").is_some();
    let restrict = || -> Result<landlock::RestrictionStatus, landlock::RulesetError> {
        let mut rs = Ruleset::default()
            .handle_access(AccessFs::from_all(abi))?
            .handle_access(AccessNet::from_all(abi))?
            .scope(Scope::from_all(abi))?
            .create()?
            .add_rules(landlock::path_beneath_rules(&readable, read))?
            .add_rules(landlock::path_beneath_rules(&writable, AccessFs::from_all(abi) & !AccessFs::Execute))?
            .add_rules(landlock::path_beneath_rules(["/dev/null"], AccessFs::WriteFile))?;
        if let Some(port) = llm_port {
            rs = rs.add_rule(NetPort::new(port, AccessNet::ConnectTcp))?;
        }
        rs.restrict_self()
    };
    let result = if pretend_missing { Ok(RulesetStatus::NotEnforced) } else { restrict().map(|st| st.ruleset) };
    let net = match llm_port {
        Some(p) => format!("TCP connect to port {p} only (the configured ASSAY_LLM_URL)"),
        None => "no TCP connect or bind".into(),
    };
    match result {
        Ok(status) => {
            let level = match status {
                RulesetStatus::FullyEnforced => "enforced",
                RulesetStatus::PartiallyEnforced => "partially enforced (this kernel lacks some Landlock features)",
                RulesetStatus::NotEnforced => "not available on this kernel",
            };
            if status != RulesetStatus::FullyEnforced {
                eprintln!("note: the kernel sandbox (Landlock) is {level}; in-process checks still apply");
            }
            json!({
                "landlock": level,
                "read": readable.iter().filter(|p| p.exists()).map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "write": "this run's unfinished folder only",
                "execute": "nothing",
                "network": net,
                "memory_budget": job.budget.memory,
                "timeout_seconds": job.budget.timeout.as_secs_f64(),
            })
        }
        Err(e) => {
            eprintln!("note: the kernel sandbox (Landlock) could not be set up ({e}); in-process checks still apply");
            json!({"landlock": format!("not enforced: {e}"), "memory_budget": job.budget.memory, "timeout_seconds": job.budget.timeout.as_secs_f64()})
        }
    }
}

/// The TCP port of an http(s) URL.
fn endpoint_port(url: &str) -> Option<u16> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let port = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once("]:").map(|(_, p)| p),
        None => host_port.rsplit_once(':').map(|(_, p)| p),
    };
    match port.and_then(|p| p.parse().ok()) {
        Some(p) => Some(p),
        None if scheme.eq_ignore_ascii_case("https") => Some(443),
        None => Some(80),
    }
}

/// Memory the process has mapped for data now (VmData), in bytes.
fn data_in_use() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines().find(|l| l.starts_with("VmData:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn show_text(v: &Value) -> String {
    match v {
        Value::List(items) if items.len() > 1 && items.iter().all(|x| matches!(x, Value::Record(_))) => {
            items.iter().map(|x| token_profile(x).unwrap_or_else(|| x.to_text())).collect::<Vec<_>>().join("\n")
        }
        other => token_profile(other).unwrap_or_else(|| other.to_text()),
    }
}

/// A unit's values on a text (a record with `tokens` and `activations` of
/// one length) shown token beside value, wrapped: how a person reads which
/// token drives it.
fn token_profile(v: &Value) -> Option<String> {
    let Value::Record(f) = v else { return None };
    let (Some(Value::List(tokens)), Some(values)) = (f.get("tokens"), f.get("activations")) else { return None };
    let values: Vec<f64> = match values {
        Value::List(xs) => {
            xs.iter().map(|x| if let Value::Num(n) = x { Some(*n) } else { None }).collect::<Option<_>>()?
        }
        _ => return None,
    };
    if tokens.len() != values.len() || !tokens.iter().all(|t| matches!(t, Value::Str(_))) {
        return None;
    }
    let mut out = String::new();
    if let Some(Value::Str(t)) = f.get("text") {
        out.push_str(&format!("{:?}", t.as_ref()));
    }
    if let (Some(Value::Num(m)), Some(Value::Num(at))) = (f.get("max"), f.get("at")) {
        let tok = tokens.get(*at as usize).map(|t| t.to_text()).unwrap_or_default();
        let m = assay_interpreter::format_num((m * 1000.0).round() / 1000.0);
        out.push_str(&format!(" max {m} at token {} {tok:?}", *at as usize));
    }
    let mut line = String::from("  ");
    for (t, v) in tokens.iter().zip(&values) {
        let cell = format!("{:?} {}", t.to_text(), assay_interpreter::format_num((v * 1000.0).round() / 1000.0));
        if line.chars().count() + cell.chars().count() > 100 && !line.trim().is_empty() {
            out.push('\n');
            out.push_str(line.trim_end());
            line = String::from("  ");
        }
        line.push_str(&cell);
        line.push_str(" | ");
    }
    out.push('\n');
    out.push_str(line.trim_end().trim_end_matches('|').trim_end());
    Some(out.trim_start_matches('\n').to_string())
}

fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// `net(x)` for a black box: the network (one input [N, 1], one output
/// [N, 1]) is loaded from memory on the first call, after the sandbox has
/// closed, and run on one number at a time.
fn net_fn(bytes: Vec<u8>) -> impl Fn(f64) -> Result<f64, String> + Send + Sync + 'static {
    let model: std::sync::OnceLock<Result<assay_stdlib::onnx::model::Model, String>> = std::sync::OnceLock::new();
    move |x: f64| {
        let m = model
            .get_or_init(|| {
                assay_stdlib::onnx::model::Model::load_bytes("net", &bytes, assay_stdlib::onnx::model::Provider::Cpu)
                    .map_err(String::from)
            })
            .as_ref()
            .map_err(|e| e.clone())?;
        let input = m.inputs.first().map(|p| p.name.clone()).ok_or("the network has no input")?;
        let output = m.outputs.first().map(|p| p.name.clone()).ok_or("the network has no output")?;
        let feed = ndarray::ArrayD::from_shape_vec(vec![1, 1], vec![x as f32]).map_err(|e| e.to_string())?;
        let out = m.run(
            &assay_stdlib::onnx::model::HookSet::Plain,
            || Err(assay_stdlib::onnx::error::ModelError::Graph("the network is run as it is".into())),
            vec![(input, feed)],
            std::slice::from_ref(&output),
        )?;
        out.get(&output)
            .and_then(|t| t.iter().next())
            .map(|v| f64::from(*v))
            .ok_or_else(|| "the network gave no value".into())
    }
}

/// The child: check, provision, restrict, run, write the record, report.
/// A shard's end: its partial record (partials.bin, script, trace, a
/// manifest whose status is `partial`), never a results.json. What the
/// script did after its sharded calls (it went on with its share's results
/// alone) is not kept; where it stopped with an error is noted.
fn finish_shard(ran: &assay_interpreter::Ran, out_dir: &Path, share: Share, sandbox: Json) -> u8 {
    let (file, out) = (&ran.file, &ran.outcome);
    let stopped = out.error.as_ref().map(|d| {
        let line = d.span.map(|s| file.line_col(s.start).0);
        match line {
            Some(l) => format!("stopped at line {l}: {}", d.message),
            None => format!("stopped: {}", d.message),
        }
    });
    let bytes = match assay_interpreter::shard::encode_partials(&out.partials) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let calls: Vec<(String, usize)> = out.partials.iter().map(|p| (p.tool.clone(), p.line)).collect();
    let manifest = Manifest {
        status: "partial".to_string(),
        tool_calls: None,
        shard: Some(ShardId { index: share.index, count: share.count }),
        sharded_calls: Some(calls.iter().map(|(tool, line)| ShardedCall { tool: tool.clone(), line: *line }).collect()),
        partials_sha256: Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))),
        stopped: stopped.clone(),
        sandbox: Some(sandbox),
        ..ran.manifest()
    }
    .to_json();
    if let Err(e) = assay_interpreter::write_shard_files(out_dir, &file.text, &bytes, &trace_jsonl(out), &manifest) {
        eprintln!("error: cannot write the shard's record: {e}");
        return 1;
    }
    let done = Done {
        status: "partial".to_string(),
        records: 0,
        asserts: 0,
        failed: Vec::new(),
        tool_calls: out.trace.len(),
        cached_calls: out.cache_hits,
        shows: Vec::new(),
        error_rendered: None,
        diagnostics: Vec::new(),
        sandbox: Json::Null,
        shard_calls: calls,
        shard_stopped: stopped,
        merged_calls: 0,
        merged_whole: Vec::new(),
        replayable: false,
        replayed: false,
        shown_images: 0,
        named_inputs: BTreeMap::new(),
    };
    emit(&format!("report {}", serde_json::to_string(&Report::Done(Box::new(done))).unwrap_or_default()));
    0
}

pub(crate) fn child_main(mut registry: Registry) -> u8 {
    // The child dies with its parent: an orphan (the parent was killed, or
    // stopped by a signal) is reparented, and then ends within 100 ms
    // instead of running on to its budget.
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(100));
        if std::os::unix::process::parent_id() != parent {
            std::process::exit(ORPHANED);
        }
    });
    // A panic (a bug) says where the script was before the process ends.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        emit(&format!("at {}", assay_interpreter::progress()));
        default_hook(info);
    }));
    let mut text = String::new();
    if std::io::stdin().read_to_string(&mut text).is_err() {
        return 2;
    }
    let mut job: Job = match serde_json::from_str(&text) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: the sandboxed run's job is malformed: {e}");
            return 2;
        }
    };
    assay_stdlib::llm::set_key(job.llm_key.take().map(|k| k.0));
    let file = SourceFile::new(job.name.clone(), job.text.clone());
    let mut sandbox = match Sandbox::with_roots(&job.base, &job.roots) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: the script's folder cannot be used: {e}");
            return 2;
        }
    };
    if job.bypass_checks && cfg!(debug_assertions) {
        sandbox = sandbox.bypass_checks_for_kernel_test();
    }
    let mut bound = std::collections::HashMap::new();
    for (alias, text) in &job.bound {
        let digest = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(text.as_bytes()))
        };
        match RhaiModule::load_opaque(alias, text, digest) {
            Ok(mut m) => {
                if let Some((_, b64)) = job.nets.iter().find(|(a, _)| a == alias) {
                    use base64::Engine as _;
                    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(b64) else {
                        eprintln!("error: the network behind `{alias}` is not valid base64");
                        return 2;
                    };
                    m.register_native("net", net_fn(bytes));
                }
                bound.insert(alias.clone(), Arc::new(m));
            }
            Err(d) => {
                eprintln!("error: {}", d.message);
                return 2;
            }
        }
    }
    // The prelude uses the full registry; the script gets it less the denied tools.
    let full = assay_stdlib::registry();
    for t in &job.deny_tools {
        registry.remove(t);
    }
    let registry = &registry;
    let kinds: Vec<(String, Type)> = job
        .prelude
        .iter()
        .flat_map(|(_, names)| names.iter())
        .map(|(n, kind)| (n.clone(), Type::Handle(handle_kind(kind))))
        .collect();
    let prelude = match &job.prelude {
        Some((text, _)) => {
            let pp = prepare(&SourceFile::new("<task>", text.clone()), &full, &sandbox);
            if let Err(diags) = pp.checked() {
                eprintln!("error: the task's prelude does not check: {:?}", diags.first().map(|d| d.message.clone()));
                return 2;
            }
            Some(pp)
        }
        None => None,
    };
    let prepared = prepare_with(&file, registry, &sandbox, &bound, &kinds);
    let program = match prepared.checked() {
        Ok(p) => p,
        Err(diags) => {
            let rendered: String =
                diags.iter().map(|d| if job.color { d.render_color(100) } else { d.render_plain(100) }).collect();
            let diagnostics = diags.iter().map(|d| d.to_json()).collect();
            let r = Report::CheckFailed { rendered, diagnostics };
            emit(&format!("report {}", serde_json::to_string(&r).unwrap_or_default()));
            return 0;
        }
    };
    // Provisioning writes the cache, so it happens before the sandbox closes.
    let mut named = mentions(program);
    if let Some(p) = prelude.as_ref().and_then(|pp| pp.checked().ok()) {
        let m = mentions(p);
        named.names.extend(m.names);
        named.strings.extend(m.strings);
    }
    if !job.nets.is_empty() {
        // A box's network runs in ONNX Runtime: provision it like `onnx` would.
        named.names.insert("onnx".to_string());
    }
    let provisioned = assay_stdlib::provision::provision_for(&named, &full);
    for p in &provisioned.problems {
        eprintln!("note: could not provision {p}");
    }
    // The budget counts what the script adds to what is mapped now.
    let limit = data_in_use().saturating_add(job.budget.memory);
    let _ = rlimit::setrlimit(rlimit::Resource::DATA, limit, limit);
    let _ = rlimit::setrlimit(rlimit::Resource::CORE, 0, 0);
    let _ = rlimit::setrlimit(rlimit::Resource::FSIZE, 16 << 30, 16 << 30);
    let cache = crate::cache::ChildCache::new(job.cache, &job.out);
    let sandbox_facts = restrict(&job, provisioned.runtime_library.as_deref());
    // Threads started after restrict_self inherit the sandbox.
    std::thread::spawn(move || {
        let mut last = usize::MAX;
        loop {
            let at = assay_interpreter::progress();
            if at != last {
                emit(&format!("at {at}"));
                last = at;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let seed = job.seed.or_else(|| script_seed(program)).unwrap_or(0);
    // The prelude runs inside the sandbox too; what it records is bound, blinded.
    let mut bindings = Vec::new();
    let mut prelude_inputs = BTreeMap::new();
    if let Some(pp) = &prelude {
        let Ok(ran) = pp.execute(&full, &sandbox, Some(seed), RunOptions::default()) else { return 2 };
        let pout = ran.outcome;
        if let Some(e) = &pout.error {
            eprintln!("error: the task's prelude failed: {}", e.message);
            return 2;
        }
        for (k, v) in pout.records {
            let v = match v {
                Value::Handle(h) => Value::Handle(Arc::new(Blinded(h))),
                other => other,
            };
            bindings.push((k, v));
        }
        prelude_inputs = pout.inputs;
    }
    let shard_mode = match &job.shard {
        ShardJob::Whole => ShardMode::Whole,
        ShardJob::Part { index, count } => match Share::new(*index, *count) {
            Ok(s) => ShardMode::Part(s),
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        },
        ShardJob::Merge { partials, stopped } => {
            use base64::Engine as _;
            let mut shards = Vec::with_capacity(partials.len());
            for (i, b64) in partials.iter().enumerate() {
                let parts = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| e.to_string())
                    .and_then(|b| assay_interpreter::shard::decode_partials(&b));
                match parts {
                    Ok(p) => shards.push(p),
                    Err(e) => {
                        eprintln!("error: shard {i}'s partials.bin: {e}");
                        return 2;
                    }
                }
            }
            ShardMode::Merge { shards, stopped: stopped.clone() }
        }
    };
    let opts = RunOptions {
        bindings: &bindings,
        cache: cache.as_ref().map(|c| c as &dyn assay_interpreter::CallCache),
        run_folder: Some(&job.out),
        shard: Some(&shard_mode),
    };
    let Ok(mut ran) = prepared.execute(registry, &sandbox, Some(seed), opts) else { return 2 };
    if let Some(c) = &cache {
        c.finish();
    }
    ran.outcome.inputs.extend(prelude_inputs);
    if let ShardMode::Part(share) = shard_mode {
        return finish_shard(&ran, &job.out, share, sandbox_facts);
    }
    let mut manifest = ran.manifest();
    manifest.onnxruntime = assay_stdlib::onnx::runtime::loaded().map(|rt| {
        json!({"version": rt.runtime.version, "threads": rt.threads, "library": rt.runtime.library.display().to_string()})
    });
    manifest.sandbox = Some(sandbox_facts.clone());
    if let ShardMode::Merge { shards, .. } = &shard_mode {
        let out = &ran.outcome;
        manifest.merged =
            Some(json!({"shards": shards.len(), "answered": out.merged_calls, "ran_whole": out.merged_whole}));
    }
    let (mode, answered, stored) = match job.cache {
        crate::cache::CacheUse::Off => ("off", None, None),
        crate::cache::CacheUse::On => ("on", Some(ran.outcome.cache_hits), Some(ran.outcome.cache_stored)),
        crate::cache::CacheUse::Refresh => ("bypassed: every call ran", None, Some(ran.outcome.cache_stored)),
    };
    manifest.call_cache = Some(CallCacheFacts { mode: mode.to_string(), answered, stored });
    if let Err(e) = ran.write(&job.out, &manifest) {
        eprintln!("error: cannot write the run record: {e}");
        return 1;
    }
    let out = &ran.outcome;
    let mut shown_count = 0;
    if job.save_shown_images {
        let mut images = Vec::new();
        for sh in &out.shows {
            sh.values.iter().for_each(|v| shown_images(v, &mut images, &mut shown_count));
        }
        let dir = job.out.join("shown");
        if !images.is_empty() && std::fs::create_dir_all(&dir).is_ok() {
            for (i, img) in images.iter().enumerate() {
                if let Ok(png) = img.to_png_fast() {
                    let _ = std::fs::write(dir.join(format!("{:02}.png", i + 1)), png);
                }
            }
        }
    }
    let status = Status::of(out);
    let done = Done {
        status: status.as_str().to_string(),
        records: out.records.len(),
        asserts: out.asserts.len(),
        // Clipped like shows: a script cannot flood the caller with asserts.
        failed: out
            .asserts
            .iter()
            .filter(|a| !a.passed)
            .take(MAX_SHOWS)
            .map(|a| (a.line, clip_text(a.expr.clone()), a.message.clone().map(clip_text)))
            .collect(),
        tool_calls: out.trace.len(),
        cached_calls: out.cache_hits,
        shows: out
            .shows
            .iter()
            .take(MAX_SHOWS)
            .map(|sh| ShowOut {
                title: sh.title.clone().map(clip_text),
                line: sh.line,
                text: clip_text(sh.values.iter().map(show_text).collect::<Vec<_>>().join("\n")),
            })
            .collect(),
        error_rendered: out.error.as_ref().map(|d| if job.color { d.render_color(100) } else { d.render_plain(100) }),
        diagnostics: out.error.iter().map(|d| d.to_json()).collect(),
        sandbox: sandbox_facts,
        shard_calls: Vec::new(),
        shard_stopped: None,
        merged_calls: out.merged_calls,
        merged_whole: out.merged_whole.clone(),
        replayable: !out.outside && out.error.is_none() && out.partials.is_empty(),
        replayed: false,
        shown_images: shown_count,
        named_inputs: out.named_inputs.clone(),
    };
    emit(&format!("report {}", serde_json::to_string(&Report::Done(Box::new(done))).unwrap_or_default()));
    0
}
