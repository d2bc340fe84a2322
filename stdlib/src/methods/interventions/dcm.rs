//! Desiderata-based component masking (DCM): a sparse mask over components
//! learnt by SPSA so that patching them moves the metric.

use super::*;
use crate::core::kinds::{Function, TensorNames};
use crate::methods::sweep::Component;
use crate::onnx::handle::ModelHandle;

tool! {
    /// Desiderata-based component masking (DCM): learns one weight in [0, 1] per component of `tensors`
    /// (split into `parts`) so that patching the weighted components from each pair's `source` run into
    /// its `target` run maximises `metric(outputs, pair)` (the desideratum, e.g. the logit difference
    /// toward the source's answer), minus `sparsity` times the sum of weights. ONNX Runtime gives no
    /// gradients, so the gradient is estimated by SPSA (simultaneous perturbation): each step draws
    /// `samples` random ±1 directions, evaluates every pair at mask ± `perturb`·direction (2·samples
    /// rows in one batched run per pair) and moves the weights by `rate` times the estimate, clipped to
    /// [0, 1]. Cost: steps × pairs runs of 2·samples rows; the estimate is noisy and can settle in a
    /// local optimum where components are redundant. Weights are rounded at 0.5; then each kept
    /// component, weakest first, is dropped if the training objective (mean metric minus `sparsity`
    /// times the number kept) does not fall without it, since SPSA leaves components that are redundant
    /// given the others near 0.5 (one more run per pair and kept component). The final mask is
    /// evaluated on `heldout` pairs. Returns {weights: [tensors, parts] (the learnt weights), selected:
    /// [[tensor, part]...], pruned (kept by rounding, dropped after), train, heldout, history}.
    ///
    /// ```assay
    /// let m = model("planted")
    /// let pairs = [{target: tensor([[0, 1, 2]]), source: tensor([[3, 1, 2]]), a: 3, b: 0}, {target: tensor([[1, 2, 0]]), source: tensor([[2, 2, 0]]), a: 2, b: 1}]
    /// let r = dcm(m, pairs, "/layers.*/heads_output_0", (out, p) => logit_diff(out.logits, p.a, p.b), parts: 2, heldout: [{target: tensor([[2, 3, 1]]), source: tensor([[0, 3, 1]]), a: 0, b: 2}])
    /// assert r.selected == [[0, 0]]
    /// assert r.heldout.patched > 0
    /// ```
    dcm in Interventions -> Type::record();
    {
        /// a model
        model: ModelHandle,
        /// training pairs {target, source, ...} (inputs; other fields go to the metric)
        pairs: Arg [Type::list(Type::record())],
        /// the components' tensors (names or globs)
        tensors: TensorNames,
        /// (outputs, pair) => number to maximise
        metric: Function,
        /// slices per tensor
        parts: usize = 1,
        /// pairs to evaluate the rounded mask on
        heldout: Arg [Type::list(Type::record())] = None,
        /// SPSA steps
        steps: usize = 60,
        /// perturbation directions per step
        samples: usize = 4,
        /// step size
        rate: f64 = 0.05,
        /// perturbation size
        perturb: f64 = 0.2,
        /// penalty per unit of mask weight
        sparsity: f64 = 0.5,
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
    let train = load_pairs(&m, &names, &p.pairs, p.tensors.name())?;
    if train.is_empty() {
        return Err(p.pairs.error("give at least one pair"));
    }
    let heldout = if p.heldout.is_none() { Vec::new() } else { load_pairs(&m, &names, &p.heldout, p.tensors.name())? };
    let comps = split(&names, &train[0].source, parts, p.parts.name())?;
    let task = Masking { p: &p, m: &m, comps: &comps, want: m.output_names() };
    let (w, history) = task.train(ctx, &train)?;
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
        ("runs", Value::Num((steps * train.len() + pruning_runs) as f64)),
    ]))
}

/// A pair as DCM uses it: the record (for the metric), the target's
/// inputs, and the source's captured component tensors.
struct Pair {
    record: Value,
    target: Feeds,
    source: Outputs,
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
        out.push(Pair { record: pair.clone(), target, source });
    }
    Ok(out)
}

/// One DCM call's model, components and settings.
struct Masking<'a> {
    p: &'a dcm::Params,
    m: &'a ModelHandle,
    comps: &'a [Component],
    want: Vec<String>,
}

impl Masking<'_> {
    /// The mean metric of each mask (a weight per component) over `set`.
    fn evaluate(&self, ctx: &mut dyn ToolCtx, set: &[Pair], masks: &[Vec<f64>]) -> Result<Vec<f64>, ToolError> {
        let p = self.p;
        let rows: Vec<Vec<(usize, f32)>> =
            masks.iter().map(|mk| mk.iter().enumerate().map(|(i, w)| (i, *w as f32)).collect()).collect();
        let mut total = vec![0.0; masks.len()];
        for pair in set {
            let outs =
                run_mixed(self.m, &pair.target, &pair.source, self.comps, &rows, None, Want::outputs(&self.want))
                    .map_err(|e| self.m.blame(e, p.pairs.name(), p.tensors.name()))?;
            for (r, o) in outs.iter().enumerate() {
                total[r] += call_metric(ctx, &p.metric, vec![outputs_value(o), pair.record.clone()], p.metric.name())?;
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
        let (rate, eps, lambda) = (*p.rate, *p.perturb, *p.sparsity);
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
        let lambda = *self.p.sparsity;
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
