//! The checker in process, over a registry of one test tool: what it finds
//! before anything runs (codes, spans, messages, help), that it reports every
//! error at once, and what it must accept. The script cases check the same
//! through the `assay` binary with the real tools; these run in milliseconds
//! and point at the checker alone when they fail.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on a broken expectation")]

use std::collections::HashMap;

use assay_interpreter::{check, Code, Diag, SourceFile};

mod common;

fn diags(src: &str) -> Vec<Diag> {
    let registry = common::registry();
    let file = SourceFile::new("t.assay", src);
    let program = assay_grammar::parse(src).expect("the test script parses");
    check(&file, &program, &registry, &HashMap::new())
}

/// The one diagnostic of `src`: its code and the text its span covers.
fn one(src: &str) -> (Code, String, Diag) {
    let d = diags(src);
    assert_eq!(d.len(), 1, "{src:?}: {:?}", d.iter().map(|d| &d.message).collect::<Vec<_>>());
    let span = d[0].span.expect("a span");
    let d = d[0].clone();
    (d.code, src[span.start..span.end].to_string(), d)
}

#[test]
fn a_correct_script_has_no_diagnostics() {
    let src = "seed 3\nlet xs = [0.5, 2]\nfn f(x, lo = 0) { return clip(x, lo: lo) }\nfor x in xs {\n  assert f(x) <= 1\n}\nlet g = x => clip(x, hi: 2)\nshow g(3)\n";
    assert!(diags(src).is_empty(), "{:?}", diags(src).iter().map(|d| &d.message).collect::<Vec<_>>());
}

#[test]
fn unknown_names_point_at_the_name_and_suggest_the_closest() {
    let (code, at, d) = one("let total = 1\nshow totl + 1");
    assert_eq!(code, Code::UnknownName);
    assert_eq!(at, "totl");
    assert!(d.help.as_deref().is_some_and(|h| h.contains("total")), "{:?}", d.help);
    let (code, at, d) = one("show clp(2)");
    assert_eq!(code, Code::UnknownTool);
    assert_eq!(at, "clp");
    assert!(d.help.as_deref().is_some_and(|h| h.contains("clip")), "{:?}", d.help);
}

#[test]
fn arguments_are_checked_against_the_signature() {
    assert_eq!(one("show clip()").0, Code::MissingArgument);
    assert_eq!(one("show clip(1, 2, 3, 4)").0, Code::ArgumentCount);
    let (code, at, _) = one("show clip(1, top: 2)");
    assert_eq!((code, at.as_str()), (Code::UnknownArgument, "top"));
    assert_eq!(one("show clip(1, lo: 0, lo: 1)").0, Code::DuplicateArgument);
    let (code, at, d) = one("show clip(\"a\")");
    assert_eq!((code, at.as_str()), (Code::Type, "\"a\""));
    assert!(d.message.contains("`x` of `clip`"), "{}", d.message);
}

#[test]
fn types_known_before_running_are_checked() {
    assert_eq!(one("let n = 1 + \"a\"").0, Code::Type);
    // No truthiness: conditions are booleans.
    let (code, _, d) = one("let xs = [1]\nif xs { show 1 }");
    assert_eq!(code, Code::Type);
    assert!(d.help.is_some(), "{}", d.message);
}

#[test]
fn statements_out_of_place_and_redefinitions_are_errors() {
    assert_eq!(one("return 1").0, Code::Misplaced);
    assert_eq!(one("break").0, Code::Misplaced);
    assert_eq!(one("fn f() { return 1 }\nfn f() { return 2 }").0, Code::Duplicate);
    assert_eq!(one("fn f(a = 1, b) { return a }").0, Code::ParamOrder);
    assert_eq!(one("show 1\nseed 2").0, Code::Seed);
}

#[test]
fn every_error_is_reported_at_once_in_source_order() {
    let d = diags("show nope1\nshow clip(1, bad: 2)\nshow nope2");
    let codes: Vec<Code> = d.iter().map(|d| d.code).collect();
    assert_eq!(codes, [Code::UnknownName, Code::UnknownArgument, Code::UnknownName]);
    let starts: Vec<usize> = d.iter().map(|d| d.span.map(|s| s.start).unwrap_or(0)).collect();
    assert!(starts.windows(2).all(|w| w[0] < w[1]), "{starts:?}");
}

#[test]
fn a_diagnostic_renders_with_file_line_and_help() {
    let (_, _, d) = one("let total = 1\nshow totl");
    let text = d.render_plain(100);
    assert!(text.contains("t.assay:2:6"), "{text}");
    assert!(text.contains("assay::unknown-name"), "{text}");
    let json = d.to_json();
    assert_eq!(json["code"], "assay::unknown-name");
    assert_eq!(json["line"], 2);
}
