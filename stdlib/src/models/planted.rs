//! A tiny attention-only transformer with planted structure, built as an
//! ONNX graph so that the intervention tools can be checked where the right
//! answer is known by construction.
//!
//! Vocabulary 4, residual width 4 (one-hot tokens: embedding and unembedding
//! are identities), 3 positions, 2 layers of 2 heads. Attention patterns are
//! fixed matrices (no queries or keys), so every effect is linear and can be
//! computed by hand:
//! - L0H0 copies the FIRST token into every position (value I, output I);
//! - L1H0 re-reads the residual at its own position and writes it back twice
//!   (value I, output 2I), so it carries L0H0's signal a second way;
//! - L0H1 and L1H1 are inert: their output weights are zero.
//!
//! At the last position, logits = 3·e(last) + 3·e(first): the first token's
//! logit is 1 from L0H0 directly and 2 through L1H0.
//!
//! Head outputs are `/layers.L/heads_output_0` [N, 3, 8] (2 heads × 4),
//! values `/layers.L/v_output_0` [N, 3, 8], residual stream after each layer
//! `/layers.L/residual_output_0` [N, 3, 4]; input `input_ids` [N, 3] (int64),
//! output `logits` [N, 3, 4].

use super::build::{batched, int, GraphBuilder};
use crate::onnx::proto::{tensor_proto::DataType, GraphProto, ModelProto};

pub const VOCAB: usize = 4;
pub const POSITIONS: usize = 3;
pub const HEADS: usize = 2;

/// `model("planted")`.
pub const BUILT_IN: super::BuiltIn = super::BuiltIn {
    name: "planted",
    about: "a 2-layer, 2-head toy transformer with planted structure for checking intervention tools: L0H0 copies the first token, L1H0 re-reads it, L0H1 and L1H1 are inert; vocabulary 4, input `input_ids` [N, 3], output `logits` [N, 3, 4]",
    prepare: || prepare(Variant::Original),
};

/// `model("planted-altered")`.
pub const BUILT_IN_ALTERED: super::BuiltIn = super::BuiltIn {
    name: "planted-altered",
    about: "the planted model, but its L0H0 copies a shifted token",
    prepare: || prepare(Variant::Altered),
};

fn prepare(variant: Variant) -> Result<super::Prepared, String> {
    let name = if variant == Variant::Original { "planted" } else { "planted-altered" };
    let (path, _, _) = super::build::cache_built("planted", name, &build(variant))?;
    Ok(super::Prepared::graph(path))
}

/// Variants: the original, or one whose copy head (L0H0) copies the
/// first token shifted by one (its value matrix is a cyclic permutation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Original,
    Altered,
}

fn eye(n: usize, scale: f32) -> Vec<f32> {
    (0..n * n).map(|i| if i / n == i % n { scale } else { 0.0 }).collect()
}

pub fn build(variant: Variant) -> ModelProto {
    let (v, t, h) = (VOCAB, POSITIONS, HEADS);
    let mut b = GraphBuilder::default();
    b.f32("embed.weight", &[v, v], &eye(v, 1.0));
    let mut x = b.node("Gather", "/embed", &["embed.weight", "input_ids"], vec![int("axis", 0)]);
    // Fixed attention patterns: "attend to position 0", "attend to self",
    // and a causal average for the inert heads (they write nothing anyway).
    let first: Vec<f32> = (0..t * t).map(|i| if i % t == 0 { 1.0 } else { 0.0 }).collect();
    let causal: Vec<f32> = (0..t * t).map(|i| if i % t <= i / t { 1.0 / (i / t + 1) as f32 } else { 0.0 }).collect();
    for layer in 0..2 {
        let p = format!("layers.{layer}");
        // Values of both heads side by side: [v, h*v].
        let mut wv = vec![0f32; v * h * v];
        for r in 0..v {
            for head in 0..h {
                let mut c = r;
                if layer == 0 && head == 0 && variant == Variant::Altered {
                    c = (r + 1) % v;
                }
                wv[r * h * v + head * v + c] = 1.0;
            }
        }
        b.f32(&format!("{p}.v.weight"), &[v, h * v], &wv);
        let values = b.node("MatMul", &format!("/{p}/v"), &[&x, &format!("{p}.v.weight")], vec![]);
        let mut heads = Vec::new();
        for head in 0..h {
            let s = b.i64(&format!("{p}.h{head}.starts"), &[1], &[(head * v) as i64]);
            let e = b.i64(&format!("{p}.h{head}.ends"), &[1], &[((head + 1) * v) as i64]);
            let ax = b.i64(&format!("{p}.h{head}.axes"), &[1], &[2]);
            let vh = b.node("Slice", &format!("/{p}/head{head}/Slice"), &[&values, &s, &e, &ax], vec![]);
            let pattern = if head == 1 {
                &causal
            } else if layer == 0 {
                &first
            } else {
                &eye(t, 1.0)
            };
            let a = b.f32(&format!("{p}.h{head}.pattern"), &[t, t], pattern);
            heads.push(b.node("MatMul", &format!("/{p}/head{head}/MatMul"), &[&a, &vh], vec![]));
        }
        let refs: Vec<&str> = heads.iter().map(|s| s.as_str()).collect();
        let z = b.node("Concat", &format!("/{p}/heads"), &refs, vec![int("axis", 2)]);
        // Output weights: head 0 writes (scale I), head 1 writes nothing.
        let scale = if layer == 0 { 1.0 } else { 2.0 };
        let mut wo = eye(v, scale);
        wo.extend(vec![0f32; v * v]);
        b.f32(&format!("{p}.o.weight"), &[h * v, v], &wo);
        let out = b.node("MatMul", &format!("/{p}/o"), &[&z, &format!("{p}.o.weight")], vec![]);
        x = b.node("Add", &format!("/{p}/residual"), &[&x, &out], vec![]);
    }
    b.f32("unembed.weight", &[v, v], &eye(v, 1.0));
    b.node_to("MatMul", "/unembed", &[&x, "unembed.weight"], vec![], "logits");
    let graph = GraphProto {
        node: b.nodes,
        name: Some("planted".into()),
        initializer: b.inits,
        input: vec![batched("input_ids", DataType::Int64, &[t as i64])],
        output: vec![batched("logits", DataType::Float, &[t as i64, v as i64])],
        ..Default::default()
    };
    super::build::model(
        graph,
        format!("Assay planted transformer ({variant:?}): L0H0 copies the first token, L1H0 re-reads it, L0H1 and L1H1 are inert"),
    )
}
