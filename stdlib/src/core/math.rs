//! Elementwise math over numbers, lists of numbers and tensors, and
//! constructors for tensors.

use assay_interpreter::{to_tensor, Tensor, Type, Value};
use ndarray::ArrayD;

use super::declare::{tool, ToolCtx, ToolResult};
use super::kinds::{numeric, Numeric};

tool! {
    /// Absolute value.
    ///
    /// ```assay
    /// assert abs(-2) == 2
    /// assert abs([-1, 3]) == [1, 3]
    /// ```
    abs in Math -> numeric();
    {
        /// a number, or numbers elementwise
        x: Numeric,
    }
    abs
}

fn abs(p: abs::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(p.x.map(f64::abs))
}

tool! {
    /// Square root (nan for negative numbers).
    ///
    /// ```assay
    /// assert sqrt(9) == 3
    /// ```
    sqrt in Math -> numeric();
    {
        /// a number, or numbers elementwise
        x: Numeric,
    }
    sqrt
}

fn sqrt(p: sqrt::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(p.x.map(f64::sqrt))
}

tool! {
    /// e raised to x.
    ///
    /// ```assay
    /// assert exp(0) == 1
    /// ```
    exp in Math -> numeric();
    {
        /// a number, or numbers elementwise
        x: Numeric,
    }
    exp
}

fn exp(p: exp::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(p.x.map(f64::exp))
}

tool! {
    /// Natural logarithm (-inf at 0, nan below).
    ///
    /// ```assay
    /// assert log(1) == 0
    /// ```
    log in Math -> numeric();
    {
        /// a number, or numbers elementwise
        x: Numeric,
    }
    log
}

fn log(p: log::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(p.x.map(f64::ln))
}

tool! {
    /// Largest whole number not above x.
    ///
    /// ```assay
    /// assert floor(2.7) == 2
    /// assert floor(-0.5) == -1
    /// ```
    floor in Math -> numeric();
    {
        /// a number, or numbers elementwise
        x: Numeric,
    }
    floor
}

fn floor(p: floor::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(p.x.map(f64::floor))
}

tool! {
    /// Smallest whole number not below x.
    ///
    /// ```assay
    /// assert ceil(2.1) == 3
    /// ```
    ceil in Math -> numeric();
    {
        /// a number, or numbers elementwise
        x: Numeric,
    }
    ceil
}

fn ceil(p: ceil::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(p.x.map(f64::ceil))
}

tool! {
    /// Sine of x in radians.
    ///
    /// ```assay
    /// assert sin(0) == 0
    /// ```
    sin in Math -> numeric();
    {
        /// a number, or numbers elementwise
        x: Numeric,
    }
    sin
}

fn sin(p: sin::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(p.x.map(f64::sin))
}

tool! {
    /// Cosine of x in radians.
    ///
    /// ```assay
    /// assert cos(0) == 1
    /// ```
    cos in Math -> numeric();
    {
        /// a number, or numbers elementwise
        x: Numeric,
    }
    cos
}

fn cos(p: cos::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(p.x.map(f64::cos))
}

tool! {
    /// Hyperbolic tangent.
    ///
    /// ```assay
    /// assert tanh(0) == 0
    /// ```
    tanh in Math -> numeric();
    {
        /// a number, or numbers elementwise
        x: Numeric,
    }
    tanh
}

fn tanh(p: tanh::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(p.x.map(f64::tanh))
}

tool! {
    /// -1, 0 or 1 by the sign of x.
    ///
    /// ```assay
    /// assert sign(-3) == -1
    /// assert sign(0) == 0
    /// ```
    sign in Math -> numeric();
    {
        /// a number, or numbers elementwise
        x: Numeric,
    }
    sign
}

fn sign(p: sign::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(p.x.map(|x| {
        if x > 0.0 {
            1.0
        } else if x < 0.0 {
            -1.0
        } else {
            0.0
        }
    }))
}

tool! {
    /// Rounds to `digits` decimal places (halves away from zero).
    ///
    /// ```assay
    /// assert round(2.5) == 3
    /// assert round(3.14159, digits: 2) == 3.14
    /// ```
    round in Math -> numeric();
    {
        /// a number, or numbers elementwise
        x: Numeric,
        /// decimal places to keep
        digits: i64 = 0,
    }
    round
}

fn round(p: round::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let d = *p.digits;
    if !(0..=15).contains(&d) {
        return Err(p.digits.error(format!("`digits` must be between 0 and 15, found {d}")));
    }
    let m = 10f64.powi(d as i32);
    Ok(p.x.map(|x| (x * m).round() / m))
}

tool! {
    /// Limits x to the interval [lo, hi].
    ///
    /// ```assay
    /// assert clip(5, 0, 1) == 1
    /// assert clip([-1, 0.5], 0, 1) == [0, 0.5]
    /// ```
    clip in Math -> numeric();
    {
        /// a number, or numbers elementwise
        x: Numeric,
        /// lower bound
        lo: f64,
        /// upper bound
        hi: f64,
    }
    clip
}

fn clip(p: clip::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let (lo, hi) = (*p.lo, *p.hi);
    if lo.is_nan() || hi.is_nan() {
        let bad = if lo.is_nan() { &p.lo } else { &p.hi };
        return Err(bad.error("the bounds must be numbers, not NaN"));
    }
    if lo > hi {
        return Err(p.lo.error(format!("`lo` ({lo}) is above `hi` ({hi})")));
    }
    Ok(p.x.map(|x| x.clamp(lo, hi)))
}

tool! {
    /// Makes a float32 tensor from a nested list of numbers (rows of equal length), a range or a tensor.
    ///
    /// ```assay
    /// let t = tensor([[1, 2, 3], [4, 5, 6]])
    /// assert t.shape == [2, 3]
    /// assert t[1][2] == 6
    /// ```
    tensor in Tensor -> Type::Tensor;
    {
        /// nested list of numbers
        data: Tensor [Type::Any],
    }
    tensor
}

fn tensor(p: tensor::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(Value::Tensor(p.data.into_inner()))
}

tool! {
    /// A tensor of the given shape filled with `value`.
    ///
    /// ```assay
    /// let t = zeros([2, 2], value: 1)
    /// assert sum(t) == 4
    /// ```
    zeros in Tensor -> Type::Tensor;
    {
        /// dimensions, e.g. [2, 3]
        shape: Vec<f64>,
        /// fill value
        value: f64 = 0.0,
    }
    zeros
}

fn zeros(p: zeros::Params, _: &mut dyn ToolCtx) -> ToolResult {
    const MAX_ELEMENTS: usize = assay_interpreter::MAX_TENSOR_ELEMENTS;
    let mut shape = Vec::new();
    for &d in p.shape.iter() {
        if d.is_nan() || d < 0.0 || d.fract() != 0.0 || d > MAX_ELEMENTS as f64 {
            return Err(p.shape.error(format!("dimensions must be whole numbers from 0 to {MAX_ELEMENTS}, found {d}")));
        }
        shape.push(d as usize);
    }
    // Checked: [4294967296, 4294967296] must not wrap around to a small count.
    let Some(n) = shape.iter().try_fold(1usize, |acc, d| acc.checked_mul(*d)).filter(|&n| n <= MAX_ELEMENTS) else {
        return Err(p.shape.error(format!("a tensor of shape {shape:?} has more than {MAX_ELEMENTS} elements")));
    };
    // Fallible, so that a tensor past the memory budget is an error at
    // its call rather than an abort somewhere in the run.
    let mut data: Vec<f32> = Vec::new();
    if data.try_reserve_exact(n).is_err() {
        return Err(p
            .shape
            .error(format!(
                "a tensor of shape {shape:?} ({} MB) does not fit in what is left of the run's memory budget",
                n * 4 / 1_000_000
            ))
            .code(assay_interpreter::Code::BudgetMemory)
            .help("hold fewer or smaller tensors at once, or raise the budget with --memory"));
    }
    data.resize(n, *p.value as f32);
    ArrayD::from_shape_vec(shape, data).map(Value::tensor).map_err(|e| p.shape.error(e.to_string()))
}

tool! {
    /// The same values in a new shape (row-major). One dimension may be -1 to be inferred.
    ///
    /// ```assay
    /// let t = reshape(0..6, [2, -1])
    /// assert t.shape == [2, 3]
    /// ```
    reshape in Tensor -> Type::Tensor;
    {
        /// a tensor or nested list
        x: Value,
        /// new dimensions
        shape: Vec<f64>,
    }
    reshape
}

fn reshape(p: reshape::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let t = to_tensor(&p.x).map_err(|e| p.x.error(e))?;
    let dims = p.shape.to_vec();
    let total = t.len();
    // Checked: dimensions whose product wraps around must not pass as small.
    let known = dims
        .iter()
        .filter(|d| **d >= 0.0)
        .try_fold(1usize, |acc, d| if *d > usize::MAX as f64 { None } else { acc.checked_mul(*d as usize) })
        .filter(|k| *k <= total.max(1))
        .ok_or_else(|| p.shape.error(format!("cannot reshape {total} elements into {dims:?}")))?;
    let mut shape = Vec::new();
    let mut inferred = false;
    for d in &dims {
        if *d == -1.0 && !inferred {
            inferred = true;
            if known == 0 || total % known != 0 {
                return Err(p.shape.error(format!("cannot infer -1: {total} elements do not divide by {known}")));
            }
            shape.push(total / known);
        } else if *d >= 0.0 && d.fract() == 0.0 {
            shape.push(*d as usize);
        } else {
            return Err(p.shape.error(format!("bad dimension {d}")));
        }
    }
    let data: Vec<f32> = t.iter().copied().collect();
    ArrayD::from_shape_vec(shape.clone(), data)
        .map(Value::tensor)
        .map_err(|_| p.shape.error(format!("cannot reshape {total} elements into {shape:?}")))
}

tool! {
    /// `n` evenly spaced numbers from `start` to `stop` inclusive.
    ///
    /// ```assay
    /// assert linspace(0, 1, 5) == [0, 0.25, 0.5, 0.75, 1]
    /// ```
    linspace in Math -> Type::list(Type::Num);
    {
        /// first value
        start: f64,
        /// last value
        stop: f64,
        /// how many
        n: usize,
    }
    linspace
}

fn linspace(p: linspace::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let (s, e, n) = (*p.start, *p.stop, *p.n);
    if n > 10_000_000 {
        return Err(p.n.error("at most 10,000,000 points"));
    }
    if n == 1 {
        return Ok(Value::nums([s]));
    }
    Ok(Value::nums((0..n).map(|i| s + (e - s) * i as f64 / (n - 1) as f64)))
}
