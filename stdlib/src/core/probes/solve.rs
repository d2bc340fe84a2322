//! The probes' solvers: the objective (loss + penalties, the bias profiled
//! out), argmin's L-BFGS / OWL-QN over it, and ridge by the normal
//! equations. The tools in `mod.rs` read the arguments and call [`fit`].

/// The size of the normal equations' system (the smaller of examples and
/// features) above which a linear probe is fitted by L-BFGS instead.
const MAX_NORMAL: usize = 4096;
const MAX_ITER: usize = 5_000;

/// Features as N rows of K numbers, row-major.
pub(super) struct Rows {
    pub(super) x: Vec<f64>,
    pub(super) n: usize,
    pub(super) k: usize,
}

impl Rows {
    pub(super) fn row(&self, i: usize) -> &[f64] {
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
    pub(super) fn take(&self, idx: &[usize]) -> Rows {
        let mut x = Vec::with_capacity(idx.len() * self.k);
        for &i in idx {
            x.extend_from_slice(self.row(i));
        }
        Rows { x, n: idx.len(), k: self.k }
    }
}

/// A fitted probe: `w` is m rows of k weights (m = 1 for a linear probe or
/// two classes), `b` m biases; weights are kept as f32, as the probe's
/// record holds them, so that predictions from the record equal these.
pub(super) struct Fit {
    pub(super) w: Vec<f64>,
    pub(super) b: Vec<f64>,
    pub(super) m: usize,
    pub(super) solver: &'static str,
    pub(super) iterations: usize,
    pub(super) converged: bool,
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Kind {
    Logistic,
    Linear,
}

pub(super) struct Settings {
    pub(super) kind: Kind,
    pub(super) l1: f64,
    pub(super) l2: f64,
}

/// Targets for fitting: a class index per row (logistic) or a number.
pub(super) enum Targets {
    Classes(Vec<usize>, usize),
    Values(Vec<f64>),
}

impl Targets {
    pub(super) fn take(&self, idx: &[usize]) -> Targets {
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
pub(super) fn scores(x: &Rows, w: &[f64], b: &[f64], m: usize) -> Vec<f64> {
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

pub(super) fn fit(x: &Rows, t: &Targets, s: &Settings) -> Result<Fit, String> {
    match (t, s.kind) {
        (Targets::Classes(_, classes), Kind::Logistic) => lbfgs(x, t, if *classes == 2 { 1 } else { *classes }, s),
        (Targets::Values(y), Kind::Linear) if s.l1 == 0.0 && x.k.min(x.n) <= MAX_NORMAL => {
            ridge(x, y, s.l2).ok_or_else(|| "the normal equations could not be solved".to_string())
        }
        (Targets::Values(_), Kind::Linear) => lbfgs(x, t, 1, s),
        _ => Err("labels do not match the probe's kind".into()),
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
}
