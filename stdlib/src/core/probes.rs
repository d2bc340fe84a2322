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

use super::declare::{tool, ToolCtx, ToolResult};
use super::random::stream_of;

/// Rows × features a probe may be trained on (as f64: 400 MB).
const MAX_CELLS: usize = 50_000_000;
/// The size of the normal equations' system (the smaller of examples and
/// features) above which a linear probe is fitted by L-BFGS instead.
const MAX_NORMAL: usize = 4096;
const MAX_ITER: usize = 5_000;

/// Features as N rows of K numbers, row-major.
struct Rows {
    x: Vec<f64>,
    n: usize,
    k: usize,
}

impl Rows {
    fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.k..(i + 1) * self.k]
    }
    fn column_means(&self) -> Vec<f64> {
        let mut m = vec![0.0; self.k];
        for i in 0..self.n {
            for (a, v) in m.iter_mut().zip(self.row(i)) {
                *a += v;
            }
        }
        m.iter().map(|v| v / self.n.max(1) as f64).collect()
    }
    fn take(&self, idx: &[usize]) -> Rows {
        let mut x = Vec::with_capacity(idx.len() * self.k);
        for &i in idx {
            x.extend_from_slice(self.row(i));
        }
        Rows { x, n: idx.len(), k: self.k }
    }
}

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

/// Total order on labels of one kind (numbers numerically).
fn cmp_label(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Num(x), Value::Num(y)) => x.total_cmp(y),
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}

/// A fitted probe: `w` is m rows of k weights (m = 1 for a linear probe or
/// two classes), `b` m biases; weights are kept as f32, as the probe's
/// record holds them, so that predictions from the record equal these.
struct Fit {
    w: Vec<f64>,
    b: Vec<f64>,
    m: usize,
    solver: &'static str,
    iterations: usize,
    converged: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Logistic,
    Linear,
}

struct Settings {
    kind: Kind,
    l1: f64,
    l2: f64,
}

/// Targets for fitting: a class index per row (logistic) or a number.
enum Targets {
    Classes(Vec<usize>, usize),
    Values(Vec<f64>),
}

impl Targets {
    fn take(&self, idx: &[usize]) -> Targets {
        match self {
            Targets::Classes(c, k) => Targets::Classes(idx.iter().map(|&i| c[i]).collect(), *k),
            Targets::Values(y) => Targets::Values(idx.iter().map(|&i| y[i]).collect()),
        }
    }
}

fn round32(v: Vec<f64>) -> Vec<f64> {
    v.into_iter().map(|x| x as f32 as f64).collect()
}

/// Scores (logits, or the prediction) of every row: n × m.
fn scores(x: &Rows, w: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut z = vec![0.0; x.n * m];
    for i in 0..x.n {
        let r = x.row(i);
        for c in 0..m {
            let wc = &w[c * x.k..(c + 1) * x.k];
            z[i * m + c] = b[c] + r.iter().zip(wc).map(|(a, b)| a * b).sum::<f64>();
        }
    }
    z
}

/// Weights, the objective there, and its gradient.
type Evaluation = (Vec<f64>, f64, Vec<f64>);

/// The smooth part of the objective as a function of the weights alone:
/// F(W) = min_b loss(W, b) + l2/2·‖W‖². The bias is unpenalised, so it is
/// profiled out (solved exactly for each W: in closed form for a linear
/// probe, by Newton's method for a logistic one); by the envelope theorem
/// F's gradient is the loss's gradient in W at that bias. The solver then
/// sees only the weights, on which the L1 penalty (OWL-QN) applies.
struct Objective<'a> {
    x: &'a Rows,
    t: &'a Targets,
    m: usize,
    l2: f64,
    /// The last bias found (a warm start for the next) and the last
    /// evaluation, which the solver asks for twice (cost, then gradient).
    bias: std::cell::RefCell<Vec<f64>>,
    last: std::cell::RefCell<Option<Evaluation>>,
}

/// Scores n × m of `x` under weights `w` (no bias).
fn raw_scores(x: &Rows, w: &[f64], m: usize) -> Vec<f64> {
    scores(x, w, &vec![0.0; m], m)
}

/// Per-example loss and its derivative in the scores (n × m), at bias `b`.
fn loss_at(z: &[f64], t: &Targets, b: &[f64], m: usize, r: &mut [f64]) -> f64 {
    let mut loss = 0.0;
    match t {
        Targets::Values(y) => {
            for (i, yi) in y.iter().enumerate() {
                let d = z[i] + b[0] - yi;
                loss += 0.5 * d * d;
                r[i] = d;
            }
        }
        Targets::Classes(c, _) if m == 1 => {
            for (i, ci) in c.iter().enumerate() {
                let (zi, yi) = (z[i] + b[0], (*ci == 1) as u8 as f64);
                // log(1 + e^z) − y z, stably.
                loss += zi.max(0.0) + (-zi.abs()).exp().ln_1p() - yi * zi;
                r[i] = 1.0 / (1.0 + (-zi).exp()) - yi;
            }
        }
        Targets::Classes(c, _) => {
            for (i, ci) in c.iter().enumerate() {
                let zi: Vec<f64> = (0..m).map(|j| z[i * m + j] + b[j]).collect();
                let top = zi.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = zi.iter().map(|v| (v - top).exp()).sum();
                loss += top + sum.ln() - zi[*ci];
                for j in 0..m {
                    r[i * m + j] = (zi[j] - top).exp() / sum - (j == *ci) as u8 as f64;
                }
            }
        }
    }
    loss
}

/// The bias that minimises the loss for scores `z`, from `b`: the mean
/// residual (linear), or Newton's method on each class's bias (the loss is
/// convex in the bias; each step is a damped diagonal Newton step).
fn best_bias(z: &[f64], t: &Targets, m: usize, mut b: Vec<f64>) -> Vec<f64> {
    let n = z.len() / m;
    if let Targets::Values(y) = t {
        return vec![y.iter().zip(z).map(|(y, z)| y - z).sum::<f64>() / n.max(1) as f64];
    }
    let mut r = vec![0.0; z.len()];
    for _ in 0..100 {
        loss_at(z, t, &b, m, &mut r);
        // Gradient and Hessian in the biases: Σ_i (p_i − y_i) and
        // Σ_i diag(p_i) − p_i p_iᵀ (p read back from the residuals).
        let g: Vec<f64> = (0..m).map(|j| (0..n).map(|i| r[i * m + j]).sum()).collect();
        let worst = g.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        if worst <= 1e-12 * n.max(1) as f64 {
            break;
        }
        let p = |i: usize, j: usize| r[i * m + j] + target_is(t, i, j, m);
        let step: Vec<f64> = if m <= 64 {
            let mut h = nalgebra::DMatrix::<f64>::zeros(m, m);
            for i in 0..n {
                for j in 0..m {
                    let pj = p(i, j);
                    h[(j, j)] += pj;
                    for l in 0..m {
                        h[(j, l)] -= pj * p(i, l);
                    }
                }
            }
            // Softmax biases are free along (1, ..., 1) (a constant added to
            // every class): a small ridge keeps the step off that direction,
            // so the biases keep the sum they start from (0), as
            // scikit-learn's do.
            for j in 0..m {
                h[(j, j)] += 1e-9 * n.max(1) as f64;
            }
            let gv = nalgebra::DVector::from_column_slice(&g);
            match h.cholesky() {
                Some(c) => c.solve(&gv).iter().copied().collect(),
                None => g.iter().map(|v| v / n.max(1) as f64).collect(),
            }
        } else {
            (0..m)
                .map(|j| {
                    let h: f64 = (0..n).map(|i| p(i, j) * (1.0 - p(i, j))).sum();
                    g[j] / h.max(1e-12)
                })
                .collect()
        };
        for (bj, sj) in b.iter_mut().zip(&step) {
            *bj -= sj.clamp(-5.0, 5.0);
        }
    }
    b
}

/// Whether example i's target is class j (with one logit: class 1).
fn target_is(t: &Targets, i: usize, j: usize, m: usize) -> f64 {
    match t {
        Targets::Classes(c, _) if m == 1 => (c[i] == 1) as u8 as f64,
        Targets::Classes(c, _) => (c[i] == j) as u8 as f64,
        Targets::Values(_) => 0.0,
    }
}

impl Objective<'_> {
    fn eval(&self, w: &[f64]) -> (f64, Vec<f64>) {
        if let Some((p, f, g)) = &*self.last.borrow() {
            if p.as_slice() == w {
                return (*f, g.clone());
            }
        }
        let (x, m) = (self.x, self.m);
        let z = raw_scores(x, w, m);
        let b = best_bias(&z, self.t, m, self.bias.borrow().clone());
        let mut r = vec![0.0; x.n * m];
        let f = loss_at(&z, self.t, &b, m, &mut r) + 0.5 * self.l2 * w.iter().map(|v| v * v).sum::<f64>();
        let mut g: Vec<f64> = w.iter().map(|v| self.l2 * v).collect();
        for i in 0..x.n {
            let row = x.row(i);
            for j in 0..m {
                let ri = r[i * m + j];
                if ri != 0.0 {
                    for (gv, a) in g[j * x.k..(j + 1) * x.k].iter_mut().zip(row) {
                        *gv += ri * a;
                    }
                }
            }
        }
        *self.bias.borrow_mut() = b;
        *self.last.borrow_mut() = Some((w.to_vec(), f, g.clone()));
        (f, g)
    }
}

impl argmin::core::CostFunction for Objective<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, w: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        Ok(self.eval(w).0)
    }
}

impl argmin::core::Gradient for Objective<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, w: &Vec<f64>) -> Result<Vec<f64>, argmin::core::Error> {
        Ok(self.eval(w).1)
    }
}

/// Argmin's L-BFGS (OWL-QN with `l1 > 0`) on the weights, from zero, on
/// centred features (the same problem: the bias takes up the means, so it
/// is not coupled to the weights through the features' offsets).
fn lbfgs(x: &Rows, t: &Targets, m: usize, s: &Settings) -> Result<Fit, String> {
    use argmin::core::{Executor, State, TerminationReason, TerminationStatus};
    use argmin::solver::linesearch::MoreThuenteLineSearch;
    use argmin::solver::quasinewton::LBFGS;
    let mu = x.column_means();
    let centred = Rows { x: x.x.iter().enumerate().map(|(c, v)| v - mu[c % x.k]).collect(), n: x.n, k: x.k };
    let objective = || Objective {
        x: &centred,
        t,
        m,
        l2: s.l2,
        bias: std::cell::RefCell::new(vec![0.0; m]),
        last: std::cell::RefCell::new(None),
    };
    let problem = objective();
    let scale = x.n.max(1) as f64;
    let mut solver = LBFGS::new(MoreThuenteLineSearch::new(), 10)
        .with_tolerance_grad(1e-9 * scale)
        .and_then(|l| l.with_tolerance_cost(1e-13 * scale))
        .map_err(|e| e.to_string())?;
    if s.l1 > 0.0 {
        solver = solver.with_l1_regularization(s.l1).map_err(|e| e.to_string())?;
    }
    let res = Executor::new(problem, solver)
        .configure(|st| st.param(vec![0.0; m * x.k]).max_iters(MAX_ITER as u64))
        .run()
        .map_err(|e| format!("the solver failed: {e}"))?;
    let state = res.state();
    let w = state.get_best_param().cloned().unwrap_or_else(|| vec![0.0; m * x.k]);
    let solver_converged =
        matches!(state.get_termination_status(), TerminationStatus::Terminated(TerminationReason::SolverConverged));
    let iterations = state.get_iter() as usize;
    // Whether the weights are optimal, whatever stopped the solver (its
    // line search gives up when rounding hides the descent): the largest
    // violation of the optimality conditions, against the one at zero.
    let violation = |w: &[f64]| {
        let g = objective().eval(w).1;
        g.iter()
            .zip(w)
            .map(|(g, w)| if *w != 0.0 { (g + s.l1 * w.signum()).abs() } else { (g.abs() - s.l1).max(0.0) })
            .fold(0.0f64, f64::max)
    };
    let converged = solver_converged || violation(&w) <= 1e-5 * violation(&vec![0.0; m * x.k]).max(1.0);
    // The bias for the best weights, on the centred features, moved back.
    let z = raw_scores(&centred, &w, m);
    let mut b = best_bias(&z, t, m, vec![0.0; m]);
    for (r, br) in b.iter_mut().enumerate() {
        *br -= w[r * x.k..(r + 1) * x.k].iter().zip(&mu).map(|(w, u)| w * u).sum::<f64>();
    }
    Ok(Fit {
        w: round32(w),
        b: round32(b),
        m,
        solver: if s.l1 > 0.0 { "owl-qn" } else { "lbfgs" },
        iterations,
        converged,
    })
}

/// Ridge by the normal equations on centred features (bias unpenalised):
/// (XᵀX + l2·I) w = Xᵀy with K×K matrices, or, with fewer examples than
/// features, the same solution from the N×N system w = Xᵀ(XXᵀ + l2·I)⁻¹y.
fn ridge(x: &Rows, y: &[f64], l2: f64) -> Option<Fit> {
    let (n, k) = (x.n, x.k);
    let mean_x = x.column_means();
    let mean_y = y.iter().sum::<f64>() / n as f64;
    let xc = nalgebra::DMatrix::from_fn(n, k, |i, j| x.x[i * k + j] - mean_x[j]);
    let yc = nalgebra::DVector::from_iterator(n, y.iter().map(|v| v - mean_y));
    let solve = |mut a: nalgebra::DMatrix<f64>, rhs: nalgebra::DVector<f64>| -> Option<nalgebra::DVector<f64>> {
        for j in 0..a.nrows() {
            a[(j, j)] += l2;
        }
        match a.clone().cholesky() {
            Some(c) => Some(c.solve(&rhs)),
            // Singular without a penalty: the minimum-norm least-squares solution.
            None => a.svd(true, true).solve(&rhs, 1e-12).ok(),
        }
    };
    let w: Vec<f64> = if n < k {
        let alpha = solve(&xc * xc.transpose(), yc)?;
        (xc.transpose() * alpha).iter().copied().collect()
    } else {
        solve(xc.transpose() * &xc, xc.transpose() * yc)?.iter().copied().collect()
    };
    let b = mean_y - w.iter().zip(&mean_x).map(|(a, b)| a * b).sum::<f64>();
    Some(Fit { w: round32(w), b: round32(vec![b]), m: 1, solver: "normal equations", iterations: 1, converged: true })
}

fn fit(x: &Rows, t: &Targets, s: &Settings) -> Result<Fit, String> {
    match (t, s.kind) {
        (Targets::Classes(_, classes), Kind::Logistic) => lbfgs(x, t, if *classes == 2 { 1 } else { *classes }, s),
        (Targets::Values(y), Kind::Linear) if s.l1 == 0.0 && x.k.min(x.n) <= MAX_NORMAL => {
            ridge(x, y, s.l2).ok_or_else(|| "the normal equations could not be solved".to_string())
        }
        (Targets::Values(_), Kind::Linear) => lbfgs(x, t, 1, s),
        _ => Err("labels do not match the probe's kind".into()),
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
            let ys = raw
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Num(n) => Ok(*n),
                    other => Err(p
                        .labels
                        .error(format!("label {i} is a {}; a linear probe regresses numbers", other.type_name()))
                        .help("kind: \"logistic\" classifies labels")),
                })
                .collect::<Result<Vec<f64>, _>>()?;
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
            let ys = truth
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Num(n) => Ok(*n),
                    other => Err(p
                        .labels
                        .error(format!("label {i} is a {}; a linear probe's labels are numbers", other.type_name()))),
                })
                .collect::<Result<Vec<f64>, _>>()?;
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

    fn data(n: usize, k: usize, f: impl Fn(usize, usize) -> f64) -> Rows {
        Rows { x: (0..n * k).map(|c| f(c / k, c % k)).collect(), n, k }
    }

    #[test]
    fn the_profiled_bias_is_the_optimum_and_l2_weights_match_the_gradient_condition() {
        // At the optimum of Σ loss + l2/2‖w‖² the gradient in w and in b
        // vanish: Xᵀr + l2·w = 0 and Σr = 0 (checked on the raw features).
        let x =
            data(60, 3, |i, j| ((i * 7 + j * 13) % 11) as f64 / 5.0 + 3.0 + if j == 0 { (i % 2) as f64 } else { 0.0 });
        let c: Vec<usize> = (0..60).map(|i| (i % 2 + (i % 7 == 0) as usize) % 2).collect();
        let t = Targets::Classes(c, 2);
        let f = lbfgs(&x, &t, 1, &Settings { kind: Kind::Logistic, l1: 0.0, l2: 0.5 }).expect("fits");
        assert!(f.converged, "{} iterations", f.iterations);
        let z = scores(&x, &f.w, &f.b, 1);
        let mut r = vec![0.0; 60];
        loss_at(&z, &t, &[0.0], 1, &mut r);
        assert!(r.iter().sum::<f64>().abs() < 1e-4, "bias gradient {}", r.iter().sum::<f64>());
        for j in 0..3 {
            let g: f64 = (0..60).map(|i| r[i] * x.row(i)[j]).sum::<f64>() + 0.5 * f.w[j];
            assert!(g.abs() < 1e-4, "weight {j} gradient {g}");
        }
    }

    #[test]
    fn l1_zeroes_weights_exactly_and_ridge_solves_exactly() {
        let x = data(50, 4, |i, j| if j == 0 { i as f64 / 10.0 } else { ((i * 31 + j * 17) % 13) as f64 / 13.0 });
        let y: Vec<f64> = (0..50).map(|i| 3.0 * i as f64 / 10.0 + 2.0).collect();
        let s = Settings { kind: Kind::Linear, l1: 1.0, l2: 0.0 };
        let f = lbfgs(&x, &Targets::Values(y.clone()), 1, &s).expect("fits");
        assert!(f.w[1..].iter().all(|w| *w == 0.0), "{:?}", f.w);
        assert!(f.w[0] > 2.9, "{:?}", f.w);
        let r = ridge(&x, &y, 0.0).expect("solves");
        assert!((r.w[0] - 3.0).abs() < 1e-5 && (r.b[0] - 2.0).abs() < 1e-4, "{:?} {:?}", r.w, r.b);
        // The same ridge problem by L-BFGS: the same weights.
        let l = lbfgs(&x, &Targets::Values(y.clone()), 1, &Settings { kind: Kind::Linear, l1: 0.0, l2: 2.0 })
            .expect("fits");
        let e = ridge(&x, &y, 2.0).expect("solves");
        for (a, b) in l.w.iter().chain(&l.b).zip(e.w.iter().chain(&e.b)) {
            assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{:?} {:?} vs {:?} {:?}", l.w, l.b, e.w, e.b);
        }
    }

    #[test]
    fn ridge_with_fewer_examples_than_features_meets_its_optimality_condition() {
        // Xcᵀ(Xc·w − yc) + l2·w = 0, from the N×N (dual) system.
        let x = data(5, 8, |i, j| ((i * 5 + j * 3) % 7) as f64 - 2.0 + (i == j) as u8 as f64);
        let y: Vec<f64> = (0..5).map(|i| i as f64 * 1.5 - 1.0).collect();
        let f = ridge(&x, &y, 0.7).expect("solves");
        let z = scores(&x, &f.w, &f.b, 1);
        let r: Vec<f64> = z.iter().zip(&y).map(|(a, b)| a - b).collect();
        assert!(r.iter().sum::<f64>().abs() < 1e-4);
        for j in 0..8 {
            let g: f64 = (0..5).map(|i| r[i] * x.row(i)[j]).sum::<f64>() + 0.7 * f.w[j];
            assert!(g.abs() < 1e-4, "feature {j}: {g}");
        }
    }

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
