//! Each rule against central finite differences of the forward graph in
//! ONNX Runtime: for a metric Σ w·y with random weights over every
//! element of y, the gradient at every element of each input.

use super::*;
use crate::models::build::{batched, int, ints, model, string, GraphBuilder};
use crate::onnx::model::{Model, Provider};
use crate::onnx::proto::{GraphProto, ValueInfoProto};
use ndarray::ArrayD;

/// A deterministic pseudo-random sequence in [-1, 1).
fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn input(name: &str, dims: &[i64]) -> ValueInfoProto {
    let mut v = batched(name, DataType::Float, &dims[1..]);
    // A fixed first axis too: the tests feed exactly these shapes.
    if let Some(crate::onnx::proto::type_proto::Value::TensorType(t)) = v.r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        if let Some(d) = t.shape.as_mut().and_then(|s| s.dim.first_mut()) {
            d.value = Some(crate::onnx::proto::tensor_shape_proto::dimension::Value::DimValue(dims[0]));
        }
    }
    v
}

struct Case {
    proto: ModelProto,
    inputs: Vec<(String, Vec<usize>)>,
    out: String,
}

fn case(b: GraphBuilder, inputs: &[(&str, &[usize])], out: &str, opset: i64) -> Case {
    let graph = GraphProto {
        node: b.nodes,
        name: Some("case".into()),
        initializer: b.inits,
        input: inputs.iter().map(|(n, d)| input(n, &d.iter().map(|x| *x as i64).collect::<Vec<_>>())).collect(),
        output: vec![ValueInfoProto { name: Some(out.into()), ..Default::default() }],
        ..Default::default()
    };
    let mut proto = model(graph, "a gradient test".into());
    proto.opset_import[0].version = Some(opset);
    if opset >= 21 {
        proto.ir_version = Some(10); // what those opsets need
    }
    Case { proto, inputs: inputs.iter().map(|(n, d)| (n.to_string(), d.to_vec())).collect(), out: out.into() }
}

fn run(m: &Model, feeds: &[(String, ArrayD<f32>)], want: &[String]) -> Vec<ArrayD<f32>> {
    let out = m.run_plain(feeds.to_vec(), want).unwrap();
    want.iter().map(|w| out[w].clone()).collect()
}

/// The analytic gradient of Σ w·y with respect to every input, against
/// central differences (relative to the gradient's largest entry).
fn check(c: &Case, tol: f32) {
    let feeds: Vec<(String, ArrayD<f32>)> = c
        .inputs
        .iter()
        .enumerate()
        .map(|(i, (n, d))| {
            let len: usize = d.iter().product();
            (n.clone(), ArrayD::from_shape_vec(d.clone(), noise(len, 7 + i as u64)).unwrap())
        })
        .collect();
    let fwd = Model::load_bytes("forward", &crate::onnx::graph::encode(&c.proto), Provider::Cpu).unwrap();
    let y = run(&fwd, &feeds, std::slice::from_ref(&c.out)).remove(0);
    let w = noise(y.len(), 99);
    // Every element of y, with its weight.
    let shape = y.shape().to_vec();
    let mut idx = Vec::new();
    for flat in 0..y.len() {
        let mut rest = flat;
        let mut at = vec![0f32; shape.len()];
        for d in (0..shape.len()).rev() {
            at[d] = (rest % shape[d]) as f32;
            rest /= shape[d];
        }
        idx.extend(at);
    }
    let wrt: Vec<String> = c.inputs.iter().map(|(n, _)| n.clone()).collect();
    // Twice: with every broadcast sum found at run time, and with the
    // shapes ONNX Runtime infers (most sums settled when building).
    let inferred = shapes_of(fwd.every_tensor().unwrap().iter().chain(fwd.inputs.iter()));
    for shapes in [HashMap::new(), inferred] {
        check_with(c, &feeds, &w, &idx, &wrt, shapes, tol);
    }
}

fn check_with(
    c: &Case,
    feeds: &[(String, ArrayD<f32>)],
    w: &[f32],
    idx: &[f32],
    wrt: &[String],
    shapes: HashMap<String, Vec<Dim>>,
    tol: f32,
) {
    let fwd = Model::load_bytes("forward", &crate::onnx::graph::encode(&c.proto), Provider::Cpu).unwrap();
    let y = run(&fwd, feeds, std::slice::from_ref(&c.out)).remove(0);
    let shape = y.shape().to_vec();
    let metric = |feeds: &[(String, ArrayD<f32>)]| -> f64 {
        let y = run(&fwd, feeds, std::slice::from_ref(&c.out)).remove(0);
        y.iter().zip(w).map(|(a, b)| *a as f64 * *b as f64).sum()
    };
    let bwd = backward_with(&c.proto, wrt, &c.out, shapes).unwrap();
    let m = Model::load_bytes("backward", &crate::onnx::graph::encode(&bwd), Provider::Cpu).unwrap();
    let feeds = feeds.to_vec();
    let (w, idx) = (w.to_vec(), idx.to_vec());
    let mut all = feeds.clone();
    all.push((INDICES.into(), ArrayD::from_shape_vec(vec![y.len(), shape.len().max(1)], idx).unwrap()));
    all.push((WEIGHTS.into(), ArrayD::from_shape_vec(vec![y.len()], w.clone()).unwrap()));
    let names: Vec<String> = wrt.iter().map(|t| grad_name(t)).collect();
    let grads = run(&m, &all, &names);
    for (k, ((name, _), g)) in c.inputs.iter().zip(&grads).enumerate() {
        assert_eq!(g.shape(), feeds[k].1.shape(), "{name}: the gradient has the input's shape");
        let scale = g.iter().fold(1e-3f32, |a, v| a.max(v.abs()));
        for i in 0..g.len() {
            let eps = 1e-2f32;
            let mut plus = feeds.clone();
            plus[k].1.as_slice_mut().unwrap()[i] += eps;
            let mut minus = feeds.clone();
            minus[k].1.as_slice_mut().unwrap()[i] -= eps;
            let fd = ((metric(&plus) - metric(&minus)) / (2.0 * eps as f64)) as f32;
            let an = g.as_slice().unwrap()[i];
            assert!(
                (fd - an).abs() <= tol * scale,
                "{name}[{i}]: analytic {an}, finite differences {fd} (scale {scale})"
            );
        }
    }
}

#[test]
fn elementwise_rules_match_finite_differences() {
    let mut b = GraphBuilder::default();
    let one = b.f32("one", &[], &[1.0]);
    let three = b.f32("three", &[], &[3.0]);
    let s = b.node("Sigmoid", "s", &["x"], vec![]);
    let t = b.node("Tanh", "t", &["x"], vec![]);
    let ex = b.node("Exp", "ex", &["x"], vec![]);
    let sq = b.node("Mul", "sq", &["x", "x"], vec![]);
    let sq1 = b.node("Add", "sq1", &[&sq, &one], vec![]);
    let lg = b.node("Log", "lg", &[&sq1], vec![]);
    let rt = b.node("Sqrt", "rt", &[&sq1], vec![]);
    let rc = b.node("Reciprocal", "rc", &[&rt], vec![]);
    let er = b.node("Erf", "er", &["x"], vec![]);
    let sn = b.node("Sin", "sn", &["x"], vec![]);
    let cs = b.node("Cos", "cs", &[&t], vec![]);
    let pw = b.node("Pow", "pw", &[&sq1, &three], vec![]);
    let dv = b.node("Div", "dv", &[&ex, &sq1], vec![]);
    let sb = b.node("Sub", "sb", &[&s, &dv], vec![]);
    let ng = b.node("Neg", "ng", &[&lg], vec![]);
    let sp = b.node("Softplus", "sp", &["x"], vec![]);
    let lr = b.node("LeakyRelu", "lr", &["x"], vec![crate::models::build::float_attr("alpha", 0.1)]);
    b.node_to("Sum", "y", &[&sb, &ng, &rc, &er, &sn, &cs, &pw, &sp, &lr], vec![], "y");
    check(&case(b, &[("x", &[2, 5])], "y", 13), 2e-3);
}

#[test]
fn broadcasting_binary_ops_sum_over_the_broadcast_axes() {
    let mut b = GraphBuilder::default();
    let m = b.node("Mul", "m", &["a", "b"], vec![]);
    let d = b.node("Div", "d", &[&m, "c"], vec![]);
    b.node_to("Sub", "y", &[&d, "b"], vec![], "y");
    let c = case(b, &[("a", &[2, 3, 4]), ("b", &[3, 1]), ("c", &[4])], "y", 13);
    // c near zero would make the differences meaningless: shift it.
    let mut c = c;
    let g = c.proto.graph.as_mut().unwrap();
    g.initializer.push(crate::onnx::proto::TensorProto {
        name: Some("two".into()),
        data_type: Some(DataType::Float as i32),
        float_data: vec![2.0],
        ..Default::default()
    });
    g.node.insert(
        0,
        crate::onnx::proto::NodeProto {
            op_type: Some("Add".into()),
            input: vec!["c".into(), "two".into()],
            output: vec!["c2".into()],
            name: Some("shift".into()),
            ..Default::default()
        },
    );
    for n in g.node.iter_mut().skip(1) {
        for i in n.input.iter_mut() {
            if i == "c" {
                *i = "c2".into();
            }
        }
    }
    check(&c, 2e-3);
}

#[test]
fn matmul_gemm_softmax_and_reductions_match_finite_differences() {
    let mut b = GraphBuilder::default();
    let w = b.f32("w", &[4, 3], &noise(12, 3));
    let mm = b.node("MatMul", "mm", &["a", "bt"], vec![]);
    let mw = b.node("MatMul", "mw", &[&mm, &w], vec![]);
    let sm = b.node("Softmax", "sm", &[&mw], vec![int("axis", -1)]);
    let ls = b.node("LogSoftmax", "ls", &[&mw], vec![int("axis", 1)]);
    let both = b.node("Add", "both", &[&sm, &ls], vec![]);
    let r = b.node("ReduceMean", "r", &[&both], vec![ints("axes", &[1]), int("keepdims", 0)]);
    let axes = b.i64("ax", &[1], &[-1]);
    let r2 = b.node("ReduceSum", "r2", &[&both, &axes], vec![int("keepdims", 1)]);
    let axes1 = b.i64("ax1", &[1], &[1]);
    let r1 = b.node("Unsqueeze", "r1", &[&r, &axes1], vec![]);
    b.node_to("Mul", "y", &[&r1, &r2], vec![], "y");
    check(&case(b, &[("a", &[2, 2, 5]), ("bt", &[5, 4])], "y", 13), 2e-3);
    let mut b = GraphBuilder::default();
    let cb = b.f32("cb", &[3], &noise(3, 5));
    b.node_to(
        "Gemm",
        "y",
        &["a", "bb", &cb],
        vec![int("transA", 1), int("transB", 1), crate::models::build::float_attr("alpha", 0.5)],
        "y",
    );
    check(&case(b, &[("a", &[4, 2]), ("bb", &[3, 4])], "y", 13), 2e-3);
}

#[test]
fn shape_ops_slices_and_gathers_route_gradients_back() {
    let mut b = GraphBuilder::default();
    let perm = b.node("Transpose", "tr", &["x"], vec![ints("perm", &[1, 0, 2])]);
    let shape = b.i64("shape", &[2], &[3, -1]);
    let rs = b.node("Reshape", "rs", &[&perm, &shape], vec![]);
    let starts = b.i64("starts", &[1], &[1]);
    let ends = b.i64("ends", &[1], &[7]);
    let axes = b.i64("axes1", &[1], &[1]);
    let steps = b.i64("steps", &[1], &[2]);
    let sl = b.node("Slice", "sl", &[&rs, &starts, &ends, &axes, &steps], vec![]);
    let idx = b.i64("idx", &[3], &[2, 0, 2]);
    let ga = b.node("Gather", "ga", &[&rs, &idx], vec![int("axis", 0)]);
    let cc = b.node("Concat", "cc", &[&sl, &ga], vec![int("axis", 1)]);
    let split = b.i64("split", &[2], &[2, 4]);
    b.nodes.push(crate::onnx::proto::NodeProto {
        op_type: Some("Split".into()),
        input: vec![cc.clone(), split],
        output: vec!["p0".into(), "p1".into()],
        name: Some("sp".into()),
        attribute: vec![int("axis", 1)],
        ..Default::default()
    });
    let zero = b.f32("zero", &[], &[0.0]);
    let pos = b.node("Greater", "pos", &["p0", &zero], vec![]);
    let wh = b.node("Where", "wh", &[&pos, "p0", &zero], vec![]);
    let e = b.i64("eshape", &[3], &[2, 3, 2]);
    let ex = b.node("Expand", "ex", &[&wh, &e], vec![]);
    b.node_to("Sum", "y", &[&ex], vec![], "y");
    check(&case(b, &[("x", &[2, 3, 2])], "y", 16), 2e-3);
}

#[test]
fn convolutions_pools_and_norms_match_finite_differences() {
    let mut b = GraphBuilder::default();
    let w = b.f32("w", &[4, 2, 3, 3], &noise(72, 11));
    let dw = b.f32("dw", &[4, 1, 3, 3], &noise(36, 12));
    let cv = b.node("Conv", "cv", &["x", &w], vec![ints("strides", &[2, 2]), ints("pads", &[1, 1, 1, 1])]);
    let d = b.node("Conv", "d", &[&cv, &dw], vec![ints("pads", &[1, 1, 1, 1]), int("group", 4)]);
    let ap = b.node(
        "AveragePool",
        "ap",
        &[&d],
        vec![ints("kernel_shape", &[2, 2]), ints("strides", &[1, 1]), ints("pads", &[1, 1, 0, 0])],
    );
    let scale = b.f32("scale", &[4], &[1.0, 0.5, 2.0, -1.0]);
    let bias = b.f32("bias", &[4], &[0.1, 0.2, 0.3, 0.4]);
    let mean = b.f32("mean", &[4], &[0.0, 0.1, -0.1, 0.2]);
    let var = b.f32("var", &[4], &[1.0, 2.0, 0.5, 1.5]);
    let bn = b.node("BatchNormalization", "bn", &[&ap, &scale, &bias, &mean, &var], vec![]);
    let g = b.node("GlobalAveragePool", "g", &[&bn], vec![]);
    let ln_s = b.f32("ln_s", &[4, 1, 1], &[1.0, 2.0, 0.5, 1.5]);
    let ln = b.node("LayerNormalization", "ln", &[&g, &ln_s], vec![int("axis", 1)]);
    b.node_to("Mul", "y", &[&ln, &g], vec![], "y");
    check(&case(b, &[("x", &[2, 2, 5, 5])], "y", 13), 3e-3);
}

#[test]
fn einsum_of_one_and_two_operands_matches_finite_differences() {
    let mut b = GraphBuilder::default();
    let w = b.f32("w", &[2, 3, 4], &noise(24, 7));
    // A batched product, a transpose, a dot product per row and `...`.
    let bmm = b.node("Einsum", "bmm", &["x", &w], vec![string("equation", "bij,bjk->bik")]);
    let t = b.node("Einsum", "t", &[&bmm], vec![string("equation", "bik->bki")]);
    let dot = b.node("Einsum", "dot", &[&t, &t], vec![string("equation", "bki,bki->bk")]);
    let dot2 = b.node("Einsum", "dot2", &[&bmm, &bmm], vec![string("equation", "bik,bik->bi")]);
    let ell = b.node("Einsum", "ell", &["x", &dot2], vec![string("equation", "...ij,...j->...i")]);
    let outer = b.node("Einsum", "outer", &[&ell, &dot], vec![string("equation", "bi,bk->bik")]);
    b.node_to("Mul", "y", &[&outer, &w], vec![], "y");
    check(&case(b, &[("x", &[2, 3, 3])], "y", 13), 3e-3);
}

#[test]
fn max_pooling_and_nearest_resizing_send_the_gradient_where_each_output_came_from() {
    // Overlapping windows (3x3, stride 2): a maximum two windows share gets
    // both their gradients.
    let mut b = GraphBuilder::default();
    // x scaled small over well-separated shuffled levels: no window holds a
    // near tie that the differences' step could flip.
    let levels: Vec<f32> = (0..100).map(|i| ((i * 37) % 100) as f32 * 0.1).collect();
    let levels = b.f32("levels", &[2, 2, 5, 5], &levels);
    let small = b.f32("small", &[], &[0.01]);
    let xs = b.node("Mul", "xs", &["x", &small], vec![]);
    let xl = b.node("Add", "xl", &[&xs, &levels], vec![]);
    let mp = b.node(
        "MaxPool",
        "mp",
        &[&xl],
        vec![ints("kernel_shape", &[3, 3]), ints("strides", &[2, 2]), ints("pads", &[1, 1, 1, 1])],
    );
    // Less the levels' own maxima, so that the metric stays small (exact
    // differences in float32).
    let pool = vec![ints("kernel_shape", &[3, 3]), ints("strides", &[2, 2]), ints("pads", &[1, 1, 1, 1])];
    let base = b.node("MaxPool", "base", &[&levels], pool);
    let mp = b.node("Sub", "mps", &[&mp, &base], vec![]);
    let w = b.f32("w", &[1, 2, 3, 3], &noise(18, 5));
    let wm = b.node("Mul", "wm", &[&mp, &w], vec![]);
    // Nearest-neighbour resizing, up by 2 and down to 2x2 (asymmetric).
    let roi = b.f32("roi", &[0], &[]);
    let up = b.f32("up", &[4], &[1.0, 1.0, 2.0, 2.0]);
    let r = b.node("Resize", "r", &[&wm, &roi, &up], vec![string("mode", "nearest")]);
    let sizes = b.i64("sizes", &[4], &[2, 2, 2, 2]);
    let down = b.node(
        "Resize",
        "down",
        &[&r, &roi, "", &sizes],
        vec![string("mode", "nearest"), string("coordinate_transformation_mode", "asymmetric")],
    );
    let wd = b.f32("wd", &[1, 2, 2, 2], &noise(8, 6));
    b.node_to("Mul", "y", &[&down, &wd], vec![], "y");
    check(&case(b, &[("x", &[2, 2, 5, 5])], "y", 18), 2e-3);
}

#[test]
fn gelu_in_both_forms_and_gather_nd_match_finite_differences() {
    let mut b = GraphBuilder::default();
    let exact = b.node("Gelu", "exact", &["x"], vec![]);
    let tanh = b.node("Gelu", "tanh", &["x"], vec![string("approximate", "tanh")]);
    let idx = b.i64("idx", &[3, 2], &[0, 1, 1, 2, 0, 1]);
    let picked = b.node("GatherND", "nd", &[&tanh, &idx], vec![]);
    let s = b.node("ReduceSum", "s", &[&exact], vec![int("keepdims", 0)]);
    b.node_to("Mul", "y", &[&picked, &s], vec![], "y");
    check(&case(b, &[("x", &[2, 3])], "y", 20), 2e-3);
}

#[test]
fn clip_and_relu_pass_gradients_inside_their_bounds_only() {
    // Inputs in [-1, 1), none within the differences' step of a kink.
    let mut b = GraphBuilder::default();
    let lo = b.f32("lo", &[], &[-0.3]);
    let hi = b.f32("hi", &[], &[0.6]);
    let cl = b.node("Clip", "cl", &["x", &lo, &hi], vec![]);
    let re = b.node("Relu", "re", &["x"], vec![]);
    let sq = b.node("Mul", "sq", &[&cl, &re], vec![]);
    b.node_to("Add", "y", &[&sq, &cl], vec![], "y");
    check(&case(b, &[("x", &[3, 4])], "y", 13), 2e-3);
}

#[test]
fn an_operator_without_a_rule_is_refused_by_name_and_node() {
    let mut b = GraphBuilder::default();
    b.node_to("LpPool", "pool", &["x"], vec![ints("kernel_shape", &[2, 2])], "y");
    let c = case(b, &[("x", &[1, 1, 4, 4])], "y", 13);
    let e = backward(&c.proto, &["x".to_string()], "y").unwrap_err().to_string();
    assert!(e.contains("LpPool") && e.contains("`pool`"), "{e}");
    // Overlapping max-pooling windows need ScatterElements' reduction: an
    // opset-13 model is refused, saying so.
    let mut b = GraphBuilder::default();
    let overlapping = vec![ints("kernel_shape", &[3, 3]), ints("strides", &[2, 2])];
    b.node_to("MaxPool", "mp", &["x"], overlapping, "y");
    let c = case(b, &[("x", &[1, 1, 5, 5])], "y", 13);
    let e = backward(&c.proto, &["x".to_string()], "y").unwrap_err().to_string();
    assert!(e.contains("MaxPool") && e.contains("opset 16"), "{e}");
    // A metric that does not depend on the tensor is said to be so.
    let mut b = GraphBuilder::default();
    b.node_to("Relu", "r", &["x"], vec![], "y");
    b.node_to("Relu", "r2", &["z"], vec![], "w");
    let mut c = case(b, &[("x", &[2]), ("z", &[2])], "y", 13);
    c.proto.graph.as_mut().unwrap().output.push(ValueInfoProto { name: Some("w".into()), ..Default::default() });
    let e = backward(&c.proto, &["z".to_string()], "y").unwrap_err().to_string();
    assert!(e.contains("does not depend"), "{e}");
}

#[test]
fn onnx_attention_and_rotary_embedding_match_finite_differences() {
    // 4-D: grouped-query heads (4 query heads on 2 key/value heads),
    // causal, soft-capped scores, the default scale.
    let mut b = GraphBuilder::default();
    let attn = vec![int("is_causal", 1), crate::models::build::float_attr("softcap", 2.0)];
    b.node_to("Attention", "attn", &["q", "k", "v"], attn, "y");
    let c = case(b, &[("q", &[1, 4, 3, 4]), ("k", &[1, 2, 3, 4]), ("v", &[1, 2, 3, 4])], "y", 23);
    check(&c, 3e-3);
    // 3-D with head counts, an additive mask, a past cache (its gradient
    // too) and an explicit scale.
    let mut b = GraphBuilder::default();
    let mask = b.f32("mask", &[2, 5], &[0.0, -1.0, 0.5, 0.0, 0.0, 0.0, 0.0, -2.0, 0.0, 0.3]);
    let attrs = vec![int("q_num_heads", 2), int("kv_num_heads", 1), crate::models::build::float_attr("scale", 0.4)];
    b.node_to("Attention", "attn", &["q", "k", "v", &mask, "pk", "pv"], attrs, "y");
    // (ONNX Runtime wants the present cache out where a past one comes in.)
    b.nodes[0].output.extend(["present_k".to_string(), "present_v".to_string()]);
    let inputs: &[(&str, &[usize])] =
        &[("q", &[1, 2, 6]), ("k", &[1, 2, 3]), ("v", &[1, 2, 3]), ("pk", &[1, 1, 3, 3]), ("pv", &[1, 1, 3, 3])];
    check(&case(b, inputs, "y", 23), 3e-3);
    // Rotary embeddings: half the features rotated, pairs interleaved,
    // angles picked by position ids.
    let mut b = GraphBuilder::default();
    let angles = noise(6, 3).iter().map(|a| a * 3.0).collect::<Vec<_>>();
    let cos = b.f32("cos", &[3, 2], &angles.iter().map(|a| a.cos()).collect::<Vec<_>>());
    let sin = b.f32("sin", &[3, 2], &angles.iter().map(|a| a.sin()).collect::<Vec<_>>());
    let pos = b.i64("pos", &[1, 3], &[2, 0, 1]);
    let attrs = vec![int("interleaved", 1), int("rotary_embedding_dim", 4)];
    let r = b.node("RotaryEmbedding", "rope", &["x", &cos, &sin, &pos], attrs);
    b.node_to("Mul", "y", &[&r, &r], vec![], "y");
    check(&case(b, &[("x", &[1, 2, 3, 8])], "y", 23), 3e-3);
}

/// A case whose nodes are ONNX Runtime's com.microsoft kernels.
fn microsoft(b: GraphBuilder, inputs: &[(&str, &[usize])], out: &str) -> Case {
    let mut b = b;
    for n in b.nodes.iter_mut() {
        n.domain = Some("com.microsoft".into());
    }
    let mut c = case(b, inputs, out, 17);
    c.proto
        .opset_import
        .push(crate::onnx::proto::OperatorSetIdProto { domain: Some("com.microsoft".into()), version: Some(1) });
    c
}

#[test]
fn onnx_runtime_fused_kernels_match_finite_differences() {
    let f = crate::models::build::float_attr;
    // A skip norm with a bias, then the biased GELU, its tanh form and
    // QuickGelu; the simplified (RMS) skip norm.
    let mut b = GraphBuilder::default();
    let gamma = b.f32("gamma", &[4], &[1.0, 0.5, -1.5, 2.0]);
    let beta = b.f32("beta", &[4], &[0.1, 0.0, -0.2, 0.3]);
    let bias = b.f32("bias", &[4], &[0.2, -0.1, 0.0, 0.4]);
    let sn = b.node("SkipLayerNormalization", "sn", &["x", "s", &gamma, &beta, &bias], vec![f("epsilon", 1e-5)]);
    let bg = b.node("BiasGelu", "bg", &[&sn, &bias], vec![]);
    let fg = b.node("FastGelu", "fg", &[&bg, &bias], vec![]);
    let qg = b.node("QuickGelu", "qg", &[&fg], vec![f("alpha", 1.5)]);
    b.node_to("SkipSimplifiedLayerNormalization", "y", &[&qg, "s", &gamma], vec![f("epsilon", 1e-5)], "y");
    check(&microsoft(b, &[("x", &[2, 3, 4]), ("s", &[2, 3, 4])], "y"), 3e-3);
    // Attention with packed QKV weights, key lengths, then causal.
    for (causal, mask) in [(0, vec![3i64, 2]), (1, vec![3, 3])] {
        let mut b = GraphBuilder::default();
        let w = b.f32("w", &[4, 12], &noise(48, 5));
        let bias = b.f32("bias", &[12], &noise(12, 6));
        let lens = b.i64("lens", &[2], &mask);
        let lens = b.node("Cast", "lens32", &[&lens], vec![int("to", DataType::Int32 as i64)]);
        let attrs = vec![int("num_heads", 2), int("unidirectional", causal)];
        b.node_to("Attention", "attn", &["x", &w, &bias, &lens], attrs, "y");
        let mut c = microsoft(b, &[("x", &[2, 3, 4])], "y");
        // (The Cast is ONNX's own.)
        c.proto.graph.as_mut().unwrap().node[0].domain = Some(String::new());
        check(&c, 3e-3);
    }
}

#[test]
fn extremes_norms_and_pads_match_finite_differences() {
    // Elementwise Max and Min with broadcasting; ReduceMax, ReduceMin and
    // ReduceL2 with and without kept axes.
    let mut b = GraphBuilder::default();
    let mx = b.node("Max", "mx", &["x", "r"], vec![]);
    let mn = b.node("Min", "mn", &[&mx, "x", "r"], vec![]);
    let rmax = b.node("ReduceMax", "rmax", &[&mn], vec![ints("axes", &[1]), int("keepdims", 0)]);
    let rmin = b.node("ReduceMin", "rmin", &["x"], vec![ints("axes", &[2]), int("keepdims", 1)]);
    let rl2 = b.node("ReduceL2", "rl2", &["x"], vec![ints("axes", &[1, 2]), int("keepdims", 0)]);
    let ax12 = b.i64("ax12", &[2], &[1, 2]);
    let ax1 = b.i64("ax1", &[1], &[1]);
    let rl2 = b.node("Unsqueeze", "u", &[&rl2, &ax12], vec![]);
    let rmax = b.node("Unsqueeze", "u2", &[&rmax, &ax1], vec![]);
    let s = b.node("Add", "s", &[&rmax, &rmin], vec![]);
    b.node_to("Mul", "y", &[&s, &rl2], vec![], "y");
    check(&case(b, &[("x", &[2, 3, 4]), ("r", &[1, 1, 4])], "y", 13), 3e-3);
    // Pad in constant (a crop too), edge and reflect modes, at opset 13
    // and with axes at opset 18.
    for (opset, mode, pads) in [
        (13, "constant", vec![0i64, 1, -1, 0, 2, 1]),
        (13, "edge", vec![0, 2, 1, 0, 1, 3]),
        (13, "reflect", vec![0, 2, 1, 0, 1, 2]),
        (18, "reflect", vec![1, 2, 2, 1]),
    ] {
        let mut b = GraphBuilder::default();
        let p = b.i64("pads", &[pads.len()], &pads);
        let mut inputs = vec!["x".to_string(), p];
        if opset == 18 {
            inputs.push(String::new());
            inputs.push(b.i64("axes", &[2], &[1, 2]));
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let padded = b.node("Pad", "pad", &refs, vec![string("mode", mode)]);
        b.node_to("Mul", "y", &[&padded, &padded], vec![], "y");
        check(&case(b, &[("x", &[2, 4, 5])], "y", opset), 3e-3);
    }
}
