//! Probes: small read-outs trained on captured activations (does layer L
//! encode X?), with held-out evaluation drawn from the run's seed.
//!
//! The objective, for `kind: "logistic"` with classes c and rows x_i, is
//! Σ_i −log p(y_i | x_i) + l2/2·‖W‖² + l1·‖W‖₁ (the bias is not
//! penalised): scikit-learn's `LogisticRegression` with C = 1/l2 (penalty
//! "l2") or C = 1/l1 (penalty "l1"); two classes have one weight row (the
//! second class's), more have one row per class (softmax). For
//! `kind: "linear"` it is ½Σ_i (y_i − ŷ_i)² + l2/2·‖w‖² + l1·‖w‖₁:
//! scikit-learn's `Ridge(alpha = l2)`, or `Lasso(alpha = l1 / n)`.
//!
//! Solver: argmin's L-BFGS, which becomes OWL-QN (orthant-wise L-BFGS,
//! Andrew & Gao 2007) with `l1 > 0` and then sets weights to exactly zero.
//! The unpenalised bias is profiled out of the objective (solved exactly
//! for each set of weights), so the solver sees only the penalised
//! weights. Linear probes without L1 are solved by the normal equations
//! (nalgebra's Cholesky). `benches/probes/` compares every setting with
//! scikit-learn on the same features.

use assay_interpreter::{iter_values, to_numbers, Bound, ToolError, Type, Value};
use rand::seq::SliceRandom;

use crate::core::declare::{tool, ToolCtx, ToolResult};
use crate::core::random::stream_of;

mod solve;
use solve::{fit, scores, Fit, Kind, Rows, Settings, Targets};

/// A two-class logistic probe for Assay's own models (the benchmark's
/// concept detectors): `x` is n rows of k features, `positive` each row's
/// class; minimises the summed log-loss + l2/2·‖w‖² (bias unpenalised), as
/// `probe(..., kind: "logistic", l2:)` does. Returns the weights, the bias
/// and whether the optimality conditions were met.
pub(crate) fn fit_logistic(x: Vec<f64>, k: usize, positive: &[bool], l2: f64) -> Result<(Vec<f64>, f64, bool), String> {
    let n = positive.len();
    if x.len() != n * k || n == 0 {
        return Err(format!("{} features for {n} rows of {k}", x.len()));
    }
    let rows = Rows { x, n, k };
    let t = Targets::Classes(positive.iter().map(|&p| usize::from(p)).collect(), 2);
    let f = fit(&rows, &t, &Settings { kind: Kind::Logistic, l1: 0.0, l2 })?;
    Ok((f.w, f.b.first().copied().unwrap_or(0.0), f.converged))
}

/// Rows × features a probe may be trained on (as f64: 400 MB).
const MAX_CELLS: usize = 50_000_000;

/// Reads `features`: a tensor [N, ...] (each example's values flattened),
/// or a list of N examples (each a list of numbers, a tensor, or a number).
fn rows(v: &Bound<Value>) -> Result<Rows, ToolError> {
    let too_big = |n: usize, k: usize| {
        v.error(format!("{n} examples x {k} features is too large (at most {MAX_CELLS} values)")).help(
            "reduce the features first (e.g. mean(x, axis: 2) over positions or pixels, or take a layer's channels)",
        )
    };
    let (x, n, k) = match &**v {
        Value::Tensor(t) => {
            if t.ndim() < 2 {
                return Err(v
                    .error(format!(
                        "expected a tensor [N, K] (examples by features), found one of shape {:?}",
                        t.shape()
                    ))
                    .help("one feature per example is reshape(x, [len(x), 1])"));
            }
            let n = t.shape()[0];
            let k: usize = t.shape()[1..].iter().product();
            if n.saturating_mul(k) > MAX_CELLS {
                return Err(too_big(n, k));
            }
            (t.iter().map(|x| *x as f64).collect::<Vec<f64>>(), n, k)
        }
        other => {
            let items = iter_values(other).ok_or_else(|| {
                v.error(format!("expected a tensor [N, K] or a list of examples, found {}", other.type_name()))
            })?;
            let n = items.len();
            let mut x = Vec::new();
            let mut k = 0;
            for (i, it) in items.iter().enumerate() {
                let r = to_numbers(it).map_err(|what| v.error(format!("example {i} is not numbers: {what}")))?;
                if i == 0 {
                    k = r.len();
                    if n.saturating_mul(k) > MAX_CELLS {
                        return Err(too_big(n, k));
                    }
                    x.reserve(n * k);
                } else if r.len() != k {
                    return Err(v.error(format!("example {i} has {} features; example 0 has {k}", r.len())));
                }
                x.extend(r);
            }
            (x, n, k)
        }
    };
    if n == 0 || k == 0 {
        return Err(v.error("needs at least one example with at least one feature"));
    }
    if let Some(j) = x.iter().position(|v| !v.is_finite()) {
        return Err(v
            .error(format!("example {} has a feature that is not finite (feature {})", j / k, j % k))
            .help("drop those examples, or replace the values (e.g. clip) before probing"));
    }
    Ok(Rows { x, n, k })
}

/// Class labels: numbers, strings or bools, all of one kind.
fn labels(v: &Bound<Value>, n: usize) -> Result<Vec<Value>, ToolError> {
    let items = iter_values(v).ok_or_else(|| v.error(format!("expected a list of labels, found {}", v.type_name())))?;
    if items.len() != n {
        return Err(v
            .error(format!("{} labels for {n} examples", items.len()))
            .help("give one label per example, in the examples' order"));
    }
    let kind = |x: &Value| match x {
        Value::Num(_) => Some("number"),
        Value::Str(_) => Some("string"),
        Value::Bool(_) => Some("bool"),
        _ => None,
    };
    for (i, it) in items.iter().enumerate() {
        let Some(k) = kind(it) else {
            return Err(v.error(format!("label {i} is a {}; labels are numbers, strings or bools", it.type_name())));
        };
        if let Value::Num(x) = it {
            if !x.is_finite() {
                return Err(v.error(format!("label {i} is not a finite number")));
            }
        }
        if kind(&items[0]) != Some(k) {
            return Err(v.error(format!("label {i} is a {k} but label 0 is a {}", items[0].type_name())));
        }
    }
    Ok(items)
}

/// A linear probe's labels: numbers only.
fn numeric_labels(v: &Bound<Value>, raw: &[Value]) -> Result<Vec<f64>, ToolError> {
    raw.iter()
        .enumerate()
        .map(|(i, l)| match l {
            Value::Num(n) => Ok(*n),
            other => Err(v
                .error(format!("label {i} is a {}; a linear probe's labels are numbers", other.type_name()))
                .help("kind: \"logistic\" classifies labels")),
        })
        .collect()
}

/// Total order on labels of one kind (numbers numerically).
fn cmp_label(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Num(x), Value::Num(y)) => x.total_cmp(y),
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}

/// Accuracy (logistic) or R² (linear) of `f` on `x`.
fn quality(f: &Fit, x: &Rows, t: &Targets) -> f64 {
    let z = scores(x, &f.w, &f.b, f.m);
    match t {
        Targets::Classes(c, _) => {
            let right = (0..x.n).filter(|&i| predicted_class(&z[i * f.m..(i + 1) * f.m]) == c[i]).count();
            right as f64 / x.n.max(1) as f64
        }
        Targets::Values(y) => r2(&z, y),
    }
}

fn r2(pred: &[f64], y: &[f64]) -> f64 {
    let mean = y.iter().sum::<f64>() / y.len().max(1) as f64;
    let ss_res: f64 = pred.iter().zip(y).map(|(p, t)| (p - t) * (p - t)).sum();
    let ss_tot: f64 = y.iter().map(|t| (t - mean) * (t - mean)).sum();
    if ss_tot > 0.0 {
        1.0 - ss_res / ss_tot
    } else if ss_res == 0.0 {
        1.0
    } else {
        0.0
    }
}

/// The class a row's scores pick: index 1 if its one logit is positive
/// (two classes), else the largest (first on ties).
fn predicted_class(z: &[f64]) -> usize {
    if z.len() == 1 {
        return (z[0] > 0.0) as usize;
    }
    let mut best = 0;
    for (j, v) in z.iter().enumerate() {
        if *v > z[best] {
            best = j;
        }
    }
    best
}

/// Stratified held-out folds: each class's rows shuffled by `rng` and dealt
/// to the folds in turn (the deal continuing across classes), so every fold
/// has each class in proportion.
fn deal(groups: Vec<Vec<usize>>, folds: usize, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<usize> {
    let n: usize = groups.iter().map(Vec::len).sum();
    let mut fold_of = vec![0; n];
    let mut turn = 0;
    for mut g in groups {
        g.shuffle(rng);
        for i in g {
            fold_of[i] = turn % folds;
            turn += 1;
        }
    }
    fold_of
}

tool! {
    /// Trains a probe, a linear read-out of `features` (a tensor [N, K] or
    /// a list of N vectors, e.g. activations from capture()) to `labels`:
    /// `kind: "logistic"` classifies (labels are numbers, strings or bools),
    /// `"linear"` regresses numbers. The objective is the loss summed over
    /// examples + l2/2·‖w‖² + l1·‖w‖₁, as scikit-learn's
    /// LogisticRegression with C = 1/l2 (or C = 1/l1 with penalty "l1"),
    /// Ridge(alpha = l2) and Lasso(alpha = l1 / N); L1 sets weights to
    /// exactly zero (`kept` counts the features left). With `split: f`, a
    /// fraction f of the examples (stratified by class) is held out and
    /// `test_accuracy` (or `test_r2`) reported; with `folds: k`, k-fold
    /// cross-validation (`cv_accuracy`, `fold_scores`) and the probe fitted
    /// on all examples. The held-out draw comes from the run's seed (or
    /// `seed:`). Returns {kind, classes, weights [rows, K], bias, kept,
    /// train_accuracy or train_r2, test..., n, features, solver,
    /// converged}; `predict(probe, features)` and `evaluate(probe,
    /// features, labels)` apply it.
    ///
    /// ```assay
    /// let xs = [[0, 1], [1, 0], [0, 2], [2, 0], [0, 3], [3, 0]]
    /// let p = probe(xs, ["a", "b", "a", "b", "a", "b"])
    /// assert p.train_accuracy == 1 and p.classes == ["a", "b"]
    /// assert p.predict([[0, 5], [5, 0]]) == ["a", "b"]
    /// ```
    ///
    /// ```assay
    /// # Only the first feature carries the label; L1 drops the rest.
    /// let xs = map(range(40), i => [i % 2 * 2 - 1 + rand() * 0.1, rand(), rand(), rand()])
    /// let ys = map(range(40), i => i % 2 == 1)
    /// let p = probe(xs, ys, l1: 2, l2: 0, split: 0.25)
    /// assert p.kept == 1 and p.weights[0][0] > 0 and p.test_accuracy == 1
    /// ```
    ///
    /// ```assay
    /// let xs = map(range(20), i => [i, i % 3])
    /// let p = probe(xs, map(xs, x => 2 * x[0] - x[1] + 1), kind: "linear", l2: 0)
    /// assert p.train_r2 > 0.999999 and round(p.bias[0], digits: 3) == 1
    /// ```
    probe in Statistics -> Type::record();
    {
        /// a tensor [N, K] (examples by features; more axes are flattened)
        /// or a list of N examples, each a list of numbers or a tensor
        features: Value [Type::Any],
        /// N labels: classes (numbers, strings or bools) for a logistic
        /// probe, numbers for a linear one
        labels: Value [Type::Any],
        /// "logistic" (classification) or "linear" (regression)
        kind: String = "logistic",
        /// L1 penalty (sparse weights); 0 for none
        l1: f64 = 0.0,
        /// L2 penalty (1 is scikit-learn's default C = 1)
        l2: f64 = 1.0,
        /// hold out this fraction of the examples and report the probe's
        /// score on them
        split: Option<f64> = None,
        /// k-fold cross-validation instead of one split
        folds: Option<i64> = None,
        /// pins the held-out draw (default: the run's seed)
        seed: Option<i64> = None,
    }
    probe
}

fn probe(p: probe::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let kind = match p.kind.as_str() {
        "logistic" => Kind::Logistic,
        "linear" => Kind::Linear,
        other => {
            return Err(p
                .kind
                .error(format!("unknown kind \"{other}\""))
                .help("\"logistic\" classifies, \"linear\" regresses"))
        }
    };
    for (b, v) in [(&p.l1, *p.l1), (&p.l2, *p.l2)] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(b.error(format!("a penalty must be a number >= 0, found {v}")));
        }
    }
    if kind == Kind::Logistic && *p.l1 == 0.0 && *p.l2 == 0.0 {
        return Err(p.l2.error("a logistic probe needs a penalty (l2 > 0 or l1 > 0)").help(
            "on features that separate the classes an unpenalised logistic regression has no finite solution; l2: 1 is scikit-learn's default",
        ));
    }
    let x = rows(&p.features)?;
    let raw = labels(&p.labels, x.n)?;
    let (targets, classes) = match kind {
        Kind::Logistic => {
            let mut classes = raw.clone();
            classes.sort_by(cmp_label);
            classes.dedup_by(|a, b| cmp_label(a, b).is_eq());
            if classes.len() < 2 {
                return Err(p.labels.error(format!(
                    "all {} labels are {}: a probe needs at least two classes",
                    x.n,
                    raw[0].to_text()
                ))
                .help("a probe tells classes apart: check how the labels were made (count(labels, x) tells how many of each)"));
            }
            if classes.len() > 1000 {
                return Err(p.labels.error(format!("{} classes (at most 1000)", classes.len())));
            }
            let idx =
                raw.iter().map(|l| classes.binary_search_by(|c| cmp_label(c, l)).unwrap_or(0)).collect::<Vec<_>>();
            (Targets::Classes(idx, classes.len()), classes)
        }
        Kind::Linear => {
            let ys = numeric_labels(&p.labels, &raw)?;
            (Targets::Values(ys), Vec::new())
        }
    };
    let settings = Settings { kind, l1: *p.l1, l2: *p.l2 };
    let groups: Vec<Vec<usize>> = match &targets {
        Targets::Classes(c, k) => (0..*k).map(|j| (0..x.n).filter(|&i| c[i] == j).collect()).collect(),
        Targets::Values(_) => vec![(0..x.n).collect()],
    };
    let name = if kind == Kind::Logistic { "accuracy" } else { "r2" };
    let mut extra: Vec<(String, Value)> = Vec::new();
    let train_idx: Vec<usize> = match (*p.split, *p.folds) {
        (Some(_), Some(_)) => return Err(p.folds.error("give `split` or `folds`, not both")),
        (Some(f), None) => {
            if !(f > 0.0 && f < 1.0) {
                return Err(p.split.error(format!("`split` is the fraction held out, between 0 and 1; found {f}")));
            }
            // Whole folds of size ~f: fold 0 of round(1/f)... is not exact,
            // so deal each class's shuffled rows and hold out its first f.
            let mut rng = stream_of(*p.seed, ctx);
            let mut test = Vec::new();
            let mut train = Vec::new();
            for mut g in groups {
                g.shuffle(&mut rng);
                let h = ((g.len() as f64) * f).round() as usize;
                let h = h.min(g.len().saturating_sub(1));
                test.extend_from_slice(&g[..h]);
                train.extend_from_slice(&g[h..]);
            }
            test.sort_unstable();
            train.sort_unstable();
            if test.is_empty() {
                return Err(p.split.error(format!("holding out {f} of {} examples leaves none to test on", x.n)));
            }
            let fitted = fit(&x.take(&train), &targets.take(&train), &settings).map_err(ToolError::new)?;
            let q = quality(&fitted, &x.take(&test), &targets.take(&test));
            extra.push((format!("test_{name}"), Value::Num(q)));
            extra.push(("test".into(), Value::nums(test.iter().map(|&i| i as f64))));
            train
        }
        (None, Some(k)) => {
            let smallest = groups.iter().map(Vec::len).min().unwrap_or(0);
            if k < 2 || k as usize > x.n {
                return Err(p.folds.error(format!("`folds` must be between 2 and the {} examples; found {k}", x.n)));
            }
            let k = k as usize;
            if kind == Kind::Logistic && smallest < k {
                return Err(p
                    .folds
                    .error(format!("the rarest class has {smallest} examples, fewer than the {k} folds"))
                    .help("use fewer folds, or more examples of that class"));
            }
            let mut rng = stream_of(*p.seed, ctx);
            let fold_of = deal(groups, k, &mut rng);
            let mut scores = Vec::with_capacity(k);
            for fold in 0..k {
                let (test, train): (Vec<usize>, Vec<usize>) = (0..x.n).partition(|&i| fold_of[i] == fold);
                let fitted = fit(&x.take(&train), &targets.take(&train), &settings).map_err(ToolError::new)?;
                scores.push(quality(&fitted, &x.take(&test), &targets.take(&test)));
            }
            extra.push((format!("cv_{name}"), Value::Num(scores.iter().sum::<f64>() / k as f64)));
            extra.push(("fold_scores".into(), Value::nums(scores)));
            (0..x.n).collect()
        }
        (None, None) => (0..x.n).collect(),
    };
    let (tx, tt) = if train_idx.len() == x.n { (x, targets) } else { (x.take(&train_idx), targets.take(&train_idx)) };
    let fitted = fit(&tx, &tt, &settings).map_err(ToolError::new)?;
    let train_q = quality(&fitted, &tx, &tt);
    let kept = (0..tx.k).filter(|&j| (0..fitted.m).any(|r| fitted.w[r * tx.k + j] != 0.0)).count();
    let weights = ndarray::Array2::from_shape_fn((fitted.m, tx.k), |(r, j)| fitted.w[r * tx.k + j] as f32);
    let mut fields: Vec<(String, Value)> = vec![
        ("kind".into(), Value::str(p.kind.as_str())),
        ("weights".into(), Value::tensor(weights.into_dyn())),
        ("bias".into(), Value::nums(fitted.b.iter().copied())),
        ("l1".into(), Value::Num(*p.l1)),
        ("l2".into(), Value::Num(*p.l2)),
        ("kept".into(), Value::Num(kept as f64)),
        ("n".into(), Value::Num(tx.n as f64)),
        ("features".into(), Value::Num(tx.k as f64)),
        (format!("train_{name}"), Value::Num(train_q)),
        ("solver".into(), Value::str(fitted.solver)),
        ("converged".into(), Value::Bool(fitted.converged)),
    ];
    if kind == Kind::Logistic {
        fields.push(("classes".into(), Value::list(classes)));
    }
    if fitted.iterations > 1 {
        fields.push(("iterations".into(), Value::Num(fitted.iterations as f64)));
    }
    fields.extend(extra);
    Ok(Value::record(fields))
}

/// A probe record's parts, checked.
struct Probe {
    kind: Kind,
    w: Vec<f64>,
    b: Vec<f64>,
    m: usize,
    k: usize,
    classes: Vec<Value>,
}

fn read_probe(v: &Bound<Value>) -> Result<Probe, ToolError> {
    let bad = |what: &str| v.error(format!("not a probe: {what}")).help("pass the record probe(...) returned");
    let Value::Record(r) = &**v else {
        return Err(bad(&format!("expected a record, found {}", v.type_name())));
    };
    let kind = match r.get("kind") {
        Some(Value::Str(s)) if &**s == "logistic" => Kind::Logistic,
        Some(Value::Str(s)) if &**s == "linear" => Kind::Linear,
        _ => return Err(bad("its `kind` is not \"logistic\" or \"linear\"")),
    };
    let Some(Value::Tensor(w)) = r.get("weights") else { return Err(bad("it has no `weights` tensor")) };
    if w.ndim() != 2 {
        return Err(bad("its `weights` are not [rows, features]"));
    }
    let (m, k) = (w.shape()[0], w.shape()[1]);
    let b = r.get("bias").map(to_numbers).transpose().map_err(|e| bad(&e))?.unwrap_or_default();
    if b.len() != m || m == 0 {
        return Err(bad("its `bias` does not have one number per weight row"));
    }
    let classes = match (kind, r.get("classes")) {
        (Kind::Logistic, Some(Value::List(c))) if c.len() == m.max(2) && (m == 1 || c.len() == m) => c.to_vec(),
        (Kind::Logistic, _) => return Err(bad("its `classes` do not match its weights")),
        (Kind::Linear, _) if m == 1 => Vec::new(),
        (Kind::Linear, _) => return Err(bad("a linear probe has one weight row")),
    };
    Ok(Probe { kind, w: w.iter().map(|x| *x as f64).collect(), b, m, k, classes })
}

fn probe_rows(pr: &Probe, f: &Bound<Value>) -> Result<Rows, ToolError> {
    let x = rows(f)?;
    if x.k != pr.k {
        return Err(f.error(format!("{} features per example; the probe was trained on {}", x.k, pr.k)));
    }
    Ok(x)
}

tool! {
    /// What a probe predicts for `features` (as probe() takes them): a
    /// label per example (logistic) or a number (linear).
    ///
    /// ```assay
    /// let p = probe([[1], [2], [-1], [-2]], [1, 1, 0, 0])
    /// assert predict(p, [[3], [-3]]) == [1, 0]
    /// ```
    predict in Statistics -> Type::list(Type::Any);
    {
        /// a record from probe()
        probe: Value [Type::record()],
        /// examples: a tensor [N, K] or a list of N vectors
        features: Value [Type::Any],
    }
    predict
}

fn predict(p: predict::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let pr = read_probe(&p.probe)?;
    let x = probe_rows(&pr, &p.features)?;
    let z = scores(&x, &pr.w, &pr.b, pr.m);
    Ok(Value::list(match pr.kind {
        Kind::Logistic => (0..x.n).map(|i| pr.classes[predicted_class(&z[i * pr.m..(i + 1) * pr.m])].clone()).collect(),
        Kind::Linear => z.into_iter().map(Value::Num).collect(),
    }))
}

tool! {
    /// A probe's score on labelled examples: {accuracy, correct, n} for a
    /// logistic probe (a label it never saw counts as wrong), {r2, mse, n}
    /// for a linear one.
    ///
    /// ```assay
    /// let p = probe([[1], [2], [-1], [-2]], ["yes", "yes", "no", "no"])
    /// let e = evaluate(p, [[3], [-3], [0.5]], ["yes", "no", "no"])
    /// assert e.correct == 2 and e.n == 3
    /// ```
    evaluate in Statistics -> Type::record();
    {
        /// a record from probe()
        probe: Value [Type::record()],
        /// examples: a tensor [N, K] or a list of N vectors
        features: Value [Type::Any],
        /// their true labels
        labels: Value [Type::Any],
    }
    evaluate
}

fn evaluate(p: evaluate::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let pr = read_probe(&p.probe)?;
    let x = probe_rows(&pr, &p.features)?;
    let truth = labels(&p.labels, x.n)?;
    let z = scores(&x, &pr.w, &pr.b, pr.m);
    match pr.kind {
        Kind::Logistic => {
            let correct = (0..x.n)
                .filter(|&i| {
                    cmp_label(&pr.classes[predicted_class(&z[i * pr.m..(i + 1) * pr.m])], &truth[i]).is_eq()
                        && std::mem::discriminant(&pr.classes[0]) == std::mem::discriminant(&truth[i])
                })
                .count();
            Ok(Value::record([
                ("accuracy", Value::Num(correct as f64 / x.n as f64)),
                ("correct", Value::Num(correct as f64)),
                ("n", Value::Num(x.n as f64)),
            ]))
        }
        Kind::Linear => {
            let ys = numeric_labels(&p.labels, &truth)?;
            let mse = z.iter().zip(&ys).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / x.n as f64;
            Ok(Value::record([
                ("r2", Value::Num(r2(&z, &ys))),
                ("mse", Value::Num(mse)),
                ("n", Value::Num(x.n as f64)),
            ]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_stratified_and_deterministic() {
        use rand::SeedableRng;
        let groups = vec![(0..10).collect::<Vec<_>>(), (10..16).collect()];
        let a = deal(groups.clone(), 3, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
        let b = deal(groups, 3, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
        assert_eq!(a, b);
        for f in 0..3 {
            let first = (0..10).filter(|&i| a[i] == f).count();
            let second = (10..16).filter(|&i| a[i] == f).count();
            assert!((3..=4).contains(&first) && second == 2, "fold {f}: {first} and {second}");
        }
    }
}
