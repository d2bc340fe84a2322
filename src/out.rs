//! What the command prints and how it exits: exit codes, writing to a
//! stdout that may be closed, and escaping text for a terminal. Every
//! command module uses it; it uses none of them.

pub const EXIT_OK: u8 = 0;
pub const EXIT_SCRIPT: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_ASSERT: u8 = 3;

/// Text for the terminal: control characters (which could clear the screen,
/// move the cursor or hide a line) shown as escapes; newlines and tabs kept.
pub fn escape_controls(s: &str) -> String {
    assay_interpreter::escape_unsafe(s)
}

/// Writes to stdout; a closed stdout (a pipe into `head`) ends the process quietly.
pub fn write_stdout(s: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if out.write_all(s.as_bytes()).and_then(|_| out.flush()).is_err() {
        std::process::exit(0);
    }
}
