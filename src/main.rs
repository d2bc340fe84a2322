//! The `assay` command: run, check, list tools, diff and verify runs.
//!
//! Exit codes: 0 ok; 1 a script error (syntax, check or runtime); 2 a usage
//! error (bad command line, unreadable script file); 3 a failed `assert`,
//! or `verify` found results that differ.

#![allow(
    clippy::disallowed_methods,
    reason = "the command line reads what its user names: scripts, run folders, models to inspect"
)]

use assay::supervise;

mod cli;
mod inspect;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Deep scripts recurse in the parser and evaluator; give them room, and
    // turn a panic (a bug) into a clear message rather than exit code 101.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("internal error: {info}\nThis is a bug in Assay; please report it with the script that caused it.");
    }));
    // A tool registered twice is a bug in the registration list: refuse to
    // start rather than run with one of the two silently chosen.
    let duplicates = assay_stdlib::registry().duplicates().to_vec();
    if !duplicates.is_empty() {
        eprintln!("internal error: tools registered twice: {}\nThis is a bug in Assay.", duplicates.join(", "));
        return ExitCode::from(1);
    }
    // The sandboxed child evaluates scripts; it needs the deep stack too.
    let child = std::env::args().nth(1).is_some_and(|a| a == supervise::CHILD_ARG);
    let worker = std::thread::Builder::new().stack_size(512 << 20).spawn(move || {
        if child {
            supervise::child_main(assay_stdlib::registry())
        } else {
            cli::main()
        }
    });
    match worker.map(|h| h.join()) {
        // A run stopped by a signal ends as a shell expects (130 for Ctrl-C).
        Ok(Ok(code)) => match supervise::interrupted() {
            Some(sig) if !child => ExitCode::from((128 + sig).clamp(0, 255) as u8),
            _ => ExitCode::from(code),
        },
        _ => ExitCode::from(1),
    }
}
