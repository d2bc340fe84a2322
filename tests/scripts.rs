//! The script cases (`tests/cases/`) and the examples (`examples/`), one
//! test each, run in parallel: `cargo test --test scripts -- NAME` runs the
//! ones whose name contains NAME (`case::ok_map`, `example::tour`).

#![allow(clippy::disallowed_methods, reason = "tests read their fixtures and run records directly")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on a broken expectation")]

#[path = "it/support.rs"]
#[allow(dead_code)]
mod support;

#[path = "it/cases.rs"]
mod cases;

use libtest_mimic::{Arguments, Failed, Trial};

fn main() {
    let args = Arguments::from_args();
    let root = support::repo_root();
    let case_files = cases::scripts_in(&root.join("tests/cases"));
    let examples = cases::scripts_in(&root.join("examples"));
    let mut trials = vec![Trial::test("cases::enough_of_them", {
        let (n, m) = (case_files.len(), examples.len());
        move || {
            if n < 40 || m == 0 {
                return Err(Failed::from(format!("expected at least 40 cases and some examples, found {n} and {m}")));
            }
            Ok(())
        }
    })];
    for path in case_files {
        let name = format!("case::{}", path.file_stem().and_then(|s| s.to_str()).unwrap_or("?"));
        trials.push(Trial::test(name, move || cases::check_case(&path).map_err(Failed::from)));
    }
    for path in examples {
        let name = format!("example::{}", path.file_stem().and_then(|s| s.to_str()).unwrap_or("?"));
        trials.push(Trial::test(name, move || cases::check_example(&path).map_err(Failed::from)));
    }
    libtest_mimic::run(&args, trials).exit();
}
