//! What the backward rules share: a node's attributes and inputs, their
//! results' form, and the pieces of graph several rules emit (scattering
//! gradients back to flat indices, padding a transposed convolution's
//! result to its input's size).

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
