//! Unit tests of `sweep.rs`: the broadcast feed agrees with repeating the
//! target, is refused where a graph bakes the batch size into a shape, and
//! last-position outputs equal the last row of the full ones.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
use super::*;
use crate::models::build::{self, batched, int, GraphBuilder};
use crate::models::planted;
use crate::onnx::model::Provider;
use crate::onnx::proto::{tensor_proto::DataType, GraphProto, ModelProto};
use ndarray::{arr2, ArrayD};

fn load(stem: &str, proto: &ModelProto) -> Model {
    let (path, bytes, sha) = build::cache_built("tests", stem, proto).unwrap();
    Model::load(&path, stem, &bytes, sha, Provider::Cpu).unwrap()
}

fn ids(v: [i64; 3]) -> Vec<(String, ArrayD<f32>)> {
    vec![("input_ids".into(), arr2(&[v.map(|x| x as f32)]).into_dyn())]
}

/// Every head of the planted transformer, patched one per row from a
/// counterfactual, plus an unpatched row.
fn planted_setup(m: &Model) -> (Outputs, Vec<Component>, Rows) {
    let names: Vec<String> = (0..2).map(|l| format!("/layers.{l}/heads_output_0")).collect();
    let source = m.capture(ids([2, 1, 3]), &names).unwrap();
    let comps = split(&names, &source, planted::HEADS, 0).unwrap();
    let mut rows: Rows = (0..comps.len()).map(|c| vec![(c, 1.0)]).collect();
    rows.push(vec![]);
    (source, comps, rows)
}

#[test]
fn broadcast_feed_agrees_with_repeating_the_target() {
    let m = load("planted", &planted::build(planted::Variant::Original));
    let (source, comps, rows) = planted_setup(&m);
    let target = ids([1, 0, 3]);
    let outputs = m.output_names();
    let want = Want::outputs(&outputs);
    let mix = Mix { m: &m, target: &target, values: &source, components: &comps, positions: None, want };
    assert!(mix.broadcast_ok(), "the planted model broadcasts a batch of one");
    let b = mix.run(&rows, Feed::Broadcast).unwrap();
    let r = mix.run(&rows, Feed::Repeat).unwrap();
    assert!(agree(&b, &r));
    // Patching L0H0 (the copy head) from a prompt whose first token is 2
    // moves the first-token logit at the last position; the inert L0H1 does not.
    let clean = &r[rows.len() - 1]["logits"];
    assert_ne!(b[0]["logits"], *clean);
    assert_eq!(b[1]["logits"], *clean);
    // run_mixed takes the broadcast path and gives the same numbers.
    let mixed = run_mixed(&m, &target, &source, &comps, &rows, None, want).unwrap();
    assert!(agree(&mixed, &r));
}

#[test]
fn last_position_outputs_are_the_last_row_of_the_full_ones() {
    let m = load("planted", &planted::build(planted::Variant::Original));
    let (source, comps, rows) = planted_setup(&m);
    let target = ids([1, 0, 3]);
    let outputs = m.output_names();
    let full = run_mixed(&m, &target, &source, &comps, &rows, None, Want::outputs(&outputs)).unwrap();
    let last = Want { outputs: &outputs, capture: &[], last_position: true };
    let cut = run_mixed(&m, &target, &source, &comps, &rows, None, last).unwrap();
    for (f, c) in full.iter().zip(&cut) {
        let l = &c["logits"];
        assert_eq!(l.shape(), &[1, 1, planted::VOCAB]);
        assert_eq!(*l, f["logits"].slice_axis(Axis(1), Slice::from(-1isize..)).to_owned());
    }
}

/// y = Reshape(2x, [batch of x, -1]): fed a target of one row and masks of
/// b rows, the shape still says 1 row, so the b rows would silently become
/// one long row. The probe must notice and keep repeating the target.
fn baked_batch() -> ModelProto {
    let mut b = GraphBuilder::default();
    b.f32("two", &[], &[2.0]);
    b.i64("zero", &[1], &[0]);
    b.i64("one", &[1], &[1]);
    b.i64("minus_one", &[1], &[-1]);
    let h = b.node("Mul", "/h", &["x", "two"], vec![]);
    let shape = b.node("Shape", "/shape", &["x"], vec![]);
    let n = b.node("Slice", "/batch", &[&shape, "zero", "one"], vec![]);
    let target = b.node("Concat", "/target", &[&n, "minus_one"], vec![int("axis", 0)]);
    b.node_to("Reshape", "/y", &[&h, &target], vec![], "y");
    let graph = GraphProto {
        node: b.nodes,
        initializer: b.inits,
        name: Some("baked_batch".into()),
        input: vec![batched("x", DataType::Float, &[4])],
        output: vec![batched("y", DataType::Float, &[4])],
        ..Default::default()
    };
    build::model(graph, "a graph whose reshape bakes in the batch size".into())
}

#[test]
fn broadcast_is_refused_where_the_graph_bakes_in_the_batch_size() {
    let m = load("baked_batch", &baked_batch());
    let target = vec![("x".to_string(), arr2(&[[1f32, 2., 3., 4.]]).into_dyn())];
    let names = vec!["/h_output_0".to_string()];
    let source: Outputs = [(names[0].clone(), arr2(&[[10f32, 20., 30., 40.]]).into_dyn())].into();
    let comps = split(&names, &source, 2, 0).unwrap();
    let rows = vec![vec![(0, 1.0)], vec![(1, 1.0)], vec![]];
    let outputs = m.output_names();
    let want = Want::outputs(&outputs);
    // Fed as a broadcast, the run "succeeds" with the rows run together...
    let mix = Mix { m: &m, target: &target, values: &source, components: &comps, positions: None, want };
    let silent = mix.run(&rows, Feed::Broadcast).unwrap();
    assert_eq!(silent[0]["y"].shape(), &[1, 12]);
    // ...which the probe catches.
    assert!(!mix.broadcast_ok());
    let out = run_mixed(&m, &target, &source, &comps, &rows, None, want).unwrap();
    let y: Vec<Vec<f32>> = out.iter().map(|o| o["y"].iter().copied().collect()).collect();
    assert_eq!(y, vec![vec![10., 20., 6., 8.], vec![2., 4., 30., 40.], vec![2., 4., 6., 8.]]);
}
