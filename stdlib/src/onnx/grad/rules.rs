//! One backward rule per operator: the gradients of a node's inputs from
//! its outputs' gradients, as ONNX nodes. Each rule returns one entry per
//! input (None where the input needs none or has none); an operator
//! without a rule, or with attributes a rule does not cover, is an error
//! that says what is missing.

use super::emit::Dim;
use super::emit::{int, ints, string};
use super::node::{
    attr_f, attr_i, attr_ints, attr_s, dy, first, gelu_derivative, input, norm_grad, pad_spatial, scatter_add, Grads,
};
use super::Emit;
use crate::onnx::proto::{tensor_proto::DataType, NodeProto};

/// Which inputs of a node a gradient can flow into: none for operators
/// whose results are integers or bools (shapes, comparisons, indices),
/// only the data input for those whose other inputs are shapes, indices,
/// axes or bounds, and Where's two branches, not its condition.
pub(super) fn differentiable(n: &NodeProto) -> Vec<bool> {
    let k = n.input.len();
    if n.domain() == "com.microsoft" {
        if let Some(d) = super::fused::differentiable(n) {
            return d;
        }
    }
    let only = |i: usize| (0..k).map(|j| j == i).collect::<Vec<bool>>();
    match n.op_type() {
        "Shape" | "Size" | "Equal" | "Greater" | "Less" | "GreaterOrEqual" | "LessOrEqual" | "Not" | "And" | "Or"
        | "Xor" | "ArgMax" | "ArgMin" | "NonZero" | "Floor" | "Ceil" | "Round" | "Sign" | "ConstantOfShape"
        | "Range" | "IsNaN" | "IsInf" | "OneHot" | "EyeLike" => vec![false; k],
        "Cast" if attr_i(n, "to").unwrap_or(0) != DataType::Float as i64 => vec![false; k],
        "Reshape" | "Expand" | "Slice" | "Gather" | "GatherElements" | "GatherND" | "Tile" | "Squeeze"
        | "Unsqueeze" | "Pad" | "Resize" | "TopK" | "Clip" | "Trilu" | "ReduceSum" | "ReduceMean" | "ReduceMax"
        | "ReduceMin" | "ReduceL2" | "Split" | "CumSum" | "RotaryEmbedding" => only(0),
        // Attention's mask carries no gradient.
        "Attention" => (0..k).map(|j| j != 3 && j != 6).collect(),
        "Where" => (0..k).map(|j| j > 0).collect(),
        "ScatterElements" | "ScatterND" => (0..k).map(|j| j != 1).collect(),
        _ => vec![true; k],
    }
}

pub(super) fn backward(e: &mut Emit, n: &NodeProto, dys: &[Option<String>], need: &[bool]) -> Grads {
    let domain = n.domain();
    if !(domain.is_empty() || domain == "ai.onnx" || domain == "com.microsoft") {
        return Err(format!("operators of the `{domain}` domain have no rules"));
    }
    let x = input(n, 0);
    let y = n.output.first().map(String::as_str).unwrap_or("");
    match n.op_type() {
        "Identity" | "Dropout" => first(n, dy(dys)?.to_string()),
        "Neg" | "Relu" | "LeakyRelu" | "Sigmoid" | "Tanh" | "Exp" | "Log" | "Sqrt" | "Reciprocal" | "Abs" | "Sin"
        | "Cos" | "Softplus" | "Erf" => unary(e, n, dy(dys)?),
        "Clip" => clip(e, n, dy(dys)?),
        "Gelu" => gelu(e, n, dy(dys)?),
        "Pow" => pow(e, n, dy(dys)?, need),
        "Add" | "Sub" | "Mul" | "Div" => binary(e, n, dy(dys)?, need),
        "Sum" => {
            let g = dy(dys)?;
            Ok(n.input.iter().zip(need).map(|(xi, k)| k.then(|| e.unbroadcast_like(g, y, xi))).collect())
        }
        "MatMul" => matmul(e, n, dy(dys)?, need),
        "Einsum" => super::einsum::einsum(e, n, dy(dys)?, need),
        "Gemm" => gemm(e, n, dy(dys)?, need),
        "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" => {
            let s = e.shape(x);
            first(n, e.op("Reshape", &[dy(dys)?, &s], vec![]))
        }
        "Transpose" => {
            let g = dy(dys)?;
            match attr_ints(n, "perm") {
                Some(p) => {
                    let mut inv = vec![0i64; p.len()];
                    for (i, &a) in p.iter().enumerate() {
                        let a = usize::try_from(a).map_err(|_| "a negative axis in perm".to_string())?;
                        *inv.get_mut(a).ok_or("perm out of range")? = i as i64;
                    }
                    first(n, e.op("Transpose", &[g], vec![ints("perm", &inv)]))
                }
                None => first(n, e.op("Transpose", &[g], vec![])),
            }
        }
        "Expand" => first(n, e.unbroadcast_like(dy(dys)?, y, x)),
        "Where" => {
            let g = dy(dys)?;
            let zero = e.const_f32(0.0);
            let mut out = vec![None; n.input.len()];
            if need.get(1) == Some(&true) {
                let w = e.op("Where", &[x, g, &zero], vec![]);
                out[1] = Some(e.unbroadcast_like(&w, y, input(n, 1)));
            }
            if need.get(2) == Some(&true) {
                let w = e.op("Where", &[x, &zero, g], vec![]);
                out[2] = Some(e.unbroadcast_like(&w, y, input(n, 2)));
            }
            Ok(out)
        }
        "Cast" => {
            // Float to float keeps the gradient; to an integer or bool
            // type there is none (a mask, an index).
            let to = attr_i(n, "to").unwrap_or(0);
            if to == DataType::Float as i64 {
                first(n, dy(dys)?.to_string())
            } else {
                Ok(vec![None; n.input.len()])
            }
        }
        "Softmax" | "LogSoftmax" => softmax(e, n, dy(dys)?),
        "Attention" if domain == "com.microsoft" => super::attention::ms_attention(e, n, dy(dys)?),
        "SkipLayerNormalization" | "SkipSimplifiedLayerNormalization" => super::fused::skip_norm(e, n, dys, need),
        "BiasGelu" | "FastGelu" | "QuickGelu" => super::fused::gelus(e, n, dy(dys)?),
        // ONNX's own (opset 23); com.microsoft's ops of these names differ.
        "Attention" if domain != "com.microsoft" => super::attention::attention(e, n, dys, need),
        "RotaryEmbedding" if domain != "com.microsoft" => super::attention::rotary(e, n, dy(dys)?),
        "ReduceSum" | "ReduceMean" => super::reduce::reduce(e, n, dy(dys)?),
        "ReduceMax" | "ReduceMin" | "ReduceL2" => super::reduce::reduce_picking(e, n, dy(dys)?),
        "Max" | "Min" => super::reduce::extreme(e, n, dy(dys)?, need),
        "Pad" => super::pool::pad(e, n, dy(dys)?),
        "Concat" => concat(e, n, dy(dys)?, need),
        "Split" => split(e, n, dys),
        "Slice" | "Gather" | "GatherElements" | "GatherND" => gather(e, n, dy(dys)?),
        "Conv" => conv(e, n, dy(dys)?),
        "GlobalAveragePool" => {
            let k = e.size_f(x);
            let m = e.size_f(y);
            let count = e.op("Div", &[&k, &m], vec![]);
            let g = e.op("Div", &[dy(dys)?, &count], vec![]);
            let s = e.shape(x);
            first(n, e.op("Expand", &[&g, &s], vec![]))
        }
        "AveragePool" => super::pool::average_pool(e, n, dy(dys)?),
        "MaxPool" => super::pool::max_pool(e, n, dy(dys)?),
        "Resize" => super::pool::resize(e, n, dy(dys)?),
        "BatchNormalization" => batch_norm(e, n, dy(dys)?),
        "LayerNormalization" => norm(e, n, dy(dys)?, true),
        "SimplifiedLayerNormalization" | "RMSNormalization" => norm(e, n, dy(dys)?, false),
        // Integer- and bool-valued results carry no gradient.
        "Shape" | "Size" | "Equal" | "Greater" | "Less" | "GreaterOrEqual" | "LessOrEqual" | "Not" | "And" | "Or"
        | "ArgMax" | "ArgMin" | "NonZero" | "Floor" | "Ceil" | "Round" | "Sign" | "ConstantOfShape" | "Range" => {
            Ok(vec![None; n.input.len()])
        }
        other => Err(format!("Assay has no gradient rule for {other} yet")),
    }
}

/// The elementwise functions of one input: g times the derivative.
fn unary(e: &mut Emit, n: &NodeProto, g: &str) -> Grads {
    let x = input(n, 0);
    let y = n.output.first().map(String::as_str).unwrap_or("");
    match n.op_type() {
        "Neg" => first(n, e.op("Neg", &[g], vec![])),
        "Relu" => {
            let zero = e.const_f32(0.0);
            let pos = e.op("Greater", &[x, &zero], vec![]);
            first(n, e.op("Where", &[&pos, g, &zero], vec![]))
        }
        "LeakyRelu" => {
            let zero = e.const_f32(0.0);
            let alpha = e.const_f32(attr_f(n, "alpha").unwrap_or(0.01));
            let pos = e.op("Greater", &[x, &zero], vec![]);
            let scaled = e.op("Mul", &[g, &alpha], vec![]);
            first(n, e.op("Where", &[&pos, g, &scaled], vec![]))
        }
        "Sigmoid" => {
            let one = e.const_f32(1.0);
            let rest = e.op("Sub", &[&one, y], vec![]);
            let d = e.op("Mul", &[y, &rest], vec![]);
            first(n, e.op("Mul", &[g, &d], vec![]))
        }
        "Tanh" => {
            let one = e.const_f32(1.0);
            let sq = e.op("Mul", &[y, y], vec![]);
            let d = e.op("Sub", &[&one, &sq], vec![]);
            first(n, e.op("Mul", &[g, &d], vec![]))
        }
        "Exp" => first(n, e.op("Mul", &[g, y], vec![])),
        "Log" => first(n, e.op("Div", &[g, x], vec![])),
        "Sqrt" => {
            let two = e.const_f32(2.0);
            let d = e.op("Mul", &[y, &two], vec![]);
            first(n, e.op("Div", &[g, &d], vec![]))
        }
        "Reciprocal" => {
            let sq = e.op("Mul", &[y, y], vec![]);
            let d = e.op("Mul", &[g, &sq], vec![]);
            first(n, e.op("Neg", &[&d], vec![]))
        }
        "Abs" => {
            let s = e.op("Sign", &[x], vec![]);
            first(n, e.op("Mul", &[g, &s], vec![]))
        }
        "Sin" => {
            let c = e.op("Cos", &[x], vec![]);
            first(n, e.op("Mul", &[g, &c], vec![]))
        }
        "Cos" => {
            let s = e.op("Sin", &[x], vec![]);
            let d = e.op("Mul", &[g, &s], vec![]);
            first(n, e.op("Neg", &[&d], vec![]))
        }
        "Softplus" => {
            let s = e.op("Sigmoid", &[x], vec![]);
            first(n, e.op("Mul", &[g, &s], vec![]))
        }
        "Erf" => {
            // d erf(x) = 2/sqrt(pi) exp(-x^2)
            let sq = e.op("Mul", &[x, x], vec![]);
            let neg = e.op("Neg", &[&sq], vec![]);
            let ex = e.op("Exp", &[&neg], vec![]);
            let k = e.const_f32(std::f32::consts::FRAC_2_SQRT_PI);
            let d = e.op("Mul", &[&ex, &k], vec![]);
            first(n, e.op("Mul", &[g, &d], vec![]))
        }
        other => Err(format!("{other} is not elementwise")),
    }
}

fn clip(e: &mut Emit, n: &NodeProto, g: &str) -> Grads {
    let x = input(n, 0);
    // Bounds are inputs from opset 11 (attributes before).
    let lo = match input(n, 1) {
        "" => attr_f(n, "min").map(|v| e.const_f32(v)),
        s => Some(s.to_string()),
    };
    let hi = match input(n, 2) {
        "" => attr_f(n, "max").map(|v| e.const_f32(v)),
        s => Some(s.to_string()),
    };
    // Inside the bounds, strictly (torch's hardtanh, ReLU6).
    let mut mask: Option<String> = None;
    for (b, op) in [(lo, "Greater"), (hi, "Less")] {
        if let Some(b) = b {
            let m = e.op(op, &[x, &b], vec![]);
            mask = Some(match mask {
                Some(prev) => e.op("And", &[&prev, &m], vec![]),
                None => m,
            });
        }
    }
    match mask {
        Some(m) => {
            let zero = e.const_f32(0.0);
            first(n, e.op("Where", &[&m, g, &zero], vec![]))
        }
        None => first(n, g.to_string()),
    }
}

fn gelu(e: &mut Emit, n: &NodeProto, g: &str) -> Grads {
    let tanh = match attr_s(n, "approximate").as_deref() {
        None | Some("none") => false,
        Some("tanh") => true,
        Some(other) => return Err(format!("approximate `{other}` has no rule")),
    };
    let d = gelu_derivative(e, input(n, 0), tanh);
    first(n, e.op("Mul", &[g, &d], vec![]))
}

fn pow(e: &mut Emit, n: &NodeProto, g: &str, need: &[bool]) -> Grads {
    let (x, p) = (input(n, 0), input(n, 1));
    let y = n.output.first().map(String::as_str).unwrap_or("");
    let mut out = vec![None; n.input.len()];
    if need.first() == Some(&true) {
        // p · x^(p-1)
        let pf = e.cast(p, DataType::Float);
        let one = e.const_f32(1.0);
        let pm = e.op("Sub", &[&pf, &one], vec![]);
        let xp = e.op("Pow", &[x, &pm], vec![]);
        let d = e.op("Mul", &[&xp, &pf], vec![]);
        let gx = e.op("Mul", &[g, &d], vec![]);
        out[0] = Some(e.unbroadcast(&gx, x));
    }
    if need.get(1) == Some(&true) {
        let l = e.op("Log", &[x], vec![]);
        let d = e.op("Mul", &[y, &l], vec![]);
        let gp = e.op("Mul", &[g, &d], vec![]);
        out[1] = Some(e.unbroadcast(&gp, p));
    }
    Ok(out)
}

fn binary(e: &mut Emit, n: &NodeProto, g: &str, need: &[bool]) -> Grads {
    let (a, b) = (input(n, 0), input(n, 1));
    let y = n.output.first().map(String::as_str).unwrap_or("");
    let mut out = vec![None; n.input.len()];
    let op = n.op_type();
    if need.first() == Some(&true) {
        let ga = match op {
            "Add" | "Sub" => g.to_string(),
            "Mul" => e.op("Mul", &[g, b], vec![]),
            _ => e.op("Div", &[g, b], vec![]),
        };
        out[0] = Some(e.unbroadcast_like(&ga, y, a));
    }
    if need.get(1) == Some(&true) {
        let gb = match op {
            "Add" => g.to_string(),
            "Sub" => e.op("Neg", &[g], vec![]),
            "Mul" => e.op("Mul", &[g, a], vec![]),
            _ => {
                // d(a/b)/db = -a/b^2 = -y/b
                let q = e.op("Div", &[y, b], vec![]);
                let t = e.op("Mul", &[g, &q], vec![]);
                e.op("Neg", &[&t], vec![])
            }
        };
        out[1] = Some(e.unbroadcast_like(&gb, y, b));
    }
    Ok(out)
}

fn einsum(e: &mut Emit, eq: &str, a: &str, b: &str) -> String {
    e.op("Einsum", &[a, b], vec![string("equation", eq)])
}

fn matmul(e: &mut Emit, n: &NodeProto, g: &str, need: &[bool]) -> Grads {
    let (a, b) = (input(n, 0), input(n, 1));
    let mut out = vec![None; n.input.len()];
    // Batched over leading axes (broadcast, as MatMul does), both at
    // least 2-D in exports: dA = g·Bᵀ, dB = Aᵀ·g, summed over the axes
    // each was broadcast along.
    if need.first() == Some(&true) {
        let bt = swap_last(e, b);
        let ga = e.op("MatMul", &[g, &bt], vec![]);
        out[0] = Some(matmul_unbroadcast(e, &ga, a, b));
    }
    if need.get(1) == Some(&true) {
        let at = swap_last(e, a);
        let gb = e.op("MatMul", &[&at, g], vec![]);
        out[1] = Some(matmul_unbroadcast(e, &gb, b, a));
    }
    Ok(out)
}

/// A MatMul operand's gradient summed over the batch axes it was
/// broadcast along: none when the operand has at least the other's rank
/// (its batch axes are the output's), e.g. activations times a weight.
fn matmul_unbroadcast(e: &mut Emit, g: &str, x: &str, other: &str) -> String {
    match (e.ranks.get(x).copied(), e.ranks.get(other).copied()) {
        (Some(rx), Some(ro)) if rx >= ro && rx >= 2 && e.shapes.contains_key(x) && e.shapes.contains_key(other) => {
            let (sx, so) = (e.shapes[x].clone(), e.shapes[other].clone());
            // The batch axes of x must be the output's: same as other's
            // where both have them.
            let lead = rx - ro;
            let same = (0..ro.saturating_sub(2)).all(|i| sx[lead + i].same(&so[i]) || so[i] == Dim::Fixed(1));
            if same {
                g.to_string()
            } else {
                e.unbroadcast(g, x)
            }
        }
        _ => e.unbroadcast(g, x),
    }
}

/// `x` with its last two axes swapped: a Transpose where its rank is
/// known (a weight's, folded once when the session is built), else an
/// Einsum.
fn swap_last(e: &mut Emit, x: &str) -> String {
    match e.ranks.get(x) {
        Some(&r) if r >= 2 => {
            let mut perm: Vec<i64> = (0..r as i64).collect();
            perm.swap(r - 2, r - 1);
            e.op("Transpose", &[x], vec![ints("perm", &perm)])
        }
        _ => e.op("Einsum", &[x], vec![string("equation", "...ij->...ji")]),
    }
}

fn gemm(e: &mut Emit, n: &NodeProto, g: &str, need: &[bool]) -> Grads {
    let (a, b, c) = (input(n, 0), input(n, 1), input(n, 2));
    let alpha = attr_f(n, "alpha").unwrap_or(1.0);
    let beta = attr_f(n, "beta").unwrap_or(1.0);
    let (ta, tb) = (attr_i(n, "transA").unwrap_or(0) != 0, attr_i(n, "transB").unwrap_or(0) != 0);
    let mut out = vec![None; n.input.len()];
    let scale = |e: &mut Emit, x: String, k: f32| {
        if k == 1.0 {
            x
        } else {
            let kk = e.const_f32(k);
            e.op("Mul", &[&x, &kk], vec![])
        }
    };
    // Y = alpha·A'·B' + beta·C with A' = A or Aᵀ, B' = B or Bᵀ.
    if need.first() == Some(&true) {
        // dA' = g·B'ᵀ, then transposed back where A' = Aᵀ.
        let ga = match (ta, tb) {
            (false, false) => einsum(e, "ij,kj->ik", g, b),
            (false, true) => einsum(e, "ij,jk->ik", g, b),
            (true, false) => einsum(e, "ij,kj->ki", g, b),
            (true, true) => einsum(e, "ij,jk->ki", g, b),
        };
        out[0] = Some(scale(e, ga, alpha));
    }
    if need.get(1) == Some(&true) {
        let gb = match (ta, tb) {
            (false, false) => einsum(e, "ki,kj->ij", a, g),
            (false, true) => einsum(e, "ki,kj->ji", a, g),
            (true, false) => einsum(e, "ik,kj->ij", a, g),
            (true, true) => einsum(e, "ik,kj->ji", a, g),
        };
        out[1] = Some(scale(e, gb, alpha));
    }
    if need.get(2) == Some(&true) {
        let gc = e.unbroadcast(g, c);
        out[2] = Some(scale(e, gc, beta));
    }
    Ok(out)
}

/// The axis a softmax normalises over, and whether the opset flattens
/// the axes from it on (before opset 13).
fn softmax(e: &mut Emit, n: &NodeProto, g: &str) -> Grads {
    let x = input(n, 0);
    let y = n.output.first().map(String::as_str).unwrap_or("");
    let old = e.opset < 13;
    let axis = attr_i(n, "axis").unwrap_or(if old { 1 } else { -1 });
    // Before opset 13 the axes from `axis` on are one: work on the
    // [outer, inner] view and reshape back.
    let (gv, yv, ax) = if old {
        let f = vec![int("axis", axis)];
        (e.op("Flatten", &[g], f.clone()), e.op("Flatten", &[y], f), 1)
    } else {
        (g.to_string(), y.to_string(), axis)
    };
    let d = if n.op_type() == "Softmax" {
        // y·(g − Σ g·y)
        let gy = e.op("Mul", &[&gv, &yv], vec![]);
        let s = e.reduce("ReduceSum", &gy, &[ax], true);
        let c = e.op("Sub", &[&gv, &s], vec![]);
        e.op("Mul", &[&yv, &c], vec![])
    } else {
        // g − exp(y)·Σ g
        let s = e.reduce("ReduceSum", &gv, &[ax], true);
        let p = e.op("Exp", &[&yv], vec![]);
        let t = e.op("Mul", &[&p, &s], vec![]);
        e.op("Sub", &[&gv, &t], vec![])
    };
    if old {
        let s = e.shape(x);
        first(n, e.op("Reshape", &[&d, &s], vec![]))
    } else {
        first(n, d)
    }
}

fn concat(e: &mut Emit, n: &NodeProto, g: &str, need: &[bool]) -> Grads {
    let axis = attr_i(n, "axis").ok_or("Concat has no axis")?;
    let ax = e.const_i64s(&[axis]);
    let idx = e.const_i64s(&[axis]);
    let mut start = e.const_i64s(&[0]);
    let mut out = vec![None; n.input.len()];
    for (i, xi) in n.input.iter().enumerate() {
        let s = e.shape(xi);
        let len = e.op("Gather", &[&s, &idx], vec![int("axis", 0)]);
        let end = e.op("Add", &[&start, &len], vec![]);
        if need.get(i) == Some(&true) {
            out[i] = Some(e.op("Slice", &[g, &start, &end, &ax], vec![]));
        }
        start = end;
    }
    Ok(out)
}

fn split(e: &mut Emit, n: &NodeProto, dys: &[Option<String>]) -> Grads {
    let axis = attr_i(n, "axis").unwrap_or(0);
    let mut parts = Vec::new();
    for (o, d) in n.output.iter().zip(dys) {
        parts.push(match d {
            Some(d) => d.clone(),
            None => {
                let s = e.shape(o);
                e.zeros(&s)
            }
        });
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    first(n, e.op("Concat", &refs, vec![int("axis", axis)]))
}

/// Slice, Gather and GatherElements pick elements of their first input:
/// the same op on the flat indices of that input says which, and the
/// gradient is scattered back there (added where an index repeats).
fn gather(e: &mut Emit, n: &NodeProto, g: &str) -> Grads {
    let x = input(n, 0);
    let s = e.shape(x);
    let size = e.op("Size", &[x], vec![]);
    let zero = e.const_i64(0);
    let one = e.const_i64(1);
    let flat = e.op("Range", &[&zero, &size, &one], vec![]);
    let ids = e.op("Reshape", &[&flat, &s], vec![]);
    let mut inputs: Vec<&str> = n.input.iter().map(String::as_str).collect();
    inputs[0] = &ids;
    let picked = e.clone_node(n, &inputs).into_iter().next().ok_or("no output")?;
    let minus = e.const_i64s(&[-1]);
    let picked = e.op("Reshape", &[&picked, &minus], vec![]);
    let gf = e.op("Reshape", &[g, &minus], vec![]);
    let sizes = e.op("Reshape", &[&size, &minus], vec![]);
    let zeros = e.zeros(&sizes);
    // Slice picks each element once; Gather may repeat one, unless its
    // indices are constants without repeats (a rotary embedding's halves).
    let unique_consts = |e: &Emit| {
        e.consts.get(input(n, 1)).is_some_and(|v| {
            let mut s = v.clone();
            s.sort_unstable();
            s.dedup();
            s.len() == v.len() && v.iter().all(|i| *i >= 0)
        })
    };
    let repeats = match n.op_type() {
        "Slice" => false,
        // GatherND's index tuples are not checked for repeats.
        "Gather" => !unique_consts(e),
        _ => true,
    };
    let dx = scatter_add(e, n, [&zeros, &picked, &gf], repeats)?;
    first(n, e.op("Reshape", &[&dx, &s], vec![]))
}

fn conv(e: &mut Emit, n: &NodeProto, g: &str) -> Grads {
    let (x, w) = (input(n, 0), input(n, 1));
    match attr_s(n, "auto_pad").as_deref() {
        None | Some("NOTSET") | Some("VALID") => {}
        Some(other) => return Err(format!("auto_pad {other} has no rule (explicit pads do)")),
    }
    let mut attrs = Vec::new();
    for k in ["strides", "dilations", "pads", "kernel_shape"] {
        if let Some(v) = attr_ints(n, k) {
            attrs.push(ints(k, &v));
        }
    }
    attrs.push(int("group", attr_i(n, "group").unwrap_or(1)));
    let dx = e.op("ConvTranspose", &[g, w], attrs);
    let sx = e.shape(x);
    first(n, pad_spatial(e, &dx, &sx))
}

fn batch_norm(e: &mut Emit, n: &NodeProto, g: &str) -> Grads {
    if attr_i(n, "training_mode").unwrap_or(0) != 0 || n.output.len() > 1 {
        return Err("only inference (running statistics) has a rule".into());
    }
    let (x, scale, var) = (input(n, 0), input(n, 1), input(n, 4));
    let eps = e.const_f32(attr_f(n, "epsilon").unwrap_or(1e-5));
    let v = e.op("Add", &[var, &eps], vec![]);
    let sd = e.op("Sqrt", &[&v], vec![]);
    let f = e.op("Div", &[scale, &sd], vec![]);
    // [C] as [1, C, 1, ...] for x's rank.
    let sx = e.shape(x);
    let rank = e.shape(&sx);
    let two = e.const_i64s(&[2]);
    let rest = e.op("Sub", &[&rank, &two], vec![]);
    let ones = e.ones_i64(&rest);
    let lead = e.const_i64s(&[1, -1]);
    let shape = e.op("Concat", &[&lead, &ones], vec![int("axis", 0)]);
    let f = e.op("Reshape", &[&f, &shape], vec![]);
    first(n, e.op("Mul", &[g, &f], vec![]))
}

/// LayerNormalization (centred) and RMS normalisation (not), over the
/// axes from `axis` on, with the scale input 1.
fn norm(e: &mut Emit, n: &NodeProto, g: &str, centred: bool) -> Grads {
    let axis = attr_i(n, "axis").unwrap_or(-1);
    let eps = attr_f(n, "epsilon").unwrap_or(1e-5);
    first(n, norm_grad(e, [input(n, 0), input(n, 1), g], axis, eps, centred))
}
