//! The one integration-test binary: script cases with expected output,
//! command-line behaviour, property tests, and checks on the docs.

mod cases;
mod cli;
mod docs;
mod props;
mod support;
