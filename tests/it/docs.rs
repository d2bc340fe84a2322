//! The docs are generated or tested: docs/tools.md must match the
//! registry, and every `assay` code block in docs/language.md and the
//! README must run with its asserts passing.

use crate::support::{repo_root, Test};

#[test]
fn tools_md_is_current() {
    let out = Test::new(&repo_root()).args(["tools", "--markdown"]).run();
    assert_eq!(out.code, 0);
    let on_disk = std::fs::read_to_string(repo_root().join("docs/tools.md")).unwrap_or_default();
    if std::env::var_os("ASSAY_BLESS").is_some() {
        std::fs::write(repo_root().join("docs/tools.md"), &out.stdout).expect("write docs/tools.md");
        return;
    }
    assert!(
        on_disk == out.stdout,
        "docs/tools.md is stale: run `cargo run -- tools --markdown > docs/tools.md` (or ASSAY_BLESS=1 cargo test)"
    );
}

/// The ```assay blocks of a markdown file.
fn assay_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        match (&mut cur, line.trim_end()) {
            (None, "```assay") => cur = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                cur = None;
            }
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

fn run_blocks(file: &str, min: usize, cwd: &std::path::Path) {
    let text = std::fs::read_to_string(repo_root().join(file)).expect(file);
    let blocks = assay_blocks(&text);
    assert!(blocks.len() >= min, "{file}: expected at least {min} assay blocks, found {}", blocks.len());
    let runs = tempfile::tempdir().expect("tempdir");
    for (i, b) in blocks.iter().enumerate() {
        let out = Test::new(cwd)
            .args(["run", "-", "--json", "--runs-dir", runs.path().to_str().expect("p")])
            .stdin(b.clone())
            .run();
        assert_eq!(out.code, 0, "{file} block {i} failed:\n{b}\n{}\n{}", out.stdout, out.stderr);
    }
}

#[test]
fn language_md_examples_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    run_blocks("docs/language.md", 12, dir.path());
}

#[test]
fn readme_example_runs() {
    run_blocks("README.md", 1, &repo_root().join("examples"));
}

#[test]
fn every_diagnostic_code_is_documented_once() {
    let text = std::fs::read_to_string(repo_root().join("docs/language.md")).expect("language.md");
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("| `assay::")).collect();
    assert_eq!(rows.len(), assay_interpreter::Code::ALL.len(), "docs/language.md's table of codes is out of date");
    for code in assay_interpreter::Code::ALL {
        let row = format!("| `{code}` | {} |", code.about());
        assert!(rows.contains(&row.as_str()), "docs/language.md lacks the row {row}");
    }
    let mut codes: Vec<&str> = assay_interpreter::Code::ALL.iter().map(|c| c.as_str()).collect();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), assay_interpreter::Code::ALL.len(), "a code is listed twice");
    // And no call site spells a code itself.
    let mut stack = vec![repo_root().join("interpreter/src"), repo_root().join("src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("source folder").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("interpreter/src/code.rs") {
                let text = std::fs::read_to_string(&p).expect("source");
                assert!(
                    !text.contains("\"assay::"),
                    "{} spells a diagnostic code; use assay_interpreter::Code",
                    p.display()
                );
            }
        }
    }
}

#[test]
fn assay_codes_lists_every_code_a_diagnostic_can_carry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = crate::support::Test::new(dir.path()).args(["codes", "--json"]).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let listed: Vec<(String, String)> = out.json()["codes"]
        .as_array()
        .expect("a list of codes")
        .iter()
        .map(|c| (c["code"].as_str().unwrap_or("").to_string(), c["meaning"].as_str().unwrap_or("").to_string()))
        .collect();
    let want: Vec<(String, String)> =
        assay_interpreter::Code::ALL.iter().map(|c| (c.to_string(), c.about().to_string())).collect();
    assert_eq!(listed, want);
    // A diagnostic from `check --json` carries one of them.
    std::fs::write(dir.path().join("x.assay"), "let y = nope(1)\n").expect("write");
    let c = crate::support::Test::new(dir.path()).args(["check", "x.assay", "--json"]).run();
    let code = c.json()["diagnostics"][0]["code"].as_str().unwrap_or("").to_string();
    assert!(want.iter().any(|(w, _)| *w == code), "{code} is not listed by `assay codes`");
}

/// ARCHITECTURE.md's "Adding a tool" example is the real `clip`, word for
/// word, so it is code that compiles and whose examples run (and it is
/// right: NaN bounds and `lo > hi` are errors, not a panic of
/// `f64::clamp`).
#[test]
fn the_architecture_tool_example_is_the_compiled_clip() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let arch = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let start = arch.find("```rust\ntool! {").expect("the example") + "```rust\n".len();
    // The block ends at the first line that is only a fence.
    let end = start + arch[start..].find("\n```\n").expect("its end") + 1;
    let example = &arch[start..end];
    assert!(example.contains("fn clip(p: clip::Params"), "{example}");
    let math = std::fs::read_to_string(root.join("stdlib/src/core/math.rs")).unwrap();
    assert!(math.contains(example), "ARCHITECTURE.md's example is not stdlib/src/core/math.rs's clip:\n{example}");
    let t = crate::support::temp_with(&[("c.assay", "let y = clip(1, 2, 1)\n")]);
    let out = crate::support::Test::new(t.path()).args(["check", "c.assay"]).run();
    let out = if out.code == 0 { crate::support::Test::new(t.path()).args(["run", "c.assay"]).run() } else { out };
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("is above `hi`"), "{}", out.stderr);
}
