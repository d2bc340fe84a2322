//! Rules for ONNX Runtime's fused kernels (the com.microsoft domain, as
//! its transformer optimizer writes them): layer norms fused with the
//! residual add, GELU fused with its bias, and the embedding kernel, which
//! reads only ids and weights. (Attention: `attention.rs`.)

use super::node::{attr_f, input, Grads};
use super::node::{gelu_derivative, norm_grad};
use super::Emit;
use crate::onnx::proto::NodeProto;

/// SkipLayerNormalization and SkipSimplifiedLayerNormalization:
/// norm(input + skip [+ bias]) · gamma [+ beta]. The input and the skip
/// get the norm's gradient (plus that of the optional sum output, 3).
pub(super) fn skip_norm(e: &mut Emit, n: &NodeProto, dys: &[Option<String>], need: &[bool]) -> Grads {
    let centred = n.op_type() == "SkipLayerNormalization";
    let (x, skip, gamma) = (input(n, 0), input(n, 1), input(n, 2));
    let bias = input(n, if centred { 4 } else { 3 });
    if dys.get(1).is_some_and(Option::is_some) || dys.get(2).is_some_and(Option::is_some) {
        return Err(format!("{}'s mean and inverse deviation outputs are differentiated", n.op_type()));
    }
    let mut sum = e.op("Add", &[x, skip], vec![]);
    if !bias.is_empty() {
        sum = e.op("Add", &[&sum, bias], vec![]);
    }
    let eps = attr_f(n, "epsilon").unwrap_or(1e-12);
    let mut parts = Vec::new();
    if let Some(Some(g)) = dys.first() {
        parts.push(norm_grad(e, [&sum, gamma, g], -1, eps, centred));
    }
    if let Some(Some(g)) = dys.get(3) {
        parts.push(g.clone());
    }
    if parts.is_empty() {
        return Ok(vec![None; n.input.len()]);
    }
    let d = e.sum(parts);
    let mut out = vec![None; n.input.len()];
    if need.first() == Some(&true) {
        out[0] = Some(e.unbroadcast_like(&d, &sum, x));
    }
    if need.get(1) == Some(&true) {
        out[1] = Some(e.unbroadcast_like(&d, &sum, skip));
    }
    Ok(out)
}

/// BiasGelu (exact GELU of x + bias), FastGelu (its tanh approximation,
/// bias optional), Gelu (exact) and QuickGelu (x·σ(αx)).
pub(super) fn gelus(e: &mut Emit, n: &NodeProto, g: &str) -> Grads {
    let (x, bias) = (input(n, 0), input(n, 1));
    let at =
        if bias.is_empty() || n.op_type() == "QuickGelu" { x.to_string() } else { e.op("Add", &[x, bias], vec![]) };
    let d = match n.op_type() {
        "QuickGelu" => {
            // σ(αx) + αx·σ(αx)(1 − σ(αx))
            let alpha = e.const_f32(attr_f(n, "alpha").unwrap_or(1.702));
            let ax = e.op("Mul", &[&at, &alpha], vec![]);
            let s = e.op("Sigmoid", &[&ax], vec![]);
            let one = e.const_f32(1.0);
            let rest = e.op("Sub", &[&one, &s], vec![]);
            let t = e.op("Mul", &[&ax, &rest], vec![]);
            let t = e.op("Add", &[&one, &t], vec![]);
            e.op("Mul", &[&s, &t], vec![])
        }
        op => gelu_derivative(e, &at, op == "FastGelu"),
    };
    let mut out = vec![None; n.input.len()];
    out[0] = Some(e.op("Mul", &[g, &d], vec![]));
    Ok(out)
}

/// Whether a com.microsoft node's input can carry a gradient: the data
/// inputs of the kernels above; none of EmbedLayerNormalization's (ids,
/// weights, a mask) nor any weight, bias or mask.
pub(super) fn differentiable(n: &NodeProto) -> Option<Vec<bool>> {
    let k = n.input.len();
    let first = |m: usize| (0..k).map(|j| j < m).collect::<Vec<bool>>();
    Some(match n.op_type() {
        "SkipLayerNormalization" | "SkipSimplifiedLayerNormalization" => first(2),
        "BiasGelu" | "FastGelu" | "QuickGelu" | "Gelu" | "Attention" => first(1),
        "EmbedLayerNormalization" => vec![false; k],
        _ => return None,
    })
}
