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

/// The built-in SmolLM2 graph names the dims of every tensor its nodes
/// compute (`value_info`, found by running it at three input sizes: see
/// stdlib/src/models/dims.rs), so that ONNX Runtime's memory planner finds
/// buffers of equal size and `assay inspect` shows each shape in the
/// input's terms; every SmolLM2 script case's results are unchanged by it
/// (their expected records predate it).
#[test]
fn the_built_in_language_model_states_the_shape_of_every_tensor() {
    let dir = tempfile::tempdir().expect("temp");
    std::fs::write(dir.path().join("p.assay"), "let lm = model(\"smollm2-135m\")\nrecord \"ok\", 1\n").expect("write");
    let out = Test::new(dir.path()).args(["run", "p.assay"]).run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let models = assay_stdlib::fetch::cache_dir().join("models");
    let model = std::fs::read_dir(&models)
        .expect("models")
        .flatten()
        .map(|e| e.path().join("model.onnx"))
        .find(|p| {
            p.parent().and_then(|d| d.file_name()).is_some_and(|n| n.to_string_lossy().starts_with("smollm2-135m"))
        })
        .expect("the built-in model");
    let shape = |pattern: &str| {
        let out = Test::new(dir.path())
            .args(["inspect", model.to_str().expect("path"), "--json", "--pattern", pattern])
            .run();
        assert_eq!(out.code, 0, "{}", out.stderr);
        let j = out.json();
        assert_eq!(j["tensors"].as_array().map(Vec::len), Some(1), "{j}");
        j["tensors"][0]["shape"].clone()
    };
    assert_eq!(shape("*layers.0/self_attn/scores_output_0"), serde_json::json!(["N", 3, 3, "T", "P+T"]));
    assert_eq!(shape("*layers.29/self_attn/heads_output_0"), serde_json::json!(["N", "T", 576]));
    assert_eq!(shape("*layers.7/mlp/act/Mul_output_0"), serde_json::json!(["N", "T", 1536]));
    // Every computed tensor but the outputs has a stated shape.
    let bytes = std::fs::read(&model).expect("model");
    let m = assay_stdlib::onnx::graph::decode(&bytes).expect("decode");
    let g = m.graph.expect("graph");
    let outputs: std::collections::HashSet<&str> = g.output.iter().map(|o| o.name()).collect();
    let stated: std::collections::HashSet<&str> = g
        .value_info
        .iter()
        .filter(|v| v.doc_string() == assay_stdlib::onnx::graph::NAMED_DIMS)
        .map(|v| v.name())
        .collect();
    let missing: Vec<&String> = g
        .node
        .iter()
        .flat_map(|n| &n.output)
        .filter(|o| !outputs.contains(o.as_str()) && !stated.contains(o.as_str()))
        .collect();
    assert!(missing.is_empty(), "no stated shape: {missing:?}");
}
