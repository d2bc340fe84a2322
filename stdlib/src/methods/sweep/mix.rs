//! The mechanics of a sweep: components of tensors, runs that mix target
//! and source values row by row, and the shared prefix a KV cache lets a
//! sweep run once.

use crate::onnx::error::ModelError;
use crate::onnx::model::{Fact, Model};
use assay_interpreter::{Name, ToolError, Value};
use ndarray::{ArrayD, Axis, Slice};
use std::collections::BTreeMap;

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
pub fn split(names: &[String], values: &Outputs, parts: usize, arg: Name) -> Result<Vec<Component>, ToolError> {
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

pub(crate) type Feeds = Vec<(String, ArrayD<f32>)>;

/// A patched tensor, its new value and its mask.
pub(crate) type Patch = (String, ArrayD<f32>, ArrayD<f32>);

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
pub(super) enum Feed {
    Repeat,
    Broadcast,
}

/// A patched run's fixed parts: the model, the target (one example), the
/// patch values ([1, ...] each), the components and positions, and what
/// to return. Rows vary from batch to batch.
#[derive(Clone, Copy)]
pub(super) struct Mix<'a> {
    pub(super) m: &'a Model,
    pub(super) target: &'a [(String, ArrayD<f32>)],
    pub(super) values: &'a Outputs,
    pub(super) components: &'a [Component],
    pub(super) positions: Option<&'a [usize]>,
    pub(super) want: Want<'a>,
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
    pub(super) fn run(&self, rows: &[Vec<(usize, f32)>], feed: Feed) -> Result<Vec<Outputs>, ModelError> {
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
    pub(super) fn broadcast_ok(&self) -> bool {
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
pub(super) fn agree(a: &[Outputs], b: &[Outputs]) -> bool {
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

/// The feeds and patches of one batch in which each row patches its
/// weighted components (the target repeated per row), for runs other
/// than [`run_mixed`]'s (a backward pass through the patched graph).
pub(crate) fn mixed_inputs(
    m: &Model,
    target: &[(String, ArrayD<f32>)],
    values: &Outputs,
    components: &[Component],
    rows: &[Vec<(usize, f32)>],
) -> (Feeds, Vec<Patch>) {
    let mix = Mix { m, target, values, components, positions: None, want: Want::outputs(&[]) };
    mix.inputs(rows, Feed::Repeat)
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

fn repeat(feeds: &[(String, ArrayD<f32>)], n: usize) -> Vec<(String, ArrayD<f32>)> {
    feeds.iter().map(|(k, v)| (k.clone(), repeat_rows(v, n))).collect()
}

/// One patched run of `n` rows of `inputs` (one example); where the graph
/// runs one row at a time only (see [`single_rows_only`]),
/// row by row, each patch value and mask with `n` rows cut to its row, and
/// the outputs joined in order.
pub(crate) fn run_rows(
    m: &Model,
    inputs: &[(String, ArrayD<f32>)],
    n: usize,
    patches: Vec<Patch>,
    want: &[String],
    capture: &[String],
) -> Result<std::collections::BTreeMap<String, ArrayD<f32>>, ModelError> {
    if n == 1 {
        return m.patch_capture(inputs.to_vec(), patches, want, capture, false);
    }
    let first = if single_rows_only(m) {
        None
    } else {
        match m.patch_capture(repeat(inputs, n), patches.clone(), want, capture, false) {
            Ok(out) => return Ok(out),
            Err(e) => Some(e),
        }
    };
    let row = |a: &ArrayD<f32>, r: usize| {
        if a.shape().first() == Some(&n) {
            a.slice_axis(Axis(0), ndarray::Slice::from(r..r + 1)).to_owned()
        } else {
            a.clone()
        }
    };
    let mut parts: std::collections::BTreeMap<String, Vec<ArrayD<f32>>> = std::collections::BTreeMap::new();
    for r in 0..n {
        let p: Vec<Patch> = patches.iter().map(|(t, v, k)| (t.clone(), row(v, r), row(k, r))).collect();
        let out = m.patch_capture(inputs.to_vec(), p, want, capture, false).map_err(|e| first.clone().unwrap_or(e))?;
        for (k, v) in out {
            parts.entry(k).or_default().push(v);
        }
    }
    if first.is_some() {
        m.learn(crate::onnx::model::Fact::OneRowAtATime, true);
    }
    parts
        .into_iter()
        .map(|(k, vs)| {
            let views: Vec<_> = vs.iter().map(|v| v.view()).collect();
            ndarray::concatenate(Axis(0), &views).map(|a| (k, a)).map_err(|e| ModelError::Runtime(e.to_string()))
        })
        .collect()
}
