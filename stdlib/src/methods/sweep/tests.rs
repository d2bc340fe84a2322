//! Unit tests of `sweep.rs`: the broadcast feed agrees with repeating the
//! target, is refused where a graph bakes the batch size into a shape, and
//! last-position outputs equal the last row of the full ones.

#![allow(clippy::disallowed_methods, reason = "tests read their fixtures directly")]
use super::*;
use crate::models::build::{self, batched, int, GraphBuilder};
use crate::models::planted;
use crate::onnx::model::{Model, Provider};
use crate::onnx::proto::{tensor_proto::DataType, GraphProto, ModelProto};
use ndarray::{arr2, ArrayD, Axis, Slice};

/// The parameter name the components are blamed on (a test has no bound
/// argument to take it from).
const TENSORS: assay_interpreter::Name = assay_interpreter::Name::declared("tensors");

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
    let comps = split(&names, &source, planted::HEADS, TENSORS).unwrap();
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
    let comps = split(&names, &source, 2, TENSORS).unwrap();
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

/// A toy decoder with a KV cache as Hugging Face Optimum exports one, and
/// the `attention_mask` and `position_ids` inputs such exports take:
/// h = emb[ids] + position/2 (the patched tensor), the cache holds h, and
/// each position's output reads h there plus the sum of the whole cache and
/// of the mask. `broken` writes 2h into `present.0.key` while the run itself
/// uses h: a cache that does not continue the run, which `share_prefix` must
/// refuse.
fn toy_kv(broken: bool) -> ModelProto {
    use crate::onnx::proto::{tensor_shape_proto::Dimension, type_proto, TensorShapeProto, TypeProto, ValueInfoProto};
    let mut b = GraphBuilder::default();
    b.f32("emb", &[4, 2], &[0.5, -1., 2., 0.25, -0.75, 1.5, 1., 3.]);
    b.f32("w", &[2, 3], &[1., 0., -1., 0.5, 2., 1.]);
    b.f32("half", &[], &[0.5]);
    b.f32("two", &[], &[2.0]);
    b.f32("hundredth", &[], &[0.01]);
    b.i64("ax1", &[1], &[1]);
    b.i64("ax2", &[1], &[2]);
    b.i64("ax12", &[2], &[1, 2]);
    let x = b.node("Gather", "/embed", &["emb", "input_ids"], vec![int("axis", 0)]);
    let pos = b.node("Cast", "/pos", &["position_ids"], vec![int("to", DataType::Float as i64)]);
    let pos = b.node("Unsqueeze", "/pos3", &[&pos, "ax2"], vec![]);
    let pos = b.node("Mul", "/pos_half", &[&pos, "half"], vec![]);
    let h = b.node("Add", "/h", &[&x, &pos], vec![]);
    let kv = b.node("Unsqueeze", "/kv", &[&h, "ax1"], vec![]);
    let all = b.node("Concat", "/cache", &["past_key_values.0.key", &kv], vec![int("axis", 2)]);
    if broken {
        let twice = b.node("Mul", "/kv2", &[&kv, "two"], vec![]);
        b.node_to("Concat", "/present", &["past_key_values.0.key", &twice], vec![int("axis", 2)], "present.0.key");
    } else {
        b.node_to("Identity", "/present", &[&all], vec![], "present.0.key");
    }
    let total = b.node("ReduceSum", "/total", &[&all, "ax12"], vec![int("keepdims", 0)]);
    let total = b.node("Unsqueeze", "/total3", &[&total, "ax1"], vec![]);
    let mask = b.node("Cast", "/mask", &["attention_mask"], vec![int("to", DataType::Float as i64)]);
    let mask = b.node("ReduceSum", "/mask_sum", &[&mask, "ax1"], vec![int("keepdims", 1)]);
    let mask = b.node("Unsqueeze", "/mask3", &[&mask, "ax2"], vec![]);
    let mask = b.node("Mul", "/mask_scaled", &[&mask, "hundredth"], vec![]);
    let z = b.node("Add", "/z", &[&h, &total], vec![]);
    let z = b.node("Add", "/z_mask", &[&z, &mask], vec![]);
    b.node_to("MatMul", "/lm_head", &[&z, "w"], vec![], "logits");
    let port = |name: &str, elem: DataType, dims: &[Option<i64>]| ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem as i32),
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: d.map(crate::onnx::proto::tensor_shape_proto::dimension::Value::DimValue),
                            denotation: None,
                        })
                        .collect(),
                }),
            })),
            denotation: None,
        }),
        ..Default::default()
    };
    let graph = GraphProto {
        node: b.nodes,
        initializer: b.inits,
        name: Some("toy_kv".into()),
        input: vec![
            port("input_ids", DataType::Int64, &[None, None]),
            port("attention_mask", DataType::Int64, &[None, None]),
            port("position_ids", DataType::Int64, &[None, None]),
            port("past_key_values.0.key", DataType::Float, &[None, Some(1), None, Some(2)]),
        ],
        output: vec![
            port("logits", DataType::Float, &[None, None, Some(3)]),
            port("present.0.key", DataType::Float, &[None, Some(1), None, Some(2)]),
        ],
        ..Default::default()
    };
    build::model(graph, "a toy decoder with a KV cache".into())
}

#[test]
fn a_shared_prefix_runs_once_from_the_kv_cache_with_the_same_results() {
    let (target, source) = (ids([1, 2, 3]), ids([1, 2, 0]));
    for (broken, shared_len) in [(false, 2), (true, 0)] {
        let m = load(if broken { "toy_kv_broken" } else { "toy_kv" }, &toy_kv(broken));
        let slots = m.kv.as_ref().expect("the cache is recognised");
        assert_eq!((slots[0].past.as_str(), slots[0].heads, slots[0].head_dim), ("past_key_values.0.key", 1, 2));
        assert_eq!(m.output_names(), vec!["logits".to_string()], "the cache is not a model output");
        let names = vec!["/h_output_0".to_string()];
        let src = m.capture(source.clone(), &names).unwrap();
        let components = split(&names, &src, 2, TENSORS).unwrap();
        for positions in [None, Some(vec![0, 2]), Some(vec![1])] {
            let sweep = || Sweep {
                model: &m,
                target: target.clone(),
                source: src.clone(),
                components: components.clone(),
                positions: positions.clone(),
                last_position: true,
                prefix: None,
            };
            let plain = sweep();
            let mut shared = sweep();
            assert_eq!(shared.share_prefix(&source).unwrap(), shared_len, "broken cache: {broken}");
            let rows = [0, 1];
            let (a, b) = (plain.run_rows(&rows).unwrap(), shared.run_rows(&rows).unwrap());
            assert!(agree(&a, &b), "{a:?} vs {b:?}");
            let (ca, cb) = (plain.clean().unwrap(), shared.clean().unwrap());
            assert!(agree(std::slice::from_ref(&ca), &[cb]));
            // Position 2 is where the prompts differ: patching it moves the
            // output; patching only the shared position 1 does not.
            let moved = a.iter().any(|o| o["logits"] != ca["logits"]);
            assert_eq!(moved, positions.as_deref() != Some(&[1]), "positions {positions:?}");
        }
    }
}

/// SmolLM2 continued from its KV cache gives the logits of the full run;
/// a head sweep sharing the prompts' common start gives the same effects.
#[test]
fn smollm_continues_from_its_kv_cache() {
    let (path, tok) = crate::models::smollm::provision().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let m = Model::load(&path, "smollm2-135m", &bytes, String::new(), Provider::Cpu).unwrap();
    let tok = tokenizers::Tokenizer::from_file(tok).unwrap();
    let enc = |s: &str| crate::onnx::handle::encode_batch(&tok, &[s.to_string()]).unwrap();
    let target = enc("When Mary and John went to the store, John gave a drink to");
    let source = enc("When Mary and John went to the store, Mary gave a drink to");
    let t = target.shape()[1];
    let full = m.run_plain(vec![("input_ids".into(), target.clone())], &m.output_names()).unwrap();
    let cut = |a: &ArrayD<f32>, r: std::ops::Range<usize>| a.slice_axis(Axis(1), Slice::from(r)).to_owned();
    let mut feeds = m.kv_prefix(vec![("input_ids".into(), cut(&target, 0..6))]).unwrap();
    assert_eq!(feeds.len(), 60);
    assert_eq!(feeds[0].1.shape(), &[1, 3, 6, 64]);
    feeds.push(("input_ids".into(), cut(&target, 6..t)));
    let rest = m.run_plain(feeds, &m.output_names()).unwrap();
    let (f, r) = (&full["logits"], &rest["logits"]);
    assert_eq!(r.shape(), &[1, t - 6, 49152]);
    let gap = cut(f, 6..t).iter().zip(r.iter()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(gap < 1e-3, "continued logits differ by {gap}");

    let names: Vec<String> =
        [0, 14, 29].iter().map(|l| format!("/model/layers.{l}/self_attn/heads_output_0")).collect();
    let feeds = |a: &ArrayD<f32>| vec![("input_ids".to_string(), a.clone())];
    let src = m.capture(feeds(&source), &names).unwrap();
    let components = split(&names, &src, 9, TENSORS).unwrap();
    let sweep = || Sweep {
        model: &m,
        target: feeds(&target),
        source: src.clone(),
        components: components.clone(),
        positions: None,
        last_position: true,
        prefix: None,
    };
    let plain = sweep();
    let mut shared = sweep();
    assert_eq!(shared.share_prefix(&feeds(&source)).unwrap(), 9, "the prompts differ from token 9 on");
    let rows: Vec<usize> = (0..components.len()).collect();
    let (a, b) = (plain.run_rows(&rows).unwrap(), shared.run_rows(&rows).unwrap());
    assert!(agree(&a, &b));
    // Layer 14 and 29 heads matter to the answer; not every row is the clean run.
    let clean = plain.clean().unwrap();
    assert!(b.iter().any(|o| o["logits"] != clean["logits"]));
}

fn block(first: usize, effects: &[f32]) -> Block {
    Block { first, effects: effects.to_vec(), clean: 0.5, source: 1.5, runs: 1, prefix: 2 }
}

#[test]
fn a_block_survives_a_shards_record_and_merges_in_order() {
    let names: Vec<String> = vec!["a".into(), "b".into()];
    let blocks = [block(0, &[0.25, -1.0]), block(2, &[f32::MIN_POSITIVE, 3.0])];
    let back: Vec<Block> = blocks.iter().map(|b| Block::from_value(&b.to_value()).unwrap()).collect();
    assert_eq!(back, blocks);
    let Value::Record(r) = merge_blocks(&names, 2, false, back).unwrap() else { panic!("a record") };
    let Some(Value::Tensor(t)) = r.get("effects") else { panic!("effects") };
    assert_eq!(t.shape(), [2, 2]);
    assert_eq!(t.view().iter().copied().collect::<Vec<f32>>(), [0.25, -1.0, f32::MIN_POSITIVE, 3.0]);
    assert!(matches!(r.get("runs"), Some(Value::Num(n)) if *n == 2.0));
    // Out of order, overlapping or short: refused, never a shifted grid.
    assert!(merge_blocks(&names, 2, false, vec![blocks[1].clone(), blocks[0].clone()]).is_err());
    assert!(merge_blocks(&names, 2, false, vec![blocks[0].clone()]).is_err());
    // Blocks that disagree on what every shard computes alike are refused.
    let mut other = blocks[1].clone();
    other.clean = 0.75;
    let e = merge_blocks(&names, 2, false, vec![blocks[0].clone(), other]).unwrap_err();
    assert!(e.message.contains("disagree on `clean`"), "{}", e.message);
    // A shard's own view: its block, the rest NaN.
    let Value::Record(r) = merge_blocks(&names, 2, true, vec![blocks[1].clone()]).unwrap() else { panic!() };
    let Some(Value::Tensor(t)) = r.get("effects") else { panic!("effects") };
    assert!(t.view().iter().take(2).all(|x| x.is_nan()));
}

#[test]
fn a_damaged_partial_is_refused_by_what_is_wrong() {
    let good = block(0, &[1.0]).to_value();
    let Value::Record(f) = &good else { panic!() };
    for (key, bad, says) in [
        ("first", Value::Num(-1.0), "not a count"),
        ("runs", Value::Num(0.5), "not a count"),
        ("clean", Value::str("x"), "no number `clean`"),
        ("effects", Value::list(vec![Value::str("x")]), "not a number"),
    ] {
        let mut g = (**f).clone();
        g.insert(key.to_string(), bad);
        let e = Block::from_value(&Value::Record(g.into())).unwrap_err();
        assert!(e.message.contains(says), "{key}: {}", e.message);
    }
    assert!(Block::from_value(&Value::Num(1.0)).is_err());
}
