//! The parent's side: start the child, feed it the job, enforce the time
//! and disk budgets, relay its stderr, and turn its end into a report or an
//! error record.

use super::*;
use assay_interpreter::{write_files, Diag, Manifest, Outcome, RunFiles, SourceFile};
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The variables the sandboxed child gets from the caller's environment:
/// what the C library, TLS and ONNX Runtime read, and Assay's own settings
/// less its keys. Everything else (credentials, tokens, the agent's key)
/// stays with the parent.
pub(super) fn child_may_see(name: &std::ffi::OsStr) -> bool {
    let Some(name) = name.to_str() else { return false };
    const PLAIN: [&str; 15] = [
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
        // The job's CPU share, which sizes ONNX Runtime's thread pool.
        "SLURM_CPUS_PER_TASK",
    ];
    PLAIN.contains(&name)
        || name.starts_with("LC_")
        || (name.starts_with("ASSAY_")
            && !name.ends_with("_KEY")
            && !name.contains("SECRET")
            && !name.contains("TOKEN"))
}

/// The 1-based line of a byte offset.
pub(super) fn file_line(text: &str, offset: usize) -> usize {
    text.as_bytes().iter().take(offset.min(text.len())).filter(|b| **b == b'\n').count() + 1
}

/// The line a line-less diagnostic is attached to.
pub(super) fn line_span(text: &str, line: usize) -> assay_grammar::Span {
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

/// The stop signals the parent catches while a child runs.
const STOP_SIGNALS: [i32; 3] = [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP];

/// The signal that asked Assay to stop while a child ran (0: none), and
/// whether no child runs now (then a stop signal does what it always does).
struct Stops {
    signal: Arc<AtomicUsize>,
    idle: Arc<AtomicBool>,
    /// How many children run now (a benchmark runs several at once).
    running: Mutex<usize>,
}

/// Installed by the first child a process starts (never by `interrupted`).
static STOPS: OnceLock<Stops> = OnceLock::new();

fn stops() -> &'static Stops {
    STOPS.get_or_init(|| {
        let stops = Stops {
            signal: Arc::new(AtomicUsize::new(0)),
            idle: Arc::new(AtomicBool::new(true)),
            running: Mutex::new(0),
        };
        for sig in STOP_SIGNALS {
            // With no child running, the default action (the process ends);
            // with one, the signal is noted and the wait loop stops the
            // child and writes the record that says so.
            let _ = signal_hook::flag::register_conditional_default(sig, stops.idle.clone());
            let _ = signal_hook::flag::register_usize(sig, stops.signal.clone(), sig as usize);
        }
        stops
    })
}

/// The signal that stopped a run, if one did: the command then ends with
/// 128 + its number, as a shell expects.
pub fn interrupted() -> Option<i32> {
    let stops = STOPS.get()?;
    Some(stops.signal.load(Ordering::SeqCst) as i32).filter(|s| *s != 0)
}

/// Marks a child as running for as long as it lives; idle again however
/// `run_child` returns.
struct Running;

impl Running {
    fn start() -> Running {
        let stops = stops();
        if let Ok(mut n) = stops.running.lock() {
            *n += 1;
            stops.idle.store(false, Ordering::SeqCst);
        }
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let stops = stops();
        if let Ok(mut n) = stops.running.lock() {
            *n = n.saturating_sub(1);
            stops.idle.store(*n == 0, Ordering::SeqCst);
        }
    }
}

/// The `assay` executable that runs scripts as the sandboxed child, when
/// it is not this program (a library caller, a test harness).
static EXECUTABLE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Runs children with `exe` (an `assay` binary) instead of this program.
/// A program that uses this library without being `assay` calls it once,
/// before the first run; later calls are refused (the first one stays, so a
/// replay key never mixes two executables), returning the one in use.
pub fn use_executable(exe: PathBuf) -> Result<(), PathBuf> {
    EXECUTABLE.set(exe).map_err(|_| EXECUTABLE.get().cloned().unwrap_or_default())
}

/// The executable children run: the one given to [`use_executable`], else
/// this program.
pub fn executable() -> std::io::Result<PathBuf> {
    match EXECUTABLE.get() {
        Some(p) => Ok(p.clone()),
        None => std::env::current_exe(),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        signal_hook::consts::SIGINT => "SIGINT (Ctrl-C)",
        signal_hook::consts::SIGTERM => "SIGTERM",
        signal_hook::consts::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// Starts the child, feeds it the job, enforces the time budget, relays its
/// stderr (escaped) and turns its end into a report or an error record.
pub fn run_child(job: &Job) -> Result<End, String> {
    if let Some(sig) = interrupted() {
        return Err(format!("Assay was stopped by {}", signal_name(sig)));
    }
    // From here a stop signal is the parent's to handle: it stops the
    // child and writes the record, rather than leave a half-written folder.
    let _running = Running::start();
    let mut child = start_child(job)?;
    let mut heard = Heard::listen(&mut child);
    let ended = wait_for(&mut child, job, &heard.closed)?;
    heard.join();
    // Results the child computed are kept even if it died later on.
    crate::cache::publish(&job.out);
    let report_line = heard.report.lock().ok().and_then(|g| g.clone());
    if !ended.timed_out && !ended.disk_over && ended.status.success() {
        if let Some(r) = report_line {
            return serde_json::from_str(&r).map(End::Report).map_err(|e| format!("the sandboxed run's report: {e}"));
        }
    }
    let tail = heard.tail.lock().map(|t| t.clone()).unwrap_or_default();
    let line = heard.line.lock().ok().and_then(|g| *g).map(|offset| file_line(&job.text, offset));
    died_record(job, &ended, &tail, line)
}

/// The child process, started with an allow-listed environment and given
/// its job on stdin.
fn start_child(job: &Job) -> Result<std::process::Child, String> {
    let exe = executable().map_err(|e| format!("cannot find the assay binary: {e}"))?;
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
    if interrupted().is_some() {
        // The signal came while the child was being started.
        let _ = child.kill();
    }
    let mut job_json = serde_json::to_value(job).map_err(|e| e.to_string())?;
    if let Some(key) = std::env::var("ASSAY_LLM_KEY").ok().filter(|k| !k.trim().is_empty()) {
        job_json["llm_key"] = json!(key);
    }
    if let Some(mut stdin) = child.stdin.take() {
        // The child reads the whole job before it does anything else.
        let _ = stdin.write_all(job_json.to_string().as_bytes());
    }
    Ok(child)
}

/// What the parent hears from the child: the script offset it runs (`at
/// N`), its report, the tail of its stderr (relayed, escaped), and when
/// its stdout closes (it has exited), so the parent wakes at once instead
/// of polling.
struct Heard {
    line: Arc<Mutex<Option<usize>>>,
    report: Arc<Mutex<Option<String>>>,
    tail: Arc<Mutex<String>>,
    closed: std::sync::mpsc::Receiver<()>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Heard {
    fn listen(child: &mut std::process::Child) -> Heard {
        let line = Arc::new(Mutex::new(None::<usize>));
        let report = Arc::new(Mutex::new(None::<String>));
        let tail = Arc::new(Mutex::new(String::new()));
        let (closed_tx, closed) = std::sync::mpsc::channel::<()>();
        let mut threads = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            let (line, report) = (line.clone(), report.clone());
            threads.push(std::thread::spawn(move || {
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
            }));
        }
        if let Some(stderr) = child.stderr.take() {
            let tail = tail.clone();
            threads.push(std::thread::spawn(move || relay_stderr(stderr, &tail)));
        }
        Heard { line, report, tail, closed, threads }
    }

    /// Waits until both streams are read to their end.
    fn join(&mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// How the child ended, and whether the parent stopped it.
struct Ended {
    status: std::process::ExitStatus,
    timed_out: bool,
    disk_over: bool,
}

/// Waits for the child within the time budget: until its stdout closes
/// (or the time is up, or a stop signal came), checking the run folder's
/// size as it goes, then a short poll for the exit.
fn wait_for(
    child: &mut std::process::Child,
    job: &Job,
    closed: &std::sync::mpsc::Receiver<()>,
) -> Result<Ended, String> {
    let started = Instant::now();
    let mut timed_out = false;
    let mut disk_over = false;
    let mut disk_checked = Instant::now();
    loop {
        let left = job.budget.timeout.saturating_sub(started.elapsed());
        match closed.recv_timeout(left.min(Duration::from_millis(50))) {
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        if interrupted().is_some() {
            let _ = child.kill();
            break;
        }
        if started.elapsed() > job.budget.timeout {
            break;
        }
        if disk_checked.elapsed() < Duration::from_millis(250) {
            continue;
        }
        disk_checked = Instant::now();
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
        if interrupted().is_some() {
            let _ = child.kill();
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
    Ok(Ended { status, timed_out, disk_over })
}

/// The child died or was stopped: says why and where (`line`, from what it
/// last said; `tail`, its last stderr) and replaces whatever it left
/// half-written with an error record.
fn died_record(job: &Job, ended: &Ended, tail: &str, line: Option<usize>) -> Result<End, String> {
    // A stop signal the child got itself (Ctrl-C reaches the whole process
    // group) counts as one, even where the parent's note of it comes later.
    let stopped = interrupted().or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        ended.status.signal().filter(|s| STOP_SIGNALS.contains(s))
    });
    let (code, message, help) = if let Some(sig) = stopped {
        (
            assay_interpreter::Code::Interrupted,
            format!("the run was stopped by {} before it finished", signal_name(sig)),
            "nothing of it is kept but this record; run the script again to finish it".to_string(),
        )
    } else if ended.disk_over {
        (
            assay_interpreter::Code::BudgetDisk,
            format!(
                "the script wrote more than its disk budget of {} into its run folder and was stopped",
                fmt_bytes(job.budget.disk)
            ),
            "write less (fewer or smaller artifacts and streamed captures), or give it more with --disk".to_string(),
        )
    } else {
        died_reason(ended.timed_out, &ended.status, tail, &job.budget)
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
    let _ = std::fs::remove_dir_all(&job.out);
    write_files(&job.out, &files).map_err(|e| format!("cannot write the error record: {e}"))?;
    Ok(End::Died { diag: Box::new(diag) })
}

pub(super) fn died_reason(
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
pub(super) fn relay_stderr(mut stderr: impl Read, tail: &Mutex<String>) {
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
