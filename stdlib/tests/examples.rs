//! Every tool's examples are scripts; each must check, run without error,
//! make at least one claim with `assert`, and have all its claims hold.
//! Examples run with tests/ as the script folder, so they may read fixtures/.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on a broken expectation")]

use std::path::PathBuf;

use assay_interpreter::{run_script, RunOptions, Sandbox, SourceFile};

#[test]
fn every_tool_example_runs_and_its_asserts_pass() {
    let registry = assay_stdlib::registry();
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests");
    let sandbox = Sandbox::new(&base, &[]).expect("sandbox");
    let mut count = 0;
    let mut failures = Vec::new();
    // ASSAY_ONLY_TOOLS=a,b runs just those tools' examples (while developing).
    let only = std::env::var("ASSAY_ONLY_TOOLS").ok();
    for sig in registry.signatures() {
        if only.as_deref().is_some_and(|o| !o.split(',').any(|n| n == sig.name)) {
            continue;
        }
        assert!(!sig.examples.is_empty(), "tool `{}` has no example", sig.name);
        assert!(!sig.doc.is_empty(), "tool `{}` has no doc", sig.name);
        // Tools that need an outside service (an LLM endpoint) are exercised
        // against a local server in the CLI tests instead.
        if sig.requires.is_some_and(|v| std::env::var_os(v).is_none()) {
            continue;
        }
        for (i, ex) in sig.examples.iter().enumerate() {
            count += 1;
            let file = SourceFile::new(format!("{}-example-{i}.assay", sig.name), *ex);
            assert!(ex.contains(sig.name), "an example of `{}` should use it:\n{ex}", sig.name);
            // A run folder of its own, for tools that stream files into it.
            let folder = tempfile::tempdir().expect("a run folder");
            let opts = RunOptions { run_folder: Some(folder.path()), ..RunOptions::default() };
            let out = match run_script(&file, &registry, &sandbox, None, opts) {
                Ok(ran) => ran.outcome,
                Err(diags) => {
                    failures.push(format!("{}: check failed: {}", sig.name, diags[0].render_plain(100)));
                    continue;
                }
            };
            if let Some(e) = &out.error {
                failures.push(format!("{}: {}", sig.name, e.render_plain(100)));
            } else if out.asserts.is_empty() {
                failures.push(format!("{}: example makes no assert:\n{ex}", sig.name));
            } else if let Some(a) = out.asserts.iter().find(|a| !a.passed) {
                failures.push(format!("{}: assert failed: {}", sig.name, a.expr));
            }
        }
    }
    assert!(failures.is_empty(), "{} failing examples:\n{}", failures.len(), failures.join("\n"));
    assert!(only.is_some() || count >= registry.len() - registry.signatures().filter(|s| s.requires.is_some()).count());
}

#[test]
fn tool_names_are_unique_and_params_documented() {
    let registry = assay_stdlib::registry();
    // The registry keeps the first of two registrations and notes the name.
    assert!(registry.duplicates().is_empty(), "registered twice: {:?}", registry.duplicates());
    for sig in registry.signatures() {
        for p in &sig.params {
            assert!(!p.doc.is_empty(), "{}.{} has no doc", sig.name, p.name);
        }
        // Required parameters come before optional ones.
        let first_opt = sig.params.iter().position(|p| !matches!(p.default, assay_interpreter::Default::Required));
        if let Some(i) = first_opt {
            assert!(
                sig.params[i..].iter().all(|p| !matches!(p.default, assay_interpreter::Default::Required)),
                "{}",
                sig.name
            );
        }
    }
}
