//! Lists and records: length, ranges, zipping, mapping and filtering with
//! script functions, sorting and the like. Lists are values: every tool
//! returns a new list.

use std::collections::BTreeMap;
use std::sync::Arc;

use assay_interpreter::{
    iter_values, Args, Category, HandleKind, Registry, Signature, ToolCtx, ToolError, Type, Value,
};

use super::FnTool;

const MAX_RANGE: i64 = 10_000_000;

fn len_sig() -> Signature {
    Signature::new("len", Category::Lists, "Number of items of a list, characters of a string, fields of a record, numbers in a range, or rows of a tensor.")
        .param("x", Type::OneOf(vec![Type::list(Type::Any), Type::Str, Type::record(), Type::Range, Type::Tensor, Type::Handle(HandleKind::Dataset)]), "a collection")
        .returns(Type::Num)
        .example("assert len([1, 2]) == 2\nassert len(\"abc\") == 3\nassert len(0..5) == 5")
}
fn len(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let n = match a.get("x") {
        Value::List(items) => items.len(),
        Value::Str(s) => s.chars().count(),
        Value::Record(r) => r.len(),
        Value::Range(lo, hi) => (hi - lo).max(0) as usize,
        Value::Tensor(t) => t.shape().first().copied().unwrap_or(1),
        Value::Handle(h) if h.count().is_some() => h.count().unwrap_or(0),
        other => return Err(ToolError::arg("x", format!("a {} has no length", other.type_name()))),
    };
    Ok(Value::Num(n as f64))
}

fn range_sig() -> Signature {
    Signature::new(
        "range",
        Category::Lists,
        "Whole numbers from `start` up to (not including) `stop`, by `step`. `range(n)` is 0..n.",
    )
    .param("start", Type::Num, "first number (or the stop, if it is the only argument)")
    .opt("stop", Type::Num, Value::None, "one past the last number")
    .opt("step", Type::Num, Value::Num(1.0), "increment (may be negative, not zero)")
    .returns(Type::list(Type::Num))
    .example("assert range(3) == [0, 1, 2]\nassert range(10, 0, step: -4) == [10, 6, 2]")
}
fn range(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let (start, stop) = match a.opt_int("stop")? {
        Some(stop) => (a.int("start")?, stop),
        None => (0, a.int("start")?),
    };
    let step = a.int("step")?;
    if step == 0 {
        return Err(ToolError::arg("step", "`step` must not be zero"));
    }
    let n = if step > 0 { (stop - start + step - 1) / step } else { (start - stop - step - 1) / -step }.max(0);
    if n > MAX_RANGE {
        return Err(ToolError::new(format!("a range of {n} numbers is too long (at most {MAX_RANGE})")));
    }
    Ok(Value::nums((0..n).map(|i| (start + i * step) as f64)))
}

fn zip_sig() -> Signature {
    Signature::new("zip", Category::Lists, "Pairs up items: [[a0, b0], [a1, b1], ...], as long as the shorter list.")
        .param("xs", Type::Any, "first list")
        .param("ys", Type::Any, "second list")
        .returns(Type::list(Type::list(Type::Any)))
        .example("assert zip([1, 2, 3], [\"a\", \"b\"]) == [[1, \"a\"], [2, \"b\"]]")
}
fn zip(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let (xs, ys) = (a.items("xs")?, a.items("ys")?);
    Ok(Value::list(xs.into_iter().zip(ys).map(|(x, y)| Value::list(vec![x, y])).collect()))
}

fn enumerate_sig() -> Signature {
    Signature::new("enumerate", Category::Lists, "Pairs each item with its index: [[0, x0], [1, x1], ...].")
        .param("xs", Type::Any, "a list")
        .returns(Type::list(Type::list(Type::Any)))
        .example("assert enumerate([\"a\", \"b\"]) == [[0, \"a\"], [1, \"b\"]]")
}
fn enumerate(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    Ok(Value::list(
        a.items("xs")?.into_iter().enumerate().map(|(i, x)| Value::list(vec![Value::Num(i as f64), x])).collect(),
    ))
}

fn map_sig() -> Signature {
    Signature::new(
        "map",
        Category::Lists,
        "Applies a function to every item: a script function, a lambda `x => ...`, a tool or a rhai function.",
    )
    .param("xs", Type::Any, "a list or range")
    .param("f", Type::Func, "function of one item")
    .returns(Type::list(Type::Any))
    .example("assert map([1, 2, 3], x => x * 10) == [10, 20, 30]\nassert map([-1, 2], abs) == [1, 2]")
}
fn map(a: &Args, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let f = a.func("f")?.clone();
    let mut out = Vec::new();
    for x in a.items("xs")? {
        out.push(ctx.call(&f, vec![x])?);
    }
    Ok(Value::list(out))
}

fn shard_map_sig() -> Signature {
    Signature::new(
        "shard_map",
        Category::Lists,
        "As `map`, and the items are the script's shardable work: under `assay run --shard i/n` each shard applies the function to its block of items (and the script goes on with that block alone) and `assay merge` puts the results back in order, exactly as one run gives them. The function's random numbers depend on the item's position, not on how items were split. Results must be plain values (no models or functions).",
    )
    .param("xs", Type::Any, "a list or range")
    .param("f", Type::Func, "function of one item")
    .returns(Type::list(Type::Any))
    .example("let squares = shard_map(range(0, 6), x => x * x)\nassert squares == [0, 1, 4, 9, 16, 25]")
    .shardable()
}

fn shard_map(a: &Args, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let f = a.func("f")?.clone();
    let items = a.items("xs")?;
    let block = match ctx.share() {
        Some(s) => s.range(items.len()),
        None => 0..items.len(),
    };
    let first = block.start;
    let mut out = Vec::with_capacity(block.len());
    for (i, x) in items.into_iter().enumerate().skip(first).take(block.len()) {
        out.push(ctx.call_item(&f, vec![x], i as u64)?);
    }
    Ok(Value::record([("first", Value::Num(first as f64)), ("items", Value::list(out))]))
}

/// The shards' blocks of results, in order.
fn shard_map_merge(a: &Args, ctx: &mut dyn ToolCtx, parts: Vec<Value>) -> Result<Value, ToolError> {
    let n = a.items("xs")?.len();
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

fn filter_sig() -> Signature {
    Signature::new("filter", Category::Lists, "The items for which the function returns true. On a data set, the predicate sees each item's {index, name, label} (no image is read) and the result is a smaller data set.")
        .param("xs", Type::Any, "a list, range or data set")
        .param("f", Type::Func, "predicate of one item, returning true or false")
        .returns(Type::OneOf(vec![Type::list(Type::Any), Type::Handle(HandleKind::Dataset)]))
        .example("assert filter(0..10, x => x % 3 == 0) == [0, 3, 6, 9]")
}
fn filter(a: &Args, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let f = a.func("f")?.clone();
    let keep = |x: Value, ctx: &mut dyn ToolCtx| match ctx.call(&f, vec![x])? {
        Value::Bool(b) => Ok(b),
        other => Err(ToolError::arg(
            "f",
            format!("the predicate must return true or false, it returned a {}", other.type_name()),
        )
        .help("compare explicitly, e.g. `x => x > 0`")),
    };
    if let Value::Handle(h) = a.get("xs") {
        if let Some(len) = h.count() {
            let mut idx = Vec::new();
            for i in 0..len {
                let e = h.entry(i).ok_or_else(|| ToolError::arg("xs", format!("a {} cannot be filtered", h.kind())))?;
                if keep(e, ctx)? {
                    idx.push(i);
                }
            }
            return h.select(&idx).ok_or_else(|| ToolError::arg("xs", "this collection cannot be cut"));
        }
    }
    let mut out = Vec::new();
    for x in a.items("xs")? {
        if keep(x.clone(), ctx)? {
            out.push(x);
        }
    }
    Ok(Value::list(out))
}

fn reduce_sig() -> Signature {
    Signature::new("reduce", Category::Lists, "Folds the items into one value: f(f(f(init, x0), x1), ...).")
        .param("xs", Type::Any, "a list or range")
        .param("f", Type::Func, "function of (accumulator, item)")
        .param("init", Type::Any, "starting value")
        .returns(Type::Any)
        .example("assert reduce([1, 2, 3, 4], (acc, x) => acc * x, 1) == 24")
}
fn reduce(a: &Args, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let f = a.func("f")?.clone();
    let mut acc = a.get("init").clone();
    for x in a.items("xs")? {
        acc = ctx.call(&f, vec![acc, x])?;
    }
    Ok(acc)
}

fn bools(a: &Args) -> Result<Vec<bool>, ToolError> {
    a.items("xs")?
        .into_iter()
        .map(|v| match v {
            Value::Bool(b) => Ok(b),
            other => Err(ToolError::arg("xs", format!("expected a list of true/false, found a {}", other.type_name()))),
        })
        .collect()
}

fn any_sig() -> Signature {
    Signature::new("any", Category::Lists, "Whether any item is true.")
        .param("xs", Type::list(Type::Bool), "bools")
        .returns(Type::Bool)
        .example("assert any([false, true])\nassert not any([])")
}
fn any(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    Ok(Value::Bool(bools(a)?.into_iter().any(|b| b)))
}
fn all_sig() -> Signature {
    Signature::new("all", Category::Lists, "Whether every item is true.")
        .param("xs", Type::list(Type::Bool), "bools")
        .returns(Type::Bool)
        .example("assert all([true, true])\nassert all(map([1, 2], x => x > 0))")
}
fn all(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    Ok(Value::Bool(bools(a)?.into_iter().all(|b| b)))
}

fn count_sig() -> Signature {
    Signature::new("count", Category::Lists, "How many items equal `x`.")
        .param("xs", Type::Any, "a list")
        .param("x", Type::Any, "the value to count")
        .returns(Type::Num)
        .example("assert count([1, 2, 1], 1) == 2")
}
fn count(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let x = a.get("x");
    Ok(Value::Num(a.items("xs")?.iter().filter(|v| v.equals(x)).count() as f64))
}

fn unique_sig() -> Signature {
    Signature::new("unique", Category::Lists, "The distinct items, in order of first appearance.")
        .param("xs", Type::Any, "a list")
        .returns(Type::list(Type::Any))
        .example("assert unique([3, 1, 3, 2, 1]) == [3, 1, 2]")
}
fn unique(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for x in a.items("xs")? {
        if seen.insert(x.digest()) {
            out.push(x);
        }
    }
    Ok(Value::list(out))
}

fn index_of_sig() -> Signature {
    Signature::new("index_of", Category::Lists, "Index of the first item equal to `x`, or -1.")
        .param("xs", Type::Any, "a list")
        .param("x", Type::Any, "the value to find")
        .returns(Type::Num)
        .example("assert index_of([\"a\", \"b\"], \"b\") == 1\nassert index_of([1], 5) == -1")
}
fn index_of(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let x = a.get("x");
    Ok(Value::Num(a.items("xs")?.iter().position(|v| v.equals(x)).map(|i| i as f64).unwrap_or(-1.0)))
}

fn flatten_sig() -> Signature {
    Signature::new("flatten", Category::Lists, "Joins a list of lists into one list (one level).")
        .param("xs", Type::list(Type::Any), "a list of lists")
        .returns(Type::list(Type::Any))
        .example("assert flatten([[1, 2], [3], []]) == [1, 2, 3]")
}
fn flatten(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let mut out = Vec::new();
    for (i, x) in a.items("xs")?.into_iter().enumerate() {
        match iter_values(&x) {
            Some(items) if !matches!(x, Value::Str(_)) => out.extend(items),
            _ => return Err(ToolError::arg("xs", format!("item {i} is a {}, not a list", x.type_name()))),
        }
    }
    Ok(Value::list(out))
}

fn take_sig() -> Signature {
    Signature::new(
        "take",
        Category::Lists,
        "The first `n` items of a list or data set (all of them if there are fewer).",
    )
    .param("xs", Type::Any, "a list, range or data set")
    .param("n", Type::Num, "how many")
    .returns(Type::Any)
    .example("assert take([1, 2, 3], 2) == [1, 2]\nassert take(0..3, 5) == [0, 1, 2]")
}
fn take(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let n = a.count("n")?;
    if let Value::Handle(h) = a.get("xs") {
        if let Some(len) = h.count() {
            let idx: Vec<usize> = (0..n.min(len)).collect();
            return h.select(&idx).ok_or_else(|| ToolError::arg("xs", "this collection cannot be cut"));
        }
    }
    let mut items = a.items("xs")?;
    items.truncate(n);
    Ok(Value::list(items))
}

fn reverse_sig() -> Signature {
    Signature::new("reverse", Category::Lists, "The items in reverse order.")
        .param("xs", Type::Any, "a list")
        .returns(Type::list(Type::Any))
        .example("assert reverse([1, 2, 3]) == [3, 2, 1]")
}
fn reverse(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let mut v = a.items("xs")?;
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

fn sort_sig() -> Signature {
    Signature::new("sort", Category::Lists, "The items in ascending order (stable). `by` gives each item's sort key; `reverse: true` for descending.")
        .param("xs", Type::Any, "a list of numbers, strings or lists")
        .opt("by", Type::Func, Value::None, "key function of one item")
        .opt("reverse", Type::Bool, Value::Bool(false), "descending order")
        .returns(Type::list(Type::Any))
        .example("assert sort([3, 1, 2]) == [1, 2, 3]\nassert sort([\"bb\", \"a\"], by: s => len(s)) == [\"a\", \"bb\"]\nassert sort([1, 3, 2], reverse: true) == [3, 2, 1]")
}
fn sort(a: &Args, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let items = a.items("xs")?;
    let keys: Vec<Value> = match a.get("by") {
        Value::None => items.clone(),
        f => {
            let f = f.clone();
            let mut ks = Vec::with_capacity(items.len());
            for x in &items {
                ks.push(ctx.call(&f, vec![x.clone()])?);
            }
            ks
        }
    };
    // Check every key is comparable before sorting.
    for w in keys.windows(2) {
        compare(&w[0], &w[1]).map_err(|e| ToolError::arg(if a.is_none("by") { "xs" } else { "by" }, e))?;
    }
    let mut idx: Vec<usize> = (0..items.len()).collect();
    idx.sort_by(|&i, &j| compare(&keys[i], &keys[j]).unwrap_or(std::cmp::Ordering::Equal));
    if a.bool("reverse")? {
        // Descending but still stable for equal keys.
        idx.sort_by(|&i, &j| compare(&keys[j], &keys[i]).unwrap_or(std::cmp::Ordering::Equal));
    }
    Ok(Value::list(idx.into_iter().map(|i| items[i].clone()).collect()))
}

fn keys_sig() -> Signature {
    Signature::new("keys", Category::Lists, "A record's field names, sorted.")
        .param("r", Type::record(), "a record")
        .returns(Type::list(Type::Str))
        .example("assert keys({b: 1, a: 2}) == [\"a\", \"b\"]")
}
fn keys(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    Ok(Value::list(a.record("r")?.keys().map(Value::str).collect()))
}
fn values_sig() -> Signature {
    Signature::new("values", Category::Lists, "A record's values, in the order of its sorted field names.")
        .param("r", Type::record(), "a record")
        .returns(Type::list(Type::Any))
        .example("assert values({b: 1, a: 2}) == [2, 1]")
}
fn values(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    Ok(Value::list(a.record("r")?.values().cloned().collect()))
}

fn with_sig() -> Signature {
    Signature::new(
        "with",
        Category::Lists,
        "A copy of a record with one field set (records are values: the original is unchanged).",
    )
    .param("r", Type::record(), "a record")
    .param("key", Type::Str, "field name")
    .param("value", Type::Any, "new value")
    .returns(Type::record())
    .example("let r = {a: 1}\nlet s = r.with(\"b\", 2)\nassert s == {a: 1, b: 2}\nassert r == {a: 1}")
}
fn with(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let mut r: BTreeMap<String, Value> = a.record("r")?.clone();
    r.insert(a.str("key")?.to_string(), a.get("value").clone());
    Ok(Value::Record(Arc::new(r)))
}

pub(super) fn register(r: &mut Registry) {
    for (sig, f) in [
        (len_sig as fn() -> Signature, len as super::ToolFn),
        (range_sig, range),
        (zip_sig, zip),
        (enumerate_sig, enumerate),
        (map_sig, map),
        (filter_sig, filter),
        (reduce_sig, reduce),
        (any_sig, any),
        (all_sig, all),
        (count_sig, count),
        (unique_sig, unique),
        (index_of_sig, index_of),
        (flatten_sig, flatten),
        (reverse_sig, reverse),
        (take_sig, take),
        (sort_sig, sort),
        (keys_sig, keys),
        (values_sig, values),
        (with_sig, with),
    ] {
        r.register(FnTool::new(sig, f));
    }
    r.register(FnTool::new(shard_map_sig, shard_map_whole).merging(shard_map_merge));
}

/// The whole of `shard_map`, or a shard's block as a partial result.
fn shard_map_whole(a: &Args, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let part = shard_map(a, ctx)?;
    match ctx.share() {
        Some(_) => Ok(part),
        None => shard_map_merge(a, ctx, vec![part]),
    }
}
