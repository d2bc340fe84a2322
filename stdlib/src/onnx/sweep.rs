//! Activation patching sweeps, batched: one rewritten graph patches every
//! selected tensor, and each batch row patches exactly one component — a
//! slice of a tensor's last dimension (an attention head) or a whole tensor
//! (an MLP output, the residual stream) — from a source run into the target
//! run, at chosen positions. A sweep over hundreds of heads is a handful of
//! runs, not hundreds.

use assay_interpreter::{Args, Registry, Signature, ToolCtx, ToolError, Type, Value};
use ndarray::{ArrayD, Axis, Slice};
use std::collections::BTreeMap;

use super::model::Model;
use super::tools::{feeds, model_of};
use crate::core::FnTool;

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
}

/// Splits each tensor (its value given, [1, ..., D]) into `parts` slices of
/// its last axis; component `index` is tensor index × parts + part.
pub fn split(names: &[String], values: &Outputs, parts: usize, arg: usize) -> Result<Vec<Component>, ToolError> {
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

fn repeat_rows(a: &ArrayD<f32>, n: usize) -> ArrayD<f32> {
    let views: Vec<_> = (0..n).map(|_| a.view()).collect();
    ndarray::concatenate(Axis(0), &views).unwrap_or_else(|_| a.clone())
}

pub type Outputs = BTreeMap<String, ArrayD<f32>>;

/// The one patching primitive of sweeps, path patching, circuits and DCM:
/// runs the target once per row (batched), each row mixing component
/// slices with weights `rows[r]` as `w*values + (1-w)*own`, at `positions`
/// (all if None). `values` are [1, ...] each; every tensor in it is patched
/// (weight 0 where no row names it), so one hook set serves every batch.
/// Returns each row's wanted outputs and `capture`d tensors, [1, ...] each.
#[allow(clippy::too_many_arguments, reason = "the run's inputs, each needed")]
pub fn run_mixed(
    m: &Model,
    target: &[(String, ArrayD<f32>)],
    values: &Outputs,
    components: &[Component],
    rows: &[Vec<(usize, f32)>],
    positions: Option<&[usize]>,
    want: &[String],
    capture: &[String],
) -> Result<Vec<Outputs>, String> {
    let b = rows.len();
    let feeds: Vec<(String, ArrayD<f32>)> = target.iter().map(|(k, v)| (k.clone(), repeat_rows(v, b))).collect();
    let mut patches = Vec::new();
    for (t, val) in values {
        let mut shape = val.shape().to_vec();
        shape[0] = b;
        let mut mask = ArrayD::<f32>::zeros(shape);
        for (r, row) in rows.iter().enumerate() {
            for &(ci, w) in row {
                let c = &components[ci];
                if &c.tensor != t {
                    continue;
                }
                let mut rr = mask.index_axis_mut(Axis(0), r);
                let last = rr.ndim() - 1;
                let mut cols = rr.slice_axis_mut(Axis(last), Slice::from(c.cols.0..c.cols.1));
                match positions {
                    None => cols.fill(w),
                    Some(ps) => {
                        for &p in ps {
                            cols.index_axis_mut(Axis(0), p).fill(w);
                        }
                    }
                }
            }
        }
        patches.push((t.clone(), repeat_rows(val, b), mask));
    }
    let out = m.patch_capture(feeds, patches, want, capture)?;
    Ok((0..b)
        .map(|r| {
            out.iter().map(|(k, v)| (k.clone(), v.slice_axis(Axis(0), Slice::from(r..r + 1)).to_owned())).collect()
        })
        .collect())
}

impl<'m> Sweep<'m> {
    /// Runs rows `rows` of the component list in one batch, each patching
    /// its one component; returns the model's outputs for each row, [1, ...] each.
    pub fn run_rows(&self, rows: &[usize]) -> Result<Vec<Outputs>, String> {
        let rows: Vec<Vec<(usize, f32)>> = rows.iter().map(|c| vec![(*c, 1.0)]).collect();
        let want = self.model.output_names();
        run_mixed(
            self.model,
            &self.target,
            &self.source,
            &self.components,
            &rows,
            self.positions.as_deref(),
            &want,
            &[],
        )
    }
}

/// A row's outputs as a script record, shaped as run() returns them for one
/// example (the batch axis kept, of size 1).
pub fn outputs_value(o: &Outputs) -> Value {
    Value::record(o.iter().map(|(k, v)| (k.clone(), Value::tensor(v.clone()))))
}

fn sweep_sig() -> Signature {
    Signature::new("patch_sweep", "interventions", "Activation patching over many components at once. Every tensor matching `tensors` (a name, glob or list) is split into `parts` equal slices of its last axis (e.g. 9 attention heads of [N, T, 9*64]; 1 for a whole MLP output); for each slice, its value from the `source` run replaces the `target` run's at `positions` (all if omitted), and `metric(outputs)` scores the patched outputs. Returns {effects: [tensors, parts] tensor of metric(patched) - metric(target), clean, source, tensors, runs}. Batched: each run patches `batch` components, one per row.")
        .param("model", Type::Handle("model"), "a model")
        .param("target", Type::Any, "the run to patch into: text, or inputs as for run()")
        .param("source", Type::Any, "the run to take activations from (same shapes)")
        .param("tensors", Type::OneOf(vec![Type::Str, Type::list(Type::Str)]), "tensor names or globs")
        .param("metric", Type::Func, "outputs => number, e.g. a logit difference")
        .opt("parts", Type::Num, Value::Num(1.0), "slices per tensor along its last axis")
        .opt("positions", Type::list(Type::Num), Value::None, "token positions to patch (negative from the end)")
        .opt("batch", Type::Num, Value::Num(16.0), "components per run")
        .returns(Type::record())
        .example("let m = onnx(\"fixtures/tiny_dynamic.onnx\")\nlet s = patch_sweep(m, zeros([1, 3]), tensor([[1, 2, -3]]), [\"h\", \"y\"], out => sum(out.z), parts: 3, batch: 4)\nassert s.clean == 3 and s.runs == 2\nassert s.effects == tensor([[2, 2, -1], [2, 2, -1]])")
}

fn resolve_positions(a: &Args, i: usize, t: usize) -> Result<Option<Vec<usize>>, ToolError> {
    if a.is_none(i) {
        return Ok(None);
    }
    let mut out = Vec::new();
    for p in a.numbers(i)? {
        let q = if p < 0.0 { t as f64 + p } else { p };
        if q < 0.0 || q >= t as f64 || q.fract() != 0.0 {
            return Err(ToolError::arg(i, format!("position {p} is out of range for {t} tokens")));
        }
        out.push(q as usize);
    }
    Ok(Some(out))
}

fn patch_sweep(a: &Args, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let m = model_of(a, 0)?;
    let target = feeds(&m, a, 1)?;
    let source = feeds(&m, a, 2)?;
    if target.iter().any(|(_, t)| t.shape().first() != Some(&1))
        || source.iter().any(|(_, t)| t.shape().first() != Some(&1))
    {
        return Err(ToolError::arg(1, "target and source must each be one example (first dimension 1)"));
    }
    for ((kt, t), (ks, s)) in target.iter().zip(&source) {
        if kt != ks || t.shape() != s.shape() {
            return Err(ToolError::arg(
                2,
                format!("source input `{ks}` {:?} does not match target input `{kt}` {:?}", s.shape(), t.shape()),
            )
            .help("for text, choose prompts with the same number of tokens"));
        }
    }
    let names = super::tools::select_names(&m, a, 3)?;
    let metric = a.func(4)?.clone();
    let parts = a.count(5)?.max(1);
    let batch = a.count(7)?.max(1);
    let src_vals = m.capture(source.clone(), &names).map_err(|e| ToolError::arg(2, e))?;
    let mut t_len = 0;
    for n in &names {
        let v = &src_vals[n];
        if v.ndim() < 2 {
            return Err(ToolError::arg(
                3,
                format!("`{n}` has rank {}; a sweep patches tensors of at least [1, D]", v.ndim()),
            ));
        }
        if v.ndim() >= 3 {
            t_len = v.shape()[1];
        }
    }
    let components = split(&names, &src_vals, parts, 5)?;
    let positions = resolve_positions(a, 6, t_len.max(1))?;
    if positions.is_some() && t_len == 0 {
        return Err(ToolError::arg(6, "positions need tensors of shape [1, T, D]"));
    }
    let sweep = Sweep { model: &m, target: target.clone(), source: src_vals, components, positions };
    let want = m.output_names();
    let proto = &m.proto;
    let score = |ctx: &mut dyn ToolCtx, o: &BTreeMap<String, ArrayD<f32>>| -> Result<f64, ToolError> {
        match ctx.call(&metric, vec![outputs_value(o)])? {
            Value::Num(x) => Ok(x),
            other => {
                Err(ToolError::arg(4, format!("the metric must return a number, it returned a {}", other.type_name())))
            }
        }
    };
    let clean_out = m.run("", || Ok(proto.clone()), target.clone(), &want).map_err(|e| ToolError::arg(1, e))?;
    let clean = score(ctx, &clean_out)?;
    let source_out = m.run("", || Ok(proto.clone()), source, &want).map_err(|e| ToolError::arg(2, e))?;
    let source_score = score(ctx, &source_out)?;
    let n = sweep.components.len();
    let mut effects = vec![0f32; n];
    let mut runs = 0;
    let mut start = 0;
    while start < n {
        let rows: Vec<usize> = (start..(start + batch).min(n)).collect();
        let outs = sweep.run_rows(&rows).map_err(|e| ToolError::arg(3, e))?;
        runs += 1;
        for (r, o) in rows.iter().zip(outs) {
            effects[*r] = (score(ctx, &o)? - clean) as f32;
        }
        start += batch;
    }
    let grid = ArrayD::from_shape_vec(vec![names.len(), parts], effects).map_err(|e| ToolError::new(e.to_string()))?;
    Ok(Value::record([
        ("effects", Value::tensor(grid)),
        ("clean", Value::Num(clean)),
        ("source", Value::Num(source_score)),
        ("tensors", Value::list(names.iter().map(Value::str).collect())),
        ("runs", Value::Num(runs as f64)),
    ]))
}

pub(crate) fn register(r: &mut Registry) {
    r.register(FnTool::new(sweep_sig, patch_sweep));
}
