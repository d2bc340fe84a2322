//! Unit tests of `graph.rs`, kept beside it.

#![allow(clippy::disallowed_methods, reason = "tests read their fixtures directly")]
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
            TensorProto { name: Some("two".into()), data_type: Some(f), float_data: vec![2.0], ..Default::default() },
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
    assert_eq!(err, ModelError::UnknownTensor("nope".into()));
    assert_eq!(err.to_string(), "the model has no tensor `nope`");
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
    let input = patch(&tiny(), &BTreeMap::from([("x".to_string(), tensor_type(f, None))])).unwrap_err();
    assert!(matches!(&input, ModelError::Tensor { name, .. } if name == "x"), "{input:?}");
    assert!(input.to_string().contains("graph input"));
    let unknown = patch(&tiny(), &BTreeMap::from([("q".to_string(), tensor_type(f, None))])).unwrap_err();
    assert_eq!(unknown, ModelError::UnknownTensor("q".into()));
    let i = tensor_proto::DataType::Int64 as i32;
    let int = patch(&tiny(), &BTreeMap::from([("y".to_string(), tensor_type(i, None))])).unwrap_err();
    assert!(matches!(&int, ModelError::Tensor { name, .. } if name == "y"), "{int:?}");
    assert!(int.to_string().contains("int64"));
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
    let old = patch(&m, &BTreeMap::from([("y".to_string(), tensor_type(f, None))])).unwrap_err();
    assert!(matches!(&old, ModelError::Graph(m) if m.contains("opset 6")), "{old:?}");
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

#[test]
fn last_position_follows_positionwise_ops_to_a_matmul_and_refuses_others() {
    // tiny(): z = Relu(x + b) * 2 has no MatMul; its chain ends at the input.
    let (_, done, refused) = last_position(&tiny(), &["z".to_string()], &|_| Some(3)).unwrap();
    assert!(done.is_empty());
    assert!(refused[0].contains("computed from `x` by position-wise ops alone"), "{refused:?}");
    // logits = MatMul(h, W) + c: the MatMul's input is sliced, nothing else changes.
    let mut m = tiny();
    let g = m.graph.as_mut().unwrap();
    let f = tensor_proto::DataType::Float as i32;
    g.initializer.push(TensorProto {
        name: Some("w".into()),
        data_type: Some(f),
        dims: vec![3, 2],
        float_data: vec![0.0; 6],
        ..Default::default()
    });
    g.node.push(node("MatMul", "head".into(), &["z", "w"], "mm"));
    g.node.push(node("Add", "bias".into(), &["mm", "two"], "logits"));
    g.output.push(ValueInfoProto { name: Some("logits".into()), ..Default::default() });
    let (cut, done, refused) = last_position(&m, &["logits".to_string()], &|t| (t == "z").then_some(3)).unwrap();
    assert_eq!((done, refused), (vec!["logits".to_string()], vec![]));
    let cg = cut.graph.unwrap();
    let slice = cg.node.iter().find(|n| n.op_type() == "Slice").unwrap();
    assert_eq!(slice.input[0], "z");
    let head = cg.node.iter().find(|n| n.name() == "head").unwrap();
    assert_eq!(head.input[0], slice.output[0]);
    // A rank-2 input has no position axis: refused, not sliced.
    let (_, done, refused) = last_position(&m, &["logits".to_string()], &|_| Some(2)).unwrap();
    assert!(done.is_empty() && refused[0].contains("no position axis"), "{refused:?}");
}

/// Patching `h` forgets the dims Assay named of `h` and of what is computed
/// from it (`y`, `z`), keeps those of what comes before (`x2`), and leaves
/// what an exporter stated (`y`'s second entry) as it was.
#[test]
fn rewrites_forget_the_named_dims_downstream_of_what_they_change() {
    let f = tensor_proto::DataType::Float as i32;
    let stated = |name: &str, ours: bool| ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(tensor_type(f, Some(&[2, 3]))),
        doc_string: ours.then(|| NAMED_DIMS.to_string()),
        ..Default::default()
    };
    let mut m = tiny();
    let g = m.graph.as_mut().unwrap();
    g.node.insert(0, node("Relu", "pre".into(), &["x"], "x2"));
    g.node[1].input[0] = "x2".into();
    g.value_info =
        vec![stated("x2", true), stated("h", true), stated("y", true), stated("y", false), stated("z", true)];
    let declared: BTreeMap<String, TypeProto> = [("h".to_string(), tensor_type(f, None))].into();
    let out = patch(&m, &declared).unwrap();
    let left: Vec<(&str, bool)> =
        graph(&out).value_info.iter().map(|v| (v.name(), v.doc_string() == NAMED_DIMS)).collect();
    // `h`'s own entry now names the original value (`h` before the mix).
    assert_eq!(left, [("x2", true), (format!("h{ORIG_SUFFIX}").leak() as &str, true), ("y", false)]);
    // Without named dims nothing changes.
    let mut plain = m.clone();
    plain.graph.as_mut().unwrap().value_info.retain(|v| v.doc_string() != NAMED_DIMS);
    assert_eq!(graph(&patch(&plain, &declared).unwrap()).value_info.len(), 1);
}
