//! `assay slurm`: a script's shards (or a benchmark's) as a SLURM array job
//! and a merge job after it; `status` says what each shard is doing and how
//! to fix a failed one; `resubmit` runs chosen shards again, alone.
//!
//! The job scripts are plain bash, kept under `<run>/slurm/` to read, edit
//! and resubmit. Each fixes the shard count and takes the index from the
//! array task id, so `sbatch --array=3 shards.sbatch` runs shard 3 of N
//! (not shard 0 of 1). Every path in them is quoted. A task's log is kept
//! per submission (`logs/shard-I.job-ARRAY.log`), each attempt (a requeue)
//! appended under a header line; a task that ends writes
//! `state/shard-I.done` or `state/shard-I.failed`. `submit.json` remembers
//! the jobs and their sbatch options for `status` and `resubmit`.

use std::path::{Path, PathBuf};

use assay_interpreter::run_stem;
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::out::EXIT_OK;
use crate::run::{pretty, usage_error};

#[derive(Subcommand)]
pub enum SlurmCommand {
    /// Write the array job (one task per shard) and the merge job that
    /// depends on it, and submit both with sbatch. The job scripts are
    /// kept under runs/<name>/slurm/ to read, edit and resubmit.
    Submit {
        script: String,
        #[arg(long = "allow-read", value_name = "DIR")]
        allow_read: Vec<PathBuf>,
        #[arg(long = "runs-dir", value_name = "DIR", default_value = "runs")]
        runs_dir: PathBuf,
        /// Override the script's seed (every shard and the merge use it).
        #[arg(long)]
        seed: Option<u64>,
        #[command(flatten)]
        submit: SubmitOpts,
    },
    /// A benchmark as an array job (each task investigates its block of
    /// items) and a merge job that writes the table once every item is done.
    Bench {
        #[command(flatten)]
        set: crate::bench::BenchSet,
        #[command(flatten)]
        submit: SubmitOpts,
    },
    /// What each shard of a submission is doing (done, running, pending,
    /// failed), the merge job's state, and the command that fixes each
    /// failed shard.
    Status {
        /// The job folder `submit` printed (runs/<name>/slurm), or the
        /// run's folder above it.
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Submit chosen shards again as an array job of their own (the same
    /// job script: shard I of the original N), and the merge job after
    /// them (a merge job still waiting on the old array is cancelled).
    Resubmit {
        /// The job folder `submit` printed (runs/<name>/slurm).
        dir: PathBuf,
        /// The shards to run again, e.g. 3 or 3,5 or 0-2,7.
        #[arg(long, value_name = "LIST")]
        shards: String,
        #[arg(long)]
        json: bool,
        /// sbatch options for the resubmitted shards (default: those of the submission).
        #[arg(last = true)]
        sbatch: Vec<String>,
    },
}

/// How many shards, and how the jobs are submitted.
#[derive(clap::Args)]
pub struct SubmitOpts {
    /// Number of shards (array tasks).
    #[arg(long)]
    shards: usize,
    /// Write the job scripts and print the sbatch commands; submit nothing.
    #[arg(long)]
    dry_run: bool,
    #[arg(long)]
    json: bool,
    /// An sbatch option for the merge job alone, e.g. --merge-sbatch=--partition=cpu
    /// (repeatable; when given, the options after `--` go to the shards only).
    #[arg(long = "merge-sbatch", value_name = "OPTION", allow_hyphen_values = true)]
    merge_sbatch: Vec<String>,
    /// Options for sbatch (both jobs, unless --merge-sbatch is given), after `--`: e.g. -- --partition=gpu --time=2:00:00 --mem=16G
    #[arg(last = true)]
    sbatch: Vec<String>,
}

/// A word for bash, single-quoted (any text, newlines included, is one
/// literal word inside single quotes).
pub(crate) fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Text for a `#` comment line of a job script: control characters (a
/// newline would end the comment and start a command) written as escapes.
fn comment(s: &str) -> String {
    s.chars().flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] }).collect()
}

/// A path as UTF-8 text for a job script, or why it cannot be one: a
/// non-UTF-8 name would be written as another name.
fn utf8_path<'p>(what: &str, p: &'p Path) -> Result<&'p str, String> {
    p.to_str().ok_or_else(|| {
        format!("{what} {} is not valid UTF-8; job scripts are UTF-8 text and would name another file", p.display())
    })
}

/// A value for an `#SBATCH` line, which sbatch splits at blanks and whose
/// line a newline would end: refused unless it is plain.
fn sbatch_value<'v>(what: &str, v: &'v str) -> Result<&'v str, String> {
    match v.chars().find(|c| c.is_control() || c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | '`' | '$' | '#')) {
        Some(c) => Err(format!(
            "{what} `{}` holds {}, which an #SBATCH line cannot carry safely",
            comment(v),
            if c.is_whitespace() && !c.is_control() { "a blank".to_string() } else { format!("the character {:?}", c) }
        )),
        None => Ok(v),
    }
}

/// A log folder for an `#SBATCH --output=` line, in double quotes (sbatch
/// reads `"..."` as one argument, blanks and apostrophes included) with `%`
/// doubled (SLURM's file-name patterns). A double quote, a backslash (which
/// turns SLURM's patterns off) or a control character cannot be carried.
fn sbatch_folder(what: &str, folder: &str) -> Result<String, String> {
    match folder.chars().find(|c| c.is_control() || matches!(c, '"' | '\\')) {
        Some(c) => {
            Err(format!("{what} `{}` holds the character {c:?}, which an #SBATCH line cannot carry", comment(folder)))
        }
        None => Ok(folder.replace('%', "%%")),
    }
}

/// The sbatch options given after `--`: passed as arguments (no shell),
/// but printed and recorded, so no control characters.
fn sbatch_options(opts: &[String]) -> Result<(), String> {
    match opts.iter().find(|o| o.chars().any(char::is_control)) {
        Some(o) => Err(format!("the sbatch option `{}` holds a control character", comment(o))),
        None => Ok(()),
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

pub(crate) struct JobScripts {
    pub shards: String,
    pub merge: String,
}

/// The two job scripts: plain bash with #SBATCH lines. `shard_cmd` runs
/// shard `$shard` of `count` (its index from the array task id), `merge_cmd`
/// the merge; `dir` holds the logs and the shards' state files.
pub(crate) fn job_scripts(
    what: &str,
    name: &str,
    count: usize,
    cwd: &Path,
    dir: &Path,
    shard_cmd: &str,
    merge_cmd: &str,
) -> Result<JobScripts, String> {
    let what = comment(what);
    let header = |job: &str| {
        format!("#!/bin/bash\n# Written by `assay slurm submit` for {what}: {job}.\n# Edit freely; submit again with sbatch.\n")
    };
    let name = sbatch_value("the job name", name)?;
    let cwd = utf8_path("the current folder", cwd)?;
    let dir = utf8_path("the runs folder", dir)?;
    let logs = sbatch_folder("the runs folder", &format!("{dir}/logs"))?;
    let state = sh(&format!("{dir}/state"));
    let shards = format!(
        "{}#SBATCH --job-name=assay-{name}\n#SBATCH --array=0-{last}\n#SBATCH --output=\"{logs}/shard-%a.job-%A.log\"\n\
         #SBATCH --open-mode=append\n#SBATCH --requeue\n\
         set -euo pipefail\ncd {cwd}\n\
         # The shard is the array task's id; the count is fixed here, so that\n\
         # `sbatch --array=3 shards.sbatch` (or `assay slurm resubmit --shards 3`)\n\
         # runs shard 3 of {count}. A shard run again replaces its record.\n\
         shard=${{SLURM_ARRAY_TASK_ID:?this job script runs as an array task}}\n\
         state={state}\n\
         mkdir -p \"$state\"\n\
         echo \"== assay: shard $shard of {count}, attempt $(( ${{SLURM_RESTART_COUNT:-0}} + 1 )), job ${{SLURM_JOB_ID:-?}} on ${{SLURMD_NODENAME:-$(hostname)}} at $(date -u +%Y-%m-%dT%H:%M:%SZ)\"\n\
         rm -f \"$state/shard-$shard.done\" \"$state/shard-$shard.failed\"\n\
         status=0\n\
         {shard_cmd} || status=$?\n\
         if [ \"$status\" = 0 ]; then\n  echo \"${{SLURM_JOB_ID:-?}}\" > \"$state/shard-$shard.done\"\n\
         else\n  echo \"$status ${{SLURM_JOB_ID:-?}}\" > \"$state/shard-$shard.failed\"\nfi\n\
         exit \"$status\"\n",
        header(&format!("{count} shards as an array job")),
        last = count - 1,
        cwd = sh(cwd),
    );
    let merge = format!(
        "{}#SBATCH --job-name=assay-{name}-merge\n#SBATCH --output=\"{logs}/merge.job-%j.log\"\n\
         set -euo pipefail\ncd {cwd}\n\
         # Checks that every shard finished (same script, Assay and seed), then writes the merged record.\n\
         exec {merge_cmd}\n",
        header("the merge of its shards"),
        cwd = sh(cwd),
    );
    Ok(JobScripts { shards, merge })
}

/// What `submit` and `resubmit` remember in `submit.json`.
#[derive(Serialize, Deserialize, Default)]
struct Submission {
    name: String,
    shards: usize,
    /// Each array job submitted, with the shards it runs (all at first,
    /// then those resubmitted).
    arrays: Vec<ArrayJob>,
    merge_job: String,
    sbatch: Vec<String>,
    merge_sbatch: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone)]
struct ArrayJob {
    job: String,
    shards: Vec<usize>,
}

impl Submission {
    fn path(dir: &Path) -> PathBuf {
        dir.join("submit.json")
    }
    fn read(dir: &Path) -> Result<Submission, String> {
        let p = Submission::path(dir);
        let bytes = assay_interpreter::read_regular(&p, 1 << 20).map_err(|e| format!("{}: {e}", p.display()))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", p.display()))
    }
    fn write(&self, dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        let tmp = dir.join(".submit.json.new");
        std::fs::write(&tmp, text + "\n")?;
        std::fs::rename(tmp, Submission::path(dir))
    }
    /// The last array job that ran shard `i`.
    fn array_of(&self, i: usize) -> Option<&str> {
        self.arrays.iter().rev().find(|a| a.shards.contains(&i)).map(|a| a.job.as_str())
    }
}

fn sbatch(args: &[String]) -> Result<String, String> {
    let out = std::process::Command::new("sbatch")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run sbatch: {e} (is SLURM installed here?)"))?;
    if !out.status.success() {
        return Err(format!("sbatch {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    // --parsable prints "ID" or "ID;CLUSTER".
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("sbatch printed `{}`, not a job id", text.trim()));
    }
    Ok(id)
}

pub fn cmd_slurm(what: SlurmCommand) -> u8 {
    let (Ok(cwd), Ok(assay)) = (std::env::current_dir(), crate::supervise::executable()) else {
        return usage_error(
            false,
            "cannot tell the current folder or this program's path",
            "run from an existing folder",
        );
    };
    let assay = match utf8_path("this program's path", &assay) {
        Ok(a) => sh(a),
        Err(e) => return usage_error(false, &e, "install assay under a UTF-8 path"),
    };
    let plan = match what {
        SlurmCommand::Submit { script, allow_read, runs_dir, seed, submit } => {
            script_plan(&assay, script, &allow_read, &runs_dir, seed, submit)
        }
        SlurmCommand::Bench { set, submit } => bench_plan(&assay, set, submit),
        SlurmCommand::Status { dir, json } => return status(&job_dir(&absolute(&dir)), json),
        SlurmCommand::Resubmit { dir, shards, json, sbatch } => {
            return resubmit(&job_dir(&absolute(&dir)), &shards, json, sbatch)
        }
    };
    let Plan { what, name, dir, shard_cmd, merge_cmd, submit } = match plan {
        Ok(p) => p,
        Err(code) => return code,
    };
    let SubmitOpts { shards, dry_run, json, sbatch: extra, merge_sbatch } = submit;
    if shards == 0 || shards > assay_interpreter::shard::MAX_SHARDS {
        return usage_error(json, &format!("--shards {shards} is out of range"), "e.g. --shards 8");
    }
    if let Err(e) = sbatch_options(&extra).and_then(|_| sbatch_options(&merge_sbatch)) {
        return usage_error(json, &e, "give sbatch options as plain words, e.g. -- --partition=gpu --time=2:00:00");
    }
    let jobs = match job_scripts(&what, &name, shards, &cwd, &dir, &shard_cmd, &merge_cmd) {
        Ok(j) => j,
        Err(e) => {
            return usage_error(json, &e, "use a runs folder (--runs-dir, or --out for a benchmark) whose path has no double quotes, backslashes or control characters")
        }
    };
    let shards_file = dir.join("shards.sbatch");
    let merge_file = dir.join("merge.sbatch");
    let written = std::fs::create_dir_all(dir.join("logs"))
        .and_then(|_| std::fs::create_dir_all(dir.join("state")))
        .and_then(|_| std::fs::write(&shards_file, &jobs.shards))
        .and_then(|_| std::fs::write(&merge_file, &jobs.merge));
    if let Err(e) = written {
        return usage_error(
            json,
            &format!("cannot write the job scripts under {}: {e}", dir.display()),
            "pass a writable --runs-dir",
        );
    }
    let merge_opts = if merge_sbatch.is_empty() { extra.clone() } else { merge_sbatch };
    let files = JobFiles { shards: shards_file, merge: merge_file, dir };
    if dry_run {
        print_dry_run(json, &files, &jobs, &extra, &merge_opts);
        return EXIT_OK;
    }
    // A new submission starts from no shard state.
    for i in 0..shards {
        let _ = std::fs::remove_file(files.dir.join(format!("state/shard-{i}.done")));
        let _ = std::fs::remove_file(files.dir.join(format!("state/shard-{i}.failed")));
    }
    let sub = Submission { name, shards, sbatch: extra, merge_sbatch: merge_opts, ..Default::default() };
    submit_jobs(json, &files, sub, None)
}

/// The job folder for `status` and `resubmit`: DIR, or DIR/slurm.
fn job_dir(dir: &Path) -> PathBuf {
    if !Submission::path(dir).is_file() && Submission::path(&dir.join("slurm")).is_file() {
        dir.join("slurm")
    } else {
        dir.to_path_buf()
    }
}

/// What `assay slurm` submits: the job's name and folder, the command each
/// array task runs and the merge's.
struct Plan {
    what: String,
    name: String,
    dir: PathBuf,
    shard_cmd: String,
    merge_cmd: String,
    submit: SubmitOpts,
}

/// The job files written, and their folder (logs, state, submit.json).
struct JobFiles {
    shards: PathBuf,
    merge: PathBuf,
    dir: PathBuf,
}

/// The plan for a script's shards: every path absolute and quoted for
/// bash (the jobs run from any folder on any node).
fn script_plan(
    assay: &str,
    script: String,
    allow_read: &[PathBuf],
    runs_dir: &Path,
    seed: Option<u64>,
    submit: SubmitOpts,
) -> Result<Plan, u8> {
    let (json, shards) = (submit.json, submit.shards);
    let path = Path::new(&script);
    if !path.is_file() {
        return Err(usage_error(json, &format!("no script at {script}"), "pass the .assay file the shards should run"));
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("script").to_string();
    let runs = absolute(runs_dir);
    let script_abs = absolute(path);
    let mut paths = vec![("the script", &script_abs), ("the runs folder", &runs)];
    let allowed: Vec<PathBuf> = allow_read.iter().map(|a| absolute(a)).collect();
    paths.extend(allowed.iter().map(|a| ("the folder", a)));
    let mut words = Vec::new();
    for (what, p) in paths {
        match utf8_path(what, p) {
            Ok(t) => words.push(sh(t)),
            Err(e) => return Err(usage_error(json, &e, "rename it, or use a UTF-8 path")),
        }
    }
    let abs = words[0].clone();
    let mut common = format!("--runs-dir {}", words[1]);
    for a in &words[2..] {
        common.push_str(&format!(" --allow-read {a}"));
    }
    let seed_arg = seed.map(|s| format!(" --seed {s}")).unwrap_or_default();
    Ok(Plan {
        what: script.clone(),
        name: run_stem(&stem),
        dir: runs.join(run_stem(&stem)).join("slurm"),
        shard_cmd: format!("{assay} run {abs} --shard \"$shard/{shards}\" {common}{seed_arg}"),
        merge_cmd: format!("{assay} merge {abs} --shards {shards} {common}"),
        submit,
    })
}

/// The plan for a benchmark's shards; each task investigates as many
/// items at once as SLURM gave it CPUs.
fn bench_plan(assay: &str, set: crate::bench::BenchSet, submit: SubmitOpts) -> Result<Plan, u8> {
    let out = absolute(&set.out_dir());
    let crate::bench::BenchSet { suite, baseline, n, seed, .. } = set;
    let shards = submit.shards;
    let baseline = baseline.map(|b| format!(" --baseline {}", sh(&b))).unwrap_or_default();
    let out_word = match utf8_path("the benchmark folder", &out) {
        Ok(t) => sh(t),
        Err(e) => return Err(usage_error(submit.json, &e, "pass another --out")),
    };
    let base = format!("{assay} bench {} --n {n} --seed {seed}{baseline} --out {out_word}", suite.name());
    Ok(Plan {
        what: format!("benchmark {}", suite.name()),
        name: format!("bench-{}", suite.name()),
        dir: out.join("slurm"),
        shard_cmd: format!("{base} --shard \"$shard/{shards}\""),
        merge_cmd: format!("{base} --merge-shards {shards}"),
        submit,
    })
}

fn sbatch_args(first: &[&str], opts: &[String], file: &Path) -> Vec<String> {
    let mut v: Vec<String> = first.iter().map(|s| s.to_string()).collect();
    v.extend(opts.iter().cloned());
    v.push(file.display().to_string());
    v
}

/// `--dry-run`: the two job scripts and the sbatch commands that submit them.
fn print_dry_run(json: bool, files: &JobFiles, jobs: &JobScripts, extra: &[String], merge_opts: &[String]) {
    let cmd1 = format!("sbatch {}", sbatch_args(&["--parsable"], extra, &files.shards).join(" "));
    let cmd2 = format!(
        "sbatch {}",
        sbatch_args(&["--parsable", "--dependency=afterok:<ARRAY_JOB_ID>"], merge_opts, &files.merge).join(" ")
    );
    if json {
        outln!(
            "{}",
            pretty(
                &json!({"submitted": false, "shards_job": files.shards, "merge_job": files.merge, "commands": [cmd1, cmd2]})
            )
        );
    } else {
        outln!(
            "# {}\n{}\n# {}\n{}\n# submit with:\n{cmd1}\n{cmd2}",
            files.shards.display(),
            jobs.shards,
            files.merge.display(),
            jobs.merge
        );
    }
}

/// Submits the array job (all shards, or `only` these), then the merge
/// job to run after it, and records both in submit.json.
fn submit_jobs(json: bool, files: &JobFiles, mut sub: Submission, only: Option<(Vec<usize>, Vec<String>)>) -> u8 {
    let (shards, opts, array_arg) = match &only {
        Some((list, opts)) => {
            let ids: Vec<String> = list.iter().map(|i| i.to_string()).collect();
            (list.clone(), opts.clone(), vec![format!("--array={}", ids.join(","))])
        }
        None => ((0..sub.shards).collect(), sub.sbatch.clone(), vec![]),
    };
    let mut first = vec!["--parsable".to_string()];
    first.extend(array_arg);
    first.extend(opts);
    first.push(files.shards.display().to_string());
    let array = match sbatch(&first) {
        Ok(id) => id,
        Err(e) => {
            return usage_error(json, &e, "check the sbatch options after `--`, or use --dry-run to see the jobs")
        }
    };
    sub.arrays.push(ArrayJob { job: array.clone(), shards: shards.clone() });
    let second = sbatch_args(
        &["--parsable", &format!("--dependency=afterok:{array}"), "--kill-on-invalid-dep=no"],
        &sub.merge_sbatch,
        &files.merge,
    );
    let merge = match sbatch(&second) {
        Ok(id) => id,
        Err(e) => {
            let _ = sub.write(&files.dir);
            return usage_error(
                json,
                &format!("the array job {array} was submitted, the merge job was not: {e}"),
                &format!("submit it when the array is done: sbatch {}", files.merge.display()),
            );
        }
    };
    sub.merge_job = merge.clone();
    if let Err(e) = sub.write(&files.dir) {
        eprintln!("note: cannot write {}: {e}; `assay slurm status` will not know these jobs", files.dir.display());
    }
    let dir_word = sh(&files.dir.display().to_string());
    if json {
        outln!(
            "{}",
            pretty(
                &json!({"submitted": true, "array_job": array, "shards": shards, "merge_job": merge, "shards_job": files.shards, "merge_job_file": files.merge, "folder": files.dir})
            )
        );
    } else {
        outln!(
            "submitted array job {array} ({} of {} shards) and merge job {merge} after it\n  jobs: {} and {}\n  logs: {}\n  progress: assay slurm status {dir_word}\n  if a shard fails: assay slurm resubmit {dir_word} --shards I",
            shards.len(),
            sub.shards,
            files.shards.display(),
            files.merge.display(),
            files.dir.join("logs").display()
        );
    }
    EXIT_OK
}

/// `3`, `3,5`, `0-2,7` as shard indices below `count`.
pub(crate) fn parse_list(text: &str, count: usize) -> Result<Vec<usize>, String> {
    let mut out = std::collections::BTreeSet::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |s: &str| s.trim().parse::<usize>().map_err(|_| format!("`{s}` in `{text}` is not a shard index"));
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(part)?, num(part)?),
        };
        if a > b || b >= count {
            return Err(format!("`{part}` is not within the shards 0..{}", count.saturating_sub(1)));
        }
        out.extend(a..=b);
    }
    if out.is_empty() {
        return Err("no shard named: give e.g. --shards 3 or --shards 3,5".into());
    }
    Ok(out.into_iter().collect())
}

/// `assay slurm resubmit DIR --shards LIST`.
fn resubmit(dir: &Path, shards: &str, json: bool, extra: Vec<String>) -> u8 {
    let sub = match Submission::read(dir) {
        Ok(s) => s,
        Err(e) => return usage_error(json, &e, "pass the folder `assay slurm submit` printed (runs/<name>/slurm)"),
    };
    let list = match parse_list(shards, sub.shards) {
        Ok(l) => l,
        Err(e) => return usage_error(json, &e, &format!("shards are numbered 0 to {}", sub.shards.saturating_sub(1))),
    };
    if let Err(e) = sbatch_options(&extra) {
        return usage_error(json, &e, "give sbatch options as plain words");
    }
    let opts = if extra.is_empty() { sub.sbatch.clone() } else { extra };
    // The old merge job waits on an array that can no longer succeed.
    if !sub.merge_job.is_empty() {
        let _ = std::process::Command::new("scancel").args(["--state=PENDING", &sub.merge_job]).output();
    }
    for i in &list {
        let _ = std::fs::remove_file(dir.join(format!("state/shard-{i}.done")));
        let _ = std::fs::remove_file(dir.join(format!("state/shard-{i}.failed")));
    }
    let files = JobFiles { shards: dir.join("shards.sbatch"), merge: dir.join("merge.sbatch"), dir: dir.to_path_buf() };
    submit_jobs(json, &files, sub, Some((list, opts)))
}

/// One task as squeue lists it.
struct Queued {
    state: String,
    node: String,
    reason: String,
}

/// squeue's view of `jobs` (array tasks one per line): (job, task) ->
/// state, or `None` if squeue cannot be asked.
fn queue(jobs: &[String]) -> Option<std::collections::BTreeMap<(String, Option<usize>), Queued>> {
    let out = std::process::Command::new("squeue")
        .args(["-h", "-r", "-o", "%F|%K|%T|%N|%r", "-j", &jobs.join(",")])
        .output()
        .ok()?;
    // squeue exits non-zero when none of the jobs is known any more.
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("Invalid job id") {
        return None;
    }
    let mut m = std::collections::BTreeMap::new();
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
fn status(dir: &Path, json: bool) -> u8 {
    let sub = match Submission::read(dir) {
        Ok(s) => s,
        Err(e) => return usage_error(json, &e, "pass the folder `assay slurm submit` printed (runs/<name>/slurm)"),
    };
    let mut jobs: Vec<String> = sub.arrays.iter().map(|a| a.job.clone()).collect();
    jobs.push(sub.merge_job.clone());
    // (A submission whose merge job could not be submitted has none.)
    jobs.retain(|j| !j.is_empty());
    let q = queue(&jobs);
    let read = |p: PathBuf| {
        assay_interpreter::read_regular(&p, 4096).ok().map(|b| String::from_utf8_lossy(&b).trim().to_string())
    };
    let mut rows = Vec::new();
    let mut fix = Vec::new();
    for i in 0..sub.shards {
        let array = sub.array_of(i).unwrap_or("").to_string();
        let log = dir.join(format!("logs/shard-{i}.job-{array}.log"));
        let queued = q.as_ref().and_then(|m| m.get(&(array.clone(), Some(i))));
        let (state, detail) = if let Some(job) = read(dir.join(format!("state/shard-{i}.done"))) {
            ("done".to_string(), format!("job {job}"))
        } else if let Some(t) = queued {
            let at = if t.state == "running" { format!("on {}", t.node) } else { t.reason.clone() };
            (t.state.clone(), format!("task {array}_{i} {at}"))
        } else if let Some(f) = read(dir.join(format!("state/shard-{i}.failed"))) {
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
        if state == "failed" || state == "lost" {
            fix.push(i);
        }
        rows.push(json!({"shard": i, "state": state, "detail": detail, "log": log}));
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
    let fix_cmd = (!fix.is_empty()).then(|| {
        let list: Vec<String> = fix.iter().map(|i| i.to_string()).collect();
        format!("assay slurm resubmit {} --shards {}", sh(&dir.display().to_string()), list.join(","))
    });
    if json {
        outln!(
            "{}",
            pretty(&json!({"name": sub.name, "shards": rows, "merge": merge, "merge_log": merge_log, "fix": fix_cmd}))
        );
    } else {
        let done = rows.iter().filter(|r| r["state"] == "done").count();
        outln!("assay-{}: {done} of {} shards done", sub.name, sub.shards);
        for r in &rows {
            outln!(
                "  shard {}: {} ({})",
                r["shard"],
                r["state"].as_str().unwrap_or(""),
                r["detail"].as_str().unwrap_or("")
            );
        }
        outln!(
            "  merge: job {} {} ({}); log {}",
            sub.merge_job,
            merge["state"].as_str().unwrap_or(""),
            merge["detail"].as_str().unwrap_or(""),
            merge_log.display()
        );
        if let Some(c) = &fix_cmd {
            outln!("to run the failed shards again, and the merge after them:\n  {c}");
        }
    }
    EXIT_OK
}
