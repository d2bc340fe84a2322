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
    let x = input(n, 0);
    let sx = e.shape(x);
    let flat = e.const_i64s(&[-1]);
    let size = e.op("Size", &[x], vec![]);
    let (zero, one) = (e.const_i64(0), e.const_i64(1));
    let iota = e.op("Range", &[&zero, &size, &one], vec![]);
    let iota = e.cast(&iota, DataType::Int32);
    let iota = e.op("Reshape", &[&iota, &sx], vec![]);
    let mut inputs: Vec<&str> = vec![&iota];
    inputs.extend(n.input.iter().skip(1).map(String::as_str));
    let picked = e.clone_node(n, &inputs);
    let picked = picked.first().ok_or("Resize gave no output")?;
    let idx = e.cast(picked, DataType::Int64);
    let idx = e.op("Reshape", &[&idx, &flat], vec![]);
    let size = e.op("Reshape", &[&size, &flat], vec![]);
    let zeros = e.zeros(&size);
    let gf = e.op("Reshape", &[g, &flat], vec![]);
    // Upsampling copies an input to several outputs.
    let dx = scatter_add(e, n, [&zeros, &idx, &gf], true)?;
    first(n, e.op("Reshape", &[&dx, &sx], vec![]))
}
