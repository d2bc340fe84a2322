//! Rules for pooling and resampling: average pooling spreads each output's
//! gradient over its window (a transposed convolution of ones); max pooling
//! and nearest-neighbour resizing send it to the input each output copied
//! (from the op's indices, or from the op applied to the inputs' indices).

use super::emit::{int, ints};
use super::node::{attr_i, attr_ints, attr_s, first, input, pad_spatial, scatter_add, Grads};
use super::Emit;
use crate::onnx::proto::{tensor_proto::DataType, NodeProto};

pub(super) fn average_pool(e: &mut Emit, n: &NodeProto, g: &str) -> Grads {
    let x = input(n, 0);
    if attr_i(n, "ceil_mode").unwrap_or(0) != 0 {
        return Err("ceil_mode has no rule".into());
    }
    match attr_s(n, "auto_pad").as_deref() {
        None | Some("NOTSET") | Some("VALID") => {}
        Some(other) => return Err(format!("auto_pad {other} has no rule (explicit pads do)")),
    }
    let k = attr_ints(n, "kernel_shape").ok_or("AveragePool has no kernel_shape")?;
    let area: i64 = k.iter().product();
    let mut attrs = vec![ints("kernel_shape", &k)];
    for a in ["strides", "pads"] {
        if let Some(v) = attr_ints(n, a) {
            attrs.push(ints(a, &v));
        }
    }
    // Each output averaged over its window's valid inputs (or all, with
    // count_include_pad): the count per output, from a pool over ones.
    let sx = e.shape(x);
    let two = e.const_i64s(&[2]);
    let big = e.const_i64s(&[i64::MAX]);
    let spatial = e.op("Slice", &[&sx, &two, &big], vec![]);
    let lead = e.const_i64s(&[1, 1]);
    let one_shape = e.op("Concat", &[&lead, &spatial], vec![int("axis", 0)]);
    let ones = e.filled(&one_shape, 1.0);
    let count = if attr_i(n, "count_include_pad").unwrap_or(0) != 0 {
        e.const_f32(area as f32)
    } else {
        let mut a = attrs.clone();
        a.push(int("count_include_pad", 1));
        let frac = e.op("AveragePool", &[&ones], a);
        let kk = e.const_f32(area as f32);
        e.op("Mul", &[&frac, &kk], vec![])
    };
    let gd = e.op("Div", &[g, &count], vec![]);
    // [N, C, ...] as [N·C, 1, ...], spread by a transposed convolution of ones.
    let sg = e.shape(&gd);
    let flat = e.const_i64s(&[-1, 1]);
    let sg_sp = e.op("Slice", &[&sg, &two, &big], vec![]);
    let view = e.op("Concat", &[&flat, &sg_sp], vec![int("axis", 0)]);
    let g1 = e.op("Reshape", &[&gd, &view], vec![]);
    let kernel_shape: Vec<i64> = [1, 1].iter().copied().chain(k.iter().copied()).collect();
    let kshape = e.const_i64s(&kernel_shape);
    let kernel = e.filled(&kshape, 1.0);
    let mut ct = Vec::new();
    for a in ["strides", "pads"] {
        if let Some(v) = attr_ints(n, a) {
            ct.push(ints(a, &v));
        }
    }
    let dx = e.op("ConvTranspose", &[&g1, &kernel], ct);
    let dx = pad_spatial(e, &dx, &sx);
    first(n, e.op("Reshape", &[&dx, &sx], vec![]))
}

/// MaxPool: the gradient goes to the input each output took its value
/// from. A second MaxPool of the same input and attributes gives the
/// indices (flat over the whole input, as ONNX defines them), and the
/// gradient is scattered there, summed where windows share a maximum.
pub(super) fn max_pool(e: &mut Emit, n: &NodeProto, g: &str) -> Grads {
    if attr_i(n, "storage_order").unwrap_or(0) != 0 {
        return Err("storage_order 1 (column-major indices) has no rule".into());
    }
    let x = input(n, 0);
    let indices = match n.output.get(1).filter(|o| !o.is_empty()) {
        Some(i) => i.clone(),
        None => {
            let mut with_indices = n.clone();
            with_indices.output = vec![String::new(), String::new()];
            let outs = e.clone_node(&with_indices, &[x]);
            outs.get(1).cloned().ok_or("MaxPool gave no indices")?
        }
    };
    let sx = e.shape(x);
    let flat = e.const_i64s(&[-1]);
    let size = e.op("Size", &[x], vec![]);
    let size = e.op("Reshape", &[&size, &flat], vec![]);
    let zeros = e.zeros(&size);
    let idx = e.op("Reshape", &[&indices, &flat], vec![]);
    let gf = e.op("Reshape", &[g, &flat], vec![]);
    // Windows that overlap (a kernel longer than its stride) may share a maximum.
    let k = attr_ints(n, "kernel_shape").ok_or("MaxPool has no kernel_shape")?;
    let strides = attr_ints(n, "strides").unwrap_or_else(|| vec![1; k.len()]);
    let dilated = attr_ints(n, "dilations").is_some_and(|d| d.iter().any(|v| *v != 1));
    let overlap = dilated || k.iter().zip(&strides).any(|(k, s)| k > s);
    let dx = scatter_add(e, n, [&zeros, &idx, &gf], overlap)?;
    first(n, e.op("Reshape", &[&dx, &sx], vec![]))
}

/// Resize in nearest mode: each output copies one input, found by resizing
/// the input's own flat indices (int32, exact) with the same op; the
/// gradient is scattered back there. Interpolating modes have no rule.
pub(super) fn resize(e: &mut Emit, n: &NodeProto, g: &str) -> Grads {
    let mode = attr_s(n, "mode").unwrap_or_else(|| "nearest".into());
    if mode != "nearest" {
        return Err(format!("Resize in `{mode}` mode has no rule (nearest has)"));
    }
    let mut inputs: Vec<&str> = n.input.iter().skip(1).map(String::as_str).collect();
    inputs.insert(0, "");
    scatter_through(e, n, g, &inputs)
}

/// For operators that copy inputs to outputs by position (nearest
/// resizing, edge or reflect padding): the node applied to the input's own
/// flat indices (int32, exact; `inputs` are its inputs with the first
/// replaced) says where each output came from, and the gradient is
/// scattered back there, added where an input was copied twice.
fn scatter_through(e: &mut Emit, n: &NodeProto, g: &str, inputs: &[&str]) -> Grads {
    let x = input(n, 0);
    let sx = e.shape(x);
    let flat = e.const_i64s(&[-1]);
    let size = e.op("Size", &[x], vec![]);
    let (zero, one) = (e.const_i64(0), e.const_i64(1));
    let iota = e.op("Range", &[&zero, &size, &one], vec![]);
    let iota = e.cast(&iota, DataType::Int32);
    let iota = e.op("Reshape", &[&iota, &sx], vec![]);
    let mut inputs = inputs.to_vec();
    inputs[0] = &iota;
    let picked = e.clone_node(n, &inputs);
    let picked = picked.first().ok_or("the node gave no output")?;
    let idx = e.cast(picked, DataType::Int64);
    let idx = e.op("Reshape", &[&idx, &flat], vec![]);
    let size = e.op("Reshape", &[&size, &flat], vec![]);
    let zeros = e.zeros(&size);
    let gf = e.op("Reshape", &[g, &flat], vec![]);
    let dx = scatter_add(e, n, [&zeros, &idx, &gf], true)?;
    first(n, e.op("Reshape", &[&dx, &sx], vec![]))
}

/// Pad. In constant mode the gradient is the padded gradient cropped back,
/// which is Pad with the pads negated (a negative pad crops; a forward
/// crop becomes zeros); edge and reflect modes: [`pad_copies`].
pub(super) fn pad(e: &mut Emit, n: &NodeProto, g: &str) -> Grads {
    let mode = attr_s(n, "mode").unwrap_or_else(|| "constant".into());
    if mode != "constant" {
        return pad_copies(e, n, g, &mode);
    }
    if e.opset < 11 {
        let pads = attr_ints(n, "pads").ok_or("Pad has no pads")?;
        let neg: Vec<i64> = pads.iter().map(|p| -p).collect();
        return first(n, e.op("Pad", &[g], vec![ints("pads", &neg)]));
    }
    let neg = e.op("Neg", &[input(n, 1)], vec![]);
    let axes = input(n, 3);
    let inputs: Vec<&str> = if axes.is_empty() { vec![g, &neg] } else { vec![g, &neg, "", axes] };
    first(n, e.op("Pad", &inputs, vec![]))
}

/// Pad in edge or reflect mode, axis by axis (pads known before the run):
/// the gradient cropped to the input, plus what each padded border copied
/// from it: in edge mode the border's sum onto the first (last) element,
/// in reflect mode the border reversed onto the elements after the first
/// (before the last).
fn pad_copies(e: &mut Emit, n: &NodeProto, g: &str, mode: &str) -> Grads {
    if mode != "edge" && mode != "reflect" {
        return Err(format!("Pad in `{mode}` mode has no rule (constant, edge and reflect have)"));
    }
    let pads = if e.opset < 11 { attr_ints(n, "pads") } else { e.consts.get(input(n, 1)).cloned() };
    let pads = pads.ok_or("Pad's pads are not known before the run")?;
    let r = pads.len() / 2;
    let axes: Vec<i64> = match input(n, 3) {
        "" => (0..r as i64).collect(),
        a => e.consts.get(a).cloned().ok_or("Pad's axes are not known before the run")?,
    };
    if pads.iter().any(|p| *p < 0) {
        return Err(format!("Pad in `{mode}` mode with a negative pad has no rule"));
    }
    let mut d = g.to_string();
    for (i, &axis) in axes.iter().enumerate() {
        let (b, a) = (pads[i], pads[i + r]);
        if b == 0 && a == 0 {
            continue;
        }
        let cut = |e: &mut Emit, t: &str, from: i64, to: i64| {
            let (f, t2, ax) = (e.const_i64s(&[from]), e.const_i64s(&[to]), e.const_i64s(&[axis]));
            e.op("Slice", &[t, &f, &t2, &ax], vec![])
        };
        let reversed = |e: &mut Emit, t: &str| {
            let (f, t2, ax, step) =
                (e.const_i64s(&[-1]), e.const_i64s(&[i64::MIN]), e.const_i64s(&[axis]), e.const_i64s(&[-1]));
            e.op("Slice", &[t, &f, &t2, &ax, &step], vec![])
        };
        let inner = cut(e, &d, b, if a > 0 { -a } else { i64::MAX });
        let zero = e.const_f32(0.0);
        let z = e.op("Mul", &[&inner, &zero], vec![]);
        let mut parts = vec![inner.clone()];
        let cat = |e: &mut Emit, ts: &[&str]| e.op("Concat", ts, vec![int("axis", axis)]);
        if b > 0 {
            let border = cut(e, &d, 0, b);
            parts.push(if mode == "edge" {
                let s = e.reduce("ReduceSum", &border, &[axis], true);
                let rest = cut(e, &z, 1, i64::MAX);
                cat(e, &[&s, &rest])
            } else {
                let rev = reversed(e, &border);
                let (head, rest) = (cut(e, &z, 0, 1), cut(e, &z, b + 1, i64::MAX));
                cat(e, &[&head, &rev, &rest])
            });
        }
        if a > 0 {
            let border = cut(e, &d, -a, i64::MAX);
            parts.push(if mode == "edge" {
                let s = e.reduce("ReduceSum", &border, &[axis], true);
                let rest = cut(e, &z, 0, -1);
                cat(e, &[&rest, &s])
            } else {
                let rev = reversed(e, &border);
                let (rest, tail) = (cut(e, &z, 0, -(a + 1)), cut(e, &z, -1, i64::MAX));
                cat(e, &[&rest, &rev, &tail])
            });
        }
        d = e.sum(parts);
    }
    first(n, d)
}
