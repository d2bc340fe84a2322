//! Hooks as graph rewrites on the ONNX protobuf, pure and separate from the
//! runtime: expose any set of tensors as outputs (capture), and route a
//! tensor through `mask*new + (1-mask)*orig` with `new` and `mask` fed as
//! inputs (patch, ablate, steer). Everything else in the model — opsets,
//! metadata, external-data references, subgraphs — is carried through.

use std::collections::{BTreeMap, HashSet};

use prost::Message;

use super::error::ModelError;

use super::proto::{
    tensor_proto, type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, TypeProto, ValueInfoProto,
};

/// Name suffixes Assay adds; chosen so they cannot clash with exporter names.
pub const ORIG_SUFFIX: &str = "::assay_orig";
pub fn new_input(tensor: &str) -> String {
    format!("assay::new::{tensor}")
}
pub fn mask_input(tensor: &str) -> String {
    format!("assay::mask::{tensor}")
}
/// The input added to a tensor by [`add`].
pub fn add_input(tensor: &str) -> String {
    format!("assay::add::{tensor}")
}
/// The original value of a tensor something is added to.
const PRE_ADD_SUFFIX: &str = "::assay_pre_add";

/// Decodes an ONNX model, with a message a person can act on.
pub fn decode(bytes: &[u8]) -> Result<ModelProto, ModelError> {
    let m = ModelProto::decode(bytes)
        .map_err(|e| ModelError::Graph(format!("not a valid ONNX model (protobuf decoding failed: {e})")))?;
    if m.graph.is_none() {
        return Err(ModelError::Graph(
            "not a valid ONNX model: it has no graph (is the file truncated or not an .onnx file?)".into(),
        ));
    }
    if m.opset_import.is_empty() && m.ir_version() == 0 {
        return Err(ModelError::Graph(
            "not a valid ONNX model: no IR version and no opset (is this an .onnx file?)".into(),
        ));
    }
    Ok(m)
}

pub fn encode(m: &ModelProto) -> Vec<u8> {
    m.encode_to_vec()
}

/// Where a tensor of the top-level graph comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Input,
    Initializer,
    /// Produced by a node; `output` says whether it is also a graph output.
    Node {
        op: String,
        node: String,
        index: usize,
        output: bool,
    },
}

#[derive(Debug, Clone)]
pub struct Site {
    pub name: String,
    pub kind: Kind,
}

fn graph(m: &ModelProto) -> &GraphProto {
    // `decode` guarantees a graph.
    static EMPTY: GraphProto = GraphProto {
        node: Vec::new(),
        name: None,
        initializer: Vec::new(),
        sparse_initializer: Vec::new(),
        doc_string: None,
        input: Vec::new(),
        output: Vec::new(),
        value_info: Vec::new(),
        quantization_annotation: Vec::new(),
        metadata_props: Vec::new(),
    };
    m.graph.as_ref().unwrap_or(&EMPTY)
}

/// Every tensor of the top-level graph a hook can reach, in graph order:
/// inputs, initializers, then node outputs in topological order.
pub fn sites(m: &ModelProto) -> Vec<Site> {
    let g = graph(m);
    let inits: HashSet<&str> = g.initializer.iter().map(|t| t.name()).collect();
    let outputs: HashSet<&str> = g.output.iter().map(|o| o.name()).collect();
    let mut out = Vec::new();
    for i in &g.input {
        if !inits.contains(i.name()) {
            out.push(Site { name: i.name().to_string(), kind: Kind::Input });
        }
    }
    for t in &g.initializer {
        out.push(Site { name: t.name().to_string(), kind: Kind::Initializer });
    }
    for (index, n) in g.node.iter().enumerate() {
        for o in &n.output {
            if o.is_empty() {
                continue;
            }
            out.push(Site {
                name: o.clone(),
                kind: Kind::Node {
                    op: n.op_type().to_string(),
                    node: n.name().to_string(),
                    index,
                    output: outputs.contains(o.as_str()),
                },
            });
        }
    }
    out
}

/// Number of nodes inside subgraphs (If/Loop/Scan bodies), which hooks do not reach.
pub fn subgraph_nodes(m: &ModelProto) -> usize {
    fn count(g: &GraphProto) -> usize {
        g.node.iter().map(|n| n.attribute.iter().map(attr_subgraph_nodes).sum::<usize>()).sum()
    }
    fn attr_subgraph_nodes(a: &AttributeProto) -> usize {
        let own = |g: &GraphProto| g.node.len() + count(g);
        a.g.as_ref().map(own).unwrap_or(0) + a.graphs.iter().map(own).sum::<usize>()
    }
    count(graph(m))
}

/// The declared type of a top-level tensor, if the model states one.
pub fn declared_type(m: &ModelProto, name: &str) -> Option<TypeProto> {
    let g = graph(m);
    g.input
        .iter()
        .chain(g.output.iter())
        .chain(g.value_info.iter())
        .find(|v| v.name() == name)
        .and_then(|v| v.r#type.clone())
        .or_else(|| g.initializer.iter().find(|t| t.name() == name).map(|t| tensor_type(t.data_type(), Some(&t.dims))))
}

/// A tensor type with an element type and, if given, fixed dimensions.
pub fn tensor_type(elem_type: i32, dims: Option<&[i64]>) -> TypeProto {
    use super::proto::tensor_shape_proto::{dimension::Value as DimValue, Dimension};
    let shape = dims.map(|d| super::proto::TensorShapeProto {
        dim: d.iter().map(|x| Dimension { value: Some(DimValue::DimValue(*x)), denotation: None }).collect(),
    });
    TypeProto {
        value: Some(type_proto::Value::TensorType(type_proto::Tensor { elem_type: Some(elem_type), shape })),
        denotation: None,
    }
}

/// Adds graph outputs for the named tensors (already-outputs are kept once).
pub fn expose(m: &ModelProto, names: &[String]) -> Result<ModelProto, ModelError> {
    let known: HashSet<String> = sites(m).into_iter().map(|s| s.name).collect();
    let mut out = m.clone();
    let g = out.graph.get_or_insert_with(Default::default);
    let mut present: HashSet<String> = g.output.iter().map(|o| o.name().to_string()).collect();
    for n in names {
        if !known.contains(n) {
            return Err(ModelError::UnknownTensor(n.clone()));
        }
        if present.insert(n.clone()) {
            // No type: ONNX Runtime infers it, and reports it in its metadata.
            g.output.push(ValueInfoProto { name: Some(n.clone()), ..Default::default() });
        }
    }
    Ok(out)
}

/// The output name of an in-graph reduction of `tensor`.
pub fn reduced_name(op: &str, tensor: &str) -> String {
    format!("assay::{op}::{tensor}")
}

/// Appends `op` (ReduceMax or ReduceMean) over `axes` of `tensor`, without
/// keeping those axes, and exposes its result, so that only the reduced
/// values leave ONNX Runtime (e.g. [N, C] instead of [N, C, H, W]).
pub fn reduce(m: &ModelProto, tensor: &str, op: &str, axes: &[i64]) -> Result<ModelProto, ModelError> {
    if !sites(m).iter().any(|s| s.name == tensor) {
        return Err(ModelError::UnknownTensor(tensor.to_string()));
    }
    if op != "ReduceMax" && op != "ReduceMean" {
        return Err(ModelError::Tensor { name: tensor.to_string(), message: format!("unknown reduction {op}") });
    }
    let opset = default_opset(m);
    let out_name = reduced_name(op, tensor);
    let mut out = m.clone();
    let g = out.graph.get_or_insert_with(Default::default);
    let keep = AttributeProto {
        name: Some("keepdims".into()),
        r#type: Some(super::proto::attribute_proto::AttributeType::Int as i32),
        i: Some(0),
        ..Default::default()
    };
    // ReduceMean takes axes as an input from opset 18 on, ReduceMax from 18 too.
    let mut n = node(op, format!("assay/{op}/{tensor}"), &[tensor], &out_name);
    if opset >= 18 {
        let axes_name = format!("assay::axes::{op}::{tensor}");
        g.initializer.push(TensorProto {
            name: Some(axes_name.clone()),
            data_type: Some(tensor_proto::DataType::Int64 as i32),
            dims: vec![axes.len() as i64],
            int64_data: axes.to_vec(),
            ..Default::default()
        });
        n.input.push(axes_name);
    } else {
        n.attribute.push(AttributeProto {
            name: Some("axes".into()),
            r#type: Some(super::proto::attribute_proto::AttributeType::Ints as i32),
            ints: axes.to_vec(),
            ..Default::default()
        });
    }
    n.attribute.push(keep);
    g.node.push(n);
    g.output.push(ValueInfoProto { name: Some(out_name), ..Default::default() });
    Ok(out)
}

/// Element types the mixing arithmetic supports.
pub fn is_float(elem_type: i32) -> bool {
    use tensor_proto::DataType;
    [DataType::Float, DataType::Double, DataType::Float16, DataType::Bfloat16].iter().any(|d| *d as i32 == elem_type)
}

fn node(op: &str, name: String, inputs: &[&str], output: &str) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        name: Some(name),
        op_type: Some(op.to_string()),
        ..Default::default()
    }
}

fn scalar_one(elem_type: i32, name: &str) -> TensorProto {
    use tensor_proto::DataType;
    let mut t = TensorProto { name: Some(name.to_string()), data_type: Some(elem_type), ..Default::default() };
    if elem_type == DataType::Double as i32 {
        t.double_data = vec![1.0];
    } else if elem_type == DataType::Float as i32 {
        t.float_data = vec![1.0];
    } else {
        // float16 and bfloat16 store their bits in int32_data.
        t.int32_data = vec![if elem_type == DataType::Float16 as i32 { 0x3c00 } else { 0x3f80 }];
    }
    t
}

/// The element type of a tensor type (0 if unknown).
pub fn elem_of(t: &TypeProto) -> i32 {
    match &t.value {
        Some(type_proto::Value::TensorType(tt)) => tt.elem_type(),
        _ => 0,
    }
}

/// Routes each named tensor T through `T = mask*new + (1-mask)*orig`, where
/// `new` and `mask` become graph inputs named by [`new_input`] and
/// [`mask_input`]. With mask 1 the result is exactly `new`, with mask 0
/// exactly the original. `tensors` gives each tensor's type (the `new`
/// input gets it; the mask may have any broadcastable shape).
pub fn patch(m: &ModelProto, tensors: &BTreeMap<String, TypeProto>) -> Result<ModelProto, ModelError> {
    let all = sites(m);
    let opset = default_opset(m);
    if opset < 7 {
        return Err(ModelError::Graph(format!(
            "the model uses opset {opset}, older than 7, where Mul and Add do not broadcast; patching needs opset 7 or newer (re-export the model)"
        )));
    }
    let mut out = m.clone();
    let g = out.graph.get_or_insert_with(Default::default);
    for (t, declared) in tensors {
        let elem = elem_of(declared);
        let site = all.iter().find(|s| &s.name == t).ok_or_else(|| ModelError::UnknownTensor(t.clone()))?;
        if !is_float(elem) {
            return Err(ModelError::Tensor {
                name: t.to_string(),
                message: format!(
                    "`{t}` holds {}, not floating-point values; only float tensors can be patched",
                    elem_name(elem)
                ),
            });
        }
        let orig = format!("{t}{ORIG_SUFFIX}");
        let insert_at = match &site.kind {
            Kind::Input => {
                return Err(ModelError::Tensor {
                    name: t.to_string(),
                    message: format!("`{t}` is a graph input; to change it, pass a different input instead"),
                });
            }
            Kind::Initializer => {
                for init in g.initializer.iter_mut().filter(|i| i.name() == t) {
                    init.name = Some(orig.clone());
                }
                // Old IR versions also list initializers among the inputs.
                for inp in g.input.iter_mut().filter(|i| i.name() == t) {
                    inp.name = Some(orig.clone());
                }
                0
            }
            Kind::Node { .. } => {
                // Look the producer up in the graph as rewritten so far: earlier
                // patches have inserted nodes and shifted indices.
                let index = g.node.iter().position(|n| n.output.iter().any(|o| o == t)).ok_or_else(|| {
                    ModelError::Tensor { name: t.to_string(), message: format!("no node produces `{t}`") }
                })?;
                for o in g.node[index].output.iter_mut().filter(|o| *o == t) {
                    o.clone_from(&orig);
                }
                index + 1
            }
        };
        let (new_in, mask_in) = (new_input(t), mask_input(t));
        let one = format!("assay::one::{t}");
        // The new value and the mask are declared without a shape: a batch
        // may patch a run fed once (batch 1) with many rows, and ONNX Runtime
        // plans buffers by the declared dimension names, so a borrowed name
        // ("N") would claim those rows are one.
        g.input.push(ValueInfoProto {
            name: Some(new_in.clone()),
            r#type: Some(tensor_type(elem, None)),
            ..Default::default()
        });
        g.input.push(ValueInfoProto {
            name: Some(mask_in.clone()),
            r#type: Some(tensor_type(elem, None)),
            ..Default::default()
        });
        g.initializer.push(scalar_one(elem, &one));
        let a = format!("assay::masked_new::{t}");
        let inv = format!("assay::inv_mask::{t}");
        let b = format!("assay::masked_orig::{t}");
        let nodes = [
            node("Mul", format!("assay/patch/{t}/new"), &[&mask_in, &new_in], &a),
            node("Sub", format!("assay/patch/{t}/inv"), &[&one, &mask_in], &inv),
            node("Mul", format!("assay/patch/{t}/orig"), &[&inv, &orig], &b),
            node("Add", format!("assay/patch/{t}/mix"), &[&a, &b], t),
        ];
        for (k, n) in nodes.into_iter().enumerate() {
            g.node.insert(insert_at + k, n);
        }
        // A declared type now belongs to the original value; the mixed one's
        // shape is the broadcast of the mask's, the new value's and that.
        for v in g.value_info.iter_mut().filter(|v| v.name() == t) {
            v.name = Some(orig.clone());
        }
    }
    forget_downstream(g, tensors.keys());
    Ok(out)
}

/// Routes each named tensor T through `T = orig + add`, where `add` becomes
/// a graph input named by [`add_input`] (any shape that broadcasts to T):
/// activation addition (a steering vector added to the residual stream).
/// Applies after [`patch`] where both name a tensor.
pub fn add(m: &ModelProto, tensors: &BTreeMap<String, TypeProto>) -> Result<ModelProto, ModelError> {
    if default_opset(m) < 7 {
        return Err(ModelError::Graph(
            "the model uses an opset older than 7, where Add does not broadcast (re-export the model)".into(),
        ));
    }
    let mut out = m.clone();
    let g = out.graph.get_or_insert_with(Default::default);
    for (t, declared) in tensors {
        let elem = elem_of(declared);
        if !is_float(elem) {
            return Err(ModelError::Tensor {
                name: t.to_string(),
                message: format!(
                    "`{t}` holds {}, not floating-point values; only float tensors can be added to",
                    elem_name(elem)
                ),
            });
        }
        let index = g.node.iter().position(|n| n.output.iter().any(|o| o == t)).ok_or_else(|| ModelError::Tensor {
            name: t.to_string(),
            message: format!(
                "`{t}` is not computed by a node (a graph input or a weight); add to a tensor the model computes"
            ),
        })?;
        let pre = format!("{t}{PRE_ADD_SUFFIX}");
        for o in g.node[index].output.iter_mut().filter(|o| *o == t) {
            o.clone_from(&pre);
        }
        let add_in = add_input(t);
        g.input.push(ValueInfoProto {
            name: Some(add_in.clone()),
            r#type: Some(tensor_type(elem, None)),
            ..Default::default()
        });
        g.node.insert(index + 1, node("Add", format!("assay/add/{t}"), &[&pre, &add_in], t));
        for v in g.value_info.iter_mut().filter(|v| v.name() == t) {
            v.name = Some(pre.clone());
        }
    }
    forget_downstream(g, tensors.keys());
    Ok(out)
}

/// The `doc_string` of the `value_info` Assay states for the graphs it
/// builds (each dim a number or an input's dim name; see
/// `models/dims.rs`).
pub const NAMED_DIMS: &str = "assay: dims named by probing";

/// Drops the shapes Assay stated ([`NAMED_DIMS`]) of `from` and of every
/// tensor computed from them: a patched or added value may broadcast to
/// more rows than the run was fed, and a sliced one has fewer positions, so
/// a dim named for the original no longer holds downstream (ONNX Runtime
/// plans buffers by dim names). What an exporter stated is left as it was.
pub fn forget_downstream<'a>(g: &mut GraphProto, from: impl IntoIterator<Item = &'a String>) {
    let mut changed: HashSet<String> = from.into_iter().cloned().collect();
    if changed.is_empty() || !g.value_info.iter().any(|v| v.doc_string() == NAMED_DIMS) {
        return;
    }
    // Nodes are in topological order.
    for n in &g.node {
        if n.input.iter().any(|i| changed.contains(i)) {
            changed.extend(n.output.iter().filter(|o| !o.is_empty()).cloned());
        }
    }
    g.value_info.retain(|v| v.doc_string() != NAMED_DIMS || !changed.contains(v.name()));
}

/// Ops that act on each position alone, so that slicing their input's
/// positions slices their output's the same way.
const POSITIONWISE_UNARY: &[&str] =
    &["Identity", "Cast", "Relu", "Tanh", "Sigmoid", "Neg", "Exp", "Log", "Abs", "Softplus", "Gelu", "Erf", "Sqrt"];
const POSITIONWISE_BINARY: &[&str] = &["Add", "Sub", "Mul", "Div", "Pow"];

/// Rewrites the model so that each named output is computed at the last
/// position only: the output's chain is followed back through position-wise
/// ops (elementwise ops with a constant of rank 0 or 1, Softmax and
/// LogSoftmax over the last axis) to a MatMul whose first input has rank 3
/// or more ([N, T, D]); that input is sliced to its last row of axis -2
/// before the MatMul, so [N, T, V] logits become [N, 1, V] and the final
/// projection runs once per example instead of once per position. `rank`
/// gives a tensor's rank where known. Returns the rewritten model and the
/// outputs it could do this for, and, for each it could not, why.
pub fn last_position(
    m: &ModelProto,
    outputs: &[String],
    rank: &dyn Fn(&str) -> Option<usize>,
) -> Result<(ModelProto, Vec<String>, Vec<String>), ModelError> {
    let opset = default_opset(m);
    if opset < 10 {
        return Err(ModelError::Graph(format!(
            "the model uses opset {opset}; slicing to the last position needs opset 10 or newer"
        )));
    }
    let mut out = m.clone();
    let g = out.graph.get_or_insert_with(Default::default);
    let constants: HashSet<String> = g
        .initializer
        .iter()
        .filter(|t| t.dims.len() <= 1)
        .map(|t| t.name().to_string())
        .chain(
            g.node
                .iter()
                .filter(|n| n.op_type() == "Constant")
                .filter(|n| n.attribute.iter().any(|a| a.t.as_ref().is_some_and(|t| t.dims.len() <= 1)))
                .flat_map(|n| n.output.clone()),
        )
        .collect();
    let consts = [("starts", -1i64), ("ends", i64::MAX), ("axes", -2)];
    for (name, v) in consts {
        g.initializer.push(TensorProto {
            name: Some(format!("assay::last::{name}")),
            data_type: Some(tensor_proto::DataType::Int64 as i32),
            dims: vec![1],
            int64_data: vec![v],
            ..Default::default()
        });
    }
    let (mut done, mut refused) = (Vec::new(), Vec::new());
    let mut cut: Vec<String> = Vec::new();
    'outputs: for o in outputs {
        let mut cur = o.clone();
        let mut chain = vec![cur.clone()];
        loop {
            let Some(i) = g.node.iter().position(|n| n.output.contains(&cur)) else {
                refused.push(if cur == *o {
                    format!("`{o}` is not computed by a node")
                } else {
                    format!("`{o}` is computed from `{cur}` by position-wise ops alone, with no MatMul to cut before")
                });
                continue 'outputs;
            };
            let n = &g.node[i];
            let op = n.op_type().to_string();
            let last_axis =
                |n: &NodeProto| n.attribute.iter().find(|a| a.name() == "axis").map(|a| a.i()).unwrap_or(-1) == -1;
            let next = if op == "MatMul" {
                let a = n.input.first().cloned().unwrap_or_default();
                if rank(&a).is_none_or(|r| r < 3) {
                    refused.push(format!("`{o}` comes from a MatMul whose input `{a}` has no position axis"));
                    continue 'outputs;
                }
                let sliced = format!("assay::last::{a}");
                let slice = node(
                    "Slice",
                    format!("assay/last/{a}"),
                    &[&a, "assay::last::starts", "assay::last::ends", "assay::last::axes"],
                    &sliced,
                );
                g.node[i].input[0] = sliced;
                cut.extend(g.node[i].output.iter().cloned());
                g.node.insert(i, slice);
                break;
            } else if POSITIONWISE_UNARY.contains(&op.as_str())
                || ((op == "Softmax" || op == "LogSoftmax") && last_axis(n) && opset >= 13)
            {
                n.input.first().cloned()
            } else if POSITIONWISE_BINARY.contains(&op.as_str()) && n.input.len() == 2 {
                match (constants.contains(&n.input[0]), constants.contains(&n.input[1])) {
                    (false, true) => Some(n.input[0].clone()),
                    (true, false) if op != "Pow" => Some(n.input[1].clone()),
                    _ => None,
                }
            } else {
                None
            };
            match next {
                Some(t) => {
                    cur = t;
                    chain.push(cur.clone());
                }
                None => {
                    refused.push(format!("`{o}` comes from a {op} node (`{}`) that is not position-wise", n.name()));
                    continue 'outputs;
                }
            }
        }
        // The chain's shapes change: drop what the model stated about them.
        g.value_info.retain(|v| !chain.iter().any(|c| c == v.name()));
        for out in g.output.iter_mut().filter(|v| v.name() == o) {
            if let Some(type_proto::Value::TensorType(t)) = out.r#type.as_mut().and_then(|t| t.value.as_mut()) {
                t.shape = None;
            }
        }
        done.push(o.clone());
    }
    forget_downstream(g, &cut);
    Ok((out, done, refused))
}

/// The version of the default (ai.onnx) operator set the model imports.
pub fn default_opset(m: &ModelProto) -> i64 {
    m.opset_import.iter().find(|o| o.domain().is_empty() || o.domain() == "ai.onnx").map(|o| o.version()).unwrap_or(0)
}

pub fn elem_name(elem: i32) -> String {
    tensor_proto::DataType::try_from(elem)
        .map(|d| d.as_str_name().to_lowercase())
        .unwrap_or_else(|_| format!("element type {elem}"))
}

#[cfg(test)]
#[path = "graph_test.rs"]
mod tests;
