//! Sharded runs from the command line: `assay run --shard I/N` (its index
//! also from SLURM or Kubernetes) and `assay merge`; `crate::slurm` writes
//! and submits them as SLURM jobs.
//! What a shard computes and how shares merge is the interpreter's business
//! (`assay_interpreter::shard`); here are the folders, checks and jobs.

use assay_interpreter::ManifestFile;
use std::path::{Path, PathBuf};

use assay_interpreter::shard::Share;
use assay_interpreter::{read_regular, run_stem, Manifest, ShardId, ASSAY_VERSION};

use crate::cache::CacheUse;
use crate::run::{cmd_run, load_script, usage_error};
use crate::slurm::sh;
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
    allow: &[PathBuf],
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
    // The command that runs shard i as the others ran: same runs folder,
    // readable folders and seed (the seed once a shard's record says it).
    let word = |p: &Path| sh(&p.to_string_lossy());
    let mut common = format!(" --runs-dir {}", word(runs_dir));
    for a in allow {
        common.push_str(&format!(" --allow-read {}", word(a)));
    }
    let rerun = |i: usize, seed: Option<(u64, usize)>| {
        let seed = seed.map(|(s, _)| format!(" --seed {s}")).unwrap_or_default();
        format!("assay run {} --shard {i}/{count}{common}{seed}", sh(script))
    };
    let mut missing = Vec::new();
    let mut g = Gathered { partials: Vec::new(), stopped: Vec::new(), seed: 0, inputs: Default::default() };
    let mut seed: Option<(u64, usize)> = None;
    for i in 0..count {
        let dir = crate::run::shard_dir(runs_dir, stem, i, count);
        if !dir.join("manifest.json").is_file() {
            missing.push(i);
            continue;
        }
        let known = seed;
        let bad =
            |why: String| (format!("shard {i} ({}): {why}", dir.display()), format!("rerun it: {}", rerun(i, known)));
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
                missing.iter().map(|i| rerun(*i, seed)).collect::<Vec<_>>().join("; ")
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

/// A file a shard read that is not what it read now: the merge (or a next
/// stage) reads the models and data again for the work it does itself, and
/// a changed file would mix two inputs.
fn changed_input(g: &Gathered) -> Option<(String, String)> {
    for (path, (d, i)) in &g.inputs {
        let Some(now) = digest_now(Path::new(path)) else { continue };
        if now != *d {
            return Some((
                format!(
                    "{path} changed since shard {i} read it (sha256 {}… then, {}… now)",
                    &d[..12.min(d.len())],
                    &now[..12]
                ),
                "rerun the shards on the files as they are now, then merge".into(),
            ));
        }
    }
    None
}

/// `assay run SCRIPT --shard I/N --next-stage`: shard I of the next stage
/// of a script whose sharded calls depend on each other. Every shard's
/// record of the stage before is read (as the merge reads them); the run
/// merges the sharded calls they all finished and splits the first one
/// they did not, and its record (replacing the old one) keeps this shard's
/// partials of both, so the final `assay merge` answers every stage.
#[allow(clippy::too_many_arguments)]
pub fn cmd_next_stage(
    script: &str,
    share: Share,
    json: bool,
    allow: &[PathBuf],
    seed: Option<u64>,
    runs_dir: &Path,
    budget: Budget,
    cache: CacheUse,
) -> u8 {
    let s = match load_script(script) {
        Ok(s) => s,
        Err((m, h)) => return usage_error(json, &m, &h),
    };
    // Shards of this stage replace their records as they finish (a rename
    // aside, then one into place): a record caught midway is read again.
    let mut tries = 0;
    let g = loop {
        match gather(runs_dir, &s.stem, &s.file.text, script, share.count, budget.memory, allow) {
            Ok(g) => break g,
            Err(_) if tries < 3 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
            Err((m, h)) => {
                return usage_error(
                    json,
                    &format!("the next stage needs every shard's record of the stage before: {m}"),
                    &h,
                )
            }
        }
    };
    if let Some((m, h)) = changed_input(&g) {
        return usage_error(json, &m, &h);
    }
    if let Some(s) = seed.filter(|s| *s != g.seed) {
        return usage_error(
            json,
            &format!("--seed {s} is not the seed the stage before ran with ({})", g.seed),
            "leave --seed out: a next stage runs with the seed of the stage before",
        );
    }
    let job = ShardJob::Part { index: share.index, count: share.count, earlier: g.partials };
    cmd_run(script, json, allow, Some(g.seed), runs_dir, budget, cache, job)
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
    let g = match gather(runs_dir, &s.stem, &s.file.text, script, count, budget.memory, allow) {
        Ok(g) => g,
        Err((m, h)) => return usage_error(json, &m, &h),
    };
    if let Some((m, h)) = changed_input(&g) {
        return usage_error(json, &m, &h);
    }
    let job = ShardJob::Merge { partials: g.partials, stopped: g.stopped };
    if !json {
        // Said plainly: a shard's record is checked for damage, not forgery.
        eprintln!("note: the shards' records are trusted as written: their digests catch damage, not someone who can write the runs folder (keep it where only your jobs write)");
    }
    cmd_run(script, json, allow, Some(g.seed), runs_dir, budget, cache, job)
}
