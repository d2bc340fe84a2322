//! Desiderata-based component masking (DCM): a sparse mask over components
//! learnt so that patching them moves the metric: by Adam on the gradient
//! through the patched graph where the metric names an element to
//! differentiate, else by SPSA.

use super::*;
use crate::core::kinds::{Function, TensorNames};
use crate::methods::atp::effect;
use crate::methods::sweep::{mixed_inputs, Component};
use crate::onnx::grad::grad_name;
use crate::onnx::graph::mask_input;
use crate::onnx::handle::ModelHandle;

tool! {
    /// Desiderata-based component masking (DCM): learns one weight in [0, 1] per component of `tensors`
    /// (split into `parts`) so that patching the weighted components from each pair's `source` run into
    /// its `target` run maximises the pairs' mean desideratum (e.g. the logit difference toward the
    /// source's answer), minus `sparsity` times the sum of weights. Where `metric(outputs, pair)`
    /// returns an element of an output, `{tensor, index, minus}` as for grad (e.g. `(out, p) =>
    /// {tensor: "logits", index: [-1, p.a], minus: [-1, p.b]}`), the weights are trained as the paper
    /// trains them: Adam on the true gradient through the patched graph (docs/gradients.md), one
    /// forward and backward run per pair and step, `rate` 0.1 and `sparsity` 0.01 unless given. Where
    /// it returns a number, or the graph has an operator without a gradient rule (`method` says which
    /// ran, and `fallback` why), the gradient is estimated by SPSA: each step draws `samples` random
    /// ±1 directions, evaluates every pair at mask ± `perturb`·direction (2·samples rows in one batched
    /// run per pair) and moves by `rate` (0.05) times the estimate less `sparsity` (0.5); noisy, and
    /// it can settle where components are redundant. Weights are rounded at 0.5; then each kept
    /// component, weakest first, is dropped if the training objective (mean metric minus `sparsity`
    /// times the number kept) does not fall without it (one more run per pair and kept component).
    /// The final mask is evaluated on `heldout` pairs. Returns {weights: [tensors, parts], selected:
    /// [[tensor, part]...], pruned, train, heldout, history (the objective per step), method, runs}.
    ///
    /// ```assay
    /// let m = model("planted")
    /// let pairs = [{target: tensor([[0, 1, 2]]), source: tensor([[3, 1, 2]]), a: 3, b: 0}, {target: tensor([[1, 2, 0]]), source: tensor([[2, 2, 0]]), a: 2, b: 1}]
    /// let r = dcm(m, pairs, "/layers.*/heads_output_0", (out, p) => logit_diff(out.logits, p.a, p.b), parts: 2, heldout: [{target: tensor([[2, 3, 1]]), source: tensor([[0, 3, 1]]), a: 0, b: 2}])
    /// assert r.selected == [[0, 0]]
    /// assert r.heldout.patched > 0
    /// # The same desideratum as an element of the logits: trained by Adam on its gradient.
    /// let g = dcm(m, pairs, "/layers.*/heads_output_0", (out, p) => {tensor: "logits", index: [-1, p.a], minus: [-1, p.b]}, parts: 2, steps: 30)
    /// assert g.method == "adam" and g.selected == [[0, 0]]
    /// ```
    dcm in Interventions -> Type::record();
    {
        /// a model
        model: ModelHandle,
        /// training pairs {target, source, ...} (inputs; other fields go to the metric)
        pairs: Arg [Type::list(Type::record())],
        /// the components' tensors (names or globs)
        tensors: TensorNames,
        /// (outputs, pair) => the number to maximise, or {tensor, index, minus} naming it (trained on gradients)
        metric: Function,
        /// slices per tensor
        parts: usize = 1,
        /// pairs to evaluate the rounded mask on
        heldout: Arg [Type::list(Type::record())] = None,
        /// training steps
        steps: usize = 60,
        /// perturbation directions per step
        samples: usize = 4,
        /// step size (Adam's learning rate: 0.1; SPSA's: 0.05)
        rate: Option<f64> = None,
        /// SPSA's perturbation size
        perturb: f64 = 0.2,
        /// penalty per unit of mask weight (0.01 with gradients, 0.5 with SPSA)
        sparsity: Option<f64> = None,
    }
    dcm
}

fn dcm(p: dcm::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let m = p.model.clone();
    let names = select_names(&m, &p.tensors)?;
    let parts = p.parts.max(1);
    let steps = *p.steps;
    let eps = *p.perturb;
    if !(eps > 0.0 && eps <= 0.5) {
        return Err(p.perturb.error("`perturb` must be above 0 and at most 0.5"));
    }
    let mut train = load_pairs(&m, &names, &p.pairs, p.tensors.name())?;
    if train.is_empty() {
        return Err(p.pairs.error("give at least one pair"));
    }
    let mut heldout =
        if p.heldout.is_none() { Vec::new() } else { load_pairs(&m, &names, &p.heldout, p.tensors.name())? };
    let want = m.output_names();
    let by_gradient = elements(ctx, &p, &m, &want, &mut train, None)?;
    elements(ctx, &p, &m, &want, &mut heldout, Some(by_gradient))?;
    let capture: Vec<String> = train
        .iter()
        .filter_map(|pair| pair.element.as_ref().map(|e| e.tensor.clone()))
        .filter(|t| !want.contains(t))
        .take(1)
        .collect();
    let comps = split(&names, &train[0].source, parts, p.parts.name())?;
    let mut task = Masking { p: &p, m: &m, comps: &comps, want, capture, rate: 0.1, sparsity: 0.01 };
    let (mut method, mut fallback) = ("spsa", None);
    let mut trained = None;
    if by_gradient {
        task.rate = p.rate.unwrap_or(0.1);
        task.sparsity = p.sparsity.unwrap_or(0.01);
        match task.train_adam(&train) {
            Ok(r) => {
                method = "adam";
                trained = Some(r);
            }
            Err(Fallback::Refused(why)) => fallback = Some(why),
            Err(Fallback::Failed(e)) => return Err(e),
        }
    }
    let (w, history) = match trained {
        Some(r) => r,
        None => {
            task.rate = p.rate.unwrap_or(0.05);
            task.sparsity = p.sparsity.unwrap_or(0.5);
            task.train(ctx, &train)?
        }
    };
    let (rounded, pruned, pruning_runs) = task.prune(ctx, &train, &w)?;
    let c = comps.len();
    let pair_of = |i: usize| Value::nums([(i / parts) as f64, (i % parts) as f64]);
    let selected: Vec<Value> = (0..c).filter(|i| rounded[*i] == 1.0).map(pair_of).collect();
    let train_report = task.report(ctx, &train, &rounded)?;
    let heldout_report = task.report(ctx, &heldout, &rounded)?;
    let grid = ArrayD::from_shape_vec(vec![names.len(), parts], w.iter().map(|x| *x as f32).collect())
        .map_err(|e| ToolError::new(e.to_string()))?;
    Ok(Value::record([
        ("weights", Value::tensor(grid)),
        ("selected", Value::list(selected)),
        ("pruned", Value::list(pruned.into_iter().map(pair_of).collect())),
        ("train", train_report),
        ("heldout", heldout_report),
        ("history", Value::nums(history)),
        ("method", Value::str(method)),
        ("fallback", fallback.map(Value::str).unwrap_or(Value::None)),
        ("runs", Value::Num((steps * train.len() + pruning_runs) as f64)),
    ]))
}

/// Whether the metric names an element to differentiate: calls it on each
/// pair's unpatched outputs and keeps the `{tensor, index, minus}` it
/// returns, or stops at a first number (SPSA's metric). `expect`: what
/// the training pairs decided (the held-out ones must agree), or `None`
/// to let the first pair decide.
fn elements(
    ctx: &mut dyn ToolCtx,
    p: &dcm::Params,
    m: &ModelHandle,
    want: &[String],
    set: &mut [Pair],
    expect: Option<bool>,
) -> Result<bool, ToolError> {
    if expect == Some(false) {
        return Ok(false);
    }
    for (k, pair) in set.iter_mut().enumerate() {
        let outs = m.run_plain(pair.target.clone(), want).map_err(|e| m.blame(e, p.pairs.name(), p.tensors.name()))?;
        match ctx.call(&p.metric, vec![outputs_value(&outs), pair.record.clone()])? {
            Value::Record(fields) => {
                pair.element = Some(crate::methods::grad::Metric::from_fields(m, &fields, p.metric.name())?);
            }
            Value::Num(_) if k == 0 && expect.is_none() => return Ok(false),
            other if k == 0 && expect.is_none() => {
                return Err(p.metric.error(format!(
                    "the metric must give a number to maximise or {{tensor, index, minus}}, not a {}",
                    other.type_name()
                )));
            }
            other => {
                return Err(p.metric.error(format!(
                    "the metric gave {{tensor, index, minus}} for the first training pair but a {} here",
                    other.type_name()
                )));
            }
        }
    }
    Ok(true)
}

/// Why Adam could not train: an operator without a gradient rule (SPSA
/// takes over) or an error for the script.
enum Fallback {
    Refused(String),
    Failed(ToolError),
}

/// A pair as DCM uses it: the record (for the metric), the target's
/// inputs, and the source's captured component tensors.
struct Pair {
    record: Value,
    target: Feeds,
    source: Outputs,
    /// The element to differentiate, where the metric names one.
    element: Option<crate::methods::grad::Metric>,
}

/// The pairs of `x`, each with its source run captured at `names`.
fn load_pairs(m: &ModelHandle, names: &[String], x: &Arg, tensors: Name) -> Result<Vec<Pair>, ToolError> {
    let mut out = Vec::new();
    for (k, pair) in x.items()?.into_iter().enumerate() {
        let Value::Record(r) = &pair else {
            return Err(x.error(format!("pair {k} is a {}, not a record {{target, source}}", pair.type_name())));
        };
        let (Some(t), Some(s)) = (r.get("target"), r.get("source")) else {
            return Err(x.error(format!("pair {k} needs fields `target` and `source`")));
        };
        let target = one(m, t, x.name())?;
        let source_in = one(m, s, x.name())?;
        for ((kt, tt), (_, ss)) in target.iter().zip(&source_in) {
            if tt.shape() != ss.shape() {
                return Err(x
                    .error(format!("pair {k}: `{kt}` differs in shape between target and source"))
                    .help("for text, choose pairs with the same number of tokens"));
            }
        }
        let source = m.capture(source_in, names).map_err(|e| m.blame(e, x.name(), tensors))?;
        out.push(Pair { record: pair.clone(), target, source, element: None });
    }
    Ok(out)
}

/// One DCM call's model, components and settings.
struct Masking<'a> {
    p: &'a dcm::Params,
    m: &'a ModelHandle,
    comps: &'a [Component],
    want: Vec<String>,
    /// The metric's tensor where it is not an output.
    capture: Vec<String>,
    rate: f64,
    sparsity: f64,
}

impl Masking<'_> {
    /// The mean metric of each mask (a weight per component) over `set`.
    fn evaluate(&self, ctx: &mut dyn ToolCtx, set: &[Pair], masks: &[Vec<f64>]) -> Result<Vec<f64>, ToolError> {
        let p = self.p;
        let rows: Vec<Vec<(usize, f32)>> =
            masks.iter().map(|mk| mk.iter().enumerate().map(|(i, w)| (i, *w as f32)).collect()).collect();
        let mut total = vec![0.0; masks.len()];
        let want = Want { outputs: &self.want, capture: &self.capture, last_position: false };
        for pair in set {
            let outs = run_mixed(self.m, &pair.target, &pair.source, self.comps, &rows, None, want)
                .map_err(|e| self.m.blame(e, p.pairs.name(), p.tensors.name()))?;
            for (r, o) in outs.iter().enumerate() {
                total[r] += match &pair.element {
                    Some(e) => {
                        let t = o.get(&e.tensor).ok_or_else(|| ToolError::new("the run gave no metric tensor"))?;
                        e.values(t, p.metric.name())?[0]
                    }
                    None => call_metric(ctx, &p.metric, vec![outputs_value(o), pair.record.clone()], p.metric.name())?,
                };
            }
        }
        Ok(total.into_iter().map(|t| t / set.len() as f64).collect())
    }

    /// SPSA from 0.5 everywhere: each step draws `samples` ±1 directions,
    /// evaluates mask ± `perturb`·direction and moves by `rate` times the
    /// estimate less the penalty. The weights, and the objective per step.
    fn train(&self, ctx: &mut dyn ToolCtx, train: &[Pair]) -> Result<(Vec<f64>, Vec<f64>), ToolError> {
        let p = self.p;
        let c = self.comps.len();
        let samples = p.samples.max(1);
        let (rate, eps, lambda) = (self.rate, *p.perturb, self.sparsity);
        let mut w = vec![0.5f64; c];
        let mut history = Vec::new();
        for _ in 0..*p.steps {
            let dirs: Vec<Vec<f64>> = (0..samples)
                .map(|_| (0..c).map(|_| if ctx.rng().random_bool(0.5) { 1.0 } else { -1.0 }).collect())
                .collect();
            let mut masks = Vec::new();
            for d in &dirs {
                masks.push(w.iter().zip(d).map(|(x, s)| (x + eps * s).clamp(0.0, 1.0)).collect::<Vec<_>>());
                masks.push(w.iter().zip(d).map(|(x, s)| (x - eps * s).clamp(0.0, 1.0)).collect::<Vec<_>>());
            }
            let vals = self.evaluate(ctx, train, &masks)?;
            let mut grad = vec![0.0; c];
            for (k, d) in dirs.iter().enumerate() {
                let diff = (vals[2 * k] - vals[2 * k + 1]) / (2.0 * eps);
                for (g, s) in grad.iter_mut().zip(d) {
                    *g += diff * s / samples as f64;
                }
            }
            for (x, g) in w.iter_mut().zip(&grad) {
                *x = (*x + rate * (*g - lambda)).clamp(0.0, 1.0);
            }
            history.push(vals.iter().sum::<f64>() / vals.len() as f64 - lambda * w.iter().sum::<f64>());
        }
        Ok((w, history))
    }

    /// Adam (β 0.9, 0.999) from 0.5 everywhere on the true gradient of the
    /// objective, mean element over the pairs less `sparsity` times the sum
    /// of weights, through the patched graph; weights clipped to [0, 1]
    /// after each step. The weights, and the objective per step.
    fn train_adam(&self, train: &[Pair]) -> Result<(Vec<f64>, Vec<f64>), Fallback> {
        let p = self.p;
        let c = self.comps.len();
        let (rate, lambda) = (self.rate, self.sparsity);
        let (b1, b2) = (0.9f64, 0.999f64);
        let mut w = vec![0.5f64; c];
        let (mut m1, mut m2) = (vec![0.0f64; c], vec![0.0f64; c]);
        let mut history = Vec::new();
        for step in 1..=*p.steps {
            let mut grad = vec![0.0f64; c];
            let mut value = 0.0;
            for pair in train {
                let Some(e) = &pair.element else {
                    return Err(Fallback::Failed(ToolError::new("a pair has no element to differentiate")));
                };
                let row = vec![w.iter().enumerate().map(|(i, x)| (i, *x as f32)).collect::<Vec<_>>()];
                let (feeds, patches) = mixed_inputs(self.m, &pair.target, &pair.source, self.comps, &row);
                let seed = e.seed(1).map_err(Fallback::Failed)?;
                let out = self.m.grad_patched(feeds, patches, &e.tensor, seed).map_err(|err| {
                    if err.to_string().contains("no gradient through") {
                        Fallback::Refused(err.to_string())
                    } else {
                        Fallback::Failed(self.m.blame(err, p.pairs.name(), p.tensors.name()))
                    }
                })?;
                let t = out.get(&e.tensor).ok_or_else(|| Fallback::Failed(ToolError::new("no metric tensor")))?;
                value += e.values(t, p.metric.name()).map_err(Fallback::Failed)?[0];
                for (ci, comp) in self.comps.iter().enumerate() {
                    let g = out.get(&grad_name(&mask_input(&comp.tensor)));
                    let g = g.ok_or_else(|| Fallback::Failed(ToolError::new("no gradient came back")))?;
                    grad[ci] += effect(g, comp, None) as f64;
                }
            }
            let n = train.len() as f64;
            history.push(value / n - lambda * w.iter().sum::<f64>());
            for i in 0..c {
                // Descend on the loss: minus the objective's gradient.
                let g = -(grad[i] / n - lambda);
                m1[i] = b1 * m1[i] + (1.0 - b1) * g;
                m2[i] = b2 * m2[i] + (1.0 - b2) * g * g;
                let (mh, vh) = (m1[i] / (1.0 - b1.powi(step as i32)), m2[i] / (1.0 - b2.powi(step as i32)));
                w[i] = (w[i] - rate * mh / (vh.sqrt() + 1e-8)).clamp(0.0, 1.0);
            }
        }
        Ok((w, history))
    }

    /// The weights rounded at 0.5, then each kept component, weakest
    /// first, dropped if the training objective does not fall without it:
    /// SPSA leaves a component that is redundant given the others near 0.5
    /// (its true gradient is only the penalty, its estimate noisy). One run
    /// of one row per pair and kept component. The mask, the components
    /// dropped, and the runs it took.
    fn prune(
        &self,
        ctx: &mut dyn ToolCtx,
        train: &[Pair],
        w: &[f64],
    ) -> Result<(Vec<f64>, Vec<usize>, usize), ToolError> {
        let lambda = self.sparsity;
        let mut rounded: Vec<f64> = w.iter().map(|x| if *x >= 0.5 { 1.0 } else { 0.0 }).collect();
        let objective = |v: f64, mask: &[f64]| v - lambda * mask.iter().sum::<f64>();
        let mut kept: Vec<usize> = (0..w.len()).filter(|i| rounded[*i] == 1.0).collect();
        kept.sort_by(|x, y| w[*x].total_cmp(&w[*y]).then(x.cmp(y)));
        let mut pruned = Vec::new();
        let runs = if kept.is_empty() { 0 } else { (kept.len() + 1) * train.len() };
        if !kept.is_empty() {
            let mut current = objective(self.evaluate(ctx, train, std::slice::from_ref(&rounded))?[0], &rounded);
            for i in kept {
                let mut trial = rounded.clone();
                trial[i] = 0.0;
                let without = objective(self.evaluate(ctx, train, std::slice::from_ref(&trial))?[0], &trial);
                if without >= current {
                    rounded = trial;
                    current = without;
                    pruned.push(i);
                }
            }
        }
        pruned.sort();
        Ok((rounded, pruned, runs))
    }

    /// The mean metric over `set` with nothing, the mask, and everything patched.
    fn report(&self, ctx: &mut dyn ToolCtx, set: &[Pair], mask: &[f64]) -> Result<Value, ToolError> {
        if set.is_empty() {
            return Ok(Value::None);
        }
        let c = self.comps.len();
        let v = self.evaluate(ctx, set, &[vec![0.0; c], mask.to_vec(), vec![1.0; c]])?;
        Ok(Value::record([("none", Value::Num(v[0])), ("patched", Value::Num(v[1])), ("all", Value::Num(v[2]))]))
    }
}
