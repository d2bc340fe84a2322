//! The build's identity for keys that must change whenever any code that
//! computes a result changes (the call cache, replay): a sha256 over the
//! workspace's sources and lock file, not only the version number (two
//! builds of one version may compute different results; a cache entry of
//! one must never answer for the other).

#![allow(clippy::disallowed_methods, reason = "a build script reads the sources it digests; no script runs here")]

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p
            .extension()
            .is_some_and(|x| matches!(x.to_str(), Some("rs" | "pest" | "toml" | "rhai" | "json" | "md")))
        {
            out.push(p);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    // The crates whose code computes results: the grammar, the interpreter,
    // the tools and the runner.
    let dirs: Vec<PathBuf> = ["interpreter/src", "grammar/src", "stdlib/src", "src"]
        .iter()
        .map(|d| root.join(d))
        .filter(|d| d.is_dir())
        .collect();
    let mut all = Vec::new();
    for d in &dirs {
        println!("cargo::rerun-if-changed={}", d.display());
        files(d, &mut all);
    }
    for f in ["Cargo.lock", "Cargo.toml"] {
        let p = root.join(f);
        if p.is_file() {
            println!("cargo::rerun-if-changed={}", p.display());
            all.push(p);
        }
    }
    all.sort();
    all.dedup();
    let mut h = Sha256::new();
    for p in &all {
        let rel = p.strip_prefix(&root).unwrap_or(p);
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(std::fs::read(p).unwrap_or_default());
        h.update([0]);
    }
    let digest: String = h.finalize().iter().take(12).map(|b| format!("{b:02x}")).collect();
    println!("cargo::rustc-env=ASSAY_BUILD_DIGEST={digest}");
}
