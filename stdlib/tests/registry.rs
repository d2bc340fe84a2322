//! The registry: every tool once, every parameter documented, required
//! parameters first.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on a broken expectation")]

#[test]
fn tool_names_are_unique_and_params_documented() {
    let registry = assay_stdlib::registry();
    // The registry keeps the first of two registrations and notes the name.
    assert!(registry.duplicates().is_empty(), "registered twice: {:?}", registry.duplicates());
    assert!(registry.len() >= 100, "only {} tools registered", registry.len());
    for sig in registry.signatures() {
        for p in &sig.params {
            assert!(!p.doc.is_empty(), "{}.{} has no doc", sig.name, p.name);
        }
        // Required parameters come before optional ones.
        let first_opt = sig.params.iter().position(|p| !matches!(p.default, assay_interpreter::Default::Required));
        if let Some(i) = first_opt {
            assert!(
                sig.params[i..].iter().all(|p| !matches!(p.default, assay_interpreter::Default::Required)),
                "{}",
                sig.name
            );
        }
    }
}
