//! Fuzzes the parser and the checker: any input must give an AST or
//! diagnostics, never a panic. Run with `cargo fuzz run parse` (nightly);
//! CI builds it with stable. A finding becomes a case in tests/cases/.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = std::str::from_utf8(data) {
        if let Ok(program) = assay_grammar::parse(src) {
            let registry = assay_stdlib::registry();
            let file = assay_interpreter::SourceFile::new("fuzz.assay", src);
            let _ = assay_interpreter::check(&file, &program, &registry, &Default::default());
        }
    }
});
