//! Assay's runner as a library: what the `assay` command does, callable
//! without the command line. The command (`src/main.rs`, `src/cli.rs`) only
//! parses arguments and calls these modules.
//!
//! - [`supervise`] runs one script in a sandboxed child process under
//!   memory, time and disk budgets and writes the error record when it dies;
//! - [`run`] checks and runs one script through it and prints the outcome;
//! - [`cache`] is the call cache's store on disk, and [`replay`] answers an
//!   unchanged rerun whole from it;
//! - [`verify`] re-runs a finished run and compares its results byte for byte;
//! - [`shard`] splits a run over shards and merges their partial records;
//! - [`agent`] lets a language model investigate by writing scripts;
//! - [`bench`] runs FIND's function sets and MAIA's neurons through the agent;
//! - [`docs`] generates the tool reference and the agent's guide;
//! - [`out`] exit codes and printing.

#![allow(
    clippy::disallowed_methods,
    reason = "the runner (the parent process) reads what its user names: scripts, run folders, the call cache's store; a script's reads happen in the sandboxed child, through the interpreter's sandbox"
)]

/// `print!` that ends the process quietly when stdout is closed
/// (`assay tools --json | head`), instead of panicking.
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => { $crate::out::write_stdout(&format!($($t)*)) };
}
/// `println!` that ends the process quietly when stdout is closed.
#[macro_export]
macro_rules! outln {
    () => { $crate::out::write_stdout("\n") };
    ($($t:tt)*) => { $crate::out::write_stdout(&format!("{}\n", format_args!($($t)*))) };
}

pub mod agent;
pub mod bench;
pub mod cache;
pub mod docs;
pub mod fmt;
pub mod lsp;
pub mod out;
pub mod replay;
pub mod run;
pub mod shard;
pub mod slurm;
pub mod supervise;
pub mod verify;
