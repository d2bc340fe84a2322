//! Hooks as graph rewrites on the ONNX protobuf, pure and separate from the
//! runtime: expose any set of tensors as outputs (capture), and route a
//! tensor through `mask*new + (1-mask)*orig` with `new` and `mask` fed as
//! inputs (patch, ablate, steer). Everything else in the model — opsets,
//! metadata, external-data references, subgraphs — is carried through.

use std::collections::{BTreeMap, HashSet};

use prost::Message;

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

/// Decodes an ONNX model, with a message a person can act on.
pub fn decode(bytes: &[u8]) -> Result<ModelProto, String> {
    let m = ModelProto::decode(bytes).map_err(|e| format!("not a valid ONNX model (protobuf decoding failed: {e})"))?;
    if m.graph.is_none() {
        return Err("not a valid ONNX model: it has no graph (is the file truncated or not an .onnx file?)".into());
    }
    if m.opset_import.is_empty() && m.ir_version() == 0 {
        return Err("not a valid ONNX model: no IR version and no opset (is this an .onnx file?)".into());
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
pub fn expose(m: &ModelProto, names: &[String]) -> Result<ModelProto, String> {
    let known: HashSet<String> = sites(m).into_iter().map(|s| s.name).collect();
    let mut out = m.clone();
    let g = out.graph.get_or_insert_with(Default::default);
    let mut present: HashSet<String> = g.output.iter().map(|o| o.name().to_string()).collect();
    for n in names {
        if !known.contains(n) {
            return Err(format!("the model has no tensor named `{n}`"));
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
pub fn reduce(m: &ModelProto, tensor: &str, op: &str, axes: &[i64]) -> Result<ModelProto, String> {
    if !sites(m).iter().any(|s| s.name == tensor) {
        return Err(format!("the model has no tensor named `{tensor}`"));
    }
    if op != "ReduceMax" && op != "ReduceMean" {
        return Err(format!("unknown reduction {op}"));
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
pub fn patch(m: &ModelProto, tensors: &BTreeMap<String, TypeProto>) -> Result<ModelProto, String> {
    let all = sites(m);
    let opset = default_opset(m);
    if opset < 7 {
        return Err(format!(
            "the model uses opset {opset}, older than 7, where Mul and Add do not broadcast; patching needs opset 7 or newer (re-export the model)"
        ));
    }
    let mut out = m.clone();
    let g = out.graph.get_or_insert_with(Default::default);
    for (t, declared) in tensors {
        let elem = elem_of(declared);
        let site = all.iter().find(|s| &s.name == t).ok_or_else(|| format!("the model has no tensor named `{t}`"))?;
        if !is_float(elem) {
            return Err(format!(
                "`{t}` holds {}, not floating-point values; only float tensors can be patched",
                elem_name(elem)
            ));
        }
        let orig = format!("{t}{ORIG_SUFFIX}");
        let insert_at = match &site.kind {
            Kind::Input => {
                return Err(format!("`{t}` is a graph input; to change it, pass a different input instead"));
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
                let index = g
                    .node
                    .iter()
                    .position(|n| n.output.iter().any(|o| o == t))
                    .ok_or_else(|| format!("no node produces `{t}`"))?;
                for o in g.node[index].output.iter_mut().filter(|o| *o == t) {
                    o.clone_from(&orig);
                }
                index + 1
            }
        };
        let (new_in, mask_in) = (new_input(t), mask_input(t));
        let one = format!("assay::one::{t}");
        g.input.push(ValueInfoProto {
            name: Some(new_in.clone()),
            r#type: Some(declared.clone()),
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
        // Keep value_info consistent: the declared type now belongs to both names.
        let extra: Vec<ValueInfoProto> = g
            .value_info
            .iter()
            .filter(|v| v.name() == t)
            .map(|v| ValueInfoProto { name: Some(orig.clone()), ..v.clone() })
            .collect();
        g.value_info.extend(extra);
    }
    Ok(out)
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
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
    use super::*;
    use crate::onnx::proto::OperatorSetIdProto;

    /// y = Relu(x + b), z = y * 2: a small model built with prost types.
    pub(crate) fn tiny() -> ModelProto {
        let f = tensor_proto::DataType::Float as i32;
        let g = GraphProto {
            node: vec![
                node("Add", "add".into(), &["x", "b"], "h"),
                node("Relu", "relu".into(), &["h"], "y"),
                node("Mul", "mul".into(), &["y", "two"], "z"),
            ],
            name: Some("tiny".into()),
            initializer: vec![
                TensorProto {
                    name: Some("b".into()),
                    data_type: Some(f),
                    dims: vec![3],
                    float_data: vec![1.0, -1.0, 0.5],
                    ..Default::default()
                },
                TensorProto {
                    name: Some("two".into()),
                    data_type: Some(f),
                    float_data: vec![2.0],
                    ..Default::default()
                },
            ],
            input: vec![ValueInfoProto {
                name: Some("x".into()),
                r#type: Some(tensor_type(f, Some(&[2, 3]))),
                ..Default::default()
            }],
            output: vec![ValueInfoProto {
                name: Some("z".into()),
                r#type: Some(tensor_type(f, Some(&[2, 3]))),
                ..Default::default()
            }],
            ..Default::default()
        };
        ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(17) }],
            graph: Some(g),
            producer_name: Some("assay-test".into()),
            ..Default::default()
        }
    }

    /// tests/fixtures/tiny.onnx is this model; ASSAY_BLESS=1 rewrites it.
    #[test]
    fn tiny_fixture_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny.onnx");
        let bytes = encode(&tiny());
        if std::env::var_os("ASSAY_BLESS").is_some() {
            std::fs::write(&path, &bytes).unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "run ASSAY_BLESS=1 cargo test -p assay-stdlib");
    }

    /// tiny() with its bias stored in an external-data file.
    fn tiny_external(location: &str) -> ModelProto {
        use crate::onnx::proto::StringStringEntryProto;
        let mut m = tiny();
        let b = &mut m.graph.as_mut().unwrap().initializer[0];
        b.float_data.clear();
        b.data_location = Some(tensor_proto::DataLocation::External as i32);
        let kv = |k: &str, v: &str| StringStringEntryProto { key: Some(k.into()), value: Some(v.into()) };
        b.external_data = vec![kv("location", location), kv("offset", "0"), kv("length", "12")];
        m
    }

    /// tiny() with a free batch dimension: tests/fixtures/tiny_dynamic.onnx.
    #[test]
    fn dynamic_fixture_is_current() {
        use crate::onnx::proto::tensor_shape_proto::dimension::Value as DimValue;
        let mut m = tiny();
        let g = m.graph.as_mut().unwrap();
        for v in g.input.iter_mut().chain(g.output.iter_mut()) {
            if let Some(type_proto::Value::TensorType(t)) = &mut v.r#type.as_mut().unwrap().value {
                t.shape.as_mut().unwrap().dim[0].value = Some(DimValue::DimParam("N".into()));
            }
        }
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_dynamic.onnx");
        if std::env::var_os("ASSAY_BLESS").is_some() {
            std::fs::write(&path, encode(&m)).unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), encode(&m), "run ASSAY_BLESS=1 cargo test -p assay-stdlib");
    }

    /// Fixtures for external data: external.onnx + external.data, and
    /// missing_external.onnx whose data file does not exist.
    #[test]
    fn external_fixtures_are_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let data: Vec<u8> = [1.0f32, -1.0, 0.5].iter().flat_map(|x| x.to_le_bytes()).collect();
        let files = [
            ("external.onnx", encode(&tiny_external("external.data"))),
            ("external.data", data),
            ("missing_external.onnx", encode(&tiny_external("nowhere.data"))),
        ];
        for (name, bytes) in files {
            if std::env::var_os("ASSAY_BLESS").is_some() {
                std::fs::write(dir.join(name), &bytes).unwrap();
            }
            assert_eq!(
                std::fs::read(dir.join(name)).unwrap(),
                bytes,
                "{name}: run ASSAY_BLESS=1 cargo test -p assay-stdlib"
            );
        }
    }

    #[test]
    fn decode_encode_round_trips_bytes() {
        let bytes = encode(&tiny());
        assert_eq!(encode(&decode(&bytes).unwrap()), bytes);
    }

    #[test]
    fn decode_rejects_garbage_and_truncation() {
        assert!(decode(b"not a model at all").is_err());
        let bytes = encode(&tiny());
        assert!(decode(&bytes[..bytes.len() / 2]).is_err());
        assert!(decode(&[]).is_err());
    }

    #[test]
    fn sites_lists_inputs_initializers_and_node_outputs_in_order() {
        let s = sites(&tiny());
        let names: Vec<&str> = s.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["x", "b", "two", "h", "y", "z"]);
        assert!(matches!(&s[5].kind, Kind::Node { op, output: true, .. } if op == "Mul"));
        assert!(matches!(&s[3].kind, Kind::Node { op, output: false, .. } if op == "Add"));
    }

    #[test]
    fn expose_adds_outputs_once_and_rejects_unknown_names() {
        let m = expose(&tiny(), &["h".into(), "y".into(), "z".into()]).unwrap();
        let outs: Vec<&str> = m.graph.as_ref().unwrap().output.iter().map(|o| o.name()).collect();
        assert_eq!(outs, ["z", "h", "y"]);
        let err = expose(&tiny(), &["nope".into()]).unwrap_err();
        assert!(err.contains("no tensor named `nope`"));
        // Metadata and opsets survive.
        assert_eq!(m.producer_name(), "assay-test");
        assert_eq!(m.opset_import, tiny().opset_import);
    }

    #[test]
    fn patch_reroutes_the_tensor_and_keeps_topological_order() {
        let f = tensor_proto::DataType::Float as i32;
        let m = patch(&tiny(), &BTreeMap::from([("y".to_string(), tensor_type(f, None))])).unwrap();
        let g = m.graph.as_ref().unwrap();
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type()).collect();
        assert_eq!(ops, ["Add", "Relu", "Mul", "Sub", "Mul", "Add", "Mul"]);
        assert_eq!(g.node[1].output, ["y::assay_orig"]);
        assert_eq!(g.node[5].output, ["y"]);
        // The consumer still reads `y`, now the mixed value.
        assert_eq!(g.node[6].input[0], "y");
        let inputs: Vec<&str> = g.input.iter().map(|i| i.name()).collect();
        assert_eq!(inputs, ["x", "assay::new::y", "assay::mask::y"]);
        // Every node input is produced before it is used.
        let mut seen: HashSet<String> = g.input.iter().map(|i| i.name().to_string()).collect();
        seen.extend(g.initializer.iter().map(|i| i.name().to_string()));
        for n in &g.node {
            for i in &n.input {
                assert!(seen.contains(i), "{i} used before it is produced");
            }
            seen.extend(n.output.iter().cloned());
        }
    }

    #[test]
    fn patch_refuses_inputs_unknown_names_and_integer_tensors() {
        let f = tensor_proto::DataType::Float as i32;
        assert!(patch(&tiny(), &BTreeMap::from([("x".to_string(), tensor_type(f, None))]))
            .unwrap_err()
            .contains("graph input"));
        assert!(patch(&tiny(), &BTreeMap::from([("q".to_string(), tensor_type(f, None))]))
            .unwrap_err()
            .contains("no tensor"));
        let i = tensor_proto::DataType::Int64 as i32;
        assert!(patch(&tiny(), &BTreeMap::from([("y".to_string(), tensor_type(i, None))]))
            .unwrap_err()
            .contains("int64"));
    }

    #[test]
    fn patching_several_tensors_renames_each_producer() {
        let f = tensor_proto::DataType::Float as i32;
        let both = BTreeMap::from([("h".to_string(), tensor_type(f, None)), ("y".to_string(), tensor_type(f, None))]);
        let m = patch(&tiny(), &both).unwrap();
        let g = m.graph.as_ref().unwrap();
        let produced: Vec<&str> = g.node.iter().flat_map(|n| n.output.iter().map(|s| s.as_str())).collect();
        let mut unique = produced.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), produced.len(), "a name is produced twice: {produced:?}");
        assert!(produced.contains(&"h::assay_orig") && produced.contains(&"y::assay_orig"));
        // Relu now reads the mixed `h` and writes `y::assay_orig`.
        let relu = g.node.iter().find(|n| n.op_type() == "Relu").unwrap();
        assert_eq!((relu.input[0].as_str(), relu.output[0].as_str()), ("h", "y::assay_orig"));
    }

    #[test]
    fn patch_refuses_opsets_without_broadcasting() {
        let mut m = tiny();
        m.opset_import[0].version = Some(6);
        let f = tensor_proto::DataType::Float as i32;
        assert!(patch(&m, &BTreeMap::from([("y".to_string(), tensor_type(f, None))])).unwrap_err().contains("opset 6"));
    }

    #[test]
    fn reduce_appends_a_reduction_and_exposes_it() {
        let m = reduce(&tiny(), "y", "ReduceMax", &[1]).unwrap();
        let g = m.graph.as_ref().unwrap();
        let last = g.node.last().unwrap();
        assert_eq!(last.op_type(), "ReduceMax");
        assert_eq!(last.input, ["y"]);
        assert_eq!(g.output.last().unwrap().name(), "assay::ReduceMax::y");
        assert!(last.attribute.iter().any(|a| a.name() == "axes" && a.ints == [1]));
        let mut m18 = tiny();
        m18.opset_import[0].version = Some(18);
        let g18 = reduce(&m18, "y", "ReduceMean", &[1]).unwrap().graph.unwrap();
        assert_eq!(g18.node.last().unwrap().input.len(), 2, "axes become an input from opset 18");
        assert!(reduce(&tiny(), "nope", "ReduceMax", &[1]).is_err());
    }

    #[test]
    fn patch_can_target_an_initializer() {
        let f = tensor_proto::DataType::Float as i32;
        let m = patch(&tiny(), &BTreeMap::from([("b".to_string(), tensor_type(f, None))])).unwrap();
        let g = m.graph.as_ref().unwrap();
        assert!(g.initializer.iter().any(|t| t.name() == "b::assay_orig"));
        assert_eq!(g.node[3].output, ["b"]);
        assert_eq!(g.node[4].input, ["x", "b"]);
    }
}
