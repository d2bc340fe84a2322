//! `describe` and `summarize`: a vision-language model looks at images, as
//! in MAIA. The model is whatever endpoint the person running Assay
//! configured (see `llm.rs`); without one the tools say how to set it.

use std::sync::Arc;

use assay_interpreter::{Args, Category, Image, Registry, Signature, ToolCtx, ToolError, Type, Value};

use crate::core::FnTool;
use crate::llm::{image_part, text_part, Endpoint};

fn images_of(a: &Args, i: &str) -> Result<Vec<Arc<Image>>, ToolError> {
    match a.get(i) {
        Value::Image(img) => Ok(vec![img.clone()]),
        Value::List(items) => items
            .iter()
            .map(|v| match v {
                Value::Image(img) => Ok(img.clone()),
                other => Err(ToolError::arg(i, format!("expected images, found a {}", other.type_name()))),
            })
            .collect(),
        other => {
            Err(ToolError::arg(i, format!("expected an image or a list of images, found a {}", other.type_name())))
        }
    }
}

const DESCRIBE: &str = "Describe the main object or pattern in this image in one short sentence.";
const SUMMARIZE: &str = "These images all strongly activate the same unit of a vision model. In one short sentence, what do they have in common?";

fn describe_sig() -> Signature {
    Signature::new("describe", Category::Vision, "Asks the configured vision-language model to describe each image (one reply per image). Needs ASSAY_LLM_URL and ASSAY_LLM_MODEL (an OpenAI-compatible endpoint); replies depend on that model, so they are results, not reproducible computations.")
        .volatile()
        .param("images", Type::OneOf(vec![Type::Image, Type::list(Type::Image)]), "an image or a list of images")
        .opt("prompt", Type::Str, Value::str(DESCRIBE), "the instruction sent with each image")
        .returns(Type::list(Type::Str))
        .requires("ASSAY_LLM_URL")
        .example("let d = describe(image(\"fixtures/red.png\"))\nassert len(d) == 1")
}
fn describe(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let images = images_of(a, "images")?;
    let prompt = a.str("prompt")?.to_string();
    let ep = Endpoint::from_env().map_err(ToolError::new)?;
    let mut out = Vec::new();
    for img in images {
        let part = image_part(&img).map_err(ToolError::new)?;
        out.push(Value::str(ep.chat(vec![text_part(&prompt), part]).map_err(ToolError::new)?));
    }
    Ok(Value::list(out))
}

fn summarize_sig() -> Signature {
    Signature::new("summarize", Category::Vision, "Asks the configured vision-language model what a set of images has in common (one request with every image), e.g. a unit's exemplars. Needs ASSAY_LLM_URL and ASSAY_LLM_MODEL.")
        .volatile()
        .param("images", Type::list(Type::Image), "the images")
        .opt("prompt", Type::Str, Value::str(SUMMARIZE), "the instruction sent with the images")
        .returns(Type::Str)
        .requires("ASSAY_LLM_URL")
        .example("let s = summarize([image(\"fixtures/red.png\")])\nassert len(s) > 0")
}
fn summarize(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let images = images_of(a, "images")?;
    let ep = Endpoint::from_env().map_err(ToolError::new)?;
    let mut content = vec![text_part(a.str("prompt")?)];
    for img in images {
        content.push(image_part(&img).map_err(ToolError::new)?);
    }
    ep.chat(content).map(Value::str).map_err(ToolError::new)
}

pub(crate) fn register(r: &mut Registry) {
    r.register(FnTool::new(describe_sig, describe));
    r.register(FnTool::new(summarize_sig, summarize));
}
