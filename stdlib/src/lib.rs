//! Assay's tools. Each tool carries its signature, doc and examples next to
//! its code; [`registry`] is the one explicit list of everything a script
//! can call. This is the only crate that will link ONNX Runtime.

mod core;
pub mod fetch;
pub mod llm;
pub mod models;
pub mod onnx;
pub mod pixels;
pub mod provision;
pub mod vision;

pub use crate::core::FnTool;
use assay_interpreter::Registry;

/// Every tool, registered once.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    core::register(&mut r);
    onnx::tools::register(&mut r);
    onnx::units::register(&mut r);
    onnx::sweep::register(&mut r);
    onnx::metrics::register(&mut r);
    onnx::interventions::register(&mut r);
    onnx::lens::register(&mut r);
    onnx::attention::register(&mut r);
    onnx::attribution::register(&mut r);
    models::register(&mut r);
    vision::register(&mut r);
    r
}
