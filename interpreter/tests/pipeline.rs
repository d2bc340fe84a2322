//! The run pipeline in process (`prepare`, `Prepared::execute`, the record),
//! over a registry of one test tool and a real rhai module in a folder of
//! the test's own: a run's record is written, read back and is the same
//! bytes on a second run; the seed comes from the caller, else the script;
//! module files join the inputs; a script that does not check never runs.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on a broken expectation")]

use assay_interpreter::{prepare, read_run, run_script, write_run, Code, RunOptions, Sandbox, SourceFile};

mod common;

use common::registry;

const SCRIPT: &str = "seed 7\nuse \"half.rhai\" as h\nlet y = clip(h.half(5), hi: 2)\nrecord \"y\", y\nassert y == 2\n";

/// A folder of the test's own holding the rhai module SCRIPT uses, and a
/// sandbox rooted there.
fn folder() -> (tempfile::TempDir, Sandbox) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("half.rhai"), "fn half(x) { x / 2.0 }\n").unwrap();
    let sandbox = Sandbox::new(dir.path(), &[]).unwrap();
    (dir, sandbox)
}

#[test]
fn a_run_is_prepared_executed_and_recorded_the_same_twice() {
    let (dir, sandbox) = folder();
    let registry = registry();
    let file = SourceFile::new("t.assay", SCRIPT);
    let runs = dir.path().join("runs");
    let mut folders = Vec::new();
    for _ in 0..2 {
        let mut ran = run_script(&file, &registry, &sandbox, None, RunOptions::default()).expect("the script checks");
        assert!(ran.outcome.error.is_none(), "{:?}", ran.outcome.error);
        let manifest = ran.manifest();
        assert_eq!(manifest.status, assay_interpreter::Status::Ok);
        assert_eq!(manifest.seed, 7, "the script's seed");
        let module = dir.path().canonicalize().unwrap().join("half.rhai");
        assert!(manifest.inputs.contains_key(&module.display().to_string()), "{:?}", manifest.inputs);
        folders.push(write_run(&runs, "t", &ran.files(&manifest)).unwrap());
    }
    assert_ne!(folders[0], folders[1]);
    let (a, b) = (read_run(&folders[0]).unwrap(), read_run(&folders[1]).unwrap());
    assert_eq!(a.results_text, b.results_text, "results.json differs between two runs");
    assert_eq!(a.results["records"]["y"], serde_json::json!(2), "{}", a.results_text);
    assert_eq!(a.manifest, b.manifest);
    assert_eq!(a.script, SCRIPT);
}

#[test]
fn the_callers_seed_wins_over_the_scripts() {
    let (_dir, sandbox) = folder();
    let registry = registry();
    let prepared = prepare(&SourceFile::new("t.assay", SCRIPT), &registry, &sandbox);
    let ran = prepared.execute(&registry, &sandbox, Some(11), RunOptions::default()).expect("checks");
    assert_eq!(ran.manifest().seed, 11);
    let no_seed = prepare(&SourceFile::new("u.assay", "record \"x\", clip(3)\n"), &registry, &sandbox);
    assert_eq!(no_seed.execute(&registry, &sandbox, None, RunOptions::default()).expect("checks").outcome.seed, 0);
}

#[test]
fn a_script_that_does_not_check_is_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::new(dir.path(), &[]).unwrap();
    let registry = registry();
    let file = SourceFile::new("bad.assay", "record \"x\", clip(\"a\")\nrecord \"y\", clamp(1)\n");
    let diags = match run_script(&file, &registry, &sandbox, None, RunOptions::default()) {
        Ok(_) => panic!("a script with errors ran"),
        Err(d) => d,
    };
    let codes: Vec<Code> = diags.iter().map(|d| d.code).collect();
    assert_eq!(codes.len(), 2, "every error at once: {:?}", diags.iter().map(|d| &d.message).collect::<Vec<_>>());
    assert_eq!(codes, [Code::Type, Code::UnknownTool], "a string for `x`, then `clamp`");
    assert!(!dir.path().join("runs").exists(), "nothing is written for a script that did not check");
}

/// An in-memory call cache that names a build (a test double standing in
/// for the command's store: the interpreter's half of the key is what is
/// under test).
struct Memory {
    build: String,
    entries: std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>,
}

impl assay_interpreter::CallCache for Memory {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.entries.lock().ok()?.get(key).cloned()
    }
    fn put(&self, key: &str, entry: &[u8]) {
        if let Ok(mut e) = self.entries.lock() {
            e.insert(key.to_string(), entry.to_vec());
        }
    }
    fn build(&self) -> String {
        self.build.clone()
    }
    fn min_seconds(&self) -> f64 {
        0.0
    }
}

/// A cached call answers a rerun of the same build; an entry made by one
/// build never answers for another (its code may compute something else),
/// even when the version number is the same.
#[test]
fn an_entry_answers_only_the_build_that_made_it() {
    let (_dir, sandbox) = folder();
    let registry = registry();
    let file = SourceFile::new("t.assay", "record \"y\", clip(3, hi: 2)\n");
    let a = Memory { build: "0.1.0+aaaa".into(), entries: Default::default() };
    let run = |cache: &Memory| {
        let opts = RunOptions { cache: Some(cache), ..RunOptions::default() };
        let ran = run_script(&file, &registry, &sandbox, None, opts).expect("checks");
        ran.outcome.cache_hits
    };
    assert_eq!(run(&a), 0, "a first run computes");
    assert_eq!(run(&a), 1, "the same build's rerun is answered from the cache");
    let b = Memory { build: "0.1.0+bbbb".into(), entries: std::sync::Mutex::new(a.entries.lock().unwrap().clone()) };
    assert_eq!(run(&b), 0, "another build with the first one's entries computes");
}
