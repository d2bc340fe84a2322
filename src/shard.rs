//! Sharded runs from the command line: `assay run --shard I/N` (its index
//! also from SLURM or Kubernetes), `assay merge`, and `assay slurm submit`,
//! which writes and submits an array job of shards and a merge job after it.
//! What a shard computes and how shares merge is the interpreter's business
//! (`assay_interpreter::shard`); here are the folders, checks and jobs.

use assay_interpreter::ManifestFile;
use std::path::{Path, PathBuf};

use assay_interpreter::shard::Share;
use assay_interpreter::{read_regular, run_stem, Manifest, ShardId, ASSAY_VERSION};
use clap::Subcommand;
use serde_json::json;

use crate::cache::CacheUse;
use crate::out::EXIT_OK;
use crate::run::{cmd_run, load_script, pretty, usage_error};
use crate::supervise::{Budget, ShardJob};

/// `I/N`, or `auto` (SLURM's array index and count), or `auto/N` (the
/// index from SLURM or from Kubernetes' JOB_COMPLETION_INDEX).
pub fn resolve(arg: &str) -> Result<Share, String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let num = |k: &str, v: String| v.trim().parse::<usize>().map_err(|_| format!("{k}={v} is not a whole number"));
    let Some(rest) = arg.strip_prefix("auto") else { return Share::parse(arg) };
    let count = match rest.strip_prefix('/') {
        Some(n) => Some(n.trim().parse::<usize>().map_err(|_| format!("`{n}` is not a number of shards"))?),
        None if rest.is_empty() => None,
        None => return Err(format!("`{arg}` is not I/N, auto or auto/N")),
    };
    let index = if let Some(id) = env("SLURM_ARRAY_TASK_ID") {
        let min = match env("SLURM_ARRAY_TASK_MIN") {
            Some(m) => num("SLURM_ARRAY_TASK_MIN", m)?,
            None => 0,
        };
        num("SLURM_ARRAY_TASK_ID", id)?.checked_sub(min).ok_or("SLURM_ARRAY_TASK_ID is below SLURM_ARRAY_TASK_MIN")?
    } else if let Some(i) = env("JOB_COMPLETION_INDEX") {
        num("JOB_COMPLETION_INDEX", i)?
    } else {
        return Err(format!(
            "--shard {arg}: neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set (is this an array job?)"
        ));
    };
    let count = match (count, env("SLURM_ARRAY_TASK_COUNT")) {
        (Some(n), _) => n,
        (None, Some(c)) => num("SLURM_ARRAY_TASK_COUNT", c)?,
        (None, None) => return Err(format!("--shard {arg}: the number of shards is not known; write --shard auto/N")),
    };
    Share::new(index, count)
}

/// Largest partials.bin the merge reads.
const MAX_PARTIALS_BYTES: u64 = 4 << 30;

struct Gathered {
    partials: Vec<String>,
    stopped: Vec<Option<String>>,
    seed: u64,
    /// Every file a shard read: path -> (digest, first shard that read it).
    inputs: std::collections::BTreeMap<String, (String, usize)>,
}

/// Reads shards 0..count of `script`, checking that each finished, ran this
/// script with this Assay and the same seed, and agrees with the others on
/// every file they both read. Errors are (message, help).
fn gather(
    runs_dir: &Path,
    stem: &str,
    text: &str,
    script: &str,
    count: usize,
    memory: u64,
) -> Result<Gathered, (String, String)> {
    use base64::Engine as _;
    use sha2::Digest;
    // The merge holds every shard's partials (and the child decodes them):
    // more than its memory budget allows is refused before any is read.
    let total: u64 = (0..count)
        .filter_map(|i| {
            std::fs::symlink_metadata(crate::run::shard_dir(runs_dir, stem, i, count).join("partials.bin")).ok()
        })
        .map(|m| m.len())
        .sum();
    if total.saturating_mul(3) > memory {
        return Err((
            format!(
                "the shards' partial records hold {} MiB, more than the merge can hold within its memory budget of {} MiB",
                total >> 20,
                memory >> 20
            ),
            "merge with a larger --memory (about three times the partials' size)".into(),
        ));
    }
    let want_sha = hex::encode(sha2::Sha256::digest(text.as_bytes()));
    let rerun = |i: usize| format!("assay run {script} --shard {i}/{count}");
    let mut missing = Vec::new();
    let mut g = Gathered { partials: Vec::new(), stopped: Vec::new(), seed: 0, inputs: Default::default() };
    let mut seed: Option<(u64, usize)> = None;
    for i in 0..count {
        let dir = crate::run::shard_dir(runs_dir, stem, i, count);
        if !dir.join("manifest.json").is_file() {
            missing.push(i);
            continue;
        }
        let bad = |why: String| (format!("shard {i} ({}): {why}", dir.display()), format!("rerun it: {}", rerun(i)));
        let manifest = read_regular(&dir.join("manifest.json"), 64 << 20)
            .map_err(|e| format!("manifest.json: {e}"))
            .and_then(|b| Manifest::parse(&b))
            .map_err(bad)?;
        if manifest.status != assay_interpreter::Status::Partial || manifest.shard != Some(ShardId { index: i, count })
        {
            return Err(bad("manifest.json is not this shard's partial record".into()));
        }
        let sha = manifest.script.sha256.as_str();
        if sha != want_sha {
            return Err(bad(format!(
                "it ran another version of the script (sha256 {}…, this one is {}…)",
                sha.get(..12).unwrap_or(sha),
                &want_sha[..12]
            )));
        }
        if manifest.assay_version != ASSAY_VERSION {
            return Err(bad(format!("it ran Assay \"{}\", this is {ASSAY_VERSION}", manifest.assay_version)));
        }
        let s = manifest.seed;
        match seed {
            Some((s0, j)) if s0 != s => {
                return Err(bad(format!("it ran with seed {s}, shard {j} with seed {s0}")));
            }
            None => seed = Some((s, i)),
            _ => {}
        }
        let bytes = read_regular(&dir.join("partials.bin"), MAX_PARTIALS_BYTES).map_err(bad)?;
        if manifest.partials_sha256.as_deref() != Some(hex::encode(sha2::Sha256::digest(&bytes)).as_str()) {
            return Err(bad("partials.bin does not match the digest in its manifest: the record was altered".into()));
        }
        for (path, d) in manifest.inputs {
            match g.inputs.get(&path) {
                Some((d0, j)) if *d0 != d => {
                    return Err(bad(format!(
                        "it read {path} with sha256 {}…, shard {j} read it as {}…",
                        &d[..12.min(d.len())],
                        &d0[..12.min(d0.len())]
                    )));
                }
                Some(_) => {}
                None => {
                    g.inputs.insert(path, (d, i));
                }
            }
        }
        g.partials.push(base64::engine::general_purpose::STANDARD.encode(&bytes));
        g.stopped.push(manifest.stopped);
    }
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|i| i.to_string()).collect();
        return Err((
            format!(
                "shard(s) {} of {count} have no finished record under {}",
                list.join(", "),
                runs_dir.join(run_stem(stem)).display()
            ),
            format!(
                "run the missing shard(s), then merge again: {}",
                missing.iter().map(|i| rerun(*i)).collect::<Vec<_>>().join("; ")
            ),
        ));
    }
    g.seed = seed.map(|s| s.0).unwrap_or(0);
    Ok(g)
}

/// The sha256 of a file now: through Assay's digest memo for its own cache
/// files (models), else by reading it.
fn digest_now(path: &Path) -> Option<String> {
    crate::cache::input_digest(path)
}

pub fn cmd_merge(
    script: &str,
    count: usize,
    json: bool,
    allow: &[PathBuf],
    runs_dir: &Path,
    budget: Budget,
    cache: CacheUse,
) -> u8 {
    if count == 0 || count > assay_interpreter::shard::MAX_SHARDS {
        return usage_error(json, &format!("--shards {count} is out of range"), "e.g. --shards 4");
    }
    let s = match load_script(script) {
        Ok(s) => s,
        Err((m, h)) => return usage_error(json, &m, &h),
    };
    let g = match gather(runs_dir, &s.stem, &s.file.text, script, count, budget.memory) {
        Ok(g) => g,
        Err((m, h)) => return usage_error(json, &m, &h),
    };
    // The merge reads the models and data again for the work it does
    // itself; a file that changed since the shards ran would mix two inputs.
    for (path, (d, i)) in &g.inputs {
        if let Some(now) = digest_now(Path::new(path)) {
            if now != *d {
                return usage_error(
                    json,
                    &format!(
                        "{path} changed since shard {i} read it (sha256 {}… then, {}… now)",
                        &d[..12.min(d.len())],
                        &now[..12]
                    ),
                    "rerun the shards on the files as they are now, then merge",
                );
            }
        }
    }
    let job = ShardJob::Merge { partials: g.partials, stopped: g.stopped };
    if !json {
        // Said plainly: a shard's record is checked for damage, not forgery.
        eprintln!("note: the shards' records are trusted as written: their digests catch damage, not someone who can write the runs folder (keep it where only your jobs write)");
    }
    cmd_run(script, json, allow, Some(g.seed), runs_dir, budget, cache, job)
}

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
    /// Options for sbatch (both jobs), after `--`: e.g. -- --partition=gpu --time=2:00:00 --mem=16G
    #[arg(last = true)]
    sbatch: Vec<String>,
}

/// A word for bash, single-quoted (any text, newlines included, is one
/// literal word inside single quotes).
fn sh(s: &str) -> String {
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
/// one shard (its index from SLURM's environment), `merge_cmd` the merge.
pub(crate) fn job_scripts(
    what: &str,
    name: &str,
    count: usize,
    cwd: &Path,
    logs: &Path,
    shard_cmd: &str,
    merge_cmd: &str,
) -> Result<JobScripts, String> {
    let what = comment(what);
    let header = |job: &str| {
        format!("#!/bin/bash\n# Written by `assay slurm submit` for {what}: {job}.\n# Edit freely; submit again with sbatch.\n")
    };
    let name = sbatch_value("the job name", name)?;
    let cwd = utf8_path("the current folder", cwd)?;
    let logs = utf8_path("the runs folder", logs)?;
    let shard_log = format!("{logs}/shard-%a.log");
    let merge_log = format!("{logs}/merge.log");
    sbatch_value("the runs folder", &shard_log)?;
    let shards = format!(
        "{}#SBATCH --job-name=assay-{name}\n#SBATCH --array=0-{last}\n#SBATCH --output={log}\n#SBATCH --requeue\n\
         set -euo pipefail\ncd {cwd}\n\
         # Each task runs its shard (index and count from SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT).\n\
         # A shard run again replaces its record.\n\
         exec {shard_cmd}\n",
        header(&format!("{count} shards as an array job")),
        last = count - 1,
        log = shard_log,
        cwd = sh(cwd),
    );
    let merge = format!(
        "{}#SBATCH --job-name=assay-{name}-merge\n#SBATCH --output={log}\n\
         set -euo pipefail\ncd {cwd}\n\
         # Checks that every shard finished (same script, Assay and seed), then writes the merged record.\n\
         exec {merge_cmd}\n",
        header("the merge of its shards"),
        log = merge_log,
        cwd = sh(cwd),
    );
    Ok(JobScripts { shards, merge })
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
    };
    let Plan { what, name, dir, shard_cmd, merge_cmd, submit } = match plan {
        Ok(p) => p,
        Err(code) => return code,
    };
    let SubmitOpts { shards, dry_run, json, sbatch: extra } = submit;
    if shards == 0 || shards > assay_interpreter::shard::MAX_SHARDS {
        return usage_error(json, &format!("--shards {shards} is out of range"), "e.g. --shards 8");
    }
    if let Err(e) = sbatch_options(&extra) {
        return usage_error(json, &e, "give sbatch options as plain words, e.g. -- --partition=gpu --time=2:00:00");
    }
    let jobs = match job_scripts(&what, &name, shards, &cwd, &dir, &shard_cmd, &merge_cmd) {
        Ok(j) => j,
        Err(e) => {
            return usage_error(json, &e, "use a runs folder (--runs-dir, or --out for a benchmark) whose path has no blanks, quotes or control characters")
        }
    };
    let shards_file = dir.join("shards.sbatch");
    let merge_file = dir.join("merge.sbatch");
    let written = std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::write(&shards_file, &jobs.shards))
        .and_then(|_| std::fs::write(&merge_file, &jobs.merge));
    if let Err(e) = written {
        return usage_error(
            json,
            &format!("cannot write the job scripts under {}: {e}", dir.display()),
            "pass a writable --runs-dir",
        );
    }
    let files = JobFiles { shards: shards_file, merge: merge_file, logs: dir };
    if dry_run {
        print_dry_run(json, &files, &jobs, &extra);
        return EXIT_OK;
    }
    submit_jobs(json, &files, shards, &extra)
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

/// The job files written, and the folder of their logs.
struct JobFiles {
    shards: PathBuf,
    merge: PathBuf,
    logs: PathBuf,
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
        shard_cmd: format!("{assay} run {abs} --shard auto {common}{seed_arg}"),
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
        shard_cmd: format!("{base} --shard auto"),
        merge_cmd: format!("{base} --merge-shards {shards}"),
        submit,
    })
}

/// `--dry-run`: the two job scripts and the sbatch commands that submit them.
fn print_dry_run(json: bool, files: &JobFiles, jobs: &JobScripts, extra: &[String]) {
    let mut first = vec!["--parsable".to_string()];
    first.extend(extra.iter().cloned());
    first.push(files.shards.display().to_string());
    let cmd1 = format!("sbatch {}", first.join(" "));
    let mut second = vec!["--parsable".to_string(), "--dependency=afterok:<ARRAY_JOB_ID>".to_string()];
    second.extend(extra.iter().cloned());
    second.push(files.merge.display().to_string());
    let cmd2 = format!("sbatch {}", second.join(" "));
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

/// Submits the array job, then the merge job to run after it.
fn submit_jobs(json: bool, files: &JobFiles, shards: usize, extra: &[String]) -> u8 {
    let mut first = vec!["--parsable".to_string()];
    first.extend(extra.iter().cloned());
    first.push(files.shards.display().to_string());
    let array = match sbatch(&first) {
        Ok(id) => id,
        Err(e) => {
            return usage_error(json, &e, "check the sbatch options after `--`, or use --dry-run to see the jobs")
        }
    };
    let mut second =
        vec!["--parsable".to_string(), format!("--dependency=afterok:{array}"), "--kill-on-invalid-dep=no".to_string()];
    second.extend(extra.iter().cloned());
    second.push(files.merge.display().to_string());
    let merge = match sbatch(&second) {
        Ok(id) => id,
        Err(e) => {
            return usage_error(
                json,
                &format!("the array job {array} was submitted, the merge job was not: {e}"),
                &format!("submit it when the array is done: sbatch {}", files.merge.display()),
            )
        }
    };
    if json {
        outln!(
            "{}",
            pretty(
                &json!({"submitted": true, "array_job": array, "merge_job": merge, "shards_job": files.shards, "merge_job_file": files.merge})
            )
        );
    } else {
        outln!(
            "submitted array job {array} ({shards} shards) and merge job {merge} after it\n  jobs: {} and {}\n  logs: {}\n  if a shard fails, rerun its task (the command in the array job, with --shard I/{shards}) and then the merge job",
            files.shards.display(),
            files.merge.display(),
            files.logs.display()
        );
    }
    EXIT_OK
}
