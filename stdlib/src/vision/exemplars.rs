//! Dataset exemplars in one streaming pass: images are decoded batch by
//! batch, the layer is reduced over space inside the graph (only [B, C]
//! leaves ONNX Runtime), and the top k of every channel is kept. Memory
//! grows with k times the number of channels, not with the data set.

use std::sync::Arc;

use assay_interpreter::{Args, Registry, Signature, ToolCtx, ToolError, Type, Value};
use ndarray::{Array4, ArrayD, Axis};

use super::data::{dataset_of, Dataset};
use crate::core::FnTool;
use crate::onnx::model::{Model, Preprocess};
use crate::onnx::units::{Reduce, Select, Unit};

/// Keeps the k largest (value, index) pairs, largest first; ties keep the earlier index.
#[derive(Clone)]
pub struct TopK {
    k: usize,
    items: Vec<(f32, usize)>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK { k, items: Vec::with_capacity(k + 1) }
    }
    pub fn push(&mut self, v: f32, i: usize) {
        let v = if v.is_nan() { f32::NEG_INFINITY } else { v };
        if self.items.len() == self.k && self.items.last().is_some_and(|(w, _)| *w >= v) {
            return;
        }
        let pos = self.items.partition_point(|(w, j)| *w > v || (*w == v && *j < i));
        self.items.insert(pos, (v, i));
        self.items.truncate(self.k);
    }
    pub fn items(&self) -> &[(f32, usize)] {
        &self.items
    }
}

/// A fixed-size uniform sample of a stream (Algorithm R), deterministic for
/// a given seed and order: quantile exemplars from bounded memory.
#[derive(Clone)]
pub struct Reservoir {
    cap: usize,
    seen: usize,
    items: Vec<(f32, usize)>,
}

impl Reservoir {
    pub fn new(cap: usize) -> Self {
        Reservoir { cap, seen: 0, items: Vec::with_capacity(cap) }
    }
    pub fn push(&mut self, v: f32, i: usize, rng: &mut impl rand::Rng) {
        let v = if v.is_nan() { f32::NEG_INFINITY } else { v };
        if self.items.len() < self.cap {
            self.items.push((v, i));
        } else {
            let j = rng.random_range(0..=self.seen);
            if j < self.cap {
                self.items[j] = (v, i);
            }
        }
        self.seen += 1;
    }
    /// The sampled item nearest quantile `q` of the sample.
    pub fn quantile(&self, q: f64) -> Option<(f32, usize)> {
        let mut sorted = self.items.clone();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let n = sorted.len();
        (n > 0).then(|| sorted[((q * (n - 1) as f64).round() as usize).min(n - 1)])
    }
}

/// Items kept per channel for quantile exemplars.
pub const RESERVOIR: usize = 256;

/// What one pass keeps per channel.
pub struct PassSpec {
    pub k: usize,
    pub bottom: usize,
    pub quantiles: bool,
    pub seed: u64,
    pub batch: usize,
}

pub struct PassResult {
    pub top: Vec<TopK>,
    /// The smallest, as TopK over negated values.
    pub bottom: Vec<TopK>,
    pub reservoirs: Vec<Reservoir>,
}

fn exemplars_sig() -> Signature {
    Signature::new("exemplars", "vision", "The images of a data set that drive a unit most (and, on request, least, and at chosen quantiles), in ONE streaming pass. For a unit (a channel): {images, activations, labels, names, indices, count}, plus `bottom` (the same fields for the `bottom` weakest) and `quantiles` (a list of {q, activation, index, name, label, image}). For a layer (every channel): {activations: [C, k], indices: [C, k], count}, plus bottom_activations/bottom_indices [C, bottom] and quantile_activations/quantile_indices [C, quantiles]; `item(data, i)` gives any exemplar's image. Works on [N, C, H, W] maps (reduced over space in the graph) and on [N, C] outputs such as class logits. Memory grows with channels times (k + bottom + 256 sampled for quantiles), never with the data set; quantiles are estimated from a seeded uniform sample of 256 per channel. A progress bar shows on a terminal.")
        .param("unit", Type::Handle("unit"), "a channel unit or a layer")
        .param("data", Type::Handle("dataset"), "images to search")
        .opt("k", Type::Num, Value::Num(12.0), "top exemplars per channel")
        .opt("batch", Type::Num, Value::Num(32.0), "images per run")
        .opt("bottom", Type::Num, Value::Num(0.0), "weakest exemplars per channel")
        .opt("quantiles", Type::list(Type::Num), Value::None, "quantiles (0..1) to sample an exemplar at, e.g. [0.25, 0.5, 0.75]")
        .returns(Type::record())
        .example("let net = model(\"efficientnet-lite0\")\nlet l = layer(net, \"/_blocks.15/Relu6_output_0\")\nlet ex = exemplars(l, images(\"fixtures/*.png\"), k: 1)\nassert ex.activations.shape == [1152, 1] and ex.count == 1")
        .example("let net = model(\"efficientnet-lite0\")\nlet espresso = unit(net, \"logits\", channel: 967)\nlet ex = exemplars(espresso, take(emoji(), 100), k: 3, bottom: 2, quantiles: [0.5], batch: 50)\nassert len(ex.images) == 3 and len(ex.bottom.images) == 2\nassert ex.activations[2] > ex.quantiles[0].activation and ex.quantiles[0].activation > ex.bottom.activations[0]")
}

fn quantiles_of(a: &Args, i: &str) -> Result<Vec<f64>, ToolError> {
    if a.is_none(i) {
        return Ok(Vec::new());
    }
    let qs = a.numbers(i)?;
    if let Some(q) = qs.iter().find(|q| !(0.0..=1.0).contains(*q)) {
        return Err(ToolError::arg(i, format!("quantiles are between 0 and 1, found {q}")));
    }
    Ok(qs)
}

fn exemplars(a: &Args, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let unit: &Unit = a.handle::<Unit>("unit", "a unit or layer")?;
    let (channel, reduce) = match unit.select {
        Select::Channel(c, r) => (c, r),
        _ => {
            return Err(ToolError::arg(
                "unit",
                "exemplars rank channels: use unit(model, tensor, channel: c) or layer(model, tensor)",
            ))
        }
    };
    let data = dataset_of(a, "data")?;
    let qs = quantiles_of(a, "quantiles")?;
    let spec = PassSpec {
        // No more than the data set holds: `k: 4294967296` must not reserve
        // room for four billion images.
        k: a.count("k")?.clamp(1, data.items.len().max(1)),
        batch: a.count("batch")?.clamp(1, data.items.len().clamp(1, 4096)),
        bottom: a.count("bottom")?.min(data.items.len()),
        quantiles: !qs.is_empty(),
        seed: rand::Rng::random(ctx.rng()),
    };
    let pre: Preprocess = unit.model.preprocess.ok_or_else(|| {
        ToolError::arg("unit", "the model does not say how images become its input")
            .help("use a built-in image model such as model(\"efficientnet-lite0\")")
    })?;
    let mut noted = Vec::new();
    let res = pass(&unit.model, &unit.tensor, reduce, pre, data, &spec, &mut |p, d| {
        noted.push((p.to_path_buf(), d.to_string()))
    })
    .map_err(|e| ToolError::arg("data", e))?;
    for (p, d) in noted {
        ctx.note_input(&p, &d);
    }
    let count = Value::Num(data.items.len() as f64);
    let table = |lists: &[Vec<(f32, usize)>], negate: bool| -> Result<(Value, Value), ToolError> {
        let kk = lists.iter().map(|l| l.len()).min().unwrap_or(0);
        let mut vals = Vec::with_capacity(lists.len() * kk);
        let mut idx = Vec::with_capacity(lists.len() * kk);
        for l in lists {
            for (v, i) in &l[..kk] {
                vals.push(if negate { -*v } else { *v });
                idx.push(*i as f32);
            }
        }
        let shape = vec![lists.len(), kk];
        let t =
            |v| ArrayD::from_shape_vec(shape.clone(), v).map(Value::tensor).map_err(|e| ToolError::new(e.to_string()));
        Ok((t(vals)?, t(idx)?))
    };
    match channel {
        None => {
            let tops: Vec<Vec<(f32, usize)>> = res.top.iter().map(|t| t.items().to_vec()).collect();
            let (acts, idx) = table(&tops, false)?;
            let mut fields = vec![("activations", acts), ("indices", idx), ("count", count)];
            if spec.bottom > 0 {
                let b: Vec<Vec<(f32, usize)>> = res.bottom.iter().map(|t| t.items().to_vec()).collect();
                let (acts, idx) = table(&b, true)?;
                fields.push(("bottom_activations", acts));
                fields.push(("bottom_indices", idx));
            }
            if !qs.is_empty() {
                let q: Vec<Vec<(f32, usize)>> =
                    res.reservoirs.iter().map(|r| qs.iter().filter_map(|q| r.quantile(*q)).collect()).collect();
                let (acts, idx) = table(&q, false)?;
                fields.push(("quantile_activations", acts));
                fields.push(("quantile_indices", idx));
            }
            Ok(Value::record(fields))
        }
        Some(ch) => {
            let channels = res.top.len();
            let out_of_range = || ToolError::arg("unit", format!("channel {ch} is out of range ({channels} channels)"));
            let t = res.top.get(ch).ok_or_else(out_of_range)?;
            let mut group = |items: &[(f32, usize)], negate: bool| -> Result<Vec<(&'static str, Value)>, ToolError> {
                let mut images = Vec::new();
                for (_, i) in items {
                    images.push(Value::Image(Arc::new(data.load(*i, ctx).map_err(|e| ToolError::arg("data", e))?)));
                }
                let label = |i: usize| data.items[i].label.as_deref().map(Value::str).unwrap_or_default();
                Ok(vec![
                    ("images", Value::list(images)),
                    ("activations", Value::nums(items.iter().map(|(v, _)| if negate { -*v } else { *v } as f64))),
                    ("indices", Value::nums(items.iter().map(|(_, i)| *i as f64))),
                    ("labels", Value::list(items.iter().map(|(_, i)| label(*i)).collect())),
                    ("names", Value::list(items.iter().map(|(_, i)| Value::str(&data.items[*i].name)).collect())),
                ])
            };
            let mut fields = group(t.items(), false)?;
            fields.push(("count", count));
            if spec.bottom > 0 {
                let b = res.bottom.get(ch).ok_or_else(out_of_range)?;
                fields.push(("bottom", Value::record(group(b.items(), true)?)));
            }
            if !qs.is_empty() {
                let r = res.reservoirs.get(ch).ok_or_else(out_of_range)?;
                let mut list = Vec::new();
                for q in &qs {
                    let Some((v, i)) = r.quantile(*q) else { continue };
                    let mut g = group(&[(v, i)], false)?;
                    let mut rec = vec![("q", Value::Num(*q))];
                    for (k, val) in g.drain(..) {
                        let one = match val {
                            Value::List(l) => l.first().cloned().unwrap_or_default(),
                            other => other,
                        };
                        rec.push((
                            match k {
                                "images" => "image",
                                "activations" => "activation",
                                "indices" => "index",
                                "labels" => "label",
                                _ => "name",
                            },
                            one,
                        ));
                    }
                    list.push(Value::record(rec));
                }
                fields.push(("quantiles", Value::list(list)));
            }
            Ok(Value::record(fields))
        }
    }
}

/// One streaming pass over the data set, keeping for every channel of
/// `tensor` what `spec` asks. `on_read` sees each file read (its path and sha256).
pub fn pass(
    model: &Model,
    tensor: &str,
    reduce: Reduce,
    pre: Preprocess,
    data: &Dataset,
    spec: &PassSpec,
    on_read: &mut dyn FnMut(&std::path::Path, &str),
) -> Result<PassResult, String> {
    use rand::SeedableRng;
    let input = model.inputs.first().map(|p| p.name.clone()).unwrap_or_default();
    let op = if reduce == Reduce::Max { "ReduceMax" } else { "ReduceMean" };
    let rank = crate::onnx::units::tensor_rank(model, tensor).unwrap_or(4);
    let n = data.items.len();
    let mut res = PassResult { top: Vec::new(), bottom: Vec::new(), reservoirs: Vec::new() };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(spec.seed);
    // Drawn on stderr only when it is a terminal (indicatif hides it otherwise).
    let bar = if n >= 256 { indicatif::ProgressBar::new(n as u64) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template("exemplars {bar:30} {pos}/{len} images, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut start = 0;
    while start < n {
        let end = (start + spec.batch).min(n);
        let x = batch_tensor(data, start..end, pre, on_read)?;
        let acts = if rank > 2 {
            let axes: Vec<i64> = (2..rank as i64).collect();
            model.reduced(vec![(input.clone(), x)], tensor, op, &axes)?
        } else {
            model.capture(vec![(input.clone(), x)], &[tensor.to_string()])?.remove(tensor).ok_or("no output")?
        };
        if acts.ndim() != 2 {
            return Err(format!("`{tensor}` is not [N, C, ...]"));
        }
        if res.top.is_empty() {
            let c = acts.shape()[1];
            res.top = vec![TopK::new(spec.k); c];
            res.bottom = vec![TopK::new(spec.bottom); if spec.bottom > 0 { c } else { 0 }];
            res.reservoirs = vec![Reservoir::new(RESERVOIR); if spec.quantiles { c } else { 0 }];
        }
        for (r, row) in acts.axis_iter(Axis(0)).enumerate() {
            for (c, v) in row.iter().enumerate() {
                res.top[c].push(*v, start + r);
                if spec.bottom > 0 {
                    res.bottom[c].push(-*v, start + r);
                }
                if spec.quantiles {
                    res.reservoirs[c].push(*v, start + r, &mut rng);
                }
            }
        }
        bar.set_position(end as u64);
        start = end;
    }
    bar.finish_and_clear();
    Ok(res)
}

/// Reads and preprocesses items `range` into one [B, 3, size, size] tensor.
pub fn batch_tensor(
    data: &Dataset,
    range: std::ops::Range<usize>,
    pre: Preprocess,
    on_read: &mut dyn FnMut(&std::path::Path, &str),
) -> Result<ArrayD<f32>, String> {
    let s = pre.size as usize;
    let b = range.len();
    let mut buf = Vec::with_capacity(b * 3 * s * s);
    for i in range {
        let (img, path, digest) = data.read(i)?;
        on_read(&path, &digest);
        buf.extend(super::preprocess(&img, pre.resize, pre.size, pre.mean, pre.std)?);
    }
    Array4::from_shape_vec((b, 3, s, s), buf).map(|a| a.into_dyn()).map_err(|e| e.to_string())
}

pub(crate) fn register(r: &mut Registry) {
    r.register(FnTool::new(exemplars_sig, exemplars));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservoir_quantiles_follow_the_stream() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut r = Reservoir::new(64);
        for i in 0..10_000 {
            r.push(i as f32, i, &mut rng);
        }
        assert_eq!(r.items.len(), 64);
        let median = r.quantile(0.5).map(|(v, _)| v);
        assert!(median.is_some_and(|m| (3500.0..6500.0).contains(&m)), "median of 0..10000 estimated as {median:?}");
        let (lo, hi) = (r.quantile(0.0).map(|(v, _)| v), r.quantile(1.0).map(|(v, _)| v));
        assert!(lo < hi, "quantile 0 ({lo:?}) is below quantile 1 ({hi:?})");
        assert_eq!(Reservoir::new(4).quantile(0.5), None, "an empty sample has no quantiles");
    }

    #[test]
    fn top_k_keeps_the_largest_in_order() {
        let mut t = TopK::new(3);
        for (i, v) in [5.0, 1.0, 9.0, 5.0, 7.0, f32::NAN].iter().enumerate() {
            t.push(*v, i);
        }
        assert_eq!(t.items(), &[(9.0, 2), (7.0, 4), (5.0, 0)]);
    }
}
