//! Script cases as data: each `tests/cases/NAME.assay` has `NAME.expected`
//! beside it holding the exit code, the diagnostics on stderr, what the run
//! printed, and its results.json. `ASSAY_BLESS=1 cargo test` rewrites the
//! expectations; review the diff before committing it.

use std::path::Path;

use crate::support::{repo_root, Test};

fn render(case: &Path) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let runs = dir.path().join("runs");
    let out = Test::new(case.parent().expect("cases folder"))
        .arg("run")
        .arg(case.file_name().and_then(|n| n.to_str()).expect("name"))
        .arg("--runs-dir")
        .arg(runs.to_str().expect("utf-8 path"))
        .run();
    let runs_txt = runs.display().to_string();
    // Absolute paths differ between machines; name them by role.
    let cases_dir =
        case.parent().and_then(|p| p.canonicalize().ok()).map(|p| p.display().to_string()).unwrap_or_default();
    let normalize = |t: &str| t.replace(&runs_txt, "<runs>").replace(&cases_dir, "<cases>");
    let mut s = format!("# exit {}\n", out.code);
    if !out.stderr.is_empty() {
        s.push_str("# stderr\n");
        s.push_str(&normalize(&out.stderr));
    }
    if !out.stdout.is_empty() {
        s.push_str("# stdout\n");
        s.push_str(&normalize(&out.stdout));
    }
    let stem = case.file_stem().and_then(|n| n.to_str()).expect("stem");
    let results = runs.join(stem).join("0001").join("results.json");
    if let Ok(r) = std::fs::read_to_string(results) {
        s.push_str("# results.json\n");
        s.push_str(&normalize(&r));
    }
    s
}

#[test]
fn script_cases() {
    let cases_dir = repo_root().join("tests/cases");
    let mut cases: Vec<_> = std::fs::read_dir(&cases_dir)
        .expect("tests/cases")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "assay"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 40, "expected at least 40 script cases, found {}", cases.len());
    let bless = std::env::var_os("ASSAY_BLESS").is_some();
    let mut failures = Vec::new();
    for case in &cases {
        let got = render(case);
        assert!(!got.starts_with("# exit 101"), "{} panicked:\n{got}", case.display());
        let expected_path = case.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, &got).expect("write expectation");
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(want) if want == got => {}
            Ok(want) => failures.push(format!("{}\n--- expected\n{want}\n--- got\n{got}", case.display())),
            Err(_) => failures.push(format!("{}: no .expected file (run with ASSAY_BLESS=1)", case.display())),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}
