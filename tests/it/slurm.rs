//! Sharded runs on a real SLURM: a one-node cluster (Debian's slurm-wlm and
//! munge; slurmctld and slurmd on loopback, configured in a temporary
//! folder by `tests/slurm/cluster.sh`) runs `assay slurm submit`'s array job
//! and its merge job; the merged record must equal the one-machine record
//! byte for byte, also when SLURM requeues a shard midway. The same for a
//! benchmark (`assay slurm bench`).
//!
//! `.ci/run` installs slurm-wlm and munge and sets ASSAY_REQUIRE_SLURM=1, so
//! there these tests cannot be skipped; elsewhere, without SLURM installed
//! (or without root, which slurmd needs), `tests/outside.rs` reports them as
//! ignored, saying what they need.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{repo_root, Test};

struct Cluster {
    dir: tempfile::TempDir,
    /// One cluster at a time: they listen on the same ports.
    _one: std::sync::MutexGuard<'static, ()>,
}

static ONE_CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What this machine lacks to run a SLURM cluster, if anything.
pub(crate) fn missing() -> Option<String> {
    let have =
        Command::new("sh").args(["-c", "command -v slurmctld && command -v slurmd && command -v munged"]).output();
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !have.is_ok_and(|o| o.status.success()) {
        return Some("slurm-wlm and munge (apt-get install slurm-wlm munge)".into());
    }
    (!root).then(|| "root (slurmd runs as root)".into())
}

impl Cluster {
    fn conf(&self) -> String {
        self.dir.path().join("slurm.conf").display().to_string()
    }

    /// Starts a one-node cluster (`missing` says whether it can run here).
    fn start() -> Cluster {
        Cluster::start_nodes(1)
    }

    /// Starts a cluster of `nodes` (1, or 2: n1 and n2, each slurmd in PID
    /// and mount namespaces of its own).
    fn start_nodes(nodes: usize) -> Cluster {
        if let Some(what) = missing() {
            panic!("the SLURM tests need {what}");
        }
        let one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new(repo_root().join("tests/slurm/cluster.sh"))
            .arg("start")
            .arg(dir.path())
            .arg(nodes.to_string())
            .status()
            .unwrap();
        assert!(st.success(), "the test cluster did not start (logs were printed above)");
        Cluster { dir, _one: one }
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", self.conf());
        c
    }

    /// Waits until none of `jobs` is pending or running.
    fn wait(&self, jobs: &[&str], limit: Duration) {
        let started = Instant::now();
        loop {
            let out = self.cmd("squeue").args(["-h", "-o", "%i %T", "-j", &jobs.join(",")]).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            if text.trim().is_empty() {
                return;
            }
            assert!(started.elapsed() < limit, "jobs still queued after {limit:?}:\n{text}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The state of every task of `job` (sacct is not configured: scontrol
    /// knows finished jobs for MinJobAge seconds).
    fn states(&self, job: &str) -> String {
        let out = self.cmd("scontrol").args(["show", "job", job]).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter(|w| w.starts_with("JobState=") || w.starts_with("JobId=") || w.starts_with("Restarts="))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("tests/slurm/cluster.sh")).arg("stop").arg(self.dir.path()).status();
    }
}

fn results(run: &Path) -> String {
    std::fs::read_to_string(run.join("results.json")).unwrap()
}

fn numbered_runs(dir: &Path) -> Vec<PathBuf> {
    crate::support::runs_of(dir, "s")
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .collect()
}

/// The results.json of `s.assay` run whole on this machine.
fn one_machine(dir: &Path) -> String {
    let one = Test::new(dir).args(["run", "s.assay", "--json"]).run();
    assert_eq!(one.code, 0, "{}{}", one.stdout, one.stderr);
    results(&numbered_runs(dir).pop().unwrap())
}

fn submit(c: &Cluster, dir: &Path, args: &[&str]) -> (String, String) {
    // `--json` before any `--`, which passes the rest to sbatch.
    let out = Test::new(dir).env("SLURM_CONF", c.conf()).args(&args[..2]).arg("--json").args(&args[2..]).run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let j = out.json();
    assert_eq!(j["submitted"], true, "{j}");
    (j["array_job"].as_str().unwrap().to_string(), j["merge_job"].as_str().unwrap().to_string())
}

pub(crate) fn slurm_array_jobs_merge_to_the_one_machine_records() {
    let c = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    crate::shard::setup(dir.path());
    let one = one_machine(dir.path());

    // The exemplar passes, the head sweep and the map, as 3 array tasks and a merge job.
    let (array, merge) = submit(&c, dir.path(), &["slurm", "submit", "s.assay", "--shards", "3"]);
    c.wait(&[&array, &merge], Duration::from_secs(600));
    let log = std::fs::read_to_string(dir.path().join(format!("runs/s/slurm/logs/merge.job-{merge}.log")))
        .unwrap_or_default();
    let runs = numbered_runs(dir.path());
    assert_eq!(runs.len(), 2, "the merge job wrote one run ({}): {log}", c.states(&merge));
    assert_eq!(results(&runs[1]), one, "the merged record equals the one-machine record");
    for i in 0..3 {
        assert!(dir.path().join(format!("runs/s/shard-{i}-of-3/partials.bin")).is_file());
    }

    // SLURM requeues shard 1 while it runs (as after a node failure): the
    // task runs again, replaces its record, and the merge still matches.
    for i in 0..3 {
        std::fs::remove_dir_all(dir.path().join(format!("runs/s/shard-{i}-of-3"))).unwrap();
    }
    let (array, merge) = submit(&c, dir.path(), &["slurm", "submit", "s.assay", "--shards", "3", "--", "--requeue"]);
    let task = format!("{array}_1");
    let started = Instant::now();
    while !c.states(&task).contains("JobState=RUNNING") {
        assert!(started.elapsed() < Duration::from_secs(120), "task 1 never ran: {}", c.states(&task));
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let rq = c.cmd("scontrol").args(["requeue", &task]).output().unwrap();
    assert!(rq.status.success(), "scontrol requeue: {}", String::from_utf8_lossy(&rq.stderr));
    c.wait(&[&array, &merge], Duration::from_secs(900));
    assert!(c.states(&task).contains("Restarts=1"), "task 1 was requeued once: {}", c.states(&task));
    let runs = numbered_runs(dir.path());
    assert_eq!(runs.len(), 3, "the merge after the requeue wrote a run: {}", c.states(&merge));
    assert_eq!(results(&runs[2]), one, "after a requeued shard the merged record still equals the one-machine record");
}

pub(crate) fn a_slurm_benchmark_merges_to_the_one_machine_table() {
    let c = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let bench = ["bench", "numeric", "--n", "4", "--baseline", "floor", "--jobs", "1"];
    let one = Test::new(dir.path()).args(bench).args(["--out", "one"]).run();
    assert_eq!(one.code, 0, "{}{}", one.stdout, one.stderr);
    let out = dir.path().join("sharded");
    let (array, merge) = submit(
        &c,
        dir.path(),
        &[
            "slurm",
            "bench",
            "numeric",
            "--n",
            "4",
            "--baseline",
            "floor",
            "--shards",
            "2",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    c.wait(&[&array, &merge], Duration::from_secs(600));
    let read = |p: &Path| std::fs::read_to_string(p.join("baseline-floor/results.json")).unwrap_or_default();
    let log = std::fs::read_to_string(out.join(format!("slurm/logs/merge.job-{merge}.log"))).unwrap_or_default();
    assert_eq!(read(&out), read(&dir.path().join("one")), "merge log: {log}");
    assert!(!read(&out).is_empty());
}

/// `assay slurm status` and `resubmit` on a submission whose shard 1 was
/// cancelled before it ran, in a folder whose path holds a blank and an
/// apostrophe (quoted in every line of the job scripts): status names the
/// shard and the command that fixes it; that command runs shard 1 of 3
/// alone (not shard 0 of 1, as `--shard auto` did for `sbatch --array=1`)
/// and a merge after it, whose record equals the one-machine record.
pub(crate) fn a_cancelled_shard_resubmitted_alone_completes_the_merge() {
    let c = Cluster::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("it's a folder");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("s.assay"), "record \"noisy\", shard_map(range(0, 30), x => x * x + randn())\n").unwrap();
    let one = one_machine(&dir);
    // Held, so that shard 1 is cancelled before it can run; the merge job
    // gets options of its own (not held).
    let (array, merge) =
        submit(&c, &dir, &["slurm", "submit", "s.assay", "--shards", "3", "--merge-sbatch=--time=10", "--", "--hold"]);
    let cancel = c.cmd("scancel").arg(format!("{array}_1")).output().unwrap();
    assert!(cancel.status.success(), "{}", String::from_utf8_lossy(&cancel.stderr));
    let rel = c.cmd("scontrol").args(["release", &array]).output().unwrap();
    assert!(rel.status.success(), "{}", String::from_utf8_lossy(&rel.stderr));
    c.wait(&[&array], Duration::from_secs(600));
    let status = |c: &Cluster| {
        let out = Test::new(&dir).env("SLURM_CONF", c.conf()).args(["slurm", "status", "runs/s", "--json"]).run();
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        out.json()
    };
    let s = status(&c);
    let states: Vec<&str> = s["shards"].as_array().unwrap().iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["done", "lost", "done"], "{s}");
    assert_eq!(s["merge"]["state"], "pending", "{s}");
    let fix = s["fix"].as_str().unwrap();
    assert!(fix.ends_with("--shards 1"), "{fix}");
    assert_eq!(numbered_runs(&dir).len(), 1, "no merge without shard 1");

    let out = Test::new(&dir)
        .env("SLURM_CONF", c.conf())
        .args(["slurm", "resubmit", "runs/s/slurm", "--shards", "1", "--json", "--", "--time=10"])
        .run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let j = out.json();
    assert_eq!(j["shards"], serde_json::json!([1]), "{j}");
    let (array2, merge2) = (j["array_job"].as_str().unwrap().to_string(), j["merge_job"].as_str().unwrap().to_string());
    c.wait(&[&array2, &merge2], Duration::from_secs(600));
    assert!(!c.states(&merge).contains("PENDING"), "the old merge job was cancelled: {}", c.states(&merge));
    let log = std::fs::read_to_string(dir.join(format!("runs/s/slurm/logs/shard-1.job-{array2}.log"))).unwrap();
    assert!(log.contains("== assay: shard 1 of 3, attempt 1"), "{log}");
    // Its time budget came from the job's --time=10 (squeue's time left).
    assert!(log.contains("note: budgets from SLURM job") && log.contains("s the job has left)"), "{log}");
    let s = status(&c);
    let states: Vec<&str> = s["shards"].as_array().unwrap().iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["done", "done", "done"], "{s}");
    let runs = numbered_runs(&dir);
    let log =
        std::fs::read_to_string(dir.join(format!("runs/s/slurm/logs/merge.job-{merge2}.log"))).unwrap_or_default();
    assert_eq!(runs.len(), 2, "the new merge job wrote a run: {log}");
    assert_eq!(results(&runs[1]), one, "the merged record equals the one-machine record");
}

/// Two nodes (n1 and n2: two slurmd on loopback, each with its jobs in PID
/// and mount namespaces of its own, so neither sees the other's processes,
/// as on two machines) share the runs folder; a 4-shard array spreads over
/// both, every shard's folder survives the others' start-up clean-ups, and
/// the merge equals the one-machine record byte for byte.
pub(crate) fn a_four_shard_array_across_two_nodes_merges_to_the_one_machine_record() {
    let c = Cluster::start_nodes(2);
    let dir = tempfile::tempdir().unwrap();
    crate::shard::setup(dir.path());
    let one = one_machine(dir.path());
    let (array, merge) = submit(&c, dir.path(), &["slurm", "submit", "s.assay", "--shards", "4"]);
    c.wait(&[&array, &merge], Duration::from_secs(900));
    let mut nodes = std::collections::BTreeSet::new();
    for i in 0..4 {
        let log = std::fs::read_to_string(dir.path().join(format!("runs/s/slurm/logs/shard-{i}.job-{array}.log")))
            .unwrap_or_default();
        let node = log.lines().find_map(|l| l.split(" on ").nth(1)).and_then(|r| r.split(' ').next());
        nodes.insert(node.unwrap_or("?").to_string());
        assert!(dir.path().join(format!("runs/s/slurm/state/shard-{i}.done")).is_file(), "shard {i}: {log}");
    }
    assert_eq!(nodes.into_iter().collect::<Vec<_>>(), ["n1", "n2"], "the shards ran on both nodes");
    let runs = numbered_runs(dir.path());
    let log = std::fs::read_to_string(dir.path().join(format!("runs/s/slurm/logs/merge.job-{merge}.log")))
        .unwrap_or_default();
    assert_eq!(runs.len(), 2, "the merge job wrote one run ({}): {log}", c.states(&merge));
    assert_eq!(results(&runs[1]), one, "the two-node merge equals the one-machine record");
}

/// `assay slurm submit --stages 2` on the script whose unit pass depends on
/// its layer pass: shard 1 of stage 1 is cancelled before it runs, so stage
/// 2 (after stage 1) can never start; `status` says so per stage and names
/// the fix, and `resubmit` runs shard 1 of stage 1 alone, then all of stage
/// 2 after it, then the merge, whose record equals the one-machine record
/// with no call run whole.
pub(crate) fn a_two_stage_submission_recovers_from_a_lost_first_stage_shard() {
    let c = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    crate::shard::setup(dir.path());
    let one = one_machine(dir.path());
    let out = Test::new(dir.path())
        .env("SLURM_CONF", c.conf())
        .args([
            "slurm",
            "submit",
            "s.assay",
            "--shards",
            "2",
            "--stages",
            "2",
            "--merge-sbatch=--time=10",
            "--json",
            "--",
            "--hold",
        ])
        .run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let j = out.json();
    let job = |v: &serde_json::Value| v.as_str().unwrap().to_string();
    let (one_job, two_job, merge) =
        (job(&j["stages"][0]["array_job"]), job(&j["stages"][1]["array_job"]), job(&j["merge_job"]));
    let cancel = c.cmd("scancel").arg(format!("{one_job}_1")).output().unwrap();
    assert!(cancel.status.success(), "{}", String::from_utf8_lossy(&cancel.stderr));
    for a in [&one_job, &two_job] {
        let rel = c.cmd("scontrol").args(["release", a]).output().unwrap();
        assert!(rel.status.success(), "{}", String::from_utf8_lossy(&rel.stderr));
    }
    c.wait(&[&one_job], Duration::from_secs(600));
    let status = |c: &Cluster| {
        let out = Test::new(dir.path()).env("SLURM_CONF", c.conf()).args(["slurm", "status", "runs/s", "--json"]).run();
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        out.json()
    };
    let states = |s: &serde_json::Value| -> Vec<String> {
        s["shards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| format!("{}:{}", r["stage"], r["state"].as_str().unwrap()))
            .collect()
    };
    let s = status(&c);
    assert_eq!(states(&s), ["1:done", "1:lost", "2:pending", "2:pending"], "{s}");
    assert!(s["fix"].as_str().unwrap().ends_with("--shards 1 --stage 1"), "{s}");
    assert!(!dir.path().join("runs/s/slurm/state/shard-0.stage-2.done").exists(), "stage 2 waited for stage 1");

    let out = Test::new(dir.path())
        .env("SLURM_CONF", c.conf())
        .args(["slurm", "resubmit", "runs/s/slurm", "--shards", "1", "--json", "--", "--time=10"])
        .run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let j = out.json();
    assert_eq!(j["stages"][0]["stage"], 1, "{j}");
    assert_eq!(j["stages"][0]["shards"], serde_json::json!([1]), "{j}");
    assert_eq!(j["stages"][1]["shards"], serde_json::json!([0, 1]), "{j}");
    let (a1, a2, m2) = (job(&j["stages"][0]["array_job"]), job(&j["stages"][1]["array_job"]), job(&j["merge_job"]));
    c.wait(&[&a1, &a2, &m2], Duration::from_secs(900));
    for old in [&two_job, &merge] {
        assert!(!c.states(old).contains("PENDING"), "the old job {old} was cancelled: {}", c.states(old));
    }
    let log =
        std::fs::read_to_string(dir.path().join(format!("runs/s/slurm/logs/shard-0.stage-2.job-{a2}.log"))).unwrap();
    assert!(log.contains("== assay: shard 0 of 2, stage 2 of 2, attempt 1"), "{log}");
    let s = status(&c);
    assert_eq!(states(&s), ["1:done", "1:done", "2:done", "2:done"], "{s}");
    let runs = numbered_runs(dir.path());
    let log =
        std::fs::read_to_string(dir.path().join(format!("runs/s/slurm/logs/merge.job-{m2}.log"))).unwrap_or_default();
    assert_eq!(runs.len(), 2, "the new merge job wrote a run: {log}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(runs[1].join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["merged"]["ran_whole"], serde_json::json!([]), "{manifest}");
    assert_eq!(results(&runs[1]), one, "the two-stage merge equals the one-machine record");
}
