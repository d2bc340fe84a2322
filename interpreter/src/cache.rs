//! The call cache's interpreter half: which tool calls may be answered from
//! a store, their keys, and the byte form of an entry. Where entries live is
//! the embedder's business ([`CallCache`]).
//!
//! A call is cached only when its result is a plain value (numbers, text,
//! lists, records, tensors, images; no model or function), its tool does not
//! depend on an outside service (`Signature::volatile`), and neither it nor
//! any function it called listed a folder, wrote an artifact, or recorded,
//! showed or asserted anything. The key is the tool, the digest of its
//! arguments (a script function by its text, the script's text and the
//! values it captured), and Assay's build (`CallCache::build`: the `assay`
//! command names its version and a digest of the sources it was built from). An entry keeps the conditions
//! under which its result holds: the digest of every file the call read
//! (checked again on every hit), and, if the call drew random numbers, the
//! seed and step it drew them at. An entry also keeps how many steps the
//! call took (its own and those of tools its functions called), so a hit
//! leaves every later call's random stream where a real call would have:
//! a run answered from the cache writes byte for byte the same results.

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::tensor::Tensor;
use crate::value::{Func, Image, Value};

/// Where cached calls are kept. `get` returns what `put` stored under the
/// key, or `None`; either may fail silently (a cache is never required).
pub trait CallCache: Send + Sync {
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    fn put(&self, key: &str, entry: &[u8]);
    /// The sha256 of a file the script's sandbox does not cover but a tool
    /// read (the embedder's own data, e.g. built-in data sets); `None` if
    /// the embedder does not vouch for the file.
    fn file_digest(&self, _path: &std::path::Path) -> Option<String> {
        None
    }
    /// The build whose entries these are: part of every key, so that no
    /// entry made by one build answers for another whose code differs.
    /// The version alone by default; an embedder names its sources too.
    fn build(&self) -> String {
        crate::ASSAY_VERSION.to_string()
    }
    /// Calls that took less than this many seconds are not stored.
    fn min_seconds(&self) -> f64 {
        MIN_CACHED_SECONDS
    }
}

/// Calls faster than this are not worth a file.
pub(crate) const MIN_CACHED_SECONDS: f64 = 0.005;
/// Larger results are recomputed rather than stored.
pub(crate) const MAX_ENTRY_BYTES: usize = 512 << 20;

// 2: a shardable call takes one step. 3: reads are kept by the path as
// named (checked again against the checking run's folder and links).
const MAGIC: &[u8] = b"assay-call-cache 3\n";

/// What must hold for an entry's result to be the call's result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Conditions {
    /// Files read: path -> sha256.
    pub inputs: BTreeMap<String, String>,
    /// `(seed, step)` if the call drew random numbers.
    pub rng: Option<(u64, u64)>,
    /// Steps the call took, its own included.
    pub steps: u64,
}

/// The cache key of a call.
pub(crate) fn key(version: &str, tool: &str, args_digest: &str, funcs: &[String]) -> String {
    let mut h = Sha256::new();
    for part in [version, tool, args_digest] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    for f in funcs {
        h.update((f.len() as u64).to_le_bytes());
        h.update(f.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The identity of every function inside `v` beyond its name: a script
/// function's definition text and captured values (with the script's text,
/// since it may call other functions of the script by name), a rhai
/// function's module digest.
pub(crate) fn function_identities(v: &Value, script_text: &str, out: &mut Vec<String>) {
    match v {
        Value::Func(Func::Script(c)) => {
            let mut h = Sha256::new();
            h.update(Sha256::digest(script_text.as_bytes()));
            h.update((c.def.span.start as u64).to_le_bytes());
            h.update((c.def.span.end as u64).to_le_bytes());
            for (name, val) in &c.captured {
                h.update(name.as_bytes());
                h.update([0]);
                h.update(val.digest().as_bytes());
                function_identities(val, script_text, out);
            }
            out.push(hex::encode(h.finalize()));
        }
        Value::Func(Func::Rhai(m, name)) => out.push(format!("{}:{name}", m.digest)),
        Value::Module(m) => out.push(m.digest.clone()),
        Value::List(items) => items.iter().for_each(|x| function_identities(x, script_text, out)),
        Value::Record(fields) => fields.values().for_each(|x| function_identities(x, script_text, out)),
        _ => {}
    }
}

/// An entry's bytes; `None` if the value cannot be stored (a model, a
/// function), is too large, or there is no memory left for its copy (a
/// cache is a shortcut: it must never end a run its result fits in).
pub(crate) fn encode_entry(c: &Conditions, v: &Value) -> Option<Vec<u8>> {
    let value_len = encoded_len(v, 0)?;
    if value_len > MAX_ENTRY_BYTES {
        return None;
    }
    let mut head = Vec::new();
    put_u64(&mut head, c.inputs.len() as u64);
    for (p, d) in &c.inputs {
        put_str(&mut head, p);
        put_str(&mut head, d);
    }
    match c.rng {
        Some((seed, step)) => {
            head.push(1);
            put_u64(&mut head, seed);
            put_u64(&mut head, step);
        }
        None => head.push(0),
    }
    put_u64(&mut head, c.steps);
    // One allocation, made fallibly, holds the whole entry: MAGIC, the
    // body's sha256 (filled in last) and the body.
    let start = MAGIC.len() + 32;
    let mut out = Vec::new();
    out.try_reserve_exact(start + head.len() + value_len).ok()?;
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[0; 32]);
    out.extend_from_slice(&head);
    encode_value(v, &mut out)?;
    if out.len() - start > MAX_ENTRY_BYTES {
        return None;
    }
    let sum = Sha256::digest(&out[start..]);
    out[MAGIC.len()..start].copy_from_slice(&sum);
    Some(out)
}

/// Reads an entry; `None` for anything malformed or damaged (a miss).
pub(crate) fn decode_entry(bytes: &[u8]) -> Option<(Conditions, Value)> {
    let rest = bytes.strip_prefix(MAGIC)?;
    if rest.len() < 32 {
        return None;
    }
    let (sum, body) = rest.split_at(32);
    if Sha256::digest(body).as_slice() != sum {
        return None;
    }
    let mut r = Reader { b: body };
    let n = r.u64()?;
    let mut inputs = BTreeMap::new();
    for _ in 0..n {
        let p = r.str()?;
        let d = r.str()?;
        inputs.insert(p, d);
    }
    let rng = match r.byte()? {
        1 => Some((r.u64()?, r.u64()?)),
        0 => None,
        _ => return None,
    };
    let steps = r.u64()?;
    let v = r.value(0)?;
    r.b.is_empty().then_some((Conditions { inputs, rng, steps }, v))
}

/// The bytes a value takes encoded (an upper bound is enough), without
/// encoding it; `None` for values that cannot be stored.
fn encoded_len(v: &Value, depth: usize) -> Option<usize> {
    if depth > 256 {
        return None;
    }
    Some(match v {
        Value::None | Value::Bool(_) | Value::Num(_) | Value::Range(..) => 17,
        Value::Str(s) => 9 + s.len(),
        Value::List(items) => {
            let mut n = 9usize;
            for x in items.iter() {
                n = n.saturating_add(encoded_len(x, depth + 1)?);
            }
            n
        }
        Value::Record(fields) => {
            let mut n = 9usize;
            for (k, x) in fields.iter() {
                n = n.saturating_add(8 + k.len()).saturating_add(encoded_len(x, depth + 1)?);
            }
            n
        }
        Value::Tensor(t) => 9 + 8 * t.ndim() + 4 * t.len(),
        Value::Image(img) => 25 + img.pixels.len(),
        Value::Func(_) | Value::Module(_) | Value::Handle(_) => return None,
    })
}

pub(crate) fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_le_bytes());
}

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn encode_value(v: &Value, out: &mut Vec<u8>) -> Option<()> {
    match v {
        Value::None => out.push(0),
        Value::Bool(b) => out.extend_from_slice(&[1, u8::from(*b)]),
        Value::Num(n) => {
            out.push(2);
            put_u64(out, n.to_bits());
        }
        Value::Str(s) => {
            out.push(3);
            put_str(out, s);
        }
        Value::List(items) => {
            out.push(4);
            put_u64(out, items.len() as u64);
            for x in items.iter() {
                encode_value(x, out)?;
            }
        }
        Value::Record(fields) => {
            out.push(5);
            put_u64(out, fields.len() as u64);
            for (k, x) in fields.iter() {
                put_str(out, k);
                encode_value(x, out)?;
            }
        }
        Value::Range(a, b) => {
            out.push(6);
            out.extend_from_slice(&a.to_le_bytes());
            out.extend_from_slice(&b.to_le_bytes());
        }
        Value::Tensor(t) => {
            out.push(7);
            put_u64(out, t.ndim() as u64);
            for d in t.shape() {
                put_u64(out, *d as u64);
            }
            out.reserve(t.len() * 4);
            for x in t.iter() {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        Value::Image(img) => {
            out.push(8);
            put_u64(out, u64::from(img.width));
            put_u64(out, u64::from(img.height));
            put_u64(out, img.pixels.len() as u64);
            out.extend_from_slice(&img.pixels);
        }
        Value::Func(_) | Value::Module(_) | Value::Handle(_) => return None,
    }
    Some(())
}

pub(crate) struct Reader<'a> {
    pub(crate) b: &'a [u8],
}

impl Reader<'_> {
    pub(crate) fn take(&mut self, n: usize) -> Option<&[u8]> {
        if n > self.b.len() {
            return None;
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Some(head)
    }
    pub(crate) fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.take(8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes)
    }
    pub(crate) fn len(&mut self) -> Option<usize> {
        // A length can never exceed the bytes left (each item takes at least one).
        self.u64().and_then(|n| usize::try_from(n).ok()).filter(|n| *n <= self.b.len())
    }
    pub(crate) fn str(&mut self) -> Option<String> {
        let n = self.len()?;
        self.take(n).and_then(|b| String::from_utf8(b.to_vec()).ok())
    }
    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > 256 {
            return None;
        }
        Some(match self.byte()? {
            0 => Value::None,
            1 => Value::Bool(self.byte()? != 0),
            2 => Value::Num(f64::from_bits(self.u64()?)),
            3 => Value::str(self.str()?),
            4 => {
                let n = self.len()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::list(items)
            }
            5 => {
                let n = self.len()?;
                let mut fields = BTreeMap::new();
                for _ in 0..n {
                    let k = self.str()?;
                    fields.insert(k, self.value(depth + 1)?);
                }
                Value::Record(Arc::new(fields))
            }
            6 => {
                let a = i64::from_le_bytes(self.take(8)?.try_into().ok()?);
                let b = i64::from_le_bytes(self.take(8)?.try_into().ok()?);
                Value::Range(a, b)
            }
            7 => {
                let nd = self.len()?;
                let mut shape = Vec::with_capacity(nd);
                for _ in 0..nd {
                    shape.push(usize::try_from(self.u64()?).ok()?);
                }
                let count = shape.iter().try_fold(1usize, |a, d| a.checked_mul(*d))?;
                let raw = self.take(count.checked_mul(4)?)?;
                let data: Vec<f32> =
                    raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
                Value::Tensor(Tensor::new(ndarray::ArrayD::from_shape_vec(shape, data).ok()?))
            }
            8 => {
                let width = u32::try_from(self.u64()?).ok()?;
                let height = u32::try_from(self.u64()?).ok()?;
                let n = self.len()?;
                let pixels = self.take(n)?.to_vec();
                if pixels.len() as u64 != u64::from(width) * u64::from(height) * 4 {
                    return None;
                }
                Value::Image(Arc::new(Image::new(width, height, pixels)))
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_exactly_and_damage_is_a_miss() {
        let t = ndarray::ArrayD::from_shape_vec(vec![2, 2], vec![1.5f32, -0.0, f32::NAN, 3e-40]).unwrap_or_default();
        let v = Value::record([
            ("t", Value::tensor(t)),
            ("xs", Value::list(vec![Value::Num(0.1), Value::Num(-0.0), Value::None, Value::Bool(true)])),
            ("s", Value::str("é\n")),
            ("r", Value::Range(-3, 7)),
            ("img", Value::Image(Arc::new(Image::new(1, 2, vec![1, 2, 3, 4, 5, 6, 7, 8])))),
        ]);
        let c = Conditions {
            inputs: [("/a/b.png".to_string(), "ab".repeat(32))].into_iter().collect(),
            rng: Some((4, 17)),
            steps: 271,
        };
        let bytes = encode_entry(&c, &v).unwrap_or_default();
        let (c2, v2) =
            decode_entry(&bytes).unwrap_or((Conditions { inputs: BTreeMap::new(), rng: None, steps: 0 }, Value::None));
        assert_eq!(c2, c);
        assert_eq!(v2.digest(), v.digest(), "a value must read back bit for bit (NaN, -0 and subnormals included)");
        for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode_entry(&bytes[..cut]).is_none(), "a truncated entry (at {cut}) must be a miss");
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(decode_entry(&flipped).is_none(), "a damaged entry must be a miss");
    }

    #[test]
    fn functions_and_models_are_not_stored() {
        let c = Conditions { inputs: BTreeMap::new(), rng: None, steps: 1 };
        assert!(encode_entry(&c, &Value::list(vec![Value::Func(Func::Tool(Arc::from("abs")))])).is_none());
    }
}
