//! AtP*'s fix for queries and keys (Kramár et al. 2024, "QK fix"): a
//! query or key changes the metric only through its block's attention
//! pattern, and a softmax that saturates makes the first-order estimate
//! through the scores wrong (often near zero where the true effect is
//! large). The fix recomputes the pattern exactly and linearises only
//! from the pattern on: for a component of block b's queries or keys,
//! effect ≈ Σ ∂metric/∂A · (A' − A) over the heads it feeds, where A is
//! b's attention probabilities in the target run and A' the probabilities
//! with that tensor patched from the source (one batched run, a row per
//! query or key tensor; heads do not mix within a block, so one row
//! serves every head of a tensor).

use std::collections::BTreeMap;

use assay_interpreter::{Name, ToolError};
use ndarray::{ArrayD, Axis, IxDyn};

use crate::methods::sweep::Component;
use crate::onnx::handle::ModelHandle;

/// A query or key tensor's block: its probabilities, the width of one of
/// the tensor's heads, and how many query heads each of them feeds.
pub(crate) struct Site {
    pub probs: String,
    head_dim: usize,
    group: usize,
}

/// Each of `names`' block, or an error naming the tensor that is not a
/// block's queries or keys (or whose probabilities a fused op hides).
pub(crate) fn sites(m: &ModelHandle, names: &[String], arg: Name) -> Result<BTreeMap<String, Site>, ToolError> {
    let blocks =
        crate::onnx::blocks::find(m).map_err(|e| ToolError::arg(arg, format!("qk_fix needs attention blocks: {e}")))?;
    let mut out = BTreeMap::new();
    for n in names {
        let found = blocks.iter().find_map(|b| {
            let kv = b.kv_heads.unwrap_or(b.n_heads).max(1);
            if b.q.as_deref() == Some(n) {
                Some((b, 1))
            } else if b.k.as_deref() == Some(n) {
                Some((b, (b.n_heads / kv).max(1)))
            } else {
                None
            }
        });
        let Some((b, group)) = found else {
            return Err(ToolError::arg(
                arg,
                format!("qk_fix recomputes attention patterns for queries and keys; `{n}` is neither a block's queries nor its keys"),
            )
            .help("give attention(model).q or attention(model).k as `tensors`, or leave qk_fix off"));
        };
        let probs = b.probs.clone().ok_or_else(|| {
            ToolError::arg(
                arg,
                format!("`{n}`'s attention probabilities are inside a fused op; qk_fix cannot recompute them"),
            )
        })?;
        out.insert(n.clone(), Site { probs, head_dim: b.head_dim.max(1), group });
    }
    Ok(out)
}

/// Row `r` of a [R, ...] tensor of attention probabilities as [heads, T, S].
fn pattern(a: &ArrayD<f32>, r: usize) -> Result<ArrayD<f32>, ToolError> {
    let shape = a.shape();
    let (t, s) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    let row = a.index_axis(Axis(0), r).to_owned();
    let heads = row.len() / (t * s).max(1);
    row.into_shape_with_order(IxDyn(&[heads, t, s])).map_err(|e| ToolError::new(e.to_string()))
}

/// The patched runs: per query or key tensor, its block's probabilities
/// with the tensor taken from the source (at `positions`, all if none),
/// as [heads, T, S]. `values` holds each tensor's target and source value.
pub(crate) fn patched_patterns(
    m: &ModelHandle,
    target: &[(String, ArrayD<f32>)],
    sites: &BTreeMap<String, Site>,
    values: &BTreeMap<String, (ArrayD<f32>, ArrayD<f32>)>,
    positions: Option<&[usize]>,
) -> Result<BTreeMap<String, ArrayD<f32>>, ToolError> {
    let names: Vec<&String> = sites.keys().collect();
    let rows = names.len();
    let repeat = |a: &ArrayD<f32>| {
        let views: Vec<_> = (0..rows).map(|_| a.view()).collect();
        ndarray::concatenate(Axis(0), &views).map_err(|e| ToolError::new(e.to_string()))
    };
    let feeds = target.iter().map(|(k, v)| Ok((k.clone(), repeat(v)?))).collect::<Result<Vec<_>, ToolError>>()?;
    let mut patches = Vec::new();
    for (r, n) in names.iter().enumerate() {
        let (_, source) = values.get(*n).ok_or_else(|| ToolError::new(format!("no source value for `{n}`")))?;
        let new = repeat(source)?;
        let mut mask = ArrayD::<f32>::zeros(new.raw_dim());
        {
            let mut row = mask.index_axis_mut(Axis(0), r);
            match positions {
                Some(ps) if row.ndim() >= 2 => {
                    for &t in ps {
                        row.index_axis_mut(Axis(0), t).fill(1.0);
                    }
                }
                _ => row.fill(1.0),
            }
        }
        patches.push(((*n).clone(), new, mask));
    }
    let mut probs: Vec<String> = sites.values().map(|s| s.probs.clone()).collect();
    probs.sort();
    probs.dedup();
    let out = m.patch_capture(feeds, patches, &[], &probs, false).map_err(|e| ToolError::new(e.to_string()))?;
    let mut patterns = BTreeMap::new();
    for (r, n) in names.iter().enumerate() {
        let a = out.get(&sites[*n].probs).ok_or_else(|| ToolError::new("the patched run gave no probabilities"))?;
        if a.shape().first() != Some(&rows) {
            return Err(ToolError::new("the graph gave one row for several"));
        }
        patterns.insert((*n).clone(), pattern(a, r)?);
    }
    Ok(patterns)
}

/// A query or key component's effect: Σ ∂metric/∂A · (A' − A) over the
/// query heads its columns feed. `probs` holds each block's target
/// probabilities and gradient ([1, ...] each).
pub(crate) fn effect(
    c: &Component,
    site: &Site,
    patched: &ArrayD<f32>,
    probs: &BTreeMap<String, (ArrayD<f32>, ArrayD<f32>)>,
) -> Result<f32, ToolError> {
    if !c.cols.0.is_multiple_of(site.head_dim) || !c.cols.1.is_multiple_of(site.head_dim) {
        return Err(ToolError::new(format!(
            "qk_fix recomputes whole heads' patterns, but a part of `{}` is columns {}..{} and a head is {} wide",
            c.tensor, c.cols.0, c.cols.1, site.head_dim
        ))
        .help(
            "give parts: the head count (attention(model).n_heads for queries, .kv_heads for keys), or a divisor of it",
        ));
    }
    let (a, g) = probs.get(&site.probs).ok_or_else(|| ToolError::new("no gradient of the probabilities"))?;
    let (a, g) = (pattern(a, 0)?, pattern(g, 0)?);
    let first = c.cols.0 / site.head_dim;
    let last = c.cols.1.div_ceil(site.head_dim);
    let mut sum = 0f64;
    for part in first..last {
        for h in part * site.group..(part + 1) * site.group {
            if h >= a.shape()[0] {
                return Err(ToolError::new("a component's heads do not match its block's"));
            }
            let (ah, gh, ph) = (a.index_axis(Axis(0), h), g.index_axis(Axis(0), h), patched.index_axis(Axis(0), h));
            sum +=
                ndarray::Zip::from(&ah).and(&gh).and(&ph).fold(0f64, |s, x, y, z| s + (*y as f64) * ((*z - *x) as f64));
        }
    }
    Ok(sum as f32)
}
