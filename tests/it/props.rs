//! Property tests: the parser and the checker never panic, whatever the
//! input; they return diagnostics instead.

use std::sync::Arc;

use assay_interpreter::{check, Sandbox, SourceFile};
use proptest::prelude::*;

/// Runs `f` on a thread with a large stack, as the `assay` binary does.
fn big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new().stack_size(256 << 20).spawn(f).expect("spawn").join().expect("no panic");
}

fn parse_and_check(src: String) {
    big_stack(move || {
        let registry = assay_stdlib::registry();
        let file = SourceFile::new("prop.assay", src.clone());
        if let Ok(program) = assay_grammar::parse(&src) {
            let _ = check(&file, &program, &registry, &Default::default());
            // Whole pipeline, including `use`, through a sandbox.
            if let Ok(sb) = Sandbox::new(&std::env::temp_dir(), &[]) {
                let _ = assay_interpreter::prepare(&Arc::clone(&file), &registry, &sb);
            }
        }
    });
}

const TOKENS: &[&str] = &[
    "let",
    "fn",
    "if",
    "else",
    "for",
    "in",
    "return",
    "break",
    "continue",
    "seed",
    "use",
    "as",
    "show",
    "record",
    "assert",
    "true",
    "false",
    "none",
    "and",
    "or",
    "not",
    "x",
    "xs",
    "mean",
    "top_k",
    "k",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    ".",
    "..",
    "=",
    "==",
    "+",
    "-",
    "*",
    "/",
    "**",
    "%",
    "<",
    ">=",
    "=>",
    "!",
    "1",
    "2.5",
    "\"s\"",
    "\"a{x}b\"",
    "`raw`",
    "#c\n",
    "\n",
    ";",
    "\"{",
    "}\"",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(src in ".{0,200}") {
        parse_and_check(src);
    }

    #[test]
    fn token_soup_never_panics(toks in proptest::collection::vec(proptest::sample::select(TOKENS), 0..60)) {
        parse_and_check(toks.join(" "));
    }
}
