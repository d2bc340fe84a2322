//! The call cache and whole-run replay when the world changes underneath:
//! the same script text in another folder, links re-pointed (to a file and
//! to a folder), files swapped, scripts moved. A cached or replayed answer
//! must always be the answer a `--no-cache` run gives then. Each case was a
//! wrong `ok` before reads were kept by the path as named: the parent
//! folder's script got `sub/acts.npy`'s data, and a re-pointed link
//! replayed the old record.

use std::path::Path;

use rand::{Rng, SeedableRng};
use serde_json::Value as Json;

use crate::support::Test;

/// Every call is stored (the reads here are fast).
fn assay(dir: &Path, store: &Path) -> Test {
    Test::new(dir).env("ASSAY_CALL_CACHE_DIR", store.to_str().unwrap()).env("ASSAY_CACHE_MIN_SECONDS", "0")
}

/// The script's records and how the run was answered ("ran", "cached N" or "replayed").
fn run(dir: &Path, store: &Path, script: &str, cache: bool) -> (Json, String) {
    let mut t = assay(dir, store).args(["run", script, "--json"]);
    if !cache {
        t = t.arg("--no-cache");
    }
    let out = t.run();
    assert!([0, 3].contains(&out.code), "{script} in {}: {}{}", dir.display(), out.stdout, out.stderr);
    let j = out.json();
    let how = if j["replayed"].as_bool() == Some(true) {
        "replayed".to_string()
    } else {
        format!("cached {}", j["cached_calls"].as_u64().unwrap_or(0))
    };
    (j["results"]["records"].clone(), how)
}

fn npy(values: &[f32]) -> Vec<u8> {
    assay_interpreter::npy_f32(&[values.len()], values.iter().copied())
}

fn symlink(target: &str, link: &Path) {
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(target, link).unwrap();
}

#[test]
fn the_same_script_in_another_folder_reads_its_own_files() {
    let root = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let script = "record \"acts\", load_tensors(\"acts.npy\")\n";
    std::fs::create_dir_all(root.path().join("sub")).unwrap();
    std::fs::write(root.path().join("sub/acts.npy"), npy(&[1.0, 2.0])).unwrap();
    std::fs::write(root.path().join("acts.npy"), npy(&[7.0, 8.0, 9.0])).unwrap();
    std::fs::write(root.path().join("sub/s.assay"), script).unwrap();
    std::fs::write(root.path().join("s.assay"), script).unwrap();
    let (sub, _) = run(&root.path().join("sub"), store.path(), "s.assay", true);
    let (parent, how) = run(root.path(), store.path(), "s.assay", true);
    let (truth, _) = run(root.path(), store.path(), "s.assay", false);
    assert_eq!(parent, truth, "answered {how}");
    assert_ne!(parent, sub);
}

#[test]
fn re_pointed_links_are_read_anew_by_calls_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("v1.txt"), "one").unwrap();
    std::fs::write(d.join("v2.txt"), "two").unwrap();
    for v in ["v1", "v2"] {
        std::fs::create_dir_all(d.join(v)).unwrap();
        std::fs::write(d.join(v).join("x.txt"), format!("folder {v}")).unwrap();
    }
    symlink("v1.txt", &d.join("cur.txt"));
    symlink("v1", &d.join("data"));
    std::fs::write(
        d.join("s.assay"),
        "record \"file\", read_text(\"cur.txt\")\nrecord \"folder\", read_text(\"data/x.txt\")\n",
    )
    .unwrap();
    let (first, _) = run(d, store.path(), "s.assay", true);
    assert_eq!(first["file"], "one");
    let (again, how) = run(d, store.path(), "s.assay", true);
    assert_eq!((again, how.as_str()), (first.clone(), "replayed"), "an unchanged rerun is replayed");
    symlink("v2.txt", &d.join("cur.txt"));
    let (file, how) = run(d, store.path(), "s.assay", true);
    assert_eq!((file["file"].as_str(), file["folder"].as_str()), (Some("two"), Some("folder v1")), "answered {how}");
    symlink("v2", &d.join("data"));
    let (folder, how) = run(d, store.path(), "s.assay", true);
    assert_eq!(folder["folder"], "folder v2", "answered {how}");
}

/// Random scripts over a tree with file and folder links, run, then the
/// tree mutated (links re-pointed, files swapped, the scripts' folder moved
/// or copied), then run again: each cached or replayed answer equals the
/// `--no-cache` answer of that moment.
#[test]
fn cached_and_replayed_answers_equal_fresh_ones_as_the_tree_changes() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(28);
    let store = tempfile::tempdir().unwrap();
    let (mut hits, mut checks) = (0, 0);
    for case in 0..6 {
        let top = tempfile::tempdir().unwrap();
        let mut d = top.path().join("w");
        for v in 0..3 {
            std::fs::create_dir_all(d.join(format!("d{v}"))).unwrap();
            std::fs::write(d.join(format!("f{v}.txt")), format!("file {v} of case {case}")).unwrap();
            std::fs::write(d.join(format!("d{v}/x.txt")), format!("folder {v} of case {case}")).unwrap();
            std::fs::write(d.join(format!("d{v}/a.npy")), npy(&[v as f32, case as f32])).unwrap();
        }
        symlink("f0.txt", &d.join("cur.txt"));
        symlink("d0", &d.join("data"));
        // A script of 2 to 4 reads, by link and by plain name.
        let reads = [
            "read_text(\"cur.txt\")",
            "read_text(\"data/x.txt\")",
            "load_tensors(\"data/a.npy\")",
            "read_text(\"f1.txt\")",
            "read_lines(\"data/x.txt\")",
        ];
        let n = rng.random_range(2..=4);
        let script: String =
            (0..n).map(|i| format!("record \"r{i}\", {}\n", reads[rng.random_range(0..reads.len())])).collect();
        std::fs::write(d.join("s.assay"), &script).unwrap();
        run(&d, store.path(), "s.assay", true);
        for _ in 0..4 {
            match rng.random_range(0..5) {
                0 => symlink(&format!("f{}.txt", rng.random_range(0..3)), &d.join("cur.txt")),
                1 => symlink(&format!("d{}", rng.random_range(0..3)), &d.join("data")),
                2 => {
                    // Swap two files' contents.
                    let (a, b) = (d.join("f0.txt"), d.join("d1/x.txt"));
                    let (ta, tb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
                    std::fs::write(&a, tb).unwrap();
                    std::fs::write(&b, ta).unwrap();
                }
                3 => {
                    let to = top.path().join(format!("moved{}", rng.random_range(0..1000)));
                    std::fs::rename(&d, &to).unwrap();
                    d = to;
                }
                _ => {} // Unchanged: a hit must still be right.
            }
            let (cached, how) = run(&d, store.path(), "s.assay", true);
            let (fresh, _) = run(&d, store.path(), "s.assay", false);
            assert_eq!(cached, fresh, "case {case}: answered {how}\n{script}");
            checks += 1;
            if how != "cached 0" {
                hits += 1;
            }
        }
    }
    eprintln!("{hits} of {checks} reruns were answered from the cache or replayed");
    assert!(hits > 0, "the cache answered nothing: the property was not exercised");
}
