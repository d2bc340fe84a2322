//! `assay agent replay`: every step re-run without the model, each
//! results.json compared byte for byte.

use super::*;
use crate::supervise::Budget;
use assay_interpreter::read_regular;
use assay_interpreter::{Manifest, ManifestFile};
use assay_stdlib::llm::Retry;
use serde_json::json;
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Re-runs every step of an investigation without the model and checks
/// each results.json byte for byte; names the first step that differs.
pub fn replay(dir: &Path, box_override: Option<&Path>, allow_read: &[PathBuf], json_out: bool) -> u8 {
    let manifest = match InvestigationManifest::read_from(dir, 16 << 20) {
        Ok(m) => m,
        Err(e) => {
            eprintln!(
                "error: {} is not a finished investigation (no readable manifest.json: {})",
                dir.display(),
                crate::out::escape_controls(&e)
            );
            return crate::out::EXIT_USAGE;
        }
    };
    let task = match recorded_task(&manifest.task, box_override, allow_read) {
        Ok(t) => t,
        Err((code, message)) => {
            eprintln!("error: {message}");
            return code;
        }
    };
    let Rerun { checked, answered, differs } = rerun_steps(dir, &task);
    if json_out {
        crate::out::write_stdout(&format!(
            "{}\n",
            json!({"replayed": checked, "identical": differs.is_none(), "first_difference": differs, "cache_answered": answered})
        ));
    } else if let Some(d) = &differs {
        crate::out::write_stdout(&format!(
            "NOT replayed: step {} gives a different results.json\n",
            crate::out::escape_controls(d)
        ));
    } else {
        crate::out::write_stdout(&format!(
            "replayed: {checked} steps re-ran without the model, every results.json byte-identical ({answered} tool calls answered from the call cache)\n"
        ));
    }
    if differs.is_some() {
        crate::out::EXIT_ASSERT
    } else {
        crate::out::EXIT_OK
    }
}

/// The task an investigation's manifest records, rebuilt: a black box
/// checked against its recorded digest, a unit, or a question whose
/// folders come from the command line.
fn recorded_task(t: &TaskRecord, box_override: Option<&Path>, allow_read: &[PathBuf]) -> Result<Task, (u8, String)> {
    let usage = |m: String| (crate::out::EXIT_USAGE, m);
    Ok(match t {
        TaskRecord::Function { function, strings, net_sha256, box_path, box_sha256 } => {
            recorded_box(function, *strings, net_sha256.as_deref(), Path::new(box_path), box_sha256, box_override)?
        }
        TaskRecord::Unit { synthetic: Some(s), .. } => Task::Unit { synthetic: s.clone() },
        TaskRecord::Unit { synthetic: None, model: Some(m), unit: Some(u) } => {
            Task::ModelUnit { model: m.clone(), unit: u.clone() }
        }
        TaskRecord::Unit { .. } => return Err(usage("the investigation's unit is not recorded".into())),
        // The folders a question's scripts read come from the command line
        // (as for `assay verify`), never from the folder being replayed:
        // anyone who can write it could otherwise widen what the replay reads.
        TaskRecord::Question { question, .. } => Task::Question {
            text: question.clone(),
            roots: if allow_read.is_empty() {
                std::env::current_dir().map(|d| vec![d]).unwrap_or_default()
            } else {
                allow_read.iter().map(|r| std::path::absolute(r).unwrap_or_else(|_| r.clone())).collect()
            },
        },
    })
}

/// A function task's black box (and its network, if it has one), read
/// from where it was or from `--box`, and refused unless its sha256 is the
/// recorded one.
fn recorded_box(
    function: &str,
    strings: bool,
    net_sha256: Option<&str>,
    box_path: &Path,
    box_sha256: &str,
    box_override: Option<&Path>,
) -> Result<Task, (u8, String)> {
    let path = box_override.unwrap_or(box_path).to_path_buf();
    let source = read_regular(&path, 1 << 20).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(|| {
        (crate::out::EXIT_USAGE, format!("cannot read the black box {}; pass it with --box FILE", path.display()))
    })?;
    if hex::encode(sha2::Sha256::digest(source.as_bytes())) != box_sha256 {
        return Err((
            crate::out::EXIT_ASSERT,
            format!("{} is not the black box this investigation used (its sha256 differs)", path.display()),
        ));
    }
    // Replay re-runs steps; it does not score, so no truth is needed.
    let strings = strings.then(Vec::new);
    let net = match net_sha256 {
        None => None,
        Some(want) => {
            let onnx = path.with_extension("onnx");
            match read_regular(&onnx, 64 << 20) {
                Ok(b) if hex::encode(sha2::Sha256::digest(&b)) == want => Some(b),
                _ => {
                    return Err((
                        crate::out::EXIT_USAGE,
                        format!(
                            "the box's network {} is missing or not the one this investigation used",
                            onnx.display()
                        ),
                    ))
                }
            }
        }
    };
    let spec = FnSpec { strings, net, ..Default::default() };
    Ok(Task::Function { path, source, name: function.to_string(), spec })
}

/// What re-running the steps found: how many were compared, how many tool
/// calls the call cache answered, and the first step that differs.
struct Rerun {
    checked: usize,
    answered: u64,
    differs: Option<String>,
}

/// Re-runs each step that ran (in a scratch folder, with the step's seed)
/// and compares its results.json with the recorded one, stopping at the
/// first that differs.
fn rerun_steps(dir: &Path, task: &Task) -> Rerun {
    let limits = Limits {
        steps: 0,
        budget: Budget::defaults(),
        reply_chars: 6000,
        wall: Duration::from_secs(3600),
        tokens: u64::MAX,
        retry: Retry::default(),
        tool_calls: false,
        vision: false,
        answer_retries: 0,
    };
    let scratch = std::env::temp_dir().join(format!("assay-replay-{}", std::process::id()));
    let files = scratch.join("files");
    let _ = std::fs::create_dir_all(&files);
    let (base, roots) = task.folders(&files);
    let mut r = Rerun { checked: 0, answered: 0, differs: None };
    let mut names: Vec<String> = std::fs::read_dir(dir.join("steps"))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    for name in names {
        let step_dir = dir.join("steps").join(&name);
        let Some(script) =
            read_regular(&step_dir.join("script.assay"), 16 << 20).ok().and_then(|b| String::from_utf8(b).ok())
        else {
            continue;
        };
        let Ok(want) = read_regular(&step_dir.join("results.json"), 1 << 30) else {
            // A step that did not pass the check has no results to compare.
            continue;
        };
        let seed = name.parse::<u64>().unwrap_or(0);
        let out = scratch.join(&name);
        run_step(StepRun::new(task, &base, &roots), &script, &out, &limits, seed);
        let got = read_regular(&out.join("results.json"), 1 << 30).unwrap_or_default();
        r.answered += read_regular(&out.join("manifest.json"), 16 << 20)
            .ok()
            .and_then(|b| Manifest::parse(&b).ok())
            .and_then(|m| m.call_cache?.answered)
            .unwrap_or(0) as u64;
        r.checked += 1;
        if got != want {
            r.differs = Some(name.clone());
            break;
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    r
}
