//! Assay's tools. Each tool carries its signature, doc and examples next to
//! its code and registers itself; [`registry`] collects everything a script
//! can call. This is the only crate that will link ONNX Runtime.

mod core;
pub mod fetch;
pub mod llm;
pub mod methods;
pub mod models;
pub mod onnx;
pub mod pixels;
pub mod provision;
pub mod vision;

pub use crate::core::FnTool;
use assay_interpreter::Registry;

/// Every tool, registered once: each `tool!` declaration submits itself, so
/// this collects them (a name declared twice is noted in
/// `Registry::duplicates`, which the command and a test refuse).
pub fn registry() -> Registry {
    let mut r = Registry::new();
    for tool in inventory::iter::<FnTool> {
        r.register(*tool);
    }
    r
}
