//! Two "nodes" sharing one runs folder, as cluster jobs on a shared file
//! system do: each `assay run` in a PID and mount namespace of its own
//! (`unshare`), so neither can see the other's processes — the situation
//! where a run used to remove another node's running folder as "left by a
//! killed run", failing that run. Needs util-linux's `unshare` and
//! permission to make namespaces (root, or unprivileged user namespaces);
//! `.ci/run` sets ASSAY_REQUIRE_NAMESPACES=1 so there they cannot be
//! skipped (`tests/outside.rs`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{assay_bin, test_call_cache};

fn node_args() -> Vec<&'static str> {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let mut a = vec!["--pid", "--fork", "--mount", "--mount-proc", "--kill-child"];
    if !root {
        a.splice(0..0, ["--user", "--map-root-user"]);
    }
    a
}

/// What this machine lacks to make a node's namespaces, if anything.
pub(crate) fn missing() -> Option<String> {
    let ok = Command::new("unshare").args(node_args()).arg("true").status().is_ok_and(|s| s.success());
    (!ok).then(|| "util-linux's unshare and permission to make PID and mount namespaces".into())
}

/// `assay run SCRIPT` on a node of its own, its runs under `runs`. Each
/// namespace numbers its processes from 1, so node A first uses up some
/// PIDs: its run's PID is then one that node B has not got (as on two real
/// machines), rather than the same small number that both would have.
/// (The shell stays the namespace's first process; killing it ends the
/// namespace, every process in it, as a node's loss would.)
fn on_node(dir: &Path, script: &str, runs: &Path, lease: Option<&str>) -> Command {
    let skip = if dir.ends_with("a") { "40" } else { "0" };
    let mut c = Command::new("unshare");
    c.args(node_args())
        .args(["sh", "-c", "i=0; while [ $i -lt \"$0\" ]; do /bin/true; i=$((i+1)); done; \"$@\"", skip])
        .arg(assay_bin())
        .args(["run", script, "--no-cache", "--runs-dir"])
        .arg(runs)
        .current_dir(dir)
        .env("ASSAY_CALL_CACHE_DIR", test_call_cache())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(l) = lease {
        c.env("ASSAY_RUN_LEASE_SECS", l);
    }
    c
}

fn unfinished(runs: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(runs.join("slow"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".incomplete-") && !n.contains(".owner"))
        .collect();
    v.sort();
    v
}

fn finished(runs: &Path) -> usize {
    std::fs::read_dir(runs.join("slow"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("manifest.json").is_file() && !e.file_name().to_string_lossy().starts_with('.'))
        .count()
}

/// Starts the slow script on a node and waits until its unfinished folder
/// appears.
fn start_slow(dir: &Path, runs: &Path, lease: Option<&str>) -> (Child, String) {
    let mut child = on_node(&dir.join("a"), "slow.assay", runs, lease).spawn().expect("unshare");
    let started = Instant::now();
    let name = loop {
        if let Some(name) = unfinished(runs).pop() {
            break name;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("node A's run never began: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (child, name)
}

fn two_nodes() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("a")).unwrap();
    std::fs::create_dir_all(t.path().join("b")).unwrap();
    // About ten seconds of work on node A; node B's script of the same name
    // (so the same runs/slow/ folder) is quick.
    std::fs::write(t.path().join("a/slow.rhai"), "fn spin(n) { let i = 0; while i < n { i += 1; } i }").unwrap();
    std::fs::write(
        t.path().join("a/slow.assay"),
        "use \"slow.rhai\" as s\nfor i in 0..150 { record \"r{i}\", s.spin(300000) }\n",
    )
    .unwrap();
    std::fs::write(t.path().join("b/slow.assay"), "record \"b\", 1\n").unwrap();
    t
}

/// Node B starts a run while node A's is unfinished: A's folder is kept
/// (its owner's process cannot be seen from B, and its lease is fresh) and
/// A finishes. Before owner files, B removed A's folder and A failed.
pub(crate) fn a_run_on_another_node_keeps_this_nodes_unfinished_run() {
    let t = two_nodes();
    let runs = t.path().join("shared-runs");
    let (a, name) = start_slow(t.path(), &runs, None);
    let b = on_node(&t.path().join("b"), "slow.assay", &runs, None).output().unwrap();
    assert!(b.status.success(), "node B: {}", String::from_utf8_lossy(&b.stderr));
    assert!(!String::from_utf8_lossy(&b.stderr).contains("removed"), "{}", String::from_utf8_lossy(&b.stderr));
    assert!(runs.join("slow").join(&name).is_dir(), "node B removed node A's running folder {name}");
    let a = a.wait_with_output().unwrap();
    assert!(
        a.status.success(),
        "node A failed: {}{}",
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&a.stderr)
    );
    assert_eq!(finished(&runs), 2);
    assert!(unfinished(&runs).is_empty(), "{:?}", unfinished(&runs));
    let owners: Vec<_> = std::fs::read_dir(runs.join("slow"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".owner"))
        .map(|e| e.file_name())
        .collect();
    assert!(owners.is_empty(), "finished runs leave no owner files: {owners:?}");
}

/// A node that died (its whole namespace killed) leaves its folder; another
/// node keeps it while the lease (here 6 s) could still be renewed, and
/// removes it once it has run out. On the node itself a killed run's folder
/// goes at once (its process is certainly gone).
pub(crate) fn a_dead_nodes_unfinished_run_is_removed_when_its_lease_runs_out() {
    let t = two_nodes();
    let runs = t.path().join("shared-runs");
    let (mut a, name) = start_slow(t.path(), &runs, Some("6"));
    let killed = Instant::now();
    a.kill().unwrap();
    let _ = a.wait();
    let b = on_node(&t.path().join("b"), "slow.assay", &runs, None).output().unwrap();
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    if killed.elapsed() < Duration::from_secs(5) {
        assert!(runs.join("slow").join(&name).is_dir(), "removed before its lease ran out");
    }
    std::thread::sleep(Duration::from_secs(7).saturating_sub(killed.elapsed()));
    let b = on_node(&t.path().join("b"), "slow.assay", &runs, None).output().unwrap();
    let err = String::from_utf8_lossy(&b.stderr);
    assert!(b.status.success() && err.contains("removed 1 unfinished run folder"), "{err}");
    assert!(!runs.join("slow").join(&name).exists() && unfinished(&runs).is_empty());

    // The same kill on one node (no namespaces): removed by the next run.
    let mut a = Command::new(assay_bin())
        .args(["run", "slow.assay", "--no-cache", "--runs-dir"])
        .arg(&runs)
        .current_dir(t.path().join("a"))
        .env("ASSAY_CALL_CACHE_DIR", test_call_cache())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while unfinished(&runs).is_empty() {
        assert!(started.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(50));
    }
    a.kill().unwrap();
    let _ = a.wait();
    let b = Command::new(assay_bin())
        .args(["run", "slow.assay", "--no-cache", "--runs-dir"])
        .arg(&runs)
        .current_dir(t.path().join("b"))
        .env("ASSAY_CALL_CACHE_DIR", test_call_cache())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&b.stderr);
    assert!(b.status.success() && err.contains("removed 1 unfinished run folder"), "{err}");
    assert!(unfinished(&runs).is_empty());
}
