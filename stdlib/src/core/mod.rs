//! Tools that need no model: math and statistics, randomness, text, lists,
//! tensors and reading files under the sandbox.

pub(crate) mod declare;
mod files;
mod lists;
mod math;
pub(crate) mod random;
mod stats;
mod tensor_files;
mod text;

use assay_interpreter::{Args, Registry, Signature, Tool, ToolCtx, ToolError, Value};

pub(crate) type ToolFn = fn(&Args, &mut dyn ToolCtx) -> Result<Value, ToolError>;
/// A shardable tool's merge: its result from every shard's partial result.
pub(crate) type MergeFn = fn(&Args, &mut dyn ToolCtx, Vec<Value>) -> Result<Value, ToolError>;

/// A tool made of a signature and a function: most tools need no state.
pub struct FnTool {
    sig: fn() -> Signature,
    f: ToolFn,
    merge: Option<MergeFn>,
}

impl FnTool {
    pub const fn new(sig: fn() -> Signature, f: ToolFn) -> Self {
        FnTool { sig, f, merge: None }
    }
    /// A shardable tool: `f` computes the share `ctx.share()` names, `merge`
    /// puts the shares together (see `assay_interpreter::shard`).
    pub const fn merging(mut self, merge: MergeFn) -> Self {
        self.merge = Some(merge);
        self
    }
}

impl Tool for FnTool {
    fn signature(&self) -> Signature {
        (self.sig)()
    }
    fn call(&self, args: &Args, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError> {
        (self.f)(args, ctx)
    }
    fn merge(&self, args: &Args, ctx: &mut dyn ToolCtx, parts: Vec<Value>) -> Result<Value, ToolError> {
        match self.merge {
            Some(m) => m(args, ctx, parts),
            None => Err(ToolError::new("this tool cannot merge shards")),
        }
    }
}

pub(crate) fn register(r: &mut Registry) {
    math::register(r);
    stats::register(r);
    random::register(r);
    text::register(r);
    lists::register(r);
    files::register(r);
    tensor_files::register(r);
}
