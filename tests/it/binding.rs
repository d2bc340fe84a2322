//! One binder for the checker and the evaluator: each mistake in a call's
//! arguments gets the same code, message and help whether the checker sees
//! the call (a tool or function called by name) or only the run does (the
//! function comes out of a list, so nothing is known about it before).

use crate::support::Test;

/// The first diagnostic of `assay check --json` and of `assay run --json`
/// on a script the checker cannot see into.
fn diagnostics(checked: &str, at_run: &str) -> (serde_json::Value, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.assay"), checked).unwrap();
    std::fs::write(dir.path().join("r.assay"), at_run).unwrap();
    let c = Test::new(dir.path()).args(["check", "c.assay", "--json"]).run();
    let r = Test::new(dir.path()).args(["run", "r.assay", "--json", "--no-cache"]).run();
    let first = |j: serde_json::Value| j["diagnostics"][0].clone();
    (first(c.json()), first(r.json()))
}

#[test]
fn a_mistake_reads_the_same_at_check_time_and_at_run_time() {
    let def = "fn g(a, b = 2) { return a + b }\n";
    let cases = [
        // (call as the checker sees it, the same call through a list)
        ("clip(1, 2, 3, 4)", "[clip][0](1, 2, 3, 4)", "argument-count"),
        ("clip(1, 2, 3, hx: 4)", "[clip][0](1, 2, 3, hx: 4)", "unknown-argument"),
        ("clip(1, 2, 3, lo: 3)", "[clip][0](1, 2, 3, lo: 3)", "duplicate-argument"),
        ("clip(1)", "[clip][0](1)", "missing-argument"),
        ("clip(\"a\", 0, 1)", "[clip][0](\"a\", 0, 1)", "type"),
        ("g(1, 2, 3)", "[g][0](1, 2, 3)", "argument-count"),
        ("g(1, c: 3)", "[g][0](1, c: 3)", "unknown-argument"),
        ("g(1, a: 3)", "[g][0](1, a: 3)", "duplicate-argument"),
        ("g(b: 1)", "[g][0](b: 1)", "missing-argument"),
    ];
    // Several mistakes in one call: the checker lists them all in the
    // order of the source, the run stops at the first of them.
    let several = [("clip(1, hx: 3)", "[clip][0](1, hx: 3)", "missing-argument")];
    for (checked, at_run, code) in cases.into_iter().chain(several) {
        let (c, r) = diagnostics(&format!("{def}let x = {checked}\n"), &format!("{def}let x = {at_run}\n"));
        assert!(c["code"].as_str().is_some_and(|s| s.ends_with(code)), "{checked}: {c}");
        for field in ["code", "message", "help"] {
            assert_eq!(c[field], r[field], "{checked}: the {field} differs between check and run:\n{c}\n{r}");
        }
    }
}
