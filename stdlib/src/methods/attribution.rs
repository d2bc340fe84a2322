//! Direct logit attribution: what each attention head and each MLP writes
//! into the residual stream, read out by the unembedding through the final
//! norm with the norm's scale frozen at the stream's own (Elhage et al.,
//! 2021; as TransformerLens computes it). Everything is found and computed
//! through the graph, so no weight is read by hand:
//!
//! - a head's output as the residual stream gets it is the projection's
//!   output with only that head kept, less the projection with every head
//!   zeroed (its bias): one batched run of patched rows;
//! - the read-out is the model's own: the tensor after the final norm's
//!   division by its scale (or the norm op's output) is patched at the
//!   position with the component taken away, and the change in the logits
//!   is the component's attribution. The graph from there to the logits
//!   must be linear (gains, biases, reshapes and projections by weights),
//!   or the tool says where it is not (e.g. BERT's masked-LM head).

use crate::core::kinds::Inputs;
use crate::methods::sweep::run_rows;
use crate::onnx::handle::feeds;
use assay_interpreter::{Arg, ToolError, Type, Value};
use ndarray::{ArrayD, Axis, IxDyn};

use crate::core::declare::{tool, ToolCtx, ToolResult};
use crate::onnx::attention::{Block, Index};
use crate::onnx::blocks::find;
use crate::onnx::error::ModelError;
use crate::onnx::handle::ModelHandle;
use crate::onnx::model::Model;
use crate::onnx::proto::{GraphProto, NodeProto};

/// Rows per batched run.
const ROWS: usize = 64;

/// Where the final norm's output is patched, and how it scales the stream.
#[derive(Debug)]
struct Readout {
    /// The stream divided by the norm's scale (decomposed norms), or the
    /// norm op's output.
    at: String,
    /// LayerNorm centres the stream; RMSNorm does not.
    centred: bool,
    /// For a norm op: its gain and epsilon.
    op: Option<(Vec<f32>, f32)>,
}

fn attr_f(n: &NodeProto, name: &str) -> Option<f32> {
    n.attribute.iter().find(|a| a.name() == name).and_then(|a| a.f)
}

/// A constant float tensor's values, where they are in the file itself: an
/// initializer, a Constant node's value, or either through Identity nodes
/// (the TorchScript exporter shares equal weights that way).
fn initializer_f32(g: &GraphProto, name: &str) -> Option<Vec<f32>> {
    let mut name = name.to_string();
    for _ in 0..16 {
        let Some(n) = g.node.iter().find(|n| n.output.first() == Some(&name)) else { break };
        match n.op_type() {
            "Identity" => name = n.input.first()?.clone(),
            "Constant" => {
                return n.attribute.iter().find(|a| a.name() == "value").and_then(|a| a.t.as_ref()).and_then(floats)
            }
            _ => return None,
        }
    }
    floats(g.initializer.iter().find(|t| t.name() == name)?)
}

fn floats(t: &crate::onnx::proto::TensorProto) -> Option<Vec<f32>> {
    if t.data_type() != 1 {
        return None;
    }
    if !t.float_data.is_empty() {
        return Some(t.float_data.clone());
    }
    let raw = t.raw_data.as_ref()?;
    Some(raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// Whether everything from `t` to a graph output is linear in `t`.
fn linear_to_output(g: &GraphProto, idx: &Index, t: &str) -> Result<(), String> {
    let outputs: Vec<&str> = g.output.iter().map(|o| o.name()).collect();
    let mut t = t.to_string();
    for _ in 0..32 {
        if outputs.contains(&t.as_str()) {
            return Ok(());
        }
        let next = idx.data_consumers(&t);
        let [c] = next.as_slice() else {
            return Err(format!("`{t}` feeds {} nodes on its way to the logits, not one", next.len()));
        };
        let first = c.input.first() == Some(&t);
        let others_const = c.input.iter().filter(|i| **i != t && !i.is_empty()).all(|i| idx.is_const(i));
        let linear = match c.op_type() {
            "Cast" | "Identity" | "Squeeze" | "Unsqueeze" | "Transpose" | "Reshape" | "Flatten" => first,
            "Mul" | "Add" | "Sub" => others_const,
            "Div" => first && others_const,
            "MatMul" | "Gemm" => first && others_const,
            _ => false,
        };
        if !linear {
            let why = match c.op_type() {
                "Tanh" => " (soft-capping the logits, as Gemma-2 does)",
                "Gelu" | "Erf" | "Relu" | "Sigmoid" => {
                    " (a prediction head with an activation, as BERT's masked-LM head)"
                }
                "LayerNormalization" | "SimplifiedLayerNormalization" | "RMSNormalization" => " (a second norm)",
                _ => "",
            };
            return Err(format!(
                "the final norm's output reaches the logits through a `{}` node, which is not linear{why}",
                c.op_type()
            ));
        }
        t = c.output.first().cloned().unwrap_or_default();
    }
    Err("the final norm's output does not reach the logits".into())
}

/// The final norm after the residual stream `r`, and where to patch it.
fn readout(g: &GraphProto, idx: &Index, r: &str) -> Result<Readout, String> {
    let x = idx.through_casts(r);
    let cons = idx.data_consumers(&x);
    let op = cons.iter().find(|n| {
        matches!(n.op_type(), "LayerNormalization" | "SimplifiedLayerNormalization" | "RMSNormalization")
            && n.input.first() == Some(&x)
    });
    if let Some(n) = op {
        let gamma = n
            .input
            .get(1)
            .and_then(|w| initializer_f32(g, w))
            .ok_or("the final norm's gain is not a float weight stored in the model file")?;
        let y = n.output.first().cloned().unwrap_or_default();
        linear_to_output(g, idx, &y)?;
        return Ok(Readout {
            at: y,
            centred: n.op_type() == "LayerNormalization",
            op: Some((gamma, attr_f(n, "epsilon").unwrap_or(1e-5))),
        });
    }
    // Decomposed: LayerNorm centres with Sub(x, ReduceMean(x)) first; both
    // then divide by (or multiply with the inverse of) a scale computed
    // from the stream.
    let sub = cons.iter().find(|n| {
        n.op_type() == "Sub" && n.input.first() == Some(&x) && n.input.get(1).is_some_and(|m| !idx.is_const(m))
    });
    let (d, centred) = match sub {
        Some(s) => (s.output.first().cloned().unwrap_or_default(), true),
        None => (x.clone(), false),
    };
    let scaled = idx.data_consumers(&d).into_iter().find(|n| {
        matches!(n.op_type(), "Div" | "Mul")
            && n.input.len() == 2
            && n.input.iter().filter(|i| **i == d).count() == 1
            && n.input.iter().all(|i| *i == d || !idx.is_const(i))
            && (n.op_type() == "Mul" || n.input[0] == d)
    });
    let z = scaled.and_then(|n| n.output.first().cloned()).ok_or_else(|| {
        format!("no final norm was found after the last residual stream `{r}` (a LayerNormalization op, or a division by a scale computed from the stream)")
    })?;
    linear_to_output(g, idx, &z)?;
    Ok(Readout { at: z, centred, op: None })
}

fn centre(v: &[f32], centred: bool) -> Vec<f64> {
    let mean = if centred { v.iter().map(|x| f64::from(*x)).sum::<f64>() / v.len().max(1) as f64 } else { 0.0 };
    v.iter().map(|x| f64::from(*x) - mean).collect()
}

fn norm2(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// `t`'s vector at `pos` of row `row`, for [N, T, D] or [N*T, D] values.
fn at(t: &ArrayD<f32>, rows: usize, row: usize, pos: usize) -> Result<Vec<f32>, String> {
    let d = *t.shape().last().ok_or("a scalar where a stream was expected")?;
    let per_row = t.len() / rows.max(1);
    if d == 0 || !per_row.is_multiple_of(d) {
        return Err(format!("a tensor of shape {:?} is not {rows} rows of [T, D]", t.shape()));
    }
    let flat = t.as_slice().map(<[f32]>::to_vec).unwrap_or_else(|| t.iter().copied().collect());
    let start = row * per_row + pos * d;
    flat.get(start..start + d).map(<[f32]>::to_vec).ok_or_else(|| format!("position {pos} is outside {:?}", t.shape()))
}

/// Each head's output as the residual stream gets it, at `pos`:
/// [block][head] -> vector.
fn head_outputs(
    m: &Model,
    inputs: &[(String, ArrayD<f32>)],
    blocks: &[Block],
    pos: usize,
) -> Result<Vec<Vec<Vec<f32>>>, ModelError> {
    // Rows (block, Some(head)): only that head kept; (block, None): none.
    let rows: Vec<(usize, Option<usize>)> = blocks
        .iter()
        .enumerate()
        .flat_map(|(l, b)| (0..b.n_heads).map(move |h| (l, Some(h))).chain([(l, None)]))
        .collect();
    let mut got: Vec<Vec<Option<Vec<f32>>>> = blocks.iter().map(|b| vec![None; b.n_heads + 1]).collect();
    for chunk in rows.chunks(ROWS) {
        let n = chunk.len();
        let mut in_chunk: Vec<usize> = chunk.iter().map(|(l, _)| *l).collect();
        in_chunk.dedup();
        let mut patches = Vec::new();
        for &l in &in_chunk {
            let b = &blocks[l];
            let w = b.n_heads * b.head_dim;
            let mut mask = ArrayD::<f32>::zeros(IxDyn(&[n, 1, w]));
            for (r, (rl, h)) in chunk.iter().enumerate() {
                if *rl != l {
                    continue;
                }
                for j in 0..w {
                    let keep = h.is_some_and(|h| j / b.head_dim == h);
                    mask[[r, 0, j]] = if keep { 0.0 } else { 1.0 };
                }
            }
            patches.push((b.heads.clone(), ArrayD::<f32>::zeros(IxDyn(&[1, 1, w])), mask));
        }
        let capture: Vec<String> = in_chunk.iter().map(|&l| blocks[l].projected.clone()).collect();
        let out = run_rows(m, inputs, n, patches, &[], &capture)?;
        for (r, (l, h)) in chunk.iter().enumerate() {
            let v = out
                .get(&blocks[*l].projected)
                .ok_or_else(|| ModelError::Runtime("the projection was not captured".into()))?;
            got[*l][h.unwrap_or(blocks[*l].n_heads)] = Some(at(v, n, r, pos).map_err(ModelError::Runtime)?);
        }
    }
    got.into_iter()
        .map(|per| {
            let mut per: Vec<Vec<f32>> = per.into_iter().map(|v| v.unwrap_or_default()).collect();
            let bias = per.pop().unwrap_or_default();
            Ok(per.into_iter().map(|v| v.iter().zip(&bias).map(|(a, b)| a - b).collect()).collect())
        })
        .collect()
}

tool! {
    /// Direct logit attribution: how much each attention head and each MLP adds to chosen tokens'
    /// logits directly, through the final norm (its scale frozen at the residual stream's own) and the
    /// unembedding, at one position. Heads, projections, the residual stream and the final norm are
    /// found in the graph as attention() finds them; no weight is named. Each head's output is the
    /// projection with only that head kept, less the projection with none (one batched run); the
    /// read-out is the model's own graph from the final norm on, with the component taken out of the
    /// stream. Returns {heads: [layers, heads, tokens], mlp: [layers, tokens] (none where the graph
    /// does not show MLP outputs), tokens (ids), position}. The read-out must be linear (a pre-norm
    /// decoder: GPT-2, Llama, Qwen2, GPT-NeoX, Phi, Falcon, OPT, BLOOM, SmolLM2); what is not linear
    /// (BERT's masked-LM head, Gemma-2's soft-capping, post-norm layers, sandwich norms) is refused.
    ///
    /// ```assay
    /// let lm = model("smollm2-135m")
    /// let d = logit_attribution(lm, "The capital of France is", [" Paris"])
    /// assert d.heads.shape == [30, 9, 1] and d.mlp.shape == [30, 1]
    /// assert max(reshape(d.heads, [270])) > 0.1, "some head writes Paris directly"
    /// ```
    logit_attribution in Interventions -> Type::record();
    {
        /// a language model
        model: ModelHandle,
        /// one prompt (text) or the inputs of one example
        inputs: Inputs,
        /// tokens whose logits are attributed: ids, or strings of one token each
        tokens: Arg [Type::Any],
        /// the position read out; negative counts from the end
        position: f64 = -1.0,
        /// the residual stream after the last layer, where the graph does not show it (see inspect)
        residual: Option<String> = None,
    }
    logit_attribution
}

fn logit_attribution(p: logit_attribution::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let m = p.model.clone();
    let mut inputs = feeds(&m, &p.inputs)?;
    if let Some((k, t)) = inputs.iter().find(|(_, t)| t.shape().first() != Some(&1)) {
        return Err(p
            .inputs
            .error(format!("logit_attribution reads one example; input `{k}` is {:?}", t.shape()))
            .help("map over prompts: map(prompts, p => logit_attribution(model, p, tokens))"));
    }
    let tokens = crate::methods::lens::token_ids(&m, &p.tokens)?;
    if tokens.is_empty() {
        return Err(p.tokens.error("name at least one token"));
    }
    let pos = read_position(&p, &mut inputs)?;
    let blocks = find(&m).map_err(|e| {
        p.model.error(format!("no attention blocks found: {e}")).help(
            "logit_attribution attributes to the heads attention() finds; patch_sweep and path_patch take tensors named by hand",
        )
    })?;
    let g = m.proto.graph.as_ref().ok_or_else(|| ToolError::new("the model has no graph"))?;
    let idx = Index::new(g);
    if let Some((l, why)) = blocks.iter().enumerate().find_map(|(l, b)| b.indirect.as_ref().map(|w| (l, w))) {
        // Say every reason at once: the read-out may not be linear either.
        let stream = p.residual.clone().or_else(|| blocks.last().and_then(|b| b.residual.clone()));
        let also = match stream.map(|r| readout(g, &idx, &r)) {
            Some(Err(e)) => format!("; and {e}"),
            _ => String::new(),
        };
        return Err(p
            .model
            .error(format!("no direct logit attribution on this model: at layer {l}, {why}{also}"))
            .help("patch_sweep, path_patch and circuit measure each head's effect on any model, and logit_lens reads the residual stream"));
    }
    let last = match &*p.residual {
        Some(r) => {
            crate::onnx::handle::known_tensor(&m, r, p.residual.name())?;
            r.clone()
        }
        None => blocks.last().and_then(|b| b.residual.clone()).ok_or_else(|| {
            p.residual
                .error("the residual stream after the last layer is not visible in the graph")
                .help("name it: residual: \"<tensor>\" (the stream the final norm reads; see inspect)")
        })?,
    };
    let ro = readout(g, &idx, &last).map_err(|e| {
            p.model.error(format!("no direct read-out: {e}")).help(
                "direct logit attribution needs the last residual stream to reach the logits through a final norm and the unembedding alone, as in a pre-norm decoder (GPT-2, Llama, Qwen2); if the stream the final norm reads is another tensor, pass it as residual: \"<tensor>\" (see inspect); patch_sweep and path_patch work on any model",
            )
        })?;
    let logits_name = m.output_names().first().cloned().unwrap_or_default();
    let mut want = vec![last.clone(), ro.at.clone()];
    want.extend(blocks.iter().filter_map(|b| b.mlp.clone()));
    let base = m
        .patch_capture(inputs.clone(), Vec::new(), std::slice::from_ref(&logits_name), &want, false)
        .map_err(|e| m.blame(e, p.inputs.name(), p.model.name()))?;
    let get = |n: &str| base.get(n).ok_or_else(|| ToolError::new(format!("`{n}` was not captured")));
    let err = |e: String| ToolError::new(e);
    let r = at(get(&last)?, 1, 0, pos).map_err(err)?;
    let z = at(get(&ro.at)?, 1, 0, pos).map_err(err)?;
    let pr = centre(&r, ro.centred);
    // The norm's scale at this position.
    let scale = norm_scale(&p, &ro, &z, &pr)?;
    if z.len() != r.len() {
        return Err(p.model.error(format!("the final norm's output has {} features, the stream {}", z.len(), r.len())));
    }
    // What taking a component `c` out of the stream does to the patched tensor.
    let delta = |c: &[f32]| -> Vec<f32> {
        let pc = centre(c, ro.centred);
        match &ro.op {
            Some((gamma, _)) => pc.iter().zip(gamma).map(|(x, g)| (x / scale * f64::from(*g)) as f32).collect(),
            None => pc.iter().map(|x| (x / scale) as f32).collect(),
        }
    };
    let heads = head_outputs(&m, &inputs, &blocks, pos).map_err(|e| m.blame(e, p.inputs.name(), p.model.name()))?;
    let mut components: Vec<Vec<f32>> = heads.iter().flatten().map(|c| delta(c)).collect();
    let mlps: Option<Vec<Vec<f32>>> =
        blocks.iter().map(|b| b.mlp.as_ref().and_then(|n| base.get(n)).and_then(|v| at(v, 1, 0, pos).ok())).collect();
    if let Some(ms) = &mlps {
        components.extend(ms.iter().map(|c| delta(c)));
    }
    let orig = get(&logits_name)?;
    let vocab = *orig.shape().last().unwrap_or(&0);
    if let Some(t) = tokens.iter().find(|t| **t >= vocab) {
        return Err(p.tokens.error(format!("token {t} is outside the vocabulary of {vocab}")));
    }
    let orig_at = at(orig, 1, 0, pos).map_err(err)?;
    let d = z.len();
    let mut attributions: Vec<Vec<f32>> = Vec::with_capacity(components.len());
    for chunk in components.chunks(ROWS) {
        let n = chunk.len();
        let mut value = Vec::with_capacity(n * d);
        for c in chunk {
            value.extend(z.iter().zip(c).map(|(a, b)| a - b));
        }
        let value = ArrayD::from_shape_vec(IxDyn(&[n, 1, d]), value).map_err(|e| ToolError::new(e.to_string()))?;
        let mut mask = ArrayD::<f32>::zeros(IxDyn(&[1, pos + 1, 1]));
        mask[[0, pos, 0]] = 1.0;
        let out = run_rows(&m, &inputs, n, vec![(ro.at.clone(), value, mask)], std::slice::from_ref(&logits_name), &[])
            .map_err(|e| m.blame(e, p.inputs.name(), p.model.name()))?;
        let l = out.get(&logits_name).ok_or_else(|| ToolError::new("no logits"))?;
        for r in 0..n {
            let row = at(l, n, r, pos).map_err(err)?;
            attributions.push(tokens.iter().map(|t| orig_at[*t] - row[*t]).collect());
        }
    }
    let (layers, n_heads) = (blocks.len(), blocks.first().map_or(0, |b| b.n_heads));
    if blocks.iter().any(|b| b.n_heads != n_heads) {
        return Err(p.model.error("the attention blocks have different numbers of heads"));
    }
    let k = tokens.len();
    let head_vals: Vec<f32> = attributions[..layers * n_heads].iter().flatten().copied().collect();
    let tensor = |shape: Vec<usize>, v: Vec<f32>| {
        ArrayD::from_shape_vec(shape, v).map(Value::tensor).map_err(|e| ToolError::new(e.to_string()))
    };
    let mlp = match mlps {
        Some(_) => tensor(vec![layers, k], attributions[layers * n_heads..].iter().flatten().copied().collect())?,
        None => Value::None,
    };
    Ok(Value::record([
        ("heads", tensor(vec![layers, n_heads, k], head_vals)?),
        ("mlp", mlp),
        ("tokens", Value::list(tokens.iter().map(|t| Value::Num(*t as f64)).collect())),
        ("position", Value::Num(pos as f64)),
    ]))
}

/// The position read out (`position`, negative from the end) among the
/// prompt's tokens; the inputs cut after it (a causal model's logits at a
/// position depend on the tokens up to it only).
fn read_position(p: &logit_attribution::Params, inputs: &mut [(String, ArrayD<f32>)]) -> Result<usize, ToolError> {
    let t_len = inputs
        .iter()
        .find(|(k, _)| k == "input_ids")
        .or(inputs.first())
        .and_then(|(_, v)| v.shape().get(1).copied())
        .unwrap_or(0);
    let position = *p.position;
    let pos = if position < 0.0 { t_len as f64 + position } else { position };
    if pos < 0.0 || pos >= t_len as f64 || pos.fract() != 0.0 {
        return Err(p.position.error(format!("position {position} is not one of the {t_len} tokens")));
    }
    let pos = pos as usize;
    // A causal model's logits at `pos` depend on the tokens up to it only.
    for (_, v) in inputs.iter_mut() {
        if v.ndim() >= 2 && v.shape()[1] == t_len {
            *v = v.slice_axis(Axis(1), ndarray::Slice::from(0..=pos)).to_owned();
        }
    }
    Ok(pos)
}

/// The final norm's scale at the read-out position: from its epsilon where
/// the norm is an op, else read off `z` = P(r) / scale (checked to be so).
fn norm_scale(p: &logit_attribution::Params, ro: &Readout, z: &[f32], pr: &[f64]) -> Result<f64, ToolError> {
    Ok(match &ro.op {
        Some((_, eps)) => (pr.iter().map(|x| x * x).sum::<f64>() / pr.len().max(1) as f64 + f64::from(*eps)).sqrt(),
        None => {
            // z = P(r) / scale: check it is, then read the scale off.
            let (nz, np) = (norm2(&z.iter().map(|x| f64::from(*x)).collect::<Vec<_>>()), norm2(pr));
            let cos = z.iter().zip(pr).map(|(a, b)| f64::from(*a) * b).sum::<f64>() / (nz * np).max(1e-30);
            if cos < 0.9999 {
                return Err(p.model.error(format!("`{}` is not the residual stream divided by a scale (cosine {cos:.4}); the final norm is not one Assay can read out", ro.at)));
            }
            np / nz.max(1e-30)
        }
    })
}
