//! Lists and records: length, ranges, zipping, mapping and filtering with
//! script functions, sorting and the like. Lists are values: every tool
//! returns a new list.

use std::collections::BTreeMap;
use std::sync::Arc;

use assay_interpreter::{iter_values, Arg, HandleKind, ToolCtx, ToolError, Type, Value};

use crate::core::declare::{tool, ToolResult};
use crate::core::kinds::Function;

const MAX_RANGE: i64 = 10_000_000;

tool! {
    /// Number of items of a list, characters of a string, fields of a record, numbers in a range, or
    /// rows of a tensor.
    ///
    /// ```assay
    /// assert len([1, 2]) == 2
    /// assert len("abc") == 3
    /// assert len(0..5) == 5
    /// ```
    len in Lists -> Type::Num;
    {
        /// a collection
        x: Value [Type::OneOf(vec![Type::list(Type::Any), Type::Str, Type::record(), Type::Range, Type::Tensor, Type::Handle(HandleKind::Dataset)])],
    }
    len
}

fn len(p: len::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let n = match &*p.x {
        Value::List(items) => items.len(),
        Value::Str(s) => s.chars().count(),
        Value::Record(r) => r.len(),
        Value::Range(lo, hi) => (hi - lo).max(0) as usize,
        Value::Tensor(t) => t.shape().first().copied().unwrap_or(1),
        Value::Handle(h) if h.count().is_some() => h.count().unwrap_or(0),
        other => return Err(p.x.error(format!("a {} has no length", other.type_name()))),
    };
    Ok(Value::Num(n as f64))
}

tool! {
    /// Whole numbers from `start` up to (not including) `stop`, by `step`. `range(n)` is 0..n.
    ///
    /// ```assay
    /// assert range(3) == [0, 1, 2]
    /// assert range(10, 0, step: -4) == [10, 6, 2]
    /// ```
    range in Lists -> Type::list(Type::Num);
    {
        /// first number (or the stop, if it is the only argument)
        start: i64,
        /// one past the last number
        stop: Option<i64> = None,
        /// increment (may be negative, not zero)
        step: i64 = 1,
    }
    range
}

fn range(p: range::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let (start, stop) = match *p.stop {
        Some(stop) => (*p.start, stop),
        None => (0, *p.start),
    };
    let step = *p.step;
    if step == 0 {
        return Err(p.step.error("`step` must not be zero"));
    }
    let n = if step > 0 { (stop - start + step - 1) / step } else { (start - stop - step - 1) / -step }.max(0);
    if n > MAX_RANGE {
        return Err(ToolError::new(format!("a range of {n} numbers is too long (at most {MAX_RANGE})")));
    }
    Ok(Value::nums((0..n).map(|i| (start + i * step) as f64)))
}

tool! {
    /// Pairs up items: [[a0, b0], [a1, b1], ...], as long as the shorter list.
    ///
    /// ```assay
    /// assert zip([1, 2, 3], ["a", "b"]) == [[1, "a"], [2, "b"]]
    /// ```
    zip in Lists -> Type::list(Type::list(Type::Any));
    {
        /// first list
        xs: Vec<Value> [Type::Any],
        /// second list
        ys: Vec<Value> [Type::Any],
    }
    zip
}

fn zip(p: zip::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let (xs, ys) = (p.xs.clone(), p.ys.clone());
    Ok(Value::list(xs.into_iter().zip(ys).map(|(x, y)| Value::list(vec![x, y])).collect()))
}

tool! {
    /// Pairs each item with its index: [[0, x0], [1, x1], ...].
    ///
    /// ```assay
    /// assert enumerate(["a", "b"]) == [[0, "a"], [1, "b"]]
    /// ```
    enumerate in Lists -> Type::list(Type::list(Type::Any));
    {
        /// a list
        xs: Vec<Value> [Type::Any],
    }
    enumerate
}

fn enumerate(p: enumerate::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(Value::list(
        p.xs.clone().into_iter().enumerate().map(|(i, x)| Value::list(vec![Value::Num(i as f64), x])).collect(),
    ))
}

tool! {
    /// Applies a function to every item: a script function, a lambda `x => ...`, a tool or a rhai
    /// function.
    ///
    /// ```assay
    /// assert map([1, 2, 3], x => x * 10) == [10, 20, 30]
    /// assert map([-1, 2], abs) == [1, 2]
    /// ```
    map in Lists -> Type::list(Type::Any);
    {
        /// a list or range
        xs: Vec<Value> [Type::Any],
        /// function of one item
        f: Function,
    }
    map
}

fn map(p: map::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let f = p.f.clone();
    let mut out = Vec::new();
    for x in p.xs.clone() {
        out.push(ctx.call(&f, vec![x])?);
    }
    Ok(Value::list(out))
}

tool! {
    /// As `map`, and the items are the script's shardable work: under `assay run --shard i/n` each
    /// shard applies the function to its block of items (and the script goes on with that block
    /// alone) and `assay merge` puts the results back in order, exactly as one run gives them. The
    /// function's random numbers depend on the item's position, not on how items were split.
    /// Results must be plain values (no models or functions).
    ///
    /// ```assay
    /// let squares = shard_map(range(0, 6), x => x * x)
    /// assert squares == [0, 1, 4, 9, 16, 25]
    /// ```
    shard_map in Lists -> Type::list(Type::Any), shardable(shard_map_merge);
    {
        /// a list or range
        xs: Vec<Value> [Type::Any],
        /// function of one item
        f: Function,
    }
    // The whole list, or under a shard its block as a partial result.
    shard_map
}

fn shard_map(p: shard_map::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let n = p.xs.len();
    let block = match ctx.share() {
        Some(s) => s.range(n),
        None => 0..n,
    };
    let first = block.start;
    let mut out = Vec::with_capacity(block.len());
    for (i, x) in p.xs.into_inner().into_iter().enumerate().skip(first).take(block.len()) {
        out.push(ctx.call_item(&p.f, vec![x], i as u64)?);
    }
    let part = Value::record([("first", Value::Num(first as f64)), ("items", Value::list(out))]);
    match ctx.share() {
        Some(_) => Ok(part),
        None => merge_blocks(n, ctx, vec![part]),
    }
}

/// The shards' blocks of results, in order.
/// `shard_map`'s merge: the shards' blocks of results, in order.
fn shard_map_merge(p: shard_map::Params, ctx: &mut dyn ToolCtx, parts: Vec<Value>) -> Result<Value, ToolError> {
    merge_blocks(p.xs.len(), ctx, parts)
}

fn merge_blocks(n: usize, ctx: &mut dyn ToolCtx, parts: Vec<Value>) -> Result<Value, ToolError> {
    let mut out = Vec::with_capacity(n);
    for p in parts {
        let Value::Record(r) = &p else {
            return Err(ToolError::new("a shard's block of results is not a record"));
        };
        match (r.get("first"), r.get("items")) {
            (Some(Value::Num(_)), Some(Value::List(items))) if ctx.share().is_some() => {
                out.extend(items.iter().cloned())
            }
            (Some(Value::Num(first)), Some(Value::List(items))) if *first == out.len() as f64 => {
                out.extend(items.iter().cloned())
            }
            _ => return Err(ToolError::new("a shard's block of results is not where the previous one ended")),
        }
    }
    if out.len() != n && ctx.share().is_none() {
        return Err(ToolError::new(format!("the shards' blocks hold {} results for {n} items", out.len())));
    }
    Ok(Value::list(out))
}

tool! {
    /// The items for which the function returns true. On a data set, the predicate sees each item's
    /// {index, name, label} (no image is read) and the result is a smaller data set.
    ///
    /// ```assay
    /// assert filter(0..10, x => x % 3 == 0) == [0, 3, 6, 9]
    /// ```
    filter in Lists -> Type::OneOf(vec![Type::list(Type::Any), Type::Handle(HandleKind::Dataset)]);
    {
        /// a list, range or data set
        xs: Arg [Type::Any],
        /// predicate of one item, returning true or false
        f: Function,
    }
    filter
}

fn filter(p: filter::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let f = p.f.clone();
    let keep = |x: Value, ctx: &mut dyn ToolCtx| match ctx.call(&f, vec![x])? {
        Value::Bool(b) => Ok(b),
        other => Err(p
            .f
            .error(format!("the predicate must return true or false, it returned a {}", other.type_name()))
            .help("compare explicitly, e.g. `x => x > 0`")),
    };
    if let Value::Handle(h) = p.xs.get() {
        if let Some(len) = h.count() {
            let mut idx = Vec::new();
            for i in 0..len {
                let e = h.entry(i).ok_or_else(|| p.xs.error(format!("a {} cannot be filtered", h.kind())))?;
                if keep(e, ctx)? {
                    idx.push(i);
                }
            }
            return h.select(&idx).ok_or_else(|| p.xs.error("this collection cannot be cut"));
        }
    }
    let mut out = Vec::new();
    for x in p.xs.items()? {
        if keep(x.clone(), ctx)? {
            out.push(x);
        }
    }
    Ok(Value::list(out))
}

tool! {
    /// Folds the items into one value: f(f(f(init, x0), x1), ...).
    ///
    /// ```assay
    /// assert reduce([1, 2, 3, 4], (acc, x) => acc * x, 1) == 24
    /// ```
    reduce in Lists -> Type::Any;
    {
        /// a list or range
        xs: Vec<Value> [Type::Any],
        /// function of (accumulator, item)
        f: Function,
        /// starting value
        init: Value,
    }
    reduce
}

fn reduce(p: reduce::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let f = p.f.clone();
    let mut acc = p.init.clone();
    for x in p.xs.clone() {
        acc = ctx.call(&f, vec![acc, x])?;
    }
    Ok(acc)
}

fn bools(xs: &Arg) -> Result<Vec<bool>, ToolError> {
    xs.items()?
        .into_iter()
        .map(|v| match v {
            Value::Bool(b) => Ok(b),
            other => Err(xs.error(format!("expected a list of true/false, found a {}", other.type_name()))),
        })
        .collect()
}

tool! {
    /// Whether any item is true.
    ///
    /// ```assay
    /// assert any([false, true])
    /// assert not any([])
    /// ```
    any in Lists -> Type::Bool;
    {
        /// bools
        xs: Arg [Type::list(Type::Bool)],
    }
    any
}

fn any(p: any::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(Value::Bool(bools(&p.xs)?.into_iter().any(|b| b)))
}
tool! {
    /// Whether every item is true.
    ///
    /// ```assay
    /// assert all([true, true])
    /// assert all(map([1, 2], x => x > 0))
    /// ```
    all in Lists -> Type::Bool;
    {
        /// bools
        xs: Arg [Type::list(Type::Bool)],
    }
    all
}

fn all(p: all::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(Value::Bool(bools(&p.xs)?.into_iter().all(|b| b)))
}

tool! {
    /// How many items equal `x`.
    ///
    /// ```assay
    /// assert count([1, 2, 1], 1) == 2
    /// ```
    count in Lists -> Type::Num;
    {
        /// a list
        xs: Vec<Value> [Type::Any],
        /// the value to count
        x: Value,
    }
    count
}

fn count(p: count::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let x = &p.x;
    Ok(Value::Num(p.xs.clone().iter().filter(|v| v.equals(x)).count() as f64))
}

tool! {
    /// The distinct items, in order of first appearance.
    ///
    /// ```assay
    /// assert unique([3, 1, 3, 2, 1]) == [3, 1, 2]
    /// ```
    unique in Lists -> Type::list(Type::Any);
    {
        /// a list
        xs: Vec<Value> [Type::Any],
    }
    unique
}

fn unique(p: unique::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for x in p.xs.clone() {
        if seen.insert(x.digest()) {
            out.push(x);
        }
    }
    Ok(Value::list(out))
}

tool! {
    /// Index of the first item equal to `x`, or -1.
    ///
    /// ```assay
    /// assert index_of(["a", "b"], "b") == 1
    /// assert index_of([1], 5) == -1
    /// ```
    index_of in Lists -> Type::Num;
    {
        /// a list
        xs: Vec<Value> [Type::Any],
        /// the value to find
        x: Value,
    }
    index_of
}

fn index_of(p: index_of::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let x = &p.x;
    Ok(Value::Num(p.xs.clone().iter().position(|v| v.equals(x)).map(|i| i as f64).unwrap_or(-1.0)))
}

tool! {
    /// Joins a list of lists into one list (one level).
    ///
    /// ```assay
    /// assert flatten([[1, 2], [3], []]) == [1, 2, 3]
    /// ```
    flatten in Lists -> Type::list(Type::Any);
    {
        /// a list of lists
        xs: Vec<Value>,
    }
    flatten
}

fn flatten(p: flatten::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let mut out = Vec::new();
    for (i, x) in p.xs.clone().into_iter().enumerate() {
        match iter_values(&x) {
            Some(items) if !matches!(x, Value::Str(_)) => out.extend(items),
            _ => return Err(p.xs.error(format!("item {i} is a {}, not a list", x.type_name()))),
        }
    }
    Ok(Value::list(out))
}

tool! {
    /// The first `n` items of a list or data set (all of them if there are fewer).
    ///
    /// ```assay
    /// assert take([1, 2, 3], 2) == [1, 2]
    /// assert take(0..3, 5) == [0, 1, 2]
    /// ```
    take in Lists -> Type::Any;
    {
        /// a list, range or data set
        xs: Arg [Type::Any],
        /// how many
        n: usize,
    }
    take
}

fn take(p: take::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let n = *p.n;
    if let Value::Handle(h) = p.xs.get() {
        if let Some(len) = h.count() {
            let idx: Vec<usize> = (0..n.min(len)).collect();
            return h.select(&idx).ok_or_else(|| p.xs.error("this collection cannot be cut"));
        }
    }
    let mut items = p.xs.items()?;
    items.truncate(n);
    Ok(Value::list(items))
}

tool! {
    /// The items in reverse order.
    ///
    /// ```assay
    /// assert reverse([1, 2, 3]) == [3, 2, 1]
    /// ```
    reverse in Lists -> Type::list(Type::Any);
    {
        /// a list
        xs: Vec<Value> [Type::Any],
    }
    reverse
}

fn reverse(p: reverse::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let mut v = p.xs.clone();
    v.reverse();
    Ok(Value::list(v))
}

fn compare(x: &Value, y: &Value) -> Result<std::cmp::Ordering, String> {
    match (x, y) {
        (Value::Num(a), Value::Num(b)) => Ok(a.total_cmp(b)),
        (Value::Str(a), Value::Str(b)) => Ok(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Ok(a.cmp(b)),
        (Value::List(a), Value::List(b)) => {
            for (p, q) in a.iter().zip(b.iter()) {
                let o = compare(p, q)?;
                if o != std::cmp::Ordering::Equal {
                    return Ok(o);
                }
            }
            Ok(a.len().cmp(&b.len()))
        }
        _ => Err(format!("cannot order a {} against a {}", x.type_name(), y.type_name())),
    }
}

tool! {
    /// The items in ascending order (stable). `by` gives each item's sort key; `reverse: true` for
    /// descending.
    ///
    /// ```assay
    /// assert sort([3, 1, 2]) == [1, 2, 3]
    /// assert sort(["bb", "a"], by: s => len(s)) == ["a", "bb"]
    /// assert sort([1, 3, 2], reverse: true) == [3, 2, 1]
    /// ```
    sort in Lists -> Type::list(Type::Any);
    {
        /// a list of numbers, strings or lists
        xs: Vec<Value> [Type::Any],
        /// key function of one item
        by: Option<Function> = None,
        /// descending order
        reverse: bool = false,
    }
    sort
}

fn sort(p: sort::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let items = p.xs.clone();
    let keys: Vec<Value> = match &*p.by {
        None => items.clone(),
        Some(f) => {
            let mut ks = Vec::with_capacity(items.len());
            for x in &items {
                ks.push(ctx.call(f, vec![x.clone()])?);
            }
            ks
        }
    };
    // Check every key is comparable before sorting.
    for w in keys.windows(2) {
        compare(&w[0], &w[1]).map_err(|e| if p.by.is_none() { p.xs.error(e) } else { p.by.error(e) })?;
    }
    let mut idx: Vec<usize> = (0..items.len()).collect();
    idx.sort_by(|&i, &j| compare(&keys[i], &keys[j]).unwrap_or(std::cmp::Ordering::Equal));
    if *p.reverse {
        // Descending but still stable for equal keys.
        idx.sort_by(|&i, &j| compare(&keys[j], &keys[i]).unwrap_or(std::cmp::Ordering::Equal));
    }
    Ok(Value::list(idx.into_iter().map(|i| items[i].clone()).collect()))
}

tool! {
    /// A record's field names, sorted.
    ///
    /// ```assay
    /// assert keys({b: 1, a: 2}) == ["a", "b"]
    /// ```
    keys in Lists -> Type::list(Type::Str);
    {
        /// a record
        r: BTreeMap<String, Value>,
    }
    keys
}

fn keys(p: keys::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(Value::list(p.r.keys().map(Value::str).collect()))
}
tool! {
    /// A record's values, in the order of its sorted field names.
    ///
    /// ```assay
    /// assert values({b: 1, a: 2}) == [2, 1]
    /// ```
    values in Lists -> Type::list(Type::Any);
    {
        /// a record
        r: BTreeMap<String, Value>,
    }
    values
}

fn values(p: values::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(Value::list(p.r.values().cloned().collect()))
}

tool! {
    /// A copy of a record with one field set (records are values: the original is unchanged).
    ///
    /// ```assay
    /// let r = {a: 1}
    /// let s = r.with("b", 2)
    /// assert s == {a: 1, b: 2}
    /// assert r == {a: 1}
    /// ```
    with in Lists -> Type::record();
    {
        /// a record
        r: BTreeMap<String, Value>,
        /// field name
        key: String,
        /// new value
        value: Value,
    }
    with
}

fn with(p: with::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let mut r: BTreeMap<String, Value> = p.r.clone();
    r.insert(p.key.clone(), p.value.clone());
    Ok(Value::Record(Arc::new(r)))
}
