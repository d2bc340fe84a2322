//! `assay slurm status`: what each shard of each stage is doing, from the
//! state files the tasks write and squeue.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::*;

/// One task as squeue lists it.
struct Queued {
    state: String,
    node: String,
    reason: String,
}

/// squeue's view of `jobs` (array tasks one per line): (job, task) ->
/// state, or `None` if squeue cannot be asked.
fn queue(jobs: &[String]) -> Option<BTreeMap<(String, Option<usize>), Queued>> {
    let out = std::process::Command::new("squeue")
        .args(["-h", "-r", "-o", "%F|%K|%T|%N|%r", "-j", &jobs.join(",")])
        .output()
        .ok()?;
    // squeue exits non-zero when none of the jobs is known any more.
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("Invalid job id") {
        return None;
    }
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('|').collect();
        if let [job, task, state, node, reason] = f[..] {
            let q = Queued { state: state.to_lowercase(), node: node.to_string(), reason: reason.to_string() };
            m.insert((job.to_string(), task.parse().ok()), q);
        }
    }
    Some(m)
}

/// `assay slurm status DIR`.
pub(super) fn status(dir: &Path, json: bool) -> u8 {
    let sub = match Submission::read(dir) {
        Ok(s) => s,
        Err(e) => return usage_error(json, &e, "pass the folder `assay slurm submit` printed (runs/<name>/slurm)"),
    };
    let mut jobs: Vec<String> = sub.arrays.iter().map(|a| a.job.clone()).collect();
    jobs.push(sub.merge_job.clone());
    // (A submission whose merge job could not be submitted has none.)
    jobs.retain(|j| !j.is_empty());
    let q = queue(&jobs);
    let mut rows = Vec::new();
    // The first stage with failed or lost shards, and those shards.
    let mut fix: Option<(usize, Vec<usize>)> = None;
    for stage in 1..=sub.stages {
        for i in 0..sub.shards {
            let (state, detail, log) = shard_state(dir, &sub, q.as_ref(), i, stage);
            if state == "failed" || state == "lost" {
                match &mut fix {
                    None => fix = Some((stage, vec![i])),
                    Some((k, list)) if *k == stage => list.push(i),
                    Some(_) => {}
                }
            }
            rows.push(json!({"shard": i, "stage": stage, "state": state, "detail": detail, "log": log}));
        }
    }
    let merge = match q.as_ref().and_then(|m| m.get(&(sub.merge_job.clone(), None))) {
        Some(t) => {
            json!({"job": sub.merge_job, "state": t.state, "detail": if t.state == "running" { t.node.clone() } else { t.reason.clone() }})
        }
        None => {
            json!({"job": sub.merge_job, "state": if q.is_some() { "ended" } else { "unknown" }, "detail": "not in the queue: see its log"})
        }
    };
    let merge_log = dir.join(format!("logs/merge.job-{}.log", sub.merge_job));
    let fix_cmd = fix.map(|(stage, list)| {
        let list: Vec<String> = list.iter().map(|i| i.to_string()).collect();
        let stage = if sub.stages > 1 { format!(" --stage {stage}") } else { String::new() };
        format!("assay slurm resubmit {} --shards {}{stage}", sh(&dir.display().to_string()), list.join(","))
    });
    if json {
        outln!(
            "{}",
            pretty(
                &json!({"name": sub.name, "stages": sub.stages, "shards": rows, "merge": merge, "merge_log": merge_log, "fix": fix_cmd})
            )
        );
        return EXIT_OK;
    }
    for stage in 1..=sub.stages {
        let of: Vec<&serde_json::Value> = rows.iter().filter(|r| r["stage"] == stage).collect();
        let done = of.iter().filter(|r| r["state"] == "done").count();
        let which = if sub.stages > 1 { format!(", stage {stage} of {}", sub.stages) } else { String::new() };
        outln!("assay-{}{which}: {done} of {} shards done", sub.name, sub.shards);
        for r in of {
            outln!(
                "  shard {}: {} ({})",
                r["shard"],
                r["state"].as_str().unwrap_or(""),
                r["detail"].as_str().unwrap_or("")
            );
        }
    }
    outln!(
        "  merge: job {} {} ({}); log {}",
        sub.merge_job,
        merge["state"].as_str().unwrap_or(""),
        merge["detail"].as_str().unwrap_or(""),
        merge_log.display()
    );
    if let Some(c) = &fix_cmd {
        outln!("to run the failed shards again, and what comes after them:\n  {c}");
    }
    EXIT_OK
}

/// Shard `i`'s state in `stage` (done, squeue's state, failed, lost or
/// unknown), what says so, and its log.
fn shard_state(
    dir: &Path,
    sub: &Submission,
    q: Option<&BTreeMap<(String, Option<usize>), Queued>>,
    i: usize,
    stage: usize,
) -> (String, String, PathBuf) {
    let read = |p: PathBuf| {
        assay_interpreter::read_regular(&p, 4096).ok().map(|b| String::from_utf8_lossy(&b).trim().to_string())
    };
    let array = sub.array_of(i, stage).unwrap_or("").to_string();
    let log = dir.join(format!("logs/shard-{i}{}.job-{array}.log", stage_tag(stage)));
    let queued = q.and_then(|m| m.get(&(array.clone(), Some(i))));
    let (state, detail) = if let Some(job) = read(state_file(dir, i, stage, "done")) {
        ("done".to_string(), format!("job {job}"))
    } else if let Some(t) = queued {
        let at = if t.state == "running" { format!("on {}", t.node) } else { t.reason.clone() };
        (t.state.clone(), format!("task {array}_{i} {at}"))
    } else if let Some(f) = read(state_file(dir, i, stage, "failed")) {
        let mut w = f.split_whitespace();
        let (code, job) = (w.next().unwrap_or("?"), w.next().unwrap_or("?"));
        ("failed".to_string(), format!("exit {code}, job {job}"))
    } else if q.is_none() {
        ("unknown".to_string(), "squeue could not be asked".to_string())
    } else {
        (
            "lost".to_string(),
            format!("task {array}_{i} is not queued and did not end: cancelled, timed out or its node failed"),
        )
    };
    (state, detail, log)
}
