//! Interventions beyond single-component patching: cross-model patching
//! (CMAP), path patching, circuit evaluation by mean ablation, and learned
//! component masks (DCM). All of them are built from one primitive: a run
//! in which some column slices of some tensors are mixed as
//! `mask*new + (1-mask)*orig`, batched with a different mask per row.
//!
//! Components are slices of a tensor's last axis: `parts` equal slices
//! (attention heads of [N, T, H*Dh]), addressed as [tensor index, part].

use std::collections::BTreeMap;

use std::sync::Arc;

use assay_interpreter::{Arg, Registry, Signature, ToolCtx, ToolError, Type, Value};
use ndarray::{ArrayD, Axis, Slice};
use rand::Rng;

use crate::core::declare::tool;
use crate::core::FnTool;
use crate::onnx::model::Model;
use crate::onnx::sweep::{outputs_value, run_mixed, split, Outputs, Want};
use crate::onnx::tools::{feeds_value, select_names};

type Feeds = Vec<(String, ArrayD<f32>)>;

fn call_metric(ctx: &mut dyn ToolCtx, f: &Value, args: Vec<Value>, arg: &str) -> Result<f64, ToolError> {
    metric_number(ctx.call(f, args)?, arg)
}

/// The one rule for what a metric returns, in every tool that calls one: a
/// finite number (a NaN or an infinity would poison every comparison and
/// mean after it, so it is an error that says so).
pub(crate) fn metric_number(v: Value, arg: &str) -> Result<f64, ToolError> {
    match v {
        Value::Num(x) if x.is_finite() => Ok(x),
        Value::Num(x) => Err(ToolError::arg(arg, format!("the metric returned {x}"))
            .help("a metric must give a finite number for every run, e.g. a logit difference")),
        other => {
            Err(ToolError::arg(arg, format!("the metric must return a number, it returned a {}", other.type_name())))
        }
    }
}

/// One input (batch 1) from a value.
fn one(m: &Model, v: &Value, arg: &str) -> Result<Feeds, ToolError> {
    let f = feeds_value(m, v, arg)?;
    if f.iter().any(|(_, t)| t.shape().first() != Some(&1)) {
        return Err(ToolError::arg(arg, "give one example (first dimension 1), e.g. one prompt"));
    }
    Ok(f)
}

/// [tensor index, part] pairs → component indices.
fn pairs(x: &Arg, tensors: usize, parts: usize) -> Result<Vec<usize>, ToolError> {
    let mut out = Vec::new();
    for (k, v) in x.items()?.iter().enumerate() {
        let xs = assay_interpreter::to_numbers(v)
            .map_err(|_| x.error(format!("item {k} must be a pair [tensor index, part], e.g. [0, 3]")))?;
        if xs.len() != 2 || xs.iter().any(|x| *x < 0.0 || x.fract() != 0.0) {
            return Err(x.error(format!("item {k} must be a pair of whole numbers [tensor index, part]")));
        }
        let (t, p) = (xs[0] as usize, xs[1] as usize);
        if t >= tensors || p >= parts {
            return Err(x.error(format!("[{t}, {p}] is out of range: {tensors} tensors of {parts} parts")));
        }
        out.push(t * parts + p);
    }
    Ok(out)
}

// ---------------------------------------------------------------- CMAP

tool! {
    /// Cross-model activation patching (CMAP): runs `donor` on `donor_inputs` (default: `inputs`),
    /// takes the tensors named by `tensors` (names or globs, resolved in the donor), and patches them
    /// into `model` run on `inputs`. Both models must share the tensors' names and shapes; a name or
    /// shape that does not correspond is an error naming both sides. With `parts` and `only` ([tensor
    /// index, part] pairs), only those slices (e.g. heads) are patched. Returns `model`'s outputs.
    ///
    /// ```assay
    /// let a = model("planted")
    /// let b = model("planted-altered")
    /// let x = tensor([[0, 1, 2]])
    /// assert run(b, x).logits != run(a, x).logits
    /// let fixed = cross_patch(b, a, x, "/layers.0/heads_output_0", parts: 2, only: [[0, 0]])
    /// assert fixed.logits == run(a, x).logits
    /// ```
    cross_patch in Interventions -> Type::record();
    {
        /// the model patched into
        model: Arc<Model>,
        /// the model the activations come from (same architecture)
        donor: Arc<Model>,
        /// the inputs of `model`'s run
        inputs: Value,
        /// tensor names or globs
        tensors: Arg [Type::OneOf(vec![Type::Str, Type::list(Type::Str)])],
        /// the donor's inputs (default: the same)
        donor_inputs: Arg [Type::Any] = Value::None,
        /// slices per tensor along its last axis
        parts: usize = Value::Num(1.0),
        /// [tensor index, part] slices to patch (default: all)
        only: Arg [Type::list(Type::list(Type::Num))] = Value::None,
    }
    |p, _| {
        let m = p.model.clone();
        let donor = p.donor.clone();
        let inputs = feeds_value(&m, &p.inputs, "inputs")?;
        let donor_inputs = if p.donor_inputs.is_none() {
            feeds_value(&donor, &p.inputs, "inputs")?
        } else {
            feeds_value(&donor, p.donor_inputs.get(), "donor_inputs")?
        };
        for (arg, feeds) in [("inputs", &inputs), ("donor_inputs", &donor_inputs)] {
            if let Some((k, t)) = feeds.iter().find(|(_, t)| t.shape().first().is_some_and(|n| *n != 1)) {
                return Err(ToolError::arg(
                    if p.donor_inputs.is_none() { "inputs" } else { arg },
                    format!("cross_patch patches one example at a time; input `{k}` has {} rows", t.shape()[0]),
                )
                .help("map over the examples: map(examples, x => cross_patch(model, donor, x, tensors))"));
            }
        }
        let names = select_names(&donor, &p.tensors)?;
        let target_names: Vec<String> = m.sites().into_iter().map(|s| s.name).collect();
        for n in &names {
            if !target_names.contains(n) {
                let help = match assay_interpreter::closest(n, target_names.iter().map(|s| s.as_str())) {
                    Some(c) => {
                        format!("the nearest name in the target is `{c}`; CMAP needs models of the same architecture")
                    }
                    None => "CMAP needs models of the same architecture, with the same tensor names".into(),
                };
                return Err(ToolError::arg(
                    "tensors",
                    format!("the donor has `{n}` but the target model has no tensor of that name"),
                )
                .help(help));
            }
        }
        let donor_vals = donor.capture(donor_inputs, &names).map_err(|e| ToolError::arg("donor_inputs", e))?;
        let target_vals = m.capture(inputs.clone(), &names).map_err(|e| ToolError::arg("inputs", e))?;
        for n in &names {
            let (d, t) = (donor_vals[n].shape(), target_vals[n].shape());
            if d != t {
                return Err(ToolError::arg(
                    "tensors",
                    format!("`{n}` is {d:?} in the donor but {t:?} in the target: the models do not correspond there"),
                )
                .help("patch tensors whose shapes agree, with inputs of the same shape"));
            }
        }
        let parts = p.parts.max(1);
        let comps = split(&names, &donor_vals, parts, "parts")?;
        let chosen: Vec<usize> =
            if p.only.is_none() { (0..comps.len()).collect() } else { pairs(&p.only, names.len(), parts)? };
        let rows = vec![chosen.iter().map(|c| (*c, 1.0)).collect()];
        let want = m.output_names();
        let out = run_mixed(&m, &inputs, &donor_vals, &comps, &rows, None, Want::outputs(&want))
            .map_err(|e| ToolError::arg("tensors", e))?;
        Ok(Value::record(out[0].iter().map(|(k, v)| (k.clone(), Value::tensor(v.clone())))))
    }
}

// ---------------------------------------------------------------- path patching

tool! {
    /// Path patching: the effect of one sender component (a [tensor index, part] of `tensors`) that
    /// travels only through chosen receivers. The sender takes its value from the `source` run while
    /// every other component of `tensors` is frozen at its `target` value; with `receivers: "logits"`
    /// the metric is read from that run (the sender's direct effect), otherwise the receivers (tensor
    /// names with `receiver_parts` slices and `receiver_only` pairs, e.g. the value or query inputs of
    /// later heads) are captured there and patched into a clean target run (the effect through them
    /// alone). Returns {effect, patched, clean, source}: effect = metric(patched) - metric(target).
    ///
    /// ```assay
    /// let m = model("planted")
    /// let d = out => logit_diff(out.logits, 0, 3)
    /// let heads = "/layers.*/heads_output_0"
    /// let direct = path_patch(m, tensor([[0, 1, 2]]), tensor([[3, 1, 2]]), heads, [0, 0], d, parts: 2)
    /// let via = path_patch(m, tensor([[0, 1, 2]]), tensor([[3, 1, 2]]), heads, [0, 0], d, parts: 2, receivers: "/layers.1/v_output_0", receiver_parts: 2, receiver_only: [[0, 0]])
    /// assert direct.effect == -2 and via.effect == -4
    /// ```
    path_patch in Interventions -> Type::record();
    {
        /// a model
        model: Arc<Model>,
        /// the run to patch into (one example)
        target: Value,
        /// the run the sender's value comes from
        source: Value,
        /// the components' tensors (names or globs), e.g. every layer's heads
        tensors: Arg [Type::OneOf(vec![Type::Str, Type::list(Type::Str)])],
        /// [tensor index, part] of the sender
        sender: Vec<f64>,
        /// outputs => number
        metric: Value [Type::Func],
        /// slices per tensor (e.g. heads per layer)
        parts: usize = Value::Num(1.0),
        /// "logits", or receiver tensor names or globs
        receivers: Arg [Type::Any] = Value::str("logits"),
        /// slices per receiver tensor
        receiver_parts: usize = Value::Num(1.0),
        /// [receiver tensor index, part] slices (default: all)
        receiver_only: Arg [Type::list(Type::list(Type::Num))] = Value::None,
    }
    |p, ctx| {
        let m = p.model.clone();
        let target = one(&m, &p.target, "target")?;
        let source = one(&m, &p.source, "source")?;
        let names = select_names(&m, &p.tensors)?;
        let metric = p.metric.clone();
        let parts = p.parts.max(1);
        let sender = {
            let xs = p.sender.clone();
            if xs.len() != 2 {
                return Err(ToolError::arg("sender", "the sender is a pair [tensor index, part]"));
            }
            if xs[0] < 0.0 || xs[0] as usize >= names.len() || xs[1] < 0.0 || xs[1] as usize >= parts {
                return Err(ToolError::arg(
                    "sender",
                    format!("{xs:?} is out of range: {} tensors of {parts} parts", names.len()),
                ));
            }
            xs[0] as usize * parts + xs[1] as usize
        };
        let clean_vals = m.capture(target.clone(), &names).map_err(|e| ToolError::arg("target", e))?;
        let src_vals = m.capture(source.clone(), &names).map_err(|e| ToolError::arg("source", e))?;
        let comps = split(&names, &clean_vals, parts, "parts")?;
        // Frozen values: the target's everywhere, the source's in the sender's slice.
        let mut frozen = clean_vals.clone();
        let s = &comps[sender];
        {
            let dst = frozen.get_mut(&s.tensor).ok_or_else(|| ToolError::new("sender tensor missing"))?;
            let src = &src_vals[&s.tensor];
            let last = dst.ndim() - 1;
            dst.slice_axis_mut(Axis(last), Slice::from(s.cols.0..s.cols.1))
                .assign(&src.slice_axis(Axis(last), Slice::from(s.cols.0..s.cols.1)));
        }
        let all: Vec<(usize, f32)> = (0..comps.len()).map(|c| (c, 1.0)).collect();
        let want = m.output_names();
        let score = |ctx: &mut dyn ToolCtx, o: &Outputs| call_metric(ctx, &metric, vec![outputs_value(o)], "metric");
        let clean_out = m.run_plain(target.clone(), &want).map_err(|e| ToolError::arg("target", e))?;
        let clean = score(ctx, &clean_out)?;
        let source_out = m.run_plain(source, &want).map_err(|e| ToolError::arg("source", e))?;
        let source_score = score(ctx, &source_out)?;
        let direct = matches!(p.receivers.get(), Value::Str(r) if r.as_ref() == "logits");
        let patched = if direct {
            let out = run_mixed(&m, &target, &frozen, &comps, &[all], None, Want::outputs(&want))
                .map_err(|e| ToolError::arg("tensors", e))?;
            score(ctx, &out[0])?
        } else {
            let receivers = select_names(&m, &p.receivers)?;
            if let Some(r) = receivers.iter().find(|r| names.contains(r)) {
                return Err(ToolError::arg("receivers", format!("`{r}` is both a sender tensor and a receiver")).help(
                    "receivers are the inputs of later components (their values, queries or keys), not their outputs",
                ));
            }
            let step = run_mixed(
                &m,
                &target,
                &frozen,
                &comps,
                &[all],
                None,
                Want { outputs: &want, capture: &receivers, last_position: false },
            )
            .map_err(|e| ToolError::arg("receivers", e))?;
            let rparts = p.receiver_parts.max(1);
            let recv_vals: Outputs =
                receivers.iter().filter_map(|r| step[0].get(r).map(|v| (r.clone(), v.clone()))).collect();
            let rcomps = split(&receivers, &recv_vals, rparts, "receiver_parts")?;
            let chosen: Vec<usize> = if p.receiver_only.is_none() {
                (0..rcomps.len()).collect()
            } else {
                pairs(&p.receiver_only, receivers.len(), rparts)?
            };
            let rows = vec![chosen.iter().map(|c| (*c, 1.0)).collect()];
            let out = run_mixed(&m, &target, &recv_vals, &rcomps, &rows, None, Want::outputs(&want))
                .map_err(|e| ToolError::arg("receivers", e))?;
            score(ctx, &out[0])?
        };
        Ok(Value::record([
            ("effect", Value::Num(patched - clean)),
            ("patched", Value::Num(patched)),
            ("clean", Value::Num(clean)),
            ("source", Value::Num(source_score)),
        ]))
    }
}

// ---------------------------------------------------------------- circuits

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
        model: Arc<Model>,
        /// the prompts (any values; `input` turns one into model inputs)
        prompts: Vec<Value>,
        /// the circuit: [tensor index, part] pairs
        keep: Arg [Type::list(Type::list(Type::Num))],
        /// the components' tensors (names or globs)
        tensors: Arg [Type::OneOf(vec![Type::Str, Type::list(Type::Str)])],
        /// (outputs, prompt) => number, above 0 when right
        metric: Value [Type::Func],
        /// slices per tensor (e.g. heads per layer)
        parts: usize = Value::Num(1.0),
        /// prompt => model inputs (default: the prompt itself)
        input: Arg [Type::Func] = Value::None,
        /// inputs whose means replace ablated components
        reference: Arg [Type::list(Type::Any)] = Value::None,
        /// random circuits of the same size to compare with
        random: usize = Value::Num(5.0),
    }
    |p, ctx| {
        let m = p.model.clone();
        let prompts = p.prompts.clone();
        if prompts.is_empty() {
            return Err(ToolError::arg("prompts", "give at least one prompt"));
        }
        let names = select_names(&m, &p.tensors)?;
        let metric = p.metric.clone();
        let parts = p.parts.max(1);
        let input_fn = if p.input.is_none() { None } else { Some(p.input.func()?.clone()) };
        let n_random = p.random;
        let mut inputs = Vec::new();
        for p in &prompts {
            let v = match &input_fn {
                Some(f) => ctx.call(f, vec![p.clone()])?,
                None => p.clone(),
            };
            inputs.push(one(&m, &v, "prompts")?);
        }
        // Means over the reference inputs, per tensor: [D] over examples and positions.
        let reference: Vec<Feeds> = if p.reference.is_none() {
            inputs.clone()
        } else {
            p.reference.items()?.iter().map(|v| feeds_value(&m, v, "reference")).collect::<Result<_, _>>()?
        };
        let mut sums: BTreeMap<String, (ArrayD<f64>, usize)> = BTreeMap::new();
        for r in &reference {
            let vals = m.capture(r.clone(), &names).map_err(|e| ToolError::arg("reference", e))?;
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
        let first = m.capture(inputs[0].clone(), &names).map_err(|e| ToolError::arg("prompts", e))?;
        let comps = split(&names, &first, parts, "parts")?;
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
        for (p, inp) in prompts.iter().zip(&inputs) {
            let full = m.run_plain(inp.clone(), &want).map_err(|e| ToolError::arg("prompts", e))?;
            scores[0].push(call_metric(ctx, &metric, vec![outputs_value(&full), p.clone()], "metric")?);
            // Mean values broadcast to this prompt's shapes.
            let shaped = m.capture(inp.clone(), &names).map_err(|e| ToolError::arg("prompts", e))?;
            let mut values = Outputs::new();
            for (k, v) in shaped {
                let mean = &means[&k];
                let b = mean.broadcast(v.shape()).ok_or_else(|| ToolError::new(format!("`{k}`'s mean does not fit")))?;
                values.insert(k, b.to_owned());
            }
            let outs = run_mixed(&m, inp, &values, &comps, &variants, None, Want::outputs(&want))
                .map_err(|e| ToolError::arg("tensors", e))?;
            for (i, o) in outs.iter().enumerate() {
                scores[i + 1].push(call_metric(ctx, &metric, vec![outputs_value(o), p.clone()], "metric")?);
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
}

// ---------------------------------------------------------------- DCM

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
        model: Arc<Model>,
        /// training pairs {target, source, ...} (inputs; other fields go to the metric)
        pairs: Arg [Type::list(Type::record())],
        /// the components' tensors (names or globs)
        tensors: Arg [Type::OneOf(vec![Type::Str, Type::list(Type::Str)])],
        /// (outputs, pair) => number to maximise
        metric: Value [Type::Func],
        /// slices per tensor
        parts: usize = Value::Num(1.0),
        /// pairs to evaluate the rounded mask on
        heldout: Arg [Type::list(Type::record())] = Value::None,
        /// SPSA steps
        steps: usize = Value::Num(60.0),
        /// perturbation directions per step
        samples: usize = Value::Num(4.0),
        /// step size
        rate: f64 = Value::Num(0.05),
        /// perturbation size
        perturb: f64 = Value::Num(0.2),
        /// penalty per unit of mask weight
        sparsity: f64 = Value::Num(0.5),
    }
    |p, ctx| {
        let m = p.model.clone();
        let names = select_names(&m, &p.tensors)?;
        let metric = p.metric.clone();
        let parts = p.parts.max(1);
        let steps = p.steps;
        let samples = p.samples.max(1);
        let (rate, eps, lambda) = (p.rate, p.perturb, p.sparsity);
        if !(eps > 0.0 && eps <= 0.5) {
            return Err(ToolError::arg("perturb", "`perturb` must be above 0 and at most 0.5"));
        }
        struct Pair {
            record: Value,
            target: Feeds,
            source: Outputs,
        }
        let load = |x: &Arg| -> Result<Vec<Pair>, ToolError> {
            let mut out = Vec::new();
            for (k, p) in x.items()?.into_iter().enumerate() {
                let Value::Record(r) = &p else {
                    return Err(x.error(format!("pair {k} is a {}, not a record {{target, source}}", p.type_name()),
                    ));
                };
                let (Some(t), Some(s)) = (r.get("target"), r.get("source")) else {
                    return Err(x.error(format!("pair {k} needs fields `target` and `source`")));
                };
                let target = one(&m, t, x.name())?;
                let source_in = one(&m, s, x.name())?;
                for ((kt, tt), (_, ss)) in target.iter().zip(&source_in) {
                    if tt.shape() != ss.shape() {
                        return Err(x.error(format!("pair {k}: `{kt}` differs in shape between target and source"),
                        )
                        .help("for text, choose pairs with the same number of tokens"));
                    }
                }
                let source = m.capture(source_in, &names).map_err(|e| x.error(e))?;
                out.push(Pair { record: p.clone(), target, source });
            }
            Ok(out)
        };
        let train = load(&p.pairs)?;
        if train.is_empty() {
            return Err(ToolError::arg("pairs", "give at least one pair"));
        }
        let heldout = if p.heldout.is_none() { Vec::new() } else { load(&p.heldout)? };
        let comps = split(&names, &train[0].source, parts, "parts")?;
        let c = comps.len();
        let want = m.output_names();
        // Mean metric of each mask (rows) over pairs.
        let evaluate = |ctx: &mut dyn ToolCtx, set: &[Pair], masks: &[Vec<f64>]| -> Result<Vec<f64>, ToolError> {
            let rows: Vec<Vec<(usize, f32)>> =
                masks.iter().map(|mk| mk.iter().enumerate().map(|(i, w)| (i, *w as f32)).collect()).collect();
            let mut total = vec![0.0; masks.len()];
            for p in set {
                let outs = run_mixed(&m, &p.target, &p.source, &comps, &rows, None, Want::outputs(&want))
                    .map_err(|e| ToolError::arg("tensors", e))?;
                for (r, o) in outs.iter().enumerate() {
                    total[r] += call_metric(ctx, &metric, vec![outputs_value(o), p.record.clone()], "metric")?;
                }
            }
            Ok(total.into_iter().map(|t| t / set.len() as f64).collect())
        };
        let mut w = vec![0.5f64; c];
        let mut history = Vec::new();
        for _ in 0..steps {
            let dirs: Vec<Vec<f64>> = (0..samples)
                .map(|_| (0..c).map(|_| if ctx.rng().random_bool(0.5) { 1.0 } else { -1.0 }).collect())
                .collect();
            let mut masks = Vec::new();
            for d in &dirs {
                masks.push(w.iter().zip(d).map(|(x, s)| (x + eps * s).clamp(0.0, 1.0)).collect::<Vec<_>>());
                masks.push(w.iter().zip(d).map(|(x, s)| (x - eps * s).clamp(0.0, 1.0)).collect::<Vec<_>>());
            }
            let vals = evaluate(ctx, &train, &masks)?;
            let mut grad = vec![0.0; c];
            for (k, d) in dirs.iter().enumerate() {
                let diff = (vals[2 * k] - vals[2 * k + 1]) / (2.0 * eps);
                for (g, s) in grad.iter_mut().zip(d) {
                    *g += diff * s / samples as f64;
                }
            }
            for (x, g) in w.iter_mut().zip(&grad) {
                *x = (*x + rate * (g - lambda)).clamp(0.0, 1.0);
            }
            history.push(vals.iter().sum::<f64>() / vals.len() as f64 - lambda * w.iter().sum::<f64>());
        }
        let mut rounded: Vec<f64> = w.iter().map(|x| if *x >= 0.5 { 1.0 } else { 0.0 }).collect();
        // SPSA leaves a component that is redundant given the others near 0.5
        // (its true gradient is only the penalty, its estimate noisy): drop each
        // kept component, weakest first, if the training objective does not
        // fall without it. One run of one row per pair and kept component.
        let objective = |v: f64, mask: &[f64]| v - lambda * mask.iter().sum::<f64>();
        let mut kept: Vec<usize> = (0..c).filter(|i| rounded[*i] == 1.0).collect();
        kept.sort_by(|x, y| w[*x].total_cmp(&w[*y]).then(x.cmp(y)));
        let mut pruned = Vec::new();
        let pruning_runs = if kept.is_empty() { 0 } else { (kept.len() + 1) * train.len() };
        if !kept.is_empty() {
            let mut current = objective(evaluate(ctx, &train, std::slice::from_ref(&rounded))?[0], &rounded);
            for i in kept {
                let mut trial = rounded.clone();
                trial[i] = 0.0;
                let without = objective(evaluate(ctx, &train, std::slice::from_ref(&trial))?[0], &trial);
                if without >= current {
                    rounded = trial;
                    current = without;
                    pruned.push(i);
                }
            }
        }
        let pair_of = |i: usize| Value::nums([(i / parts) as f64, (i % parts) as f64]);
        let selected: Vec<Value> = (0..c).filter(|i| rounded[*i] == 1.0).map(pair_of).collect();
        pruned.sort();
        let report = |ctx: &mut dyn ToolCtx, set: &[Pair]| -> Result<Value, ToolError> {
            if set.is_empty() {
                return Ok(Value::None);
            }
            let v = evaluate(ctx, set, &[vec![0.0; c], rounded.clone(), vec![1.0; c]])?;
            Ok(Value::record([("none", Value::Num(v[0])), ("patched", Value::Num(v[1])), ("all", Value::Num(v[2]))]))
        };
        let train_report = report(ctx, &train)?;
        let heldout_report = report(ctx, &heldout)?;
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
}

pub(crate) fn register(r: &mut Registry) {
    for (sig, f) in [
        (cross_patch::sig as fn() -> Signature, cross_patch::call as crate::core::ToolFn),
        (path_patch::sig, path_patch::call),
        (circuit::sig, circuit::call),
        (dcm::sig, dcm::call),
    ] {
        r.register(FnTool::new(sig, f));
    }
}
