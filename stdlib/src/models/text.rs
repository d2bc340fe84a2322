//! Text in and out of language models: tokens, and generation (greedy or
//! sampled, with the KV cache where the model has one). The prompt sets
//! that probe a behaviour are in `prompts.rs`.

use std::sync::Arc;

use assay_interpreter::{Arg, Bound, Name, ToolCtx, ToolError, Type, Value};
use ndarray::{ArrayD, Axis};

use crate::core::declare::{tool, ToolResult};
use crate::onnx::error::ModelError;
use crate::onnx::handle::ModelHandle;
use crate::onnx::model::Model;

/// The tokenizer of the `model` argument.
pub(crate) fn tokenizer(m: &Bound<ModelHandle>) -> Result<Arc<tokenizers::Tokenizer>, ToolError> {
    m.card.tokenizer.clone().ok_or_else(|| {
        m.error("this model has no tokenizer").help("language models from model(\"smollm2-135m\") have one")
    })
}

tool! {
    /// The token ids of a text under the model's tokenizer, and the tokens themselves.
    ///
    /// ```assay
    /// let lm = model("smollm2-135m")
    /// let t = tokenize(lm, "The capital of France is")
    /// assert len(t.ids) == 5 and t.tokens[1] == "Ġcapital"
    /// ```
    tokenize in Text -> Type::record_of(&[("ids", Type::list(Type::Num)), ("tokens", Type::list(Type::Str))]);
    {
        /// a language model
        model: ModelHandle,
        /// text
        text: String,
    }
    tokenize
}

fn tokenize(p: tokenize::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let tok = tokenizer(&p.model)?;
    let enc = tok.encode(p.text.as_str(), false).map_err(|e| p.text.error(e.to_string()))?;
    Ok(Value::record([
        ("ids", Value::nums(enc.get_ids().iter().map(|x| *x as f64))),
        ("tokens", Value::list(enc.get_tokens().iter().map(Value::str).collect())),
    ]))
}

tool! {
    /// The text of token ids.
    ///
    /// ```assay
    /// let lm = model("smollm2-135m")
    /// assert detokenize(lm, tokenize(lm, "a, b").ids) == "a, b"
    /// ```
    detokenize in Text -> Type::Str;
    {
        /// a language model
        model: ModelHandle,
        /// token ids
        ids: Vec<f64> [Type::numbers()],
    }
    detokenize
}

fn detokenize(p: detokenize::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let tok = tokenizer(&p.model)?;
    let vocab = tok.get_vocab_size(true) as f64;
    let ids = p.ids.clone();
    if let Some(bad) = ids.iter().find(|x| **x < 0.0 || **x >= vocab || x.fract() != 0.0) {
        return Err(p.ids.error(format!("{bad} is not a token id (0..{vocab})")));
    }
    let ids: Vec<u32> = ids.iter().map(|x| *x as u32).collect();
    tok.decode(&ids, false).map(Value::str).map_err(|e| p.ids.error(e.to_string()))
}

tool! {
    /// Continues a prompt by `n` new tokens: greedy (each the most likely next token) or, with a
    /// `temperature` above 0, sampled from the run's seed (the same seed gives the same text). On a
    /// model with a KV cache (past_key_values.* inputs in Optimum's convention, as SmolLM2's) each step
    /// computes only the new token from the cached keys and values; `cache: false` recomputes the whole
    /// sequence every step (the same tokens, slower). With `steer` and `patch`, the interventions hold
    /// at every step, the new tokens included. Returns the new text only; given several texts, the new
    /// text of each (one left-padded batch where the model takes attention_mask and position_ids, each
    /// row continuing as it would alone; else one at a time); given token ids (a list of numbers, for a
    /// model without a tokenizer), the new ids.
    ///
    /// ```assay
    /// let lm = model("smollm2-135m")
    /// assert starts_with(generate(lm, "The capital of France is", n: 2), " Paris")
    /// assert generate(lm, "Once upon a time", n: 6) == generate(lm, "Once upon a time", n: 6, cache: false)
    /// ```
    generate in Text -> Type::OneOf(vec![Type::Str, Type::list(Type::Str), Type::list(Type::Num)]);
    {
        /// a language model
        model: ModelHandle,
        /// the text to continue, several texts (one batch), or token ids
        prompt: Arg [Type::OneOf(vec![Type::Str, Type::list(Type::Str), Type::list(Type::Num)])],
        /// how many tokens to add
        n: usize = 8,
        /// 0 for greedy; above 0 samples from softmax(logits / temperature)
        temperature: f64 = 0.0,
        /// reuse the KV cache between steps where the model has one
        cache: bool = true,
        /// {tensor: vector}: a vector added to each tensor at every position and step (activation
        /// addition), e.g. a difference of residual streams
        steer: Arg [Type::Any] = None,
        /// {tensor: value} or {tensor: {value, mask}}: the tensor set to `mask*value +
        /// (1-mask)*tensor` at every position and step (mask 1 where left out), e.g. a head zeroed
        /// or a neuron clamped
        patch: Arg [Type::Any] = None,
    }
    generate
}

fn generate(p: generate::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let m = p.model.clone();
    let prompt = p.prompt.get();
    let texts = crate::onnx::handle::texts_of(prompt);
    let tok = if texts.is_some() { Some(tokenizer(&p.model)?) } else { None };
    let n = *p.n;
    if n > 256 {
        return Err(p.n.error("at most 256 new tokens"));
    }
    let temperature = *p.temperature;
    if !(temperature >= 0.0 && temperature.is_finite()) {
        return Err(p.temperature.error(format!("the temperature is 0 (greedy) or above, not {temperature}")));
    }
    // One prompt (text or token ids), or several texts.
    let rows: Vec<Vec<u32>> = match (&tok, &texts) {
        (Some(tok), Some(texts)) => {
            if texts.len() > 256 {
                return Err(p.prompt.error("at most 256 prompts at once"));
            }
            texts
                .iter()
                .map(|t| {
                    tok.encode(t.as_str(), false)
                        .map(|e| e.get_ids().to_vec())
                        .map_err(|e| p.prompt.error(e.to_string()))
                })
                .collect::<Result<_, _>>()?
        }
        _ => vec![p
            .prompt
            .numbers()?
            .into_iter()
            .map(|x| {
                if x >= 0.0 && x.fract() == 0.0 && x <= f64::from(u32::MAX) {
                    Ok(x as u32)
                } else {
                    Err(p.prompt.error(format!("token ids are whole numbers from 0, not {x}")))
                }
            })
            .collect::<Result<_, _>>()?],
    };
    if let Some(i) = rows.iter().position(|r| r.is_empty()) {
        return Err(p.prompt.error(if rows.len() > 1 {
            format!("prompt {i} is empty")
        } else {
            "the prompt is empty".into()
        }));
    }
    let (patches, adds) = interventions(&m, &p.steer, &p.patch)?;
    let blame = Blame { model: p.model.name(), prompt: p.prompt.name(), steer: p.steer.name(), patch: p.patch.name() };
    let cache = *p.cache;
    // Prompts of different lengths run as one left-padded batch where the
    // model takes the attention mask and position ids (so each row's
    // positions start at its first token); otherwise one at a time.
    let new: Vec<Vec<u32>> = if rows.len() > 1 && m.pads_left() {
        continue_rows(&m, rows, n, temperature, cache, &patches, &adds, blame, ctx)?
    } else {
        let mut out = Vec::new();
        for r in rows {
            out.extend(continue_rows(&m, vec![r], n, temperature, cache, &patches, &adds, blame, ctx)?);
        }
        out
    };
    let value = |ids: &[u32]| -> Result<Value, ToolError> {
        match &tok {
            Some(tok) => tok.decode(ids, false).map(Value::str).map_err(|e| ToolError::new(e.to_string())),
            None => Ok(Value::list(ids.iter().map(|x| Value::Num(f64::from(*x))).collect())),
        }
    };
    if matches!(prompt, Value::List(_)) && texts.is_some() {
        Ok(Value::list(new.iter().map(|r| value(r)).collect::<Result<_, _>>()?))
    } else {
        value(new.first().map(Vec::as_slice).unwrap_or_default())
    }
}

/// Continues each row by `n` tokens in one batch (rows of different lengths
/// left-padded, with the attention mask; one row runs without a mask, as it
/// always has) and returns the new tokens of each row.
#[allow(clippy::too_many_arguments, reason = "the generation's settings, read once by generate")]
fn continue_rows(
    m: &crate::onnx::model::Model,
    rows: Vec<Vec<u32>>,
    n: usize,
    temperature: f64,
    cache: bool,
    patches: &Patches,
    adds: &Adds,
    blame: Blame,
    ctx: &mut dyn ToolCtx,
) -> Result<Vec<Vec<u32>>, ToolError> {
    let input = m.inputs.first().map(|p| p.name.clone()).unwrap_or_default();
    let out = m.output_names();
    let logits_name = out.first().cloned().unwrap_or_default();
    let slots = if cache { m.kv.clone() } else { None };
    let mut want = out.clone();
    want.extend(slots.iter().flatten().map(|s| s.present.clone()));
    let b = rows.len();
    let longest = rows.iter().map(Vec::len).max().unwrap_or(0);
    // Each row left-padded: `pad[r]` tokens of 0, masked out.
    let pad: Vec<usize> = rows.iter().map(|r| longest - r.len()).collect();
    let mut seqs: Vec<Vec<u32>> =
        rows.iter().zip(&pad).map(|(r, p)| std::iter::repeat_n(0, *p).chain(r.iter().copied()).collect()).collect();
    let masked = b > 1 && pad.iter().any(|p| *p > 0);
    // The keys and values of every token so far, fed as the next step's past.
    let mut past: Vec<(String, ArrayD<f32>)> = Vec::new();
    let grid = |cols: usize, f: &dyn Fn(usize, usize) -> f32| {
        ArrayD::from_shape_vec(vec![b, cols], (0..b * cols).map(|i| f(i / cols, i % cols)).collect())
            .map_err(|e| ToolError::new(e.to_string()))
    };
    for step in 0..n {
        let total = seqs[0].len();
        let from = if slots.is_some() && step > 0 { total - 1 } else { 0 };
        let mut feeds = vec![(input.clone(), grid(total - from, &|r, j| seqs[r][from + j] as f32)?)];
        if masked {
            feeds.push(("attention_mask".into(), grid(total, &|r, j| if j < pad[r] { 0.0 } else { 1.0 })?));
        }
        feeds.append(&mut past);
        let mut res = match m.hooked(feeds, patches.clone(), adds.clone(), &want) {
            Ok(r) => r,
            Err(e) => return Err(intervention_error(m, &rows[0], patches, adds, blame, e)),
        };
        for s in slots.iter().flatten() {
            let present = res.remove(&s.present).ok_or_else(|| ToolError::new(format!("no output `{}`", s.present)))?;
            past.push((s.past.clone(), present));
        }
        let logits = &res[&logits_name];
        if logits.ndim() != 3 || logits.shape()[0] != b {
            return Err(ToolError::arg(blame.model, "the model's first output is not [N, T, vocab] logits"));
        }
        let t = logits.shape()[1];
        for (r, seq) in seqs.iter_mut().enumerate() {
            let last: Vec<f32> = logits.index_axis(Axis(0), r).index_axis(Axis(0), t - 1).iter().copied().collect();
            seq.push(next_token(&last, temperature, blame.model, ctx)? as u32);
        }
    }
    Ok(seqs.into_iter().map(|s| s[longest..].to_vec()).collect())
}

type Patches = Vec<(String, ArrayD<f32>, ArrayD<f32>)>;

/// The parameters a generation's errors are blamed on.
#[derive(Clone, Copy)]
struct Blame {
    model: Name,
    prompt: Name,
    steer: Name,
    patch: Name,
}
type Adds = Vec<(String, ArrayD<f32>)>;

/// `steer` and `patch` as the model layer takes them, each tensor checked by name.
fn interventions(m: &Model, steer: &Arg, patch: &Arg) -> Result<(Patches, Adds), ToolError> {
    let tensor = |v: &Value, arg: Name, what: &str| -> Result<ArrayD<f32>, ToolError> {
        assay_interpreter::to_tensor(v).map(|t| t.to_array()).map_err(|e| ToolError::arg(arg, format!("{what}: {e}")))
    };
    let mut adds = Vec::new();
    if !steer.is_none() {
        for (name, v) in steer.record()? {
            crate::onnx::handle::known_tensor(m, name, steer.name())?;
            adds.push((name.clone(), tensor(v, steer.name(), &format!("the vector for `{name}`"))?));
        }
    }
    let mut patches = Vec::new();
    if !patch.is_none() {
        for (name, v) in patch.record()? {
            crate::onnx::handle::known_tensor(m, name, patch.name())?;
            let (value, mask) = match v {
                Value::Record(r) => {
                    let value = r.get("value").ok_or_else(|| {
                        patch.error(format!("the patch of `{name}` has no `value`")).help("write {value: v, mask: m}")
                    })?;
                    let mask = match r.get("mask") {
                        Some(mk) => tensor(mk, patch.name(), &format!("the mask for `{name}`"))?,
                        None => ArrayD::ones(vec![1]),
                    };
                    (tensor(value, patch.name(), &format!("the value for `{name}`"))?, mask)
                }
                other => (tensor(other, patch.name(), &format!("the value for `{name}`"))?, ArrayD::ones(vec![1])),
            };
            patches.push((name.clone(), value, mask));
        }
    }
    Ok((patches, adds))
}

/// Why a run with interventions failed: a vector or value whose shape does
/// not broadcast to its tensor's (read off the prompt's own run) is named
/// with the shape it needs; anything else is the run's own error, blamed by
/// its kind (a tensor's on the parameter that named it).
fn intervention_error(
    m: &crate::onnx::model::Model,
    ids: &[u32],
    patches: &Patches,
    adds: &Adds,
    blame: Blame,
    e: ModelError,
) -> ToolError {
    let mut given: Vec<(Name, &str, &[usize])> =
        adds.iter().map(|(t, v)| (blame.steer, t.as_str(), v.shape())).collect();
    for (t, v, mask) in patches {
        given.push((blame.patch, t, v.shape()));
        given.push((blame.patch, t, mask.shape()));
    }
    let input = m.inputs.first().map(|p| p.name.clone()).unwrap_or_default();
    let x = ArrayD::from_shape_vec(vec![1, ids.len()], ids.iter().map(|v| *v as f32).collect());
    if let Some(err) = x.ok().and_then(|x| crate::onnx::handle::misshapen(m, vec![(input, x)], &given)) {
        return err;
    }
    // A tensor's error blames the parameter that named the tensor.
    let steered = e.tensor().is_some_and(|t| adds.iter().any(|(a, _)| a == t));
    m.blame(e, blame.prompt, if steered { blame.steer } else { blame.patch })
}

/// The most likely token (ties: the lowest id), or one drawn from
/// softmax(logits / temperature) with the call's random stream.
fn next_token(logits: &[f32], temperature: f64, model: Name, ctx: &mut dyn ToolCtx) -> Result<usize, ToolError> {
    if logits.is_empty() {
        return Err(ToolError::arg(model, "the model's logits are empty"));
    }
    let mut best = 0;
    for (j, v) in logits.iter().enumerate() {
        if *v > logits[best] {
            best = j;
        }
    }
    if temperature == 0.0 {
        return Ok(best);
    }
    let top = logits[best] as f64;
    let weights: Vec<f64> = logits.iter().map(|v| ((*v as f64 - top) / temperature).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut u = rand::Rng::random::<f64>(ctx.rng()) * total;
    for (j, w) in weights.iter().enumerate() {
        if u < *w {
            return Ok(j);
        }
        u -= w;
    }
    Ok(best)
}
