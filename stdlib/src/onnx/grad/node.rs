//! What the backward rules share: a node's attributes and inputs, their
//! results' form, and the pieces of graph several rules emit (scattering
//! gradients back to flat indices, padding a transposed convolution's
//! result to its input's size, GELU's derivative and a norm's backward,
//! which ONNX's ops and ONNX Runtime's fused kernels both need).

use super::emit::{int, string};
use super::Emit;
use crate::onnx::proto::{attribute_proto::AttributeType, AttributeProto, NodeProto};

pub(super) type Grads = Result<Vec<Option<String>>, String>;

pub(super) fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name() == name)
}
pub(super) fn attr_i(n: &NodeProto, name: &str) -> Option<i64> {
    attr(n, name).and_then(|a| a.i)
}
pub(super) fn attr_f(n: &NodeProto, name: &str) -> Option<f32> {
    attr(n, name).and_then(|a| a.f)
}
pub(super) fn attr_ints(n: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(n, name).filter(|a| a.r#type() == AttributeType::Ints || !a.ints.is_empty()).map(|a| a.ints.clone())
}
pub(super) fn attr_s(n: &NodeProto, name: &str) -> Option<String> {
    attr(n, name).and_then(|a| a.s.as_ref()).map(|s| String::from_utf8_lossy(s).into_owned())
}

/// Input `i` of the node ("" when absent).
pub(super) fn input(n: &NodeProto, i: usize) -> &str {
    n.input.get(i).map(String::as_str).unwrap_or("")
}

/// The only output's gradient.
pub(super) fn dy(dys: &[Option<String>]) -> Result<&str, String> {
    dys.first().and_then(|d| d.as_deref()).ok_or_else(|| "no gradient reached its output".to_string())
}

/// A result for the first input alone.
pub(super) fn first(n: &NodeProto, g: String) -> Grads {
    let mut out = vec![None; n.input.len()];
    out[0] = Some(g);
    Ok(out)
}

/// `values` scattered into `zeros` (all flat) at `picked`, added where an
/// index repeats (which needs ScatterElements' reduction, opset 16).
pub(super) fn scatter_add(
    e: &mut Emit,
    n: &NodeProto,
    [zeros, picked, values]: [&str; 3],
    repeats: bool,
) -> Result<String, String> {
    if !repeats {
        return Ok(e.op("ScatterElements", &[zeros, picked, values], vec![int("axis", 0)]));
    }
    if e.opset < 16 {
        return Err(format!(
            "{} may pick an element twice; adding its gradients needs ScatterElements' reduction (opset 16, the model imports {})",
            n.op_type(),
            e.opset
        ));
    }
    Ok(e.op("ScatterElements", &[zeros, picked, values], vec![int("axis", 0), reduction_add()]))
}

pub(super) fn reduction_add() -> AttributeProto {
    string("reduction", "add")
}

/// `dx` padded at the end of its spatial axes (from the third) to the
/// spatial size of `sx` (a shape): strides can leave up to stride-1
/// trailing rows that the forward never read.
pub(super) fn pad_spatial(e: &mut Emit, dx: &str, sx: &str) -> String {
    let two = e.const_i64s(&[2]);
    let big = e.const_i64s(&[i64::MAX]);
    let want = e.op("Slice", &[sx, &two, &big], vec![]);
    let sd = e.shape(dx);
    let have = e.op("Slice", &[&sd, &two, &big], vec![]);
    let diff = e.op("Sub", &[&want, &have], vec![]);
    let lead = e.const_i64s(&[0, 0]);
    let end = e.op("Concat", &[&lead, &diff], vec![int("axis", 0)]);
    let zero = e.const_i64(0);
    let begin = e.op("Mul", &[&end, &zero], vec![]);
    let pads = e.op("Concat", &[&begin, &end], vec![int("axis", 0)]);
    e.op("Pad", &[dx, &pads], vec![])
}

/// GELU's derivative at `x`, exact (erf) or of the tanh approximation.
pub(super) fn gelu_derivative(e: &mut Emit, x: &str, tanh: bool) -> String {
    let half = e.const_f32(0.5);
    let one = e.const_f32(1.0);
    match tanh {
        false => {
            // d/dx x·Φ(x) = Φ(x) + x·φ(x)
            let r2 = e.const_f32(std::f32::consts::FRAC_1_SQRT_2);
            let xs = e.op("Mul", &[x, &r2], vec![]);
            let erf = e.op("Erf", &[&xs], vec![]);
            let cdf = e.op("Add", &[&erf, &one], vec![]);
            let cdf = e.op("Mul", &[&cdf, &half], vec![]);
            let sq = e.op("Mul", &[x, x], vec![]);
            let sq = e.op("Mul", &[&sq, &half], vec![]);
            let neg = e.op("Neg", &[&sq], vec![]);
            let pdf = e.op("Exp", &[&neg], vec![]);
            let k = e.const_f32(1.0 / (2.0 * std::f32::consts::PI).sqrt());
            let pdf = e.op("Mul", &[&pdf, &k], vec![]);
            let xp = e.op("Mul", &[x, &pdf], vec![]);
            e.op("Add", &[&cdf, &xp], vec![])
        }
        true => {
            // y = x/2·(1 + tanh(u)), u = c·(x + a·x³):
            // dy/dx = (1 + t)/2 + x/2·(1 − t²)·c·(1 + 3a·x²)
            let c = e.const_f32((2.0 / std::f32::consts::PI).sqrt());
            let a = e.const_f32(0.044715);
            let a3 = e.const_f32(3.0 * 0.044715);
            let x2 = e.op("Mul", &[x, x], vec![]);
            let x3 = e.op("Mul", &[&x2, x], vec![]);
            let ax3 = e.op("Mul", &[&x3, &a], vec![]);
            let inner = e.op("Add", &[x, &ax3], vec![]);
            let u = e.op("Mul", &[&inner, &c], vec![]);
            let t = e.op("Tanh", &[&u], vec![]);
            let one_t = e.op("Add", &[&one, &t], vec![]);
            let first = e.op("Mul", &[&one_t, &half], vec![]);
            let t2 = e.op("Mul", &[&t, &t], vec![]);
            let sech2 = e.op("Sub", &[&one, &t2], vec![]);
            let ax2 = e.op("Mul", &[&x2, &a3], vec![]);
            let du = e.op("Add", &[&one, &ax2], vec![]);
            let du = e.op("Mul", &[&du, &c], vec![]);
            let xh = e.op("Mul", &[x, &half], vec![]);
            let second = e.op("Mul", &[&xh, &sech2], vec![]);
            let second = e.op("Mul", &[&second, &du], vec![]);
            e.op("Add", &[&first, &second], vec![])
        }
    }
}

/// The gradient of a layer norm (centred) or RMS norm of `x` over the axes
/// from `axis` on, scaled by `scale`, with respect to `x`.
pub(super) fn norm_grad(e: &mut Emit, [x, scale, g]: [&str; 3], axis: i64, eps: f32, centred: bool) -> String {
    let fl = vec![int("axis", axis)];
    let x2 = e.op("Flatten", &[x], fl.clone());
    let g2 = e.op("Flatten", &[g], fl);
    let row = e.const_i64s(&[1, -1]);
    let s2 = e.op("Reshape", &[scale, &row], vec![]);
    let xc = if centred {
        let mu = e.reduce("ReduceMean", &x2, &[1], true);
        e.op("Sub", &[&x2, &mu], vec![])
    } else {
        x2
    };
    let sq = e.op("Mul", &[&xc, &xc], vec![]);
    let var = e.reduce("ReduceMean", &sq, &[1], true);
    let epsc = e.const_f32(eps);
    let v = e.op("Add", &[&var, &epsc], vec![]);
    let sd = e.op("Sqrt", &[&v], vec![]);
    let xh = e.op("Div", &[&xc, &sd], vec![]);
    let gs = e.op("Mul", &[&g2, &s2], vec![]);
    let gx = e.op("Mul", &[&gs, &xh], vec![]);
    let m2 = e.reduce("ReduceMean", &gx, &[1], true);
    let t = e.op("Mul", &[&xh, &m2], vec![]);
    let mut inner = e.op("Sub", &[&gs, &t], vec![]);
    if centred {
        let m1 = e.reduce("ReduceMean", &gs, &[1], true);
        inner = e.op("Sub", &[&inner, &m1], vec![]);
    }
    let d = e.op("Div", &[&inner, &sd], vec![]);
    let s = e.shape(x);
    e.op("Reshape", &[&d, &s], vec![])
}
