//! Randomness, only from the run's seed: each call draws from its own
//! stream, derived from the seed and the call's step number. Passing
//! `seed:` pins a call's stream so that adding calls before it does not
//! change what it draws.

use assay_interpreter::{Args, Category, HandleKind, Registry, Signature, ToolCtx, ToolError, Type, Value};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::FnTool;

const MAX_DRAWS: usize = 10_000_000;

/// The stream for this call: pinned by `seed:` (argument `i`) or the step's.
/// A tool call's random stream: pinned by its `seed` argument (index `i`),
/// or drawn from the run's.
pub(crate) fn stream(a: &Args, i: &str, ctx: &mut dyn ToolCtx) -> Result<ChaCha8Rng, ToolError> {
    match a.opt_int(i)? {
        Some(s) => Ok(assay_interpreter::step_rng(s as u64, u64::MAX)),
        None => Ok(ChaCha8Rng::from_rng(ctx.rng())),
    }
}

fn count_or_one(a: &Args, i: &str) -> Result<Option<usize>, ToolError> {
    match a.opt_int(i)? {
        None => Ok(None),
        Some(n) if n < 0 || n as usize > MAX_DRAWS => {
            Err(ToolError::arg(i, format!("`n` must be between 0 and {MAX_DRAWS}, found {n}")))
        }
        Some(n) => Ok(Some(n as usize)),
    }
}

fn draws(n: Option<usize>, mut f: impl FnMut() -> f64) -> Value {
    match n {
        None => Value::Num(f()),
        Some(n) => Value::nums((0..n).map(|_| f())),
    }
}

fn rand_sig() -> Signature {
    Signature::new("rand", Category::Random, "Uniform random numbers in [0, 1): one number, or a list of `n`.")
        .opt("n", Type::Num, Value::None, "how many (omit for one number)")
        .opt("seed", Type::Num, Value::None, "pin this call's random stream")
        .returns(Type::OneOf(vec![Type::Num, Type::list(Type::Num)]))
        .example("let xs = rand(n: 100)\nassert len(xs) == 100\nassert min(xs) >= 0 and max(xs) < 1\nassert rand(seed: 3) == rand(seed: 3)")
}
fn rand(a: &Args, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let n = count_or_one(a, "n")?;
    let mut rng = stream(a, "seed", ctx)?;
    Ok(draws(n, || rng.random::<f64>()))
}

fn randn_sig() -> Signature {
    Signature::new("randn", Category::Random, "Normally distributed random numbers.")
        .opt("n", Type::Num, Value::None, "how many (omit for one number)")
        .opt("mean", Type::Num, Value::Num(0.0), "mean")
        .opt("std", Type::Num, Value::Num(1.0), "standard deviation")
        .opt("seed", Type::Num, Value::None, "pin this call's random stream")
        .returns(Type::OneOf(vec![Type::Num, Type::list(Type::Num)]))
        .example("let xs = randn(n: 2000, mean: 5)\nassert abs(mean(xs) - 5) < 0.2")
}
fn randn(a: &Args, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let n = count_or_one(a, "n")?;
    let (m, s) = (a.num("mean")?, a.num("std")?);
    if s < 0.0 {
        return Err(ToolError::arg("std", "`std` must not be negative"));
    }
    let mut rng = stream(a, "seed", ctx)?;
    Ok(draws(n, || {
        let z: f64 = StandardNormal.sample(&mut rng);
        m + s * z
    }))
}

fn randint_sig() -> Signature {
    Signature::new("randint", Category::Random, "Random whole numbers in [lo, hi).")
        .param("lo", Type::Num, "smallest value")
        .param("hi", Type::Num, "one past the largest value")
        .opt("n", Type::Num, Value::None, "how many (omit for one number)")
        .opt("seed", Type::Num, Value::None, "pin this call's random stream")
        .returns(Type::OneOf(vec![Type::Num, Type::list(Type::Num)]))
        .example("let xs = randint(0, 3, n: 50)\nassert min(xs) >= 0 and max(xs) <= 2")
}
fn randint(a: &Args, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let (lo, hi) = (a.int("lo")?, a.int("hi")?);
    if hi <= lo {
        return Err(ToolError::arg("hi", format!("`hi` ({hi}) must be above `lo` ({lo})")));
    }
    let n = count_or_one(a, "n")?;
    let mut rng = stream(a, "seed", ctx)?;
    Ok(draws(n, || rng.random_range(lo..hi) as f64))
}

fn shuffle_sig() -> Signature {
    Signature::new("shuffle", Category::Random, "The items in a random order.")
        .param("xs", Type::Any, "a list or range")
        .opt("seed", Type::Num, Value::None, "pin this call's random stream")
        .returns(Type::list(Type::Any))
        .example("let xs = shuffle(0..10)\nassert sort(xs) == sort(0..10)")
}
fn shuffle(a: &Args, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let mut items = a.items("xs")?;
    let mut rng = stream(a, "seed", ctx)?;
    items.shuffle(&mut rng);
    Ok(Value::list(items))
}

fn sample_sig() -> Signature {
    Signature::new("sample", Category::Random, "`k` items drawn without replacement, in the order drawn.")
        .param("xs", Type::Any, "a list, range or data set")
        .param("k", Type::Num, "how many")
        .opt("seed", Type::Num, Value::None, "pin this call's random stream")
        .returns(Type::OneOf(vec![Type::list(Type::Any), Type::Handle(HandleKind::Dataset)]))
        .example("let s = sample(0..100, 5, seed: 1)\nassert len(s) == 5\nassert s == sample(0..100, 5, seed: 1)")
}
fn sample(a: &Args, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    // A data set samples into a smaller data set, in the order drawn.
    if let Value::Handle(h) = a.get("xs") {
        if let Some(len) = h.count() {
            let k = a.count("k")?;
            if k > len {
                return Err(ToolError::arg("k", format!("cannot draw {k} items from {len} without replacement")));
            }
            let mut rng = stream(a, "seed", ctx)?;
            let idx: Vec<usize> = rand::seq::index::sample(&mut rng, len, k).into_iter().collect();
            return h.select(&idx).ok_or_else(|| ToolError::arg("xs", "this collection cannot be sampled"));
        }
    }
    let items = a.items("xs")?;
    let k = a.count("k")?;
    if k > items.len() {
        return Err(ToolError::arg("k", format!("cannot draw {k} items from {} without replacement", items.len())));
    }
    let mut rng = stream(a, "seed", ctx)?;
    let idx = rand::seq::index::sample(&mut rng, items.len(), k);
    Ok(Value::list(idx.iter().map(|i| items[i].clone()).collect()))
}

fn choice_sig() -> Signature {
    Signature::new("choice", Category::Random, "One item chosen at random.")
        .param("xs", Type::Any, "a non-empty list or range")
        .opt("seed", Type::Num, Value::None, "pin this call's random stream")
        .returns(Type::Any)
        .example("assert choice([\"a\", \"b\"]) in [\"a\", \"b\"]")
}
fn choice(a: &Args, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let items = a.items("xs")?;
    if items.is_empty() {
        return Err(ToolError::arg("xs", "cannot choose from an empty list"));
    }
    let mut rng = stream(a, "seed", ctx)?;
    let i = rng.random_range(0..items.len());
    Ok(items[i].clone())
}

pub(super) fn register(r: &mut Registry) {
    for (sig, f) in [
        (rand_sig as fn() -> Signature, rand as super::ToolFn),
        (randn_sig, randn),
        (randint_sig, randint),
        (shuffle_sig, shuffle),
        (sample_sig, sample),
        (choice_sig, choice),
    ] {
        r.register(FnTool::new(sig, f));
    }
}
