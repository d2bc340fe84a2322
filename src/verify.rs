//! `assay verify`: re-run a finished run's script in the sandboxed child,
//! with the run's seed, and compare the new results.json with the kept one
//! byte for byte. [`verify`] does the work and returns what it found;
//! [`cmd_verify`] prints it as the command does.

use assay_interpreter::ManifestFile;
use std::path::{Path, PathBuf};

use assay_interpreter::{diff_results, read_regular, read_run, Change, Manifest, Sandbox};
use serde_json::json;

use crate::cache::CacheUse;
use crate::out::{escape_controls, EXIT_ASSERT, EXIT_OK};
use crate::run::{pretty, usage_error};
use crate::supervise::{run_child, Budget, End, Job, Report};

/// What a re-run found.
#[derive(Debug)]
pub struct Verified {
    /// The new results.json has the same bytes as the kept one.
    pub same: bool,
    /// How the re-run was done (calls answered from the call cache, or none).
    pub how: String,
    /// Tool calls the call cache answered.
    pub answered: usize,
    /// The records and asserts that differ.
    pub changes: Vec<Change>,
    /// The inputs whose bytes changed since the run (they explain a mismatch).
    pub changed_inputs: Vec<String>,
}

/// Why a run could not be verified.
#[derive(Debug)]
pub enum NotVerified {
    /// The command cannot go on: no such run folder, a root that does not
    /// exist, no scratch folder, no child process.
    Usage { message: String, help: &'static str },
    /// The run folder was altered, or the re-run wrote no results.
    Refused(String),
    /// The script no longer passes the checker (a tool changed).
    CheckFailed { rendered: String, diagnostics: Vec<serde_json::Value> },
}

fn usage(message: impl Into<String>, help: &'static str) -> NotVerified {
    NotVerified::Usage { message: message.into(), help }
}

/// Re-runs the run in `run` (a finished run folder). Reads are allowed under
/// the current folder and `allow`, never under folders the manifest names.
pub fn verify(run: &Path, allow: &[PathBuf], budget: Budget, cache: CacheUse) -> Result<Verified, NotVerified> {
    let rd = read_run(run).map_err(|e| usage(e, "pass a finished run folder, e.g. runs/exp/0001"))?;
    let m = &rd.manifest;
    // The script must be the one the manifest digested.
    if m.script.sha256 != sha256_hex(rd.script.as_bytes()) {
        return Err(NotVerified::Refused(
            "script.assay does not match the sha256 in manifest.json: the run folder was altered".into(),
        ));
    }
    let name = if m.script.name.is_empty() { "script.assay".to_string() } else { m.script.name.clone() };
    // Roots come from the caller (default: the current folder), never from
    // the manifest. The manifest's folder is only where relative paths
    // start; reads outside the roots are refused as in any run.
    let cwd = std::env::current_dir()
        .map_err(|e| usage(format!("cannot read the current folder: {e}"), "run from an existing folder"))?;
    let mut roots = vec![cwd.clone()];
    roots.extend(allow.iter().cloned());
    let base = Some(PathBuf::from(&m.script.dir)).filter(|d| d.is_dir()).unwrap_or_else(|| cwd.clone());
    let sandbox = Sandbox::with_roots(&base, &roots)
        .map_err(|e| usage(format!("an --allow-read folder cannot be used: {e}"), "pass folders that exist"))?;
    let changed_inputs = changed_inputs(m, &sandbox);
    let tmp = scratch_folder()?;
    let job = Job {
        seed: Some(m.seed),
        ..Job::new(
            name,
            rd.script.clone(),
            sandbox.base().to_path_buf(),
            sandbox.roots().to_vec(),
            tmp.clone(),
            budget,
            cache,
        )
    };
    let end = run_child(&job);
    let new_text = read_regular(&tmp.join("results.json"), 1 << 30).ok().and_then(|b| String::from_utf8(b).ok());
    let answered = read_regular(&tmp.join("manifest.json"), 1 << 26)
        .ok()
        .and_then(|b| Manifest::parse(&b).ok())
        .and_then(|m| m.call_cache?.answered)
        .unwrap_or(0);
    let _ = std::fs::remove_dir_all(&tmp);
    let new_text = match (end, new_text) {
        (Ok(End::Report(Report::CheckFailed { rendered, diagnostics })), _) => {
            return Err(NotVerified::CheckFailed { rendered, diagnostics })
        }
        (Ok(_), Some(t)) => t,
        (Ok(_), None) => return Err(NotVerified::Refused("the re-run wrote no results.json".into())),
        (Err(e), _) => return Err(usage(e, "check that the assay binary can start a process")),
    };
    let how = match cache {
        CacheUse::On => format!("{answered} tool call(s) answered from the call cache"),
        _ => "every tool call ran again (the call cache was bypassed)".to_string(),
    };
    let new_results: serde_json::Value = serde_json::from_str(&new_text).unwrap_or(serde_json::Value::Null);
    Ok(Verified {
        same: new_text == rd.results_text,
        how,
        answered,
        changes: diff_results(&rd.results, &new_results),
        changed_inputs,
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A fresh folder for the re-run's record, under the temporary folder.
fn scratch_folder() -> Result<PathBuf, NotVerified> {
    let tmp = std::env::temp_dir().join(format!(
        "assay-verify-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
    ));
    std::fs::create_dir_all(tmp.join("artifacts"))
        .map_err(|e| usage(format!("cannot make a scratch folder: {e}"), "check the temporary folder"))?;
    Ok(tmp)
}

/// The inputs that changed since the run (they explain a mismatch), read
/// through the sandbox like any read (regular files, size checked).
fn changed_inputs(m: &Manifest, sandbox: &Sandbox) -> Vec<String> {
    let mut changed = Vec::new();
    for (path, digest) in &m.inputs {
        match sandbox.read(path).map(|(_, b)| sha256_hex(&b)) {
            Ok(d) if d == *digest => {}
            Ok(_) => changed.push(format!("{path} changed")),
            Err(e) => changed.push(format!("{path} was not checked: {}", e.message())),
        }
    }
    changed
}

/// `assay verify`: prints what [`verify`] found; the exit code is 0 when
/// the bytes are the same, 3 when they differ or the run cannot be
/// verified, 2 when the command cannot go on.
pub fn cmd_verify(run: &Path, json: bool, allow: &[PathBuf], budget: Budget, cache: CacheUse) -> u8 {
    match verify(run, allow, budget, cache) {
        Ok(v) => {
            print_verified(json, run, &v);
            if v.same {
                EXIT_OK
            } else {
                EXIT_ASSERT
            }
        }
        Err(NotVerified::Usage { message, help }) => usage_error(json, &message, help),
        Err(NotVerified::Refused(why)) => {
            if json {
                outln!("{}", pretty(&json!({"verified": false, "run": run.display().to_string(), "error": why})));
            } else {
                outln!("NOT verified: {why}");
            }
            EXIT_ASSERT
        }
        Err(NotVerified::CheckFailed { rendered, diagnostics }) => {
            if json {
                outln!("{}", pretty(&json!({"verified": false, "diagnostics": diagnostics})));
            } else {
                eprint!("{}", escape_controls(&rendered));
            }
            EXIT_ASSERT
        }
    }
}

/// What `verify` found: same bytes, or the changes and the changed inputs.
fn print_verified(json: bool, run: &Path, v: &Verified) {
    let how = &v.how;
    if json {
        outln!(
            "{}",
            pretty(&json!({
                "verified": v.same,
                "run": run.display().to_string(),
                "how": how,
                "cache_answered": v.answered,
                "changes": v.changes.iter().map(|c| c.to_json()).collect::<Vec<_>>(),
                "changed_inputs": v.changed_inputs,
            }))
        );
    } else if v.same {
        outln!("verified: re-running {} gives byte-identical results.json ({how})", run.display());
    } else {
        outln!("NOT verified: results.json differs from {} ({how})", run.display());
        for c in &v.changes {
            outln!("  {}", escape_controls(&c.to_text()));
        }
        if v.changes.is_empty() {
            outln!("  (the JSON values are equal; the bytes differ)");
        }
        for c in &v.changed_inputs {
            outln!("  input {}", escape_controls(c));
        }
    }
}
