//! Unit tests of `model.rs`: captured tensors left in ONNX Runtime's
//! buffers read the same as copies, and stay valid after their session is
//! dropped and after the model itself is.

#![allow(clippy::disallowed_methods, reason = "tests read their fixtures directly")]
use super::*;
use crate::models::build;
use crate::models::planted;
use ndarray::ArrayD;

/// Parameter names to blame (a test has no bound arguments to take them from).
const INPUTS: assay_interpreter::Name = assay_interpreter::Name::declared("inputs");
const TENSORS: assay_interpreter::Name = assay_interpreter::Name::declared("tensors");
const TENSOR: assay_interpreter::Name = assay_interpreter::Name::declared("tensor");

fn ids() -> Vec<(String, ArrayD<f32>)> {
    vec![("input_ids".into(), ndarray::arr2(&[[2.0f32, 1.0, 3.0]]).into_dyn())]
}

#[test]
fn the_least_recently_used_rewritten_session_goes_first() {
    let proto = planted::build(planted::Variant::Original);
    let (path, bytes, sha) = build::cache_built("tests", "planted", &proto).unwrap();
    let mut m = Model::load(&path, "planted", &bytes, sha, Provider::Cpu).unwrap();
    m.keep_sessions = 2;
    let t = "/layers.0/heads_output_0";
    let reduce = |axis: i64| m.reduced(ids(), t, "ReduceMax", &[axis]).unwrap();
    // Axis 0's session is used again after axis 1's was built: 1 goes.
    for axis in [0, 1, 0, 2] {
        reduce(axis);
    }
    let key = |axis: i64| HookSet::Reduce { op: "ReduceMax".into(), axes: vec![axis], tensor: t.into() };
    let kept = m.sessions.lock().unwrap();
    assert!(kept.contains_key(&key(0)) && kept.contains_key(&key(2)), "{:?}", kept.keys());
    assert!(!kept.contains_key(&key(1)), "{:?}", kept.keys());
}

#[test]
fn lazy_outputs_equal_copies_and_outlive_their_session_and_model() {
    let proto = planted::build(planted::Variant::Original);
    let (path, bytes, sha) = build::cache_built("tests", "planted", &proto).unwrap();
    let mut m = Model::load(&path, "planted", &bytes, sha, Provider::Cpu).unwrap();
    assert_eq!(m.keep_sessions, MOST_REWRITTEN_SESSIONS, "a tiny model keeps the most sessions");
    m.keep_sessions = MAX_REWRITTEN_SESSIONS;
    let names = vec!["/layers.0/heads_output_0".to_string(), "/layers.1/heads_output_0".to_string()];
    let lazy = m.capture_lazy(ids(), &names).unwrap();
    let copies = m.capture(ids(), &names).unwrap();
    for n in &names {
        assert!(lazy[n].is_backed_only(), "capture_lazy must not copy `{n}`");
        assert_eq!(lazy[n].view(), copies[n].view(), "`{n}` differs between the lazy and the copied capture");
    }
    // Evict the capture's session by building more rewritten sessions than
    // are kept, then drop the model: the tensors must still read the same.
    for i in 0..=MAX_REWRITTEN_SESSIONS {
        m.capture(ids(), &names[i % 2..=i % 2]).unwrap();
        m.reduced(ids(), &names[0], "ReduceMax", &[i as i64 % 2]).unwrap();
    }
    drop(m);
    for n in &names {
        assert_eq!(lazy[n].view(), copies[n].view(), "`{n}` changed after its session was dropped");
        assert_eq!(*lazy[n].array(), copies[n]);
    }
    // An output that is a graph input is copied (its buffer was lent).
    let m = Model::load(&path, "planted", &bytes, String::new(), Provider::Cpu).unwrap();
    let out = m.capture_lazy(ids(), &["input_ids".to_string()]).unwrap();
    assert!(!out["input_ids"].is_backed_only());
    assert_eq!(out["input_ids"].iter().copied().collect::<Vec<_>>(), vec![2.0, 1.0, 3.0]);
}

#[test]
fn a_deferred_model_declares_the_ports_its_session_reports_and_runs_the_same() {
    for (stem, proto) in [
        ("planted", planted::build(planted::Variant::Original)),
        ("planted-altered", planted::build(planted::Variant::Altered)),
    ] {
        let (path, bytes, sha) = build::cache_built("tests", stem, &proto).unwrap();
        let eager = Model::load(&path, stem, &bytes, sha.clone(), Provider::Cpu).unwrap();
        let mut deferred = Model::load_deferred(&path, stem, &bytes, sha, Provider::Cpu).unwrap();
        deferred.keep_sessions = MAX_REWRITTEN_SESSIONS;
        assert!(deferred.sessions.lock().unwrap().is_empty(), "no session before the first run");
        assert_eq!(format!("{:?}", eager.inputs), format!("{:?}", deferred.inputs));
        assert_eq!(format!("{:?}", eager.outputs), format!("{:?}", deferred.outputs));
        let want = eager.output_names();
        let a = eager.run_plain(ids(), &want).unwrap();
        let b = deferred.run_plain(ids(), &want).unwrap();
        assert_eq!(a, b);
        // The unmodified model's session is never evicted by rewritten ones.
        for i in 0..=MAX_REWRITTEN_SESSIONS {
            let op = if i % 2 == 0 { "ReduceMax" } else { "ReduceMean" };
            deferred.reduced(ids(), "/layers.0/heads_output_0", op, &[i as i64 % 3]).unwrap();
        }
        let kept = deferred.sessions.lock().unwrap();
        assert!(kept.contains_key(&HookSet::Plain));
        assert_eq!(kept.len(), MAX_REWRITTEN_SESSIONS + 1, "the oldest rewritten session is evicted");
    }
}

#[test]
fn the_built_in_models_declare_the_ports_onnx_runtime_reports() {
    let (eff, _) = crate::models::efficientnet::provision().unwrap();
    let (lm, _) = crate::models::smollm::provision().unwrap();
    for (path, name) in [(eff, "efficientnet-lite0"), (lm, "smollm2-135m")] {
        let bytes = std::fs::read(&path).unwrap();
        let eager = Model::load(&path, name, &bytes, String::new(), Provider::Cpu).unwrap();
        let deferred = Model::load_deferred(&path, name, &bytes, String::new(), Provider::Cpu).unwrap();
        // ONNX Runtime may name a dimension the graph leaves unnamed (its
        // shape inference); every other fact must agree.
        let facts = |ports: &[Port]| -> Vec<String> {
            ports
                .iter()
                .map(|p| {
                    let dims: Vec<String> = p
                        .shape
                        .iter()
                        .flatten()
                        .map(|d| match d {
                            Dim::Fixed(n) => n.to_string(),
                            Dim::Symbolic(_) => "?".into(),
                        })
                        .collect();
                    format!("{} {} [{}]", p.name, p.dtype, dims.join(", "))
                })
                .collect()
        };
        assert_eq!(facts(&eager.inputs), facts(&deferred.inputs), "{name}");
        assert_eq!(facts(&eager.outputs), facts(&deferred.outputs), "{name}");
        assert_eq!(eager.kv, deferred.kv, "{name}");
    }
}

#[test]
fn small_models_keep_more_rewritten_sessions_than_large_ones() {
    assert_eq!(rewritten_sessions_for(18 << 20, false), MOST_REWRITTEN_SESSIONS, "EfficientNet-Lite0's 18 MB");
    assert_eq!(rewritten_sessions_for(655 << 20, false), MAX_REWRITTEN_SESSIONS, "SmolLM2's 655 MB");
    assert_eq!(rewritten_sessions_for(256 << 20, false), 8);
    assert_eq!(rewritten_sessions_for(0, false), MOST_REWRITTEN_SESSIONS);
    // Sessions that share the weights (CPU) are kept in larger numbers.
    assert_eq!(rewritten_sessions_for(655 << 20, true), SHARED_REWRITTEN_SESSIONS, "SmolLM2 on the CPU");
    assert_eq!(rewritten_sessions_for(256 << 20, true), 8);
}

#[test]
fn a_sequence_longer_than_the_position_table_is_refused_with_the_limit() {
    use crate::models::build::{int, GraphBuilder};
    use crate::models::dims::dyn_type;
    use crate::onnx::proto::{tensor_proto::DataType, GraphProto, ValueInfoProto};
    let port = |name: &str, elem: DataType, dims: &[Option<i64>], names: &[&str]| ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(dyn_type(elem, dims, names)),
        ..Default::default()
    };
    // GPT-2's layout: learned positions `wpe` [4, 2] indexed by position_ids.
    let mut b = GraphBuilder::default();
    b.f32("wte", &[10, 2], &[0.5; 20]);
    b.f32("wpe", &[4, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    let tok = b.node("Gather", "/wte", &["wte", "input_ids"], vec![int("axis", 0)]);
    let pos = b.node("Gather", "/wpe", &["wpe", "position_ids"], vec![int("axis", 0)]);
    b.node_to("Add", "/embed", &[&tok, &pos], vec![], "hidden");
    let graph = GraphProto {
        node: b.nodes,
        name: Some("positions".into()),
        initializer: b.inits,
        input: vec![
            port("input_ids", DataType::Int64, &[None, None], &["N", "T"]),
            port("position_ids", DataType::Int64, &[None, None], &["N", "T"]),
        ],
        output: vec![port("hidden", DataType::Float, &[None, None, Some(2)], &["N", "T", ""])],
        ..Default::default()
    };
    let proto = build::model(graph, "learned positions".into());
    let (path, bytes, sha) = build::cache_built("tests", "positions", &proto).unwrap();
    let m = Model::load(&path, "positions", &bytes, sha, Provider::Cpu).unwrap();
    assert_eq!(m.max_positions(), Some(4));
    let feeds = |t: usize| {
        vec![
            ("input_ids".to_string(), ArrayD::zeros(vec![1, t])),
            ("position_ids".to_string(), ndarray::Array::from_shape_fn((1, t), |(_, j)| j as f32).into_dyn()),
        ]
    };
    let out = m.run_plain(feeds(4), &["hidden".to_string()]).unwrap();
    assert_eq!(out["hidden"].shape(), &[1, 4, 2]);
    let err = m.run_plain(feeds(5), &["hidden".to_string()]).unwrap_err();
    assert_eq!(err, ModelError::Input("the sequence is 5 tokens but the model's position table holds 4".into()));
    // A graph that says nothing of positions has no limit to check.
    let planted = planted::build(planted::Variant::Original);
    let (path, bytes, sha) = build::cache_built("tests", "planted", &planted).unwrap();
    assert_eq!(Model::load(&path, "planted", &bytes, sha, Provider::Cpu).unwrap().max_positions(), None);
}

/// Each failure of the model layer has its kind, and a tool's error is
/// blamed by the kind: the feeds on the inputs' parameter, a tensor on the
/// tensors' parameter (with the closest name), the model's own on none.
#[test]
fn model_errors_have_kinds_that_decide_which_argument_is_blamed() {
    let proto = planted::build(planted::Variant::Original);
    let (path, bytes, sha) = build::cache_built("tests", "planted", &proto).unwrap();
    let m = Model::load(&path, "planted", &bytes, sha, Provider::Cpu).unwrap();
    let heads = "/layers.0/heads_output_0".to_string();

    let unknown = m.capture(ids(), &["/layers.0/heads_outptu_0".to_string()]).unwrap_err();
    assert_eq!(unknown, ModelError::UnknownTensor("/layers.0/heads_outptu_0".into()));
    let e = m.blame(unknown, INPUTS, TENSORS);
    assert_eq!(e.param.as_deref(), Some("tensors"));
    assert!(e.help.as_deref().unwrap_or("").contains(&heads), "no suggestion: {e:?}");

    let wrong_input = m.capture(vec![("ids".into(), ArrayD::zeros(vec![1, 3]))], std::slice::from_ref(&heads));
    let wrong_input = wrong_input.unwrap_err();
    assert!(matches!(wrong_input, ModelError::Input(_)), "{wrong_input:?}");
    assert_eq!(m.blame(wrong_input, INPUTS, TENSORS).param.as_deref(), Some("inputs"));

    let input = m.patch(ids(), vec![("input_ids".into(), ArrayD::zeros(vec![1]), ArrayD::ones(vec![1]))], &[]);
    let input = input.unwrap_err();
    assert_eq!(input.tensor(), Some("input_ids"), "{input:?}");
    assert!(matches!(input, ModelError::Tensor { .. }), "{input:?}");
    assert_eq!(m.blame(input, INPUTS, TENSOR).param.as_deref(), Some("tensor"));

    let graph = Model::load_bytes("junk", b"not an onnx file", Provider::Cpu).unwrap_err();
    assert!(matches!(graph, ModelError::Graph(_)), "{graph:?}");
    assert_eq!(m.blame(graph, INPUTS, TENSORS).param, None);
}

/// A model's weights run from the bytes that were read and digested: a
/// weights file swapped afterwards changes neither the plain session nor a
/// rewritten one built later. (Loaded from the folder instead, the
/// rewritten session picks the swapped weights up: the control.)
#[test]
fn weights_swapped_after_they_were_digested_are_never_run() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let x = || vec![("x".to_string(), ndarray::arr2(&[[0.0f32, 0.0, 0.0], [1.0, 1.0, 1.0]]).into_dyn())];
    let h = vec!["h".to_string()];
    let run = |in_memory: bool| {
        let dir = tempfile::tempdir().unwrap();
        let graph = std::fs::read(fixtures.join("external.onnx")).unwrap();
        let data = std::fs::read(fixtures.join("external.data")).unwrap();
        std::fs::write(dir.path().join("external.onnx"), &graph).unwrap();
        std::fs::write(dir.path().join("external.data"), &data).unwrap();
        let path = dir.path().join("external.onnx");
        let weights = if in_memory { vec![("external.data".to_string(), Arc::<[u8]>::from(data))] } else { Vec::new() };
        let m = Model::load_with_weights(&path, "external", &graph, String::new(), Provider::Cpu, weights).unwrap();
        let before = m.capture(x(), &h).unwrap()["h"].clone();
        // Swap the weights file for other numbers, then build a new session.
        let other: Vec<u8> = [100.0f32, 100.0, 100.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dir.path().join("external.data"), other).unwrap();
        let after = m.reduced(x(), "h", "ReduceMax", &[1]).unwrap();
        (before, after)
    };
    let (before, after) = run(true);
    let want: Vec<f32> = before.outer_iter().map(|r| r.iter().fold(f32::NEG_INFINITY, |a, b| a.max(*b))).collect();
    assert_eq!(after.iter().copied().collect::<Vec<_>>(), want, "the in-memory weights ran");
    let (_, swapped) = run(false);
    assert_ne!(
        swapped.iter().copied().collect::<Vec<_>>(),
        want,
        "the control: from the folder, the swap is picked up"
    );
}

/// A graph `y = x·w + b` with `w` [1024, 2] at bytes 0..8192 of `w.data`
/// and `b` [2] at `b_at`: what the lean-loading tests run.
fn lean_graph(b_at: usize) -> ModelProto {
    use crate::onnx::proto::{
        tensor_proto, GraphProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto, ValueInfoProto,
    };
    let f = tensor_proto::DataType::Float as i32;
    let kv = |k: &str, v: &str| StringStringEntryProto { key: Some(k.into()), value: Some(v.into()) };
    let external = |name: &str, dims: Vec<i64>, offset: usize, len: usize| TensorProto {
        name: Some(name.into()),
        data_type: Some(f),
        dims,
        data_location: Some(tensor_proto::DataLocation::External as i32),
        external_data: vec![
            kv("location", "w.data"),
            kv("offset", &offset.to_string()),
            kv("length", &len.to_string()),
        ],
        ..Default::default()
    };
    let node = |op: &str, inputs: &[&str], output: &str| NodeProto {
        op_type: Some(op.into()),
        name: Some(output.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        ..Default::default()
    };
    let g = GraphProto {
        name: Some("lean".into()),
        node: vec![node("MatMul", &["x", "w"], "h"), node("Add", &["h", "b"], "y")],
        initializer: vec![external("w", vec![1024, 2], 0, 8192), external("b", vec![2], b_at, 8)],
        input: vec![ValueInfoProto {
            name: Some("x".into()),
            r#type: Some(crate::onnx::graph::tensor_type(f, Some(&[1, 1024]))),
            ..Default::default()
        }],
        output: vec![ValueInfoProto {
            name: Some("y".into()),
            r#type: Some(crate::onnx::graph::tensor_type(f, Some(&[1, 2]))),
            ..Default::default()
        }],
        ..Default::default()
    };
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(17) }],
        graph: Some(g),
        ..Default::default()
    }
}

/// `w.data`'s bytes: `w` alternating `w` and `-w`, `gap` bytes of 0xff,
/// then `b` = [b, 2b].
fn lean_numbers(w: f32, b: f32, gap: usize) -> Vec<u8> {
    let mut out: Vec<u8> = (0..2048).flat_map(|i| if i % 2 == 0 { w } else { -w }.to_le_bytes()).collect();
    out.extend(std::iter::repeat_n(0xffu8, gap));
    out.extend([b, 2.0 * b].iter().flat_map(|x| x.to_le_bytes()));
    out
}

/// A model with a large external weight (shared with every session, as an
/// ONNX Runtime value made from the digested bytes) and a small one (made
/// inline in the graph from the digested bytes): the digested files are not
/// kept, and a weights file swapped afterwards for other numbers of the same
/// length changes neither the plain session nor a rewritten one built later
/// (ONNX Runtime only checks that the file is there; it reads none of it).
#[test]
fn shared_and_inlined_weights_run_the_digested_bytes_not_the_file() {
    let proto = lean_graph(8192);
    let graph = crate::onnx::graph::encode(&proto);
    let numbers = |w: f32, b: f32| lean_numbers(w, b, 0);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lean.onnx");
    std::fs::write(&path, &graph).unwrap();
    std::fs::write(dir.path().join("w.data"), numbers(0.5, 3.0)).unwrap();
    let weights = vec![("w.data".to_string(), Arc::<[u8]>::from(numbers(0.5, 3.0)))];
    let m = Model::load_with_weights(&path, "lean", &graph, String::new(), Provider::Cpu, weights).unwrap();
    assert!(m.weights.is_empty(), "the digested files are not kept");
    let x = || vec![("x".to_string(), ArrayD::<f32>::ones(vec![1, 1024]))];
    // h = [512, -512], y = h + [3, 6].
    let want = vec![515.0f32, -506.0];
    let plain = |m: &Model| m.run_plain(x(), &["y".to_string()]).unwrap()["y"].iter().copied().collect::<Vec<_>>();
    assert_eq!(plain(&m), want);
    std::fs::write(dir.path().join("w.data"), numbers(7.0, -1.0)).unwrap();
    assert_eq!(plain(&m), want, "the plain session");
    let h = m.capture(x(), &["h".to_string(), "y".to_string()]).unwrap();
    assert_eq!(h["y"].iter().copied().collect::<Vec<_>>(), want, "a rewritten session built after the swap");
    assert_eq!(h["h"].iter().copied().collect::<Vec<_>>(), vec![512.0, -512.0]);
    // The control: loaded from the folder (no digested bytes), the swapped
    // file is what runs.
    let m = Model::load_with_weights(&path, "lean", &graph, String::new(), Provider::Cpu, Vec::new()).unwrap();
    assert_eq!(plain(&m), vec![7.0 * 1024.0 - 1.0, -7.0 * 1024.0 - 2.0]);
}

/// Large models run without the prepacked copy of their weights; small ones
/// keep it (unless ASSAY_PREPACK says otherwise for all).
#[test]
fn only_models_below_the_line_prepack_their_weights() {
    if std::env::var_os("ASSAY_PREPACK").is_some() {
        return;
    }
    assert!(prepack_for(540 << 20));
    assert!(!prepack_for(PREPACK_BELOW));
    assert!(!prepack_for(4 << 30));
}

/// Weights read as a stream (as `onnx()` reads them on the CPU), fed in
/// pieces of any size with a gap between two initializers, give the
/// shared and inline weights that run as read, and a file swapped
/// afterwards changes nothing; a file that ends early names the
/// initializer it cuts, and ranges that overlap are not streamed.
#[test]
fn weights_streamed_in_any_pieces_run_as_read() {
    use super::stream::WeightStream;
    crate::onnx::runtime::runtime().unwrap();
    let proto = lean_graph(8192 + 16);
    let graph = crate::onnx::graph::encode(&proto);
    let data = lean_numbers(0.5, 3.0, 16);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lean.onnx");
    std::fs::write(&path, &graph).unwrap();
    let x = || vec![("x".to_string(), ArrayD::<f32>::ones(vec![1, 1024]))];
    let plain = |m: &Model| m.run_plain(x(), &["y".to_string()]).unwrap()["y"].iter().copied().collect::<Vec<_>>();
    let want = vec![515.0f32, -506.0];
    for piece in [1, 3, 4096, 5000, 1 << 20] {
        std::fs::write(dir.path().join("w.data"), &data).unwrap();
        let mut s = WeightStream::plan(&proto, "w.data").unwrap();
        for c in data.chunks(piece) {
            s.feed(c).unwrap();
        }
        let got = s.finish("w.data").unwrap();
        assert_eq!(got.shared.len(), 1, "pieces of {piece}: w is shared");
        assert_eq!(got.inline, vec![("b".to_string(), [3.0f32, 6.0].iter().flat_map(|v| v.to_le_bytes()).collect())]);
        let m = Model::load_streamed(&path, "lean", &graph, String::new(), got).unwrap();
        assert_eq!(plain(&m), want, "pieces of {piece}");
        std::fs::write(dir.path().join("w.data"), lean_numbers(7.0, -1.0, 16)).unwrap();
        assert_eq!(plain(&m), want, "the plain session after a swap");
        let h = m.capture(x(), &["h".to_string(), "y".to_string()]).unwrap();
        assert_eq!(h["y"].iter().copied().collect::<Vec<_>>(), want, "a rewritten session built after the swap");
    }
    let mut s = WeightStream::plan(&proto, "w.data").unwrap();
    s.feed(&data[..8192 + 20]).unwrap();
    let e = s.finish("w.data").err().unwrap();
    assert!(e.contains("`w.data` ends at byte 8212 before the initializer `b` (bytes 8208..8216)"), "{e}");
    assert!(WeightStream::plan(&lean_graph(8000), "w.data").is_none(), "overlapping ranges are read whole");
    assert!(WeightStream::plan(&proto, "other.data").is_some_and(|s| s.finish("other.data").is_ok()));
}
