//! What the interpreter's in-process tests share: a registry of one tool,
//! declared as a tool library would declare it.

use assay_interpreter::{Args, Category, Registry, Signature, Tool, ToolCtx, ToolError, Type, Value};

/// `clip(x, lo = 0, hi = 1) -> number`.
struct Clip;

impl Tool for Clip {
    fn signature(&self) -> Signature {
        Signature::new("clip", Category::Math, "Limits x to [lo, hi].")
            .param("x", Type::Num, "a number")
            .opt("lo", Type::Num, Value::Num(0.0), "lower bound")
            .opt("hi", Type::Num, Value::Num(1.0), "upper bound")
            .returns(Type::Num)
    }
    fn call(&self, a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
        Ok(Value::Num(a.num("x")?.clamp(a.num("lo")?, a.num("hi")?)))
    }
}

/// A registry holding only `clip`.
pub(crate) fn registry() -> Registry {
    let mut r = Registry::new();
    r.register(Clip);
    r
}
