//! Script cases as data: each `tests/cases/NAME.assay` has `NAME.expected`
//! beside it holding the exit code, the diagnostics on stderr, what the run
//! printed, and its results.json. `ASSAY_BLESS=1 cargo test` rewrites the
//! expectations; review the diff before committing it. Run by
//! `tests/scripts.rs`, one test per case and per example.

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
    // How many calls the shared test store answered depends on which cases
    // ran first; the record does not (a hit gives the same results.json).
    let uncached = |t: String| -> String {
        t.lines()
            .map(|l| match (l.find(" ("), l.find(" answered from the cache)")) {
                (Some(a), Some(b)) if a < b => format!("{}{}", &l[..a], &l[b + " answered from the cache)".len()..]),
                _ => l.to_string(),
            })
            .map(|l| l + "\n")
            .collect()
    };
    let normalize = |t: &str| uncached(t.replace(&runs_txt, "<runs>").replace(&cases_dir, "<cases>"));
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

/// Checks one case against its expectation (or rewrites it, blessing).
pub(crate) fn check_case(case: &Path) -> Result<(), String> {
    let got = render(case);
    if got.starts_with("# exit 101") {
        return Err(format!("{} panicked:\n{got}", case.display()));
    }
    let expected_path = case.with_extension("expected");
    if std::env::var_os("ASSAY_BLESS").is_some() {
        return std::fs::write(&expected_path, &got).map_err(|e| format!("write expectation: {e}"));
    }
    match std::fs::read_to_string(&expected_path) {
        Ok(want) if want == got => Ok(()),
        Ok(want) => Err(format!("{}\n--- expected\n{want}\n--- got\n{got}", case.display())),
        Err(_) => Err(format!("{}: no .expected file (run with ASSAY_BLESS=1)", case.display())),
    }
}

/// Runs an example twice, checks both records are complete and their
/// results.json byte-identical, and that `verify` agrees.
pub(crate) fn check_example(script: &Path) -> Result<(), String> {
    let examples = repo_root().join("examples");
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let stem = script.file_stem().and_then(|x| x.to_str()).ok_or("a file name")?;
    for _ in 0..2 {
        let out = Test::new(dir.path()).args(["run", script.to_str().ok_or("a UTF-8 path")?]).run();
        if out.code != 0 {
            return Err(format!("{} failed:\n{}{}", script.display(), out.stdout, out.stderr));
        }
    }
    let runs = crate::support::runs_of(dir.path(), stem);
    if runs.len() != 2 {
        return Err(format!("{stem}: {} complete runs, not 2", runs.len()));
    }
    for f in ["script.assay", "results.json", "manifest.json", "report.html"] {
        if !runs[0].join(f).is_file() {
            return Err(format!("{stem}: {f} missing"));
        }
    }
    // The trace: plain, or compressed past 1 MiB (and readable either way).
    let trace = assay_interpreter::read_trace(&runs[0], 1 << 30).map_err(|e| format!("{stem}: {e}"))?;
    if trace.lines().count() == 0 {
        return Err(format!("{stem}: an empty trace"));
    }
    let a = std::fs::read(runs[0].join("results.json")).map_err(|e| e.to_string())?;
    let b = std::fs::read(runs[1].join("results.json")).map_err(|e| e.to_string())?;
    if a != b {
        return Err(format!("{stem}: results.json differs between two runs"));
    }
    // verify takes its roots from the command line, never from the run folder.
    let v = Test::new(dir.path())
        .args([
            "verify",
            runs[0].to_str().ok_or("a UTF-8 path")?,
            "--allow-read",
            examples.to_str().ok_or("a UTF-8 path")?,
        ])
        .run();
    if v.code != 0 {
        return Err(format!("{stem}: verify failed: {}", v.stdout));
    }
    Ok(())
}

/// The `.assay` files of a folder, sorted.
pub(crate) fn scripts_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> =
        std::fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    v.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|e| e == "assay"));
    v.sort();
    v
}
