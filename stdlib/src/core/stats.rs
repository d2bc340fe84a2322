//! Statistics over numbers (lists, ranges, tensors). Reductions take an
//! optional `axis` for tensors; without it they reduce everything.

use assay_interpreter::{iter_values, to_numbers, Bound, ToolError, Type, Value};
use ndarray::Axis;

use super::declare::{tool, ToolCtx, ToolResult};
use super::kinds::Numeric;

/// A parameter's numbers, refused if there are none.
fn nonempty(xs: &Bound<Vec<f64>>) -> Result<&[f64], ToolError> {
    if xs.is_empty() {
        return Err(xs.error("needs at least one number, the list is empty"));
    }
    Ok(xs.as_slice())
}

/// Reduces a tensor along `axis` with `f`, or everything.
fn reduce(xs: &Bound<Numeric>, axis: &Bound<Option<i64>>, f: fn(&[f64]) -> f64) -> Result<Value, ToolError> {
    let name = xs.name();
    let (axis_name, axis) = (axis.name(), **axis);
    if let (Numeric::Tensor(t), Some(axis)) = (&**xs, axis) {
        let nd = t.ndim() as i64;
        let ax = if axis < 0 { nd + axis } else { axis };
        if ax < 0 || ax >= nd {
            return Err(ToolError::arg(
                axis_name,
                format!("axis {axis} is out of range for a tensor with {nd} dimensions"),
            ));
        }
        if t.shape()[ax as usize] == 0 {
            return Err(ToolError::arg(axis_name, "cannot reduce along an empty axis"));
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
    if axis.is_some() && !matches!(**xs, Numeric::Tensor(_)) {
        return Err(
            ToolError::arg(axis_name, "`axis` applies to tensors only").help("make one with tensor([[...], ...])")
        );
    }
    Ok(Value::Num(f(nonempty(&Bound::new(name, xs.numbers()))?)))
}

fn sum_f(x: &[f64]) -> f64 {
    x.iter().sum()
}
fn mean_f(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}
fn norm_f(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>().sqrt()
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

tool! {
    /// Sum of the numbers.
    ///
    /// ```assay
    /// assert sum([1, 2, 3]) == 6
    /// assert sum(tensor([[1, 2], [3, 4]]), axis: 0) == tensor([4, 6])
    /// ```
    sum in Statistics -> Type::OneOf(vec![Type::Num, Type::Tensor]);
    {
        /// numbers: a list, range or tensor
        xs: Numeric [Type::numbers()],
        /// for a tensor: reduce along this axis only
        axis: Option<i64> = None,
    }
    sum
}

fn sum(p: sum::Params, _: &mut dyn ToolCtx) -> ToolResult {
    reduce(&p.xs, &p.axis, sum_f)
}

tool! {
    /// Arithmetic mean.
    ///
    /// ```assay
    /// assert mean([1, 2, 3, 6]) == 3
    /// ```
    mean in Statistics -> Type::OneOf(vec![Type::Num, Type::Tensor]);
    {
        /// numbers: a list, range or tensor
        xs: Numeric [Type::numbers()],
        /// for a tensor: reduce along this axis only
        axis: Option<i64> = None,
    }
    mean
}

fn mean(p: mean::Params, _: &mut dyn ToolCtx) -> ToolResult {
    reduce(&p.xs, &p.axis, mean_f)
}

tool! {
    /// Euclidean (L2) norm. Of all the numbers, or of each lane along `axis` of a tensor (every
    /// token's activation norm: `norm(acts, axis: -1)`).
    ///
    /// ```assay
    /// assert norm([3, 4]) == 5
    /// assert norm(tensor([[3, 4], [6, 8]]), axis: 1) == tensor([5, 10])
    /// ```
    norm in Statistics -> Type::OneOf(vec![Type::Num, Type::Tensor]);
    {
        /// numbers: a list, range or tensor
        xs: Numeric [Type::numbers()],
        /// for a tensor: the norm along this axis only
        axis: Option<i64> = None,
    }
    norm
}

fn norm(p: norm::Params, _: &mut dyn ToolCtx) -> ToolResult {
    reduce(&p.xs, &p.axis, norm_f)
}

tool! {
    /// Largest number.
    ///
    /// ```assay
    /// assert max([3, 9, 2]) == 9
    /// ```
    max in Statistics -> Type::OneOf(vec![Type::Num, Type::Tensor]);
    {
        /// numbers: a list, range or tensor
        xs: Numeric [Type::numbers()],
        /// for a tensor: reduce along this axis only
        axis: Option<i64> = None,
    }
    max
}

fn max(p: max::Params, _: &mut dyn ToolCtx) -> ToolResult {
    reduce(&p.xs, &p.axis, max_f)
}

tool! {
    /// Smallest number.
    ///
    /// ```assay
    /// assert min([3, 9, 2]) == 2
    /// ```
    min in Statistics -> Type::OneOf(vec![Type::Num, Type::Tensor]);
    {
        /// numbers: a list, range or tensor
        xs: Numeric [Type::numbers()],
        /// for a tensor: reduce along this axis only
        axis: Option<i64> = None,
    }
    min
}

fn min(p: min::Params, _: &mut dyn ToolCtx) -> ToolResult {
    reduce(&p.xs, &p.axis, min_f)
}

tool! {
    /// Index of the largest number (the first, if tied).
    ///
    /// ```assay
    /// assert argmax([3, 9, 2, 9]) == 1
    /// ```
    argmax in Statistics -> Type::OneOf(vec![Type::Num, Type::Tensor]);
    {
        /// numbers: a list, range or tensor
        xs: Numeric [Type::numbers()],
        /// for a tensor: reduce along this axis only
        axis: Option<i64> = None,
    }
    argmax
}

fn argmax(p: argmax::Params, _: &mut dyn ToolCtx) -> ToolResult {
    reduce(&p.xs, &p.axis, argmax_f)
}

tool! {
    /// Index of the smallest number (the first, if tied).
    ///
    /// ```assay
    /// assert argmin([3, 9, 2]) == 2
    /// ```
    argmin in Statistics -> Type::OneOf(vec![Type::Num, Type::Tensor]);
    {
        /// numbers: a list, range or tensor
        xs: Numeric [Type::numbers()],
        /// for a tensor: reduce along this axis only
        axis: Option<i64> = None,
    }
    argmin
}

fn argmin(p: argmin::Params, _: &mut dyn ToolCtx) -> ToolResult {
    reduce(&p.xs, &p.axis, argmin_f)
}

fn var_of(x: &[f64], ddof: f64) -> f64 {
    let m = mean_f(x);
    x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() as f64 - ddof)
}

tool! {
    /// Standard deviation; `ddof: 1` for the sample estimate.
    ///
    /// ```assay
    /// assert std([2, 4, 4, 4, 5, 5, 7, 9]) == 2
    /// ```
    std in Statistics -> Type::Num;
    {
        /// numbers
        xs: Vec<f64> [Type::numbers()],
        /// delta degrees of freedom (0 population, 1 sample)
        ddof: f64 = 0.0,
    }
    std
}

fn std(p: std::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let xs = nonempty(&p.xs)?;
    if xs.len() as f64 <= *p.ddof {
        return Err(p.ddof.error(format!("needs more than {} numbers, found {}", p.ddof, xs.len())));
    }
    Ok(Value::Num(var_of(xs, *p.ddof).sqrt()))
}

tool! {
    /// Variance; `ddof: 1` for the sample estimate.
    ///
    /// ```assay
    /// assert var([1, 3]) == 1
    /// assert var([1, 3], ddof: 1) == 2
    /// ```
    var in Statistics -> Type::Num;
    {
        /// numbers
        xs: Vec<f64> [Type::numbers()],
        /// delta degrees of freedom
        ddof: f64 = 0.0,
    }
    var
}

fn var(p: var::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let xs = nonempty(&p.xs)?;
    if xs.len() as f64 <= *p.ddof {
        return Err(p.ddof.error(format!("needs more than {} numbers, found {}", p.ddof, xs.len())));
    }
    Ok(Value::Num(var_of(xs, *p.ddof)))
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

tool! {
    /// The middle value (mean of the two middle values for an even count).
    ///
    /// ```assay
    /// assert median([5, 1, 3]) == 3
    /// assert median([1, 2, 3, 4]) == 2.5
    /// ```
    median in Statistics -> Type::Num;
    {
        /// numbers
        xs: Vec<f64> [Type::numbers()],
    }
    median
}

fn median(p: median::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(Value::Num(quantile_of(&sorted(nonempty(&p.xs)?), 0.5)))
}

tool! {
    /// The q-quantile (0 = min, 0.5 = median, 1 = max), interpolating linearly.
    ///
    /// ```assay
    /// assert quantile(0..101, 0.9) == 90
    /// ```
    quantile in Statistics -> Type::Num;
    {
        /// numbers
        xs: Vec<f64> [Type::numbers()],
        /// between 0 and 1
        q: f64,
    }
    quantile
}

fn quantile(p: quantile::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let q = *p.q;
    if !(0.0..=1.0).contains(&q) {
        return Err(p.q.error(format!("`q` must be between 0 and 1, found {q}")));
    }
    Ok(Value::Num(quantile_of(&sorted(nonempty(&p.xs)?), q)))
}

tool! {
    /// Pearson correlation of two equally long lists of numbers (nan if either is constant).
    ///
    /// ```assay
    /// assert correlation([1, 2, 3], [2, 4, 6]) == 1
    /// assert correlation([1, 2, 3], [3, 2, 1]) == -1
    /// ```
    correlation in Statistics -> Type::Num;
    {
        /// first variable
        xs: Vec<f64> [Type::numbers()],
        /// second variable
        ys: Vec<f64> [Type::numbers()],
    }
    correlation
}

fn correlation(p: correlation::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let (x, y) = (nonempty(&p.xs)?, nonempty(&p.ys)?);
    if x.len() != y.len() {
        return Err(p.ys.error(format!("`ys` has {} numbers but `xs` has {}", y.len(), x.len())));
    }
    let (mx, my) = (mean_f(x), mean_f(y));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    let r = sxy / (sxx * syy).sqrt();
    // Rounding can push |r| a hair past 1.
    Ok(Value::Num(if r.is_finite() { r.clamp(-1.0, 1.0) } else { f64::NAN }))
}

tool! {
    /// Cosine similarity of two vectors. Their dot product over the product
    /// of their lengths (lists, ranges or tensors, flattened, equally long),
    /// from -1 to 1; nan if either is all zeros. Compares directions, e.g. a
    /// steering vector with a probe's weights.
    ///
    /// ```assay
    /// assert cosine([1, 0], [0, 2]) == 0
    /// assert cosine([1, 2, 3], [2, 4, 6]) == 1
    /// assert cosine(tensor([[1, 1]]), [-1, -1]) == -1
    /// ```
    cosine in Statistics -> Type::Num;
    {
        /// first vector
        a: Vec<f64> [Type::numbers()],
        /// second vector
        b: Vec<f64> [Type::numbers()],
    }
    cosine
}

fn cosine(p: cosine::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let (a, b) = (nonempty(&p.a)?, nonempty(&p.b)?);
    if a.len() != b.len() {
        return Err(p.b.error(format!("`b` has {} numbers but `a` has {}", b.len(), a.len())));
    }
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norms = (a.iter().map(|x| x * x).sum::<f64>() * b.iter().map(|y| y * y).sum::<f64>()).sqrt();
    let c = dot / norms;
    // Rounding can push |c| a hair past 1.
    Ok(Value::Num(if c.is_finite() { c.clamp(-1.0, 1.0) } else { f64::NAN }))
}

tool! {
    /// The k largest numbers and their indices, largest first (ties keep the
    /// earlier index first). `largest: false` gives the k smallest.
    ///
    /// ```assay
    /// let t = top_k([5, 1, 9, 7], 2)
    /// assert t.indices == [2, 3]
    /// assert t.values == [9, 7]
    /// ```
    top_k in Statistics -> Type::record_of(&[("values", Type::list(Type::Num)), ("indices", Type::list(Type::Num))]);
    {
        /// numbers
        xs: Vec<f64> [Type::numbers()],
        /// how many
        k: usize,
        /// false for the smallest
        largest: bool = true,
    }
    top_k
}

fn top_k(p: top_k::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let xs = p.xs.into_inner();
    let k = p.k.min(xs.len());
    let largest = *p.largest;
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

tool! {
    /// Counts of the numbers in `bins` equal-width bins between their min and max.
    ///
    /// ```assay
    /// let h = histogram([0, 1, 1, 2], bins: 2)
    /// assert h.counts == [1, 3]
    /// assert h.edges == [0, 1, 2]
    /// ```
    histogram in Statistics -> Type::record_of(&[("counts", Type::list(Type::Num)), ("edges", Type::list(Type::Num))]);
    {
        /// numbers
        xs: Vec<f64> [Type::numbers()],
        /// number of bins
        bins: usize = 10,
    }
    histogram
}

fn histogram(p: histogram::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let xs = nonempty(&p.xs)?;
    let bins = *p.bins;
    if bins == 0 || bins > 10_000 {
        return Err(p.bins.error("`bins` must be between 1 and 10000"));
    }
    let (lo, hi) = (min_f(xs), max_f(xs));
    let width = if hi > lo { (hi - lo) / bins as f64 } else { 1.0 };
    let mut counts = vec![0.0; bins];
    for x in xs {
        let b = (((x - lo) / width).floor() as usize).min(bins - 1);
        counts[b] += 1.0;
    }
    Ok(Value::record([
        ("counts", Value::nums(counts)),
        ("edges", Value::nums((0..=bins).map(|i| lo + width * i as f64))),
    ]))
}

tool! {
    /// Least squares: the coefficients `coef` that minimise the squared error
    /// of `a` times `coef` against `y`, solved by SVD (so collinear features
    /// are handled: the minimum-norm solution). `a` holds one row of K
    /// features per observation. Returns {coef, residual, rank}: `residual`
    /// is the sum of squared errors, `rank` the number of independent
    /// features.
    ///
    /// ```assay
    /// let x = tensor([0, 1, 2, 3])
    /// let fit = lstsq([x, x * 0 + 1], [1, 3, 5, 7], columns: true)
    /// assert round(fit.coef[0], digits: 4) == 2 and round(fit.coef[1], digits: 4) == 1
    /// ```
    ///
    /// ```assay
    /// let xs = [0, 1, 2, 3]
    /// let fit = lstsq(map(xs, x => [x, 1]), map(xs, x => 2 * x + 1))
    /// assert round(fit.coef[0], digits: 6) == 2 and round(fit.coef[1], digits: 6) == 1
    /// assert fit.residual < 0.000001 and fit.rank == 2
    /// ```
    lstsq in Statistics -> Type::record();
    {
        /// N rows of K features (lists of numbers, or a tensor [N, K]); with
        /// `columns: true`, K columns of N values (lists or tensors)
        a: Value [Type::OneOf(vec![Type::list(Type::Any), Type::Tensor])],
        /// N targets
        y: Vec<f64> [Type::numbers()],
        /// `a` holds K columns of N values (e.g. tensors computed at once)
        /// instead of N rows
        columns: bool = false,
    }
    lstsq
}

fn lstsq(p: lstsq::Params, _: &mut dyn ToolCtx) -> ToolResult {
    least_squares(p.a, p.y, *p.columns)
}

/// Columns of equal length to rows.
fn transpose(cols: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, String> {
    let n = cols.first().map(Vec::len).unwrap_or(0);
    if let Some(j) = cols.iter().position(|c| c.len() != n) {
        return Err(format!("column {j} has {} values; column 0 has {n}", cols[j].len()));
    }
    Ok((0..n).map(|i| cols.iter().map(|c| c[i]).collect()).collect())
}

fn least_squares(a: Bound<Value>, y: Bound<Vec<f64>>, columns: bool) -> Result<Value, ToolError> {
    let rows: Vec<Vec<f64>> = match &*a {
        Value::Tensor(t) if t.ndim() == 2 => t.outer_iter().map(|r| r.iter().map(|v| *v as f64).collect()).collect(),
        Value::Tensor(t) => {
            return Err(a.error(format!("expected a tensor [N, K], found one of shape {:?}", t.shape())))
        }
        other => iter_values(other)
            .ok_or_else(|| a.error(format!("`a` must be a list, found {}", other.type_name())))?
            .iter()
            .enumerate()
            .map(|(i, r)| to_numbers(r).map_err(|what| a.error(format!("item {i} is not numbers: {what}"))))
            .collect::<Result<_, _>>()?,
    };
    let rows = if columns { transpose(&rows).map_err(|e| a.error(e))? } else { rows };
    let n = rows.len();
    let k = rows.first().map(Vec::len).unwrap_or(0);
    if n == 0 || k == 0 {
        return Err(a.error("needs at least one row with at least one feature"));
    }
    if n != y.len() {
        return Err(y.error(format!("`a` has {n} rows but `y` has {} numbers", y.len())));
    }
    if k > 1000 || n.saturating_mul(k) > 10_000_000 {
        return Err(a.error(format!("{n} x {k} is too large (at most 1000 features and 10 million cells)")));
    }
    if let Some(i) = rows.iter().position(|r| r.len() != k) {
        return Err(a.error(format!("row {i} has {} features; row 0 has {k}", rows[i].len())));
    }
    if let Some(i) = rows.iter().position(|r| r.iter().any(|v| !v.is_finite())) {
        return Err(a.error(format!("row {i} has a value that is not finite")));
    }
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(y
            .error(format!("y[{i}] is not finite"))
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
