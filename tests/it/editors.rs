//! The editor grammars against the language's own lexer, over every script
//! in the repository that parses: the TextMate grammar
//! (editors/vscode/syntaxes), run by vscode-textmate and vscode-oniguruma
//! (what VS Code runs; installed once with npm into Assay's cache), ends
//! every script with nothing left open, and colours every comment as a
//! comment, every string as a string, every number, keyword and call as
//! such. Skipped where Node.js is not installed; required where
//! ASSAY_REQUIRE_NODE=1 (CI installs it).

use std::path::PathBuf;
use std::process::Command;

use assay_grammar::Lexeme;

use crate::support::{repo_root, repo_scripts};

const PACKAGES: &[&str] = &["vscode-textmate@9.3.2", "vscode-oniguruma@2.0.1"];

/// The npm packages, installed once into the cache.
fn node_modules() -> Option<PathBuf> {
    if Command::new("node").arg("--version").output().is_err() {
        assert!(std::env::var("ASSAY_REQUIRE_NODE").is_err(), "ASSAY_REQUIRE_NODE=1 but node is not installed");
        eprintln!("skipped: node is not installed");
        return None;
    }
    let dir = assay_stdlib::fetch::cache_dir().join("npm-editors");
    let modules = dir.join("node_modules");
    if !modules.join("vscode-textmate").is_dir() || !modules.join("vscode-oniguruma").is_dir() {
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .args(PACKAGES)
            .output()
            .expect("npm");
        assert!(out.status.success(), "npm install: {}", String::from_utf8_lossy(&out.stderr));
    }
    Some(modules)
}

/// Every repository script that Assay's parser parses.
fn parsable_scripts() -> Vec<PathBuf> {
    let mut all = repo_scripts();
    all.retain(|p| std::fs::read_to_string(p).is_ok_and(|t| assay_grammar::parse(&t).is_ok()));
    assert!(all.len() > 120, "{} scripts", all.len());
    all
}

/// (line, UTF-16 column) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, text[start..offset].encode_utf16().count())
}

#[test]
fn the_textmate_grammar_colours_what_the_lexer_reads() {
    let Some(modules) = node_modules() else { return };
    let root = repo_root();
    let all = parsable_scripts();
    let out = Command::new("node")
        .env("NODE_PATH", &modules)
        .arg(root.join("editors/test/textmate.js"))
        .arg(root.join("editors/vscode/syntaxes/assay.tmLanguage.json"))
        .args(&all)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let files: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (f, path) in files.as_array().unwrap().iter().zip(&all) {
        assert_eq!(f["closed"], true, "{}: the grammar ends the script with a scope left open", path.display());
        let text = std::fs::read_to_string(path).unwrap();
        let tokens = f["tokens"].as_array().unwrap();
        for (kind, range) in assay_grammar::lex(&text) {
            let want: &[&str] = match kind {
                Lexeme::Comment => &["comment."],
                Lexeme::String => &["string.", "punctuation.definition.string"],
                Lexeme::Number => &["constant.numeric"],
                Lexeme::Keyword => &["keyword.", "constant.language"],
                Lexeme::Name { call: true } => &["entity.name.function"],
                _ => continue,
            };
            let (line, col) = line_col(&text, range.start);
            let scopes = tokens
                .iter()
                .find(|t| {
                    t[0].as_u64() == Some(line as u64)
                        && t[1].as_u64().is_some_and(|s| s as usize <= col)
                        && t[2].as_u64().is_some_and(|e| col < e as usize)
                })
                .map(|t| t[3].clone())
                .unwrap_or_default();
            let ok = scopes
                .as_array()
                .is_some_and(|s| s.iter().filter_map(|x| x.as_str()).any(|x| want.iter().any(|w| x.starts_with(w))));
            checked += 1;
            if !ok {
                wrong.push(format!(
                    "{}:{}:{} {:?} `{}` got {scopes}",
                    path.display(),
                    line + 1,
                    col + 1,
                    kind,
                    &text[range]
                ));
            }
        }
    }
    assert!(checked > 4000, "{checked} lexemes checked");
    assert!(
        wrong.is_empty(),
        "{} of {checked} lexemes coloured wrongly:\n{}",
        wrong.len(),
        wrong[..wrong.len().min(20)].join("\n")
    );
}

/// The tree-sitter CLI: on PATH, or where .ci/run installs it (Assay's
/// cache). Skipped where it is not; required where
/// ASSAY_REQUIRE_TREE_SITTER=1 (CI installs it).
fn tree_sitter() -> Option<PathBuf> {
    let cached = assay_stdlib::fetch::cache_dir().join("tools/bin/tree-sitter");
    for c in [PathBuf::from("tree-sitter"), cached] {
        if Command::new(&c).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return Some(c);
        }
    }
    assert!(
        std::env::var("ASSAY_REQUIRE_TREE_SITTER").is_err(),
        "ASSAY_REQUIRE_TREE_SITTER=1 but tree-sitter is not installed"
    );
    eprintln!("skipped: the tree-sitter CLI is not installed");
    None
}

/// The tree-sitter grammar (editors/tree-sitter-assay) is generated from
/// grammar.js, parses every script of the repository that Assay's parser
/// parses with no ERROR or MISSING node, and its highlight, locals and
/// injection queries compile against it and capture what they should.
#[test]
fn the_tree_sitter_grammar_parses_every_script_and_its_queries_compile() {
    let Some(ts) = tree_sitter() else { return };
    let root = repo_root();
    let work = tempfile::tempdir().unwrap();
    let grammar = work.path().join("tree-sitter-assay");
    std::fs::create_dir_all(grammar.join("queries")).unwrap();
    for f in
        ["grammar.js", "tree-sitter.json", "queries/highlights.scm", "queries/locals.scm", "queries/injections.scm"]
    {
        std::fs::copy(root.join("editors/tree-sitter-assay").join(f), grammar.join(f)).unwrap();
    }
    let run = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(&ts).current_dir(&grammar).env("HOME", work.path()).args(args).output().unwrap();
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let (ok, log) = run(&["generate".as_ref()]);
    assert!(ok, "tree-sitter generate: {log}");
    let all = parsable_scripts();
    let mut args: Vec<&std::ffi::OsStr> =
        vec!["parse".as_ref(), "--quiet".as_ref(), "-p".as_ref(), grammar.as_os_str()];
    args.extend(all.iter().map(|p| p.as_os_str()));
    let (_, log) = run(&args);
    let bad: Vec<&str> = log.lines().filter(|l| l.contains("(ERROR") || l.contains("(MISSING")).collect();
    assert!(bad.is_empty(), "{} of {} scripts do not parse cleanly:\n{}", bad.len(), all.len(), bad.join("\n"));
    // The queries compile, and capture a function, a keyword, a string and
    // a comment in a real script.
    for (q, script) in [
        ("highlights", "examples/smollm_lens.assay"),
        ("locals", "examples/smollm_lens.assay"),
        ("injections", "tests/cases/ok_strings.assay"),
    ] {
        let example = root.join(script);
        let query = grammar.join(format!("queries/{q}.scm"));
        let (ok, log) =
            run(&["query".as_ref(), "-p".as_ref(), grammar.as_os_str(), query.as_os_str(), example.as_os_str()]);
        assert!(ok && !log.contains("rror"), "{q}.scm: {log}");
        if q == "injections" {
            assert!(log.contains(" - injection.content, ") && log.contains("`<svg"), "SVG in a backtick string: {log}");
        }
        if q == "locals" {
            assert!(log.contains(" - local.definition, "), "{log}");
        }
        if q == "highlights" {
            for capture in ["function", "keyword", "string", "comment", "variable.parameter", "number"] {
                assert!(log.contains(&format!(" - {capture}, ")), "highlights.scm captures no `{capture}`:\n{log}");
            }
        }
    }
}
