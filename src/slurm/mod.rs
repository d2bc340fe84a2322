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
//!
//! `--stages K` chains K array jobs: stage k+1's shards go on from every
//! shard's record of stage k (`assay run --next-stage`), each array after
//! the one before (`--dependency=afterok`), the merge after the last. A
//! later stage's files carry `.stage-K` (`shards.stage-2.sbatch`,
//! `state/shard-I.stage-2.done`, `logs/shard-I.stage-2.job-ARRAY.log`).

mod jobs;
mod status;

use std::path::{Path, PathBuf};

use assay_interpreter::run_stem;
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::out::EXIT_OK;
use crate::run::{pretty, usage_error};
pub(crate) use jobs::sh;
use jobs::{job_scripts, sbatch_options, stage_tag, utf8_path, JobScripts};

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
        /// Run the shards in this many stages, each array job after the one
        /// before: a script whose later sharded calls depend on earlier
        /// ones' results (an exemplar pass chosen from a layer pass) has
        /// each stage's shards go on from every shard's record of the stage
        /// before (`assay run --next-stage`), and so splits the work of
        /// every stage instead of the merge running it whole.
        #[arg(long, default_value_t = 1, value_name = "K")]
        stages: usize,
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
        /// The stage to run them again from (default: the first stage in
        /// which one of them is not done); the later stages run after it,
        /// for every shard not done in them.
        #[arg(long, value_name = "K")]
        stage: Option<usize>,
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

/// What `submit` and `resubmit` remember in `submit.json`.
#[derive(Serialize, Deserialize, Default)]
struct Submission {
    name: String,
    shards: usize,
    /// Array jobs in a chain, each after the one before (1: no chain).
    #[serde(default = "one")]
    stages: usize,
    /// Each array job submitted, with the shards it runs (all at first,
    /// then those resubmitted) and its stage.
    arrays: Vec<ArrayJob>,
    merge_job: String,
    sbatch: Vec<String>,
    merge_sbatch: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone)]
struct ArrayJob {
    job: String,
    shards: Vec<usize>,
    #[serde(default = "one")]
    stage: usize,
}

fn one() -> usize {
    1
}

/// The most stages a submission chains.
const MAX_STAGES: usize = 16;

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
    /// The last array job that ran shard `i` in `stage`.
    fn array_of(&self, i: usize, stage: usize) -> Option<&str> {
        self.arrays.iter().rev().find(|a| a.stage == stage && a.shards.contains(&i)).map(|a| a.job.as_str())
    }
}

/// A shard's state file of a stage: `state/shard-I[.stage-K].done` (or
/// `.failed`), written by its task when it ends.
fn state_file(dir: &Path, shard: usize, stage: usize, end: &str) -> PathBuf {
    dir.join(format!("state/shard-{shard}{}.{end}", stage_tag(stage)))
}

/// Whether shard `i` finished `stage` (its task wrote the done file).
fn is_done(dir: &Path, shard: usize, stage: usize) -> bool {
    state_file(dir, shard, stage, "done").is_file()
}

/// A stage's job script: `shards.sbatch`, `shards.stage-K.sbatch`.
fn stage_file(dir: &Path, stage: usize) -> PathBuf {
    dir.join(format!("shards{}.sbatch", stage_tag(stage)))
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
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
        SlurmCommand::Submit { script, allow_read, runs_dir, seed, stages, submit } => {
            script_plan(&assay, script, &allow_read, &runs_dir, seed, stages, submit)
        }
        SlurmCommand::Bench { set, submit } => bench_plan(&assay, set, submit),
        SlurmCommand::Status { dir, json } => return status::status(&job_dir(&absolute(&dir)), json),
        SlurmCommand::Resubmit { dir, shards, stage, json, sbatch } => {
            return resubmit(&job_dir(&absolute(&dir)), &shards, stage, json, sbatch)
        }
    };
    let Plan { what, name, dir, stage_cmds, merge_cmd, submit } = match plan {
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
    let jobs = match job_scripts(&what, &name, shards, &cwd, &dir, &stage_cmds, &merge_cmd) {
        Ok(j) => j,
        Err(e) => {
            return usage_error(json, &e, "use a runs folder (--runs-dir, or --out for a benchmark) whose path has no double quotes, backslashes or control characters")
        }
    };
    let files = JobFiles {
        stages: (1..=jobs.stages.len()).map(|k| stage_file(&dir, k)).collect(),
        merge: dir.join("merge.sbatch"),
        dir,
    };
    let mut written =
        std::fs::create_dir_all(files.dir.join("logs")).and_then(|_| std::fs::create_dir_all(files.dir.join("state")));
    for (file, text) in files.stages.iter().zip(&jobs.stages).chain([(&files.merge, &jobs.merge)]) {
        written = written.and_then(|_| std::fs::write(file, text));
    }
    if let Err(e) = written {
        return usage_error(
            json,
            &format!("cannot write the job scripts under {}: {e}", files.dir.display()),
            "pass a writable --runs-dir",
        );
    }
    let merge_opts = if merge_sbatch.is_empty() { extra.clone() } else { merge_sbatch };
    if dry_run {
        print_dry_run(json, &files, &jobs, &extra, &merge_opts);
        return EXIT_OK;
    }
    // A new submission starts from no shard state.
    let stages = files.stages.len();
    for (i, stage, end) in (0..shards).flat_map(|i| (1..=stages).flat_map(move |k| [(i, k, "done"), (i, k, "failed")]))
    {
        let _ = std::fs::remove_file(state_file(&files.dir, i, stage, end));
    }
    let sub = Submission { name, shards, stages, sbatch: extra, merge_sbatch: merge_opts, ..Default::default() };
    submit_jobs(json, &files, sub, 1, None)
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
    /// Each stage's command, the first stage's first.
    stage_cmds: Vec<String>,
    merge_cmd: String,
    submit: SubmitOpts,
}

/// The job files written, and their folder (logs, state, submit.json).
struct JobFiles {
    /// Each stage's job script, the first stage's first.
    stages: Vec<PathBuf>,
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
    stages: usize,
    submit: SubmitOpts,
) -> Result<Plan, u8> {
    let (json, shards) = (submit.json, submit.shards);
    if stages == 0 || stages > MAX_STAGES {
        return Err(usage_error(
            json,
            &format!("--stages {stages} is out of range"),
            &format!("give 1 (the default) to {MAX_STAGES}: one per dependent pass of the script"),
        ));
    }
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
        // A later stage keeps the seed of the stage before (`--next-stage`
        // refuses another).
        stage_cmds: (1..=stages)
            .map(|k| match k {
                1 => format!("{assay} run {abs} --shard \"$shard/{shards}\" {common}{seed_arg}"),
                _ => format!("{assay} run {abs} --shard \"$shard/{shards}\" --next-stage {common}"),
            })
            .collect(),
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
        stage_cmds: vec![format!("{base} --shard \"$shard/{shards}\"")],
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

/// `--dry-run`: the job scripts and the sbatch commands that submit them.
fn print_dry_run(json: bool, files: &JobFiles, jobs: &JobScripts, extra: &[String], merge_opts: &[String]) {
    let mut cmds = Vec::new();
    for (k, file) in files.stages.iter().enumerate() {
        let after = (k > 0).then(|| format!("--dependency=afterok:<STAGE_{k}_ARRAY_JOB_ID>"));
        let first: Vec<&str> = ["--parsable"].into_iter().chain(after.as_deref()).collect();
        cmds.push(format!("sbatch {}", sbatch_args(&first, extra, file).join(" ")));
    }
    let last = if files.stages.len() == 1 {
        "<ARRAY_JOB_ID>".to_string()
    } else {
        format!("<STAGE_{}_ARRAY_JOB_ID>", files.stages.len())
    };
    cmds.push(format!(
        "sbatch {}",
        sbatch_args(&["--parsable", &format!("--dependency=afterok:{last}")], merge_opts, &files.merge).join(" ")
    ));
    if json {
        outln!(
            "{}",
            pretty(
                &json!({"submitted": false, "shards_job": files.stages[0], "stage_jobs": files.stages, "merge_job": files.merge, "commands": cmds})
            )
        );
    } else {
        for (file, text) in files.stages.iter().zip(&jobs.stages) {
            outln!("# {}\n{text}", file.display());
        }
        outln!("# {}\n{}\n# submit with:\n{}", files.merge.display(), jobs.merge, cmds.join("\n"));
    }
}

/// Submits stage `from`'s array job (all shards, or `only` these, with
/// their sbatch options), then each later stage's (the shards not done in
/// it), each after the one before, then the merge job after the last, and
/// records them in submit.json.
fn submit_jobs(
    json: bool,
    files: &JobFiles,
    mut sub: Submission,
    from: usize,
    only: Option<(Vec<usize>, Vec<String>)>,
) -> u8 {
    let (first, opts) = match only {
        Some((list, opts)) => (list, opts),
        None => ((0..sub.shards).collect(), sub.sbatch.clone()),
    };
    let mut after: Option<String> = None;
    let mut submitted = Vec::new();
    for stage in from..=sub.stages {
        let list: Vec<usize> = if stage == from {
            first.clone()
        } else {
            let list: Vec<usize> = (0..sub.shards).filter(|i| !is_done(&files.dir, *i, stage)).collect();
            for i in &list {
                let _ = std::fs::remove_file(state_file(&files.dir, *i, stage, "failed"));
            }
            list
        };
        if list.is_empty() {
            continue;
        }
        let mut args = vec!["--parsable".to_string()];
        if list.len() < sub.shards {
            let ids: Vec<String> = list.iter().map(|i| i.to_string()).collect();
            args.push(format!("--array={}", ids.join(",")));
        }
        if let Some(before) = &after {
            // Held, not killed, if the stage before fails: `resubmit`
            // replaces it.
            args.extend([format!("--dependency=afterok:{before}"), "--kill-on-invalid-dep=no".to_string()]);
        }
        args.extend(opts.iter().cloned());
        args.push(files.stages[stage - 1].display().to_string());
        let array = match sbatch(&args) {
            Ok(id) => id,
            Err(e) if submitted.is_empty() => {
                return usage_error(json, &e, "check the sbatch options after `--`, or use --dry-run to see the jobs")
            }
            Err(e) => {
                let _ = sub.write(&files.dir);
                return usage_error(
                    json,
                    &format!("stage {stage}'s array job was not submitted (those before it were): {e}"),
                    &format!(
                        "fix it, then: assay slurm resubmit {} --shards 0-{} --stage {stage}",
                        sh(&files.dir.display().to_string()),
                        sub.shards - 1
                    ),
                );
            }
        };
        sub.arrays.push(ArrayJob { job: array.clone(), shards: list.clone(), stage });
        submitted.push(json!({"stage": stage, "array_job": array, "shards": list}));
        after = Some(array);
    }
    let mut first_args = vec!["--parsable".to_string()];
    if let Some(before) = &after {
        first_args.extend([format!("--dependency=afterok:{before}"), "--kill-on-invalid-dep=no".to_string()]);
    }
    let refs: Vec<&str> = first_args.iter().map(String::as_str).collect();
    let merge = match sbatch(&sbatch_args(&refs, &sub.merge_sbatch, &files.merge)) {
        Ok(id) => id,
        Err(e) => {
            let _ = sub.write(&files.dir);
            return usage_error(
                json,
                &format!("the array jobs were submitted, the merge job was not: {e}"),
                &format!("submit it when the arrays are done: sbatch {}", files.merge.display()),
            );
        }
    };
    sub.merge_job = merge.clone();
    if let Err(e) = sub.write(&files.dir) {
        eprintln!("note: cannot write {}: {e}; `assay slurm status` will not know these jobs", files.dir.display());
    }
    let dir_word = sh(&files.dir.display().to_string());
    let (array, shards) =
        (&submitted.first().map(|s| s["array_job"].clone()), submitted.first().map(|s| s["shards"].clone()));
    if json {
        outln!(
            "{}",
            pretty(
                &json!({"submitted": true, "array_job": array, "shards": shards, "stages": submitted, "merge_job": merge, "shards_job": files.stages[0], "merge_job_file": files.merge, "folder": files.dir})
            )
        );
    } else {
        for s in &submitted {
            let n = s["shards"].as_array().map_or(0, Vec::len);
            let after = if s == &submitted[0] { String::new() } else { " after the stage before".to_string() };
            let stage =
                if sub.stages > 1 { format!(" for stage {} of {}", s["stage"], sub.stages) } else { String::new() };
            outln!(
                "submitted array job {} ({n} of {} shards){stage}{after}",
                s["array_job"].as_str().unwrap_or("?"),
                sub.shards
            );
        }
        outln!(
            "submitted merge job {merge} after it\n  jobs: {} and {}\n  logs: {}\n  progress: assay slurm status {dir_word}\n  if a shard fails: assay slurm resubmit {dir_word} --shards I",
            files.stages.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "),
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

/// `assay slurm resubmit DIR --shards LIST [--stage K]`.
fn resubmit(dir: &Path, shards: &str, stage: Option<usize>, json: bool, extra: Vec<String>) -> u8 {
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
    // The first stage one of them has not done (the first, if all are done).
    let from = match stage {
        Some(k) if k == 0 || k > sub.stages => {
            return usage_error(
                json,
                &format!("--stage {k} is not a stage of this submission"),
                &format!("its stages are 1 to {}", sub.stages),
            )
        }
        Some(k) => k,
        None => (1..=sub.stages).find(|k| list.iter().any(|i| !is_done(dir, *i, *k))).unwrap_or(1),
    };
    let opts = if extra.is_empty() { sub.sbatch.clone() } else { extra };
    // Jobs waiting on an array that can no longer succeed: the old merge,
    // the later stages' arrays, and these shards' tasks still pending.
    let mut stale = vec![sub.merge_job.clone()];
    stale.extend(sub.arrays.iter().filter(|a| a.stage > from).map(|a| a.job.clone()));
    stale.extend(list.iter().filter_map(|i| sub.array_of(*i, from).map(|a| format!("{a}_{i}"))));
    stale.retain(|j| !j.is_empty());
    if !stale.is_empty() {
        let _ = std::process::Command::new("scancel").arg("--state=PENDING").args(&stale).output();
    }
    for (i, end) in list.iter().flat_map(|i| [(*i, "done"), (*i, "failed")]) {
        let _ = std::fs::remove_file(state_file(dir, i, from, end));
    }
    let files = JobFiles {
        stages: (1..=sub.stages).map(|k| stage_file(dir, k)).collect(),
        merge: dir.join("merge.sbatch"),
        dir: dir.to_path_buf(),
    };
    submit_jobs(json, &files, sub, from, Some((list, opts)))
}
