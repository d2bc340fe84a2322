//! Rules for reductions (sum, mean, max, min, L2 norm) and for the
//! elementwise Max and Min of several inputs.

use super::node::{attr_i, attr_ints, first, input, Grads};
use super::Emit;
use crate::onnx::proto::{tensor_proto::DataType, NodeProto};

/// `t`, a reduction's result or its gradient, with the reduced axes kept
/// (size 1) so that it broadcasts against the input; a reduction to a
/// scalar broadcasts as it is.
fn kept(e: &mut Emit, n: &NodeProto, t: &str) -> String {
    if attr_i(n, "keepdims").unwrap_or(1) != 0 {
        return t.to_string();
    }
    let axes_input = input(n, 1);
    if !axes_input.is_empty() {
        e.op("Unsqueeze", &[t, axes_input], vec![])
    } else if let Some(a) = attr_ints(n, "axes") {
        e.unsqueeze(t, &a)
    } else {
        t.to_string()
    }
}

/// Whether the node reduces nothing (empty axes with noop_with_empty_axes).
fn noop(n: &NodeProto) -> bool {
    attr_i(n, "noop_with_empty_axes").unwrap_or(0) != 0 && attr_ints(n, "axes").is_none() && input(n, 1).is_empty()
}

/// ReduceSum and ReduceMean: the gradient spread over the reduced axes
/// (divided by their size for the mean).
pub(super) fn reduce(e: &mut Emit, n: &NodeProto, g: &str) -> Grads {
    if noop(n) {
        return first(n, g.to_string());
    }
    let x = input(n, 0);
    let y = n.output.first().map(String::as_str).unwrap_or("");
    let g = kept(e, n, g);
    let g = if n.op_type() == "ReduceMean" {
        let k = e.size_f(x);
        let m = e.size_f(y);
        let count = e.op("Div", &[&k, &m], vec![]);
        e.op("Div", &[&g, &count], vec![])
    } else {
        g
    };
    let s = e.shape(x);
    first(n, e.op("Expand", &[&g, &s], vec![]))
}

/// ReduceMax and ReduceMin: the gradient to the elements equal to the
/// result, shared equally where several tie (as PyTorch's amax does);
/// ReduceL2: x / ‖x‖ (0 where the norm is 0).
pub(super) fn reduce_picking(e: &mut Emit, n: &NodeProto, g: &str) -> Grads {
    if noop(n) {
        return first(n, g.to_string());
    }
    let x = input(n, 0);
    let y = n.output.first().map(String::as_str).unwrap_or("");
    let yk = kept(e, n, y);
    let gk = kept(e, n, g);
    let zero = e.const_f32(0.0);
    let d = if n.op_type() == "ReduceL2" {
        let is_zero = e.op("Equal", &[&yk, &zero], vec![]);
        let one = e.const_f32(1.0);
        let safe = e.op("Where", &[&is_zero, &one, &yk], vec![]);
        let unit = e.op("Div", &[x, &safe], vec![]);
        e.op("Where", &[&is_zero, &zero, &unit], vec![])
    } else {
        let hit = e.op("Equal", &[x, &yk], vec![]);
        let hit = e.cast(&hit, DataType::Float);
        // The ties' count, reduced as the node reduces.
        let c = if !input(n, 1).is_empty() {
            e.op("ReduceSum", &[&hit, input(n, 1)], vec![super::emit::int("keepdims", 1)])
        } else if let Some(a) = attr_ints(n, "axes") {
            e.reduce("ReduceSum", &hit, &a, true)
        } else {
            e.op("ReduceSum", &[&hit], vec![super::emit::int("keepdims", 1)])
        };
        e.op("Div", &[&hit, &c], vec![])
    };
    first(n, e.op("Mul", &[&gk, &d], vec![]))
}

/// Max and Min of several inputs (broadcasting): each input's elements
/// equal to the result get the gradient, shared equally among ties.
pub(super) fn extreme(e: &mut Emit, n: &NodeProto, g: &str, need: &[bool]) -> Grads {
    let y = n.output.first().map(String::as_str).unwrap_or("");
    let hits: Vec<String> = n
        .input
        .iter()
        .map(|xi| {
            let h = e.op("Equal", &[xi, y], vec![]);
            e.cast(&h, DataType::Float)
        })
        .collect();
    let count = e.sum(hits.clone());
    let share = e.op("Div", &[g, &count], vec![]);
    let mut out = vec![None; n.input.len()];
    for (i, xi) in n.input.iter().enumerate() {
        if need.get(i) == Some(&true) {
            let gi = e.op("Mul", &[&share, &hits[i]], vec![]);
            out[i] = Some(e.unbroadcast_like(&gi, y, xi));
        }
    }
    Ok(out)
}
