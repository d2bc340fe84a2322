//! Units: a named slice of a model tensor, and running it on inputs in
//! batches. A channel of [N, C, H, W] is reduced over space inside the graph
//! (so only [N, C] leaves ONNX Runtime); a neuron of [N, T, D] is read at
//! chosen token positions; an attention head is a slice of [N, T, H*Dh] or
//! [N, H, T, Dh].

use std::any::Any;
use std::sync::Arc;

use crate::core::kinds::Inputs;
use crate::onnx::handle::feeds;
use assay_interpreter::{Arg, Args, Bound, Handle, HandleKind, Name, ToolError, Type, Value};
use ndarray::{concatenate, ArrayD, Axis, Ix3, Ix4, Slice};

use crate::core::declare::{bound_by_name, tool, Param, ToolCtx, ToolResult};
use crate::onnx::error::ModelError;
use crate::onnx::handle::ModelHandle;
use crate::onnx::model::Model;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reduce {
    Max,
    Mean,
}

#[derive(Debug, Clone)]
pub enum Select {
    /// One channel of [N, C, ...], or all of them (`None`), reduced over the rest.
    Channel(Option<usize>, Reduce),
    /// One feature of [N, T, D] at some positions (negative from the end), or all positions.
    Neuron(usize, Option<Vec<i64>>),
    /// Head `h` of [N, T, H*Dh] (`heads` given) or of [N, H, T, Dh].
    Head(usize, Option<usize>),
}

#[derive(Debug)]
pub struct Unit {
    pub model: ModelHandle,
    pub tensor: String,
    pub select: Select,
}

impl Unit {
    fn select_reduce(&self) -> Reduce {
        match self.select {
            Select::Channel(_, r) => r,
            _ => Reduce::Max,
        }
    }
}

impl Handle for Unit {
    fn kind(&self) -> HandleKind {
        HandleKind::Unit
    }
    fn describe(&self) -> String {
        let what = match &self.select {
            Select::Channel(Some(c), r) => format!("channel {c} ({:?} over space)", r).to_lowercase(),
            Select::Channel(None, r) => format!("every channel ({:?} over space)", r).to_lowercase(),
            Select::Neuron(d, Some(p)) => format!("neuron {d} at positions {p:?}"),
            Select::Neuron(d, None) => format!("neuron {d} at every position"),
            Select::Head(h, _) => format!("head {h}"),
        };
        format!("unit {what} of `{}` in {}", self.tensor, self.model.display)
    }
    fn digest(&self) -> String {
        format!("{}:{}:{:?}", self.model.sha256, self.tensor, self.select)
    }
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "tensor" => Some(Value::str(&self.tensor)),
            "index" => match &self.select {
                Select::Channel(Some(i), _) | Select::Neuron(i, _) | Select::Head(i, _) => Some(Value::Num(*i as f64)),
                Select::Channel(None, _) => Some(Value::None),
            },
            _ => None,
        }
    }
    fn field_names(&self) -> Vec<&'static str> {
        vec!["tensor", "index"]
    }
    fn call_tool(&self) -> Option<&'static str> {
        Some("activations")
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// How a channel is reduced over space, as a parameter: "max" or "mean".
impl Param for Reduce {
    bound_by_name!();
    fn ty() -> Type {
        Type::Str
    }
    fn read(a: &Args, name: &'static str) -> Result<Self, ToolError> {
        match a.str(name)? {
            "max" => Ok(Reduce::Max),
            "mean" => Ok(Reduce::Mean),
            other => Err(a.arg(name).error(format!("`{name}` is \"max\" or \"mean\", found \"{other}\""))),
        }
    }
}

tool! {
    /// One unit of a model tensor. Give exactly one of `channel` (of [N, C, H, W], reduced over space
    /// by `reduce`), `neuron` (of [N, T, D], at `positions`, negative counting from the end; all
    /// positions if omitted) or `head` (of [N, H, T, Dh], or of [N, T, H*Dh] with `heads`). Call it on
    /// inputs: `u(x)` is activations(u, x).
    ///
    /// ```assay
    /// let m = onnx("fixtures/tiny.onnx")
    /// let u = unit(m, "y", channel: 2)
    /// assert u(tensor([[1, 2, 3], [0, 0, -9]])) == tensor([3.5, 0])
    /// ```
    unit in Models -> Type::Handle(HandleKind::Unit);
    {
        /// a model
        model: ModelHandle,
        /// the tensor's name (see inspect)
        tensor: String,
        /// channel index
        channel: Option<usize> = None,
        /// feature index
        neuron: Option<usize> = None,
        /// attention head index
        head: Option<usize> = None,
        /// "max" or "mean" over space, for channels
        reduce: Reduce = "max",
        /// token positions, for neurons
        positions: Option<Vec<f64>> = None,
        /// number of heads, when heads are packed in the last dimension
        heads: Option<usize> = None,
    }
    unit
}

fn unit(p: unit::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let model = p.model.clone();
    let tensor = p.tensor.clone();
    crate::onnx::handle::known_tensor(&model, &tensor, p.tensor.name())?;
    let select = match (*p.channel, *p.neuron, *p.head) {
        (Some(c), None, None) => Select::Channel(Some(c), *p.reduce),
        (None, Some(n), None) => {
            Select::Neuron(n, p.positions.as_ref().map(|ps| ps.iter().map(|p| *p as i64).collect()))
        }
        (None, None, Some(h)) => Select::Head(h, *p.heads),
        _ => {
            return Err(ToolError::new("give exactly one of `channel`, `neuron` or `head`")
                .help("e.g. unit(net, \"/_blocks.15/Relu6_output_0\", channel: 42)"))
        }
    };
    Ok(Value::Handle(Arc::new(Unit { model, tensor, select })))
}

tool! {
    /// Every channel of a [N, C, H, W] tensor at once, reduced over space inside the graph: calling it
    /// gives [N, C].
    ///
    /// ```assay
    /// let m = onnx("fixtures/tiny.onnx")
    /// let l = layer(m, "y")
    /// assert l(tensor([[1, 2, 3], [0, 0, -9]])).shape == [2, 3]
    /// ```
    layer in Models -> Type::Handle(HandleKind::Unit);
    {
        /// a model
        model: ModelHandle,
        /// the tensor's name
        tensor: String,
        /// "max" or "mean"
        reduce: Reduce = "max",
    }
    layer
}

fn layer(p: layer::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let model = p.model.clone();
    let tensor = p.tensor.clone();
    crate::onnx::handle::known_tensor(&model, &tensor, p.tensor.name())?;
    Ok(Value::Handle(Arc::new(Unit { model, tensor, select: Select::Channel(None, *p.reduce) })))
}

pub(crate) fn unit_of(x: &Arg) -> Result<&Unit, ToolError> {
    x.handle::<Unit>("a unit (from unit(), layer() or synthetic())")
}

/// The rank of a model tensor (an intermediate, input or output), as
/// ONNX Runtime infers it.
pub fn tensor_rank(m: &Model, tensor: &str) -> Option<usize> {
    let find = |ports: &[crate::onnx::model::Port]| {
        ports.iter().find(|p| p.name == tensor).and_then(|p| p.shape.as_ref().map(|s| s.len()))
    };
    m.every_tensor().ok().and_then(|all| find(all)).or_else(|| find(&m.inputs)).or_else(|| find(&m.outputs))
}

/// Why a unit gave no values: its model failed (the error, by kind) or the
/// stimuli cannot be used so (a message).
#[derive(Debug)]
pub enum UnitError {
    Model(ModelError),
    Stimuli(String),
}

impl From<ModelError> for UnitError {
    fn from(e: ModelError) -> UnitError {
        UnitError::Model(e)
    }
}

impl From<String> for UnitError {
    fn from(m: String) -> UnitError {
        UnitError::Stimuli(m)
    }
}

impl From<&str> for UnitError {
    fn from(m: &str) -> UnitError {
        UnitError::Stimuli(m.to_string())
    }
}

impl std::fmt::Display for UnitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnitError::Model(e) => e.fmt(f),
            UnitError::Stimuli(m) => f.write_str(m),
        }
    }
}

impl UnitError {
    /// The tool error, blamed on the stimuli's parameter `stimuli`: a
    /// stimulus problem, or a model error about the feeds or a tensor; the
    /// model's own failures (its graph, ONNX Runtime) are the call's.
    pub fn blame(self, stimuli: Name) -> ToolError {
        match self {
            UnitError::Stimuli(m) => ToolError::arg(stimuli, m),
            UnitError::Model(e) => e.blame(stimuli, stimuli, &[]),
        }
    }
}

/// A channel unit's activation on each image, preprocessed as its model
/// says, 32 images per run.
pub fn image_activations(u: &Unit, images: &[Arc<assay_interpreter::Image>]) -> Result<Vec<f64>, UnitError> {
    if !matches!(u.select, Select::Channel(Some(_), _)) {
        return Err("on images, use a channel unit: unit(model, tensor, channel: c)".into());
    }
    let pre = u.model.card.preprocess.ok_or("the model does not say how images become its input")?;
    let input = u.model.inputs.first().map(|p| p.name.clone()).unwrap_or_default();
    let s = pre.size as usize;
    let mut out = Vec::with_capacity(images.len());
    for chunk in images.chunks(32) {
        let mut buf = Vec::with_capacity(chunk.len() * 3 * s * s);
        for img in chunk {
            buf.extend(crate::pixels::preprocess(img, pre.resize, pre.size, pre.mean, pre.std)?);
        }
        let x = ArrayD::from_shape_vec(vec![chunk.len(), 3, s, s], buf).map_err(|e| e.to_string())?;
        out.extend(run_unit(u, vec![(input.clone(), x)])?.iter().map(|v| *v as f64));
    }
    Ok(out)
}

/// A unit's response to each text, one text per run (texts differ in
/// length): the largest value over token positions for a neuron or a
/// channel, and for a head the largest L2 norm of its output vector over
/// positions (a head's "activation" in one number).
pub fn text_activations(u: &Unit, texts: &[String]) -> Result<Vec<f64>, UnitError> {
    if u.model.card.tokenizer.is_none() {
        return Err("this unit's model takes no text; give it images".into());
    }
    let mut out = Vec::with_capacity(texts.len());
    for text in texts {
        let feeds = crate::onnx::handle::text_feeds(&u.model, text)?;
        let t = run_unit(u, feeds)?;
        let v = match u.select {
            Select::Head(..) => t
                .lanes(Axis(t.ndim() - 1))
                .into_iter()
                .map(|l| l.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>().sqrt())
                .fold(f64::NEG_INFINITY, f64::max),
            _ => t.iter().map(|x| *x as f64).fold(f64::NEG_INFINITY, f64::max),
        };
        if !v.is_finite() {
            return Err(format!("the unit gives no finite value on {text:?}").into());
        }
        out.push(v);
    }
    Ok(out)
}

/// A unit on one text, token by token: each token (as the model's
/// tokenizer writes it) and the unit's value there (a neuron's value; a
/// head's L2 norm of its output), aligned. For a neuron read at chosen
/// positions, those positions' tokens.
pub fn text_profile(u: &Unit, text: &str) -> Result<(Vec<String>, Vec<f64>), UnitError> {
    text_profile_raw(u, text).map(|(t, v, _)| (t, v))
}

/// Tokens, the unit's value at each, and its raw values.
type RawProfile = (Vec<String>, Vec<f64>, ArrayD<f32>);

/// As `text_profile`, with the unit's raw values ([1, T] or [1, positions]
/// for a neuron, [1, T, Dh] for a head).
fn text_profile_raw(u: &Unit, text: &str) -> Result<RawProfile, UnitError> {
    let tok = u.model.card.tokenizer.as_ref().ok_or("this unit's model takes no text; give it images")?;
    let feeds = crate::onnx::handle::text_feeds(&u.model, text)?;
    let ids: Vec<u32> = feeds
        .iter()
        .find(|(n, _)| n == "input_ids")
        .map(|(_, a)| a.iter().map(|x| *x as u32).collect())
        .unwrap_or_default();
    let t = run_unit(u, feeds)?;
    let values: Vec<f64> = match (&u.select, t.ndim()) {
        (Select::Head(..), 3) => t
            .index_axis(Axis(0), 0)
            .outer_iter()
            .map(|l| l.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>().sqrt())
            .collect(),
        (_, 2) => t.index_axis(Axis(0), 0).iter().map(|x| *x as f64).collect(),
        (_, n) => {
            return Err(
                format!("the unit gives a rank-{n} value on text; a neuron gives [N, T], a head [N, T, Dh]").into()
            )
        }
    };
    let positions: Vec<usize> = match &u.select {
        Select::Neuron(_, Some(ps)) => {
            ps.iter().map(|p| if *p < 0 { (ids.len() as i64 + p).max(0) as usize } else { *p as usize }).collect()
        }
        _ => (0..values.len()).collect(),
    };
    let tokens: Vec<String> = positions
        .iter()
        .map(|&i| {
            let Some(id) = ids.get(i) else { return String::new() };
            // A byte-level piece of a character decodes to U+FFFD alone: show
            // the tokenizer's own spelling of it instead.
            match tok.decode(&[*id], false) {
                Ok(t) if !t.contains('\u{fffd}') => t,
                _ => tok.id_to_token(*id).unwrap_or_default(),
            }
        })
        .collect();
    if tokens.len() != values.len() {
        return Err(format!("{} values for {} tokens", values.len(), tokens.len()).into());
    }
    Ok((tokens, values, t))
}

/// The text of `ids` with the token at `at` marked `⟦...⟧`, as the text
/// reads (a token that is part of a character marks the whole character).
pub fn marked_text(u: &Unit, text: &str, at: usize) -> Option<String> {
    let tok = u.model.card.tokenizer.as_ref()?;
    let feeds = crate::onnx::handle::text_feeds(&u.model, text).ok()?;
    let ids: Vec<u32> = feeds.iter().find(|(n, _)| n == "input_ids")?.1.iter().map(|x| *x as u32).collect();
    let at = match &u.select {
        Select::Neuron(_, Some(ps)) => {
            let p = *ps.get(at)?;
            if p < 0 {
                (ids.len() as i64 + p).max(0) as usize
            } else {
                p as usize
            }
        }
        _ => at,
    };
    let before = tok.decode(ids.get(..at)?, false).ok()?;
    let through = tok.decode(ids.get(..=at)?, false).ok()?;
    let all = tok.decode(&ids, false).ok()?;
    // Where the two agree, char by char, the marked token starts.
    let common: usize =
        before.chars().zip(through.chars()).take_while(|(a, b)| a == b).map(|(a, _)| a.len_utf8()).sum();
    let common = common.min(through.len());
    let rest = all.get(through.len()..).unwrap_or("");
    Some(format!("{}⟦{}⟧{rest}", &through[..common], &through[common..]))
}

/// A unit on one text as a record: {text, tokens, activations (per token),
/// max, at (the token where it is largest), values (the raw tensor)}.
fn on_text(u: &Unit, text: &str) -> Result<Value, UnitError> {
    let (tokens, values, raw) = text_profile_raw(u, text)?;
    let (at, max) =
        values
            .iter()
            .enumerate()
            .fold((0usize, f64::NEG_INFINITY), |(bi, bv), (i, v)| if *v > bv { (i, *v) } else { (bi, bv) });
    Ok(Value::record([
        ("text", Value::str(text)),
        ("tokens", Value::list(tokens.into_iter().map(Value::str).collect())),
        ("activations", Value::nums(values)),
        ("max", Value::Num(max)),
        ("at", Value::Num(at as f64)),
        ("values", Value::tensor(raw)),
    ]))
}

/// Runs one batch and selects the unit.
/// An error about what the unit selects in its tensor.
fn unit_error(u: &Unit, message: String) -> ModelError {
    ModelError::Tensor { name: u.tensor.clone(), message }
}

fn run_unit(u: &Unit, feeds: Vec<(String, ArrayD<f32>)>) -> Result<ArrayD<f32>, ModelError> {
    match &u.select {
        Select::Channel(index, r) => {
            let op = if *r == Reduce::Max { "ReduceMax" } else { "ReduceMean" };
            // Reduce every axis after the channel axis.
            let rank = tensor_rank(&u.model, &u.tensor).unwrap_or(4);
            if rank < 2 {
                return Err(unit_error(
                    u,
                    format!("`{}` has rank {rank}; channels need a tensor of at least [N, C]", u.tensor),
                ));
            }
            let axes: Vec<i64> = (2..rank as i64).collect();
            let all = if axes.is_empty() {
                u.model
                    .capture(feeds, std::slice::from_ref(&u.tensor))?
                    .remove(&u.tensor)
                    .ok_or_else(|| ModelError::Runtime("no output".into()))?
            } else {
                u.model.reduced(feeds, &u.tensor, op, &axes)?
            };
            match index {
                None => Ok(all),
                Some(c) => {
                    let channels = all.shape().get(1).copied().unwrap_or(0);
                    if *c >= channels {
                        return Err(unit_error(
                            u,
                            format!("channel {c} is out of range: `{}` has {channels} channels", u.tensor),
                        ));
                    }
                    Ok(all.index_axis(Axis(1), *c).to_owned())
                }
            }
        }
        Select::Neuron(d, positions) => {
            let t = u
                .model
                .capture(feeds, std::slice::from_ref(&u.tensor))?
                .remove(&u.tensor)
                .ok_or_else(|| ModelError::Runtime("no output".into()))?;
            let t = t
                .into_dimensionality::<Ix3>()
                .map_err(|_| unit_error(u, format!("`{}` is not [N, T, D]; neurons need a rank-3 tensor", u.tensor)))?;
            let (_, tlen, dim) = t.dim();
            if *d >= dim {
                return Err(unit_error(u, format!("neuron {d} is out of range: `{}` has {dim} features", u.tensor)));
            }
            let feature = t.index_axis(Axis(2), *d).to_owned();
            match positions {
                None => Ok(feature.into_dyn()),
                Some(ps) => {
                    let mut cols = Vec::new();
                    for p in ps {
                        let q = if *p < 0 { tlen as i64 + p } else { *p };
                        if q < 0 || q >= tlen as i64 {
                            return Err(ModelError::Input(format!("position {p} is out of range for {tlen} tokens")));
                        }
                        cols.push(feature.index_axis(Axis(1), q as usize).insert_axis(Axis(1)).to_owned());
                    }
                    let views: Vec<_> = cols.iter().map(|c| c.view()).collect();
                    concatenate(Axis(1), &views).map(|a| a.into_dyn()).map_err(|e| unit_error(u, e.to_string()))
                }
            }
        }
        Select::Head(h, heads) => {
            let t = u
                .model
                .capture(feeds, std::slice::from_ref(&u.tensor))?
                .remove(&u.tensor)
                .ok_or_else(|| ModelError::Runtime("no output".into()))?;
            match (t.ndim(), heads) {
                (4, _) => {
                    let t = t.into_dimensionality::<Ix4>().map_err(|e| unit_error(u, e.to_string()))?;
                    if *h >= t.dim().1 {
                        return Err(unit_error(
                            u,
                            format!("head {h} is out of range: `{}` has {} heads", u.tensor, t.dim().1),
                        ));
                    }
                    Ok(t.index_axis(Axis(1), *h).to_owned().into_dyn())
                }
                (3, Some(n)) => {
                    let width = t.shape()[2];
                    if *n == 0 || width % n != 0 {
                        return Err(unit_error(u, format!("{width} features do not split into {n} heads")));
                    }
                    let dh = width / n;
                    if *h >= *n {
                        return Err(unit_error(u, format!("head {h} is out of range for {n} heads")));
                    }
                    Ok(t.slice_axis(Axis(2), Slice::from(h * dh..(h + 1) * dh)).to_owned())
                }
                (3, None) => {
                    Err(unit_error(u, format!("`{}` is [N, T, H*Dh]: say how many heads with `heads:`", u.tensor)))
                }
                (r, _) => {
                    Err(unit_error(u, format!("`{}` has rank {r}; heads need [N, H, T, Dh] or [N, T, H*Dh]", u.tensor)))
                }
            }
        }
    }
}

tool! {
    /// Runs a unit on inputs, `batch` rows at a time, and returns its values: one number per row for a
    /// channel, [N, C] for a layer, [N, positions] or [N, T] for a neuron, [N, T, Dh] for a head. On
    /// images (an image model's channel unit) it returns {activations, masked}: each image's activation
    /// and, as in MAIA, the crop the model saw with the regions where the unit is weak darkened. On a
    /// text (a language model's neuron or head) it returns {text, tokens, activations, max, at, values}:
    /// its value at each token beside the token (a head's: the norm of its output), the largest, the
    /// token where it is, and the raw values ([1, T] or [1, T, Dh]); on a list of texts, one each. `u(x)` is the same call.
    ///
    /// ```assay
    /// let m = onnx("fixtures/tiny.onnx")
    /// let u = unit(m, "z", channel: 0)
    /// let x = tensor([[1, 0, 0], [2, 0, 0], [3, 0, 0], [0, 0, 0]])
    /// assert activations(u, x, batch: 2) == tensor([4, 6, 8, 2])
    /// ```
    activations in Models -> Type::OneOf(vec![Type::Tensor, Type::record(), Type::list(Type::record())]);
    {
        /// a unit or layer
        unit: Arg [Type::Handle(HandleKind::Unit)],
        /// a record {input_name: tensor}, or one tensor; rows along the first axis
        inputs: Inputs,
        /// rows per run
        batch: usize = 32,
        /// on images: darken where the map is below this fraction of its maximum
        threshold: f64 = 0.5,
    }
    activations
}

fn activations(p: activations::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let u = unit_of(&p.unit)?;
    let is_images = match &**p.inputs {
        Value::Image(_) => true,
        Value::List(items) => !items.is_empty() && items.iter().all(|v| matches!(v, Value::Image(_))),
        _ => false,
    };
    if is_images {
        return on_images(u, (p.unit.name(), &p.inputs), *p.threshold as f32);
    }
    // Text, for a unit of a model with a tokenizer: per text, its values
    // token by token beside the tokens (each text alone).
    if u.model.card.tokenizer.is_some() {
        match &**p.inputs {
            Value::Str(t) => return on_text(u, t).map_err(|e| e.blame(p.inputs.name())),
            Value::List(items) if !items.is_empty() && items.iter().all(|v| matches!(v, Value::Str(_))) => {
                let out: Result<Vec<Value>, UnitError> = items.iter().map(|v| on_text(u, &v.to_text())).collect();
                return out.map(Value::list).map_err(|e| e.blame(p.inputs.name()));
            }
            _ => {}
        }
    }
    let all = feeds(&u.model, &p.inputs)?;
    let batch = p.batch.max(1);
    let n = all.first().map(|(_, t)| t.shape().first().copied().unwrap_or(1)).unwrap_or(0);
    if all.iter().any(|(_, t)| t.shape().first().copied().unwrap_or(1) != n) {
        return Err(p.inputs.error("all inputs must have the same number of rows (first dimension)"));
    }
    if n == 0 && all.iter().any(|(_, t)| t.ndim() > 0) {
        return Err(p
            .inputs
            .error("the input has no rows (its first dimension is 0)")
            .help("pass at least one example, e.g. a tensor of shape [1, ...]"));
    }
    // The one row-batch walker `run` and `capture` use.
    let mut out = crate::onnx::handle::batched(all, p.inputs.name(), batch, |chunk| {
        run_unit(u, chunk)
            .map(|a| std::iter::once((String::new(), assay_interpreter::Tensor::new(a))).collect())
            .map_err(|e| u.model.blame(e, p.inputs.name(), p.unit.name()))
    })?;
    let joined = out.remove("").ok_or_else(|| ToolError::new("the unit returned nothing"))?;
    Ok(Value::Tensor(joined))
}
/// A unit called on images: per image, its activation (the channel's
/// spatial max) and a masked copy of the crop the model saw.
fn on_images(u: &Unit, (unit, inputs): (Name, &Bound<Inputs>), threshold: f32) -> Result<Value, ToolError> {
    let images: Vec<Arc<assay_interpreter::Image>> = match &***inputs {
        Value::Image(i) => vec![i.clone()],
        Value::List(items) => {
            items.iter().filter_map(|v| if let Value::Image(i) = v { Some(i.clone()) } else { None }).collect()
        }
        _ => Vec::new(),
    };
    let Select::Channel(Some(c), _) = u.select else {
        return Err(ToolError::arg(unit, "on images, call a channel unit: unit(model, tensor, channel: c)"));
    };
    let pre = u.model.card.preprocess.ok_or_else(|| {
        ToolError::arg(unit, "the model does not say how images become its input")
            .help("use pixels() to make a tensor and call the unit on that")
    })?;
    let mut acts = Vec::new();
    let mut masked = Vec::new();
    let input = u.model.inputs.first().map(|p| p.name.clone()).unwrap_or_default();
    for img in &images {
        let x = crate::pixels::preprocess(img, pre.resize, pre.size, pre.mean, pre.std).map_err(|e| inputs.error(e))?;
        let s = pre.size as usize;
        let x = ArrayD::from_shape_vec(vec![1, 3, s, s], x).map_err(|e| ToolError::new(e.to_string()))?;
        let t = u
            .model
            .capture(vec![(input.clone(), x)], std::slice::from_ref(&u.tensor))
            .map_err(|e| u.model.blame(e, inputs.name(), unit))?;
        let t = t.get(&u.tensor).cloned().ok_or_else(|| ToolError::new("no output"))?;
        let t = t
            .into_dimensionality::<Ix4>()
            .map_err(|_| ToolError::arg(unit, format!("`{}` is not [N, C, H, W]", u.tensor)))?;
        if c >= t.dim().1 {
            return Err(ToolError::arg(
                unit,
                format!("channel {c} is out of range: `{}` has {} channels", u.tensor, t.dim().1),
            ));
        }
        let map = t.index_axis(Axis(0), 0).index_axis(Axis(0), c).to_owned();
        let r = u.select_reduce();
        acts.push(if r == Reduce::Max {
            map.iter().fold(f32::NEG_INFINITY, |x, y| x.max(*y))
        } else {
            map.mean().unwrap_or(0.0)
        } as f64);
        let view = crate::pixels::crop_view(img, pre.resize, pre.size).map_err(|e| inputs.error(e))?;
        masked.push(Value::Image(Arc::new(crate::pixels::mask_image(&view, &map.view(), threshold))));
    }
    Ok(Value::record([("activations", Value::nums(acts)), ("masked", Value::list(masked))]))
}
