//! The `assay` command: run, check, list tools, diff and verify runs.
//!
//! Exit codes: 0 ok; 1 a script error (syntax, check or runtime); 2 a usage
//! error (bad command line, unreadable script file); 3 a failed `assert`,
//! or `verify` found results that differ.

mod cli;
mod docs;
mod inspect;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Deep scripts recurse in the parser and evaluator; give them room, and
    // turn a panic (a bug) into a clear message rather than exit code 101.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("internal error: {info}\nThis is a bug in Assay; please report it with the script that caused it.");
    }));
    let worker = std::thread::Builder::new().stack_size(512 << 20).spawn(cli::main);
    match worker.map(|h| h.join()) {
        Ok(Ok(code)) => ExitCode::from(code),
        _ => ExitCode::from(1),
    }
}
