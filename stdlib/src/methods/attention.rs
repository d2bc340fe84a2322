//! Attention patterns as tools: each block's heads, probabilities and
//! residual streams (`attention`), and one block's pattern on an input
//! (`attention_pattern`), from the blocks `onnx::attention` finds by the
//! graph's structure.

use assay_interpreter::{ToolError, Type, Value};

use crate::core::declare::{tool, ToolCtx, ToolResult};
use crate::core::kinds::Inputs;
use crate::onnx::attention::Block;
use crate::onnx::blocks::find;
use crate::onnx::handle::ModelHandle;

tool! {
    /// Each attention block's heads, probabilities and residual stream, found by the graph's structure.
    /// Works whatever exported the model (PyTorch's TorchScript or dynamo exporter, Optimum, Assay's
    /// own models, ONNX Runtime's fused attention ops, ONNX's Attention op as the dynamo exporter
    /// writes it at opset 23) and names the tensors in one scheme. Returns {layers, n_heads, head_dim,
    /// heads, probs, residual, residual_in, mlp, q, k, v, kv_heads, blocks}: `heads` lists each block's per-head output
    /// before the output projection ([N, T, n_heads*head_dim], so `parts: n_heads` splits it into heads
    /// for patch_sweep, path_patch, circuit, dcm, cross_patch and unit's `head`), `probs` its attention
    /// probabilities ([N, n_heads, T, S]; none inside a fused op), `residual` the residual stream after
    /// each layer (before any final norm), `residual_in` the stream the first block reads, `mlp` each
    /// layer's MLP output as it is added to the stream (parallel blocks, as GPT-NeoX's, add it beside
    /// attention), `q`/`k`/`v` each layer's query, key and value projections ([N, T, n_heads*head_dim],
    /// keys and values kv_heads wide, before rotary embeddings: `receiver_parts: n_heads` or `kv_heads`
    /// splits them into heads for path_patch); `blocks` has the same per block with `layer`, `fused`
    /// and `parallel`. A tensor the graph's shape does not show is none. Where an exporter
    /// never forms the merged heads (it reshapes [N, T, heads, head_dim] straight to [N*T, ...]),
    /// Assay's loader adds them as `assay::heads::<tensor>` (a reshape: exact).
    ///
    /// ```assay
    /// let lm = model("smollm2-135m")
    /// let a = attention(lm)
    /// assert a.layers == 30 and a.n_heads == 9 and a.head_dim == 64
    /// assert a.heads[0] == "/model/layers.0/self_attn/heads_output_0"
    /// assert a.residual[29] == "/model/layers.29/residual_mlp_output_0"
    /// let u = unit(lm, a.heads[3], head: 2, heads: a.n_heads)
    /// ```
    attention in Models -> Type::record();
    {
        /// a model whose graph has attention
        model: ModelHandle,
    }
    attention
}

fn attention(p: attention::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let m = p.model.clone();
    let blocks = find(&m).map_err(|e| {
            p.model.error(e).help("attention is found as Softmax -> MatMul(probs, V) -> transposes/reshapes -> a projection by weights, or a fused attention op with a head count; name tensors by hand (see inspect) for other graphs")
        })?;
    let name = |s: &Option<String>| s.as_ref().map_or(Value::None, Value::str);
    let list = |f: &dyn Fn(&Block) -> Value| Value::list(blocks.iter().map(f).collect());
    let same = |f: &dyn Fn(&Block) -> usize| {
        let first = blocks.first().map(f).unwrap_or(0);
        if blocks.iter().all(|b| f(b) == first) {
            Value::Num(first as f64)
        } else {
            Value::None
        }
    };
    let per_block = blocks
        .iter()
        .enumerate()
        .map(|(i, b)| {
            Value::record([
                ("layer", Value::Num(i as f64)),
                ("heads", Value::str(&b.heads)),
                ("n_heads", Value::Num(b.n_heads as f64)),
                ("head_dim", Value::Num(b.head_dim as f64)),
                ("probs", name(&b.probs)),
                ("residual_in", name(&b.residual_in)),
                ("residual", name(&b.residual)),
                ("mlp", name(&b.mlp)),
                ("fused", name(&b.fused)),
                ("q", name(&b.q)),
                ("k", name(&b.k)),
                ("v", name(&b.v)),
                ("kv_heads", b.kv_heads.map_or(Value::None, |k| Value::Num(k as f64))),
                ("parallel", Value::Bool(b.parallel)),
            ])
        })
        .collect();
    Ok(Value::record([
        ("layers", Value::Num(blocks.len() as f64)),
        ("n_heads", same(&|b| b.n_heads)),
        ("head_dim", same(&|b| b.head_dim)),
        ("heads", list(&|b| Value::str(&b.heads))),
        ("probs", list(&|b| name(&b.probs))),
        ("residual", list(&|b| name(&b.residual))),
        ("residual_in", blocks.first().map_or(Value::None, |b| name(&b.residual_in))),
        ("mlp", list(&|b| name(&b.mlp))),
        ("q", list(&|b| name(&b.q))),
        ("k", list(&|b| name(&b.k))),
        ("v", list(&|b| name(&b.v))),
        (
            "kv_heads",
            blocks
                .first()
                .and_then(|b| b.kv_heads)
                .filter(|k| blocks.iter().all(|b| b.kv_heads == Some(*k)))
                .map_or(Value::None, |k| Value::Num(k as f64)),
        ),
        ("blocks", Value::list(per_block)),
    ]))
}

tool! {
    /// One example's attention probabilities at one layer: [heads, T, S]. Found as attention() finds
    /// them: [heads, T, S] (query positions by key positions, each row summing to 1), or [T, S] for one
    /// `head`. Grouped-query layouts ([N, kv_heads, heads per kv head, T, S]) come out as [heads, T, S]
    /// in head order. Plot one with plot("heatmap", p, x_ticks: tokens, y_ticks: tokens).
    ///
    /// ```assay
    /// let lm = model("smollm2-135m")
    /// let p = attention_pattern(lm, "The capital of France is", 29)
    /// assert p.shape == [9, 5, 5]
    /// assert abs(sum(p[4][2]) - 1) < 0.0001 and p[4][2][3] == 0, "a query sees only earlier keys"
    /// assert attention_pattern(lm, "The capital of France is", 29, head: 4) == p[4]
    /// ```
    attention_pattern in Models -> Type::Tensor;
    {
        /// a model whose graph has attention
        model: ModelHandle,
        /// one prompt (text) or the inputs of one example
        inputs: Inputs,
        /// the attention block, from 0 in graph order
        layer: usize,
        /// one head (default: all)
        head: Option<usize> = None,
    }
    attention_pattern
}

fn attention_pattern(p: attention_pattern::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let (head, head_name) = (*p.head, p.head.name());
    let m = p.model.clone();
    let inputs = crate::onnx::handle::feeds(&m, &p.inputs)?;
    if let Some((k, t)) = inputs.iter().find(|(_, t)| t.shape().first() != Some(&1)) {
        return Err(p
            .inputs
            .error(format!("attention_pattern reads one example; input `{k}` is {:?}", t.shape()))
            .help("map over prompts: map(prompts, p => attention_pattern(model, p, layer))"));
    }
    let blocks = find(&m).map_err(|e| p.model.error(e))?;
    let layer = *p.layer;
    let b = blocks.get(layer).ok_or_else(|| {
        p.layer.error(format!(
            "the model has {} attention blocks (0 to {}), not {layer}",
            blocks.len(),
            blocks.len().saturating_sub(1)
        ))
    })?;
    let probs = b.probs.clone().ok_or_else(|| {
        let op = b.fused.clone().unwrap_or_default();
        // Who wrote the op says how to avoid it: ONNX's own Attention is
        // what PyTorch's dynamo exporter writes at opset 23; ONNX Runtime's
        // ops (com.microsoft) come from its transformer optimizer.
        let onnx_op = m.proto.graph.as_ref().is_some_and(|g| {
            g.node.iter().any(|n| n.op_type() == op && matches!(n.domain(), "" | "ai.onnx"))
        });
        let help = if onnx_op {
            "this is ONNX's own Attention op, which PyTorch's dynamo exporter writes at opset 23 for SDPA attention: export at opset 18-22, or with attn_implementation=\"eager\", to see the patterns"
        } else {
            "this op comes from ONNX Runtime's transformer optimizer: use the model as exported, before the optimizer fused its attention, to see the patterns"
        };
        p.layer.error(format!("block {layer} is a fused `{op}` op, which never shows its attention probabilities")).help(help)
    })?;
    let mut out =
        m.capture(inputs, std::slice::from_ref(&probs)).map_err(|e| m.blame(e, p.inputs.name(), p.layer.name()))?;
    let p = out.remove(&probs).ok_or_else(|| ToolError::new(format!("no value captured for `{probs}`")))?;
    let shape = p.shape().to_vec();
    let (t, s) = match shape.as_slice() {
        [1, .., t, s] if shape.len() >= 4 => (*t, *s),
        _ => return Err(ToolError::new(format!("`{probs}` is {shape:?}, not [1, heads, T, S]"))),
    };
    let heads: usize = shape[1..shape.len() - 2].iter().product();
    let p = p.into_shape_with_order(vec![heads, t, s]).map_err(|e| ToolError::new(e.to_string()))?;
    match head {
        None => Ok(Value::tensor(p)),
        Some(h) => {
            if h >= heads {
                return Err(ToolError::arg(
                    head_name,
                    format!("block {layer} has {heads} heads (0 to {}), not {h}", heads - 1),
                ));
            }
            Ok(Value::tensor(p.index_axis(ndarray::Axis(0), h).to_owned()))
        }
    }
}
