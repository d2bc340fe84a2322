//! Interventions beyond single-component patching: cross-model patching
//! (CMAP), path patching, circuit evaluation by mean ablation, and learned
//! component masks (DCM). All of them are built from one primitive: a run
//! in which some column slices of some tensors are mixed as
//! `mask*new + (1-mask)*orig`, batched with a different mask per row.
//!
//! Components are slices of a tensor's last axis: `parts` equal slices
//! (attention heads of [N, T, H*Dh]), addressed as [tensor index, part].
//! One file per method; this one holds what they share.

mod circuit;
mod cross_patch;
mod dcm;
mod path_patch;

use std::collections::BTreeMap;

use assay_interpreter::{Arg, Name, ToolCtx, ToolError, Type, Value};
use ndarray::{ArrayD, Axis, Slice};
use rand::Rng;

use crate::core::declare::{tool, ToolResult};
use crate::methods::metrics::metric_number;
use crate::methods::sweep::{outputs_value, run_mixed, split, Outputs, Want};
use crate::onnx::handle::ModelHandle;
use crate::onnx::handle::{feeds_value, select_names};

type Feeds = Vec<(String, ArrayD<f32>)>;

fn call_metric(ctx: &mut dyn ToolCtx, f: &Value, args: Vec<Value>, arg: Name) -> Result<f64, ToolError> {
    metric_number(ctx.call(f, args)?, arg)
}

/// One input (batch 1) from a value.
fn one(m: &ModelHandle, v: &Value, arg: Name) -> Result<Feeds, ToolError> {
    let f = feeds_value(m, v, arg)?;
    if f.iter().any(|(_, t)| t.shape().first() != Some(&1)) {
        return Err(ToolError::arg(arg, "give one example (first dimension 1), e.g. one prompt"));
    }
    Ok(f)
}

/// [tensor index, part] pairs → component indices.
fn pairs(x: &Arg, tensors: usize, parts: usize) -> Result<Vec<usize>, ToolError> {
    let mut out = Vec::new();
    for (k, v) in x.items()?.iter().enumerate() {
        let xs = assay_interpreter::to_numbers(v)
            .map_err(|_| x.error(format!("item {k} must be a pair [tensor index, part], e.g. [0, 3]")))?;
        if xs.len() != 2 || xs.iter().any(|x| *x < 0.0 || x.fract() != 0.0) {
            return Err(x.error(format!("item {k} must be a pair of whole numbers [tensor index, part]")));
        }
        let (t, p) = (xs[0] as usize, xs[1] as usize);
        if t >= tensors || p >= parts {
            return Err(x.error(format!("[{t}, {p}] is out of range: {tensors} tensors of {parts} parts")));
        }
        out.push(t * parts + p);
    }
    Ok(out)
}

// ---------------------------------------------------------------- CMAP
