//! Activation patching sweeps, batched: one rewritten graph patches every
//! selected tensor, and each batch row patches exactly one component — a
//! slice of a tensor's last dimension (an attention head) or a whole tensor
//! (an MLP output, the residual stream) — from a source run into the target
//! run, at chosen positions. A sweep over hundreds of heads is a handful of
//! runs, not hundreds.

use crate::core::kinds::{Function, Inputs, TensorNames};
use crate::onnx::handle::feeds;
use assay_interpreter::{Arg, Name, ToolCtx, ToolError, Type, Value};
use ndarray::ArrayD;
use std::collections::BTreeMap;

use crate::core::declare::{tool, ToolResult};
use crate::onnx::handle::ModelHandle;

mod mix;
mod pairs;
pub use mix::*;
use pairs::*;

tool! {
    /// Activation patching over many components at once. Every tensor matching `tensors` (a name, glob
    /// or list) is split into `parts` equal slices of its last axis (e.g. 9 attention heads of [N, T,
    /// 9*64]; 1 for a whole MLP output); for each slice, its value from the `source` run replaces the
    /// `target` run's at `positions` (all if omitted), and `metric(outputs)` scores the patched
    /// outputs. Returns {effects: [tensors, parts] tensor of metric(patched) - metric(target), clean,
    /// source, tensors, runs, prefix}. Batched: each run patches `batch` components, one per row. With
    /// last_position, on a model with a KV cache (`past_key_values.*` inputs, as SmolLM2's), the tokens
    /// target and source share at the start (`prefix` of them) run once, and each run computes only the
    /// tokens after them. Shardable: under `assay run --shard i/n` each shard patches its block of
    /// batches (its effects elsewhere are NaN; with several pairs, its block of batches of rows) and `assay merge`
    /// gives exactly the one-machine result.
    /// Given lists of texts as `target` and `source` (pairs of equal length, pairs of different
    /// lengths), every pair runs in one left-padded batch (a model that takes attention_mask and
    /// position_ids), each pair as it would alone; `metric(outputs, i)` then scores pair i, and the
    /// result has effects [pairs, tensors, parts], mean_effects [tensors, parts], and clean and source
    /// per pair.
    ///
    /// ```assay
    /// let m = onnx("fixtures/tiny_dynamic.onnx")
    /// let s = patch_sweep(m, zeros([1, 3]), tensor([[1, 2, -3]]), ["h", "y"], out => sum(out.z), parts: 3, batch: 4)
    /// assert s.clean == 3 and s.runs == 2
    /// assert s.effects == tensor([[2, 2, -1], [2, 2, -1]])
    /// ```
    patch_sweep in Interventions -> Type::record(), shardable(sweep_merge);
    {
        /// a model
        model: ModelHandle,
        /// the run to patch into: text, or inputs as for run()
        target: Inputs,
        /// the run to take activations from (same shapes)
        source: Inputs,
        /// tensor names or globs
        tensors: TensorNames,
        /// outputs => number, e.g. a logit difference
        metric: Function,
        /// slices per tensor along its last axis
        parts: usize = 1,
        /// token positions to patch (negative from the end)
        positions: Arg [Type::list(Type::Num)] = None,
        /// components per run
        batch: usize = 16,
        /// compute the outputs at the last position only ([1, 1, V] logits): much faster for a
        /// language model when the metric reads only the next token, as logit_diff, prob and kl do
        last_position: bool = false,
    }
    patch_sweep
}

fn patch_sweep(p: patch_sweep::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    if let Some(pairs) = texts(&p.target) {
        return sweep_pairs(&p, ctx, pairs);
    }
    let m = p.model.clone();
    let target = feeds(&m, &p.target)?;
    let source = feeds(&m, &p.source)?;
    one_example_each(&target, &source, p.target.name(), p.source.name())?;
    let names = crate::onnx::handle::select_names(&m, &p.tensors)?;
    let metric = p.metric.clone();
    let parts = p.parts.max(1);
    let batch = p.batch.max(1);
    let src_vals = m.capture(source.clone(), &names).map_err(|e| m.blame(e, p.source.name(), p.tensors.name()))?;
    let mut t_len = 0;
    for n in &names {
        let v = &src_vals[n];
        if v.ndim() < 2 {
            return Err(p
                .tensors
                .error(format!("`{n}` has rank {}; a sweep patches tensors of at least [1, D]", v.ndim())));
        }
        if v.ndim() >= 3 {
            t_len = v.shape()[1];
        }
    }
    let components = split(&names, &src_vals, parts, p.parts.name())?;
    let positions = resolve_positions(&p.positions, t_len.max(1))?;
    if positions.is_some() && t_len == 0 {
        return Err(p.positions.error("positions need tensors of shape [1, T, D]"));
    }
    let last_position = *p.last_position;
    if last_position {
        m.last_position_outputs().map_err(|e| {
            p.last_position
                .error(e.to_string())
                .help("leave last_position out: the metric then sees the outputs at every position")
        })?;
    }
    let mut sweep = Sweep {
        model: &m,
        target: target.clone(),
        source: src_vals,
        components,
        positions,
        last_position,
        prefix: None,
    };
    let prefix = sweep.share_prefix(&source).map_err(|e| m.blame(e, p.target.name(), p.tensors.name()))?;
    let score =
        |ctx: &mut dyn ToolCtx, o: &BTreeMap<String, ArrayD<f32>>, item: Option<u64>| -> Result<f64, ToolError> {
            let v = match item {
                Some(i) => ctx.call_item(&metric, vec![outputs_value(o)], i)?,
                None => ctx.call(&metric, vec![outputs_value(o)])?,
            };
            crate::methods::metrics::metric_number(v, p.metric.name())
        };
    let clean_out = sweep.clean().map_err(|e| m.blame(e, p.target.name(), p.tensors.name()))?;
    let clean = score(ctx, &clean_out, None)?;
    let source_out = sweep.unpatched(&source).map_err(|e| m.blame(e, p.source.name(), p.tensors.name()))?;
    let source_score = score(ctx, &source_out, None)?;
    let n = sweep.components.len();
    // A shard takes a contiguous block of whole batches, so every component
    // is patched in the same batch as in one run over all of them.
    let (first, last) = match ctx.share() {
        Some(share) => {
            let b = share.range(n.div_ceil(batch));
            ((b.start * batch).min(n), (b.end * batch).min(n))
        }
        None => (0, n),
    };
    let mut effects = Vec::with_capacity(last - first);
    let mut runs = 0;
    let mut start = first;
    while start < last {
        let rows: Vec<usize> = (start..(start + batch).min(last)).collect();
        let outs = sweep.run_rows(&rows).map_err(|e| m.blame(e, p.target.name(), p.tensors.name()))?;
        runs += 1;
        for (r, o) in rows.iter().zip(outs) {
            effects.push((score(ctx, &o, Some(*r as u64))? - clean) as f32);
        }
        start += batch;
    }
    let block = Block { first, effects, clean, source: source_score, runs, prefix };
    match ctx.share() {
        // A shard's record keeps its block; its script goes on with the
        // other components NaN.
        Some(_) => Ok(block.to_value()),
        None => merge_blocks(&names, *p.parts, false, vec![block]),
    }
}

/// One shard's block of a sweep: the effects of the components from
/// `first` on, and what every block must agree on.
#[derive(Debug, Clone, PartialEq)]
struct Block {
    first: usize,
    effects: Vec<f32>,
    clean: f64,
    source: f64,
    runs: usize,
    prefix: usize,
}

impl Block {
    /// As a shard's partial record keeps it.
    fn to_value(&self) -> Value {
        Value::record([
            ("first", Value::Num(self.first as f64)),
            ("effects", Value::nums(self.effects.iter().map(|e| *e as f64))),
            ("clean", Value::Num(self.clean)),
            ("source", Value::Num(self.source)),
            ("runs", Value::Num(self.runs as f64)),
            ("prefix", Value::Num(self.prefix as f64)),
        ])
    }

    /// A block read back from a shard's partial record (which a merge does
    /// not trust: anything else is an error naming what is wrong).
    fn from_value(v: &Value) -> Result<Block, ToolError> {
        let Value::Record(f) = v else { return Err(bad_part("not a record".into())) };
        let num = |k: &str| match f.get(k) {
            Some(Value::Num(x)) => Ok(*x),
            _ => Err(bad_part(format!("no number `{k}`"))),
        };
        let count = |k: &str| {
            let x = num(k)?;
            if x >= 0.0 && x.fract() == 0.0 && x <= u32::MAX as f64 {
                Ok(x as usize)
            } else {
                Err(bad_part(format!("`{k}` is {x}, not a count")))
            }
        };
        let Some(Value::List(l)) = f.get("effects") else { return Err(bad_part("no `effects`".into())) };
        let effects = l
            .iter()
            .map(|e| match e {
                Value::Num(x) => Ok(*x as f32),
                _ => Err(bad_part("an effect is not a number".into())),
            })
            .collect::<Result<_, _>>()?;
        Ok(Block {
            first: count("first")?,
            effects,
            clean: num("clean")?,
            source: num("source")?,
            runs: count("runs")?,
            prefix: count("prefix")?,
        })
    }
}

/// Makes `out` end where a block starting at `first` begins: a shard's own
/// block (`padded`) after NaN for the others' part, else right after the
/// block before it; an error for a block that does not fit.
fn place<T: Copy>(out: &mut Vec<T>, first: usize, total: usize, padded: bool, nan: T) -> Result<(), ToolError> {
    if padded {
        if first > total {
            return Err(bad_part(format!("a block starts at {first}, past the {total} in all")));
        }
        out.resize(first, nan);
    }
    if first != out.len() {
        return Err(bad_part(format!("a block starts at {first}, expected {}", out.len())));
    }
    Ok(())
}

fn bad_part(why: String) -> ToolError {
    ToolError::new(format!("a shard's partial sweep: {why}"))
}

pub(crate) fn resolve_positions(x: &Arg, t: usize) -> Result<Option<Vec<usize>>, ToolError> {
    if x.is_none() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for p in x.numbers()? {
        let q = if p < 0.0 { t as f64 + p } else { p };
        if q < 0.0 || q >= t as f64 || q.fract() != 0.0 {
            return Err(x.error(format!("position {p} is out of range for {t} tokens")));
        }
        out.push(q as usize);
    }
    Ok(Some(out))
}

/// Target and source, one example each with the same inputs of the same
/// shapes; the error otherwise (about `target` or `source`).
pub(crate) fn one_example_each(
    target: &[(String, ArrayD<f32>)],
    source: &[(String, ArrayD<f32>)],
    t: Name,
    s: Name,
) -> Result<(), ToolError> {
    if target.iter().chain(source).any(|(_, x)| x.shape().first() != Some(&1)) {
        return Err(ToolError::arg(t, "target and source must each be one example (first dimension 1)"));
    }
    for ((kt, tt), (ks, ss)) in target.iter().zip(source) {
        if kt != ks || tt.shape() != ss.shape() {
            return Err(ToolError::arg(
                s,
                format!("source input `{ks}` {:?} does not match target input `{kt}` {:?}", ss.shape(), tt.shape()),
            )
            .help("for text, choose prompts with the same number of tokens"));
        }
    }
    Ok(())
}

/// Whether an argument is several texts (a sweep over prompt pairs).
fn texts(v: &Value) -> Option<usize> {
    crate::onnx::handle::texts_of(v).map(|t| t.len()).filter(|n| *n > 1 && matches!(v, Value::List(_)))
}

/// The sweep's result from the shards' blocks of effects, in order.
fn sweep_merge(p: patch_sweep::Params, ctx: &mut dyn ToolCtx, parts: Vec<Value>) -> Result<Value, ToolError> {
    let names = crate::onnx::handle::select_names(&p.model, &p.tensors)?;
    if let Some(pairs) = texts(&p.target) {
        let blocks = parts.iter().map(PairBlock::from_value).collect::<Result<Vec<_>, _>>()?;
        return pairs_result(&names, *p.parts, pairs, ctx.share().is_some(), blocks);
    }
    let blocks = parts.iter().map(Block::from_value).collect::<Result<Vec<_>, _>>()?;
    merge_blocks(&names, *p.parts, ctx.share().is_some(), blocks)
}

/// The sweep's result from blocks of effects over the components of
/// `names` (`parts_per` each), in order. `padded`: a shard's own block,
/// the components of other shards NaN.
fn merge_blocks(names: &[String], parts_per: usize, padded: bool, blocks: Vec<Block>) -> Result<Value, ToolError> {
    let parts_per = parts_per.max(1);
    let total = names.len() * parts_per;
    let mut effects: Vec<f32> = Vec::with_capacity(total);
    let (mut clean, mut source, mut prefix, mut runs) = (None, None, None, 0usize);
    for b in blocks {
        place(&mut effects, b.first, total, padded, f32::NAN)?;
        effects.extend(&b.effects);
        runs += b.runs;
        for (slot, k, x) in [
            (&mut clean, "clean", b.clean),
            (&mut source, "source", b.source),
            (&mut prefix, "prefix", b.prefix as f64),
        ] {
            if slot.is_some_and(|y: f64| y.to_bits() != x.to_bits()) {
                return Err(bad_part(format!("shards disagree on `{k}`")));
            }
            *slot = Some(x);
        }
    }
    if padded {
        effects.resize(total, f32::NAN);
    }
    let grid = ArrayD::from_shape_vec(vec![names.len(), parts_per], effects)
        .map_err(|_| bad_part(format!("the blocks do not add up to {total} components")))?;
    Ok(Value::record([
        ("effects", Value::tensor(grid)),
        ("clean", Value::Num(clean.unwrap_or(f64::NAN))),
        ("source", Value::Num(source.unwrap_or(f64::NAN))),
        ("tensors", Value::list(names.iter().map(Value::str).collect())),
        ("runs", Value::Num(runs as f64)),
        ("prefix", Value::Num(prefix.unwrap_or(0.0))),
    ]))
}

#[cfg(test)]
mod tests;
