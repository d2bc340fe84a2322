//! The attention blocks of a loaded model: the graph's structure
//! (`attention::found`) with each block's head count and size read off one
//! probe run. Apart from `attention`, which reads the graph alone (and
//! which loading a model uses to canonicalise it), so neither file needs
//! the other's side.

use ndarray::ArrayD;

use crate::onnx::attention::{found, Block, Index, Operands};
use crate::onnx::model::Model;
use crate::onnx::qkv::{projected_from, scores_inputs};
use crate::onnx::streams::streams;

/// Feeds for one probe run: `input_ids` [[1, 2, 3]] for a language model,
/// zeros elsewhere (symbolic dimensions: 1 for the batch, else 3).
fn probe_feeds(m: &Model) -> Vec<(String, ArrayD<f32>)> {
    m.inputs
        .iter()
        .filter(|p| !m.optional_input(&p.name))
        .map(|p| {
            if p.name == "input_ids" {
                return (p.name.clone(), ArrayD::from_shape_vec(vec![1, 3], vec![1.0, 2.0, 3.0]).unwrap_or_default());
            }
            let dims: Vec<usize> = p
                .shape
                .iter()
                .flatten()
                .enumerate()
                .map(|(i, d)| match d {
                    crate::onnx::model::Dim::Fixed(n) if *n > 0 => *n as usize,
                    _ if i == 0 => 1,
                    _ => 3,
                })
                .collect();
            (p.name.clone(), ArrayD::zeros(dims))
        })
        .collect()
}

/// Every attention block of the model, in graph order, with its heads
/// counted by one probe run. An error says why none was found.
pub fn find(m: &Model) -> Result<Vec<Block>, String> {
    let g = m.proto.graph.as_ref().ok_or("the model has no graph")?;
    let idx = Index::new(g);
    let all = found(&idx);
    if all.is_empty() {
        let softmax = g.node.iter().filter(|n| n.op_type() == "Softmax").count();
        let custom: Vec<String> = g
            .node
            .iter()
            .filter(|n| !matches!(n.domain(), "" | "ai.onnx"))
            .map(|n| format!("{}.{}", n.domain(), n.op_type()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        return Err(if !custom.is_empty() {
            format!(
                "no attention block was found: the graph has no Softmax feeding MatMul(probs, V) and an output projection, and uses ops Assay cannot look inside ({})",
                custom.join(", ")
            )
        } else if softmax > 0 {
            format!("no attention block was found: of the graph's {softmax} Softmax nodes, none feeds MatMul(probs, V) and then, through transposes and reshapes only, a projection by weights")
        } else {
            "no attention block was found: the graph has no Softmax and no fused attention op".to_string()
        });
    }
    // Each block's q, k and v candidates (from their projection on).
    let chains: Vec<Vec<Vec<String>>> = all
        .iter()
        .map(|f| {
            let ops = match &f.qkv {
                Some(Operands::Scores { scores, v }) => scores_inputs(&idx, scores).map(|(q, k)| [q, k, v.clone()]),
                Some(Operands::Fused(qkv)) => Some(qkv.clone()),
                None => None,
            };
            ops.map(|ops| ops.iter().map(|o| projected_from(&idx, o)).collect()).unwrap_or_default()
        })
        .collect();
    let mut want: Vec<String> = all
        .iter()
        .flat_map(|f| f.path.iter().cloned().chain(f.probs.iter().cloned()))
        .chain(chains.iter().flatten().flatten().cloned())
        .collect();
    want.sort();
    want.dedup();
    let probe = m.capture(probe_feeds(m), &want).map_err(|e| format!("the probe run to count heads failed: {e}"))?;
    let shape = |t: &str| probe.get(t).map(|v| v.shape().to_vec()).unwrap_or_default();
    let mut blocks = Vec::new();
    for (f, chains) in all.into_iter().zip(chains) {
        let (n_heads, head_dim) = match &f.fused {
            // The op's output: [N, T, heads*head_dim] with a head count
            // attribute, or [N, heads, T, head_dim] (ONNX's Attention with
            // 4-D inputs, as PyTorch's dynamo exporter writes at opset 23).
            Some((op, h)) => match shape(&f.path[0]).as_slice() {
                [_, heads, _, d] => (*heads, *d),
                [_, _, width] if *h > 0 && width % h == 0 => (*h, width / h),
                s => {
                    return Err(format!(
                        "attention is fused into a `{op}` node whose heads cannot be split (its output is {s:?} and it says {h} heads)"
                    ))
                }
            },
            // [N, heads, T, head_dim], or with grouped-query attention
            // [N, kv_heads, heads per kv head, T, head_dim]; BLOOM's
            // batched matmul gives [N*heads, T, head_dim] first.
            None => match f.path.iter().map(|t| shape(t)).find(|s| s.len() >= 4).unwrap_or_default().as_slice() {
                [_, h @ .., _, d] if !h.is_empty() => (h.iter().product(), *d),
                s => {
                    return Err(format!(
                        "`{}` (attention's MatMul(probs, V)) is {s:?}, not [N, heads, T, head_dim]",
                        f.path[0]
                    ))
                }
            },
        };
        let merged: Vec<&String> =
            f.path.iter().filter(|t| shape(t).len() == 3 && shape(t)[2] == n_heads * head_dim).collect();
        let Some(heads) = merged.last() else {
            return Err(format!(
                "the heads of the attention block at `{}` are never [N, T, heads*head_dim] before the output projection (layouts: {})",
                f.path[0],
                f.path.iter().map(|t| format!("`{t}` {:?}", shape(t))).collect::<Vec<_>>().join(", ")
            ));
        };
        let s = streams(&idx, &f.projected);
        let (q, k, v, kv_heads) = qkv(&chains, n_heads, head_dim, &shape);
        blocks.push((
            f.node,
            Block {
                heads: (*heads).clone(),
                n_heads,
                head_dim,
                probs: f.probs,
                residual_in: s.residual_in,
                residual: s.residual,
                mlp: s.mlp,
                fused: f.fused.map(|(op, _)| op),
                projected: f.projected.clone(),
                q,
                k,
                v,
                kv_heads,
                parallel: s.parallel,
                indirect: s.indirect,
            },
        ));
    }
    blocks.sort_by_key(|(i, _)| *i);
    Ok(blocks.into_iter().map(|(_, b)| b).collect())
}

type Qkv = (Option<String>, Option<String>, Option<String>, Option<usize>);

/// A block's q, k and v from their candidates: the last one shaped [1, T,
/// width] (the probe's batch of one), queries `n_heads * head_dim` wide,
/// keys and values a whole number of heads that divides `n_heads`. None
/// where the three are one tensor (a fused QKV projection the graph never
/// splits into [N, T, width] parts) or a shape does not fit.
fn qkv(chains: &[Vec<String>], n_heads: usize, head_dim: usize, shape: &dyn Fn(&str) -> Vec<usize>) -> Qkv {
    let pick = |chain: &Vec<String>, fits: &dyn Fn(usize) -> bool| {
        chain.iter().rev().find(|t| matches!(shape(t).as_slice(), [1, _, w] if fits(*w))).cloned()
    };
    let [qc, kc, vc] = chains else { return (None, None, None, None) };
    let q = pick(qc, &|w| w == n_heads * head_dim);
    let kv_fits =
        |w: usize| head_dim > 0 && w > 0 && w.is_multiple_of(head_dim) && n_heads.is_multiple_of(w / head_dim);
    let k = pick(kc, &kv_fits);
    let v = pick(vc, &kv_fits);
    let distinct = q.is_some() && k.is_some() && v.is_some() && q != k && k != v && q != v;
    if !distinct {
        return (None, None, None, None);
    }
    let width = |t: &Option<String>| t.as_deref().map(|t| shape(t).last().copied().unwrap_or(0)).unwrap_or(0);
    if width(&k) != width(&v) {
        return (None, None, None, None);
    }
    let kv_heads = width(&k) / head_dim.max(1);
    (q, k, v, Some(kv_heads))
}
