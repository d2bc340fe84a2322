//! Provisioning ahead of a sandboxed run: what a script names (built-in
//! models, data sets, ONNX Runtime) is fetched and built into Assay's cache
//! before the kernel sandbox closes, because a sandboxed run may read the
//! cache but never write it. Nothing here runs script code; it reads only
//! the names and plain string literals the script's syntax contains. A name
//! computed at run time is not seen here: if it is not cached yet, the tool
//! fails with a message that says how to provision it.

use std::path::PathBuf;

use assay_interpreter::{Category, Mentions, Registry};

use crate::fetch;
use crate::vision::{data, photo_files, synthetic};

/// What provisioning did, and the paths a sandboxed run must be able to read.
#[derive(Debug, Default)]
pub struct Provisioned {
    /// ONNX Runtime's library, when the script may load a model.
    pub runtime_library: Option<PathBuf>,
    /// One line per thing that could not be provisioned (the run goes on;
    /// the tool that needs it will say so where it is called).
    pub problems: Vec<String>,
}

/// Tool categories whose tools run models in ONNX Runtime.
const MODEL_CATEGORIES: &[Category] = &[Category::Models, Category::Interventions, Category::Metrics, Category::Vision];

pub fn provision_for(m: &Mentions, registry: &Registry) -> Provisioned {
    let mut out = Provisioned::default();
    let mut note = |r: Result<(), String>, what: &str| {
        if let Err(e) = r {
            out.problems.push(format!("{what}: {e}"));
        }
    };
    let named = |n: &str| m.names.contains(n);
    if named("model") {
        for b in crate::models::BUILT_IN.iter().filter(|b| m.strings.contains(b.name)) {
            // Digests are remembered while the cache is writable, so a
            // sandboxed run reads them instead of hashing the weights.
            let r =
                (b.prepare)().and_then(|p| p.files().into_iter().try_for_each(|f| fetch::sha256_file(f).map(|_| ())));
            note(r, b.name);
        }
    }
    if ["synthetic", "synthetic_neurons", "score"].iter().any(|n| named(n)) {
        // The benchmark's concept detectors are trained on first use (about
        // 1.5 minutes): only for a script that names one or the set.
        let bench = m.strings.contains("benchmark")
            || crate::vision::bench_neurons::concepts().iter().any(|c| m.strings.contains(c.name.as_str()));
        note(synthetic::provision(bench), "synthetic neurons");
    }
    if named("sample_photos") {
        note(photo_files().map(|_| ()), "sample photos");
    }
    if named("plot") {
        note(crate::vision::font::provision().map(|_| ()), "the plot font");
    }
    if named("corpus") {
        note(crate::models::corpus::provision().map(|_| ()), "the text corpus");
    }
    if named("emoji") {
        note(data::emoji_items().map(|_| ()), "emoji");
    }
    let uses_models =
        m.names.iter().any(|n| registry.signature(n).is_some_and(|s| MODEL_CATEGORIES.contains(&s.category)));
    if uses_models || named("onnx") {
        match crate::onnx::runtime::provision() {
            Ok(rt) => out.runtime_library = Some(rt.library),
            Err(e) => out.problems.push(format!("ONNX Runtime: {e}")),
        }
    }
    out
}
