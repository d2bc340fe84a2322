//! Statistics over numbers (lists, ranges, tensors). Reductions take an
//! optional `axis` for tensors; without it they reduce everything.

use assay_interpreter::{Args, Category, Registry, Signature, ToolCtx, ToolError, Type, Value};
use ndarray::Axis;

use super::FnTool;

fn nonempty(a: &Args, i: &str) -> Result<Vec<f64>, ToolError> {
    let xs = a.numbers(i)?;
    if xs.is_empty() {
        return Err(ToolError::arg(i, "needs at least one number, the list is empty"));
    }
    Ok(xs)
}

/// Reduces a tensor along `axis` (argument 1) with `f`, or everything.
fn reduce(a: &Args, f: fn(&[f64]) -> f64) -> Result<Value, ToolError> {
    if let (Value::Tensor(t), Some(axis)) = (a.get("xs"), a.opt_int("axis")?) {
        let nd = t.ndim() as i64;
        let ax = if axis < 0 { nd + axis } else { axis };
        if ax < 0 || ax >= nd {
            return Err(ToolError::arg(
                "axis",
                format!("axis {axis} is out of range for a tensor with {nd} dimensions"),
            ));
        }
        if t.shape()[ax as usize] == 0 {
            return Err(ToolError::arg("axis", "cannot reduce along an empty axis"));
        }
        let out = t.map_axis(Axis(ax as usize), |lane| {
            let v: Vec<f64> = lane.iter().map(|x| *x as f64).collect();
            f(&v) as f32
        });
        return Ok(if out.ndim() == 0 {
            Value::Num(out.iter().next().copied().unwrap_or(0.0) as f64)
        } else {
            Value::tensor(out)
        });
    }
    if !a.is_none("axis") && !matches!(a.get("xs"), Value::Tensor(_)) {
        return Err(ToolError::arg("axis", "`axis` applies to tensors only").help("make one with tensor([[...], ...])"));
    }
    Ok(Value::Num(f(&nonempty(a, "xs")?)))
}

fn sum_f(x: &[f64]) -> f64 {
    x.iter().sum()
}
fn mean_f(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}
fn max_f(x: &[f64]) -> f64 {
    x.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}
fn min_f(x: &[f64]) -> f64 {
    x.iter().copied().fold(f64::INFINITY, f64::min)
}
fn argmax_f(x: &[f64]) -> f64 {
    let mut best = 0;
    for (i, v) in x.iter().enumerate() {
        if *v > x[best] {
            best = i;
        }
    }
    best as f64
}
fn argmin_f(x: &[f64]) -> f64 {
    let mut best = 0;
    for (i, v) in x.iter().enumerate() {
        if *v < x[best] {
            best = i;
        }
    }
    best as f64
}

macro_rules! reduction {
    ($sig:ident, $fun:ident, $name:literal, $doc:literal, $ex:literal, $f:expr) => {
        fn $sig() -> Signature {
            Signature::new($name, Category::Statistics, $doc)
                .param("xs", Type::numbers(), "numbers: a list, range or tensor")
                .opt("axis", Type::Num, Value::None, "for a tensor: reduce along this axis only")
                .returns(Type::OneOf(vec![Type::Num, Type::Tensor]))
                .example($ex)
        }
        fn $fun(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
            reduce(a, $f)
        }
    };
}

reduction!(
    sum_sig,
    sum,
    "sum",
    "Sum of the numbers.",
    "assert sum([1, 2, 3]) == 6\nassert sum(tensor([[1, 2], [3, 4]]), axis: 0) == tensor([4, 6])",
    sum_f
);
reduction!(mean_sig, mean, "mean", "Arithmetic mean.", "assert mean([1, 2, 3, 6]) == 3", mean_f);
reduction!(max_sig, max, "max", "Largest number.", "assert max([3, 9, 2]) == 9", max_f);
reduction!(min_sig, min, "min", "Smallest number.", "assert min([3, 9, 2]) == 2", min_f);
reduction!(
    argmax_sig,
    argmax,
    "argmax",
    "Index of the largest number (the first, if tied).",
    "assert argmax([3, 9, 2, 9]) == 1",
    argmax_f
);
reduction!(
    argmin_sig,
    argmin,
    "argmin",
    "Index of the smallest number (the first, if tied).",
    "assert argmin([3, 9, 2]) == 2",
    argmin_f
);

fn var_of(x: &[f64], ddof: f64) -> f64 {
    let m = mean_f(x);
    x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() as f64 - ddof)
}

fn std_sig() -> Signature {
    Signature::new("std", Category::Statistics, "Standard deviation; `ddof: 1` for the sample estimate.")
        .param("xs", Type::numbers(), "numbers")
        .opt("ddof", Type::Num, Value::Num(0.0), "delta degrees of freedom (0 population, 1 sample)")
        .returns(Type::Num)
        .example("assert std([2, 4, 4, 4, 5, 5, 7, 9]) == 2")
}
fn std(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let xs = nonempty(a, "xs")?;
    let ddof = a.num("ddof")?;
    if xs.len() as f64 <= ddof {
        return Err(ToolError::arg("ddof", format!("needs more than {ddof} numbers, found {}", xs.len())));
    }
    Ok(Value::Num(var_of(&xs, ddof).sqrt()))
}

fn var_sig() -> Signature {
    Signature::new("var", Category::Statistics, "Variance; `ddof: 1` for the sample estimate.")
        .param("xs", Type::numbers(), "numbers")
        .opt("ddof", Type::Num, Value::Num(0.0), "delta degrees of freedom")
        .returns(Type::Num)
        .example("assert var([1, 3]) == 1\nassert var([1, 3], ddof: 1) == 2")
}
fn var(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let xs = nonempty(a, "xs")?;
    let ddof = a.num("ddof")?;
    if xs.len() as f64 <= ddof {
        return Err(ToolError::arg("ddof", format!("needs more than {ddof} numbers, found {}", xs.len())));
    }
    Ok(Value::Num(var_of(&xs, ddof)))
}

fn sorted(xs: &[f64]) -> Vec<f64> {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

fn quantile_of(sorted: &[f64], q: f64) -> f64 {
    // Linear interpolation between closest ranks (numpy's default).
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn median_sig() -> Signature {
    Signature::new(
        "median",
        Category::Statistics,
        "The middle value (mean of the two middle values for an even count).",
    )
    .param("xs", Type::numbers(), "numbers")
    .returns(Type::Num)
    .example("assert median([5, 1, 3]) == 3\nassert median([1, 2, 3, 4]) == 2.5")
}
fn median(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    Ok(Value::Num(quantile_of(&sorted(&nonempty(a, "xs")?), 0.5)))
}

fn quantile_sig() -> Signature {
    Signature::new(
        "quantile",
        Category::Statistics,
        "The q-quantile (0 = min, 0.5 = median, 1 = max), interpolating linearly.",
    )
    .param("xs", Type::numbers(), "numbers")
    .param("q", Type::Num, "between 0 and 1")
    .returns(Type::Num)
    .example("assert quantile(0..101, 0.9) == 90")
}
fn quantile(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let q = a.num("q")?;
    if !(0.0..=1.0).contains(&q) {
        return Err(ToolError::arg("q", format!("`q` must be between 0 and 1, found {q}")));
    }
    Ok(Value::Num(quantile_of(&sorted(&nonempty(a, "xs")?), q)))
}

fn correlation_sig() -> Signature {
    Signature::new(
        "correlation",
        Category::Statistics,
        "Pearson correlation of two equally long lists of numbers (nan if either is constant).",
    )
    .param("xs", Type::numbers(), "first variable")
    .param("ys", Type::numbers(), "second variable")
    .returns(Type::Num)
    .example("assert correlation([1, 2, 3], [2, 4, 6]) == 1\nassert correlation([1, 2, 3], [3, 2, 1]) == -1")
}
fn correlation(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let (x, y) = (nonempty(a, "xs")?, nonempty(a, "ys")?);
    if x.len() != y.len() {
        return Err(ToolError::arg("ys", format!("`ys` has {} numbers but `xs` has {}", y.len(), x.len())));
    }
    let (mx, my) = (mean_f(&x), mean_f(&y));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(&y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    let r = sxy / (sxx * syy).sqrt();
    // Rounding can push |r| a hair past 1.
    Ok(Value::Num(if r.is_finite() { r.clamp(-1.0, 1.0) } else { f64::NAN }))
}

fn top_k_sig() -> Signature {
    Signature::new("top_k", Category::Statistics, "The k largest numbers and their indices, largest first (ties keep the earlier index first). `largest: false` gives the k smallest.")
        .param("xs", Type::numbers(), "numbers")
        .param("k", Type::Num, "how many")
        .opt("largest", Type::Bool, Value::Bool(true), "false for the smallest")
        .returns(Type::record_of(&[("values", Type::list(Type::Num)), ("indices", Type::list(Type::Num))]))
        .example("let t = top_k([5, 1, 9, 7], 2)\nassert t.indices == [2, 3]\nassert t.values == [9, 7]")
}
fn top_k(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let xs = a.numbers("xs")?;
    let k = a.count("k")?.min(xs.len());
    let largest = a.bool("largest")?;
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_by(|&i, &j| {
        let o = if largest { xs[j].total_cmp(&xs[i]) } else { xs[i].total_cmp(&xs[j]) };
        o.then(i.cmp(&j))
    });
    idx.truncate(k);
    Ok(Value::record([
        ("values", Value::nums(idx.iter().map(|&i| xs[i]))),
        ("indices", Value::nums(idx.iter().map(|&i| i as f64))),
    ]))
}

fn histogram_sig() -> Signature {
    Signature::new(
        "histogram",
        Category::Statistics,
        "Counts of the numbers in `bins` equal-width bins between their min and max.",
    )
    .param("xs", Type::numbers(), "numbers")
    .opt("bins", Type::Num, Value::Num(10.0), "number of bins")
    .returns(Type::record_of(&[("counts", Type::list(Type::Num)), ("edges", Type::list(Type::Num))]))
    .example("let h = histogram([0, 1, 1, 2], bins: 2)\nassert h.counts == [1, 3]\nassert h.edges == [0, 1, 2]")
}
fn histogram(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let xs = nonempty(a, "xs")?;
    let bins = a.count("bins")?;
    if bins == 0 || bins > 10_000 {
        return Err(ToolError::arg("bins", "`bins` must be between 1 and 10000"));
    }
    let (lo, hi) = (min_f(&xs), max_f(&xs));
    let width = if hi > lo { (hi - lo) / bins as f64 } else { 1.0 };
    let mut counts = vec![0.0; bins];
    for x in &xs {
        let b = (((x - lo) / width).floor() as usize).min(bins - 1);
        counts[b] += 1.0;
    }
    Ok(Value::record([
        ("counts", Value::nums(counts)),
        ("edges", Value::nums((0..=bins).map(|i| lo + width * i as f64))),
    ]))
}

fn lstsq_sig() -> Signature {
    Signature::new("lstsq", Category::Statistics, "Least squares: the coefficients `coef` that minimise the squared error of `a` times `coef` against `y`, solved by SVD (so collinear features are handled: the minimum-norm solution). `a` holds one row of K features per observation. Returns {coef, residual, rank}: `residual` is the sum of squared errors, `rank` the number of independent features.")
        .param("a", Type::OneOf(vec![Type::list(Type::Any), Type::Tensor]), "N rows of K features (lists of numbers, or a tensor [N, K]); with `columns: true`, K columns of N values (lists or tensors)")
        .param("y", Type::numbers(), "N targets")
        .opt("columns", Type::Bool, Value::Bool(false), "`a` holds K columns of N values (e.g. tensors computed at once) instead of N rows")
        .returns(Type::record())
        .example("let x = tensor([0, 1, 2, 3])\nlet fit = lstsq([x, x * 0 + 1], [1, 3, 5, 7], columns: true)\nassert round(fit.coef[0], digits: 4) == 2 and round(fit.coef[1], digits: 4) == 1")
        .example("let xs = [0, 1, 2, 3]\nlet fit = lstsq(map(xs, x => [x, 1]), map(xs, x => 2 * x + 1))\nassert round(fit.coef[0], digits: 6) == 2 and round(fit.coef[1], digits: 6) == 1\nassert fit.residual < 0.000001 and fit.rank == 2")
}
/// Columns of equal length to rows.
fn transpose(cols: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, String> {
    let n = cols.first().map(Vec::len).unwrap_or(0);
    if let Some(j) = cols.iter().position(|c| c.len() != n) {
        return Err(format!("column {j} has {} values; column 0 has {n}", cols[j].len()));
    }
    Ok((0..n).map(|i| cols.iter().map(|c| c[i]).collect()).collect())
}

fn lstsq(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let y = a.numbers("y")?;
    let rows: Vec<Vec<f64>> = match a.get("a") {
        Value::Tensor(t) if t.ndim() == 2 => t.outer_iter().map(|r| r.iter().map(|v| *v as f64).collect()).collect(),
        Value::Tensor(t) => {
            return Err(ToolError::arg("a", format!("expected a tensor [N, K], found one of shape {:?}", t.shape())))
        }
        _ => a
            .items("a")?
            .iter()
            .enumerate()
            .map(|(i, r)| {
                assay_interpreter::to_numbers(r)
                    .map_err(|what| ToolError::arg("a", format!("item {i} is not numbers: {what}")))
            })
            .collect::<Result<_, _>>()?,
    };
    let rows = if a.bool("columns")? { transpose(&rows).map_err(|e| ToolError::arg("a", e))? } else { rows };
    let n = rows.len();
    let k = rows.first().map(Vec::len).unwrap_or(0);
    if n == 0 || k == 0 {
        return Err(ToolError::arg("a", "needs at least one row with at least one feature"));
    }
    if n != y.len() {
        return Err(ToolError::arg("y", format!("`a` has {n} rows but `y` has {} numbers", y.len())));
    }
    if k > 1000 || n.saturating_mul(k) > 10_000_000 {
        return Err(ToolError::arg(
            "a",
            format!("{n} x {k} is too large (at most 1000 features and 10 million cells)"),
        ));
    }
    if let Some(i) = rows.iter().position(|r| r.len() != k) {
        return Err(ToolError::arg("a", format!("row {i} has {} features; row 0 has {k}", rows[i].len())));
    }
    if let Some(i) = rows.iter().position(|r| r.iter().any(|v| !v.is_finite())) {
        return Err(ToolError::arg("a", format!("row {i} has a value that is not finite")));
    }
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(ToolError::arg("y", format!("y[{i}] is not finite"))
            .help("drop the points where the target is nan or infinite"));
    }
    let m = nalgebra::DMatrix::from_fn(n, k, |i, j| rows[i][j]);
    let b = nalgebra::DVector::from_column_slice(&y);
    let svd = m.clone().svd(true, true);
    let largest = svd.singular_values.iter().copied().fold(0.0, f64::max);
    let eps = largest * f64::EPSILON * n.max(k) as f64;
    let rank = svd.singular_values.iter().filter(|s| **s > eps).count();
    let coef = svd.solve(&b, eps).map_err(|e| ToolError::new(format!("least squares failed: {e}")))?;
    let residual = (&m * &coef - &b).norm_squared();
    Ok(Value::record([
        ("coef", Value::nums(coef.iter().copied())),
        ("residual", Value::Num(residual)),
        ("rank", Value::Num(rank as f64)),
    ]))
}

pub(super) fn register(r: &mut Registry) {
    for (sig, f) in [
        (sum_sig as fn() -> Signature, sum as super::ToolFn),
        (mean_sig, mean),
        (max_sig, max),
        (min_sig, min),
        (argmax_sig, argmax),
        (argmin_sig, argmin),
        (std_sig, std),
        (var_sig, var),
        (median_sig, median),
        (quantile_sig, quantile),
        (correlation_sig, correlation),
        (top_k_sig, top_k),
        (histogram_sig, histogram),
        (lstsq_sig, lstsq),
    ] {
        r.register(FnTool::new(sig, f));
    }
}
