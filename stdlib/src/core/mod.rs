//! Tools that need no model: math and statistics, randomness, text, lists,
//! tensors and reading files under the sandbox.

mod files;
mod lists;
mod math;
pub(crate) mod random;
mod stats;
mod text;

use assay_interpreter::{Args, Registry, Signature, Tool, ToolCtx, ToolError, Value};

pub(crate) type ToolFn = fn(&Args, &mut dyn ToolCtx) -> Result<Value, ToolError>;

/// A tool made of a signature and a function: most tools need no state.
pub struct FnTool {
    sig: fn() -> Signature,
    f: ToolFn,
}

impl FnTool {
    pub const fn new(sig: fn() -> Signature, f: ToolFn) -> Self {
        FnTool { sig, f }
    }
}

impl Tool for FnTool {
    fn signature(&self) -> Signature {
        (self.sig)()
    }
    fn call(&self, args: &Args, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError> {
        (self.f)(args, ctx)
    }
}

pub(crate) fn register(r: &mut Registry) {
    math::register(r);
    stats::register(r);
    random::register(r);
    text::register(r);
    lists::register(r);
    files::register(r);
}
