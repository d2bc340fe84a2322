//! The attention blocks of a loaded model: the graph's structure
//! (`attention::found`) with each block's head count and size read off one
//! probe run. Apart from `attention`, which reads the graph alone (and
//! which loading a model uses to canonicalise it), so neither file needs
//! the other's side.

use ndarray::ArrayD;

use crate::onnx::attention::{found, streams, Block, Index};
use crate::onnx::model::Model;

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
    let mut want: Vec<String> =
        all.iter().flat_map(|f| f.path.iter().cloned().chain(f.probs.iter().cloned())).collect();
    want.sort();
    want.dedup();
    let probe = m.capture(probe_feeds(m), &want).map_err(|e| format!("the probe run to count heads failed: {e}"))?;
    let shape = |t: &str| probe.get(t).map(|v| v.shape().to_vec()).unwrap_or_default();
    let mut blocks = Vec::new();
    for f in all {
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
            // [N, kv_heads, heads per kv head, T, head_dim].
            None => match shape(&f.path[0]).as_slice() {
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
        let (residual_in, residual, mlp) = streams(&idx, &f.projected);
        blocks.push((
            f.node,
            Block {
                heads: (*heads).clone(),
                n_heads,
                head_dim,
                probs: f.probs,
                residual_in,
                residual,
                mlp,
                fused: f.fused.map(|(op, _)| op),
                projected: f.projected.clone(),
            },
        ));
    }
    blocks.sort_by_key(|(i, _)| *i);
    Ok(blocks.into_iter().map(|(_, b)| b).collect())
}
