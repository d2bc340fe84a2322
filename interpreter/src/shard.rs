//! Sharded runs: the same script run as `n` shards, each computing a
//! disjoint share of its shardable tool calls, then merged into the record
//! one machine would have written.
//!
//! A tool is shardable when its signature says so (`Signature::shardable`)
//! and it implements `Tool::merge`. Under `--shard i/n` the tool sees
//! `ToolCtx::share()` and returns a *partial* result for its share; the run
//! keeps it (with the call's key, the files it read and, if it drew random
//! numbers, the step it drew them at) and the script goes on with the merge
//! of that one partial, so later calls are reached. The shard's record is
//! its partials, never a results.json.
//!
//! The merge runs the script again. Every call that is not shardable runs
//! as usual (cheap work, or the cache answers it); each shardable call is
//! answered by `Tool::merge` over the partials of all `n` shards found
//! under the same key, so the merged record is the one-machine record as
//! long as each tool's merge is exact (top-k lists with ties broken by
//! index, samples keyed by item, effects and items concatenated in order).
//! A call that not every shard ran with the same arguments (they depend on
//! an earlier sharded result, or a shard stopped before it) runs whole in
//! the merge and is named in the manifest: slower, never wrong.
//!
//! A shardable call takes exactly one step, whatever its functions call:
//! the calls it makes for item `j` draw from steps derived from (step, j),
//! so an item's random stream does not depend on how items were split.

use std::collections::BTreeMap;

use crate::cache::{decode_entry, encode_entry, put_str, put_u64, Conditions, Reader};
use crate::value::Value;

/// One shard of `count`: its `index` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub index: usize,
    pub count: usize,
}

impl Share {
    /// `"i/n"` with `i < n`, `1 <= n <= 10000`.
    pub fn parse(s: &str) -> Result<Share, String> {
        let (i, n) = s.split_once('/').ok_or_else(|| format!("`{s}` is not INDEX/COUNT, e.g. 0/4"))?;
        let index: usize = i.trim().parse().map_err(|_| format!("`{i}` is not a shard index (0, 1, ...)"))?;
        let count: usize = n.trim().parse().map_err(|_| format!("`{n}` is not a number of shards"))?;
        Share::new(index, count)
    }

    pub fn new(index: usize, count: usize) -> Result<Share, String> {
        if count == 0 || count > MAX_SHARDS {
            return Err(format!("the number of shards must be between 1 and {MAX_SHARDS}, not {count}"));
        }
        if index >= count {
            return Err(format!("shard index {index} is not below the number of shards {count} (indices start at 0)"));
        }
        Ok(Share { index, count })
    }

    /// This shard's contiguous block of `0..n` (blocks differ in size by at most one).
    pub fn range(&self, n: usize) -> std::ops::Range<usize> {
        let at = |i: usize| ((i as u128 * n as u128) / self.count as u128) as usize;
        at(self.index)..at(self.index + 1)
    }
}

pub const MAX_SHARDS: usize = 10_000;

/// What a shard computed for one shardable call.
#[derive(Debug, Clone)]
pub struct Partial {
    /// The call's cache key: tool, arguments (functions by text, with the globals they name), version.
    pub key: String,
    pub tool: String,
    pub line: usize,
    /// Files the share read.
    pub inputs: BTreeMap<String, String>,
    /// `(seed, step)` if the call drew random numbers: the merge's call must be at the same step.
    pub rng: Option<(u64, u64)>,
    pub value: Value,
}

const MAGIC: &[u8] = b"assay-partials 1\n";

/// The bytes of a shard's `partials.bin`.
pub fn encode_partials(parts: &[Partial]) -> Result<Vec<u8>, String> {
    let mut out = MAGIC.to_vec();
    put_u64(&mut out, parts.len() as u64);
    for p in parts {
        put_str(&mut out, &p.key);
        put_str(&mut out, &p.tool);
        put_u64(&mut out, p.line as u64);
        let cond = Conditions { inputs: p.inputs.clone(), rng: p.rng, steps: 1 };
        let entry = encode_entry(&cond, &p.value).ok_or_else(|| {
            format!("the partial result of `{}` (line {}) is too large or holds a model or function", p.tool, p.line)
        })?;
        put_u64(&mut out, entry.len() as u64);
        out.extend_from_slice(&entry);
    }
    Ok(out)
}

/// Reads `partials.bin`; every entry's checksum is checked.
pub fn decode_partials(bytes: &[u8]) -> Result<Vec<Partial>, String> {
    let bad = || "the partial record is damaged or not an Assay partial record".to_string();
    let rest = bytes.strip_prefix(MAGIC).ok_or_else(bad)?;
    let mut r = Reader { b: rest };
    let n = r.len().ok_or_else(bad)?;
    let mut parts = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        let key = r.str().ok_or_else(bad)?;
        let tool = r.str().ok_or_else(bad)?;
        let line = r.u64().ok_or_else(bad)? as usize;
        let len = r.len().ok_or_else(bad)?;
        let entry = r.take(len).ok_or_else(bad)?;
        let (cond, value) = decode_entry(entry).ok_or_else(bad)?;
        parts.push(Partial { key, tool, line, inputs: cond.inputs, rng: cond.rng, value });
    }
    if !r.b.is_empty() {
        return Err(bad());
    }
    Ok(parts)
}

/// How a run treats shardable calls.
#[derive(Debug, Clone, Default)]
pub enum ShardMode {
    /// Whole, on one machine.
    #[default]
    Whole,
    /// One shard: shardable calls compute their share and are kept as
    /// partials. In a later stage, `earlier` holds every shard's partials
    /// of the stage before (`earlier[i]` shard i's): a call all of them
    /// finished is answered by their merge (and this shard's partial is
    /// kept again, for the final merge), so the call after it, which
    /// depended on the whole result, gets the same arguments in every
    /// shard and is split.
    Part { share: Share, earlier: Vec<Vec<Partial>> },
    /// The merge: shardable calls are answered from every shard's partials
    /// (`shards[i]` holds shard i's, in the order it made them).
    Merge { shards: Vec<Vec<Partial>>, stopped: Vec<Option<String>> },
}

/// What the merge found for one call.
pub(crate) enum Found<'a> {
    /// Every shard's partial, in shard order.
    All(Vec<&'a Partial>),
    /// No shard ran it.
    None,
    /// Some shards lack it: their indices.
    Missing(Vec<usize>),
}

pub(crate) fn find<'a>(shards: &'a [Vec<Partial>], key: &str, seed: u64, step: u64) -> Found<'a> {
    let mut all = Vec::with_capacity(shards.len());
    let mut missing = Vec::new();
    for (i, parts) in shards.iter().enumerate() {
        match parts.iter().find(|p| p.key == key && p.rng.is_none_or(|r| r == (seed, step))) {
            Some(p) => all.push(p),
            None => missing.push(i),
        }
    }
    if missing.is_empty() {
        Found::All(all)
    } else if all.is_empty() {
        Found::None
    } else {
        Found::Missing(missing)
    }
}

/// Every shard's partial value of one call, in shard order, and the files
/// they read between them: what `Tool::merge` is given.
pub(crate) fn values_and_reads(parts: &[&Partial]) -> (Vec<Value>, BTreeMap<String, String>) {
    let values = parts.iter().map(|p| p.value.clone()).collect();
    let mut read = BTreeMap::new();
    for p in parts {
        read.extend(p.inputs.clone());
    }
    (values, read)
}

/// The first step of item `item`'s calls inside the shardable call at
/// `step`: far above any top-level step, distinct per (step, item), with
/// room for 2^20 calls per item.
pub(crate) fn item_step(step: u64, item: u64) -> u64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"assay-item-step");
    h.update(step.to_le_bytes());
    h.update(item.to_le_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    (u64::from_le_bytes(b) | (1 << 63)) & !((1 << 20) - 1)
}

/// Items numbered from here are the calls a shardable tool makes for
/// itself (the same in every shard), in order.
pub const SHARED_ITEMS: u64 = 1 << 62;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_every_item_once_in_order() {
        for n in [0usize, 1, 5, 7, 64, 1001] {
            for count in [1usize, 2, 3, 8, 13] {
                let mut next = 0;
                for index in 0..count {
                    let r = Share::new(index, count).map(|s| s.range(n)).unwrap_or(0..0);
                    assert_eq!(r.start, next, "shard {index}/{count} of {n} starts where the last ended");
                    assert!(r.len() <= n / count + 1);
                    next = r.end;
                }
                assert_eq!(next, n, "{count} shards of {n} items cover them all");
            }
        }
    }

    #[test]
    fn share_parsing_says_what_is_wrong() {
        assert_eq!(Share::parse("2/4"), Ok(Share { index: 2, count: 4 }));
        assert!(Share::parse("4/4").is_err_and(|e| e.contains("not below")));
        assert!(Share::parse("0/0").is_err_and(|e| e.contains("between 1")));
        assert!(Share::parse("1").is_err_and(|e| e.contains("INDEX/COUNT")));
        assert!(Share::parse("a/2").is_err_and(|e| e.contains("shard index")));
    }

    #[test]
    fn partials_read_back_and_damage_is_refused() {
        let mut inputs = BTreeMap::new();
        inputs.insert("/data/a.png".to_string(), "ab".repeat(32));
        let parts = vec![
            Partial {
                key: "k1".into(),
                tool: "exemplars".into(),
                line: 3,
                inputs,
                rng: Some((7, 12)),
                value: Value::nums([1.0, 2.5]),
            },
            Partial {
                key: "k2".into(),
                tool: "shard_map".into(),
                line: 9,
                inputs: BTreeMap::new(),
                rng: None,
                value: Value::str("x"),
            },
        ];
        let bytes = encode_partials(&parts).unwrap_or_default();
        let back = decode_partials(&bytes).unwrap_or_default();
        assert_eq!(back.len(), 2);
        assert_eq!((back[0].key.as_str(), back[0].line, back[0].rng), ("k1", 3, Some((7, 12))));
        assert_eq!(back[0].value.digest(), Value::nums([1.0, 2.5]).digest());
        assert_eq!(back[0].inputs, parts[0].inputs);
        assert_eq!(back[1].value.digest(), Value::str("x").digest());
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(decode_partials(&bad).is_err(), "a flipped bit is caught by the entry's checksum");
        assert!(decode_partials(&bytes[..bytes.len() - 3]).is_err(), "a truncated file is refused");
        assert!(decode_partials(b"hello").is_err());
    }

    #[test]
    fn the_merge_finds_all_none_or_names_the_missing() {
        let p = |k: &str, rng| Partial {
            key: k.into(),
            tool: "t".into(),
            line: 1,
            inputs: BTreeMap::new(),
            rng,
            value: Value::None,
        };
        let shards = vec![vec![p("a", None), p("b", Some((1, 5)))], vec![p("a", None)], vec![p("a", None)]];
        assert!(matches!(find(&shards, "a", 1, 9), Found::All(v) if v.len() == 3));
        assert!(matches!(find(&shards, "c", 1, 9), Found::None));
        assert!(matches!(find(&shards, "b", 1, 5), Found::Missing(m) if m == vec![1, 2]));
        assert!(matches!(find(&shards, "b", 1, 6), Found::None), "a partial drawn at another step does not answer");
    }

    #[test]
    fn item_steps_are_distinct_and_far_from_top_level_steps() {
        let a = item_step(5, 0);
        assert!(a > 1 << 62);
        assert_ne!(a, item_step(5, 1));
        assert_ne!(a, item_step(6, 0));
        assert_eq!(a, item_step(5, 0));
        assert_eq!(a & ((1 << 20) - 1), 0);
    }
}
