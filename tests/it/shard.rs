//! Sharded runs: `assay run --shard I/N` on every shard, then `assay merge`,
//! gives a results.json byte-identical to one run on one machine, for each
//! shardable tool (exemplars over a layer with bottom and quantiles and over
//! a unit, a head-patching sweep, `shard_map` drawing random numbers) and for
//! a benchmark; a missing shard is named and running it completes the merge;
//! a shard of another script version is refused; a shard killed midway
//! leaves no record. A real SLURM cluster runs the same in `slurm.rs`.

use std::path::{Path, PathBuf};

use crate::support::Test;

/// Finished runs of `s.assay`, oldest first (not the shards' folders).
fn runs_of(dir: &Path, _stem: &str) -> Vec<PathBuf> {
    crate::support::runs_of(dir, "s")
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .collect()
}

fn circle(color: &str, r: u32, x: u32) -> String {
    format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='64' height='64'><rect width='64' height='64' fill='white'/><circle cx='{x}' cy='32' r='{r}' fill='{color}'/></svg>"
    )
}

/// Eleven drawings (an odd number, so shards and batches do not line up)
/// and a script with every shardable tool; the second exemplar pass depends
/// on the first's result, so each shard calls it with other arguments and
/// the merge must run it whole.
pub(crate) fn setup(dir: &Path) {
    std::fs::create_dir_all(dir.join("pics")).unwrap();
    let colors = ["red", "blue", "green", "black", "orange", "purple", "gray", "navy", "teal", "olive", "maroon"];
    for (i, c) in colors.iter().enumerate() {
        std::fs::write(dir.join(format!("pics/{i:02}.svg")), circle(c, 8 + 2 * i as u32, 20 + i as u32)).unwrap();
    }
    let script = r#"seed 11
let net = model("efficientnet-lite0")
let pics = images("pics/*.svg")
let all = exemplars(layer(net, "/_blocks.15/Relu6_output_0"), pics, k: 3, bottom: 2, quantiles: [0.1, 0.5, 0.9], batch: 2)
record "top", all.activations
record "top indices", all.indices
record "bottom", all.bottom_indices
record "quantiles", all.quantile_indices
let strongest = argmax(map(0..1152, c => all.activations[c][0]))
let one = exemplars(unit(net, "/_blocks.15/Relu6_output_0", channel: strongest), pics, k: 2, quantiles: [0.5], batch: 3)
record "strongest", {channel: strongest, names: one.names, median: one.quantiles[0].name}
let lm = model("planted")
let sweep = patch_sweep(lm, tensor([[1, 0, 3]]), tensor([[2, 0, 3]]), "/layers.*/heads_output_0",
                        out => logit_diff(out.logits, 1, 2), parts: 2, batch: 1)
record "sweep", sweep
record "noisy squares", shard_map(range(0, 7), x => x * x + randn())
record "after", randn(2)
"#;
    std::fs::write(dir.join("s.assay"), script).unwrap();
}

fn ok(t: Test) -> crate::support::Output {
    let out = t.run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    out
}

fn shard(dir: &Path, i: usize, n: usize) -> crate::support::Output {
    ok(Test::new(dir).args(["run", "s.assay", "--json", "--shard", &format!("{i}/{n}")]))
}

fn merge(dir: &Path, n: usize) -> crate::support::Output {
    Test::new(dir).args(["merge", "s.assay", "--json", "--shards", &n.to_string()]).run()
}

fn results(run: &Path) -> String {
    std::fs::read_to_string(run.join("results.json")).unwrap()
}

fn whole(dir: &Path) -> PathBuf {
    ok(Test::new(dir).args(["run", "s.assay", "--json", "--no-cache"]));
    runs_of(dir, "s").pop().unwrap()
}

#[test]
fn merged_shards_give_the_one_machine_record_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let one = whole(dir.path());
    for n in [2, 3] {
        for i in 0..n {
            let out = shard(dir.path(), i, n).json();
            assert_eq!(out["status"], "partial");
            let tools: Vec<&str> =
                out["sharded_calls"].as_array().unwrap().iter().map(|c| c["tool"].as_str().unwrap()).collect();
            assert_eq!(tools.iter().filter(|t| **t == "exemplars").count(), 2, "{out}");
            assert!(tools.contains(&"patch_sweep") && tools.contains(&"shard_map"), "{out}");
            let folder = dir.path().join(format!("runs/s/shard-{i}-of-{n}"));
            assert!(folder.join("partials.bin").is_file());
            assert!(!folder.join("results.json").exists(), "a shard is never a finished run");
        }
        let m = merge(dir.path(), n);
        assert_eq!(m.code, 0, "{}{}", m.stdout, m.stderr);
        let merged = runs_of(dir.path(), "s").pop().unwrap();
        assert_eq!(results(&merged), results(&one), "{n} shards merged differ from one run");
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(merged.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest["merged"]["shards"], n);
        // The layer pass, the sweep and the map come from the shards; the
        // unit pass depends on the layer pass's result, so it ran whole.
        assert_eq!(manifest["merged"]["answered"], 3, "{manifest}");
        let whole_calls = manifest["merged"]["ran_whole"].to_string();
        assert!(whole_calls.contains("line 10: exemplars"), "{whole_calls}");
        // Every image was read by some shard, and the merge says so.
        let inputs = manifest["inputs"].as_object().unwrap();
        assert_eq!(inputs.keys().filter(|k| k.ends_with(".svg")).count(), 11);
    }
    // And `verify` re-executes the merged run on one machine.
    let merged = runs_of(dir.path(), "s").pop().unwrap();
    let v = Test::new(dir.path()).args(["verify", merged.to_str().unwrap(), "--json"]).run();
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
}

/// The unit pass depends on the layer pass's whole result, so stage 1's
/// shards each run it on their own share's answer and the merge must run it
/// whole; a next stage (every shard again with --next-stage) merges the
/// layer pass from stage 1's records and splits the unit pass, and the
/// final merge answers every sharded call: the one-machine record.
#[test]
fn a_dependent_stage_is_sharded_by_a_next_stage() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let one = whole(dir.path());
    let n = 2;
    let stage = |i: usize| {
        ok(Test::new(dir.path()).args(["run", "s.assay", "--json", "--shard", &format!("{i}/{n}"), "--next-stage"]))
    };
    // Without stage 1's records there is nothing to go on from.
    let early = Test::new(dir.path()).args(["run", "s.assay", "--shard", "0/2", "--next-stage"]).run();
    assert_eq!(early.code, 2, "{}{}", early.stdout, early.stderr);
    assert!(early.stderr.contains("needs every shard's record of the stage before"), "{}", early.stderr);
    for i in 0..n {
        shard(dir.path(), i, n);
    }
    for i in 0..n {
        let out = stage(i).json();
        assert_eq!(out["status"], "partial");
        let calls = out["sharded_calls"].as_array().unwrap();
        let lines: Vec<u64> = calls.iter().map(|c| c["line"].as_u64().unwrap()).collect();
        // Stage 1's calls carried over, and the unit pass split at last.
        assert_eq!(lines.iter().filter(|l| **l == 4 || **l == 10).count(), 2, "{out}");
    }
    let m = merge(dir.path(), n);
    assert_eq!(m.code, 0, "{}{}", m.stdout, m.stderr);
    let merged = runs_of(dir.path(), "s").pop().unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(merged.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["merged"]["answered"], 4, "{manifest}");
    assert_eq!(manifest["merged"]["ran_whole"], serde_json::json!([]), "{manifest}");
    assert_eq!(results(&merged), results(&one), "the staged merge differs from one run");
    // A next stage keeps the seed of the stage before.
    let seeded = Test::new(dir.path()).args(["run", "s.assay", "--shard", "0/2", "--next-stage", "--seed", "5"]).run();
    assert_eq!(seeded.code, 2);
    assert!(seeded.stderr.contains("is not the seed the stage before ran with (11)"), "{}", seeded.stderr);
}

#[test]
fn a_missing_shard_is_named_and_running_it_completes_the_merge() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let one = whole(dir.path());
    shard(dir.path(), 0, 3);
    shard(dir.path(), 2, 3);
    let m = merge(dir.path(), 3);
    assert_eq!(m.code, 2, "{}{}", m.stdout, m.stderr);
    let j = m.json();
    let text = format!("{} {}", j["error"], j["help"]);
    assert!(text.contains("shard(s) 1 of 3"), "{text}");
    assert!(text.contains("--shard 1/3"), "the help says how to run it: {text}");
    // A shard killed midway leaves nothing the merge would take for it.
    let mut child = std::process::Command::new(crate::support::assay_bin())
        .current_dir(dir.path())
        .env("ASSAY_CALL_CACHE_DIR", crate::support::test_call_cache())
        .args(["run", "s.assay", "--shard", "1/3", "--no-cache"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once it has started its record (the sandboxed child is at work).
    let started = std::time::Instant::now();
    while started.elapsed().as_secs() < 60
        && !std::fs::read_dir(dir.path().join("runs/s"))
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".incomplete-"))
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // At once: the unfinished record exists from before the script runs,
    // and a quick machine can finish the shard in a few hundred ms.
    assert!(child.try_wait().unwrap().is_none(), "the shard was still running when it was killed");
    let _ = child.kill();
    let _ = child.wait();
    assert!(!dir.path().join("runs/s/shard-1-of-3").exists(), "a killed shard has no record");
    assert_eq!(merge(dir.path(), 3).code, 2, "and the merge still names it");
    shard(dir.path(), 1, 3);
    let m = merge(dir.path(), 3);
    assert_eq!(m.code, 0, "{}{}", m.stdout, m.stderr);
    assert_eq!(results(&runs_of(dir.path(), "s").pop().unwrap()), results(&one));
}

#[test]
fn a_shard_of_another_script_version_or_seed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    shard(dir.path(), 0, 2);
    let original = std::fs::read_to_string(dir.path().join("s.assay")).unwrap();
    std::fs::write(dir.path().join("s.assay"), original.replace("k: 3", "k: 4")).unwrap();
    shard(dir.path(), 1, 2);
    let m = merge(dir.path(), 2);
    assert_eq!(m.code, 2, "{}{}", m.stdout, m.stderr);
    let j = m.json();
    assert!(j["error"].as_str().unwrap().contains("shard 0"), "{j}");
    assert!(j["error"].as_str().unwrap().contains("another version of the script"), "{j}");
    // The same script with another seed on one shard.
    shard(dir.path(), 0, 2);
    ok(Test::new(dir.path()).args(["run", "s.assay", "--shard", "1/2", "--seed", "12"]));
    let m = merge(dir.path(), 2);
    assert_eq!(m.code, 2, "{}{}", m.stdout, m.stderr);
    assert!(m.json()["error"].as_str().unwrap().contains("seed"), "{}", m.stdout);
    // A damaged partial record is refused, not merged.
    shard(dir.path(), 1, 2);
    let p = dir.path().join("runs/s/shard-1-of-2/partials.bin");
    let mut bytes = std::fs::read(&p).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&p, bytes).unwrap();
    let m = merge(dir.path(), 2);
    assert_eq!(m.code, 2, "{}{}", m.stdout, m.stderr);
    assert!(m.json()["error"].as_str().unwrap().contains("altered"), "{}", m.stdout);
}

#[test]
fn shard_arguments_come_from_slurm_or_kubernetes_and_bad_ones_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.assay"), "record \"xs\", shard_map(range(0, 5), x => x + 1)\n").unwrap();
    let out = ok(Test::new(dir.path())
        .args(["run", "s.assay", "--json", "--shard", "auto"])
        .env("SLURM_ARRAY_TASK_ID", "3")
        .env("SLURM_ARRAY_TASK_MIN", "2")
        .env("SLURM_ARRAY_TASK_COUNT", "2"))
    .json();
    assert_eq!(out["shard"], serde_json::json!({"index": 1, "count": 2}));
    let out = ok(Test::new(dir.path())
        .args(["run", "s.assay", "--json", "--shard", "auto/2"])
        .env("JOB_COMPLETION_INDEX", "0"))
    .json();
    assert_eq!(out["shard"], serde_json::json!({"index": 0, "count": 2}));
    let m = merge(dir.path(), 2);
    assert_eq!(m.code, 0, "{}{}", m.stdout, m.stderr);
    assert_eq!(m.json()["results"]["records"]["xs"], serde_json::json!([1, 2, 3, 4, 5]));
    for (arg, says) in
        [("3/3", "not below"), ("0/0", "between 1"), ("two", "INDEX/COUNT"), ("auto", "SLURM_ARRAY_TASK_ID")]
    {
        let out = Test::new(dir.path()).args(["run", "s.assay", "--json", "--shard", arg]).run();
        assert_eq!(out.code, 2, "--shard {arg}: {}", out.stdout);
        assert!(out.json()["error"].as_str().unwrap().contains(says), "--shard {arg}: {}", out.stdout);
    }
}

#[test]
fn a_sharded_benchmark_merges_into_the_one_machine_table() {
    let dir = tempfile::tempdir().unwrap();
    let bench = |out: &str, extra: &[&str]| {
        Test::new(dir.path())
            .args(["bench", "numeric", "--n", "3", "--baseline", "floor", "--jobs", "1", "--out", out])
            .args(extra)
            .run()
    };
    let one = bench("one", &[]);
    assert_eq!(one.code, 0, "{}{}", one.stdout, one.stderr);
    let s0 = bench("sharded", &["--shard", "0/2"]);
    assert_eq!(s0.code, 0, "{}{}", s0.stdout, s0.stderr);
    assert_eq!(bench("sharded", &["--merge-shards", "0"]).code, 2, "zero shards is a usage error");
    let early = bench("sharded", &["--merge-shards", "2"]);
    assert_ne!(early.code, 0);
    assert!(early.stderr.contains("shard 1 of 2"), "the unfinished shard is named: {}", early.stderr);
    assert_eq!(bench("sharded", &["--shard", "1/2"]).code, 0);
    let m = bench("sharded", &["--merge-shards", "2"]);
    assert_eq!(m.code, 0, "{}{}", m.stdout, m.stderr);
    let read = |p: &str| std::fs::read_to_string(dir.path().join(p).join("baseline-floor/results.json")).unwrap();
    assert_eq!(read("sharded"), read("one"));
}

#[test]
fn slurm_job_scripts_are_written_readable_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let out = ok(Test::new(dir.path()).args([
        "slurm",
        "submit",
        "s.assay",
        "--shards",
        "4",
        "--dry-run",
        "--json",
        "--",
        "--partition=debug",
    ]))
    .json();
    assert_eq!(out["submitted"], false);
    let shards = std::fs::read_to_string(out["shards_job"].as_str().unwrap()).unwrap();
    let merge = std::fs::read_to_string(out["merge_job"].as_str().unwrap()).unwrap();
    assert!(shards.starts_with("#!/bin/bash\n"));
    assert!(shards.contains("#SBATCH --array=0-3") && shards.contains("--shard \"$shard/4\""), "{shards}");
    assert!(merge.contains("merge") && merge.contains("--shards 4"), "{merge}");
    let cmds = out["commands"].to_string();
    assert!(cmds.contains("--partition=debug") && cmds.contains("--dependency=afterok:"), "{cmds}");
    // Both scripts are valid bash.
    for f in [&out["shards_job"], &out["merge_job"]] {
        let st = std::process::Command::new("bash").args(["-n", f.as_str().unwrap()]).status().unwrap();
        assert!(st.success());
    }
}

/// `--stages 2` writes a second array job that goes on from every shard's
/// record of the first (`--next-stage`); run as SLURM would run them (each
/// task by its array id, stage 2 after stage 1, the merge last), the merge
/// answers every sharded call, runs none whole (one stage ran the unit pass
/// whole in the merge) and equals the one-machine record byte for byte.
#[test]
fn staged_job_scripts_run_as_slurm_would_and_merge_to_the_one_machine_record() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let one = whole(dir.path());
    let out = ok(Test::new(dir.path()).args([
        "slurm",
        "submit",
        "s.assay",
        "--shards",
        "2",
        "--stages",
        "2",
        "--dry-run",
        "--json",
    ]))
    .json();
    let stages: Vec<String> =
        out["stage_jobs"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect();
    assert_eq!(stages.len(), 2, "{out}");
    assert!(stages[1].ends_with("shards.stage-2.sbatch"), "{stages:?}");
    let second = std::fs::read_to_string(&stages[1]).unwrap();
    assert!(second.contains("--shard \"$shard/2\" --next-stage"), "{second}");
    assert!(second.contains("shard-$shard.stage-2.done") && second.contains("shard-%a.stage-2.job-%A.log"), "{second}");
    let cmds = out["commands"].as_array().unwrap();
    assert_eq!(cmds.len(), 3, "{out}");
    assert!(cmds[1].as_str().unwrap().contains("--dependency=afterok:<STAGE_1_ARRAY_JOB_ID>"), "{out}");
    assert!(cmds[2].as_str().unwrap().contains("--dependency=afterok:<STAGE_2_ARRAY_JOB_ID>"), "{out}");
    let task = |file: &str, id: Option<usize>| {
        let mut c = std::process::Command::new("bash");
        c.arg(file).current_dir(dir.path()).env("ASSAY_CALL_CACHE_DIR", crate::support::test_call_cache());
        if let Some(i) = id {
            c.env("SLURM_ARRAY_TASK_ID", i.to_string());
        }
        let run = c.output().unwrap();
        assert!(run.status.success(), "{file} {id:?}: {}", String::from_utf8_lossy(&run.stderr));
    };
    for file in &stages {
        for i in 0..2 {
            task(file, Some(i));
        }
    }
    let state = dir.path().join("runs/s/slurm/state");
    for name in ["shard-0.done", "shard-1.done", "shard-0.stage-2.done", "shard-1.stage-2.done"] {
        assert!(state.join(name).is_file(), "{name}");
    }
    task(out["merge_job"].as_str().unwrap(), None);
    let merged = runs_of(dir.path(), "s").pop().unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(merged.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["merged"]["ran_whole"], serde_json::json!([]), "{manifest}");
    assert_eq!(results(&merged), results(&one), "the two-stage merge differs from one run");
    // Out of range: refused with the range.
    let bad =
        Test::new(dir.path()).args(["slurm", "submit", "s.assay", "--shards", "2", "--stages", "0", "--dry-run"]).run();
    assert_eq!(bad.code, 2, "{}{}", bad.stdout, bad.stderr);
    assert!(bad.stderr.contains("--stages 0 is out of range"), "{}", bad.stderr);
}

#[test]
fn shards_with_nothing_to_do_go_on_to_the_next_sharded_call() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let script = r#"let net = model("efficientnet-lite0")
let pics = take(images("pics/*.svg"), 3)
let top = exemplars(unit(net, "/_blocks.15/Relu6_output_0", channel: 5), pics, k: 2, bottom: 1, batch: 2)
record "names", top.names
record "squares", shard_map(range(0, 3), x => x * x)
"#;
    std::fs::write(dir.path().join("s.assay"), script).unwrap();
    let one = whole(dir.path());
    // 4 shards, 2 batches and 3 items: shard 3 has no batch and no item.
    for i in 0..4 {
        let out = shard(dir.path(), i, 4).json();
        assert_eq!(out["stopped"], serde_json::Value::Null, "shard {i}: {out}");
        assert_eq!(out["sharded_calls"].as_array().unwrap().len(), 2, "shard {i}: {out}");
    }
    let m = merge(dir.path(), 4);
    assert_eq!(m.code, 0, "{}{}", m.stdout, m.stderr);
    assert_eq!(m.json()["merged"]["answered"], 2);
    assert_eq!(results(&runs_of(dir.path(), "s").pop().unwrap()), results(&one));
}

/// Job scripts for any name: a newline, quotes, `$()`, backticks and blanks
/// in a script's name reach the scripts as one quoted word and an escaped
/// comment (never a command: the marker file is never made), and the
/// written scripts run that very script; what an #SBATCH line or a UTF-8
/// script cannot carry (a runs folder with a newline or a double quote, a
/// non-UTF-8 name, a control character in an sbatch option) is refused with
/// a reason. A runs folder with blanks and apostrophes is quoted everywhere.
#[test]
fn slurm_job_scripts_are_safe_for_any_name() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let names = ["x\ntouch PWNED\n#.assay", "it's $(touch PWNED) `touch PWNED`.assay", "a b.assay"];
    for name in names {
        std::fs::write(dir.path().join(name), "record \"square\", shard_map(range(0, 3), x => x * x)\n").unwrap();
        let out =
            ok(Test::new(dir.path()).args(["slurm", "submit", name, "--shards", "1", "--dry-run", "--json"])).json();
        for job in ["shards_job", "merge_job"] {
            let file = out[job].as_str().unwrap();
            let text = std::fs::read_to_string(file).unwrap();
            // The comment holds the name escaped: its line is one comment line.
            let header = text.lines().nth(1).unwrap_or("");
            assert!(
                header.starts_with("# Written by")
                    && text.lines().nth(2) == Some("# Edit freely; submit again with sbatch."),
                "{text}"
            );
            assert!(
                text.lines()
                    .filter(|l| l.starts_with("#SBATCH"))
                    .all(|l| !l.contains(' ') || l.matches(' ').count() == 1),
                "{text}"
            );
            let st = std::process::Command::new("bash").args(["-n", file]).status().unwrap();
            assert!(st.success(), "{name:?}: {text}");
            // Run it as SLURM would (the one task of the array, then the merge).
            let run = std::process::Command::new("bash")
                .arg(file)
                .current_dir(dir.path())
                .env("SLURM_ARRAY_TASK_ID", "0")
                .env("SLURM_ARRAY_TASK_COUNT", "1")
                .output()
                .unwrap();
            assert!(run.status.success(), "{name:?} {job}: {}", String::from_utf8_lossy(&run.stderr));
        }
        assert!(!dir.path().join("PWNED").exists(), "{name:?} ran a command");
    }
    // A runs folder with a blank, an apostrophe and a `%` (SLURM's file-name
    // patterns): quoted on the #SBATCH lines, and the scripts run.
    let odd = dir.path().join("it's a 100% folder");
    let out = ok(Test::new(dir.path())
        .args(["slurm", "submit", "a b.assay", "--shards", "1", "--dry-run", "--json", "--runs-dir"])
        .arg_os(&odd))
    .json();
    for job in ["shards_job", "merge_job"] {
        let file = out[job].as_str().unwrap();
        let text = std::fs::read_to_string(file).unwrap();
        let output = text.lines().find(|l| l.starts_with("#SBATCH --output=")).unwrap();
        assert!(
            output.starts_with(&format!(
                "#SBATCH --output=\"{}/a-b/slurm/logs/",
                odd.display().to_string().replace('%', "%%")
            )),
            "{output}"
        );
        let run = std::process::Command::new("bash")
            .arg(file)
            .current_dir(dir.path())
            .env("SLURM_ARRAY_TASK_ID", "0")
            .output()
            .unwrap();
        assert!(run.status.success(), "{job}: {}", String::from_utf8_lossy(&run.stderr));
    }
    assert!(odd.join("a-b/slurm/state/shard-0.done").is_file());
    assert!(odd.join("a-b/0001/results.json").is_file(), "the merge wrote its record");
    // Each script's merged record is there, under its own name.
    let runs = std::fs::read_dir(dir.path().join("runs")).unwrap().count();
    assert_eq!(runs, names.len());
    // Refused, with the reason.
    std::fs::write(dir.path().join("s.assay"), "record \"a\", 1\n").unwrap();
    let bad_name = std::ffi::OsStr::from_bytes(b"s\xff.assay");
    std::fs::write(dir.path().join(bad_name), "record \"a\", 1\n").unwrap();
    let refused: [(&[&str], &str); 3] = [
        (&["--runs-dir", "r\ntouch PWNED"], "control"),
        (&["--runs-dir", "r\"s"], "'\"'"),
        (&["--", "--comment=a\nb"], "control character"),
    ];
    let submit = |script: &std::ffi::OsStr, extra: &[&str]| {
        Test::new(dir.path())
            .args(["slurm", "submit"])
            .arg_os(script)
            .args(["--shards", "2", "--dry-run"])
            .args(extra)
            .run()
    };
    for (extra, why) in refused {
        let out = submit("s.assay".as_ref(), extra);
        assert_eq!(out.code, 2, "{why}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(why), "{why}: {}", out.stderr);
        assert!(!out.stderr.contains("\ntouch"), "a raw newline reached the terminal: {}", out.stderr);
    }
    // A non-UTF-8 name: the script's (clap refuses it) and the runs folder's.
    let out = submit(bad_name, &[]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("invalid UTF-8"), "{}", out.stderr);
    let out = Test::new(dir.path())
        .args(["slurm", "submit", "s.assay", "--shards", "2", "--dry-run", "--runs-dir"])
        .arg_os(std::ffi::OsStr::from_bytes(b"r\xff"))
        .run();
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("not valid UTF-8"), "{}", out.stderr);
    assert!(!dir.path().join("PWNED").exists());
}

/// The merge holds every shard's partial record: more than its memory
/// budget allows is refused with the sizes and a remedy before any is read
/// (it aborted under a small address-space cap), and merges with room.
#[test]
fn a_merge_too_large_for_its_memory_budget_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.assay"), "record \"n\", len(shard_map(range(0, 1000000), x => x))\n").unwrap();
    for i in 0..2 {
        ok(Test::new(dir.path()).args(["run", "s.assay", "--shard", &format!("{i}/2")]));
    }
    let out = Test::new(dir.path()).args(["merge", "s.assay", "--shards", "2", "--memory", "16M"]).run();
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("memory budget of 16 MiB") && out.stderr.contains("--memory"), "{}", out.stderr);
    let out = ok(Test::new(dir.path()).args(["merge", "s.assay", "--shards", "2", "--json"]));
    assert_eq!(out.json()["results"]["records"]["n"], 1000000);
}

/// A sweep over several prompt pairs (one padded batch of rows, each pair's
/// unpatched row and its components) is sharded by blocks of whole batches
/// of rows, the shards' source scores checked to agree; the merge is the
/// one-machine record byte for byte at 2 and 4 shards (before, a sharded
/// run refused it: "not sharded yet"). Each shard goes on past the sweep
/// (with its own rows, NaN elsewhere) to the script's end.
#[test]
fn a_sweep_over_prompt_pairs_shards_and_merges_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"let lm = model("smollm2-135m")
let id = w => tokenize(lm, w).ids[0]
let pairs = [
  {clean: "When Mary and John went to the store, John gave a drink to", flipped: "When Mary and John went to the store, Mary gave a drink to", io: id(" Mary"), s: id(" John")},
  {clean: "Kate and Paul met. Paul thanked", flipped: "Kate and Paul met. Kate thanked", io: id(" Kate"), s: id(" Paul")},
  {clean: "Then, Anna and Tom had an argument, and Tom said to", flipped: "Then, Anna and Tom had an argument, and Anna said to", io: id(" Anna"), s: id(" Tom")}]
let s = patch_sweep(lm, map(pairs, p => p.clean), map(pairs, p => p.flipped), "/model/layers.2[89]/self_attn/heads_output_0", (out, i) => logit_diff(out.logits, pairs[i].io, pairs[i].s), parts: 9, batch: 7, last_position: true)
record "sweep", s
record "known effects", len(filter(reshape(s.effects, [54]), e => e == e))
"#;
    std::fs::write(dir.path().join("s.assay"), script).unwrap();
    let one = whole(dir.path());
    let whole_record = results(&one);
    assert!(whole_record.contains("\"known effects\": 54"), "{whole_record}");
    for n in [2, 4] {
        for i in 0..n {
            let out = shard(dir.path(), i, n).json();
            assert_eq!(out["status"], "partial", "{out}");
            assert_eq!(out["stopped"], serde_json::Value::Null, "shard {i}/{n} went on to the end: {out}");
        }
        let m = merge(dir.path(), n);
        assert_eq!(m.code, 0, "{}{}", m.stdout, m.stderr);
        assert_eq!(m.json()["merged"]["answered"], 1, "{}", m.stdout);
        assert_eq!(results(&runs_of(dir.path(), "s").pop().unwrap()), whole_record, "{n} shards");
    }
}
