//! Models hosted in ONNX Runtime: provisioning the runtime, the ONNX
//! protobuf and pure graph rewriting, and the model tools over them.

pub mod attention;
pub mod attribution;
pub mod error;
pub mod graph;
pub mod interventions;
pub mod lens;
pub mod metrics;
pub mod model;
pub mod proto;
pub mod runtime;
pub mod sweep;
pub mod testdata;
pub mod tools;
pub mod units;
