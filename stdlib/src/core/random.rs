//! Randomness, only from the run's seed: each call draws from its own
//! stream, derived from the seed and the call's step number. Passing
//! `seed:` pins a call's stream so that adding calls before it does not
//! change what it draws.

use assay_interpreter::{iter_values, Bound, HandleKind, ToolCtx, ToolError, Type, Value};
// `::rand`: the crate, not the tool module `rand` declared below.
use ::rand::seq::SliceRandom;
use ::rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::declare::{tool, ToolResult};

const MAX_DRAWS: usize = 10_000_000;

/// The stream for a `seed` given (pinned) or not (the run's).
pub(crate) fn stream_of(seed: Option<i64>, ctx: &mut dyn ToolCtx) -> ChaCha8Rng {
    match seed {
        Some(s) => assay_interpreter::step_rng(s as u64, u64::MAX),
        None => ChaCha8Rng::from_rng(ctx.rng()),
    }
}

/// How many draws `n` asks for (`None`: one number, not a list).
fn count_or_one(arg: &Bound<Option<i64>>) -> Result<Option<usize>, ToolError> {
    match **arg {
        None => Ok(None),
        Some(n) if n < 0 || n as usize > MAX_DRAWS => {
            Err(arg.error(format!("`n` must be between 0 and {MAX_DRAWS}, found {n}")))
        }
        Some(n) => Ok(Some(n as usize)),
    }
}

/// The items of a list or range given as `xs`.
fn items_of(xs: &Bound<Value>) -> Result<Vec<Value>, ToolError> {
    iter_values(xs).ok_or_else(|| xs.error(format!("`xs` must be a list, found {}", xs.type_name())))
}

fn draws(n: Option<usize>, mut f: impl FnMut() -> f64) -> Value {
    match n {
        None => Value::Num(f()),
        Some(n) => Value::nums((0..n).map(|_| f())),
    }
}

fn one_or_list() -> Type {
    Type::OneOf(vec![Type::Num, Type::list(Type::Num)])
}

tool! {
    /// Uniform random numbers in [0, 1): one number, or a list of `n`.
    ///
    /// ```assay
    /// let xs = rand(n: 100)
    /// assert len(xs) == 100
    /// assert min(xs) >= 0 and max(xs) < 1
    /// assert rand(seed: 3) == rand(seed: 3)
    /// ```
    rand in Random -> one_or_list();
    {
        /// how many (omit for one number)
        n: Option<i64> = None,
        /// pin this call's random stream
        seed: Option<i64> = None,
    }
    rand
}

fn rand(p: rand::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let n = count_or_one(&p.n)?;
    let mut rng = stream_of(*p.seed, ctx);
    Ok(draws(n, || rng.random::<f64>()))
}

tool! {
    /// Normally distributed random numbers.
    ///
    /// ```assay
    /// let xs = randn(n: 2000, mean: 5)
    /// assert abs(mean(xs) - 5) < 0.2
    /// ```
    randn in Random -> one_or_list();
    {
        /// how many (omit for one number)
        n: Option<i64> = None,
        /// mean
        mean: f64 = 0.0,
        /// standard deviation
        std: f64 = 1.0,
        /// pin this call's random stream
        seed: Option<i64> = None,
    }
    randn
}

fn randn(p: randn::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let n = count_or_one(&p.n)?;
    let (m, s) = (*p.mean, *p.std);
    if s < 0.0 {
        return Err(p.std.error("`std` must not be negative"));
    }
    let mut rng = stream_of(*p.seed, ctx);
    Ok(draws(n, || {
        let z: f64 = StandardNormal.sample(&mut rng);
        m + s * z
    }))
}

tool! {
    /// Random whole numbers in [lo, hi).
    ///
    /// ```assay
    /// let xs = randint(0, 3, n: 50)
    /// assert min(xs) >= 0 and max(xs) <= 2
    /// ```
    randint in Random -> one_or_list();
    {
        /// smallest value
        lo: i64,
        /// one past the largest value
        hi: i64,
        /// how many (omit for one number)
        n: Option<i64> = None,
        /// pin this call's random stream
        seed: Option<i64> = None,
    }
    randint
}

fn randint(p: randint::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let (lo, hi) = (*p.lo, *p.hi);
    if hi <= lo {
        return Err(p.hi.error(format!("`hi` ({hi}) must be above `lo` ({lo})")));
    }
    let n = count_or_one(&p.n)?;
    let mut rng = stream_of(*p.seed, ctx);
    Ok(draws(n, || rng.random_range(lo..hi) as f64))
}

tool! {
    /// The items in a random order.
    ///
    /// ```assay
    /// let xs = shuffle(0..10)
    /// assert sort(xs) == sort(0..10)
    /// ```
    shuffle in Random -> Type::list(Type::Any);
    {
        /// a list or range
        xs: Value,
        /// pin this call's random stream
        seed: Option<i64> = None,
    }
    shuffle
}

fn shuffle(p: shuffle::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let mut items = items_of(&p.xs)?;
    let mut rng = stream_of(*p.seed, ctx);
    items.shuffle(&mut rng);
    Ok(Value::list(items))
}

tool! {
    /// `k` items drawn without replacement, in the order drawn.
    ///
    /// ```assay
    /// let s = sample(0..100, 5, seed: 1)
    /// assert len(s) == 5
    /// assert s == sample(0..100, 5, seed: 1)
    /// ```
    sample in Random -> Type::OneOf(vec![Type::list(Type::Any), Type::Handle(HandleKind::Dataset)]);
    {
        /// a list, range or data set
        xs: Value,
        /// how many
        k: usize,
        /// pin this call's random stream
        seed: Option<i64> = None,
    }
    sample
}

fn sample(p: sample::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let k = *p.k;
    // A data set samples into a smaller data set, in the order drawn.
    if let Value::Handle(h) = &*p.xs {
        if let Some(len) = h.count() {
            if k > len {
                return Err(p.k.error(format!("cannot draw {k} items from {len} without replacement")));
            }
            let mut rng = stream_of(*p.seed, ctx);
            let idx: Vec<usize> = ::rand::seq::index::sample(&mut rng, len, k).into_iter().collect();
            return h.select(&idx).ok_or_else(|| p.xs.error("this collection cannot be sampled"));
        }
    }
    let items = items_of(&p.xs)?;
    if k > items.len() {
        return Err(p.k.error(format!("cannot draw {k} items from {} without replacement", items.len())));
    }
    let mut rng = stream_of(*p.seed, ctx);
    let idx = ::rand::seq::index::sample(&mut rng, items.len(), k);
    Ok(Value::list(idx.iter().map(|i| items[i].clone()).collect()))
}

tool! {
    /// One item chosen at random.
    ///
    /// ```assay
    /// assert choice(["a", "b"]) in ["a", "b"]
    /// ```
    choice in Random -> Type::Any;
    {
        /// a non-empty list or range
        xs: Value,
        /// pin this call's random stream
        seed: Option<i64> = None,
    }
    choice
}

fn choice(p: choice::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let items = items_of(&p.xs)?;
    if items.is_empty() {
        return Err(p.xs.error("cannot choose from an empty list"));
    }
    let mut rng = stream_of(*p.seed, ctx);
    let i = rng.random_range(0..items.len());
    Ok(items[i].clone())
}
