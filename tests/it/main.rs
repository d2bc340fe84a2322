//! The one integration-test binary: script cases with expected output,
//! command-line behaviour, property tests, and checks on the docs.

#![allow(clippy::disallowed_methods, reason = "tests read their fixtures and run records directly")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on a broken expectation")]

mod adversarial;
mod agent;
mod bench;
mod binding;
mod cache;
mod cli;
mod docs;
mod edges;
mod editors;
mod fmt;
mod layers;
mod library;
mod links;
mod llm;
mod lsp;
mod models;
mod parent;
mod props;
mod scripted;
mod shard;
mod support;
mod text_units;
mod transcripts;
