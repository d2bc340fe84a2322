//! Circuit evaluation by mean ablation: the metric with only the kept
//! components live, against the full model and random circuits of its size.

use super::*;
use crate::core::kinds::{Function, TensorNames};
use crate::onnx::handle::ModelHandle;

tool! {
    /// Evaluates a circuit by mean ablation: every component of `tensors` (split into `parts`) that is
    /// not in `keep` ([tensor index, part] pairs) is replaced by its mean over the `reference` inputs
    /// (over examples and positions; default: the prompts themselves). `metric(outputs, prompt)` scores
    /// each prompt; accuracy is the fraction of prompts where it is above 0 (e.g. a logit difference).
    /// Reports the full model, the circuit, everything ablated, and `random` circuits of the same size
    /// drawn from the run's seed; faithfulness = (circuit - ablated) / (full - ablated) on the mean
    /// metric. Each prompt's circuit, ablated and random variants run as one batch.
    ///
    /// ```assay
    /// let m = model("planted")
    /// let prompts = [tensor([[0, 1, 2]]), tensor([[1, 2, 3]]), tensor([[2, 0, 0]])]
    /// let metric = (out, p) => logit_diff(out.logits, p[0][0], 3 - p[0][0])
    /// let c = circuit(m, prompts, [[0, 0], [1, 0]], "/layers.*/heads_output_0", metric, parts: 2, random: 3)
    /// assert c.faithfulness == 1 and c.accuracy.circuit == 1
    /// assert circuit(m, prompts, [[0, 1], [1, 1]], "/layers.*/heads_output_0", metric, parts: 2).faithfulness == 0
    /// ```
    circuit in Interventions -> Type::record();
    {
        /// a model
        model: ModelHandle,
        /// the prompts (any values; `input` turns one into model inputs)
        prompts: Vec<Value>,
        /// the circuit: [tensor index, part] pairs
        keep: Arg [Type::list(Type::list(Type::Num))],
        /// the components' tensors (names or globs)
        tensors: TensorNames,
        /// (outputs, prompt) => number, above 0 when right
        metric: Function,
        /// slices per tensor (e.g. heads per layer)
        parts: usize = 1,
        /// prompt => model inputs (default: the prompt itself)
        input: Option<Function> = None,
        /// inputs whose means replace ablated components
        reference: Arg [Type::list(Type::Any)] = None,
        /// random circuits of the same size to compare with
        random: usize = 5,
    }
    circuit
}

fn circuit(p: circuit::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let m = p.model.clone();
    let prompts = p.prompts.clone();
    if prompts.is_empty() {
        return Err(p.prompts.error("give at least one prompt"));
    }
    let names = select_names(&m, &p.tensors)?;
    let metric = p.metric.clone();
    let parts = p.parts.max(1);
    let input_fn = p.input.clone();
    let n_random = *p.random;
    let mut inputs = Vec::new();
    for prompt in &prompts {
        let v = match &input_fn {
            Some(f) => ctx.call(f, vec![prompt.clone()])?,
            None => prompt.clone(),
        };
        inputs.push(one(&m, &v, p.prompts.name())?);
    }
    // Means over the reference inputs, per tensor: [D] over examples and positions.
    let reference: Vec<Feeds> = if p.reference.is_none() {
        inputs.clone()
    } else {
        p.reference.items()?.iter().map(|v| feeds_value(&m, v, p.reference.name())).collect::<Result<_, _>>()?
    };
    let mut sums: BTreeMap<String, (ArrayD<f64>, usize)> = BTreeMap::new();
    for r in &reference {
        let vals = m.capture(r.clone(), &names).map_err(|e| m.blame(e, p.reference.name(), p.tensors.name()))?;
        for (k, v) in vals {
            let d = v.shape().last().copied().unwrap_or(1);
            let rows = v.len() / d.max(1);
            let flat = v.into_shape_with_order((rows, d)).map_err(|e| ToolError::new(e.to_string()))?;
            let s = flat.mapv(|x| x as f64).sum_axis(Axis(0)).into_dyn();
            let e = sums.entry(k).or_insert_with(|| (ArrayD::zeros(s.shape()), 0));
            e.0 = &e.0 + &s;
            e.1 += rows;
        }
    }
    let means: BTreeMap<String, ArrayD<f32>> =
        sums.into_iter().map(|(k, (s, n))| (k, s.mapv(|x| (x / n.max(1) as f64) as f32))).collect();
    // Components, from the first prompt's shapes.
    let first = m.capture(inputs[0].clone(), &names).map_err(|e| m.blame(e, p.prompts.name(), p.tensors.name()))?;
    let comps = split(&names, &first, parts, p.parts.name())?;
    let keep = pairs(&p.keep, names.len(), parts)?;
    let size = keep.len();
    let ablate = |kept: &[usize]| -> Vec<(usize, f32)> {
        (0..comps.len()).filter(|c| !kept.contains(c)).map(|c| (c, 1.0)).collect()
    };
    let mut variants = vec![ablate(&keep), ablate(&[])];
    for _ in 0..n_random {
        let pick = rand::seq::index::sample(ctx.rng(), comps.len(), size.min(comps.len())).into_vec();
        variants.push(ablate(&pick));
    }
    let want = m.output_names();
    let mut scores = vec![Vec::new(); variants.len() + 1];
    for (prompt, inp) in prompts.iter().zip(&inputs) {
        let full = m.run_plain(inp.clone(), &want).map_err(|e| m.blame(e, p.prompts.name(), p.tensors.name()))?;
        scores[0].push(call_metric(ctx, &metric, vec![outputs_value(&full), prompt.clone()], p.metric.name())?);
        // Mean values broadcast to this prompt's shapes.
        let shaped = m.capture(inp.clone(), &names).map_err(|e| m.blame(e, p.prompts.name(), p.tensors.name()))?;
        let mut values = Outputs::new();
        for (k, v) in shaped {
            let mean = &means[&k];
            let b = mean.broadcast(v.shape()).ok_or_else(|| ToolError::new(format!("`{k}`'s mean does not fit")))?;
            values.insert(k, b.to_owned());
        }
        let outs = run_mixed(&m, inp, &values, &comps, &variants, None, Want::outputs(&want))
            .map_err(|e| m.blame(e, p.prompts.name(), p.tensors.name()))?;
        for (i, o) in outs.iter().enumerate() {
            scores[i + 1].push(call_metric(ctx, &metric, vec![outputs_value(o), prompt.clone()], p.metric.name())?);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let acc = |v: &[f64]| v.iter().filter(|x| **x > 0.0).count() as f64 / v.len().max(1) as f64;
    let (full, circ, abl) = (mean(&scores[0]), mean(&scores[1]), mean(&scores[2]));
    let randoms: Vec<f64> = scores[3..].iter().map(|s| mean(s)).collect();
    let rand_mean = if randoms.is_empty() { f64::NAN } else { mean(&randoms) };
    let faith = |x: f64| if (full - abl).abs() < 1e-12 { Value::None } else { Value::Num((x - abl) / (full - abl)) };
    let rand_acc = if randoms.is_empty() {
        Value::None
    } else {
        Value::Num(scores[3..].iter().map(|s| acc(s)).sum::<f64>() / randoms.len() as f64)
    };
    Ok(Value::record([
        ("full", Value::Num(full)),
        ("circuit", Value::Num(circ)),
        ("ablated", Value::Num(abl)),
        ("random", if randoms.is_empty() { Value::None } else { Value::Num(rand_mean) }),
        ("random_each", Value::nums(randoms.iter().copied())),
        ("faithfulness", faith(circ)),
        ("random_faithfulness", if randoms.is_empty() { Value::None } else { faith(rand_mean) }),
        (
            "accuracy",
            Value::record([
                ("full", Value::Num(acc(&scores[0]))),
                ("circuit", Value::Num(acc(&scores[1]))),
                ("ablated", Value::Num(acc(&scores[2]))),
                ("random", rand_acc),
            ]),
        ),
        ("size", Value::Num(size as f64)),
        ("components", Value::Num(comps.len() as f64)),
    ]))
}

// ---------------------------------------------------------------- DCM
