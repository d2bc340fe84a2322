//! Parameter names are never typed twice: a tool blames a parameter
//! through the argument it was bound to (`p.lo.error(..)`, `p.lo.name()`),
//! and `ToolError::arg`, `ToolError::at` and the model layer's `blame` take
//! a `Name`, which only the binder makes (`Name::declared`, called by the
//! `tool!` macro). This test keeps it so: no other code in the library
//! makes a `Name` from a string. (A string where a `Name` is wanted does
//! not compile: see the `compile_fail` example on `ToolError::arg`.)

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly")]
#![allow(clippy::disallowed_methods, reason = "the test reads the library's own sources")]

use std::path::Path;

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn only_the_binder_makes_a_parameter_name() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    assert!(files.len() > 20, "the library's sources were not found");
    let mut found = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap().display().to_string();
        // The declaring macro, and unit tests (which have no bound arguments).
        if rel == "core/declare.rs" || rel.ends_with("_test.rs") || rel.ends_with("/tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.contains("Name::declared(") && !line.trim_start().starts_with("//") {
                found.push(format!("{rel}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "parameter names made from strings outside the binder:\n{}", found.join("\n"));
    // The check can fail: the binder itself is found.
    let declare = std::fs::read_to_string(src.join("core/declare.rs")).unwrap();
    assert!(declare.contains("Name::declared("));
}
