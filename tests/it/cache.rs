//! The call cache: an unchanged rerun is answered from it with a
//! byte-identical record; a changed input file, a changed function or a
//! changed seed is recomputed; `verify` re-executes unless told otherwise;
//! `--no-cache` runs everything; the store stays within its bound; two runs
//! filling one store at once both finish with the same results. Every test
//! has its own store (`ASSAY_CALL_CACHE_DIR`); models come from the shared
//! cache as everywhere else.

use std::path::{Path, PathBuf};

use crate::support::{runs_of, Test};

fn circle(color: &str, r: u32) -> String {
    format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='64' height='64'><rect width='64' height='64' fill='white'/><circle cx='32' cy='32' r='{r}' fill='{color}'/></svg>"
    )
}

/// A folder with six drawings and a script that runs an exemplar pass over
/// them (reads files), a seeded random draw (a random stream) and a sweep
/// scored by a script function (a callback that calls tools).
fn setup(dir: &Path) {
    std::fs::create_dir_all(dir.join("pics")).unwrap();
    for (i, (c, r)) in
        [("red", 20), ("blue", 28), ("green", 12), ("black", 30), ("orange", 8), ("purple", 24)].iter().enumerate()
    {
        std::fs::write(dir.join(format!("pics/{i}.svg")), circle(c, *r)).unwrap();
    }
    let script = r#"seed 5
let net = model("efficientnet-lite0")
let pics = images("pics/*.svg")
let top = exemplars(unit(net, "/_blocks.15/Relu6_output_0", channel: 7), pics, k: 2)
record "top", top.activations
record "names", top.names
record "noise", randn(3)
let lm = model("planted")
let w = 2
let sweep = patch_sweep(lm, tensor([[1, 0, 3]]), tensor([[2, 0, 3]]), "/layers.*/heads_output_0",
                        out => w * logit_diff(out.logits, 1, 2), parts: 2)
record "effects", sweep.effects
"#;
    std::fs::write(dir.join("s.assay"), script).unwrap();
}

/// An `assay` command in `dir` with its call cache at `store`. Every call
/// is stored however fast it ran: which calls beat the time threshold
/// depends on the machine (CI once ran the planted model's sweep in under
/// 5 ms, so it was not stored), and these tests are about what a stored
/// entry answers, not about that threshold.
fn assay(dir: &Path, store: &Path) -> Test {
    Test::new(dir).env("ASSAY_CALL_CACHE_DIR", store.to_str().unwrap()).env("ASSAY_CACHE_MIN_SECONDS", "0")
}

fn run(dir: &Path, store: &Path, extra: &[&str]) -> crate::support::Output {
    let out = assay(dir, store).args(["run", "s.assay", "--json"]).args(extra).run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    out
}

/// A folder made by `setup`, an empty store, and the first run's folder.
fn first_run() -> (tempfile::TempDir, tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    setup(dir.path());
    run(dir.path(), store.path(), &[]);
    let first = last_run(dir.path());
    (dir, store, first)
}

fn last_run(dir: &Path) -> std::path::PathBuf {
    runs_of(dir, "s").pop().expect("a run")
}

fn cache_facts(run: &Path) -> serde_json::Value {
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("manifest.json")).unwrap()).unwrap();
    m["call_cache"].clone()
}

fn cached_tools(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("trace.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|t| t["cached"] == true)
        .map(|t| t["tool"].as_str().unwrap().to_string())
        .collect()
}

fn results(run: &Path) -> Vec<u8> {
    std::fs::read(run.join("results.json")).unwrap()
}

#[test]
fn an_unchanged_rerun_is_answered_from_the_cache_with_the_same_bytes_and_changes_are_recomputed() {
    let (dir, store, first) = first_run();
    assert_eq!(cache_facts(&first)["answered"], 0);
    assert!(cache_facts(&first)["stored"].as_u64().unwrap() >= 2, "{}", cache_facts(&first));
    assert!(!first.join(".calls").exists(), "the staging folder must not stay in the record");

    run(dir.path(), store.path(), &[]);
    let second = last_run(dir.path());
    assert_eq!(results(&first), results(&second), "a rerun from the cache must write the same results.json");
    let hits = cached_tools(&second);
    assert!(hits.contains(&"exemplars".to_string()) && hits.contains(&"patch_sweep".to_string()), "{hits:?}");

    // A changed input file: the exemplar pass runs again and sees it.
    std::fs::write(dir.path().join("pics/4.svg"), circle("orange", 31)).unwrap();
    run(dir.path(), store.path(), &[]);
    let third = last_run(dir.path());
    assert!(!cached_tools(&third).contains(&"exemplars".to_string()));
    // The sweep's metric names `w` and `logit_diff`, not `pics` or `top`:
    // it is still answered from the cache.
    assert!(cached_tools(&third).contains(&"patch_sweep".to_string()), "unrelated calls still hit");
    let fresh = tempfile::tempdir().unwrap();
    run(dir.path(), fresh.path(), &[]);
    assert_eq!(results(&third), results(&last_run(dir.path())), "a recomputed call equals a run with no cache");

    // A changed global read by the metric function: the sweep runs again.
    let text = std::fs::read_to_string(dir.path().join("s.assay")).unwrap().replace("let w = 2", "let w = 3");
    std::fs::write(dir.path().join("s.assay"), text).unwrap();
    run(dir.path(), store.path(), &[]);
    let fourth = last_run(dir.path());
    assert!(!cached_tools(&fourth).contains(&"patch_sweep".to_string()));
    let effects = |r: &Path| {
        let j: serde_json::Value = serde_json::from_slice(&results(r)).unwrap();
        j["records"]["effects"]["values"].clone()
    };
    let (a, b) = (effects(&third), effects(&fourth));
    let scaled: Vec<f64> = a.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() * 1.5).collect();
    let got: Vec<f64> = b.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    for (x, y) in scaled.iter().zip(&got) {
        assert!((x - y).abs() < 1e-4, "effects scale with w: {scaled:?} vs {got:?}");
    }

    // Another seed: the random draw is recomputed (and differs).
    run(dir.path(), store.path(), &["--seed", "6"]);
    let fifth = last_run(dir.path());
    assert!(!cached_tools(&fifth).contains(&"randn".to_string()));
}

#[test]
fn verify_reexecutes_unless_told_to_use_the_cache_and_no_cache_runs_everything() {
    let (dir, store, first) = first_run();
    let verify = |extra: &[&str]| {
        assay(dir.path(), store.path()).args(["verify", first.to_str().unwrap(), "--json"]).args(extra).run()
    };
    let v = verify(&[]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    assert_eq!(v.json()["verified"], true);
    assert_eq!(v.json()["cache_answered"], 0, "verify must run every call again");
    assert!(v.json()["how"].as_str().unwrap().contains("bypassed"));
    let v = verify(&["--cached"]);
    assert_eq!(v.json()["verified"], true);
    assert!(v.json()["cache_answered"].as_u64().unwrap() >= 2, "{}", v.stdout);

    run(dir.path(), store.path(), &["--no-cache"]);
    let nc = last_run(dir.path());
    assert!(cached_tools(&nc).is_empty());
    assert_eq!(cache_facts(&nc)["mode"], "bypassed: every call ran");
    assert_eq!(results(&first), results(&nc));
}

#[test]
fn the_store_stays_within_its_bound_and_concurrent_runs_share_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    setup(dir.path());
    // Two runs at once into one store.
    let spawn = || {
        let d = dir.path().to_path_buf();
        let s = store.path().to_path_buf();
        std::thread::spawn(move || run(&d, &s, &[]))
    };
    let (a, b) = (spawn(), spawn());
    a.join().unwrap();
    b.join().unwrap();
    let runs = runs_of(dir.path(), "s");
    assert_eq!(runs.len(), 2);
    assert_eq!(results(&runs[0]), results(&runs[1]));
    let size = |p: &Path| -> u64 { walk(p).iter().map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)).sum() };
    assert!(size(store.path()) > 0);
    // Every entry in the store is whole (a rerun is answered from it).
    run(dir.path(), store.path(), &[]);
    assert!(cached_tools(&last_run(dir.path())).contains(&"exemplars".to_string()));
    // A bound smaller than one entry empties the store after a run.
    let out = assay(dir.path(), store.path())
        .env("ASSAY_CACHE_MAX_BYTES", "100")
        .args(["run", "s.assay", "--no-cache"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(size(store.path()) <= 100, "the store holds {} bytes over a bound of 100", size(store.path()));
}

fn walk(p: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn a_capture_streamed_to_disk_holds_what_a_capture_in_memory_returns() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let script = r#"let net = model("efficientnet-lite0")
let pics = images("pics/*.svg")
let x = pixels(map(0..5, i => item(pics, i).image))
let names = ["/_blocks.15/Relu6_output_0", "/_blocks.3/Relu6_1_output_0"]
let files = capture(net, x, names, batch: 2, to_disk: true)
let acts = capture(net, x, names)
record "files", files
record "in memory", acts
"#;
    std::fs::write(dir.path().join("d.assay"), script).unwrap();
    let out = Test::new(dir.path()).args(["run", "d.assay"]).run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let run = runs_of(dir.path(), "d").pop().unwrap();
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("results.json")).unwrap()).unwrap();
    for name in ["/_blocks.15/Relu6_output_0", "/_blocks.3/Relu6_1_output_0"] {
        let f = &results["records"]["files"][name];
        let mem = &results["records"]["in memory"][name];
        assert_eq!(f["shape"], mem["shape"], "{name}");
        assert_eq!(f["shape"][0], 5);
        // Both are .npy files of the same bytes: the streamed one (written 2
        // rows at a time) and the one the record wrote from memory.
        let streamed = std::fs::read(run.join(f["file"].as_str().unwrap())).unwrap();
        let recorded = std::fs::read(run.join(mem["file"].as_str().unwrap())).unwrap();
        assert_eq!(streamed, recorded, "{name}: the streamed file differs from the in-memory capture");
        use sha2::Digest;
        assert_eq!(f["sha256"].as_str().unwrap(), hex::encode(sha2::Sha256::digest(&streamed)));
    }
}

#[test]
fn a_model_whose_external_weights_change_is_not_answered_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let fixtures = crate::support::repo_root().join("stdlib/tests/fixtures");
    for f in ["external.onnx", "external.data"] {
        std::fs::copy(fixtures.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(
        dir.path().join("w.assay"),
        "let m = onnx(\"external.onnx\")\nrecord \"out\", run(m, zeros([2, 3], value: 1))\n",
    )
    .unwrap();
    // Every call is worth storing here, however fast.
    let go = || {
        let out = assay(dir.path(), store.path())
            .env("ASSAY_CACHE_MIN_SECONDS", "0")
            .args(["run", "w.assay", "--json"])
            .run();
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        let run = runs_of(dir.path(), "w").pop().unwrap();
        (cached_tools(&run), std::fs::read(run.join("results.json")).unwrap())
    };
    let (hits, first) = go();
    assert!(!hits.contains(&"run".to_string()));
    let (hits, second) = go();
    assert!(hits.contains(&"run".to_string()), "an unchanged model is answered from the cache: {hits:?}");
    assert_eq!(first, second);
    // Same graph file, other weights: the call runs again and sees them.
    let mut data = std::fs::read(dir.path().join("external.data")).unwrap();
    // The high byte of every float32 (little-endian): each weight changes.
    for b in data.iter_mut().skip(3).step_by(4) {
        *b ^= 0x40;
    }
    std::fs::write(dir.path().join("external.data"), data).unwrap();
    let (hits, third) = go();
    assert!(!hits.contains(&"run".to_string()), "changed weights must not be answered from the cache");
    assert_ne!(second, third);
}

/// Every file of a finished run folder, relative, with its bytes.
fn record_bytes(run: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = walk(run)
        .into_iter()
        .map(|p| (p.strip_prefix(run).unwrap().display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn an_unchanged_rerun_is_replayed_whole_and_anything_that_could_change_it_runs_the_script() {
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let fixtures = crate::support::repo_root().join("stdlib/tests/fixtures");
    for f in ["external.onnx", "external.data"] {
        std::fs::copy(fixtures.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(dir.path().join("c.svg"), circle("red", 20)).unwrap();
    // A model with external weights, a drawing read by name (recorded as a
    // PNG artifact and shown), seeded random draws (one large enough to be
    // kept as a blob of its own), an assert.
    let script = "seed 5\nlet m = onnx(\"external.onnx\")\nrecord \"out\", run(m, zeros([2, 3], value: 1))\nrecord \"noise\", randn(3)\nrecord \"big\", tensor(randn(90000))\nlet pic = image(\"c.png\")\nshow \"the picture\", pic.width\nrecord \"picture\", pic\nassert pic.width == 64\n";
    let png = |rgb: [u8; 3]| {
        let img = image::RgbaImage::from_fn(64, 48, |x, y| {
            if (x as i32 - 32).pow(2) + (y as i32 - 24).pow(2) < 400 {
                image::Rgba([rgb[0], rgb[1], rgb[2], 255])
            } else {
                image::Rgba([255, 255, 255, 255])
            }
        });
        let mut bytes = std::io::Cursor::new(Vec::new());
        img.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
        bytes.into_inner()
    };
    std::fs::write(dir.path().join("c.png"), png([255, 0, 0])).unwrap();
    std::fs::write(dir.path().join("r.assay"), script).unwrap();
    let go = |extra: &[&str]| {
        let out = assay(dir.path(), store.path()).args(["run", "r.assay", "--json"]).args(extra).run();
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        (out.json(), runs_of(dir.path(), "r").pop().unwrap())
    };
    let (j, first) = go(&[]);
    assert_eq!(j["replayed"], false);
    let (j, second) = go(&[]);
    assert_eq!(j["replayed"], true, "an unchanged rerun is replayed: {j}");
    assert_eq!(j["results"]["records"]["noise"], go(&["--no-cache"]).0["results"]["records"]["noise"]);
    // The same record, byte for byte, but for what says it is a replay.
    let (a, b) = (record_bytes(&first), record_bytes(&second));
    assert_eq!(a.iter().map(|f| &f.0).collect::<Vec<_>>(), b.iter().map(|f| &f.0).collect::<Vec<_>>());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        if name != "manifest.json" && name != "trace.jsonl" {
            assert!(x == y, "{name} differs in the replay");
        }
    }
    assert!(
        a.iter().any(|f| f.0.starts_with("artifacts/")),
        "the picture is an artifact: {:?}",
        a.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(second.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest["replayed"]["key"].as_str().is_some_and(|k| k.len() == 64), "{manifest}");
    assert_eq!(manifest["call_cache"]["answered"], manifest["tool_calls"]);
    let steps: Vec<serde_json::Value> = std::fs::read_to_string(second.join("trace.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!steps.is_empty() && steps.iter().all(|s| s["cached"] == true && s["seconds"] == 0.0));
    // Its terminal output says so, and shows what the run showed.
    let out = assay(dir.path(), store.path()).args(["run", "r.assay"]).run();
    assert!(
        out.stdout.contains("replayed") && out.stdout.contains("the picture") && out.stdout.contains("64"),
        "{}",
        out.stdout
    );
    // `verify` on a replayed record re-executes the script and agrees.
    let v = assay(dir.path(), store.path()).args(["verify", second.to_str().unwrap(), "--json"]).run();
    assert_eq!(v.json()["verified"], true, "{}", v.stdout);
    assert_eq!(v.json()["cache_answered"], 0);

    // A changed input (other weights) runs the script and sees the change.
    let mut data = std::fs::read(dir.path().join("external.data")).unwrap();
    for b in data.iter_mut().skip(3).step_by(4) {
        *b ^= 0x40;
    }
    std::fs::write(dir.path().join("external.data"), data).unwrap();
    let (j, _) = go(&[]);
    assert_eq!(j["replayed"], false);
    let before: serde_json::Value = serde_json::from_slice(&results(&first)).unwrap();
    assert_ne!(j["results"]["records"]["out"], before["records"]["out"], "the new weights give other outputs");
    assert_eq!(j["results"]["records"]["out"], go(&["--no-cache"]).0["results"]["records"]["out"]);
    // So does another seed, and a changed picture (read by name).
    assert_eq!(go(&["--seed", "6"]).0["replayed"], false);
    assert_eq!(go(&[]).0["replayed"], true);
    std::fs::write(dir.path().join("c.png"), png([0, 0, 255])).unwrap();
    let (j, run) = go(&[]);
    assert_eq!(j["replayed"], false);
    let picture =
        |files: &[(String, Vec<u8>)]| files.iter().find(|f| f.0.ends_with("picture.png")).map(|f| f.1.clone());
    assert!(picture(&a).is_some(), "the picture is recorded as a PNG");
    assert!(picture(&record_bytes(&run)) != picture(&a), "the new picture is in the record");

    damaged_entries_and_blobs_are_misses(store.path(), &go);

    // A run that lists a folder is never replayed (a new file would change it).
    std::fs::write(dir.path().join("g.assay"), "let pics = images(\"*.svg\")\nrecord \"n\", len(pics)\n").unwrap();
    for _ in 0..2 {
        let out = assay(dir.path(), store.path()).args(["run", "g.assay", "--json"]).run();
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.json()["replayed"], false);
    }
}

/// A damaged entry or blob in the store is a miss: the script runs, and
/// its record is the one a fresh run writes.
fn damaged_entries_and_blobs_are_misses(store: &Path, go: &dyn Fn(&[&str]) -> (serde_json::Value, PathBuf)) {
    // A damaged entry is a miss: the script runs, and its record is right.
    let (_, fresh) = go(&[]);
    let entries: Vec<_> = walk(store)
        .into_iter()
        .filter(|p| std::fs::read(p).is_ok_and(|b| b.starts_with(b"assay run replay")))
        .collect();
    assert!(!entries.is_empty(), "the store keeps the run");
    for e in &entries {
        let mut b = std::fs::read(e).unwrap();
        let n = b.len();
        b[n - 3] ^= 0xff;
        std::fs::write(e, b).unwrap();
    }
    let (j, damaged) = go(&[]);
    assert_eq!(j["replayed"], false, "a damaged entry must not be replayed");
    assert_eq!(results(&fresh), results(&damaged));
    // So is a damaged blob (the large files, linked into replayed records).
    assert_eq!(go(&[]).0["replayed"], true);
    let blobs: Vec<_> = walk(store)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("blob-")))
        .collect();
    assert!(!blobs.is_empty(), "the large tensor is kept as a blob");
    for b in &blobs {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(b).unwrap().permissions().mode() & 0o222, 0, "blobs are read-only");
        let mut bytes = std::fs::read(b).unwrap();
        let n = bytes.len();
        bytes[n / 2] ^= 0x01;
        // Written anew (another inode): the records linked to it keep theirs.
        std::fs::remove_file(b).unwrap();
        std::fs::write(b, bytes).unwrap();
    }
    let (j, after) = go(&[]);
    assert_eq!(j["replayed"], false, "a damaged blob must not be replayed");
    assert_eq!(results(&fresh), results(&after));
    let npy = |r: &Path| record_bytes(r).into_iter().find(|f| f.0.ends_with(".npy")).map(|f| f.1);
    assert!(npy(&fresh).is_some() && npy(&fresh) == npy(&after), "the large tensor is written right");
}

/// Runs `script` in `dir` with its store at `store`, failing (not stalling)
/// if it takes more than two minutes; its `--json` report.
fn run_guarded(dir: &Path, store: &Path, script: &str) -> serde_json::Value {
    let mut child = std::process::Command::new(crate::support::assay_bin())
        .args(["run", script, "--json"])
        .current_dir(dir)
        .env("ASSAY_CALL_CACHE_DIR", store)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if started.elapsed() > std::time::Duration::from_secs(120) {
            let _ = child.kill();
            panic!("{script}: the run hung on a FIFO in the store");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let stdout = reader.join().unwrap();
    assert!(status.success(), "{script}: {stdout}");
    serde_json::from_str(&stdout).unwrap()
}

/// Every file of a store (call entries, replay records, blobs) swapped for
/// a FIFO: a rerun must neither hang on one (a plain open of a FIFO waits
/// for a writer forever; before, the replay lookup did) nor take anything
/// from it, and it computes the same results.
#[test]
fn fifos_planted_in_the_store_are_refused_never_waited_on() {
    let (dir, store, first) = first_run();
    // A second script whose whole run is kept for replay (the first lists
    // a folder, so only its calls are kept).
    std::fs::write(dir.path().join("r.assay"), "record \"a\", read_text(\"r.assay\")\n").unwrap();
    assert_eq!(run_guarded(dir.path(), store.path(), "r.assay")["replayed"], false);
    assert_eq!(run_guarded(dir.path(), store.path(), "r.assay")["replayed"], true, "the record is kept");
    let mut planted = 0;
    for shard in std::fs::read_dir(store.path()).unwrap().flatten().filter(|e| e.path().is_dir()) {
        for e in std::fs::read_dir(shard.path()).unwrap().flatten() {
            std::fs::remove_file(e.path()).unwrap();
            let st = std::process::Command::new("mkfifo").arg(e.path()).status().expect("mkfifo");
            assert!(st.success());
            planted += 1;
        }
    }
    // The replay record and the slow calls' entries.
    assert!(planted >= 3, "the runs stored entries ({planted})");
    let j = run_guarded(dir.path(), store.path(), "r.assay");
    assert_eq!(j["replayed"], false, "{j}");
    let j = run_guarded(dir.path(), store.path(), "s.assay");
    assert_eq!(j["replayed"], false, "{j}");
    assert_eq!(j["cached_calls"], 0, "{j}");
    let again = last_run(dir.path());
    assert_ne!(again, first);
    assert_eq!(
        std::fs::read(first.join("results.json")).unwrap(),
        std::fs::read(again.join("results.json")).unwrap(),
        "the rerun computes the same results"
    );
}
