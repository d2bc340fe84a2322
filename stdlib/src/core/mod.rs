//! Tools that need no model: math and statistics, randomness, text, lists,
//! tensors and reading files under the sandbox.

pub(crate) mod declare;
mod files;
pub(crate) mod kinds;
mod lists;
mod math;
pub(crate) mod probes;
pub(crate) mod random;
mod stats;
mod tensor_files;
mod text;

use assay_interpreter::{Args, Signature, Tool, ToolCtx, ToolError, Value};

pub(crate) type ToolFn = fn(&Args, &mut dyn ToolCtx) -> Result<Value, ToolError>;
/// A shardable tool's merge: its result from every shard's partial result.
pub(crate) type MergeFn = fn(&Args, &mut dyn ToolCtx, Vec<Value>) -> Result<Value, ToolError>;

/// A declared tool: its signature, its call and, for a shardable tool, the
/// merge of its shards. Every `tool!` declaration submits one, and
/// [`crate::registry`] registers them all.
#[derive(Clone, Copy)]
pub struct FnTool {
    sig: fn() -> Signature,
    f: ToolFn,
    merge: Option<MergeFn>,
}

impl FnTool {
    /// A tool; a shardable one computes the share `ctx.share()` names and
    /// `merge` puts the shares together (see `assay_interpreter::shard`).
    pub(crate) const fn declared(sig: fn() -> Signature, f: ToolFn, merge: Option<MergeFn>) -> Self {
        FnTool { sig, f, merge }
    }
}

inventory::collect!(FnTool);

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
