//! A model as scripts hold it (`ModelHandle`: the `Model` and its card),
//! and how script values become what a model run takes: feeds from text,
//! tensors or records (every tensor crosses as float32), tensor names from
//! names and globs (with the closest name for an unknown one), runs `batch`
//! rows at a time. The tools over models (`crate::methods`) read their
//! arguments through these.

use std::any::Any;
use std::sync::Arc;

use assay_interpreter::{to_tensor, Args, Bound, Handle, HandleKind, Name, Tensor, ToolError, Type, Value};
use ndarray::ArrayD;

use crate::core::declare::Param;
use crate::core::kinds::{Inputs, TensorNames};
use crate::onnx::error::ModelError;
use crate::onnx::graph;
use crate::onnx::model::{Card, Model, Port};

/// A model as a script value: the generic ONNX model and its card (what its
/// family knows that its graph does not say). Cheap to clone; a tool's
/// `model` parameter is one, and reads as the `Model` it holds.
#[derive(Clone)]
pub struct ModelHandle {
    pub model: Arc<Model>,
    pub card: Arc<Card>,
}

impl ModelHandle {
    pub fn new(model: Model, card: Card) -> Self {
        ModelHandle { model: Arc::new(model), card: Arc::new(card) }
    }
}

impl std::ops::Deref for ModelHandle {
    type Target = Model;
    fn deref(&self) -> &Model {
        &self.model
    }
}

impl std::fmt::Debug for ModelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ModelHandle({})", self.model.display)
    }
}

pub(crate) fn port_value(p: &Port) -> Value {
    let shape = match &p.shape {
        Some(d) => Value::list(
            d.iter()
                .map(|x| match x {
                    crate::onnx::model::Dim::Fixed(n) => Value::Num(*n as f64),
                    crate::onnx::model::Dim::Symbolic(s) => Value::str(if s.is_empty() { "?" } else { s }),
                })
                .collect(),
        ),
        None => Value::None,
    };
    Value::record([("name", Value::str(&p.name)), ("dtype", Value::str(&p.dtype)), ("shape", shape)])
}

impl Handle for ModelHandle {
    fn kind(&self) -> HandleKind {
        HandleKind::Model
    }
    fn describe(&self) -> String {
        let ins: Vec<String> = self.model.inputs.iter().map(|p| format!("{} {}", p.name, p.shape_text())).collect();
        format!("model {} ({})", self.model.display, ins.join(", "))
    }
    fn digest(&self) -> String {
        let mut d = format!("{}:{}", self.model.sha256, self.model.provider.name());
        for w in &self.model.weights_sha256 {
            d.push(':');
            d.push_str(w);
        }
        d
    }
    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "inputs" => Value::list(self.model.inputs.iter().map(port_value).collect()),
            "outputs" => Value::list(self.model.outputs.iter().map(port_value).collect()),
            "path" => Value::str(&self.model.display),
            "sha256" => Value::str(&self.model.sha256),
            "labels" => Value::list(self.card.labels.iter().map(Value::str).collect()),
            "provider" => Value::str(self.model.provider.name()),
            _ => return None,
        })
    }
    fn field_names(&self) -> Vec<&'static str> {
        vec!["inputs", "outputs", "path", "sha256", "labels", "provider"]
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

pub fn model_of(a: &Args, i: &'static str) -> Result<ModelHandle, ToolError> {
    a.handle::<ModelHandle>(i, "a model (from model() or onnx())").cloned()
}

pub(crate) fn model_type() -> Type {
    Type::Handle(HandleKind::Model)
}

/// The text a value holds: one string, or a non-empty list of strings.
pub fn texts_of(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::Str(s) => Some(vec![s.to_string()]),
        Value::List(items) if !items.is_empty() && items.iter().all(|v| matches!(v, Value::Str(_))) => {
            Some(items.iter().map(|v| v.to_text()).collect())
        }
        _ => None,
    }
}

/// One text's feeds (its token ids for the model's one input), or why not.
pub fn text_feeds(model: &ModelHandle, text: &str) -> Result<Vec<(String, ArrayD<f32>)>, String> {
    let tok =
        model.card.tokenizer.as_ref().ok_or("this model has no tokenizer, so it cannot take text; pass tensors")?;
    let input = model.inputs.first().map(|p| p.name.clone()).unwrap_or_default();
    Ok(vec![(input, encode_batch(tok, &[text.to_string()])?)])
}

/// Model inputs from a value (text, a tensor, a record of tensors); errors
/// point at argument `i`.
/// The feeds of a model-inputs parameter, blamed on it.
pub(crate) fn feeds(model: &ModelHandle, x: &Bound<Inputs>) -> Result<Vec<(String, ArrayD<f32>)>, ToolError> {
    feeds_value(model, x, x.name())
}

pub fn feeds_value(model: &ModelHandle, value: &Value, i: Name) -> Result<Vec<(String, ArrayD<f32>)>, ToolError> {
    let as_tensor = |v: &Value, what: &str| -> Result<ArrayD<f32>, ToolError> {
        to_tensor(v).map(|t| t.to_array()).map_err(|e| ToolError::arg(i, format!("{what}: {e}")))
    };
    // Text for a model with a tokenizer: token ids for its one input.
    if let Some(texts) = texts_of(value) {
        let tok = model.card.tokenizer.as_ref().ok_or_else(|| {
            ToolError::arg(i, "this model has no tokenizer, so it cannot take text; pass tensors")
                .help("language models from model(\"smollm2-135m\") take text")
        })?;
        let input = model.inputs.first().map(|p| p.name.clone()).unwrap_or_default();
        if texts.len() > 1 && model.pads_left() {
            // Texts of different lengths are left-padded, so each row's last
            // position is its last token; the mask hides the padding and
            // each row's positions start at its first token.
            let (ids, padding) = encode_padded(tok, &texts).map_err(|e| ToolError::arg(i, e))?;
            let mut feeds = vec![(input, ids)];
            if let Some((mask, positions)) = padding {
                feeds.push(("attention_mask".into(), mask));
                feeds.push(("position_ids".into(), positions));
            }
            return Ok(feeds);
        }
        let ids = encode_batch(tok, &texts).map_err(|e| ToolError::arg(i, e))?;
        return Ok(vec![(input, ids)]);
    }
    let names: Vec<&str> = model.inputs.iter().map(|p| p.name.as_str()).collect();
    let required: Vec<&str> = names.iter().copied().filter(|n| !model.optional_input(n)).collect();
    // Each required input with its dtype and shape, as the help lists them.
    let described = required
        .iter()
        .filter_map(|n| model.inputs.iter().find(|p| p.name == *n))
        .map(|p| format!("{} {} {}", p.name, p.dtype, p.shape_text()))
        .collect::<Vec<_>>()
        .join("; ");
    let optional = || {
        let cache = names.iter().filter(|n| n.starts_with("past_key_values.")).count();
        let mut o = Vec::new();
        if cache > 0 {
            o.push(format!("the KV cache (past_key_values.*, {cache} inputs; empty when left out)"));
        }
        for n in ["attention_mask", "position_ids", "token_type_ids"] {
            if names.contains(&n) && model.optional_input(n) {
                o.push(format!("{n} (filled when left out)"));
            }
        }
        o
    };
    match value {
        Value::Record(r) => {
            for k in r.keys() {
                if !names.contains(&k.as_str()) {
                    let help = match assay_interpreter::closest(k, names.iter().copied()) {
                        Some(c) => format!("did you mean `{c}`? the model takes: {described}"),
                        None => format!("the model takes: {described}"),
                    };
                    return Err(ToolError::arg(i, format!("the model has no input `{k}`")).help(help));
                }
            }
            if let Some(m) = required.iter().find(|n| !r.contains_key(**n)) {
                let opt = optional();
                return Err(ToolError::arg(
                    i,
                    format!("input `{m}` is missing; the model needs {}", required.join(", ")),
                )
                .help(if opt.is_empty() {
                    "pass a record {name: tensor} with each".to_string()
                } else {
                    format!("optional: {}", opt.join("; "))
                }));
            }
            r.iter().map(|(k, v)| Ok((k.clone(), as_tensor(v, &format!("input `{k}`"))?))).collect()
        }
        v => match required.as_slice() {
            [one] => Ok(vec![(one.to_string(), as_tensor(v, "inputs")?)]),
            _ => {
                let opt = optional();
                let example = required.iter().map(|n| format!("{n}: ...")).collect::<Vec<_>>().join(", ");
                Err(ToolError::arg(
                    i,
                    format!("the model needs {} inputs; pass a record {{{example}}}", required.len()),
                )
                .help(if opt.is_empty() {
                    format!("its inputs: {}", names.join(", "))
                } else {
                    format!("optional: {}", opt.join("; "))
                }))
            }
        },
    }
}

/// A padded batch's attention mask and position ids, [N, T] each.
pub type Padding = (ArrayD<f32>, ArrayD<f32>);

/// Token ids [N, T] for texts of any lengths, left-padded to the longest,
/// and, where any row is padded, the attention mask [N, T] (0 on padding)
/// and position ids [N, T] (0 from each row's first token).
pub fn encode_padded(tok: &tokenizers::Tokenizer, texts: &[String]) -> Result<(ArrayD<f32>, Option<Padding>), String> {
    let mut rows: Vec<Vec<u32>> = Vec::new();
    for t in texts {
        let enc = tok.encode(t.as_str(), false).map_err(|e| format!("cannot tokenize {t:?}: {e}"))?;
        if enc.get_ids().is_empty() {
            return Err(format!("text {} is empty: a language model needs at least one token", rows.len()));
        }
        rows.push(enc.get_ids().to_vec());
    }
    let t = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let n = rows.len();
    let pad = |r: usize| t - rows[r].len();
    let ids =
        ndarray::Array2::from_shape_fn((n, t), |(r, j)| if j < pad(r) { 0.0 } else { rows[r][j - pad(r)] as f32 });
    if rows.iter().all(|r| r.len() == t) {
        return Ok((ids.into_dyn(), None));
    }
    let mask = ndarray::Array2::from_shape_fn((n, t), |(r, j)| if j < pad(r) { 0.0 } else { 1.0 });
    let positions = ndarray::Array2::from_shape_fn((n, t), |(r, j)| j.saturating_sub(pad(r)) as f32);
    Ok((ids.into_dyn(), Some((mask.into_dyn(), positions.into_dyn()))))
}

/// Token ids [N, T] for texts that tokenize to the same length.
pub fn encode_batch(tok: &tokenizers::Tokenizer, texts: &[String]) -> Result<ArrayD<f32>, String> {
    let mut rows: Vec<Vec<u32>> = Vec::new();
    for t in texts {
        let enc = tok.encode(t.as_str(), false).map_err(|e| format!("cannot tokenize {t:?}: {e}"))?;
        rows.push(enc.get_ids().to_vec());
    }
    let len = rows.first().map(|r| r.len()).unwrap_or(0);
    if len == 0 {
        return Err("the text is empty: a language model needs at least one token".into());
    }
    if let Some((k, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != len) {
        return Err(format!(
            "texts must have the same number of tokens to run as one batch here (this model takes no attention_mask and position_ids to pad them): text 0 has {len}, text {k} has {}",
            r.len()
        ));
    }
    let data: Vec<f32> = rows.into_iter().flatten().map(|x| x as f32).collect();
    ArrayD::from_shape_vec(vec![texts.len(), len], data).map_err(|e| e.to_string())
}

/// Runs `f` on `batch` rows of the feeds at a time (all at once when
/// `batch` is 0 or covers them, or the feeds' rows differ) and joins the
/// batches' outputs. Each batch is copied into place and dropped before the
/// next runs, so memory holds the joined result and one batch.
pub fn batched(
    feeds: Vec<(String, ArrayD<f32>)>,
    inputs: Name,
    batch: usize,
    mut f: impl FnMut(Vec<(String, ArrayD<f32>)>) -> Result<std::collections::BTreeMap<String, Tensor>, ToolError>,
) -> Result<std::collections::BTreeMap<String, Tensor>, ToolError> {
    use ndarray::{Axis, Slice};
    let rows = feeds.first().and_then(|(_, t)| t.shape().first().copied()).unwrap_or(0);
    let same = feeds.iter().all(|(_, t)| t.shape().first().copied() == Some(rows));
    if batch == 0 || rows <= batch || !same {
        return f(feeds);
    }
    let mut out: std::collections::BTreeMap<String, ArrayD<f32>> = std::collections::BTreeMap::new();
    each_batch(&feeds, inputs, rows, batch, f, |start, k, t| {
        let shape = t.shape();
        let joined = out.entry(k.clone()).or_insert_with(|| {
            let mut full = shape.to_vec();
            full[0] = rows;
            ArrayD::zeros(full)
        });
        if joined.shape()[1..] != shape[1..] {
            return Err(changes_shape(&k, joined.shape(), shape));
        }
        joined.slice_axis_mut(Axis(0), Slice::from(start..start + shape[0])).assign(&t.view());
        Ok(())
    })?;
    Ok(out.into_iter().map(|(k, v)| (k, Tensor::new(v))).collect())
}

/// Runs `run` on `step` rows of `feeds` at a time and hands `take` each
/// output of each batch with the row the batch starts at. Every output must
/// have the batch's rows first, or its batches could not be put together.
pub(crate) fn each_batch(
    feeds: &[(String, ArrayD<f32>)],
    inputs: Name,
    rows: usize,
    step: usize,
    mut run: impl FnMut(Vec<(String, ArrayD<f32>)>) -> Result<std::collections::BTreeMap<String, Tensor>, ToolError>,
    mut take: impl FnMut(usize, String, Tensor) -> Result<(), ToolError>,
) -> Result<(), ToolError> {
    use ndarray::{Axis, Slice};
    let mut start = 0;
    while start < rows {
        let end = (start + step.max(1)).min(rows);
        let chunk =
            feeds.iter().map(|(k, t)| (k.clone(), t.slice_axis(Axis(0), Slice::from(start..end)).to_owned())).collect();
        for (k, t) in run(chunk)? {
            if t.shape().first() != Some(&(end - start)) {
                return Err(ToolError::arg(
                    inputs,
                    format!(
                        "`{k}` has shape {:?}: its first axis is not the inputs' rows ({} in this batch), so it cannot be split and joined by rows",
                        t.shape(),
                        end - start
                    ),
                )
                .help("run all rows at once: batch: 0 (and, for capture, no to_disk)"));
            }
            take(start, k, t)?;
        }
        start = end;
    }
    Ok(())
}

pub(crate) fn changes_shape(name: &str, before: &[usize], now: &[usize]) -> ToolError {
    ToolError::new(format!("`{name}` changes shape between batches ({before:?} then {now:?})"))
}

pub(crate) fn outputs_record(out: std::collections::BTreeMap<String, Tensor>) -> Value {
    Value::record(out.into_iter().map(|(k, v)| (k, Value::Tensor(v))))
}

/// Tensor names from a name, a glob, or a list of them.
pub(crate) fn select_names(model: &Model, x: &Bound<TensorNames>) -> Result<Vec<String>, ToolError> {
    let patterns = &x.0;
    let all: Vec<String> =
        model.sites().into_iter().filter(|s| !matches!(s.kind, graph::Kind::Initializer)).map(|s| s.name).collect();
    let mut out = Vec::new();
    for p in patterns {
        let is_glob = p.contains(['*', '?', '[']);
        if is_glob {
            let pat = glob::Pattern::new(p).map_err(|e| x.error(format!("bad pattern `{p}`: {e}")))?;
            let hits: Vec<&String> = all.iter().filter(|n| pat.matches(n)).collect();
            if hits.is_empty() {
                return Err(x
                    .error(format!("no tensor matches `{p}`"))
                    .help("`inspect(model)` or `assay inspect FILE` lists the tensors"));
            }
            out.extend(hits.into_iter().cloned());
        } else if all.contains(p) {
            out.push(p.clone());
        } else {
            return Err(no_tensor(&all, p, x.name()));
        }
    }
    out.dedup();
    Ok(out)
}

/// "The model has no tensor X", with the closest name as a suggestion,
/// blaming argument `i`: the model layer's one wording of a missing tensor.
fn no_tensor(names: &[String], t: &str, i: Name) -> ToolError {
    ModelError::UnknownTensor(t.to_string()).blame(i, i, names)
}

/// Whether the model has a tensor (an input, intermediate, output or
/// weight) named `t`; otherwise the error for argument `i`.
pub(crate) fn known_tensor(m: &Model, t: &str, i: Name) -> Result<(), ToolError> {
    let sites = m.sites();
    if sites.iter().any(|s| s.name == t) {
        return Ok(());
    }
    let names: Vec<String> = sites.into_iter().map(|s| s.name).collect();
    Err(no_tensor(&names, t, i))
}

/// After a hooked run failed: the first value (argument, tensor, shape)
/// that does not broadcast to its tensor's shape on `feeds`, as an error
/// naming the shape it needs, rather than the runtime's broadcast text.
/// `None` if every shape fits (the failure was something else).
pub(crate) fn misshapen(
    m: &Model,
    feeds: Vec<(String, ArrayD<f32>)>,
    given: &[(Name, &str, &[usize])],
) -> Option<ToolError> {
    let names: Vec<String> = given.iter().map(|(_, t, _)| t.to_string()).collect();
    let actual = m.capture(feeds, &names).ok()?;
    given.iter().find_map(|(arg, t, shape)| {
        let a = actual.get(*t)?;
        (!broadcasts_to(shape, a.shape())).then(|| {
            let what = match arg.as_str() {
                "steer" => "steering vector",
                "patch" => "patch value or mask",
                other => other,
            };
            ToolError::arg(*arg, format!("the {what} is {shape:?} but `{t}` is {:?} on these inputs", a.shape())).help(
                format!(
                    "give the tensor's shape {:?} or one that broadcasts to it (e.g. [{}] for every position)",
                    a.shape(),
                    a.shape().last().copied().unwrap_or(1)
                ),
            )
        })
    })
}

/// Whether an array of shape `a` broadcasts to shape `b` (NumPy's rule, one way).
pub(crate) fn broadcasts_to(a: &[usize], b: &[usize]) -> bool {
    a.len() <= b.len() && a.iter().rev().zip(b.iter().rev()).all(|(x, y)| *x == 1 || x == y)
}

/// A model parameter: the handle from model() or onnx().
impl Param for ModelHandle {
    crate::core::declare::bound_by_name!();
    fn ty() -> Type {
        model_type()
    }
    fn read(a: &Args, name: &'static str) -> Result<Self, ToolError> {
        model_of(a, name)
    }
}
