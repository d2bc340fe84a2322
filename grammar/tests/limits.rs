//! The parser's limits are exact: at the limit a script parses, one past it
//! gets a diagnostic (never a stack overflow).

fn nested(levels: usize) -> String {
    format!("let x = {}1{}", "(".repeat(levels), ")".repeat(levels))
}

#[test]
fn nesting_limit_is_exact() {
    // pest recurses per bracket; give it the stack the `assay` binary has.
    let h = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(|| {
            let max = assay_grammar::MAX_NESTING;
            assert!(assay_grammar::parse(&nested(max)).is_ok(), "{max} levels must parse");
            let err = assay_grammar::parse(&nested(max + 1)).err().map(|e| e.message);
            assert_eq!(err.as_deref(), Some("nested too deeply"));
            // Brackets inside strings and comments do not count.
            let quiet =
                format!("# {}\nlet s = \"{}\"\nlet r = `{}`", "(".repeat(200), "[".repeat(200), "{".repeat(200));
            assert!(assay_grammar::parse(&quiet).is_ok());
        })
        .map(|h| h.join());
    assert!(matches!(h, Ok(Ok(()))), "the limit test failed");
}
