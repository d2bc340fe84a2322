//! Checking and running one script from the command line: load it (a file
//! or stdin), check it, run it in the sandboxed child (or answer it with a
//! replay), and print what happened. `assay run`, `assay check`, sharded
//! runs and merges (`shard.rs`) all go through here.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use assay_interpreter::{
    begin_run, finish_named, finish_run, prepare, read_run, run_stem, Diag, Registry, Sandbox, SourceFile,
};
use serde_json::json;

use crate::cache::CacheUse;
use crate::out::{escape_controls, EXIT_ASSERT, EXIT_OK, EXIT_SCRIPT, EXIT_USAGE};
use crate::supervise::{run_child, Budget, Done, End, Job, Report, ShardJob};

pub fn pretty(j: &serde_json::Value) -> String {
    serde_json::to_string_pretty(j).unwrap_or_default()
}

pub fn usage_error(json: bool, message: &str, help: &str) -> u8 {
    if json {
        outln!("{}", pretty(&json!({"status": "usage-error", "error": message, "help": help})));
    } else {
        // Messages quote names from folders and the command line: escaped.
        eprintln!("error: {}\n  help: {}", escape_controls(message), escape_controls(help));
    }
    EXIT_USAGE
}

fn print_diags(diags: &[Diag], json: bool) {
    if json {
        return;
    }
    let color = std::io::stderr().is_terminal();
    for d in diags {
        let text = if color { d.render_color(100) } else { d.render_plain(100) };
        eprint!("{text}");
    }
    if diags.len() > 1 {
        eprintln!("{} errors", diags.len());
    }
}

/// The script's text, the name it is reported under, its folder and stem.
pub(crate) struct Script {
    pub(crate) file: Arc<SourceFile>,
    pub(crate) dir: PathBuf,
    pub(crate) stem: String,
}

pub(crate) fn load_script(arg: &str) -> Result<Script, (String, String)> {
    let limit = assay_grammar::MAX_SOURCE_BYTES as u64;
    let too_long = |n: u64| {
        (
            format!("the script is longer than the limit of {limit} bytes ({n} bytes read)"),
            "split it, or load data from files instead of writing it into the script".to_string(),
        )
    };
    if arg == "-" {
        let mut text = String::new();
        // At most one byte past the limit is read: an endless stdin ends here.
        std::io::stdin().take(limit + 1).read_to_string(&mut text).map_err(|e| {
            (format!("cannot read the script from standard input: {e}"), "pipe UTF-8 text into `assay run -`".into())
        })?;
        if text.len() as u64 > limit {
            return Err(too_long(text.len() as u64));
        }
        let dir = std::env::current_dir().map_err(|e| (e.to_string(), "run from an existing folder".into()))?;
        return Ok(Script { file: SourceFile::new("<stdin>", text), dir, stem: "stdin".into() });
    }
    let path = Path::new(arg);
    // The one read door: a FIFO or a device is refused, not waited on or
    // read forever, and nothing past the size limit is read.
    let bytes = assay_interpreter::read_regular_following(path, limit).map_err(|e| {
        let e = crate::out::escape_controls(&e);
        if e.contains("more than the") || e.contains("grew past") {
            too_long(limit + 1)
        } else {
            (
                format!("cannot read script `{}`: {e}", crate::out::escape_controls(arg)),
                "check the path; scripts are .assay text files (regular files)".to_string(),
            )
        }
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| (format!("`{arg}` is not UTF-8 text"), "an .assay script must be UTF-8 text".to_string()))?;
    let abs = path.canonicalize().map_err(|e| (e.to_string(), "check the path".to_string()))?;
    let dir = abs.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("script").to_string();
    Ok(Script { file: SourceFile::new(arg, text), dir, stem })
}

/// The script `arg` names and the sandbox of its folder and `allow`; a
/// usage error (printed) otherwise.
fn load_in_sandbox(arg: &str, allow: &[PathBuf], json: bool) -> Result<(Script, Sandbox), u8> {
    let s = load_script(arg).map_err(|(m, h)| usage_error(json, &m, &h))?;
    let sandbox = Sandbox::new(&s.dir, allow).map_err(|e| {
        usage_error(json, &format!("an --allow-read folder cannot be used: {e}"), "pass folders that exist")
    })?;
    Ok((s, sandbox))
}

pub fn cmd_check(registry: &Registry, script: &str, json: bool, allow: &[PathBuf]) -> u8 {
    let (s, sandbox) = match load_in_sandbox(script, allow, json) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let prepared = prepare(&s.file, registry, &sandbox);
    if json {
        let diags: Vec<_> = prepared.diags.iter().map(|d| d.to_json()).collect();
        let warnings: Vec<_> = prepared.warnings.iter().map(|d| d.to_json()).collect();
        outln!("{}", pretty(&json!({"ok": prepared.diags.is_empty(), "diagnostics": diags, "warnings": warnings})));
    } else {
        for w in &prepared.warnings {
            eprint!("{}", w.render_plain(100));
        }
        if prepared.diags.is_empty() {
            match prepared.warnings.len() {
                0 => outln!("ok: {} has no problems", s.file.name),
                n => outln!("ok: {} checks, with {n} warning(s)", s.file.name),
            }
        } else {
            print_diags(&prepared.diags, false);
        }
    }
    if prepared.diags.is_empty() {
        EXIT_OK
    } else {
        EXIT_SCRIPT
    }
}

fn is_debug_bypass() -> bool {
    // Test builds only: the adversarial suite turns the in-process checks off
    // to prove that the kernel alone refuses an outside read.
    cfg!(debug_assertions) && std::env::var_os("ASSAY_TEST_BYPASS_INPROCESS_CHECKS").is_some()
}

#[allow(clippy::too_many_arguments)]
pub fn cmd_run(
    script: &str,
    json: bool,
    allow: &[PathBuf],
    seed: Option<u64>,
    runs_dir: &Path,
    budget: Budget,
    cache: CacheUse,
    shard: ShardJob,
) -> u8 {
    let (s, sandbox) = match load_in_sandbox(script, allow, json) {
        Ok(x) => x,
        Err(code) => return code,
    };
    // `_lease` keeps the unfinished folder ours until this function returns
    // (after the folder is renamed into place or removed).
    let (tmp, cleaned, _lease) = match begin_run(runs_dir, &s.stem) {
        Ok(x) => x,
        Err(e) => {
            return usage_error(
                json,
                &format!("cannot write the run record under {}: {e}", runs_dir.display()),
                "pass a writable --runs-dir",
            )
        }
    };
    if cleaned > 0 {
        eprintln!("note: removed {cleaned} unfinished run folder(s) left by runs that were killed");
    }
    let job = Job {
        seed,
        color: !json && std::io::stderr().is_terminal(),
        bypass_checks: is_debug_bypass(),
        shard: shard.clone(),
        ..Job::new(
            s.file.name.clone(),
            s.file.text.clone(),
            sandbox.base().to_path_buf(),
            sandbox.roots().to_vec(),
            tmp.clone(),
            budget,
            cache,
        )
    };
    // An unchanged rerun of a whole run is answered with a copy of its
    // record (see `crate::replay`); `--no-cache` runs it again.
    let replay_key =
        (matches!(shard, ShardJob::Whole) && cache != CacheUse::Off).then(|| crate::replay::key(&job)).flatten();
    let replayed = match (cache, &replay_key) {
        (CacheUse::On, Some(k)) => replay(k, &job, &tmp),
        _ => None,
    };
    let end = match replayed {
        Some(end) => end,
        None => match run_child(&job) {
            Ok(e) => e,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return usage_error(json, &e, "check that the assay binary can start a process");
            }
        },
    };
    let mut died = None;
    let done = match end {
        End::Report(Report::CheckFailed { rendered, diagnostics }) => {
            let _ = std::fs::remove_dir_all(&tmp);
            print_check_failed(json, &rendered, &diagnostics);
            return EXIT_SCRIPT;
        }
        End::Report(Report::Done(d)) => Some(d),
        End::Died { diag } => {
            died = Some(diag);
            None
        }
    };
    if let ShardJob::Part { index, count, .. } = shard {
        return finish_shard_run(&tmp, &s.file.name, index, count, done, died, json);
    }
    let run_dir = match finish_run(&tmp) {
        Ok(d) => d,
        Err(e) => {
            return usage_error(
                json,
                &format!("cannot finish the run record under {}: {e}", runs_dir.display()),
                "pass a writable --runs-dir",
            )
        }
    };
    let Some(d) = done else {
        // The child died; its error record is in place.
        print_died(json, &run_dir, died);
        return EXIT_SCRIPT;
    };
    if let (Some(k), false) = (&replay_key, d.replayed) {
        crate::replay::store(k, &run_dir, &d);
    }
    print_done(json, &d, &run_dir, &shard);
    match d.status {
        assay_interpreter::Status::Ok => EXIT_OK,
        assay_interpreter::Status::AssertFailed => EXIT_ASSERT,
        assay_interpreter::Status::Error | assay_interpreter::Status::Partial => EXIT_SCRIPT,
    }
}

/// A kept record of `job` written into `tmp`, if there is an intact one
/// (see `crate::replay`); a record that cannot be written is run instead.
fn replay(key: &str, job: &Job, tmp: &Path) -> Option<End> {
    let kept = crate::replay::lookup(key, job)?;
    match crate::replay::write(kept, tmp, key) {
        Ok(d) => Some(End::Report(Report::Done(Box::new(d)))),
        Err(e) => {
            eprintln!("note: the kept record could not be replayed ({e}); running the script");
            let _ = std::fs::remove_dir_all(tmp);
            let _ = std::fs::create_dir_all(tmp.join("artifacts"));
            None
        }
    }
}

fn print_check_failed(json: bool, rendered: &str, diagnostics: &[serde_json::Value]) {
    if json {
        outln!("{}", pretty(&json!({"status": "check-failed", "diagnostics": diagnostics})));
    } else {
        eprint!("{}", escape_controls_keep_color(rendered));
        if diagnostics.len() > 1 {
            eprintln!("{} errors", diagnostics.len());
        }
    }
}

/// A run whose child died: its error record (in `run_dir`) and diagnostic.
fn print_died(json: bool, run_dir: &Path, died: Option<Box<Diag>>) {
    let rd = read_run(run_dir).ok();
    let results = rd.as_ref().map(|r| r.results.clone()).unwrap_or(serde_json::Value::Null);
    if json {
        outln!(
            "{}",
            pretty(
                &json!({"status": "error", "run_dir": run_dir.display().to_string(), "results": results, "shows": [], "diagnostics": [results["error"].clone()]})
            )
        );
    } else {
        if let Some(d) = died {
            print_diags(&[*d], false);
        }
        outln!("error: 0 records, 0/0 asserts passed → {}", run_dir.display());
    }
}

/// A finished run: its shows, error, failed asserts and summary (or, with
/// `--json`, all of it with the results).
fn print_done(json: bool, d: &Done, run_dir: &Path, shard: &ShardJob) {
    if json {
        let results = read_run(run_dir).map(|r| r.results).unwrap_or(serde_json::Value::Null);
        let shows: Vec<_> =
            d.shows.iter().map(|sh| json!({"title": sh.title, "line": sh.line, "text": sh.text})).collect();
        outln!(
            "{}",
            pretty(&json!({
                "status": d.status,
                "run_dir": run_dir.display().to_string(),
                "results": results,
                "shows": shows,
                "diagnostics": d.diagnostics,
                "warnings": d.warnings,
                "merged": matches!(shard, ShardJob::Merge { .. }).then(|| json!({"answered": d.merged_calls, "ran_whole": d.merged_whole})),
                "replayed": d.replayed,
                "cached_calls": d.cached_calls,
            }))
        );
        return;
    }
    // Warnings first, as a compiler prints them: they come from the check.
    eprint!("{}", escape_controls_keep_color(&d.warnings_rendered));
    for sh in &d.shows {
        match &sh.title {
            Some(t) => outln!("── {} (line {}) ──", escape_controls(t), sh.line),
            None => outln!("── line {} ──", sh.line),
        }
        outln!("{}", escape_controls(&sh.text));
    }
    if let Some(e) = &d.error_rendered {
        eprint!("{}", escape_controls_keep_color(e));
    }
    for (line, expr, message) in &d.failed {
        let msg = message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
        outln!("assert FAILED (line {line}): {}", escape_controls(&format!("{expr}{msg}")));
    }
    let cached = match d.cached_calls {
        _ if d.replayed => " (replayed: an identical earlier run's record, no script ran; --no-cache runs it)".into(),
        0 => String::new(),
        n => format!(" ({n} answered from the cache)"),
    };
    if let ShardJob::Merge { partials, .. } = shard {
        outln!(
            "merged {} shards: {} sharded call(s) answered from them{}",
            partials.len(),
            d.merged_calls,
            if d.merged_whole.is_empty() {
                String::new()
            } else {
                format!("; ran whole here, as not every shard made the same call: {}", d.merged_whole.join(", "))
            }
        );
    }
    outln!(
        "{}: {} records, {}/{} asserts passed, {} tool calls{cached} → {}",
        d.status,
        d.records,
        d.asserts - d.failed.len(),
        d.asserts,
        d.tool_calls,
        run_dir.display()
    );
}

/// As `escape_controls`, but keeps the colour codes Assay's own renderer
/// wrote (SGR sequences `ESC [ digits;... m`); anything else is escaped.
fn escape_controls_keep_color(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\u{1b}') {
        out.push_str(&escape_controls(&rest[..i]));
        let after = &rest[i + 1..];
        let sgr_len = after.strip_prefix('[').and_then(|a| {
            a.find('m').filter(|&j| a[..j].bytes().all(|b| b.is_ascii_digit() || b == b';')).map(|j| j + 2)
        });
        match sgr_len {
            Some(n) => {
                out.push('\u{1b}');
                out.push_str(&after[..n]);
                rest = &after[n..];
            }
            None => {
                out.push_str("\\u{1b}");
                rest = after;
            }
        }
    }
    out.push_str(&escape_controls(rest));
    out
}

/// A shard's folder: `runs/<stem>/shard-I-of-N/`.
pub(crate) fn shard_dir(runs_dir: &Path, stem: &str, index: usize, count: usize) -> PathBuf {
    runs_dir.join(run_stem(stem)).join(format!("shard-{index}-of-{count}"))
}

/// After a shard's child: put its partial record in place (replacing an
/// earlier run of the same shard) or, if it died, leave nothing behind, so
/// the merge names the shard as missing.
pub(crate) fn finish_shard_run(
    tmp: &Path,
    script: &str,
    index: usize,
    count: usize,
    done: Option<Box<Done>>,
    died: Option<Box<Diag>>,
    json: bool,
) -> u8 {
    let Some(d) = done.filter(|d| d.status == assay_interpreter::Status::Partial) else {
        let _ = std::fs::remove_dir_all(tmp);
        let message = died.map(|d| d.message).unwrap_or_else(|| "the shard did not finish".into());
        if json {
            outln!(
                "{}",
                pretty(&json!({"status": "error", "shard": {"index": index, "count": count}, "message": message}))
            );
        } else {
            eprintln!("error: shard {index}/{count} of {}: {}", escape_controls(script), escape_controls(&message));
        }
        return EXIT_SCRIPT;
    };
    let dir = match finish_named(tmp, &format!("shard-{index}-of-{count}")) {
        Ok(p) => p,
        Err(e) => {
            return usage_error(json, &format!("cannot finish the shard's record: {e}"), "pass a writable --runs-dir")
        }
    };
    let calls: Vec<String> = d.shard_calls.iter().map(|(t, l)| format!("{t} (line {l})")).collect();
    if json {
        outln!(
            "{}",
            pretty(&json!({
                "status": "partial",
                "shard": {"index": index, "count": count},
                "run_dir": dir.display().to_string(),
                "sharded_calls": d.shard_calls.iter().map(|(t, l)| json!({"tool": t, "line": l})).collect::<Vec<_>>(),
                "stopped": d.shard_stopped,
            }))
        );
    } else {
        if calls.is_empty() {
            eprintln!("note: the script made no shardable call (exemplars, patch_sweep, shard_map): the merge will run all of it");
        }
        if let Some(s) = &d.shard_stopped {
            eprintln!(
                "note: after its sharded calls the shard went on with its share's results alone and {}; the merge runs that part",
                escape_controls(&s.chars().take(2000).collect::<String>())
            );
        }
        outln!(
            "shard {index}/{count}: {} sharded call(s){} → {}",
            calls.len(),
            if calls.is_empty() { String::new() } else { format!(": {}", calls.join(", ")) },
            dir.display()
        );
    }
    EXIT_OK
}
