//! `attribution_patch`: attribution patching (AtP; Nanda 2023, Kramár et
//! al. 2024), the first-order estimate of every component's patching
//! effect. One forward and backward pass on the target (the clean run)
//! gives each patched tensor's value `a` and the metric's gradient `g`
//! there; one forward pass on the source gives `a'`. Patching a component
//! (a slice of a tensor's last axis at chosen positions) changes the
//! metric by about Σ (a' − a)·g over the component's elements: a dot
//! product per component instead of a run per component.

use std::collections::BTreeMap;

use assay_interpreter::{Arg, Name, ToolCtx, ToolError, Type, Value};
use ndarray::{ArrayD, Axis};

use crate::core::declare::{tool, ToolResult};
use crate::core::kinds::{Inputs, TensorNames};
use crate::methods::atp_star;
use crate::methods::grad::{grad_error, Metric};
use crate::methods::sweep::{one_example_each, resolve_positions, split, Component};
use crate::onnx::grad::grad_name;
use crate::onnx::handle::{feeds, feeds_value, select_names, texts_of, ModelHandle};

tool! {
    /// Attribution patching (AtP): the first-order estimate of `patch_sweep`'s effects from one
    /// forward and backward pass on `target` and one forward pass on `source`, instead of a run per
    /// component. Components are as in patch_sweep: each tensor matching `tensors`, split into `parts`
    /// slices of its last axis (attention heads), at `positions` (all if omitted). The effect of
    /// patching a component from source into target is estimated as Σ (source − target)·∂metric/∂tensor
    /// over its elements, the gradient taken on the target run. The metric is differentiable, as for
    /// grad: `{tensor, index, minus}`, e.g. a logit difference. Returns patch_sweep's table:
    /// {effects: [tensors, parts], clean, source, tensors, runs, prefix}; target and source run as two
    /// rows of one run where the graph takes them (`runs` 1). Given lists of texts as `target` and
    /// `source` (pair i: each of one length) and a metric per pair, returns effects [pairs, tensors,
    /// parts], mean_effects [tensors, parts], and clean and source per pair. Exact where the model is
    /// linear in the component; it misjudges components behind a saturated softmax or a large
    /// nonlinear change (docs/gradients.md: check the top components with patch_sweep). With
    /// `qk_fix` (AtP*, for `tensors` that are attention(model).q or .k), each query or key component's
    /// attention pattern is recomputed exactly (one more batched run) and only the rest linearised.
    /// With `by_position`, each position (of `positions`, or all) is a component of its own: effects
    /// [tensors, parts, positions] (residual stream positions: a residual tensor, parts 1).
    ///
    /// ```assay
    /// let m = onnx("fixtures/tiny_dynamic.onnx")
    /// # z = 2·relu(y), y = x + [1, -1, 0.5]: linear where y stays positive
    /// let a = attribution_patch(m, tensor([[1, 2, 3]]), tensor([[2, 2, 5]]), "y", {tensor: "z", index: [0], minus: [2]}, parts: 3)
    /// let s = patch_sweep(m, tensor([[1, 2, 3]]), tensor([[2, 2, 5]]), "y", out => out.z[0][0] - out.z[0][2], parts: 3)
    /// assert a.effects == s.effects
    /// assert a.effects == tensor([[2, 0, -4]]) and a.clean == 4 - 7 and a.source == 6 - 11
    /// ```
    attribution_patch in Interventions -> Type::record();
    {
        /// a model
        model: ModelHandle,
        /// the run to patch into (the clean run): text, or inputs as for run()
        target: Inputs,
        /// the run to take activations from (the corrupt run; same shapes)
        source: Inputs,
        /// tensor names or globs
        tensors: TensorNames,
        /// {tensor, index, minus}: the element (or difference of two) to differentiate; or one per pair
        metric: Value [Type::OneOf(vec![Type::record(), Type::list(Type::record())])],
        /// slices per tensor along its last axis
        parts: usize = 1,
        /// token positions to patch (negative from the end)
        positions: Arg [Type::list(Type::Num)] = None,
        /// AtP*: queries' and keys' attention patterns recomputed exactly
        qk_fix: bool = false,
        /// each position its own component: effects [tensors, parts, positions]
        by_position: bool = false,
    }
    attribution_patch
}

fn attribution_patch(p: attribution_patch::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let m = p.model.clone();
    let names = select_names(&m, &p.tensors)?;
    let pairs = texts_of(&p.target).filter(|t| t.len() > 1 && matches!(&**p.target, Value::List(_)));
    let Some(targets) = pairs else {
        let metric = metric_of(&m, &p, 0, 1)?;
        let one = one_pair(&m, feeds(&m, &p.target)?, feeds(&m, &p.source)?, &names, &metric, &p)?;
        return Ok(Value::record([
            ("effects", Value::tensor(one.grid(&names, &p)?)),
            ("clean", Value::Num(one.clean)),
            ("source", Value::Num(one.source)),
            ("tensors", Value::list(names.iter().map(Value::str).collect())),
            ("runs", Value::Num(one.runs as f64)),
            ("prefix", Value::Num(0.0)),
        ]));
    };
    // Lists of texts: pair i is targets[i] and sources[i] (each pair of one
    // length, pairs of any lengths), with metric i.
    let sources = texts_of(&p.source)
        .filter(|s| s.len() == targets.len())
        .ok_or_else(|| p.source.error(format!("give as many source texts as target texts ({})", targets.len())))?;
    let (mut grids, mut cleans, mut dirty, mut runs) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for (i, (t, s)) in targets.iter().zip(&sources).enumerate() {
        let metric = metric_of(&m, &p, i, targets.len())?;
        let tf = feeds_value(&m, &Value::str(t), p.target.name())?;
        let sf = feeds_value(&m, &Value::str(s), p.source.name())?;
        let one = one_pair(&m, tf, sf, &names, &metric, &p)
            .map_err(|e| ToolError { message: format!("pair {i}: {}", e.message), ..e })?;
        grids.push(one.grid(&names, &p)?);
        cleans.push(one.clean);
        dirty.push(one.source);
        runs += one.runs;
    }
    let views: Vec<_> = grids.iter().map(|g| g.view().insert_axis(Axis(0))).collect();
    let all = ndarray::concatenate(Axis(0), &views).map_err(|e| ToolError::new(e.to_string()))?;
    let mean = all.mean_axis(Axis(0)).ok_or_else(|| ToolError::new("no pairs"))?;
    Ok(Value::record([
        ("effects", Value::tensor(all)),
        ("mean_effects", Value::tensor(mean)),
        ("clean", Value::nums(cleans)),
        ("source", Value::nums(dirty)),
        ("tensors", Value::list(names.iter().map(Value::str).collect())),
        ("runs", Value::Num(runs as f64)),
        ("prefix", Value::Num(0.0)),
    ]))
}

/// The metric of pair `i` of `n`: the one record, or item i of a list.
fn metric_of(m: &ModelHandle, p: &attribution_patch::Params, i: usize, n: usize) -> Result<Metric, ToolError> {
    let fields = match &*p.metric {
        Value::Record(f) => f.clone(),
        Value::List(items) if items.len() == n => match &items[i] {
            Value::Record(f) => f.clone(),
            other => return Err(p.metric.error(format!("metric {i} is a {}, not a record", other.type_name()))),
        },
        Value::List(items) => {
            return Err(p.metric.error(format!("give one metric, or one per pair ({n}), not {}", items.len())))
        }
        other => {
            return Err(p.metric.error(format!("expected {{tensor, index, minus}}, found a {}", other.type_name())))
        }
    };
    Metric::from_fields(m, &fields, p.metric.name())
}

/// One pair's estimate: effects per component, each run's metric, runs made.
struct Estimate {
    effects: Vec<f32>,
    clean: f64,
    source: f64,
    runs: usize,
    /// With by_position, how many positions each component has.
    positions: Option<usize>,
}

impl Estimate {
    fn grid(&self, names: &[String], p: &attribution_patch::Params) -> Result<ArrayD<f32>, ToolError> {
        let mut shape = vec![names.len(), (*p.parts).max(1)];
        shape.extend(self.positions);
        ArrayD::from_shape_vec(shape, self.effects.clone()).map_err(|e| ToolError::new(e.to_string()))
    }
}

fn one_pair(
    m: &ModelHandle,
    target: Vec<(String, ArrayD<f32>)>,
    source: Vec<(String, ArrayD<f32>)>,
    names: &[String],
    metric: &Metric,
    p: &attribution_patch::Params,
) -> Result<Estimate, ToolError> {
    one_example_each(&target, &source, p.target.name(), p.source.name())?;
    // With qk_fix, the blocks' probabilities are differentiated too.
    let sites = if *p.qk_fix { atp_star::sites(m, names, p.tensors.name())? } else { BTreeMap::new() };
    let mut wrt = names.to_vec();
    for s in sites.values() {
        if !wrt.contains(&s.probs) {
            wrt.push(s.probs.clone());
        }
    }
    // Target and source as two rows of one forward and backward run (the
    // metric seeded in the target's row only), so one session serves both;
    // two runs where the graph takes one row at a time.
    let (runs, mut runs_made) = match one_batch(m, &target, &source, &wrt, metric, p.metric.name()) {
        Ok(r) => (r, 1),
        Err(_) => (two_runs(m, &target, &source, &wrt, metric, p)?, 2),
    };
    let t_len = runs.tensors.values().map(|(a, _, _)| a).filter(|v| v.ndim() >= 3).map(|v| v.shape()[1]).next();
    let positions = resolve_positions(&p.positions, t_len.unwrap_or(1))?;
    if positions.is_some() && t_len.is_none() {
        return Err(p.positions.error("positions need tensors of shape [1, T, D]"));
    }
    // The positions patched together: all chosen at once, or each alone.
    let sets: Vec<Option<Vec<usize>>> = if *p.by_position {
        let t = t_len.ok_or_else(|| p.by_position.error("by_position needs tensors of shape [1, T, D]"))?;
        positions.clone().unwrap_or_else(|| (0..t).collect()).into_iter().map(|t| Some(vec![t])).collect()
    } else {
        vec![positions.clone()]
    };
    let mut patched = Vec::new();
    if !sites.is_empty() {
        let values: BTreeMap<String, (ArrayD<f32>, ArrayD<f32>)> =
            sites.keys().map(|n| (n.clone(), (runs.tensors[n].0.clone(), runs.tensors[n].1.clone()))).collect();
        for set in &sets {
            runs_made += 1;
            patched.push(atp_star::patched_patterns(m, &target, &sites, &values, set.as_deref())?);
        }
    }
    let probs: BTreeMap<String, (ArrayD<f32>, ArrayD<f32>)> = sites
        .values()
        .map(|s| (s.probs.clone(), (runs.tensors[&s.probs].0.clone(), runs.tensors[&s.probs].2.clone())))
        .collect();
    // (a' - a)·g, elementwise, per tensor.
    let products: BTreeMap<String, ArrayD<f32>> =
        runs.tensors.into_iter().map(|(n, (a, a2, g))| (n, (a2 - &a) * &g)).collect();
    let components = split(names, &products, (*p.parts).max(1), p.parts.name())?;
    let mut effects = Vec::with_capacity(components.len() * sets.len());
    for c in &components {
        for (i, set) in sets.iter().enumerate() {
            effects.push(match (sites.get(&c.tensor), patched.get(i).and_then(|m| m.get(&c.tensor))) {
                (Some(site), Some(a2)) => atp_star::effect(c, site, a2, &probs)?,
                _ => effect(&products[&c.tensor], c, set.as_deref()),
            });
        }
    }
    let positions = (*p.by_position).then_some(sets.len());
    Ok(Estimate { effects, clean: runs.clean, source: runs.source, runs: runs_made, positions })
}

/// Per tensor: its value in the target run, in the source run, and the
/// metric's gradient in the target run ([1, ...] each); and each run's metric.
struct Runs {
    clean: f64,
    source: f64,
    tensors: BTreeMap<String, Triple>,
}

/// A tensor's target value, source value and gradient.
type Triple = (ArrayD<f32>, ArrayD<f32>, ArrayD<f32>);

type Feeds = [(String, ArrayD<f32>)];

/// A graph input's value is the feed itself; the others come from the runs.
fn given(feeds: &Feeds, n: &str) -> Option<ArrayD<f32>> {
    feeds.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
}

/// Row `r` of a batch, keeping the batch axis.
fn row(a: &ArrayD<f32>, r: usize) -> ArrayD<f32> {
    a.slice_axis(Axis(0), ndarray::Slice::from(r..r + 1)).to_owned()
}

/// Both runs as the two rows of one forward and backward run.
fn one_batch(
    m: &ModelHandle,
    target: &Feeds,
    source: &Feeds,
    names: &[String],
    metric: &Metric,
    arg: Name,
) -> Result<Runs, ToolError> {
    let both = target
        .iter()
        .zip(source)
        .map(|((k, t), (_, s))| {
            ndarray::concatenate(Axis(0), &[t.view(), s.view()]).map(|a| (k.clone(), a)).map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(ToolError::new)?;
    let mut out =
        m.grad(both.clone(), names, &metric.tensor, metric.seed(1)?).map_err(|e| ToolError::new(e.to_string()))?;
    let t = out.get(&metric.tensor).ok_or_else(|| ToolError::new("the run gave no metric tensor"))?;
    if t.shape().first() != Some(&2) {
        return Err(ToolError::new("the graph gave one row for two"));
    }
    let values = metric.values(t, arg)?;
    let mut tensors = BTreeMap::new();
    for n in names {
        let v = given(&both, n).or_else(|| out.remove(n));
        let g = out.remove(&grad_name(n));
        let (Some(v), Some(g)) = (v, g) else {
            return Err(ToolError::new(format!("the run gave no value or gradient for `{n}`")));
        };
        if v.shape().first() != Some(&2) {
            return Err(ToolError::new(format!("`{n}` has one row for two")));
        }
        tensors.insert(n.clone(), (row(&v, 0), row(&v, 1), row(&g, 0)));
    }
    Ok(Runs { clean: values[0], source: values[1], tensors })
}

/// The source's forward run, then the target's forward and backward run.
fn two_runs(
    m: &ModelHandle,
    target: &Feeds,
    source: &Feeds,
    names: &[String],
    metric: &Metric,
    p: &attribution_patch::Params,
) -> Result<Runs, ToolError> {
    // The source's run first: it checks the metric against its tensor
    // (target and source have the same shapes) before the backward.
    let mut captured: Vec<String> = names.iter().filter(|n| given(source, n).is_none()).cloned().collect();
    captured.push(metric.tensor.clone());
    let mut corrupt =
        m.capture(source.to_vec(), &captured).map_err(|e| m.blame(e, p.source.name(), p.tensors.name()))?;
    let source_metric = corrupt.get(&metric.tensor).ok_or_else(|| ToolError::new("the run gave no metric tensor"))?;
    let source_value = metric.values(source_metric, p.metric.name())?[0];
    let mut clean = m
        .grad(target.to_vec(), names, &metric.tensor, metric.seed(1)?)
        .map_err(|e| grad_error(m, e, p.target.name(), p.tensors.name()))?;
    let clean_metric = clean.get(&metric.tensor).ok_or_else(|| ToolError::new("the run gave no metric tensor"))?;
    let clean_value = metric.values(clean_metric, p.metric.name())?[0];
    let mut tensors = BTreeMap::new();
    for n in names {
        let a = given(target, n).or_else(|| clean.remove(n));
        let a2 = given(source, n).or_else(|| corrupt.remove(n));
        let g = clean.remove(&grad_name(n));
        let (Some(a), Some(a2), Some(g)) = (a, a2, g) else {
            return Err(ToolError::new(format!("the runs gave no value or gradient for `{n}`")));
        };
        tensors.insert(n.clone(), (a, a2, g));
    }
    Ok(Runs { clean: clean_value, source: source_value, tensors })
}

/// Σ of `product` over a component's columns (its slice of the last axis)
/// and, for [1, T, ...] tensors, its positions (axis 1).
pub(crate) fn effect(product: &ArrayD<f32>, c: &Component, positions: Option<&[usize]>) -> f32 {
    let last = Axis(product.ndim() - 1);
    let cols = product.slice_axis(last, ndarray::Slice::from(c.cols.0..c.cols.1));
    let sum = |v: ndarray::ArrayViewD<f32>| v.iter().map(|x| *x as f64).sum::<f64>();
    match positions {
        Some(ps) if cols.ndim() >= 3 => ps.iter().map(|&t| sum(cols.index_axis(Axis(1), t))).sum::<f64>() as f32,
        _ => sum(cols) as f32,
    }
}
