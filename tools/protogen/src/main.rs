//! Regenerates the ONNX protobuf types from `stdlib/src/onnx/proto/onnx.proto`.
//!
//!     cargo run -p assay-protogen            rewrite stdlib/src/onnx/proto/onnx.rs
//!     cargo run -p assay-protogen -- --check exit 1 if it is not what this generates
//!
//! protox compiles the .proto in Rust (no protoc to install); prost-build
//! writes the types. The test below fails while the checked-in file is stale.

#![allow(
    clippy::disallowed_methods,
    reason = "a developer tool, not a tool scripts call: it reads onnx.proto and the generated file"
)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What the generated file starts with, before prost-build's own text.
const HEADER: &str = "// Generated from onnx.proto (onnx 1.23.2, IR version 14) with prost-build 0.14 and protox 0.9.\n// Regenerate when onnx.proto is updated: prost drops fields its schema does not know.\n";

fn proto_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../stdlib/src/onnx/proto");
    dir.canonicalize().unwrap_or(dir)
}

/// The text `onnx.rs` should hold.
fn generate() -> Result<String, String> {
    let dir = proto_dir();
    let files = protox::compile([dir.join("onnx.proto")], [&dir]).map_err(|e| format!("onnx.proto: {e}"))?;
    let out =
        std::env::temp_dir().join(format!("assay-protogen-{}-{:?}", std::process::id(), std::thread::current().id()));
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let built = prost_build::Config::new().out_dir(&out).compile_fds(files).map_err(|e| e.to_string());
    let text = built.and_then(|()| std::fs::read_to_string(out.join("onnx.rs")).map_err(|e| e.to_string()));
    let _ = std::fs::remove_dir_all(&out);
    Ok(format!("{HEADER}{}", text?))
}

fn main() -> ExitCode {
    let check = std::env::args().any(|a| a == "--check");
    let target = proto_dir().join("onnx.rs");
    let text = match generate() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let current = std::fs::read_to_string(&target).unwrap_or_default();
    if check {
        if current == text {
            println!("{} is current", target.display());
            return ExitCode::SUCCESS;
        }
        eprintln!("{} is stale: run `cargo run -p assay-protogen`", target.display());
        return ExitCode::FAILURE;
    }
    if current == text {
        println!("{} was already current", target.display());
        return ExitCode::SUCCESS;
    }
    let tmp = target.with_extension("rs.tmp");
    match std::fs::write(&tmp, &text).and_then(|()| std::fs::rename(&tmp, &target)) {
        Ok(()) => {
            println!("wrote {}", target.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", target.display());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_checked_in_protobuf_types_are_what_onnx_proto_generates() {
        let want = super::generate().unwrap_or_else(|e| panic!("{e}"));
        let have = std::fs::read_to_string(super::proto_dir().join("onnx.rs")).unwrap_or_default();
        assert!(have == want, "stdlib/src/onnx/proto/onnx.rs is stale: run `cargo run -p assay-protogen`");
    }
}
