//! Names for the dimensions of every tensor a built-in graph computes.
//!
//! ONNX Runtime's shape inference leaves most of a language model's
//! intermediate dimensions unknown (a Reshape to a computed shape, a Slice
//! to computed bounds, a Concat of two symbolic lengths), and its
//! memory-reuse planner then finds no buffer of provably equal size and
//! scans every freed one for each tensor: on SmolLM2 that planning was most
//! of building a session (`benches/sessions/build.sh`, Python ONNX Runtime
//! 1.31.1: 1.61 s as built, 0.49 s with every tensor's dims named, the
//! logits byte-identical; `benches/sessions/named.sh`, Assay: `onnx()` of
//! the graph 2.75 s stripped, 1.67 s named, the same records). Its C API
//! cannot turn the planning off, so Assay names
//! the dims of the graphs it builds itself: it runs the graph with every
//! tensor exposed at a few input sizes and writes each tensor's shape as
//! `value_info`, each dimension a number where it never changed or the
//! input dimension it always equalled (`N`, `T`, `P`, `P+T`). A dimension
//! that followed none (none does in Assay's graphs) is left unnamed.
//!
//! Only graphs Assay builds are named this way: their shapes follow their
//! inputs' by construction. The rewritten graphs of hooks forget what is
//! stated of every tensor downstream of a patched, added or sliced one
//! (`graph::forget_downstream`), whose shapes may change.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::ArrayD;

use crate::onnx::graph;
use crate::onnx::graph::tensor_type;
use crate::onnx::model::{HookSet, Model, Provider};
use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::proto::tensor_shape_proto::dimension::Value as DimValue;
use crate::onnx::proto::{type_proto, ModelProto, TypeProto, ValueInfoProto};

/// One run of the graph: its inputs, and the value each symbol has in it.
pub(crate) struct Probe {
    pub feeds: Vec<(String, ArrayD<f32>)>,
    pub values: Vec<i64>,
}

/// `model` (its external weights beside `path`) with `value_info` for every
/// tensor its nodes compute, found by running `probes`; `symbols[k]` names
/// a dimension equal to `Probe::values[k]` in every probe.
pub(crate) fn name_dims(
    model: ModelProto,
    path: &Path,
    symbols: &[&str],
    probes: Vec<Probe>,
) -> Result<ModelProto, String> {
    let Some(g) = model.graph.as_ref() else { return Ok(model) };
    let outputs: std::collections::HashSet<&str> = g.output.iter().map(|o| o.name()).collect();
    let mut names: Vec<String> = g
        .node
        .iter()
        .flat_map(|n| n.output.iter())
        .filter(|o| !o.is_empty() && !outputs.contains(o.as_str()))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    let bytes = graph::encode(&model);
    let m = Model::load_deferred(path, "dims", &bytes, String::new(), Provider::Cpu).map_err(|e| e.to_string())?;
    let key = HookSet::Capture(names.clone());
    let mut shapes: Vec<BTreeMap<String, Vec<usize>>> = Vec::new();
    let mut values = Vec::new();
    for p in probes {
        let out = m.run(&key, || graph::expose(&model, &names), p.feeds, &names).map_err(|e| e.to_string())?;
        shapes.push(out.into_iter().map(|(k, v)| (k, v.shape().to_vec())).collect());
        values.push(p.values);
    }
    let ports = m.every_tensor().map_err(|e| e.to_string())?;
    let mut stated = Vec::new();
    for name in &names {
        let Some(elem) = ports.iter().find(|p| p.name == *name).and_then(|p| p.elem) else { continue };
        let seen: Option<Vec<&Vec<usize>>> = shapes.iter().map(|s| s.get(name)).collect();
        let Some(dims) = seen.and_then(|seen| dims_of(&seen, &values, symbols)) else { continue };
        let fixed: Vec<Option<i64>> = dims.iter().map(|d| d.parse().ok()).collect();
        let named: Vec<&str> = dims.iter().map(String::as_str).collect();
        stated.push(ValueInfoProto {
            name: Some(name.clone()),
            r#type: Some(dyn_type(elem_type(elem), &fixed, &named)),
            doc_string: Some(graph::NAMED_DIMS.into()),
            ..Default::default()
        });
    }
    let mut model = model;
    if let Some(g) = model.graph.as_mut() {
        g.value_info.retain(|v| !stated.iter().any(|s| s.name == v.name));
        g.value_info.extend(stated);
    }
    Ok(model)
}

/// A tensor's dims from its shapes in every probe: a number where it never
/// changed, else the symbol it equalled in every probe; `None` if the rank
/// changed or a dim followed no symbol.
fn dims_of(seen: &[&Vec<usize>], values: &[Vec<i64>], symbols: &[&str]) -> Option<Vec<String>> {
    let rank = seen.first()?.len();
    if seen.iter().any(|s| s.len() != rank) {
        return None;
    }
    (0..rank)
        .map(|k| {
            let at: Vec<i64> = seen.iter().map(|s| s[k] as i64).collect();
            if at.iter().all(|v| *v == at[0]) {
                return Some(at[0].to_string());
            }
            (0..symbols.len())
                .find(|&j| values.iter().zip(&at).all(|(vals, v)| vals.get(j) == Some(v)))
                .map(|j| symbols[j].to_string())
        })
        .collect()
}

/// A tensor type whose dims are numbers (`Some`) or the names given
/// (`None`; an empty name: unknown, promised equal to nothing else).
pub(crate) fn dyn_type(elem: DataType, dims: &[Option<i64>], names: &[&str]) -> TypeProto {
    let mut t = tensor_type(elem as i32, Some(&vec![1; dims.len()]));
    if let Some(type_proto::Value::TensorType(tt)) = &mut t.value {
        if let Some(shape) = &mut tt.shape {
            for (i, d) in dims.iter().enumerate() {
                // Unnamed: unknown, promised equal to nothing else.
                shape.dim[i].value = match d {
                    Some(n) => Some(DimValue::DimValue(*n)),
                    None if names[i].is_empty() => None,
                    None => Some(DimValue::DimParam(names[i].into())),
                };
            }
        }
    }
    t
}

fn elem_type(t: ort::value::TensorElementType) -> DataType {
    use ort::value::TensorElementType as E;
    use DataType as D;
    match t {
        E::Float32 => D::Float,
        E::Int64 => D::Int64,
        E::Int32 => D::Int32,
        E::Bool => D::Bool,
        E::Float16 => D::Float16,
        E::Float64 => D::Double,
        E::Uint8 => D::Uint8,
        E::Int8 => D::Int8,
        _ => D::Undefined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dim_is_a_number_or_the_symbol_it_always_equalled() {
        let values = vec![vec![2, 5, 11, 16], vec![3, 7, 13, 20], vec![5, 3, 0, 3]];
        let symbols = ["N", "T", "P", "P+T"];
        let shapes = [vec![2, 9, 5, 64], vec![3, 9, 7, 64], vec![5, 9, 3, 64]];
        let seen: Vec<&Vec<usize>> = shapes.iter().collect();
        assert_eq!(dims_of(&seen, &values, &symbols).unwrap(), ["N", "9", "T", "64"]);
        // P+T is told from T by the probes with a past.
        let shapes = [vec![16], vec![20], vec![3]];
        let seen: Vec<&Vec<usize>> = shapes.iter().collect();
        assert_eq!(dims_of(&seen, &values, &symbols).unwrap(), ["P+T"]);
        // A dim that follows nothing (here 2T) names nothing.
        let shapes = [vec![10], vec![14], vec![6]];
        let seen: Vec<&Vec<usize>> = shapes.iter().collect();
        assert_eq!(dims_of(&seen, &values, &symbols), None);
        // Nor does a rank that changed.
        let shapes = [vec![1, 2], vec![1, 2, 3], vec![1, 2]];
        let seen: Vec<&Vec<usize>> = shapes.iter().collect();
        assert_eq!(dims_of(&seen, &values, &symbols), None);
    }
}
