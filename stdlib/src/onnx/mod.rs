//! Models hosted in ONNX Runtime, the mechanics only: provisioning the
//! runtime, the ONNX protobuf and pure graph rewriting, sessions per hook
//! set and the KV-cache convention (`Model`), errors by kind, attention
//! found by structure, and the script's model handle with the ports tools
//! feed. The tools over models are `crate::methods`.

pub mod attention;
pub mod blocks;
pub mod error;
pub mod grad;
pub mod graph;
pub mod handle;
pub mod model;
pub mod proto;
pub mod qkv;
pub mod runtime;
pub mod streams;
pub mod testdata;
