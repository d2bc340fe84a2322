//! `assay fmt`: every script in the repository that parses is formatted
//! already (`--check` over examples/ and tests/), formatting is idempotent
//! and never changes meaning: the formatted text parses to the same syntax
//! tree (spans aside) on the same lines, and a run of it writes the same
//! results.json; the command rewrites files atomically, checks, reads
//! standard input, and refuses a script that does not parse with its
//! diagnostic.

use crate::support::{repo_root, repo_scripts, runs_of, Test};

/// The syntax tree with every span left out.
pub(crate) fn tree(text: &str) -> Option<String> {
    let program = assay_grammar::parse(text).ok()?;
    let debug = format!("{program:?}");
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug.as_str();
    while let Some(i) = rest.find("Span { start: ") {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let end = after.find('}').map_or(after.len(), |j| j + 1);
        out.push_str("Span");
        rest = &after[end..];
    }
    out.push_str(rest);
    Some(out)
}

#[test]
fn every_script_formats_to_the_same_tree_on_the_same_lines_and_again_to_itself() {
    let all = repo_scripts();
    assert!(all.len() > 150, "{} scripts", all.len());
    let mut formatted_count = 0;
    for p in &all {
        let text = std::fs::read_to_string(p).unwrap();
        let Some(before) = tree(&text) else { continue };
        let f = assay_grammar::format(&text).unwrap();
        assert_eq!(tree(&f).as_deref(), Some(before.as_str()), "{}: formatting changed the syntax tree", p.display());
        assert_eq!(assay_grammar::format(&f).unwrap(), f, "{}: formatting is not idempotent", p.display());
        let lines = |s: &str| s.trim_end_matches('\n').lines().count();
        assert_eq!(lines(&f), lines(&text), "{}: formatting moved lines", p.display());
        // Every non-blank token stays on its line.
        for (a, b) in text.lines().zip(f.lines()) {
            let squeeze = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
            assert_eq!(squeeze(a), squeeze(b), "{}: a line's tokens changed", p.display());
        }
        formatted_count += 1;
    }
    assert!(formatted_count > 120, "{formatted_count} scripts parsed");
}

#[test]
fn the_repository_is_formatted() {
    let root = repo_root();
    let out = Test::new(&root)
        .args(["fmt", "--check", root.join("examples").to_str().unwrap(), root.join("tests").to_str().unwrap()])
        .run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.is_empty(), "unformatted:\n{}", out.stdout);
}

#[test]
fn a_formatted_script_runs_to_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let messy = "seed 3\nlet xs=map(range(0,5),i=>i*i)\nlet r={total:sum(xs),  first:xs[0]}\n  record \"r\",r\nassert r.total==30,\"the sum of squares\"\nif len(xs)>2{record \"long\",true}\n";
    std::fs::write(dir.path().join("a.assay"), messy).unwrap();
    std::fs::write(dir.path().join("b.assay"), messy).unwrap();
    // An executable script stays executable: the rewrite keeps permissions.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path().join("b.assay"), std::fs::Permissions::from_mode(0o751)).unwrap();
    let fmt = Test::new(dir.path()).args(["fmt", "b.assay"]).run();
    let mode = std::fs::metadata(dir.path().join("b.assay")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o751);
    assert_eq!(fmt.code, 0, "{}", fmt.stderr);
    let b = std::fs::read_to_string(dir.path().join("b.assay")).unwrap();
    assert_ne!(b, messy);
    assert!(b.contains("let r = {total: sum(xs), first: xs[0]}\nrecord \"r\", r\n"), "{b}");
    // --check passes on the formatted file and fails on the other.
    assert_eq!(Test::new(dir.path()).args(["fmt", "--check", "b.assay"]).run().code, 0);
    let check = Test::new(dir.path()).args(["fmt", "--check", "a.assay"]).run();
    assert_eq!((check.code, check.stdout.trim()), (1, "a.assay"));
    assert_eq!(std::fs::read_to_string(dir.path().join("a.assay")).unwrap(), messy, "--check never writes");
    for s in ["a.assay", "b.assay"] {
        assert_eq!(Test::new(dir.path()).args(["run", s]).run().code, 0);
    }
    let results = |stem: &str| std::fs::read(runs_of(dir.path(), stem)[0].join("results.json")).unwrap();
    assert_eq!(results("a"), results("b"), "the formatted script's results.json is byte for byte the original's");
    // Standard input to standard output.
    let piped = Test::new(dir.path()).args(["fmt"]).stdin(messy).run();
    assert_eq!((piped.code, piped.stdout.as_str()), (0, b.as_str()));
}

#[test]
fn a_script_that_does_not_parse_is_refused_with_its_diagnostic_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let bad = "let x = [1, 2\nrecord \"x\", x\n";
    std::fs::write(dir.path().join("bad.assay"), bad).unwrap();
    let out = Test::new(dir.path()).args(["fmt", "bad.assay"]).run();
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("bad.assay") && out.stderr.contains("help"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(dir.path().join("bad.assay")).unwrap(), bad);
    // Inside a folder it is skipped and named, and the rest still checked.
    std::fs::create_dir(dir.path().join("d")).unwrap();
    std::fs::rename(dir.path().join("bad.assay"), dir.path().join("d/bad.assay")).unwrap();
    std::fs::write(dir.path().join("d/good.assay"), "record \"x\", 1\n").unwrap();
    let out = Test::new(dir.path()).args(["fmt", "--check", "d"]).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("skipped d/bad.assay"), "{}", out.stderr);
}

/// A small random-script generator (seeded, so a failure repeats): valid
/// statements and expressions of every kind, each pair of tokens split by
/// a random run of spaces, tabs and line breaks (or by nothing, beside a
/// bracket or a comma).
struct Gen(u64);

impl Gen {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.next(xs.len())]
    }

    fn expr(&mut self, depth: usize, out: &mut Vec<String>) {
        let leaf = depth == 0 || self.next(3) == 0;
        if leaf {
            let t = self.pick(&["x", "xs", "1", "2.5", "1e-3", "\"s\"", "\"a {x + 1} b\"", "`raw`", "true", "none"]);
            out.push(t.into());
            return;
        }
        match self.next(9) {
            0 => {
                self.expr(depth - 1, out);
                out.push(
                    self.pick(&["+", "-", "*", "/", "%", "**", "==", "!=", "<", ">=", "and", "or", "in", ".."]).into(),
                );
                self.expr(depth - 1, out);
            }
            1 => {
                out.push(self.pick(&["-", "not", "!"]).into());
                self.expr(depth - 1, out);
            }
            2 => {
                out.extend(["[".into()]);
                self.expr(depth - 1, out);
                out.push(",".into());
                self.expr(depth - 1, out);
                out.push("]".into());
            }
            3 => {
                out.extend(["{".into(), "a".into(), ":".into()]);
                self.expr(depth - 1, out);
                out.push("}".into());
            }
            4 => {
                out.extend(["f".into(), "(".into()]);
                self.expr(depth - 1, out);
                out.extend([",".into(), "k".into(), ":".into()]);
                self.expr(depth - 1, out);
                out.push(")".into());
            }
            5 => {
                out.extend(["xs".into(), "[".into()]);
                self.expr(depth - 1, out);
                out.push("]".into());
            }
            6 => {
                out.extend(["(".into(), "a".into(), ",".into(), "b".into(), ")".into(), "=>".into()]);
                self.expr(depth - 1, out);
            }
            7 => {
                out.push("(".into());
                self.expr(depth - 1, out);
                out.push(")".into());
                out.extend([".".into(), "y".into()]);
            }
            _ => {
                out.extend(["y".into(), "=>".into(), "{".into(), "return".into()]);
                self.expr(depth - 1, out);
                out.push("}".into());
            }
        }
    }

    fn stmt(&mut self, depth: usize, out: &mut Vec<String>) {
        match self.next(if depth == 0 { 4 } else { 7 }) {
            0 => {
                out.extend(["let".into(), "x".into(), "=".into()]);
                self.expr(3, out);
            }
            1 => {
                out.extend(["record".into(), "\"r\"".into(), ",".into()]);
                self.expr(3, out);
            }
            2 => {
                out.push("assert".into());
                self.expr(3, out);
                out.extend([",".into(), "\"why\"".into()]);
            }
            3 => {
                out.extend(["x".into(), self.pick(&["=", "+=", "-="]).into()]);
                self.expr(2, out);
                out.push("# note".into());
            }
            4 => {
                out.push("if".into());
                self.expr(2, out);
                out.push("{".into());
                self.stmt(depth - 1, out);
                out.extend(["}".into(), "else".into(), "{".into()]);
                self.stmt(depth - 1, out);
                out.push("}".into());
            }
            5 => {
                out.extend(["for".into(), "i".into(), ",".into(), "x".into(), "in".into()]);
                self.expr(2, out);
                out.push("{".into());
                self.stmt(depth - 1, out);
                out.push("}".into());
            }
            _ => {
                out.extend(["fn".into(), "g".into(), "(".into(), "a".into(), ",".into(), "b".into(), "=".into()]);
                self.expr(1, out);
                out.extend([")".into(), "{".into()]);
                self.stmt(depth - 1, out);
                out.extend(["return".into(), "a".into(), "}".into()]);
            }
        }
    }

    fn script(&mut self) -> String {
        let mut toks = Vec::new();
        for _ in 0..1 + self.next(4) {
            self.stmt(2, &mut toks);
            toks.push(";".into());
        }
        let mut src = String::new();
        for (i, t) in toks.iter().enumerate() {
            src.push_str(t);
            if t.starts_with('#') {
                src.push('\n');
                continue;
            }
            let next = toks.get(i + 1).map_or("", String::as_str);
            let punct = |s: &str| matches!(s, "(" | ")" | "[" | "]" | "{" | "}" | "," | ";" | ":");
            let tight = punct(t) || punct(next);
            src.push_str(if tight && self.next(3) == 0 { "" } else { self.pick(&[" ", "  ", "\t", "\n", " \n    "]) });
        }
        src
    }
}

#[test]
fn random_scripts_format_to_the_same_tree_and_formatting_is_idempotent() {
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    let mut parsed = 0;
    for _ in 0..3000 {
        let src = g.script();
        let Some(before) = tree(&src) else { continue };
        parsed += 1;
        let f = assay_grammar::format(&src).unwrap();
        assert_eq!(tree(&f).as_deref(), Some(before.as_str()), "{src:?}\nformatted:\n{f}");
        assert_eq!(assay_grammar::format(&f).unwrap(), f, "{src:?}");
    }
    assert!(parsed > 2000, "only {parsed} of 3000 generated scripts parsed: the generator is off");
}
