//! Attention found in any exporter's graph, by its structure rather than
//! its names: the PyTorch exporters (TorchScript and dynamo), Hugging Face
//! Optimum and Assay's own graphs all compute attention as
//! `Softmax -> MatMul(probs, V) -> Transpose -> Reshape -> output projection`
//! (with Casts, Dropouts and NaN guards between), and ONNX Runtime's fused
//! attention ops hand the same merged heads to the projection. From each
//! attention block this finds its per-head output before the output
//! projection ([N, T, heads*head_dim], the tensor head units, patching
//! sweeps, path patching, circuits and DCM split into heads), its attention
//! probabilities ([N, heads, T, S]), the residual stream it reads and the
//! one after its layer, and its layer's MLP output.

use std::collections::{HashMap, HashSet};

use crate::onnx::proto::{GraphProto, ModelProto, NodeProto, TensorProto};

/// ONNX Runtime's and ONNX's fused attention ops; each outputs the merged
/// heads [N, T, heads*head_dim] and says its head count in an attribute.
const FUSED: &[&str] =
    &["Attention", "MultiHeadAttention", "GroupQueryAttention", "PackedMultiHeadAttention", "PackedAttention"];

/// The most nodes any walk through the graph takes: a hostile graph may
/// loop (ONNX Runtime refuses it later, but the walks run first).
pub(crate) const MAX_WALK: usize = 64;

/// The name Assay gives the merged heads where an exporter never forms
/// them (it reshapes [N, T, heads, head_dim] straight to [N*T, ...]).
pub fn merged_heads_name(tensor: &str) -> String {
    format!("assay::heads::{tensor}")
}

/// One attention block, in graph order.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// The per-head output before the output projection, [N, T, heads*head_dim].
    pub heads: String,
    pub n_heads: usize,
    pub head_dim: usize,
    /// Attention probabilities [N, heads, T, S] (none inside a fused op).
    pub probs: Option<String>,
    /// The residual stream the block adds its output to.
    pub residual_in: Option<String>,
    /// The residual stream after the block's layer (attention and MLP).
    pub residual: Option<String>,
    /// The layer's MLP output, as it is added to the residual stream.
    pub mlp: Option<String>,
    /// The fused op that computes the block, where one does.
    pub fused: Option<String>,
    /// The output projection's output (its bias included, where it has one).
    pub projected: String,
    /// The queries, keys and values as projected from the stream, [N, T,
    /// heads*head_dim] (keys and values [N, T, kv_heads*head_dim]), before
    /// any rotary embedding; none where the graph never separates them so.
    pub q: Option<String>,
    pub k: Option<String>,
    pub v: Option<String>,
    /// Key/value heads (grouped- or multi-query attention has fewer).
    pub kv_heads: Option<usize>,
    /// Attention and MLP are added to the stream together.
    pub parallel: bool,
    /// Why the block's output is not what the stream receives in the end.
    pub indirect: Option<String>,
}

pub(crate) struct Index<'a> {
    pub(crate) nodes: &'a [NodeProto],
    consumers: HashMap<&'a str, Vec<usize>>,
    producer: HashMap<&'a str, usize>,
    constant: HashSet<&'a str>,
}

impl<'a> Index<'a> {
    pub(crate) fn new(g: &'a GraphProto) -> Index<'a> {
        let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut producer: HashMap<&str, usize> = HashMap::new();
        let mut constant: HashSet<&str> = g.initializer.iter().map(|t| t.name()).collect();
        for (i, n) in g.node.iter().enumerate() {
            for x in &n.input {
                consumers.entry(x.as_str()).or_default().push(i);
            }
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                producer.entry(o.as_str()).or_insert(i);
            }
            let inputs: Vec<&String> = n.input.iter().filter(|x| !x.is_empty()).collect();
            let folds = n.op_type() == "Constant"
                || (!inputs.is_empty()
                    && inputs.iter().all(|x| constant.contains(x.as_str()))
                    && n.op_type() != "Shape");
            if folds {
                constant.extend(n.output.iter().map(|s| s.as_str()));
            }
        }
        Index { nodes: &g.node, consumers, producer, constant }
    }

    /// The node that computes `t` (none for graph inputs and initializers).
    pub(crate) fn producer(&self, t: &str) -> Option<&'a NodeProto> {
        self.producer.get(t).map(|&i| &self.nodes[i])
    }

    /// The nodes that read `t` as data (not only its shape).
    pub(crate) fn data_consumers(&self, t: &str) -> Vec<&'a NodeProto> {
        self.consumers
            .get(t)
            .map(|v| v.iter().map(|&i| &self.nodes[i]).filter(|n| !matches!(n.op_type(), "Shape" | "IsNaN")).collect())
            .unwrap_or_default()
    }

    pub(crate) fn is_const(&self, t: &str) -> bool {
        self.constant.contains(t)
    }

    /// `t` followed through the no-op Casts some exporters put before a
    /// norm (Llama's RMSNorm computes in float32): the same stream.
    pub(crate) fn through_casts(&self, t: &str) -> String {
        let mut t = t.to_string();
        for _ in 0..MAX_WALK {
            let next = self.data_consumers(&t);
            let [c] = next.as_slice() else { break };
            match c.output.first() {
                Some(o) if c.op_type() == "Cast" => t = o.clone(),
                _ => break,
            }
        }
        t
    }

    /// A projection by weights: MatMul or Gemm of `t` by a constant.
    pub(crate) fn projects(&self, n: &NodeProto, t: &str) -> bool {
        matches!(n.op_type(), "MatMul" | "Gemm")
            && n.input.first().is_some_and(|x| x == t)
            && n.input.get(1).is_some_and(|w| self.is_const(w))
    }
}

/// A block as the graph's structure shows it, before shapes are known.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) node: usize,
    pub(crate) probs: Option<String>,
    /// The heads' output and each layout of it up to the projection.
    pub(crate) path: Vec<String>,
    /// The projection's output.
    pub(crate) projected: String,
    pub(crate) fused: Option<(String, usize)>,
    /// What attention computes from: its scores and values, or a fused op's
    /// query, key and value inputs.
    pub(crate) qkv: Option<Operands>,
}

/// The operands of one attention block.
#[derive(Debug, Clone)]
pub(crate) enum Operands {
    /// The Softmax's input (the scores, from Q·Kᵀ) and the value operand of
    /// MatMul(probs, V).
    Scores { scores: String, v: String },
    /// A fused op's query, key and value inputs.
    Fused([String; 3]),
}

pub(crate) fn found(idx: &Index) -> Vec<Found> {
    let mut out = Vec::new();
    for (i, n) in idx.nodes.iter().enumerate() {
        let (start, probs, fused, qkv) = if n.op_type() == "Softmax" {
            let Some(probs) = n.output.first() else { continue };
            // Through casts, dropout and NaN guards to MatMul(probs, V).
            let mut reach = vec![probs.as_str()];
            let mut ctx = None;
            let mut k = 0;
            while k < reach.len().min(MAX_WALK) && ctx.is_none() {
                let t = reach[k];
                k += 1;
                for c in idx.data_consumers(t) {
                    let at = |j: usize| c.input.get(j).is_some_and(|x| x == t);
                    match c.op_type() {
                        // BLOOM reshapes the probabilities to [N*heads, T, S] for a
                        // batched matmul with V.
                        "Cast" | "Dropout" | "Identity" | "Reshape" if at(0) => {
                            reach.extend(c.output.first().map(|s| s.as_str()))
                        }
                        "Where" if at(1) || at(2) => reach.extend(c.output.first().map(|s| s.as_str())),
                        "MatMul" if at(0) && c.input.get(1).is_some_and(|v| !idx.is_const(v)) => {
                            ctx = c.output.first().cloned().map(|o| (o, c.input.get(1).cloned().unwrap_or_default()));
                        }
                        _ => {}
                    }
                }
            }
            let Some((ctx, v)) = ctx else { continue };
            let operands = n.input.first().map(|scores| Operands::Scores { scores: scores.clone(), v });
            (ctx, Some(probs.clone()), None, operands)
        } else if FUSED.contains(&n.op_type()) {
            let heads = n
                .attribute
                .iter()
                .find(|a| matches!(a.name(), "num_heads" | "q_num_heads"))
                .and_then(|a| a.i)
                .and_then(|h| usize::try_from(h).ok());
            let Some(out) = n.output.first() else { continue };
            // ONNX's Attention and ONNX Runtime's MultiHeadAttention and
            // GroupQueryAttention take Q, K and V; its Attention takes the
            // stream and packed weights.
            let input = |i: usize| n.input.get(i).filter(|x| !x.is_empty()).cloned();
            let qkv = match (n.domain(), n.op_type()) {
                ("com.microsoft", "Attention" | "PackedAttention" | "PackedMultiHeadAttention") => None,
                _ => input(0).zip(input(1)).zip(input(2)).map(|((q, k), v)| Operands::Fused([q, k, v])),
            };
            (out.clone(), None, Some((n.op_type().to_string(), heads.unwrap_or(0))), qkv)
        } else {
            continue;
        };
        // Through layout-only ops to the output projection.
        let mut path = vec![start];
        let mut steps = 0;
        let projected = loop {
            steps += 1;
            if steps > MAX_WALK {
                break None;
            }
            let t = path.last().cloned().unwrap_or_default();
            let next = idx.data_consumers(&t);
            let [c] = next.as_slice() else { break None };
            if idx.projects(c, &t) {
                break c.output.first().cloned();
            }
            match c.op_type() {
                "Transpose" | "Reshape" | "Cast" | "Identity" | "Squeeze" | "Unsqueeze" | "Flatten"
                    if c.input.first() == Some(&t) =>
                {
                    match c.output.first() {
                        Some(o) => path.push(o.clone()),
                        None => break None,
                    }
                }
                _ => break None,
            }
        };
        let Some(projected) = projected else { continue };
        out.push(Found { node: i, probs, path, projected, fused, qkv });
    }
    out
}

/// Where an exporter reshapes the heads [N, T, heads, head_dim] straight to
/// [N*T, heads*head_dim] before the projection (the dynamo exporter's
/// GPT-2), adds `Reshape(x, [0, 0, -1])` so the merged heads exist as
/// [N, T, heads*head_dim] (named by [`merged_heads_name`]), and feeds the
/// 2-D reshape from it. Exact: a reshape moves no data. Other graphs are
/// returned as they are.
pub fn canonicalize(mut m: ModelProto) -> ModelProto {
    let Some(g) = m.graph.as_ref() else { return m };
    let idx = Index::new(g);
    let mut edits = Vec::new();
    for f in found(&idx) {
        // [ctx, transposed, flat, ...]: a 4-D transpose then a 2-D reshape.
        let Some(pos) = f.path.iter().position(|t| {
            idx.data_consumers(t)
                .first()
                .is_some_and(|c| c.op_type() == "Reshape" && reshape_rank(g, &idx, c) == Some(2))
        }) else {
            continue;
        };
        if pos == 0 {
            continue;
        }
        let from = f.path[pos].clone();
        let transposed = g.node.iter().any(|n| {
            n.op_type() == "Transpose"
                && n.output.first() == Some(&from)
                && n.attribute.iter().any(|a| a.name() == "perm" && a.ints == [0, 2, 1, 3])
        });
        if transposed {
            edits.push(from);
        }
    }
    if edits.is_empty() {
        return m;
    }
    let Some(g) = m.graph.as_mut() else { return m };
    let shape_name = "assay::heads::shape".to_string();
    g.initializer.push(TensorProto {
        dims: vec![3],
        data_type: Some(7),
        int64_data: vec![0, 0, -1],
        name: Some(shape_name.clone()),
        ..Default::default()
    });
    for from in edits {
        let merged = merged_heads_name(&from);
        let Some(at) = g.node.iter().position(|n| n.op_type() == "Reshape" && n.input.first() == Some(&from)) else {
            continue;
        };
        g.node[at].input[0] = merged.clone();
        g.node.insert(
            at,
            NodeProto {
                input: vec![from.clone(), shape_name.clone()],
                output: vec![merged.clone()],
                name: Some(merged.clone()),
                op_type: Some("Reshape".into()),
                ..Default::default()
            },
        );
    }
    m
}

/// The rank a Reshape gives, where its shape is a constant.
fn reshape_rank(g: &GraphProto, idx: &Index, n: &NodeProto) -> Option<usize> {
    let s = n.input.get(1)?;
    if !idx.is_const(s) {
        return None;
    }
    if let Some(t) = g.initializer.iter().find(|t| t.name() == s) {
        return t.dims.first().and_then(|d| usize::try_from(*d).ok());
    }
    g.node
        .iter()
        .find(|c| c.op_type() == "Constant" && c.output.first() == Some(s))
        .and_then(|c| c.attribute.iter().find(|a| a.name() == "value"))
        .and_then(|a| a.t.as_ref())
        .and_then(|t| t.dims.first().and_then(|d| usize::try_from(*d).ok()))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "tests read their fixtures directly")]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn fixtures() -> Vec<(String, ModelProto)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/cases/data/lm");
        let mut out: Vec<(String, ModelProto)> = std::fs::read_dir(&dir)
            .expect("the exported fixtures")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
            .map(|p| {
                (
                    p.display().to_string(),
                    super::super::graph::decode(&std::fs::read(&p).expect("read")).expect("decode"),
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The structural search finds one block per layer in every exported
    /// graph (the probe run and shapes are checked by the script cases).
    #[test]
    fn every_exported_graph_shows_two_attention_blocks() {
        let all = fixtures();
        assert!(all.len() >= 19, "{} fixtures", all.len());
        for (name, m) in &all {
            let m = canonicalize(m.clone());
            let g = m.graph.as_ref().expect("graph");
            let idx = Index::new(g);
            let f = found(&idx);
            assert_eq!(f.len(), 2, "{name}: {f:?}");
            for b in &f {
                // Every block reaches a projection by weights.
                assert!(g.node.iter().any(|n| n.output.first() == Some(&b.projected)), "{name}");
            }
        }
    }

    /// A hostile or broken graph never panics the search or the rewrite:
    /// nodes lose their outputs or inputs, change their op, get looped back,
    /// and initializers vanish.
    #[test]
    fn mangled_graphs_never_panic() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for (_, m) in fixtures().into_iter().take(8) {
            for _ in 0..40 {
                let mut m = m.clone();
                let Some(g) = m.graph.as_mut() else { continue };
                let n = g.node.len();
                for _ in 0..rng.random_range(1..20) {
                    let i = rng.random_range(0..n);
                    match rng.random_range(0..6) {
                        0 => g.node[i].output.clear(),
                        1 => g.node[i].input.clear(),
                        2 => {
                            g.node[i].op_type = Some(
                                ["Softmax", "MatMul", "Reshape", "Transpose", "Add", "Attention", "Cast"]
                                    [rng.random_range(0..7)]
                                .into(),
                            )
                        }
                        3 => {
                            let j = rng.random_range(0..n);
                            if let Some(o) = g.node[j].output.first().cloned() {
                                g.node[i].input.push(o);
                            }
                        }
                        4 => {
                            if !g.initializer.is_empty() {
                                let k = rng.random_range(0..g.initializer.len());
                                g.initializer.remove(k);
                            }
                        }
                        _ => g.node[i].attribute.clear(),
                    }
                }
                let m = canonicalize(m);
                let g = m.graph.as_ref().expect("graph");
                let idx = Index::new(g);
                for f in found(&idx) {
                    let _ = crate::onnx::streams::streams(&idx, &f.projected);
                }
            }
        }
    }
}
