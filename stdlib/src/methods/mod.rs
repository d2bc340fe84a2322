//! Interpretability methods over hosted models, one family per file, above
//! the mechanics (`crate::onnx`), which they reach through `Model` and
//! `ModelHandle`: running and capturing (`run.rs`), units, patching sweeps,
//! the interventions (one file per method), metrics, the logit lens,
//! direct logit attribution and attention patterns.

pub mod atp;
pub mod atp_star;
pub mod attention;
pub mod attribution;
pub mod grad;
pub mod interventions;
pub mod lens;
pub mod metrics;
pub mod run;
pub mod saliency;
pub mod sweep;
pub mod units;
pub mod visualize;
