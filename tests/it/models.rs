//! The model layer from the command line: ONNX Runtime provisioning on a
//! fresh cache, and `assay inspect`.

use crate::support::{repo_root, Test};

#[test]
fn setup_fetches_onnx_runtime_into_an_empty_cache_then_reuses_it() {
    let cache = tempfile::tempdir().expect("tempdir");
    let dir = cache.path().to_str().expect("path");
    // A Python onnxruntime, if the machine has one, would be used instead of fetching.
    let first = Test::new(cache.path()).env("ASSAY_CACHE_DIR", dir).args(["setup", "--json"]).run();
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let how = first.json()["onnxruntime"]["how"].as_str().unwrap_or("").to_string();
    assert!(how.contains("fetched") || how.contains("Python onnxruntime"), "{how}");
    let second = Test::new(cache.path()).env("ASSAY_CACHE_DIR", dir).args(["setup", "--json"]).run();
    assert_eq!(second.code, 0);
    if how.contains("fetched") {
        assert!(second.json()["onnxruntime"]["how"].as_str().unwrap_or("").starts_with("cached at"));
        assert!(cache.path().join("onnxruntime/1.31.1/libonnxruntime.so.1.31.1").is_file());
    }
}

#[test]
fn setup_reports_a_missing_library_clearly() {
    let out = Test::new(&repo_root()).env("ASSAY_ORT_LIB", "/nonexistent/libonnxruntime.so").args(["setup"]).run();
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("ASSAY_ORT_LIB is set to /nonexistent/libonnxruntime.so, which is not a file"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("Set ASSAY_ORT_LIB"), "says how to provide it: {}", out.stderr);
}

#[test]
fn inspect_lists_tensors_grouped_and_as_json() {
    let model = repo_root().join("stdlib/tests/fixtures/tiny.onnx");
    let text = Test::new(&repo_root()).args(["inspect", model.to_str().expect("path")]).run();
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stdout.contains("inputs:\n  x  float32 [2, 3]"), "{}", text.stdout);
    assert!(text.stdout.contains("y  float32 [2, 3]  Relu"), "{}", text.stdout);
    let json =
        Test::new(&repo_root()).args(["inspect", model.to_str().expect("path"), "--json", "--pattern", "[hz]"]).run();
    let j = json.json();
    let names: Vec<&str> =
        j["tensors"].as_array().expect("tensors").iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["h", "z"]);
    assert_eq!(j["nodes"], 3);
    let bad = tempfile::NamedTempFile::new().expect("temp");
    std::fs::write(bad.path(), b"garbage").expect("write");
    let out = Test::new(&repo_root()).args(["inspect", bad.path().to_str().expect("path")]).run();
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("not a valid ONNX model"), "{}", out.stderr);
}

#[test]
fn inspect_reads_external_weights_beside_a_bare_file_name() {
    // `assay inspect external.onnx` from the model's folder: the folder of
    // a bare name is the current one (ONNX Runtime refused an empty one).
    let fixtures = repo_root().join("stdlib/tests/fixtures");
    let out = Test::new(&fixtures).args(["inspect", "external.onnx"]).run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("external data: external.data") && out.stdout.contains("h  float32 [2, 3]"),
        "{}",
        out.stdout
    );
}

/// ONNX Runtime's pool takes the CPUs the run may use: `ASSAY_THREADS`
/// when set, else the process's share (affinity and cgroup quota), capped
/// by SLURM's `SLURM_CPUS_PER_TASK`; the manifest says how many.
#[test]
fn the_thread_pool_takes_the_cpus_the_run_may_use() {
    let dir = crate::support::temp_with(&[(
        "t.assay",
        "let m = onnx(\"m.onnx\")\nrecord \"y\", run(m, zeros([2, 3], value: 1))\n",
    )]);
    let fixtures = crate::support::repo_root().join("stdlib/tests/fixtures");
    for f in ["external.onnx", "external.data"] {
        std::fs::copy(fixtures.join(f), dir.path().join(if f.ends_with("onnx") { "m.onnx" } else { f })).unwrap();
    }
    let threads = |env: &[(&str, &str)]| {
        let mut t = Test::new(dir.path()).args(["run", "t.assay", "--no-cache"]);
        for (k, v) in env {
            t = t.env(k, v);
        }
        let out = t.run();
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        let run = crate::support::runs_of(dir.path(), "t").pop().unwrap();
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run.join("manifest.json")).unwrap()).unwrap();
        manifest["onnxruntime"]["threads"].as_u64().unwrap()
    };
    let usable = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap();
    assert_eq!(threads(&[]), usable);
    assert_eq!(threads(&[("SLURM_CPUS_PER_TASK", "1")]), 1);
    assert_eq!(threads(&[("SLURM_CPUS_PER_TASK", "64")]), usable, "a SLURM share never raises the count");
    assert_eq!(threads(&[("ASSAY_THREADS", "3")]), 3);
    assert_eq!(threads(&[("ASSAY_THREADS", "0")]), usable, "0 means unset");
}
