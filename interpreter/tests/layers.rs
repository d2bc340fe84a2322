//! The interpreter's modules form layers, and a module uses only those
//! below it: no import cycles (values and rhai, records and reports, the
//! evaluator and records each used to import each other). Read from the source (`crate::MODULE` paths in
//! code outside tests), so a new dependency that would close a cycle fails
//! here with the file and line that adds it.

#![allow(clippy::disallowed_methods, reason = "the test reads the library's source")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on a broken expectation")]

use std::path::{Path, PathBuf};

/// Bottom first. A module may use modules of lower layers only.
const LAYERS: &[&[&str]] = &[
    // Leaves: diagnostic codes, tensors, the sandbox, scanning and diffing.
    &["code", "tensor", "sandbox", "scan", "diff"],
    &["diag"],
    // A compiled rhai file, as a value holds it.
    &["rhai_module"],
    &["value"],
    &["types", "cache"],
    &["shard"],
    // Tools, their signatures and arguments.
    &["tool"],
    // Binding arguments; calling rhai and converting values.
    &["bind", "rhai_bridge"],
    &["check"],
    &["eval"],
    &["report"],
    // Run records: results, trace, manifest, report.
    &["record"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

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

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    let mut modules_seen = std::collections::BTreeSet::new();
    for f in &files {
        let rel = f.strip_prefix(&src).expect("inside src");
        let first = rel.iter().next().and_then(|c| c.to_str()).unwrap_or("");
        let module = first.trim_end_matches(".rs");
        if module == "lib" || f.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with("_test.rs")) {
            continue;
        }
        modules_seen.insert(module.to_string());
        let Some(own) = layer(module) else {
            problems
                .push(format!("{}: module `{module}` is in no layer of interpreter/tests/layers.rs", rel.display()));
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
                if name == module {
                    continue;
                }
                match layer(&name) {
                    Some(l) if l < own => {}
                    Some(_) => problems.push(format!(
                        "{}:{}: `{module}` uses `{name}`, which is not below it",
                        rel.display(),
                        n + 1
                    )),
                    None => {}
                }
            }
        }
    }
    assert!(problems.is_empty(), "layering broken:\n{}", problems.join("\n"));
    // Every layer names modules that exist.
    for l in LAYERS.iter().flat_map(|l| l.iter()) {
        assert!(modules_seen.contains(*l), "tests/layers.rs names `{l}`, which is no module");
    }
}
