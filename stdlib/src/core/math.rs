//! Elementwise math over numbers, lists of numbers and tensors, and
//! constructors for tensors.

use assay_interpreter::{to_tensor, Args, Category, Registry, Signature, ToolCtx, ToolError, Type, Value};
use ndarray::ArrayD;

use super::FnTool;

fn numeric() -> Type {
    Type::OneOf(vec![Type::Num, Type::list(Type::Num), Type::Range, Type::Tensor])
}

/// Applies `f` to a number, each number of a list or range, or each tensor element.
fn map_num(args: &Args, i: &str, f: impl Fn(f64) -> f64) -> Result<Value, ToolError> {
    match args.get(i) {
        Value::Num(n) => Ok(Value::Num(f(*n))),
        Value::Tensor(t) => Ok(Value::tensor(t.view().mapv(|x| f(x as f64) as f32))),
        _ => Ok(Value::nums(args.numbers(i)?.into_iter().map(f))),
    }
}

macro_rules! unary {
    ($sig:ident, $fun:ident, $name:literal, $doc:literal, $ex:literal, $f:expr) => {
        fn $sig() -> Signature {
            Signature::new($name, Category::Math, $doc)
                .param("x", numeric(), "a number, or numbers elementwise")
                .returns(numeric())
                .example($ex)
        }
        fn $fun(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
            map_num(a, "x", $f)
        }
    };
}

unary!(abs_sig, abs, "abs", "Absolute value.", "assert abs(-2) == 2\nassert abs([-1, 3]) == [1, 3]", f64::abs);
unary!(sqrt_sig, sqrt, "sqrt", "Square root (nan for negative numbers).", "assert sqrt(9) == 3", f64::sqrt);
unary!(exp_sig, exp, "exp", "e raised to x.", "assert exp(0) == 1", f64::exp);
unary!(log_sig, log, "log", "Natural logarithm (-inf at 0, nan below).", "assert log(1) == 0", f64::ln);
unary!(
    floor_sig,
    floor,
    "floor",
    "Largest whole number not above x.",
    "assert floor(2.7) == 2\nassert floor(-0.5) == -1",
    f64::floor
);
unary!(ceil_sig, ceil, "ceil", "Smallest whole number not below x.", "assert ceil(2.1) == 3", f64::ceil);
unary!(sin_sig, sin, "sin", "Sine of x in radians.", "assert sin(0) == 0", f64::sin);
unary!(cos_sig, cos, "cos", "Cosine of x in radians.", "assert cos(0) == 1", f64::cos);
unary!(tanh_sig, tanh, "tanh", "Hyperbolic tangent.", "assert tanh(0) == 0", f64::tanh);
unary!(
    sign_sig,
    sign,
    "sign",
    "-1, 0 or 1 by the sign of x.",
    "assert sign(-3) == -1\nassert sign(0) == 0",
    |x: f64| if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
);

fn round_sig() -> Signature {
    Signature::new("round", Category::Math, "Rounds to `digits` decimal places (halves away from zero).")
        .param("x", numeric(), "a number, or numbers elementwise")
        .opt("digits", Type::Num, Value::Num(0.0), "decimal places to keep")
        .returns(numeric())
        .example("assert round(2.5) == 3\nassert round(3.14159, digits: 2) == 3.14")
}
fn round(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let d = a.int("digits")?;
    if !(0..=15).contains(&d) {
        return Err(ToolError::arg("digits", format!("`digits` must be between 0 and 15, found {d}")));
    }
    let m = 10f64.powi(d as i32);
    map_num(a, "x", |x| (x * m).round() / m)
}

fn clip_sig() -> Signature {
    Signature::new("clip", Category::Math, "Limits x to the interval [lo, hi].")
        .param("x", numeric(), "a number, or numbers elementwise")
        .param("lo", Type::Num, "lower bound")
        .param("hi", Type::Num, "upper bound")
        .returns(numeric())
        .example("assert clip(5, 0, 1) == 1\nassert clip([-1, 0.5], 0, 1) == [0, 0.5]")
}
fn clip(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let (lo, hi) = (a.num("lo")?, a.num("hi")?);
    if lo.is_nan() || hi.is_nan() {
        return Err(ToolError::arg(if lo.is_nan() { "lo" } else { "hi" }, "the bounds must be numbers, not NaN"));
    }
    if lo > hi {
        return Err(ToolError::arg("lo", format!("`lo` ({lo}) is above `hi` ({hi})")));
    }
    map_num(a, "x", |x| x.clamp(lo, hi))
}

fn tensor_sig() -> Signature {
    Signature::new(
        "tensor",
        Category::Tensor,
        "Makes a float32 tensor from a nested list of numbers (rows of equal length), a range or a tensor.",
    )
    .param("data", Type::Any, "nested list of numbers")
    .returns(Type::Tensor)
    .example("let t = tensor([[1, 2, 3], [4, 5, 6]])\nassert t.shape == [2, 3]\nassert t[1][2] == 6")
}
fn tensor(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    a.tensor("data").map(Value::Tensor)
}

fn zeros_sig() -> Signature {
    Signature::new("zeros", Category::Tensor, "A tensor of the given shape filled with `value`.")
        .param("shape", Type::list(Type::Num), "dimensions, e.g. [2, 3]")
        .opt("value", Type::Num, Value::Num(0.0), "fill value")
        .returns(Type::Tensor)
        .example("let t = zeros([2, 2], value: 1)\nassert sum(t) == 4")
}
fn zeros(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    const MAX_ELEMENTS: usize = 100_000_000;
    let mut shape = Vec::new();
    for d in a.numbers("shape")? {
        if d.is_nan() || d < 0.0 || d.fract() != 0.0 || d > MAX_ELEMENTS as f64 {
            return Err(ToolError::arg(
                "shape",
                format!("dimensions must be whole numbers from 0 to {MAX_ELEMENTS}, found {d}"),
            ));
        }
        shape.push(d as usize);
    }
    // Checked: [4294967296, 4294967296] must not wrap around to a small count.
    let n = shape.iter().try_fold(1usize, |acc, d| acc.checked_mul(*d));
    if n.is_none_or(|n| n > MAX_ELEMENTS) {
        return Err(ToolError::arg(
            "shape",
            format!("a tensor of shape {shape:?} has more than {MAX_ELEMENTS} elements"),
        ));
    }
    Ok(Value::tensor(ArrayD::from_elem(shape, a.num("value")? as f32)))
}

fn reshape_sig() -> Signature {
    Signature::new(
        "reshape",
        Category::Tensor,
        "The same values in a new shape (row-major). One dimension may be -1 to be inferred.",
    )
    .param("x", Type::Any, "a tensor or nested list")
    .param("shape", Type::list(Type::Num), "new dimensions")
    .returns(Type::Tensor)
    .example("let t = reshape(0..6, [2, -1])\nassert t.shape == [2, 3]")
}
fn reshape(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let t = to_tensor(a.get("x")).map_err(|e| ToolError::arg("x", e))?;
    let dims = a.numbers("shape")?;
    let total = t.len();
    // Checked: dimensions whose product wraps around must not pass as small.
    let known = dims
        .iter()
        .filter(|d| **d >= 0.0)
        .try_fold(1usize, |acc, d| if *d > usize::MAX as f64 { None } else { acc.checked_mul(*d as usize) })
        .filter(|k| *k <= total.max(1))
        .ok_or_else(|| ToolError::arg("shape", format!("cannot reshape {total} elements into {dims:?}")))?;
    let mut shape = Vec::new();
    let mut inferred = false;
    for d in &dims {
        if *d == -1.0 && !inferred {
            inferred = true;
            if known == 0 || total % known != 0 {
                return Err(ToolError::arg(
                    "shape",
                    format!("cannot infer -1: {total} elements do not divide by {known}"),
                ));
            }
            shape.push(total / known);
        } else if *d >= 0.0 && d.fract() == 0.0 {
            shape.push(*d as usize);
        } else {
            return Err(ToolError::arg("shape", format!("bad dimension {d}")));
        }
    }
    let data: Vec<f32> = t.iter().copied().collect();
    ArrayD::from_shape_vec(shape.clone(), data)
        .map(Value::tensor)
        .map_err(|_| ToolError::arg("shape", format!("cannot reshape {total} elements into {shape:?}")))
}

fn linspace_sig() -> Signature {
    Signature::new("linspace", Category::Math, "`n` evenly spaced numbers from `start` to `stop` inclusive.")
        .param("start", Type::Num, "first value")
        .param("stop", Type::Num, "last value")
        .param("n", Type::Num, "how many")
        .returns(Type::list(Type::Num))
        .example("assert linspace(0, 1, 5) == [0, 0.25, 0.5, 0.75, 1]")
}
fn linspace(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let (s, e, n) = (a.num("start")?, a.num("stop")?, a.count("n")?);
    if n > 10_000_000 {
        return Err(ToolError::arg("n", "at most 10,000,000 points"));
    }
    if n == 1 {
        return Ok(Value::nums([s]));
    }
    Ok(Value::nums((0..n).map(|i| s + (e - s) * i as f64 / (n - 1) as f64)))
}

pub(super) fn register(r: &mut Registry) {
    for (sig, f) in [
        (abs_sig as fn() -> Signature, abs as super::ToolFn),
        (sqrt_sig, sqrt),
        (exp_sig, exp),
        (log_sig, log),
        (floor_sig, floor),
        (ceil_sig, ceil),
        (sin_sig, sin),
        (cos_sig, cos),
        (tanh_sig, tanh),
        (sign_sig, sign),
        (round_sig, round),
        (clip_sig, clip),
        (tensor_sig, tensor),
        (zeros_sig, zeros),
        (reshape_sig, reshape),
        (linspace_sig, linspace),
    ] {
        r.register(FnTool::new(sig, f));
    }
}
