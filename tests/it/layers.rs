//! Each crate's modules form layers, and a module uses only those below it:
//! no import cycles. Read from the source (`crate::MODULE` paths in code
//! outside tests and comments), so a new dependency that would close a cycle
//! fails here with the file and line that adds it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The library of tools. Bottom first.
const STDLIB: &[&[&str]] = &[
    // Leaves: plain data and arithmetic, provisioning, the one network client.
    &["core", "fetch", "llm", "pixels"],
    // The mechanics of hosting models, and the handle and ports tools use.
    &["onnx"],
    // Built-in models, built with the mechanics; the interpretability
    // methods over any model (run and capture, units, sweeps, interventions,
    // metrics, lens, attribution, attention), which need no built-in one.
    &["models", "methods"],
    // Image tools, synthetic neurons, exemplars, plots.
    &["vision"],
    // What a run fetches before its sandbox closes: knows every tool family.
    &["provision"],
];

/// The language. Values and rhai, records and reports, and the evaluator
/// and records each used to import each other.
const INTERPRETER: &[&[&str]] = &[
    // Leaves: diagnostic codes, tensors, the sandbox, scanning and diffing.
    &["code", "tensor", "sandbox", "scan", "diff"],
    &["diag"],
    // A compiled rhai file, as a value holds it (calling it is `rhai_bridge`).
    &["rhai_module"],
    &["value"],
    &["types", "cache"],
    &["shard"],
    // Tools, their signatures and arguments.
    &["tool"],
    // Binding arguments; calling rhai and converting values.
    &["bind", "rhai_bridge"],
    &["check"],
    // The evaluator, with `Status` (how a run ended).
    &["eval"],
    &["report"],
    // Run records: results, trace, manifest, report.
    &["record"],
    // One run start to record: prepare, execute, the record's files.
    &["pipeline"],
];

/// The `assay` command.
const COMMAND: &[&[&str]] = &[
    // Exit codes and printing; the call cache's store; generated docs.
    &["out", "cache", "docs"],
    // The sandboxed child and its supervision; `assay inspect`.
    &["supervise", "inspect"],
    // Whole-run replay; the agent's loop.
    &["replay", "agent"],
    // Running one script from the command line; benchmarks of agents.
    &["run", "bench"],
    // Sharded runs, merges and SLURM.
    &["shard"],
    &["cli"],
    &["main"],
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("source folder").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// What breaks `layers` in the crate whose source is `src`.
fn layering_problems(src: &Path, layers: &[&[&str]]) -> Vec<String> {
    let layer = |module: &str| layers.iter().position(|l| l.contains(&module));
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for f in &files {
        let rel = f.strip_prefix(src).expect("inside src");
        let module = rel.iter().next().and_then(|c| c.to_str()).unwrap_or("").trim_end_matches(".rs");
        // Unit-test files (`x_test.rs` beside a module, `tests.rs` in a module's folder) may use anything.
        let test_file =
            f.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with("_test.rs") || n == "tests.rs");
        if module == "lib" || test_file {
            continue;
        }
        seen.insert(module.to_string());
        let Some(own) = layer(module) else {
            problems.push(format!("{}: module `{module}` is in no layer of tests/it/layers.rs", f.display()));
            continue;
        };
        let text = std::fs::read_to_string(f).expect("source");
        // Test code may use anything (fixtures from higher layers).
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            // Comments may name any module.
            if line.trim_start().starts_with("//") {
                continue;
            }
            let mut rest = line;
            while let Some(i) = rest.find("crate::") {
                let name: String =
                    rest[i + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                rest = &rest[i + 7..];
                match layer(&name) {
                    Some(l) if l < own || name == module => {}
                    Some(_) => problems.push(format!(
                        "{}:{}: `{module}` uses `{name}`, which is not below it",
                        f.display(),
                        n + 1
                    )),
                    None => {}
                }
            }
        }
    }
    // Every layer names modules that exist.
    for l in layers.iter().flat_map(|l| l.iter()) {
        if !seen.contains(*l) {
            problems.push(format!("tests/it/layers.rs names `{l}` in {}, which is no module", src.display()));
        }
    }
    problems
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    for (src, layers) in [("stdlib/src", STDLIB), ("interpreter/src", INTERPRETER), ("src", COMMAND)] {
        problems.extend(layering_problems(&root.join(src), layers));
    }
    assert!(problems.is_empty(), "layering broken:\n{}", problems.join("\n"));
}

#[test]
fn a_use_that_closes_a_cycle_is_found() {
    // A module of a low layer that names one above it, as a planted file.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("low.rs"), "// crate::high in a comment is fine\nuse crate::high::X;\n")
        .expect("write");
    std::fs::write(dir.path().join("high.rs"), "use crate::low::Y;\n").expect("write");
    let problems = layering_problems(dir.path(), &[&["low"], &["high"]]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].ends_with("low.rs:2: `low` uses `high`, which is not below it"), "{problems:?}");
}
