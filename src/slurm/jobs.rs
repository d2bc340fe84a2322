//! The job scripts `assay slurm` writes: plain bash with `#SBATCH` lines,
//! every value quoted or refused.

use std::path::Path;

/// A word for bash, single-quoted (any text, newlines included, is one
/// literal word inside single quotes).
pub(crate) fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Text for a `#` comment line of a job script: control characters (a
/// newline would end the comment and start a command) written as escapes.
pub(super) fn comment(s: &str) -> String {
    s.chars().flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] }).collect()
}

/// A path as UTF-8 text for a job script, or why it cannot be one: a
/// non-UTF-8 name would be written as another name.
pub(super) fn utf8_path<'p>(what: &str, p: &'p Path) -> Result<&'p str, String> {
    p.to_str().ok_or_else(|| {
        format!("{what} {} is not valid UTF-8; job scripts are UTF-8 text and would name another file", p.display())
    })
}

/// A value for an `#SBATCH` line, which sbatch splits at blanks and whose
/// line a newline would end: refused unless it is plain.
pub(super) fn sbatch_value<'v>(what: &str, v: &'v str) -> Result<&'v str, String> {
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
pub(super) fn sbatch_folder(what: &str, folder: &str) -> Result<String, String> {
    match folder.chars().find(|c| c.is_control() || matches!(c, '"' | '\\')) {
        Some(c) => {
            Err(format!("{what} `{}` holds the character {c:?}, which an #SBATCH line cannot carry", comment(folder)))
        }
        None => Ok(folder.replace('%', "%%")),
    }
}

/// The sbatch options given after `--`: passed as arguments (no shell),
/// but printed and recorded, so no control characters.
pub(super) fn sbatch_options(opts: &[String]) -> Result<(), String> {
    match opts.iter().find(|o| o.chars().any(char::is_control)) {
        Some(o) => Err(format!("the sbatch option `{}` holds a control character", comment(o))),
        None => Ok(()),
    }
}

/// The part of a stage's file names that tells it apart: nothing for the
/// first stage (`shards.sbatch`, `shard-I.done`), `.stage-K` after it.
pub(crate) fn stage_tag(stage: usize) -> String {
    if stage <= 1 {
        String::new()
    } else {
        format!(".stage-{stage}")
    }
}

pub(crate) struct JobScripts {
    /// Each stage's array job, the first stage's first.
    pub stages: Vec<String>,
    pub merge: String,
}

/// The job scripts: plain bash with #SBATCH lines. `stage_cmds[k]` runs
/// shard `$shard` of `count` (its index from the array task id) in stage
/// k+1, `merge_cmd` the merge; `dir` holds the logs and the shards' state
/// files.
pub(crate) fn job_scripts(
    what: &str,
    name: &str,
    count: usize,
    cwd: &Path,
    dir: &Path,
    stage_cmds: &[String],
    merge_cmd: &str,
) -> Result<JobScripts, String> {
    let what = comment(what);
    let header = |job: &str| {
        format!("#!/bin/bash\n# Written by `assay slurm submit` for {what}: {job}.\n# Edit freely; submit again with sbatch.\n")
    };
    let name = sbatch_value("the job name", name)?;
    let cwd = sh(utf8_path("the current folder", cwd)?);
    let dir = utf8_path("the runs folder", dir)?;
    let logs = sbatch_folder("the runs folder", &format!("{dir}/logs"))?;
    let state = sh(&format!("{dir}/state"));
    let stages = stage_cmds.len();
    let mut scripts = Vec::new();
    for (k, shard_cmd) in stage_cmds.iter().enumerate() {
        let stage = k + 1;
        let tag = stage_tag(stage);
        let (job, of, after) = if stages == 1 {
            (name.to_string(), String::new(), String::new())
        } else if stage == 1 {
            (name.to_string(), format!(", stage 1 of {stages}"), String::new())
        } else {
            let before = stage_tag(stage - 1);
            (
                format!("{name}-stage{stage}"),
                format!(", stage {stage} of {stages}"),
                format!(
                    "# Each shard goes on from every shard's record of stage {} (`--next-stage`),\n\
                         # so this array runs after that stage's (sbatch --dependency=afterok:...):\n\
                         # its tasks wrote $state/shard-*{before}.done.\n",
                    stage - 1
                ),
            )
        };
        let file = if stage == 1 { "shards.sbatch".to_string() } else { format!("shards{tag}.sbatch") };
        scripts.push(format!(
            "{}#SBATCH --job-name=assay-{job}\n#SBATCH --array=0-{last}\n#SBATCH --output=\"{logs}/shard-%a{tag}.job-%A.log\"\n\
             #SBATCH --open-mode=append\n#SBATCH --requeue\n\
             set -euo pipefail\ncd {cwd}\n\
             # The shard is the array task's id; the count is fixed here, so that\n\
             # `sbatch --array=3 {file}` (or `assay slurm resubmit --shards 3`)\n\
             # runs shard 3 of {count}. A shard run again replaces its record.\n\
             {after}\
             shard=${{SLURM_ARRAY_TASK_ID:?this job script runs as an array task}}\n\
             state={state}\n\
             mkdir -p \"$state\"\n\
             echo \"== assay: shard $shard of {count}{of}, attempt $(( ${{SLURM_RESTART_COUNT:-0}} + 1 )), job ${{SLURM_JOB_ID:-?}} on ${{SLURMD_NODENAME:-$(hostname)}} at $(date -u +%Y-%m-%dT%H:%M:%SZ)\"\n\
             rm -f \"$state/shard-$shard{tag}.done\" \"$state/shard-$shard{tag}.failed\"\n\
             status=0\n\
             {shard_cmd} || status=$?\n\
             if [ \"$status\" = 0 ]; then\n  echo \"${{SLURM_JOB_ID:-?}}\" > \"$state/shard-$shard{tag}.done\"\n\
             else\n  echo \"$status ${{SLURM_JOB_ID:-?}}\" > \"$state/shard-$shard{tag}.failed\"\nfi\n\
             exit \"$status\"\n",
            header(&format!("{count} shards{of} as an array job")),
            last = count - 1,
        ));
    }
    let merge = format!(
        "{}#SBATCH --job-name=assay-{name}-merge\n#SBATCH --output=\"{logs}/merge.job-%j.log\"\n\
         set -euo pipefail\ncd {cwd}\n\
         # Checks that every shard finished (same script, Assay and seed), then writes the merged record.\n\
         exec {merge_cmd}\n",
        header("the merge of its shards"),
    );
    Ok(JobScripts { stages: scripts, merge })
}
