//! The parser in process: what each construct parses to (tree and spans),
//! precedence, and the wording and span of syntax errors. The script cases
//! under tests/cases check the same through the `assay` binary; these run in
//! milliseconds and point at the parser alone when they fail.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on a broken expectation")]

use assay_grammar::{parse, BinOp, ExprKind, FnBody, Span, StmtKind, StrPart, UnOp};

/// The one statement of `src`.
fn stmt(src: &str) -> StmtKind {
    let p = parse(src).unwrap_or_else(|e| panic!("{src:?} does not parse: {}", e.message));
    assert_eq!(p.stmts.len(), 1, "{src:?} is one statement");
    p.stmts[0].node.clone()
}

/// The expression of `let x = <src>`.
fn expr(src: &str) -> ExprKind {
    match stmt(&format!("let x = {src}")) {
        StmtKind::Let { value, .. } => value.node,
        other => panic!("not a let: {other:?}"),
    }
}

/// The source text an expression of `let x = <src>` covers.
fn span_text(src: &str) -> String {
    let full = format!("let x = {src}");
    let p = parse(&full).expect("parses");
    let StmtKind::Let { value, .. } = &p.stmts[0].node else { panic!("not a let") };
    full[value.span.start..value.span.end].to_string()
}

fn binary(e: &ExprKind) -> (BinOp, &ExprKind, &ExprKind) {
    match e {
        ExprKind::Binary { op, lhs, rhs } => (*op, &lhs.node, &rhs.node),
        other => panic!("not a binary expression: {other:?}"),
    }
}

#[test]
fn literals_parse_to_their_values() {
    assert_eq!(expr("1.5e3"), ExprKind::Number(1500.0));
    assert_eq!(expr("true"), ExprKind::Bool(true));
    assert_eq!(expr("none"), ExprKind::None);
    assert_eq!(expr("\"a\\nb\""), ExprKind::Str(vec![StrPart::Text("a\nb".into())]));
    match expr("[1, \"two\", [3]]") {
        ExprKind::List(items) => assert_eq!(items.len(), 3),
        other => panic!("{other:?}"),
    }
    match expr("{a: 1, b: 2}") {
        ExprKind::Record(fields) => {
            let names: Vec<&str> = fields.iter().map(|(n, _)| n.node.as_str()).collect();
            assert_eq!(names, ["a", "b"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn interpolated_strings_hold_their_expressions() {
    match expr("\"n = {n + 1}!\"") {
        ExprKind::Str(parts) => {
            assert_eq!(parts.len(), 3);
            assert_eq!(parts[0], StrPart::Text("n = ".into()));
            let StrPart::Expr(e) = &parts[1] else { panic!("{:?}", parts[1]) };
            assert_eq!(binary(&e.node).0, BinOp::Add);
            assert_eq!(parts[2], StrPart::Text("!".into()));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn precedence_binds_tighter_operators_first() {
    // 1 + 2 * 3 is 1 + (2 * 3)
    let e = expr("1 + 2 * 3");
    let (op, lhs, rhs) = binary(&e);
    assert_eq!(op, BinOp::Add);
    assert_eq!(lhs, &ExprKind::Number(1.0));
    assert_eq!(binary(rhs).0, BinOp::Mul);
    // a or b and c is a or (b and c)
    let e = expr("a or b and c");
    let (op, _, rhs) = binary(&e);
    assert_eq!(op, BinOp::Or);
    assert_eq!(binary(rhs).0, BinOp::And);
    // comparison below arithmetic: x + 1 > y is (x + 1) > y
    let e = expr("x + 1 > y");
    let (op, lhs, _) = binary(&e);
    assert_eq!(op, BinOp::Gt);
    assert_eq!(binary(lhs).0, BinOp::Add);
    // unary minus on the call, and `not` on the comparison
    match expr("-f(2)") {
        ExprKind::Unary { op: UnOp::Neg, expr } => assert!(matches!(expr.node, ExprKind::Call { .. })),
        other => panic!("{other:?}"),
    }
    match expr("not a == b") {
        ExprKind::Unary { op: UnOp::Not, expr } => assert_eq!(binary(&expr.node).0, BinOp::Eq),
        other => panic!("{other:?}"),
    }
}

#[test]
fn subtraction_is_left_associative() {
    // 10 - 4 - 3 is (10 - 4) - 3
    let e = expr("10 - 4 - 3");
    let (op, lhs, rhs) = binary(&e);
    assert_eq!(op, BinOp::Sub);
    assert_eq!(binary(lhs).0, BinOp::Sub);
    assert_eq!(rhs, &ExprKind::Number(3.0));
}

#[test]
fn calls_take_positional_then_named_arguments() {
    match expr("f(1, x, k: 3)") {
        ExprKind::Call { callee, args } => {
            assert_eq!(callee.node, ExprKind::Name("f".into()));
            let names: Vec<Option<&str>> = args.iter().map(|a| a.name.as_ref().map(|n| n.node.as_str())).collect();
            assert_eq!(names, [None, None, Some("k")]);
        }
        other => panic!("{other:?}"),
    }
    match expr("xs.map(x => x * 2)") {
        ExprKind::Method { receiver, name, args } => {
            assert_eq!(receiver.node, ExprKind::Name("xs".into()));
            assert_eq!(name.node, "map");
            let ExprKind::Lambda(f) = &args[0].value.node else { panic!("{:?}", args[0].value.node) };
            assert_eq!(f.params.len(), 1);
            assert!(matches!(f.body, FnBody::Expr(_)));
        }
        other => panic!("{other:?}"),
    }
    match expr("a.b[0]") {
        ExprKind::Index { expr, .. } => assert!(matches!(expr.node, ExprKind::Field { .. })),
        other => panic!("{other:?}"),
    }
}

#[test]
fn statements_parse_to_their_kinds() {
    assert!(matches!(stmt("seed 7"), StmtKind::Seed(_)));
    assert!(matches!(stmt("use \"m.rhai\" as m"), StmtKind::Use { .. }));
    assert!(matches!(stmt("x += 2"), StmtKind::Assign { op: Some(BinOp::Add), .. }));
    assert!(matches!(stmt("show \"t\", 1, 2"), StmtKind::Show(v) if v.len() == 3));
    assert!(matches!(stmt("record \"r\", 1"), StmtKind::Record { .. }));
    assert!(matches!(stmt("assert 1 < 2, \"why\""), StmtKind::Assert { message: Some(_), .. }));
    match stmt("for i, x in xs { show x }") {
        StmtKind::For { index, var, body, .. } => {
            assert_eq!(index.map(|i| i.node).as_deref(), Some("i"));
            assert_eq!(var.node, "x");
            assert_eq!(body.node.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    match stmt("fn f(a, b = 2) { return a + b }") {
        StmtKind::Fn(f) => {
            assert_eq!(f.name.as_ref().map(|n| n.node.as_str()), Some("f"));
            assert!(f.params[0].default.is_none() && f.params[1].default.is_some());
        }
        other => panic!("{other:?}"),
    }
    match stmt("if a { show 1 } else { show 2 }") {
        StmtKind::If { otherwise, .. } => assert!(otherwise.is_some()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn spans_cover_exactly_the_source_of_each_node() {
    assert_eq!(span_text("f(1, k: 2)"), "f(1, k: 2)");
    assert_eq!(span_text("1 + 2 * 3"), "1 + 2 * 3");
    let src = "let a = 1\nlet bb = foo(a)";
    let p = parse(src).expect("parses");
    assert_eq!(p.stmts.len(), 2);
    let StmtKind::Let { name, value } = &p.stmts[1].node else { panic!() };
    assert_eq!(&src[name.span.start..name.span.end], "bb");
    assert_eq!(&src[value.span.start..value.span.end], "foo(a)");
    assert_eq!(p.stmts[1].span, Span::new(10, src.len()));
}

#[test]
fn comments_and_blank_lines_are_not_statements() {
    let p = parse("# a comment\n\nlet x = 1 # trailing\n\n").expect("parses");
    assert_eq!(p.stmts.len(), 1);
}

#[test]
fn syntax_errors_say_what_was_expected_where() {
    // (script, message, span, what the help mentions)
    for (src, message, span, help) in [
        ("let = 3", "expected a name, found `=`", (4, 5), "syntax"),
        ("let x = (1 + 2", "`(` is never closed", (8, 9), "missing `)`"),
        ("let x = 1 +", "found end of input", (11, 11), "ended early"),
        ("f(1,, 2)", "found `,`", (4, 5), "between arguments"),
        ("let for = 1", "expected a name, found `for`", (4, 7), "keyword"),
    ] {
        let e = parse(src).err().unwrap_or_else(|| panic!("{src:?} must not parse"));
        assert!(e.message.contains(message), "{src:?}: {:?}", e.message);
        assert_eq!((e.span.start, e.span.end), span, "{src:?}: {e:?}");
        assert!(!e.label.is_empty(), "{src:?}: no label");
        assert!(e.help.as_deref().is_some_and(|h| h.contains(help)), "{src:?}: help {:?}", e.help);
    }
}

#[test]
fn a_brace_in_a_string_meant_literally_is_explained_as_an_interpolation() {
    // The transcripts' texts: C code and a regex quantifier inside strings.
    for (src, at) in [
        ("let t = [\"for (i = 0; i < n; i++) { sum += x[i]; }\"]", "line 1, column 35"),
        ("let r = \"[a-z]{2,}\"\nshow r", "line 1, column 15"),
        ("show 1\nlet s = \"a {b c}\"", "line 2, column 12"),
    ] {
        let e = parse(src).err().unwrap_or_else(|| panic!("{src:?} must not parse"));
        let help = e.help.clone().unwrap_or_default();
        assert!(help.contains("starts an interpolation") && help.contains(at), "{src:?}: {help}");
        assert!(help.contains("`{{`") && help.contains("backtick"), "{src:?}: {help}");
        assert!(!help.contains("record"), "{src:?}: {help}");
    }
    // A brace outside any string keeps its own help; literal braces parse.
    let e = parse("let x = {1}").expect_err("a record needs names");
    assert!(!e.help.unwrap_or_default().contains("interpolation"));
    assert!(parse("let s = \"{{not}} {1 + 1} `x`\"\nlet r = `{2,}`").is_ok());
}

#[test]
fn every_broken_statement_is_reported_once() {
    let src = "let a = 1 +* 2\nlet ok = 1\nlet s = \"x {y z}\"\n# a comment\nfn f(x) {\n  return x +* 1\n}\nshow ok\n";
    let errors = assay_grammar::parse_all(src).expect_err("three mistakes");
    let lines: Vec<usize> = errors.iter().map(|e| src[..e.span.start].matches('\n').count() + 1).collect();
    assert_eq!(lines, vec![1, 3, 6], "{errors:?}");
    // The interpolation's own help survives recovery.
    assert!(errors[1].help.as_deref().is_some_and(|h| h.contains("starts an interpolation")), "{:?}", errors[1]);
    // A statement that ends too early is blamed once, not again at the next line.
    let errors = assay_grammar::parse_all("let a = 1 +\nshow a\nlet b = 2\n").expect_err("one mistake");
    assert_eq!(errors.len(), 1, "{errors:?}");
    // A script without mistakes parses as before.
    assert!(assay_grammar::parse_all("let a = 1\nshow a\n").is_ok());
}
