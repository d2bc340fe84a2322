//! `describe` and `summarize`: a vision-language model looks at images, as
//! in MAIA. The model is whatever endpoint the person running Assay
//! configured (see `llm.rs`); without one the tools say how to set it.

use assay_interpreter::{ToolError, Type, Value};

use crate::core::declare::{tool, ToolCtx, ToolResult};
use crate::core::kinds::Images;
use crate::llm::{image_part, text_part, Endpoint};

const DESCRIBE: &str = "Describe the main object or pattern in this image in one short sentence.";
const SUMMARIZE: &str = "These images all strongly activate the same unit of a vision model. In one short sentence, what do they have in common?";

tool! {
    /// Asks the configured vision-language model to describe each image (one reply per image). Needs
    /// ASSAY_LLM_URL and ASSAY_LLM_MODEL (an OpenAI-compatible endpoint); replies depend on that model,
    /// so they are results, not reproducible computations.
    ///
    /// ```assay
    /// let d = describe(image("fixtures/red.png"))
    /// assert len(d) == 1
    /// ```
    describe in Vision -> Type::list(Type::Str), volatile, requires("ASSAY_LLM_URL");
    {
        /// an image or a list of images
        images: Images,
        /// the instruction sent with each image
        prompt: String = DESCRIBE,
    }
    describe
}

fn describe(p: describe::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let images = p.images.images.clone();
    let prompt = p.prompt.clone();
    let ep = Endpoint::from_env().map_err(ToolError::new)?;
    let mut out = Vec::new();
    for img in images {
        let part = image_part(&img).map_err(ToolError::new)?;
        out.push(Value::str(ep.chat(vec![text_part(&prompt), part]).map_err(ToolError::new)?));
    }
    Ok(Value::list(out))
}

tool! {
    /// Asks the configured vision-language model what a set of images has in common (one request with
    /// every image), e.g. a unit's exemplars. Needs ASSAY_LLM_URL and ASSAY_LLM_MODEL.
    ///
    /// ```assay
    /// let s = summarize([image("fixtures/red.png")])
    /// assert len(s) > 0
    /// ```
    summarize in Vision -> Type::Str, volatile, requires("ASSAY_LLM_URL");
    {
        /// the images
        images: Images [Type::list(Type::Image)],
        /// the instruction sent with the images
        prompt: String = SUMMARIZE,
    }
    summarize
}

fn summarize(p: summarize::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let images = p.images.images.clone();
    let ep = Endpoint::from_env().map_err(ToolError::new)?;
    let mut content = vec![text_part(p.prompt.as_str())];
    for img in images {
        content.push(image_part(&img).map_err(ToolError::new)?);
    }
    ep.chat(content).map(Value::str).map_err(ToolError::new)
}
