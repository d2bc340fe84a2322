//! Reverse-mode gradients as ONNX: given a model, the tensors to
//! differentiate with respect to (`wrt`: graph inputs or any intermediate
//! tensor) and a metric tensor `T`, appends the backward graph, made of
//! standard ONNX operators only, so that the same ONNX Runtime that runs the
//! model runs its gradient.
//!
//! The metric is a weighted sum of elements of `T`: the graph takes
//! `assay.grad.indices` [K, rank(T)] (float, cast to int64 inside; negative
//! indices count from the end of each axis) and `assay.grad.weights` [K],
//! and seeds the backward pass with the tensor that holds those weights at
//! those places (a logit, a logit difference, a unit's activation). Its
//! outputs are `T` itself (for the metric's value), `assay.grad/NAME` for
//! each `wrt` tensor, shaped as that tensor, and each intermediate `wrt`
//! tensor's own value.
//!
//! Each operator on a path from a `wrt` tensor to `T` needs a rule
//! (`rules.rs`); one without a rule is refused, naming the operator and the
//! node, never differentiated wrongly. Shapes are read at run time (Shape,
//! Size), so dynamic axes need nothing special.

mod attention;
mod einsum;
mod emit;
mod fused;
mod node;
mod pool;
mod reduce;
mod rules;

use std::collections::{HashMap, HashSet};

use crate::onnx::error::ModelError;
use crate::onnx::proto::{tensor_proto::DataType, ModelProto, NodeProto, ValueInfoProto};
pub use emit::Dim;
pub(crate) use emit::Emit;

/// The graph input holding the metric's indices.
pub const INDICES: &str = "assay.grad.indices";
/// The graph input holding the metric's weights.
pub const WEIGHTS: &str = "assay.grad.weights";

/// The output holding the gradient with respect to `tensor`.
pub fn grad_name(tensor: &str) -> String {
    format!("assay.grad/{tensor}")
}

/// Shapes as ONNX Runtime's inference states them (for [`backward_with`]).
pub fn shapes_of<'a>(ports: impl IntoIterator<Item = &'a crate::onnx::model::Port>) -> HashMap<String, Vec<Dim>> {
    use crate::onnx::model::Dim as D;
    ports
        .into_iter()
        .filter_map(|p| {
            let dims = p.shape.as_ref()?;
            let d = dims
                .iter()
                .map(|d| match d {
                    D::Fixed(n) => Dim::Fixed(*n),
                    D::Symbolic(s) if !s.is_empty() => Dim::Symbol(s.clone()),
                    D::Symbolic(_) => Dim::Unknown,
                })
                .collect();
            Some((p.name.clone(), d))
        })
        .collect()
}

/// The model with its backward graph from `metric` to each of `wrt`.
pub fn backward(m: &ModelProto, wrt: &[String], metric: &str) -> Result<ModelProto, ModelError> {
    backward_with(m, wrt, metric, HashMap::new())
}

/// As [`backward`], with the shapes of tensors known before the run
/// (ONNX Runtime's inference): the backward graph then sums over
/// broadcast axes found here instead of at run time.
pub fn backward_with(
    m: &ModelProto,
    wrt: &[String],
    metric: &str,
    shapes: HashMap<String, Vec<Dim>>,
) -> Result<ModelProto, ModelError> {
    let mut out = m.clone();
    let opset = crate::onnx::graph::default_opset(m);
    if opset < 13 {
        return Err(ModelError::Graph(format!(
            "gradients need ONNX opset 13 or later (this model imports opset {opset})"
        )));
    }
    let g = out.graph.as_mut().ok_or_else(|| ModelError::Graph("the model has no graph".into()))?;
    let inits: HashSet<String> = g.initializer.iter().map(|t| t.name().to_string()).collect();
    let known: HashSet<String> =
        g.input.iter().map(|i| i.name().to_string()).chain(g.node.iter().flat_map(|n| n.output.clone())).collect();
    for t in wrt.iter().chain(std::iter::once(&metric.to_string())) {
        if !known.contains(t) || inits.contains(t) {
            return Err(ModelError::UnknownTensor(t.clone()));
        }
    }
    // Tensors that depend on a `wrt` tensor, in graph order.
    let mut live: HashSet<String> = wrt.iter().cloned().collect();
    let mut on_path: Vec<usize> = Vec::new();
    // A node passes dependence on through its differentiable inputs only
    // (a mask built from a live tensor's Shape is not live).
    for (i, n) in g.node.iter().enumerate() {
        let through = rules::differentiable(n);
        if n.input.iter().zip(&through).any(|(x, d)| *d && live.contains(x)) {
            on_path.push(i);
            live.extend(n.output.iter().filter(|o| !o.is_empty()).cloned());
        }
    }
    if !live.contains(metric) {
        return Err(ModelError::Tensor {
            name: metric.to_string(),
            message: format!("`{metric}` does not depend on {}", wrt.join(", ")),
        });
    }
    let mut e = Emit::new(opset);
    e.consts = int64_constants(g);
    e.ranks = g.initializer.iter().map(|t| (t.name().to_string(), t.dims.len())).collect();
    e.shapes = shapes;
    for t in &g.initializer {
        e.shapes.insert(t.name().to_string(), t.dims.iter().map(|d| Dim::Fixed(*d)).collect());
    }
    for (k, v) in &e.shapes {
        e.ranks.entry(k.clone()).or_insert(v.len());
    }
    for v in g.input.iter().chain(&g.value_info) {
        use crate::onnx::proto::type_proto::Value as T;
        if let Some(T::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            if let Some(s) = &t.shape {
                e.ranks.insert(v.name().to_string(), s.dim.len());
            }
        }
    }
    let seed = seed(&mut e, metric);
    let mut grads: HashMap<String, Vec<String>> = HashMap::new();
    grads.insert(metric.to_string(), vec![seed]);
    // Backward through the nodes on a path, last first.
    for &i in on_path.iter().rev() {
        let n = &g.node[i];
        // Each output's gradient, summed over its uses (and kept, summed,
        // for an output that is itself a `wrt` tensor).
        let mut dys: Vec<Option<String>> = Vec::new();
        for o in &n.output {
            let total = grads.get(o).cloned().map(|c| e.sum(c));
            if let Some(t) = &total {
                grads.insert(o.clone(), vec![t.clone()]);
            }
            dys.push(total);
        }
        if dys.iter().all(Option::is_none) {
            continue;
        }
        let through = rules::differentiable(n);
        let need: Vec<bool> = n
            .input
            .iter()
            .zip(&through)
            .map(|(x, d)| *d && !x.is_empty() && live.contains(x) && !inits.contains(x))
            .collect();
        if !need.iter().any(|b| *b) {
            continue;
        }
        let dxs = rules::backward(&mut e, n, &dys, &need).map_err(|why| refuse(n, &why))?;
        for ((x, dx), needed) in n.input.iter().zip(dxs).zip(&need) {
            if let (Some(dx), true) = (dx, needed) {
                grads.entry(x.clone()).or_default().push(dx);
            }
        }
    }
    let mut outputs = vec![ValueInfoProto { name: Some(metric.to_string()), ..Default::default() }];
    for t in wrt {
        let Some(c) = grads.remove(t) else {
            return Err(ModelError::Tensor {
                name: t.clone(),
                message: format!("`{metric}` does not depend on `{t}` through differentiable operators"),
            });
        };
        let total = e.sum(c);
        e.node_to("Identity", &[&total], vec![], &grad_name(t));
        outputs.push(ValueInfoProto { name: Some(grad_name(t)), ..Default::default() });
    }
    // The forward values of the intermediate `wrt` tensors, beside their
    // gradients (attribution patching needs both from the one run).
    for t in wrt {
        if !outputs.iter().any(|o| o.name() == t) && !g.input.iter().any(|i| i.name() == t) {
            outputs.push(ValueInfoProto { name: Some(t.clone()), ..Default::default() });
        }
    }
    let (nodes, inits_new) = e.finish();
    g.node.extend(nodes);
    g.initializer.extend(inits_new);
    g.input.push(any_shape(INDICES, 2));
    g.input.push(any_shape(WEIGHTS, 1));
    g.output = outputs;
    Ok(out)
}

/// The seed of the backward pass: the metric's weights scattered into
/// zeros shaped like the metric tensor (negative indices wrapped).
fn seed(e: &mut Emit, metric: &str) -> String {
    let shape = e.op("Shape", &[metric], vec![]);
    let idx = e.op("Cast", &[INDICES], vec![emit::int("to", DataType::Int64 as i64)]);
    let zero_i = e.const_i64(0);
    let neg = e.op("Less", &[&idx, &zero_i], vec![]);
    let neg = e.op("Cast", &[&neg], vec![emit::int("to", DataType::Int64 as i64)]);
    let wrap = e.op("Mul", &[&neg, &shape], vec![]);
    let idx = e.op("Add", &[&idx, &wrap], vec![]);
    let zeros = e.zeros(&shape);
    e.op("ScatterND", &[&zeros, &idx, WEIGHTS], vec![])
}

/// The int64 tensors the graph holds as constants, by name (small ones).
fn int64_constants(g: &crate::onnx::proto::GraphProto) -> HashMap<String, Vec<i64>> {
    let values = |t: &crate::onnx::proto::TensorProto| -> Option<Vec<i64>> {
        if t.data_type() != DataType::Int64 as i32 {
            return None;
        }
        if !t.int64_data.is_empty() {
            return Some(t.int64_data.clone());
        }
        let raw = t.raw_data.as_deref()?;
        (raw.len() <= 1 << 16)
            .then(|| raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect())
    };
    let mut out = HashMap::new();
    for t in &g.initializer {
        if let Some(v) = values(t) {
            out.insert(t.name().to_string(), v);
        }
    }
    for n in g.node.iter().filter(|n| n.op_type() == "Constant") {
        let value = n.attribute.iter().find(|a| a.name() == "value").and_then(|a| a.t.as_ref());
        if let (Some(t), Some(o)) = (value, n.output.first()) {
            if let Some(v) = values(t) {
                out.insert(o.clone(), v);
            }
        }
    }
    out
}

/// A float input of `rank` symbolic axes.
fn any_shape(name: &str, rank: usize) -> ValueInfoProto {
    use crate::onnx::proto::tensor_shape_proto::{dimension::Value as DimValue, Dimension};
    use crate::onnx::proto::{type_proto, TensorShapeProto, TypeProto};
    let dim = (0..rank)
        .map(|i| Dimension { value: Some(DimValue::DimParam(format!("{name}.{i}"))), denotation: None })
        .collect();
    let ty = type_proto::Tensor { elem_type: Some(DataType::Float as i32), shape: Some(TensorShapeProto { dim }) };
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto { value: Some(type_proto::Value::TensorType(ty)), denotation: None }),
        ..Default::default()
    }
}

fn refuse(n: &NodeProto, why: &str) -> ModelError {
    let domain = if n.domain().is_empty() { String::new() } else { format!("{}.", n.domain()) };
    ModelError::Graph(format!("no gradient through {domain}{} (node `{}`): {why}", n.op_type(), n.name()))
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
