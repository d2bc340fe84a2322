//! Every tool's examples are scripts, one test each (`cargo test -p
//! assay-stdlib --test examples -- clip` runs `clip`'s): each must check,
//! run without error, make at least one claim with `assert`, and have all
//! its claims hold. Examples run with tests/ as the script folder, so they
//! may read fixtures/. A tool that needs an outside service (an LLM
//! endpoint) and has none configured is reported as ignored, not passed;
//! the CLI tests run it against a local server.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on a broken expectation")]

use std::path::PathBuf;
use std::sync::Arc;

use assay_interpreter::{run_script, Registry, RunOptions, Sandbox, SourceFile};
use libtest_mimic::{Arguments, Failed, Trial};

fn main() {
    let args = Arguments::from_args();
    let registry = Arc::new(assay_stdlib::registry());
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut trials = Vec::new();
    for sig in registry.signatures() {
        let name = sig.name;
        let (doc, examples) = (!sig.doc.is_empty(), sig.examples.len());
        trials.push(Trial::test(format!("{name}::documented"), move || {
            if !doc {
                return Err(Failed::from(format!("tool `{name}` has no doc")));
            }
            if examples == 0 {
                return Err(Failed::from(format!("tool `{name}` has no example")));
            }
            Ok(())
        }));
        let unavailable = sig.requires.filter(|v| std::env::var_os(v).is_none());
        for (i, ex) in sig.examples.iter().enumerate() {
            let (registry, base, ex) = (registry.clone(), base.clone(), ex.to_string());
            let trial =
                Trial::test(format!("{name}::example_{i}"), move || run_example(&registry, &base, name, i, &ex));
            trials.push(match unavailable {
                Some(var) => trial.with_ignored_flag(true).with_kind(format!("needs {var}")),
                None => trial,
            });
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

fn run_example(registry: &Registry, base: &std::path::Path, name: &str, i: usize, ex: &str) -> Result<(), Failed> {
    if !ex.contains(name) {
        return Err(Failed::from(format!("an example of `{name}` should use it:\n{ex}")));
    }
    let sandbox = Sandbox::new(base, &[]).map_err(|e| Failed::from(e.to_string()))?;
    let file = SourceFile::new(format!("{name}-example-{i}.assay"), ex);
    // A run folder of its own, for tools that stream files into it.
    let folder = tempfile::tempdir().expect("a run folder");
    let opts = RunOptions { run_folder: Some(folder.path()), ..RunOptions::default() };
    let out = match run_script(&file, registry, &sandbox, None, opts) {
        Ok(ran) => ran.outcome,
        Err(diags) => return Err(Failed::from(format!("check failed: {}", diags[0].render_plain(100)))),
    };
    if let Some(e) = &out.error {
        return Err(Failed::from(e.render_plain(100)));
    }
    if out.asserts.is_empty() {
        return Err(Failed::from(format!("the example makes no assert:\n{ex}")));
    }
    if let Some(a) = out.asserts.iter().find(|a| !a.passed) {
        return Err(Failed::from(format!("assert failed: {}", a.expr)));
    }
    Ok(())
}
