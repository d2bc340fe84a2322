//! Activation patching sweeps, batched: one rewritten graph patches every
//! selected tensor, and each batch row patches exactly one component — a
//! slice of a tensor's last dimension (an attention head) or a whole tensor
//! (an MLP output, the residual stream) — from a source run into the target
//! run, at chosen positions. A sweep over hundreds of heads is a handful of
//! runs, not hundreds.

use crate::onnx::handle::feeds_value;
use assay_interpreter::{Arg, Args, ToolCtx, ToolError, Type, Value};
use ndarray::{ArrayD, Axis, Slice};
use std::collections::BTreeMap;

use crate::core::declare::tool;
use crate::onnx::error::ModelError;
use crate::onnx::handle::model_of;
use crate::onnx::handle::ModelHandle;
use crate::onnx::model::{Fact, Model};

/// One component: a tensor and the column range of its last axis.
#[derive(Debug, Clone)]
pub struct Component {
    pub tensor: String,
    /// Its place in the component list (tensor index × parts + part).
    pub index: usize,
    pub cols: (usize, usize),
}

/// The sweep's setup, shared by the batched and one-at-a-time paths.
pub struct Sweep<'m> {
    pub model: &'m Model,
    pub target: Vec<(String, ArrayD<f32>)>,
    /// The source run's value of every patched tensor, [1, T, D].
    pub source: BTreeMap<String, ArrayD<f32>>,
    pub components: Vec<Component>,
    /// Token positions to patch (None: all).
    pub positions: Option<Vec<usize>>,
    /// Compute outputs at the last position only.
    pub last_position: bool,
    /// The shared prefix, once [`Sweep::share_prefix`] has found one.
    pub prefix: Option<Prefix>,
}

/// The tokens that the target and the source share at the start. Their
/// activations are the same in both runs (the model is causal), so a patch
/// there changes nothing; for a model with a KV cache they run once, and
/// every batch feeds their keys and values as the past and runs only the
/// tokens after them.
pub struct Prefix {
    /// Tokens in the prefix.
    pub len: usize,
    /// The target's feeds for the tokens after the prefix, and the past.
    target: Feeds,
    /// The patch values at those tokens.
    source: Outputs,
    /// The patched positions among those tokens (None: all).
    positions: Option<Vec<usize>>,
}

/// Splits each tensor (its value given, [1, ..., D]) into `parts` slices of
/// its last axis; component `index` is tensor index × parts + part.
pub fn split(names: &[String], values: &Outputs, parts: usize, arg: &str) -> Result<Vec<Component>, ToolError> {
    let mut out = Vec::new();
    for (index, n) in names.iter().enumerate() {
        let v = values.get(n).ok_or_else(|| ToolError::new(format!("no value captured for `{n}`")))?;
        let width = v.shape().last().copied().unwrap_or(1);
        if parts == 0 || width % parts != 0 {
            return Err(ToolError::arg(arg, format!("`{n}`'s last axis ({width}) does not split into {parts} parts")));
        }
        let w = width / parts;
        for p in 0..parts {
            out.push(Component { tensor: n.clone(), index: index * parts + p, cols: (p * w, (p + 1) * w) });
        }
    }
    Ok(out)
}

pub(crate) fn repeat_rows(a: &ArrayD<f32>, n: usize) -> ArrayD<f32> {
    let views: Vec<_> = (0..n).map(|_| a.view()).collect();
    ndarray::concatenate(Axis(0), &views).unwrap_or_else(|_| a.clone())
}

pub type Outputs = BTreeMap<String, ArrayD<f32>>;
type Feeds = Vec<(String, ArrayD<f32>)>;
/// A patched tensor, its new value and its mask.
type Patch = (String, ArrayD<f32>, ArrayD<f32>);
/// Each row's (component, weight) pairs.
pub type Rows = Vec<Vec<(usize, f32)>>;

/// What a patched run returns.
#[derive(Clone, Copy)]
pub struct Want<'a> {
    /// Model outputs.
    pub outputs: &'a [String],
    /// Intermediate tensors, as the patched run computes them.
    pub capture: &'a [String],
    /// Compute the model's outputs at the last position only (see
    /// [`crate::onnx::graph::last_position`]): [N, 1, V] instead of [N, T, V].
    pub last_position: bool,
}

impl<'a> Want<'a> {
    /// Just these outputs, at every position.
    pub fn outputs(outputs: &'a [String]) -> Want<'a> {
        Want { outputs, capture: &[], last_position: false }
    }
}

/// How a batch's shared parts are fed. `Repeat` copies the target run into
/// every row, so the whole model runs `b` times. `Broadcast` feeds the
/// target once, and each patched tensor's mask with `b` rows only where a
/// row of this batch patches it (one row of zeros elsewhere): the graph then
/// computes everything upstream of the batch's first patched tensor once,
/// and `mask*new + (1-mask)*orig` broadcasts it to `b` rows from there on.
/// That is only right where the graph's ops broadcast a batch of one
/// (elementwise ops and MatMul do; a Reshape to a shape computed from the
/// batch-1 input would not), so [`run_mixed`] checks it once per hook set.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Feed {
    Repeat,
    Broadcast,
}

/// A patched run's fixed parts: the model, the target (one example), the
/// patch values ([1, ...] each), the components and positions, and what
/// to return. Rows vary from batch to batch.
#[derive(Clone, Copy)]
struct Mix<'a> {
    m: &'a Model,
    target: &'a [(String, ArrayD<f32>)],
    values: &'a Outputs,
    components: &'a [Component],
    positions: Option<&'a [usize]>,
    want: Want<'a>,
}

impl Mix<'_> {
    /// The feeds and patches for one batch.
    fn inputs(&self, rows: &[Vec<(usize, f32)>], feed: Feed) -> (Feeds, Vec<Patch>) {
        let b = rows.len();
        let copies = if feed == Feed::Repeat { b } else { 1 };
        let feeds = self.target.iter().map(|(k, v)| (k.clone(), repeat_rows(v, copies))).collect();
        let mut patches = Vec::new();
        for (t, val) in self.values {
            let named = rows.iter().flatten().any(|(ci, _)| self.components[*ci].tensor == *t);
            let n = if named || feed == Feed::Repeat { b } else { 1 };
            let mut shape = val.shape().to_vec();
            shape[0] = n;
            let mut mask = ArrayD::<f32>::zeros(shape);
            for (r, row) in rows.iter().enumerate().filter(|_| named) {
                for &(ci, w) in row {
                    let c = &self.components[ci];
                    if &c.tensor != t {
                        continue;
                    }
                    let mut rr = mask.index_axis_mut(Axis(0), r);
                    let last = rr.ndim() - 1;
                    let mut cols = rr.slice_axis_mut(Axis(last), Slice::from(c.cols.0..c.cols.1));
                    match self.positions {
                        None => cols.fill(w),
                        Some(ps) => {
                            for &p in ps {
                                cols.index_axis_mut(Axis(0), p).fill(w);
                            }
                        }
                    }
                }
            }
            patches.push((t.clone(), repeat_rows(val, n), mask));
        }
        (feeds, patches)
    }

    /// One patched run of a batch, split into its rows. An output with one
    /// row where the batch has `b` was computed upstream of every patch, so
    /// it is the same for every row.
    fn run(&self, rows: &[Vec<(usize, f32)>], feed: Feed) -> Result<Vec<Outputs>, ModelError> {
        let b = rows.len();
        let (feeds, patches) = self.inputs(rows, feed);
        let w = self.want;
        let out = self.m.patch_capture(feeds, patches, w.outputs, w.capture, w.last_position)?;
        for (k, v) in &out {
            let n = v.shape().first().copied().unwrap_or(0);
            if n != b && n != 1 {
                return Err(ModelError::Runtime(format!("`{k}` came back with {n} rows for a batch of {b}")));
            }
        }
        Ok((0..b)
            .map(|r| {
                out.iter()
                    .map(|(k, v)| {
                        let i = if v.shape()[0] == 1 { 0 } else { r };
                        (k.clone(), v.slice_axis(Axis(0), Slice::from(i..i + 1)).to_owned())
                    })
                    .collect()
            })
            .collect())
    }

    /// Whether this model and hook set may be fed in [`Feed::Broadcast`]
    /// form: decided once per model and hook set by running a probe batch
    /// both ways — an unpatched row and a row patching the first patched
    /// tensor in graph order, so that the broadcast part spans every patch
    /// point — and comparing every output. Any error or difference keeps
    /// `Repeat`.
    fn broadcast_ok(&self) -> bool {
        if self.target.iter().any(|(_, v)| v.shape().first() != Some(&1)) {
            return false;
        }
        let w = self.want;
        let key = Fact::Broadcasts {
            targets: self.target.iter().map(|(k, _)| k.clone()).collect(),
            patched: self.values.keys().cloned().collect(),
            outputs: w.outputs.to_vec(),
            capture: w.capture.to_vec(),
            last_position: w.last_position,
        };
        if let Some(ok) = self.m.fact(&key) {
            return ok;
        }
        let order = self.m.sites();
        let first = order.iter().find_map(|s| {
            self.components.iter().position(|c| c.tensor == s.name && self.values.contains_key(&c.tensor))
        });
        let ok = match first {
            None => true,
            Some(ci) => {
                let probe = [vec![], vec![(ci, 1.0)]];
                matches!((self.run(&probe, Feed::Broadcast), self.run(&probe, Feed::Repeat)), (Ok(a), Ok(b)) if agree(&a, &b))
            }
        };
        self.m.learn(key, ok);
        ok
    }
}

/// Whether two runs' outputs agree to float rounding.
fn agree(a: &[Outputs], b: &[Outputs]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.len() == y.len()
                && x.iter().zip(y).all(|((kx, vx), (ky, vy))| {
                    let scale = vx.iter().fold(1f32, |m, v| m.max(v.abs()));
                    kx == ky
                        && vx.shape() == vy.shape()
                        && vx.iter().zip(vy.iter()).all(|(p, q)| (p - q).abs() <= 1e-4 * scale)
                })
        })
}

/// The one patching primitive of sweeps, path patching, circuits and DCM:
/// runs the target once per row (batched), each row mixing component
/// slices with weights `rows[r]` as `w*values + (1-w)*own`, at `positions`
/// (all if None). `values` are [1, ...] each; every tensor in it is patched
/// (weight 0 where no row names it), so one hook set serves every batch.
/// Where the graph allows (see [`Feed`]), the part of the model upstream of
/// the batch's first patched tensor runs once, not once per row.
/// Returns each row's wanted outputs and `capture`d tensors, [1, ...] each.
pub fn run_mixed(
    m: &Model,
    target: &[(String, ArrayD<f32>)],
    values: &Outputs,
    components: &[Component],
    rows: &[Vec<(usize, f32)>],
    positions: Option<&[usize]>,
    want: Want,
) -> Result<Vec<Outputs>, ModelError> {
    for (t, v) in values {
        if v.shape().first() != Some(&1) {
            return Err(ModelError::Tensor {
                name: t.clone(),
                message: format!("`{t}`'s patch value must be one example [1, ...], it is {:?}", v.shape()),
            });
        }
    }
    for c in components {
        let width = values.get(&c.tensor).and_then(|v| v.shape().last().copied()).unwrap_or(0);
        if c.cols.1 > width || values.get(&c.tensor).is_some_and(|v| v.ndim() < 2) {
            return Err(ModelError::Tensor {
                name: c.tensor.clone(),
                message: format!("component {} does not fit `{}`", c.index, c.tensor),
            });
        }
    }
    let mix = Mix { m, target, values, components, positions, want };
    // Some exported graphs run one row at a time only (PyTorch's dynamo
    // exporter at opset 23 gives RotaryEmbedding a batch-1 cache): then the
    // same rows run one each, and the model remembers it.
    let one_by_one = || -> Result<Vec<Outputs>, ModelError> {
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.append(&mut mix.run(std::slice::from_ref(r), Feed::Repeat)?);
        }
        Ok(out)
    };
    if rows.len() > 1 && single_rows_only(m) {
        return one_by_one();
    }
    let feed = if rows.len() > 1 && mix.broadcast_ok() { Feed::Broadcast } else { Feed::Repeat };
    match mix.run(rows, feed) {
        Err(e) if rows.len() > 1 => match one_by_one() {
            Ok(out) => {
                m.learn(Fact::OneRowAtATime, true);
                Ok(out)
            }
            Err(_) => Err(e),
        },
        other => other,
    }
}

/// Whether the model was found to run one row at a time only.
pub(crate) fn single_rows_only(m: &Model) -> bool {
    m.fact(&Fact::OneRowAtATime).unwrap_or(false)
}

impl<'m> Sweep<'m> {
    /// Runs rows `rows` of the component list in one batch, each patching
    /// its one component; returns the model's outputs for each row, [1, ...] each.
    pub fn run_rows(&self, rows: &[usize]) -> Result<Vec<Outputs>, ModelError> {
        let rows: Vec<Vec<(usize, f32)>> = rows.iter().map(|c| vec![(*c, 1.0)]).collect();
        self.run_target(&rows)
    }

    /// The outputs of `inputs` with nothing patched, through the same hook
    /// set (so shaped as the patched rows are).
    pub fn unpatched(&self, inputs: &[(String, ArrayD<f32>)]) -> Result<Outputs, ModelError> {
        let out = self.run_with(inputs, &self.source, self.positions.as_deref(), &[vec![]])?;
        out.into_iter().next().ok_or_else(|| ModelError::Runtime("the run returned no rows".into()))
    }

    /// The target's outputs with nothing patched, computed as the patched
    /// rows are (from the shared prefix, if there is one).
    pub fn clean(&self) -> Result<Outputs, ModelError> {
        self.run_target(&[vec![]])?
            .into_iter()
            .next()
            .ok_or_else(|| ModelError::Runtime("the run returned no rows".into()))
    }

    fn run_target(&self, rows: &[Vec<(usize, f32)>]) -> Result<Vec<Outputs>, ModelError> {
        match &self.prefix {
            Some(p) => self.run_with(&p.target, &p.source, p.positions.as_deref(), rows),
            None => self.run_with(&self.target, &self.source, self.positions.as_deref(), rows),
        }
    }

    fn run_with(
        &self,
        inputs: &[(String, ArrayD<f32>)],
        values: &Outputs,
        positions: Option<&[usize]>,
        rows: &[Vec<(usize, f32)>],
    ) -> Result<Vec<Outputs>, ModelError> {
        let outputs = self.model.output_names();
        let want = Want { outputs: &outputs, capture: &[], last_position: self.last_position };
        run_mixed(self.model, inputs, values, &self.components, rows, positions, want)
    }

    /// Finds the tokens that the target and `source` (the source run's
    /// inputs) share at the start and, where the model has a KV cache and
    /// only the last position's outputs are wanted, runs them once: later
    /// runs feed their keys and values and compute only the tokens after
    /// them. Checked once: the target's outputs computed both ways must
    /// agree, else nothing changes. Returns the prefix's length (0: none).
    pub fn share_prefix(&mut self, source: &[(String, ArrayD<f32>)]) -> Result<usize, ModelError> {
        self.prefix = None;
        let ([(name, ids)], [(sname, sids)]) = (self.target.as_slice(), source) else { return Ok(0) };
        if !self.last_position
            || self.model.kv.is_none()
            || name != sname
            || ids.ndim() != 2
            || ids.shape() != sids.shape()
        {
            return Ok(0);
        }
        let t = ids.shape()[1];
        let fits = |v: &ArrayD<f32>| v.ndim() >= 3 && v.shape()[1] == t;
        if t < 2 || ids.shape()[0] != 1 || !self.source.values().all(fits) {
            return Ok(0);
        }
        let len = (0..t).find(|&i| ids[[0, i]] != sids[[0, i]]).unwrap_or(t).min(t - 1);
        if len == 0 {
            return Ok(0);
        }
        let cut = |a: &ArrayD<f32>, range: std::ops::Range<usize>| a.slice_axis(Axis(1), Slice::from(range)).to_owned();
        // A cache that cannot be read this way is not used: the sweep runs as it would without one.
        let Ok(mut target) = self.model.kv_prefix(vec![(name.clone(), cut(ids, 0..len))]) else { return Ok(0) };
        target.insert(0, (name.clone(), cut(ids, len..t)));
        let source = self.source.iter().map(|(k, v)| (k.clone(), cut(v, len..t))).collect();
        let positions = self.positions.as_ref().map(|ps| ps.iter().filter(|&&p| p >= len).map(|p| p - len).collect());
        let full = self.clean()?;
        self.prefix = Some(Prefix { len, target, source, positions });
        let same = self.clean().is_ok_and(|cached| agree(&[full], &[cached]));
        if !same {
            self.prefix = None;
        }
        Ok(if same { len } else { 0 })
    }
}

/// A row's outputs as a script record, shaped as run() returns them for one
/// example (the batch axis kept, of size 1).
pub fn outputs_value(o: &Outputs) -> Value {
    Value::record(o.iter().map(|(k, v)| (k.clone(), Value::tensor(v.clone()))))
}

tool! {
    /// Activation patching over many components at once. Every tensor matching `tensors` (a name, glob
    /// or list) is split into `parts` equal slices of its last axis (e.g. 9 attention heads of [N, T,
    /// 9*64]; 1 for a whole MLP output); for each slice, its value from the `source` run replaces the
    /// `target` run's at `positions` (all if omitted), and `metric(outputs)` scores the patched
    /// outputs. Returns {effects: [tensors, parts] tensor of metric(patched) - metric(target), clean,
    /// source, tensors, runs, prefix}. Batched: each run patches `batch` components, one per row. With
    /// last_position, on a model with a KV cache (`past_key_values.*` inputs, as SmolLM2's), the tokens
    /// target and source share at the start (`prefix` of them) run once, and each run computes only the
    /// tokens after them. Shardable: under `assay run --shard i/n` each shard patches its block of
    /// batches (its effects elsewhere are NaN) and `assay merge` gives exactly the one-machine result.
    /// Given lists of texts as `target` and `source` (pairs of equal length, pairs of different
    /// lengths), every pair runs in one left-padded batch (a model that takes attention_mask and
    /// position_ids), each pair as it would alone; `metric(outputs, i)` then scores pair i, and the
    /// result has effects [pairs, tensors, parts], mean_effects [tensors, parts], and clean and source
    /// per pair.
    ///
    /// ```assay
    /// let m = onnx("fixtures/tiny_dynamic.onnx")
    /// let s = patch_sweep(m, zeros([1, 3]), tensor([[1, 2, -3]]), ["h", "y"], out => sum(out.z), parts: 3, batch: 4)
    /// assert s.clean == 3 and s.runs == 2
    /// assert s.effects == tensor([[2, 2, -1], [2, 2, -1]])
    /// ```
    patch_sweep in Interventions -> Type::record(), shardable(sweep_merge);
    {
        /// a model
        model: ModelHandle,
        /// the run to patch into: text, or inputs as for run()
        target: Value,
        /// the run to take activations from (same shapes)
        source: Arg [Type::Any],
        /// tensor names or globs
        tensors: Arg [Type::OneOf(vec![Type::Str, Type::list(Type::Str)])],
        /// outputs => number, e.g. a logit difference
        metric: Value [Type::Func],
        /// slices per tensor along its last axis
        parts: usize = Value::Num(1.0),
        /// token positions to patch (negative from the end)
        positions: Arg [Type::list(Type::Num)] = Value::None,
        /// components per run
        batch: usize = Value::Num(16.0),
        /// compute the outputs at the last position only ([1, 1, V] logits): much faster for a
        /// language model when the metric reads only the next token, as logit_diff, prob and kl do
        last_position: bool = Value::Bool(false),
    }
    |p, ctx| {
        if let Some(pairs) = texts(&p.target) {
            return sweep_pairs(&p, ctx, pairs);
        }
        let m = p.model.clone();
        let target = feeds_value(&m, &p.target, "target")?;
        let source = feeds_value(&m, p.source.get(), "source")?;
        if target.iter().any(|(_, t)| t.shape().first() != Some(&1))
            || source.iter().any(|(_, t)| t.shape().first() != Some(&1))
        {
            return Err(ToolError::arg("target", "target and source must each be one example (first dimension 1)"));
        }
        for ((kt, t), (ks, s)) in target.iter().zip(&source) {
            if kt != ks || t.shape() != s.shape() {
                return Err(ToolError::arg(
                    "source",
                    format!("source input `{ks}` {:?} does not match target input `{kt}` {:?}", s.shape(), t.shape()),
                )
                .help("for text, choose prompts with the same number of tokens"));
            }
        }
        let names = crate::onnx::handle::select_names(&m, &p.tensors)?;
        let metric = p.metric.clone();
        let parts = p.parts.max(1);
        let batch = p.batch.max(1);
        let src_vals = m.capture(source.clone(), &names).map_err(|e| m.blame(e, "source", "tensors"))?;
        let mut t_len = 0;
        for n in &names {
            let v = &src_vals[n];
            if v.ndim() < 2 {
                return Err(ToolError::arg(
                    "tensors",
                    format!("`{n}` has rank {}; a sweep patches tensors of at least [1, D]", v.ndim()),
                ));
            }
            if v.ndim() >= 3 {
                t_len = v.shape()[1];
            }
        }
        let components = split(&names, &src_vals, parts, "parts")?;
        let positions = resolve_positions(&p.positions, t_len.max(1))?;
        if positions.is_some() && t_len == 0 {
            return Err(ToolError::arg("positions", "positions need tensors of shape [1, T, D]"));
        }
        let last_position = p.last_position;
        if last_position {
            m.last_position_outputs().map_err(|e| {
                ToolError::arg("last_position", e)
                    .help("leave last_position out: the metric then sees the outputs at every position")
            })?;
        }
        let mut sweep = Sweep {
            model: &m,
            target: target.clone(),
            source: src_vals,
            components,
            positions,
            last_position,
            prefix: None,
        };
        let prefix = sweep.share_prefix(&source).map_err(|e| m.blame(e, "target", "tensors"))?;
        let score =
            |ctx: &mut dyn ToolCtx, o: &BTreeMap<String, ArrayD<f32>>, item: Option<u64>| -> Result<f64, ToolError> {
                let v = match item {
                    Some(i) => ctx.call_item(&metric, vec![outputs_value(o)], i)?,
                    None => ctx.call(&metric, vec![outputs_value(o)])?,
                };
                crate::methods::interventions::metric_number(v, "metric")
            };
        let clean_out = sweep.clean().map_err(|e| m.blame(e, "target", "tensors"))?;
        let clean = score(ctx, &clean_out, None)?;
        let source_out = sweep.unpatched(&source).map_err(|e| m.blame(e, "source", "tensors"))?;
        let source_score = score(ctx, &source_out, None)?;
        let n = sweep.components.len();
        // A shard takes a contiguous block of whole batches, so every component
        // is patched in the same batch as in one run over all of them.
        let (first, last) = match ctx.share() {
            Some(share) => {
                let b = share.range(n.div_ceil(batch));
                ((b.start * batch).min(n), (b.end * batch).min(n))
            }
            None => (0, n),
        };
        let mut effects = Vec::with_capacity(last - first);
        let mut runs = 0;
        let mut start = first;
        while start < last {
            let rows: Vec<usize> = (start..(start + batch).min(last)).collect();
            let outs = sweep.run_rows(&rows).map_err(|e| m.blame(e, "target", "tensors"))?;
            runs += 1;
            for (r, o) in rows.iter().zip(outs) {
                effects.push((score(ctx, &o, Some(*r as u64))? - clean) as f32);
            }
            start += batch;
        }
        let part = Value::record([
            ("first", Value::Num(first as f64)),
            ("effects", Value::nums(effects.iter().map(|e| *e as f64))),
            ("clean", Value::Num(clean)),
            ("source", Value::Num(source_score)),
            ("runs", Value::Num(runs as f64)),
            ("prefix", Value::Num(prefix as f64)),
        ]);
        match ctx.share() {
            Some(_) => Ok(part),
            None => merge_blocks(&m, &p.tensors, p.parts, ctx, vec![part]),
        }
    }
}

fn resolve_positions(x: &Arg, t: usize) -> Result<Option<Vec<usize>>, ToolError> {
    if x.is_none() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for p in x.numbers()? {
        let q = if p < 0.0 { t as f64 + p } else { p };
        if q < 0.0 || q >= t as f64 || q.fract() != 0.0 {
            return Err(x.error(format!("position {p} is out of range for {t} tokens")));
        }
        out.push(q as usize);
    }
    Ok(Some(out))
}

/// Whether an argument is several texts (a sweep over prompt pairs).
fn texts(v: &Value) -> Option<usize> {
    crate::onnx::handle::texts_of(v).map(|t| t.len()).filter(|n| *n > 1 && matches!(v, Value::List(_)))
}

/// A sweep over several prompt pairs of different lengths in one padded
/// batch: the targets and the sources are left-padded (the mask hides the
/// padding and positions start at each prompt's first token), each row
/// patches one component of one pair from that pair's source, at that
/// pair's own tokens, and `metric(outputs, i)` scores it for pair i.
fn sweep_pairs(p: &patch_sweep::Params, ctx: &mut dyn ToolCtx, pairs: usize) -> Result<Value, ToolError> {
    let m = p.model.clone();
    if texts(p.source.get()) != Some(pairs) {
        return Err(ToolError::arg("source", format!("{pairs} targets need {pairs} sources, as a list of texts")));
    }
    if !m.pads_left() {
        return Err(ToolError::arg(
            "target",
            "this model cannot take a padded batch (it takes no attention_mask and position_ids)",
        )
        .help("sweep one pair at a time: map(pairs, p => patch_sweep(model, p.target, p.source, ...))"));
    }
    if ctx.share().is_some() {
        return Err(ToolError::arg("target", "a sweep over several prompt pairs is not sharded yet")
            .help("shard over the pairs instead: shard_map(pairs, p => patch_sweep(model, p.target, p.source, ...))"));
    }
    let target = feeds_value(&m, &p.target, "target")?;
    let source = feeds_value(&m, p.source.get(), "source")?;
    let mask_of = |f: &[(String, ArrayD<f32>)]| f.iter().find(|(k, _)| k == "attention_mask").map(|(_, v)| v.clone());
    let ids = |f: &[(String, ArrayD<f32>)]| f.iter().find(|(k, _)| k == "input_ids").map(|(_, v)| v.clone());
    let (Some(tid), Some(sid)) = (ids(&target), ids(&source)) else {
        return Err(ToolError::arg("target", "the model takes no input_ids"));
    };
    let len = tid.shape()[1];
    let ones = ArrayD::<f32>::ones(vec![pairs, len]);
    let (tmask, smask) =
        (mask_of(&target).unwrap_or_else(|| ones.clone()), mask_of(&source).unwrap_or_else(|| ones.clone()));
    if tmask != smask || sid.shape() != tid.shape() {
        let i = (0..pairs).find(|&i| tmask.index_axis(Axis(0), i) != smask.index_axis(Axis(0), i)).unwrap_or(0);
        return Err(ToolError::arg("source", format!("pair {i}'s target and source have different numbers of tokens"))
            .help("for text, choose prompts with the same number of tokens in each pair"));
    }
    let pad: Vec<usize> =
        (0..pairs).map(|i| tmask.index_axis(Axis(0), i).iter().take_while(|x| **x == 0.0).count()).collect();
    let names = crate::onnx::handle::select_names(&m, &p.tensors)?;
    let metric = p.metric.clone();
    if let Value::Func(assay_interpreter::Func::Script(c)) = &metric {
        if c.def.params.len() < 2 {
            return Err(ToolError::arg(
                "metric",
                "with several prompt pairs the metric takes the outputs and the pair's index",
            )
            .help("write (out, i) => logit_diff(out.logits, pairs[i].io, pairs[i].s)"));
        }
    }
    let parts = p.parts.max(1);
    let batch = p.batch.max(1);
    let last_position = p.last_position;
    let src_vals = m.capture(source.clone(), &names).map_err(|e| m.blame(e, "source", "tensors"))?;
    for n in &names {
        let v = &src_vals[n];
        if v.ndim() < 3 || v.shape()[..2] != [pairs, len] {
            return Err(ToolError::arg(
                "tensors",
                format!("`{n}` is {:?}; a sweep over pairs patches [pairs, T, D] tensors", v.shape()),
            ));
        }
    }
    let first_rows: Outputs =
        src_vals.iter().map(|(k, v)| (k.clone(), v.slice_axis(Axis(0), Slice::from(0..1)).to_owned())).collect();
    let components = split(&names, &first_rows, parts, "parts")?;
    // Each pair's positions, in the padded batch.
    let positions: Vec<Vec<usize>> = (0..pairs)
        .map(|i| match resolve_positions(&p.positions, len - pad[i])? {
            Some(ps) => Ok(ps.into_iter().map(|p| p + pad[i]).collect()),
            None => Ok((pad[i]..len).collect()),
        })
        .collect::<Result<_, ToolError>>()?;
    let outputs = m.output_names();
    // Rows: (pair, None) unpatched, then (pair, Some(component)).
    let n = components.len();
    let rows: Vec<(usize, Option<usize>)> =
        (0..pairs).flat_map(|i| std::iter::once((i, None)).chain((0..n).map(move |c| (i, Some(c))))).collect();
    let gather = |v: &ArrayD<f32>, idx: &[usize]| -> ArrayD<f32> {
        let views: Vec<_> = idx.iter().map(|&i| v.slice_axis(Axis(0), Slice::from(i..i + 1))).collect();
        ndarray::concatenate(Axis(0), &views).unwrap_or_else(|_| v.clone())
    };
    let mut scores: Vec<Vec<f64>> = vec![vec![f64::NAN; n + 1]; pairs];
    let mut runs = 0;
    for chunk in rows.chunks(batch) {
        let idx: Vec<usize> = chunk.iter().map(|(i, _)| *i).collect();
        let feeds: Vec<(String, ArrayD<f32>)> = target.iter().map(|(k, v)| (k.clone(), gather(v, &idx))).collect();
        let mut patches = Vec::new();
        for (t, v) in &src_vals {
            let new = gather(v, &idx);
            let mut mask = ArrayD::<f32>::zeros(new.shape());
            for (r, (i, c)) in chunk.iter().enumerate() {
                let Some(c) = c.map(|c| &components[c]) else { continue };
                if &c.tensor != t {
                    continue;
                }
                let mut row = mask.index_axis_mut(Axis(0), r);
                let last = row.ndim() - 1;
                let mut cols = row.slice_axis_mut(Axis(last), Slice::from(c.cols.0..c.cols.1));
                for &p in &positions[*i] {
                    cols.index_axis_mut(Axis(0), p).fill(1.0);
                }
            }
            patches.push((t.clone(), new, mask));
        }
        let out = m
            .patch_capture(feeds, patches, &outputs, &[], last_position)
            .map_err(|e| m.blame(e, "target", "tensors"))?;
        runs += 1;
        for (r, (i, c)) in chunk.iter().enumerate() {
            let o: Outputs =
                out.iter().map(|(k, v)| (k.clone(), v.slice_axis(Axis(0), Slice::from(r..r + 1)).to_owned())).collect();
            let item = (i * (n + 1) + c.map_or(0, |c| c + 1)) as u64;
            let x = crate::methods::interventions::metric_number(
                ctx.call_item(&metric, vec![outputs_value(&o), Value::Num(*i as f64)], item)?,
                "metric",
            )?;
            scores[*i][c.map_or(0, |c| c + 1)] = x;
        }
    }
    let source_out = m.run_plain(source, &outputs).map_err(|e| m.blame(e, "source", "tensors"))?;
    let mut source_scores = Vec::with_capacity(pairs);
    for i in 0..pairs {
        let mut o: Outputs = source_out
            .iter()
            .map(|(k, v)| (k.clone(), v.slice_axis(Axis(0), Slice::from(i..i + 1)).to_owned()))
            .collect();
        if last_position {
            // As the patched rows see it: the last position only.
            o = o
                .into_iter()
                .map(|(k, v)| {
                    let t = v.shape().get(1).copied().unwrap_or(1);
                    let v = if v.ndim() >= 3 { v.slice_axis(Axis(1), Slice::from(t - 1..t)).to_owned() } else { v };
                    (k, v)
                })
                .collect();
        }
        source_scores.push(crate::methods::interventions::metric_number(
            ctx.call(&metric, vec![outputs_value(&o), Value::Num(i as f64)])?,
            "metric",
        )?);
    }
    let effects: Vec<f32> = scores.iter().flat_map(|s| s[1..].iter().map(move |x| (x - s[0]) as f32)).collect();
    let grid =
        ArrayD::from_shape_vec(vec![pairs, names.len(), parts], effects).map_err(|e| ToolError::new(e.to_string()))?;
    let mean = grid.mean_axis(Axis(0)).ok_or_else(|| ToolError::new("no pairs"))?;
    Ok(Value::record([
        ("effects", Value::tensor(grid)),
        ("mean_effects", Value::tensor(mean)),
        ("clean", Value::nums(scores.iter().map(|s| s[0]))),
        ("source", Value::nums(source_scores)),
        ("tensors", Value::list(names.iter().map(Value::str).collect())),
        ("runs", Value::Num(runs as f64)),
        ("prefix", Value::Num(0.0)),
    ]))
}

/// The sweep's result from the shards' blocks of effects, in order.
fn sweep_merge(a: &Args, ctx: &mut dyn ToolCtx, parts: Vec<Value>) -> Result<Value, ToolError> {
    let m = model_of(a, "model")?;
    merge_blocks(&m, &a.arg("tensors"), a.count("parts")?, ctx, parts)
}

/// The shards' blocks of a sweep (`tensors` and `parts` as the call gave them), in order.
fn merge_blocks(
    m: &Model,
    tensors: &Arg,
    parts_per: usize,
    ctx: &mut dyn ToolCtx,
    parts: Vec<Value>,
) -> Result<Value, ToolError> {
    let names = crate::onnx::handle::select_names(m, tensors)?;
    let parts_per = parts_per.max(1);
    let bad = |why: String| ToolError::new(format!("a shard's partial sweep: {why}"));
    let mut effects: Vec<f32> = Vec::with_capacity(names.len() * parts_per);
    let (mut clean, mut source, mut prefix, mut runs) = (None, None, None, 0.0);
    for p in &parts {
        let Value::Record(f) = p else { return Err(bad("not a record".into())) };
        let num = |k: &str| match f.get(k) {
            Some(Value::Num(x)) => Ok(*x),
            _ => Err(bad(format!("no number `{k}`"))),
        };
        if ctx.share().is_some() {
            // A shard goes on with its block; the other components are NaN.
            let first = num("first")?;
            if !(0.0..=(names.len() * parts_per) as f64).contains(&first) {
                return Err(bad(format!("a block starts at {first}")));
            }
            effects.resize(first as usize, f32::NAN);
        }
        if num("first")? != effects.len() as f64 {
            return Err(bad(format!("a block starts at {}, expected {}", num("first")?, effects.len())));
        }
        let Some(Value::List(l)) = f.get("effects") else { return Err(bad("no `effects`".into())) };
        for e in l.iter() {
            match e {
                Value::Num(x) => effects.push(*x as f32),
                _ => return Err(bad("an effect is not a number".into())),
            }
        }
        runs += num("runs")?;
        for (slot, k) in [(&mut clean, "clean"), (&mut source, "source"), (&mut prefix, "prefix")] {
            let x = num(k)?;
            if slot.is_some_and(|y: f64| y.to_bits() != x.to_bits()) {
                return Err(bad(format!("shards disagree on `{k}`")));
            }
            *slot = Some(x);
        }
    }
    if ctx.share().is_some() {
        effects.resize(names.len() * parts_per, f32::NAN);
    }
    let grid = ArrayD::from_shape_vec(vec![names.len(), parts_per], effects)
        .map_err(|_| bad(format!("the blocks do not add up to {} components", names.len() * parts_per)))?;
    Ok(Value::record([
        ("effects", Value::tensor(grid)),
        ("clean", Value::Num(clean.unwrap_or(f64::NAN))),
        ("source", Value::Num(source.unwrap_or(f64::NAN))),
        ("tensors", Value::list(names.iter().map(Value::str).collect())),
        ("runs", Value::Num(runs)),
        ("prefix", Value::Num(prefix.unwrap_or(0.0))),
    ]))
}

#[cfg(test)]
#[path = "sweep_test.rs"]
mod tests;
