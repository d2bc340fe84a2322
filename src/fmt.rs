//! `assay fmt`: scripts in the one canonical layout (`assay_grammar::format`).
//!
//! `assay fmt FILE...` rewrites each file in place (atomically); `--check`
//! only lists the files that are not formatted and fails if any is; with no
//! file, or `-`, standard input is formatted to standard output. A folder
//! stands for every `.assay` file under it. A script that does not parse is
//! not formatted: named on the command line it is an error with its
//! diagnostic; found in a folder it is listed as skipped (a folder of test
//! scripts holds scripts that are wrong on purpose).

#![allow(
    clippy::disallowed_methods,
    reason = "the formatter reads and writes the files its user named, outside any script's sandbox"
)]

use std::io::Read;
use std::path::{Path, PathBuf};

use assay_interpreter::{Diag, SourceFile};

use crate::out::EXIT_OK;

/// Some script is not formatted (`--check`).
const EXIT_UNFORMATTED: u8 = 1;
/// A file could not be read, parsed or written.
const EXIT_ERROR: u8 = 2;

/// Every `.assay` file under `dir`, sorted (links are not followed).
fn scripts_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut all: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    all.sort();
    for p in all {
        let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
        if meta.is_dir() {
            scripts_under(&p, out);
        } else if meta.is_file() && p.extension().is_some_and(|x| x == "assay") {
            out.push(p);
        }
    }
}

fn render(name: &str, text: &str, e: &assay_grammar::SyntaxError) -> String {
    Diag::from_syntax(&SourceFile::new(name, text), e).render_plain(100)
}

/// `assay fmt [--check] [PATH...]`.
pub fn cmd_fmt(paths: &[String], check: bool) -> u8 {
    if paths.is_empty() || paths == ["-"] {
        let mut text = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut text) {
            eprintln!("error: standard input: {e}");
            return EXIT_ERROR;
        }
        return match assay_grammar::format(&text) {
            Ok(f) if check => {
                if f == text {
                    EXIT_OK
                } else {
                    crate::outln!("<stdin>");
                    EXIT_UNFORMATTED
                }
            }
            Ok(f) => {
                crate::out!("{f}");
                EXIT_OK
            }
            Err(e) => {
                eprint!("{}", render("<stdin>", &text, &e));
                EXIT_ERROR
            }
        };
    }
    // (file, named on the command line)
    let mut files: Vec<(PathBuf, bool)> = Vec::new();
    for p in paths {
        let path = PathBuf::from(p);
        if path.is_dir() {
            let mut found = Vec::new();
            scripts_under(&path, &mut found);
            files.extend(found.into_iter().map(|f| (f, false)));
        } else {
            files.push((path, true));
        }
    }
    let (mut unformatted, mut failed, mut skipped) = (0, 0, 0);
    for (file, named) in &files {
        let shown = file.display().to_string();
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {shown}: {e}");
                failed += 1;
                continue;
            }
        };
        let formatted = match assay_grammar::format(&text) {
            Ok(f) => f,
            Err(e) if *named => {
                eprint!("{}", render(&shown, &text, &e));
                failed += 1;
                continue;
            }
            Err(_) => {
                eprintln!("skipped {shown}: it does not parse (assay check {shown} says why)");
                skipped += 1;
                continue;
            }
        };
        if formatted == text {
            continue;
        }
        unformatted += 1;
        if check {
            crate::outln!("{shown}");
        } else if let Err(e) = write_atomic(file, &formatted) {
            eprintln!("error: {shown}: {e}");
            failed += 1;
        }
    }
    if !check {
        let changed = unformatted - failed.min(unformatted);
        eprintln!(
            "formatted {} of {} scripts ({changed} changed, {skipped} skipped)",
            files.len() - skipped,
            files.len()
        );
    }
    if failed > 0 {
        EXIT_ERROR
    } else if check && unformatted > 0 {
        eprintln!("{unformatted} script(s) are not formatted: run assay fmt on them");
        EXIT_UNFORMATTED
    } else {
        EXIT_OK
    }
}

/// Replaces `path` by `text` atomically (a temporary file beside it,
/// renamed over it), keeping its permissions: never half a script.
fn write_atomic(path: &Path, text: &str) -> Result<(), String> {
    let permissions = std::fs::metadata(path).map_err(|e| e.to_string())?.permissions();
    assay_stdlib::fetch::write_atomic(path, text.as_bytes())?;
    std::fs::set_permissions(path, permissions).map_err(|e| e.to_string())
}
