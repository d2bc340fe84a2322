//! A sweep over several prompt pairs, each pair as it would run alone, in
//! one left-padded batch.

use super::*;
use crate::onnx::handle::feeds;
use assay_interpreter::{ToolCtx, ToolError, Value};
use ndarray::{ArrayD, Axis, Slice};

/// A sweep over several prompt pairs of different lengths in one padded
/// batch: the targets and the sources are left-padded (the mask hides the
/// padding and positions start at each prompt's first token), each row
/// patches one component of one pair from that pair's source, at that
/// pair's own tokens, and `metric(outputs, i)` scores it for pair i.
pub(super) fn sweep_pairs(p: &patch_sweep::Params, ctx: &mut dyn ToolCtx, pairs: usize) -> Result<Value, ToolError> {
    let m = p.model.clone();
    let Padded { target, source, len, pad } = padded_pairs(p, pairs)?;
    let names = crate::onnx::handle::select_names(&m, &p.tensors)?;
    let metric = p.metric.clone();
    if let Value::Func(assay_interpreter::Func::Script(c)) = &*metric {
        if c.def.params.len() < 2 {
            return Err(p
                .metric
                .error("with several prompt pairs the metric takes the outputs and the pair's index")
                .help("write (out, i) => logit_diff(out.logits, pairs[i].io, pairs[i].s)"));
        }
    }
    let parts = p.parts.max(1);
    let batch = p.batch.max(1);
    let last_position = *p.last_position;
    let src_vals = m.capture(source.clone(), &names).map_err(|e| m.blame(e, p.source.name(), p.tensors.name()))?;
    for n in &names {
        let v = &src_vals[n];
        if v.ndim() < 3 || v.shape()[..2] != [pairs, len] {
            return Err(p
                .tensors
                .error(format!("`{n}` is {:?}; a sweep over pairs patches [pairs, T, D] tensors", v.shape())));
        }
    }
    let first_rows: Outputs =
        src_vals.iter().map(|(k, v)| (k.clone(), v.slice_axis(Axis(0), Slice::from(0..1)).to_owned())).collect();
    let components = split(&names, &first_rows, parts, p.parts.name())?;
    // Each pair's positions, in the padded batch.
    let positions: Vec<Vec<usize>> = (0..pairs)
        .map(|i| match resolve_positions(&p.positions, len - pad[i])? {
            Some(ps) => Ok(ps.into_iter().map(|p| p + pad[i]).collect()),
            None => Ok((pad[i]..len).collect()),
        })
        .collect::<Result<_, ToolError>>()?;
    let outputs = m.output_names();
    // Rows: (pair, None) unpatched, then (pair, Some(component)).
    let n = components.len();
    let rows: Vec<(usize, Option<usize>)> =
        (0..pairs).flat_map(|i| std::iter::once((i, None)).chain((0..n).map(move |c| (i, Some(c))))).collect();
    let gather = |v: &ArrayD<f32>, idx: &[usize]| -> ArrayD<f32> {
        let views: Vec<_> = idx.iter().map(|&i| v.slice_axis(Axis(0), Slice::from(i..i + 1))).collect();
        ndarray::concatenate(Axis(0), &views).unwrap_or_else(|_| v.clone())
    };
    // A shard takes a contiguous block of whole batches of rows, so every
    // row runs in the same batch as in one run over all of them.
    let chunks = rows.len().div_ceil(batch);
    let mine = match ctx.share() {
        Some(share) => share.range(chunks),
        None => 0..chunks,
    };
    let first = (mine.start * batch).min(rows.len());
    let mut scores: Vec<f64> = Vec::new();
    let mut runs = 0;
    for chunk in rows.chunks(batch).skip(mine.start).take(mine.len()) {
        let idx: Vec<usize> = chunk.iter().map(|(i, _)| *i).collect();
        let feeds: Vec<(String, ArrayD<f32>)> = target.iter().map(|(k, v)| (k.clone(), gather(v, &idx))).collect();
        let mut patches = Vec::new();
        for (t, v) in &src_vals {
            let new = gather(v, &idx);
            let mut mask = ArrayD::<f32>::zeros(new.shape());
            for (r, (i, c)) in chunk.iter().enumerate() {
                let Some(c) = c.map(|c| &components[c]) else { continue };
                if &c.tensor != t {
                    continue;
                }
                let mut row = mask.index_axis_mut(Axis(0), r);
                let last = row.ndim() - 1;
                let mut cols = row.slice_axis_mut(Axis(last), Slice::from(c.cols.0..c.cols.1));
                for &p in &positions[*i] {
                    cols.index_axis_mut(Axis(0), p).fill(1.0);
                }
            }
            patches.push((t.clone(), new, mask));
        }
        let out = m
            .patch_capture(feeds, patches, &outputs, &[], last_position)
            .map_err(|e| m.blame(e, p.target.name(), p.tensors.name()))?;
        runs += 1;
        for (r, (i, c)) in chunk.iter().enumerate() {
            let o: Outputs =
                out.iter().map(|(k, v)| (k.clone(), v.slice_axis(Axis(0), Slice::from(r..r + 1)).to_owned())).collect();
            let item = (i * (n + 1) + c.map_or(0, |c| c + 1)) as u64;
            scores.push(crate::methods::metrics::metric_number(
                ctx.call_item(&metric, vec![outputs_value(&o), Value::Num(*i as f64)], item)?,
                p.metric.name(),
            )?);
        }
    }
    let source = source_scores(p, ctx, source, pairs, &outputs)?;
    let block = PairBlock { first, scores, source, runs };
    match ctx.share() {
        // A shard's record keeps its rows' scores; its script goes on with
        // the other rows NaN.
        Some(_) => Ok(block.to_value()),
        None => pairs_result(&names, parts, pairs, false, vec![block]),
    }
}

/// One shard's rows of a sweep over pairs: the metric of rows `first..`
/// (each pair's unpatched row, then its components, pair after pair) and
/// every pair's source score (which every shard computes, and all agree on).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PairBlock {
    first: usize,
    scores: Vec<f64>,
    source: Vec<f64>,
    runs: usize,
}

impl PairBlock {
    fn to_value(&self) -> Value {
        Value::record([
            ("first_row", Value::Num(self.first as f64)),
            ("scores", Value::nums(self.scores.iter().copied())),
            ("source", Value::nums(self.source.iter().copied())),
            ("runs", Value::Num(self.runs as f64)),
        ])
    }

    /// A block read back from a shard's partial record, not trusted.
    pub(super) fn from_value(v: &Value) -> Result<PairBlock, ToolError> {
        let Value::Record(f) = v else { return Err(bad_part("not a record".into())) };
        let count = |k: &str| match f.get(k) {
            Some(Value::Num(x)) if *x >= 0.0 && x.fract() == 0.0 && *x <= u32::MAX as f64 => Ok(*x as usize),
            _ => Err(bad_part(format!("no count `{k}`"))),
        };
        let nums = |k: &str| match f.get(k) {
            Some(Value::List(l)) => l
                .iter()
                .map(|e| match e {
                    Value::Num(x) => Ok(*x),
                    _ => Err(bad_part(format!("`{k}` holds a non-number"))),
                })
                .collect::<Result<Vec<f64>, _>>(),
            _ => Err(bad_part(format!("no list `{k}`"))),
        };
        Ok(PairBlock {
            first: count("first_row")?,
            scores: nums("scores")?,
            source: nums("source")?,
            runs: count("runs")?,
        })
    }
}

/// The sweep over `pairs` pairs from blocks of rows, in order; `padded`:
/// a shard's own block, the other rows NaN.
pub(super) fn pairs_result(
    names: &[String],
    parts: usize,
    pairs: usize,
    padded: bool,
    blocks: Vec<PairBlock>,
) -> Result<Value, ToolError> {
    let n = names.len() * parts.max(1);
    let total = pairs * (n + 1);
    let mut flat: Vec<f64> = Vec::with_capacity(total);
    let (mut source, mut runs): (Option<Vec<f64>>, usize) = (None, 0);
    for b in blocks {
        place(&mut flat, b.first, total, padded, f64::NAN)?;
        flat.extend(&b.scores);
        runs += b.runs;
        if b.source.len() != pairs {
            return Err(bad_part(format!("{} source scores for {pairs} pairs", b.source.len())));
        }
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        if source.as_ref().is_some_and(|s| bits(s) != bits(&b.source)) {
            return Err(bad_part("shards disagree on the source scores".into()));
        }
        source = Some(b.source);
    }
    if padded {
        flat.resize(total, f64::NAN);
    }
    if flat.len() != total {
        return Err(bad_part(format!("the blocks hold {} rows, not {total}", flat.len())));
    }
    let scores: Vec<&[f64]> = flat.chunks(n + 1).collect();
    let effects: Vec<f32> = scores.iter().flat_map(|s| s[1..].iter().map(move |x| (x - s[0]) as f32)).collect();
    let grid = ArrayD::from_shape_vec(vec![pairs, names.len(), parts.max(1)], effects)
        .map_err(|e| ToolError::new(e.to_string()))?;
    let mean = grid.mean_axis(Axis(0)).ok_or_else(|| ToolError::new("no pairs"))?;
    Ok(Value::record([
        ("effects", Value::tensor(grid)),
        ("mean_effects", Value::tensor(mean)),
        ("clean", Value::nums(scores.iter().map(|s| s[0]))),
        ("source", Value::nums(source.unwrap_or_default())),
        ("tensors", Value::list(names.iter().map(Value::str).collect())),
        ("runs", Value::Num(runs as f64)),
        ("prefix", Value::Num(0.0)),
    ]))
}

/// The pairs' targets and sources as left-padded batches, checked: as
/// many sources as targets, a model that takes padding, and the same
/// tokens' count within each pair. The prompts' length with padding, and
/// each pair's padding.
struct Padded {
    target: Vec<(String, ArrayD<f32>)>,
    source: Vec<(String, ArrayD<f32>)>,
    len: usize,
    pad: Vec<usize>,
}

fn padded_pairs(p: &patch_sweep::Params, pairs: usize) -> Result<Padded, ToolError> {
    let m = p.model.clone();
    if texts(&p.source) != Some(pairs) {
        return Err(p.source.error(format!("{pairs} targets need {pairs} sources, as a list of texts")));
    }
    if !m.pads_left() {
        return Err(p
            .target
            .error("this model cannot take a padded batch (it takes no attention_mask and position_ids)")
            .help("sweep one pair at a time: map(pairs, p => patch_sweep(model, p.target, p.source, ...))"));
    }
    let target = feeds(&m, &p.target)?;
    let source = feeds(&m, &p.source)?;
    let mask_of = |f: &[(String, ArrayD<f32>)]| f.iter().find(|(k, _)| k == "attention_mask").map(|(_, v)| v.clone());
    let ids = |f: &[(String, ArrayD<f32>)]| f.iter().find(|(k, _)| k == "input_ids").map(|(_, v)| v.clone());
    let (Some(tid), Some(sid)) = (ids(&target), ids(&source)) else {
        return Err(p.target.error("the model takes no input_ids"));
    };
    let len = tid.shape()[1];
    let ones = ArrayD::<f32>::ones(vec![pairs, len]);
    let (tmask, smask) =
        (mask_of(&target).unwrap_or_else(|| ones.clone()), mask_of(&source).unwrap_or_else(|| ones.clone()));
    if tmask != smask || sid.shape() != tid.shape() {
        let i = (0..pairs).find(|&i| tmask.index_axis(Axis(0), i) != smask.index_axis(Axis(0), i)).unwrap_or(0);
        return Err(p
            .source
            .error(format!("pair {i}'s target and source have different numbers of tokens"))
            .help("for text, choose prompts with the same number of tokens in each pair"));
    }
    let pad: Vec<usize> =
        (0..pairs).map(|i| tmask.index_axis(Axis(0), i).iter().take_while(|x| **x == 0.0).count()).collect();
    Ok(Padded { target, source, len, pad })
}

/// The metric of each pair's source run, as the patched rows see it.
fn source_scores(
    p: &patch_sweep::Params,
    ctx: &mut dyn ToolCtx,
    source: Vec<(String, ArrayD<f32>)>,
    pairs: usize,
    outputs: &[String],
) -> Result<Vec<f64>, ToolError> {
    let m = p.model.clone();
    let metric = &p.metric;
    let last_position = *p.last_position;
    let source_out = m.run_plain(source, outputs).map_err(|e| m.blame(e, p.source.name(), p.tensors.name()))?;
    let mut source_scores = Vec::with_capacity(pairs);
    for i in 0..pairs {
        let mut o: Outputs = source_out
            .iter()
            .map(|(k, v)| (k.clone(), v.slice_axis(Axis(0), Slice::from(i..i + 1)).to_owned()))
            .collect();
        if last_position {
            // As the patched rows see it: the last position only.
            o = o
                .into_iter()
                .map(|(k, v)| {
                    let t = v.shape().get(1).copied().unwrap_or(1);
                    let v = if v.ndim() >= 3 { v.slice_axis(Axis(1), Slice::from(t - 1..t)).to_owned() } else { v };
                    (k, v)
                })
                .collect();
        }
        source_scores.push(crate::methods::metrics::metric_number(
            ctx.call(metric, vec![outputs_value(&o), Value::Num(i as f64)])?,
            p.metric.name(),
        )?);
    }
    Ok(source_scores)
}
