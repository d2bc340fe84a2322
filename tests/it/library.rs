//! The runner used as a library, without the command line: a program that
//! is not `assay` names the `assay` executable its sandboxed children run,
//! then calls the supervisor and `verify` as functions and reads typed
//! results (no stdout to parse, no exit code to interpret).

use std::path::{Path, PathBuf};

use assay::cache::CacheUse;
use assay::supervise::{run_child, use_executable, Budget, End, Job, Report};
use assay::verify::{verify, NotVerified};
use assay_interpreter::Status;

use crate::support::{assay_bin, runs_of, temp_with, Test};

/// This test binary is not `assay`: children run the real one. Every test
/// names the same file, so a second call's refusal names it too.
fn use_assay() {
    if let Err(in_use) = use_executable(assay_bin()) {
        assert_eq!(in_use, assay_bin());
    }
}

fn job(dir: &Path, script: &str, out: PathBuf) -> Job {
    Job::new(
        "s.assay".into(),
        script.into(),
        dir.to_path_buf(),
        vec![dir.to_path_buf()],
        out,
        Budget::defaults(),
        CacheUse::Off,
    )
}

#[test]
fn the_supervisor_runs_a_script_in_the_child_and_returns_its_report() {
    use_assay();
    let dir = temp_with(&[("data.txt", "5")]);
    let out = dir.path().join("rec");
    std::fs::create_dir_all(out.join("artifacts")).unwrap();
    let script = "let n = num(read_text(\"data.txt\"))\nrecord \"twice\", n * 2\nassert n == 5\n";
    let Ok(End::Report(Report::Done(done))) = run_child(&job(dir.path(), script, out.clone())) else {
        panic!("the child did not report a finished run")
    };
    assert_eq!(done.status, Status::Ok);
    assert_eq!((done.records, done.asserts), (1, 1));
    let results = std::fs::read_to_string(out.join("results.json")).unwrap();
    assert!(results.contains("\"twice\"") && results.contains("10"), "{results}");

    // A read outside the roots is the child's error, reported as one.
    let outside = dir.path().join("rec2");
    std::fs::create_dir_all(outside.join("artifacts")).unwrap();
    let Ok(End::Report(Report::Done(done))) = run_child(&job(dir.path(), "read_text(\"/etc/passwd\")\n", outside))
    else {
        panic!("the child did not report")
    };
    assert_eq!(done.status, Status::Error);

    // A script that does not check never runs: the report says why.
    let bad = dir.path().join("rec3");
    std::fs::create_dir_all(bad.join("artifacts")).unwrap();
    match run_child(&job(dir.path(), "record \"x\", nosuch(1)\n", bad)) {
        Ok(End::Report(Report::CheckFailed { rendered, .. })) => assert!(rendered.contains("nosuch"), "{rendered}"),
        other => panic!("expected a check failure, got {other:?}"),
    }
}

#[test]
fn verify_returns_what_it_found_as_values() {
    use_assay();
    let dir = temp_with(&[("data.txt", "3"), ("r.assay", "record \"n\", num(read_text(\"data.txt\"))\n")]);
    assert_eq!(Test::new(dir.path()).args(["run", "r.assay"]).run().code, 0);
    let run = runs_of(dir.path(), "r").remove(0);
    let allow = [dir.path().to_path_buf()];

    let v = verify(&run, &allow, Budget::defaults(), CacheUse::Off).unwrap();
    assert!(v.same && v.changes.is_empty() && v.changed_inputs.is_empty(), "{v:?}");

    // The input changed: the record differs and the input is named.
    std::fs::write(dir.path().join("data.txt"), "4").unwrap();
    let v = verify(&run, &allow, Budget::defaults(), CacheUse::Off).unwrap();
    assert!(!v.same, "{v:?}");
    assert_eq!(v.changes.len(), 1, "{v:?}");
    assert_eq!(v.changed_inputs.len(), 1, "{v:?}");
    assert!(v.changed_inputs[0].ends_with("data.txt changed"), "{v:?}");

    // An altered run folder is refused before anything runs.
    std::fs::write(run.join("script.assay"), "record \"n\", 3\n").unwrap();
    match verify(&run, &allow, Budget::defaults(), CacheUse::Off) {
        Err(NotVerified::Refused(why)) => assert!(why.contains("altered"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Not a run folder at all: the caller is told what to pass.
    match verify(dir.path(), &allow, Budget::defaults(), CacheUse::Off) {
        Err(NotVerified::Usage { help, .. }) => assert!(help.contains("run folder"), "{help}"),
        other => panic!("expected a usage error, got {other:?}"),
    }
}

#[test]
fn shares_and_budgets_parse_as_the_command_line_does() {
    let s = assay::shard::resolve("1/4").unwrap();
    assert_eq!((s.index, s.count), (1, 4));
    assert!(assay::shard::resolve("4/4").is_err());
    assert_eq!(assay::supervise::parse_size("2G").unwrap(), 2 << 30);
    assert_eq!(assay::supervise::parse_duration("90s").unwrap().as_secs(), 90);
    assert!(assay::supervise::parse_size("lots").is_err());
}
