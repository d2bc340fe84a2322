//! The logit lens (nostalgebraist, 2020): each layer's residual stream read
//! out through the model's own final norm and unembedding. Reading out
//! layer L is a patch: the tensor the final norm reads (the last residual)
//! takes layer L's value, so every later computation is the model's own.
//! All layers run as one batch, one row per layer.

use crate::core::kinds::{Inputs, TensorNames};
use crate::onnx::handle::feeds;
use crate::onnx::handle::ModelHandle;
use assay_interpreter::{Arg, Bound, ToolError, Type, Value};
use ndarray::{ArrayD, Axis};

use crate::core::declare::{tool, ToolCtx, ToolResult};
use crate::onnx::handle::select_names;

tool! {
    /// The logit lens: each layer's residual stream read out through the model's own final norm and
    /// unembedding, at one position. `residual` names the residual stream after each layer (a glob or
    /// list, in layer order; by default the streams attention() finds in the graph); the last one is
    /// what the final norm reads, and layer L's read-out patches it with layer L's value, all layers in
    /// one batched run, so the last layer's read-out is the model's own output. Returns {layers,
    /// top_ids [layers, k], top_probs [layers, k], top_tokens (per layer, with a tokenizer), probs
    /// [layers, len(tokens)] for `tokens`, position}.
    ///
    /// ```assay
    /// let lm = model("smollm2-135m")
    /// let lens = logit_lens(lm, "The capital of France is", tokens: [" Paris"], k: 3)
    /// assert len(lens.layers) == 30 and lens.top_tokens[29][0] == " Paris"
    /// let p = prob(run(lm, "The capital of France is").logits, tokenize(lm, " Paris").ids[0])
    /// assert abs(lens.probs[29][0] - p) < 0.00001, "the last layer's read-out is the model's output"
    /// ```
    logit_lens in Interventions -> Type::record();
    {
        /// a language model
        model: ModelHandle,
        /// one prompt (text) or the inputs of one example
        inputs: Inputs,
        /// the residual stream after each layer, in layer order (default:
        /// attention(model).residual)
        residual: Option<TensorNames> = None,
        /// the position read out; negative counts from the end
        position: f64 = -1.0,
        /// top tokens per layer
        k: usize = 5,
        /// tokens to follow through the layers: ids, or strings of one token each
        tokens: Arg [Type::Any] = None,
        /// the model output that holds the logits [1, T, V]
        output: String = "logits",
    }
    logit_lens
}

fn logit_lens(p: logit_lens::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let m = p.model.clone();
    let inputs = feeds(&m, &p.inputs)?;
    if let Some((k, t)) = inputs.iter().find(|(_, t)| t.shape().first() != Some(&1)) {
        return Err(p
            .inputs
            .error(format!("the logit lens reads one example; input `{k}` is {:?}", t.shape()))
            .help("map over prompts: map(prompts, p => logit_lens(model, p))"));
    }
    let layers = if let Some(residual) = &*p.residual {
        select_names(&m, &Bound::new(p.residual.name(), residual.clone()))?
    } else {
        let blocks = crate::onnx::blocks::find(&m).map_err(|e| {
            p.residual
                .error(format!("no residual stream given, and none found: {e}"))
                .help("name the residual stream after each layer: residual: \"<glob>\" (see inspect)")
        })?;
        blocks
            .into_iter()
            .map(|b| {
                b.residual.ok_or_else(|| {
                    p.residual
                        .error("no residual stream given, and the graph's shape does not show one after every layer")
                        .help("name the residual stream after each layer: residual: \"<glob>\" (see inspect)")
                })
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let output = p.output.clone();
    if !m.outputs.iter().any(|p| p.name == output) {
        let names: Vec<&str> = m.outputs.iter().map(|p| p.name.as_str()).collect();
        return Err(p
            .output
            .error(format!("the model has no output `{output}`"))
            .help(format!("its outputs: {}", names.join(", "))));
    }
    let tokens = token_ids(&m, &p.tokens)?;
    let k = p.k.max(1);
    let vals = m.capture(inputs.clone(), &layers).map_err(|e| m.blame(e, p.inputs.name(), p.residual.name()))?;
    let last = layers.last().cloned().unwrap_or_default();
    let shape = vals.get(&last).map(|v| v.shape().to_vec()).unwrap_or_default();
    for n in &layers {
        let s = vals.get(n).map(|v| v.shape().to_vec()).unwrap_or_default();
        if s != shape || s.len() != 3 {
            return Err(p.residual.error(format!("`{n}` is {s:?}; the residual stream after every layer must share one shape [1, T, D], like `{last}` {shape:?}"),
                ));
        }
    }
    // One row per layer: the inputs repeated, the last residual replaced
    // (one batch, or row by row where the graph takes one row at a time:
    // an opset-23 `RotaryEmbedding` whose cos/sin caches have one row).
    let rows = layers.len();
    let views: Vec<_> = layers.iter().filter_map(|n| vals.get(n)).map(|v| v.view()).collect();
    let value = ndarray::concatenate(Axis(0), &views).map_err(|e| ToolError::new(e.to_string()))?;
    let mask = ArrayD::ones(value.shape());
    let out = crate::methods::sweep::run_rows(
        &m,
        &inputs,
        rows,
        vec![(last.clone(), value, mask)],
        std::slice::from_ref(&output),
        &[],
    )
    .map_err(|e| m.blame(e, p.inputs.name(), p.residual.name()))?;
    let logits = out.get(&output).ok_or_else(|| ToolError::new(format!("no output `{output}`")))?;
    if logits.ndim() != 3 || logits.shape()[0] != rows {
        return Err(p.output.error(format!("`{output}` is {:?}, not [rows, T, V] logits", logits.shape())));
    }
    let t = logits.shape()[1];
    let position = *p.position;
    let pos = if position < 0.0 { t as f64 + position } else { position };
    if pos.fract() != 0.0 || !(0.0..t as f64).contains(&pos) {
        return Err(p.position.error(format!("position {position} is outside the {t} positions")));
    }
    let pos = pos as usize;
    let vocab = logits.shape()[2];
    if let Some(bad) = tokens.iter().find(|i| **i >= vocab) {
        return Err(p.tokens.error(format!("token id {bad} is outside the vocabulary of {vocab}")));
    }
    let k = k.min(vocab);
    let (mut top_ids, mut top_probs, mut probs, mut top_tokens) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for l in 0..rows {
        let row: Vec<f64> = logits.index_axis(Axis(0), l).index_axis(Axis(0), pos).iter().map(|x| *x as f64).collect();
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let exp: Vec<f64> = row.iter().map(|x| (x - max).exp()).collect();
        let sum: f64 = exp.iter().sum();
        let mut order: Vec<usize> = (0..vocab).collect();
        order.sort_by(|a, b| row[*b].total_cmp(&row[*a]).then(a.cmp(b)));
        order.truncate(k);
        top_ids.extend(order.iter().map(|i| *i as f32));
        top_probs.extend(order.iter().map(|i| (exp[*i] / sum) as f32));
        probs.extend(tokens.iter().map(|i| (exp.get(*i).copied().unwrap_or(0.0) / sum) as f32));
        if let Some(tok) = &m.card.tokenizer {
            let words: Vec<Value> =
                order.iter().map(|i| Value::str(tok.decode(&[*i as u32], false).unwrap_or_default())).collect();
            top_tokens.push(Value::list(words));
        }
    }
    let tensor = |shape: Vec<usize>, v: Vec<f32>| {
        ArrayD::from_shape_vec(shape, v).map(Value::tensor).map_err(|e| ToolError::new(e.to_string()))
    };
    let mut fields = vec![
        ("layers", Value::list(layers.iter().map(Value::str).collect())),
        ("top_ids", tensor(vec![rows, k], top_ids)?),
        ("top_probs", tensor(vec![rows, k], top_probs)?),
        ("probs", tensor(vec![rows, tokens.len()], probs)?),
        ("position", Value::Num(pos as f64)),
    ];
    if m.card.tokenizer.is_some() {
        fields.push(("top_tokens", Value::list(top_tokens)));
    }
    Ok(Value::record(fields))
}

/// The token ids to follow: numbers, or strings that are one token each.
pub(crate) fn token_ids(m: &ModelHandle, x: &Arg) -> Result<Vec<usize>, ToolError> {
    if x.is_none() {
        return Ok(Vec::new());
    }
    let items = x.items()?;
    let mut ids = Vec::with_capacity(items.len());
    for v in items {
        match v {
            Value::Num(n) if n >= 0.0 && n.fract() == 0.0 => ids.push(n as usize),
            Value::Str(s) => {
                let tok = m.card.tokenizer.as_ref().ok_or_else(|| {
                    x.error("this model has no tokenizer; give token ids").help("e.g. tokens: [3681]")
                })?;
                let enc = tok.encode(s.to_string(), false).map_err(|e| x.error(e.to_string()))?;
                match enc.get_ids() {
                    [one] => ids.push(*one as usize),
                    many => {
                        return Err(x
                            .error(format!(
                                "{s:?} is {} tokens ({:?}); the lens follows single tokens",
                                many.len(),
                                enc.get_tokens()
                            ))
                            .help("follow its first token, or a word with a leading space such as \" Paris\""))
                    }
                }
            }
            other => return Err(x.error(format!("tokens are ids or strings, found a {}", other.type_name()))),
        }
    }
    Ok(ids)
}
