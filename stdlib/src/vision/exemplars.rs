//! Dataset exemplars in one streaming pass: images are decoded batch by
//! batch, the layer is reduced over space inside the graph (only [B, C]
//! leaves ONNX Runtime), and the top k of every channel is kept. Memory
//! grows with k times the number of channels, not with the data set.

use std::sync::Arc;

use assay_interpreter::{Arg, HandleKind, Name, ToolCtx, ToolError, Type, Value};
use ndarray::{Array4, ArrayD, Axis};

use crate::core::declare::{tool, ToolResult};
use crate::methods::units::{Reduce, Select, Unit};
use crate::onnx::model::{Model, Preprocess};
use crate::vision::data::{dataset_of, Dataset};

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

/// A fixed-size uniform sample of a data set's items, with every channel's
/// activation on each: the `cap` items of smallest priority, where an item's
/// priority is a hash of (seed, index). The sample of a union is the sample
/// of the parts' samples, so shards merge exactly; quantile exemplars come
/// from bounded memory.
#[derive(Clone, Default)]
pub struct Sample {
    cap: usize,
    seed: u64,
    /// (priority, index, activation of every channel), by priority.
    items: Vec<(u64, usize, Vec<f32>)>,
}

/// splitmix64: a well-mixed 64-bit hash of the seed and an item's index.
fn priority(seed: u64, index: usize) -> u64 {
    let mut z = seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Sample {
    pub fn new(cap: usize, seed: u64) -> Self {
        Sample { cap, seed, items: Vec::new() }
    }
    /// Offers item `index` with its activations (NaN counts as the smallest).
    pub fn offer(&mut self, index: usize, row: impl Iterator<Item = f32>) {
        self.offer_ranked(priority(self.seed, index), index, || {
            row.map(|v| if v.is_nan() { f32::NEG_INFINITY } else { v }).collect()
        });
    }
    fn offer_ranked(&mut self, p: u64, index: usize, row: impl FnOnce() -> Vec<f32>) {
        if self.cap == 0 || (self.items.len() == self.cap && self.items.last().is_some_and(|l| (l.0, l.1) < (p, index)))
        {
            return;
        }
        let pos = self.items.partition_point(|l| (l.0, l.1) < (p, index));
        if self.items.get(pos).is_some_and(|l| l.1 == index) {
            return;
        }
        self.items.insert(pos, (p, index, row()));
        self.items.truncate(self.cap);
    }
    /// Channel `c`'s sampled item nearest quantile `q` of the sample.
    pub fn quantile(&self, c: usize, q: f64) -> Option<(f32, usize)> {
        let mut sorted: Vec<(f32, usize)> =
            self.items.iter().filter_map(|(_, i, row)| row.get(c).map(|v| (*v, *i))).collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let n = sorted.len();
        (n > 0).then(|| sorted[((q * (n - 1) as f64).round() as usize).min(n - 1)])
    }
}

/// Items sampled for quantile exemplars.
pub const SAMPLE: usize = 256;

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
    pub sample: Sample,
}

tool! {
    /// The images of a data set that drive a unit most (and, on request, least, and at chosen
    /// quantiles), in ONE streaming pass. For a unit (a channel): {images, activations, labels, names,
    /// indices, count}, plus `bottom` (the same fields for the `bottom` weakest) and `quantiles` (a
    /// list of {q, activation, index, name, label, image}). For a layer (every channel): {activations:
    /// [C, k], indices: [C, k], count}, plus bottom_activations/bottom_indices [C, bottom] and
    /// quantile_activations/quantile_indices [C, quantiles]; `item(data, i)` gives any exemplar's
    /// image. Works on [N, C, H, W] maps (reduced over space in the graph) and on [N, C] outputs such
    /// as class logits. Memory grows with channels times (k + bottom + 256 sampled for quantiles),
    /// never with the data set; quantiles are estimated from a seeded uniform sample of 256 images. A
    /// progress bar shows on a terminal. Shardable: under `assay run --shard i/n` each shard passes
    /// over its block of batches and `assay merge` gives exactly the one-machine result.
    ///
    /// ```assay
    /// let net = model("efficientnet-lite0")
    /// let l = layer(net, "/_blocks.15/Relu6_output_0")
    /// let ex = exemplars(l, images("fixtures/*.png"), k: 1)
    /// assert ex.activations.shape == [1152, 1] and ex.count == 1
    /// ```
    ///
    /// ```assay
    /// let net = model("efficientnet-lite0")
    /// let espresso = unit(net, "logits", channel: 967)
    /// let ex = exemplars(espresso, take(emoji(), 100), k: 3, bottom: 2, quantiles: [0.5], batch: 50)
    /// assert len(ex.images) == 3 and len(ex.bottom.images) == 2
    /// assert ex.activations[2] > ex.quantiles[0].activation and ex.quantiles[0].activation > ex.bottom.activations[0]
    /// ```
    exemplars in Vision -> Type::record(), shardable(exemplars_merge);
    {
        /// a channel unit or a layer
        unit: Arg [Type::Handle(HandleKind::Unit)],
        /// images to search (a data set), or texts for a language model's neuron or head
        data: Arg [Type::OneOf(vec![Type::Handle(HandleKind::Dataset), Type::list(Type::Str)])],
        /// top exemplars per channel
        k: usize = 12,
        /// images per run
        batch: usize = 32,
        /// weakest exemplars per channel
        bottom: usize = 0,
        /// quantiles (0..1) to sample an exemplar at, e.g. [0.25, 0.5, 0.75]
        quantiles: Arg [Type::list(Type::Num)] = None,
    }
    exemplars
}

fn exemplars(p: exemplars::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    if let Some(texts) = texts_of(&p.data) {
        // Every shard ranks all the texts (the merge takes the first
        // shard's answer, which every shard computed alike).
        return text_exemplars(&p.unit, (p.data.name(), &texts), *p.k, *p.bottom);
    }
    let s = setup(&p.unit, &p.data, &p.quantiles, [*p.k, *p.batch, *p.bottom], ctx)?;
    let pre: Preprocess = s.unit.model.card.preprocess.ok_or_else(|| {
        p.unit
            .error("the model does not say how images become its input")
            .help("use a built-in image model such as model(\"efficientnet-lite0\")")
    })?;
    // A shard takes a contiguous block of whole batches, so every image is
    // run in the same batch as in one run over all of them.
    let n = s.data.items.len();
    let items = match ctx.share() {
        Some(share) => {
            let batches = share.range(n.div_ceil(s.spec.batch));
            (batches.start * s.spec.batch).min(n)..(batches.end * s.spec.batch).min(n)
        }
        None => 0..n,
    };
    let mut noted = Vec::new();
    let res = pass(&s.unit.model, &s.unit.tensor, s.reduce, pre, s.data, &s.spec, items, &mut |p, d| {
        noted.push((p.to_path_buf(), d.to_string()))
    })
    .map_err(|e| e.blame(p.data.name()))?;
    for (p, d) in noted {
        ctx.note_input(&p, &d);
    }
    match ctx.share() {
        Some(_) => partial_value(&res),
        None => result_value(&s, res, ctx),
    }
}

/// The texts of a `data` argument that is a list of strings.
fn texts_of(data: &Arg) -> Option<Vec<String>> {
    match data.get() {
        Value::List(items) if !items.is_empty() && items.iter().all(|v| matches!(v, Value::Str(_))) => {
            Some(items.iter().map(Value::to_text).collect())
        }
        _ => None,
    }
}

/// The most texts one call ranks (each is one run of the model).
const MAX_TEXTS: usize = 20_000;

/// A language model's unit over texts: the texts that drive it most (and,
/// with `bottom`, least), each with its token profile, the token where it
/// peaks, and the text with that token marked `⟦...⟧` (report.html
/// highlights it).
fn text_exemplars(unit: &Arg, (data, texts): (Name, &[String]), k: usize, bottom: usize) -> Result<Value, ToolError> {
    let u: &Unit = unit.handle::<Unit>("a neuron or head of a language model")?;
    if matches!(u.select, Select::Channel(..)) || u.model.card.tokenizer.is_none() {
        return Err(ToolError::arg(data, "texts are for a language model's neuron or head")
            .help("give an image model's channel a data set of images, e.g. sample(emoji(), 200)"));
    }
    if texts.len() > MAX_TEXTS {
        return Err(ToolError::arg(data, format!("{} texts; give at most {MAX_TEXTS}", texts.len()))
            .help("take a sample: sample(corpus(), 500)"));
    }
    let mut rows = Vec::with_capacity(texts.len());
    for (i, t) in texts.iter().enumerate() {
        let (tokens, values) = crate::methods::units::text_profile(u, t).map_err(|e| e.blame(data))?;
        let (at, max) =
            values
                .iter()
                .enumerate()
                .fold((0usize, f64::NEG_INFINITY), |(bi, bv), (j, v)| if *v > bv { (j, *v) } else { (bi, bv) });
        rows.push((max, i, at, tokens, values));
    }
    let pick = |order: Vec<usize>| -> Value {
        let mut fields: Vec<(&str, Vec<Value>)> =
            ["texts", "activations", "indices", "tokens", "positions", "contexts", "profiles"]
                .iter()
                .map(|n| (*n, Vec::new()))
                .collect();
        for r in order {
            let (max, i, at, tokens, values) = &rows[r];
            let marked = crate::methods::units::marked_text(u, &texts[*i], *at).unwrap_or_else(|| {
                tokens.iter().enumerate().map(|(j, t)| if j == *at { format!("⟦{t}⟧") } else { t.clone() }).collect()
            });
            let row = [
                Value::str(&texts[*i]),
                Value::Num(*max),
                Value::Num(*i as f64),
                Value::str(tokens.get(*at).cloned().unwrap_or_default()),
                Value::Num(*at as f64),
                Value::str(marked),
                Value::record([
                    ("tokens", Value::list(tokens.iter().map(Value::str).collect())),
                    ("activations", Value::nums(values.iter().copied())),
                ]),
            ];
            for (f, v) in fields.iter_mut().zip(row) {
                f.1.push(v);
            }
        }
        Value::record(fields.into_iter().map(|(n, v)| (n, Value::list(v))))
    };
    // Largest first; ties keep the earlier text.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|a, b| rows[*b].0.total_cmp(&rows[*a].0).then(rows[*a].1.cmp(&rows[*b].1)));
    let top = pick(order.iter().copied().take(k.max(1)).collect());
    let mut out = match top {
        Value::Record(f) => (*f).clone(),
        _ => Default::default(),
    };
    out.insert("count".into(), Value::Num(rows.len() as f64));
    if bottom > 0 {
        out.insert("bottom".into(), pick(order.iter().rev().copied().take(bottom).collect()));
    }
    Ok(Value::Record(std::sync::Arc::new(out)))
}

fn quantiles_of(x: &Arg) -> Result<Vec<f64>, ToolError> {
    if x.is_none() {
        return Ok(Vec::new());
    }
    let qs = x.numbers()?;
    if let Some(q) = qs.iter().find(|q| !(0.0..=1.0).contains(*q)) {
        return Err(x.error(format!("quantiles are between 0 and 1, found {q}")));
    }
    Ok(qs)
}

/// What a call asks, read from its arguments (the same in the whole run,
/// in each shard and in the merge: the seed is the call's first draw).
struct Setup<'a> {
    /// The parameters the unit and the data came by, for errors about them.
    names: (Name, Name),
    unit: &'a Unit,
    channel: Option<usize>,
    reduce: Reduce,
    data: &'a Dataset,
    qs: Vec<f64>,
    spec: PassSpec,
}

/// The call's unit, data set and quantiles, and its `[k, batch, bottom]`.
fn setup<'a>(
    unit: &'a Arg,
    data: &'a Arg,
    quantiles: &Arg,
    [k, batch, bottom]: [usize; 3],
    ctx: &mut dyn ToolCtx,
) -> Result<Setup<'a>, ToolError> {
    let names = (unit.name(), data.name());
    let unit: &Unit = unit.handle::<Unit>("a unit or layer")?;
    let (channel, reduce) = match unit.select {
        Select::Channel(c, r) => (c, r),
        _ => {
            return Err(ToolError::arg(
                names.0,
                "exemplars rank channels: use unit(model, tensor, channel: c) or layer(model, tensor)",
            ))
        }
    };
    let data = dataset_of(data)?;
    let qs = quantiles_of(quantiles)?;
    let spec = PassSpec {
        // No more than the data set holds: `k: 4294967296` must not reserve
        // room for four billion images.
        k: k.clamp(1, data.items.len().max(1)),
        batch: batch.clamp(1, data.items.len().clamp(1, 4096)),
        bottom: bottom.min(data.items.len()),
        quantiles: !qs.is_empty(),
        seed: rand::Rng::random(ctx.rng()),
    };
    Ok(Setup { names, unit, channel, reduce, data, qs, spec })
}

/// The exact merge of shards' passes: top and bottom lists merged with ties
/// broken by index, samples by priority.
fn exemplars_merge(p: exemplars::Params, ctx: &mut dyn ToolCtx, parts: Vec<Value>) -> Result<Value, ToolError> {
    if texts_of(&p.data).is_some() {
        return parts.into_iter().next().ok_or_else(|| ToolError::new("no shard ranked the texts"));
    }
    let s = setup(&p.unit, &p.data, &p.quantiles, [*p.k, *p.batch, *p.bottom], ctx)?;
    let mut res =
        PassResult { top: Vec::new(), bottom: Vec::new(), sample: Sample::new(sample_size(&s.spec), s.spec.seed) };
    for part in &parts {
        from_partial(part, &s.spec, &mut res).map_err(|e| ToolError::new(format!("a shard's partial result: {e}")))?;
    }
    result_value(&s, res, ctx)
}

fn sample_size(spec: &PassSpec) -> usize {
    if spec.quantiles {
        SAMPLE
    } else {
        0
    }
}

/// A shard's pass as a value: per channel the top and bottom lists
/// (values and indices), and the sampled items with their activations.
fn partial_value(res: &PassResult) -> Result<Value, ToolError> {
    let lists = |ts: &[TopK]| -> Result<(Value, Value), ToolError> {
        let kk = ts.first().map(|t| t.items().len()).unwrap_or(0);
        let mut vals = Vec::with_capacity(ts.len() * kk);
        let mut idx = Vec::with_capacity(ts.len() * kk);
        for t in ts {
            if t.items().len() != kk {
                return Err(ToolError::new("channels kept different numbers of exemplars"));
            }
            for (v, i) in t.items() {
                vals.push(*v);
                idx.push(*i as f64);
            }
        }
        let t = ArrayD::from_shape_vec(vec![ts.len(), kk], vals).map_err(|e| ToolError::new(e.to_string()))?;
        Ok((Value::tensor(t), Value::nums(idx)))
    };
    let (top_v, top_i) = lists(&res.top)?;
    let (bottom_v, bottom_i) = lists(&res.bottom)?;
    let c = res.top.len();
    let mut rows = Vec::with_capacity(res.sample.items.len() * c);
    for (_, _, row) in &res.sample.items {
        rows.extend_from_slice(row);
    }
    let rows =
        ArrayD::from_shape_vec(vec![res.sample.items.len(), c], rows).map_err(|e| ToolError::new(e.to_string()))?;
    Ok(Value::record([
        ("channels", Value::Num(c as f64)),
        ("top_values", top_v),
        ("top_indices", top_i),
        ("bottom_values", bottom_v),
        ("bottom_indices", bottom_i),
        ("sample_indices", Value::nums(res.sample.items.iter().map(|(_, i, _)| *i as f64))),
        ("sample_rows", Value::tensor(rows)),
    ]))
}

/// Folds one shard's partial value into `res`.
fn from_partial(v: &Value, spec: &PassSpec, res: &mut PassResult) -> Result<(), String> {
    let Value::Record(f) = v else { return Err("not a record".into()) };
    let get = |k: &str| f.get(k).ok_or_else(|| format!("no `{k}`"));
    let c = match get("channels")? {
        Value::Num(c) if *c >= 0.0 && c.fract() == 0.0 => *c as usize,
        _ => return Err("`channels` is not a count".into()),
    };
    if c == 0 {
        return Ok(()); // a shard with no images
    }
    if res.top.is_empty() {
        res.top = vec![TopK::new(spec.k); c];
        res.bottom = vec![TopK::new(spec.bottom); if spec.bottom > 0 { c } else { 0 }];
    } else if res.top.len() != c {
        return Err(format!("{c} channels, another shard has {}", res.top.len()));
    }
    let indices = |k: &str| -> Result<Vec<usize>, String> {
        match get(k)? {
            Value::List(l) => l
                .iter()
                .map(|x| match x {
                    Value::Num(n) if *n >= 0.0 && n.fract() == 0.0 => Ok(*n as usize),
                    _ => Err(format!("`{k}` holds a value that is not an index")),
                })
                .collect(),
            _ => Err(format!("`{k}` is not a list")),
        }
    };
    let tensor = |k: &str| -> Result<assay_interpreter::Tensor, String> {
        match get(k)? {
            Value::Tensor(t) => Ok(t.clone()),
            _ => Err(format!("`{k}` is not a tensor")),
        }
    };
    for (vk, ik, lists) in
        [("top_values", "top_indices", &mut res.top), ("bottom_values", "bottom_indices", &mut res.bottom)]
    {
        if lists.is_empty() {
            continue;
        }
        let vals = tensor(vk)?;
        let idx = indices(ik)?;
        let kk = vals.shape().get(1).copied().unwrap_or(0);
        if vals.shape() != [c, kk] || idx.len() != c * kk {
            return Err(format!("`{vk}` is {:?}, not [{c}, k]", vals.shape()));
        }
        for (n, (v, i)) in vals.iter().zip(&idx).enumerate() {
            lists[n / kk.max(1)].push(*v, *i);
        }
    }
    if spec.quantiles {
        let rows = tensor("sample_rows")?;
        let idx = indices("sample_indices")?;
        if rows.shape() != [idx.len(), c] {
            return Err(format!("`sample_rows` is {:?}, not [{}, {c}]", rows.shape(), idx.len()));
        }
        let rows = rows.to_array();
        for (r, i) in idx.iter().enumerate() {
            let row = rows.index_axis(Axis(0), r);
            res.sample.offer_ranked(priority(spec.seed, *i), *i, || row.iter().copied().collect());
        }
    }
    Ok(())
}

/// What the tool returns, from a pass over all of the data.
fn result_value(s: &Setup, res: PassResult, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let (data, spec, qs) = (s.data, &s.spec, &s.qs);
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
    match s.channel {
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
                let q: Vec<Vec<(f32, usize)>> = (0..res.top.len())
                    .map(|c| qs.iter().filter_map(|q| res.sample.quantile(c, *q)).collect())
                    .collect();
                let (acts, idx) = table(&q, false)?;
                fields.push(("quantile_activations", acts));
                fields.push(("quantile_indices", idx));
            }
            Ok(Value::record(fields))
        }
        Some(ch) => {
            let channels = res.top.len();
            let out_of_range =
                || ToolError::arg(s.names.0, format!("channel {ch} is out of range ({channels} channels)"));
            // A shard whose block is empty goes on with empty lists.
            let empty = TopK::new(0);
            let none_here = channels == 0 && ctx.share().is_some();
            let t = match res.top.get(ch) {
                Some(t) => t,
                None if none_here => &empty,
                None => return Err(out_of_range()),
            };
            let mut group = |items: &[(f32, usize)], negate: bool| -> Result<Vec<(&'static str, Value)>, ToolError> {
                let mut images = Vec::new();
                for (_, i) in items {
                    images.push(Value::Image(Arc::new(data.load(*i, ctx).map_err(|e| ToolError::arg(s.names.1, e))?)));
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
                let b = match res.bottom.get(ch) {
                    Some(b) => b,
                    None if none_here => &empty,
                    None => return Err(out_of_range()),
                };
                fields.push(("bottom", Value::record(group(b.items(), true)?)));
            }
            if !qs.is_empty() {
                let mut list = Vec::new();
                for q in qs {
                    let Some((v, i)) = res.sample.quantile(ch, *q) else { continue };
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

/// One streaming pass over items `items` of the data set, keeping for
/// every channel of `tensor` what `spec` asks. `on_read` sees each file
/// read (its path and sha256).
#[allow(clippy::too_many_arguments)]
pub fn pass(
    model: &Model,
    tensor: &str,
    reduce: Reduce,
    pre: Preprocess,
    data: &Dataset,
    spec: &PassSpec,
    items: std::ops::Range<usize>,
    on_read: &mut dyn FnMut(&std::path::Path, &str),
) -> Result<PassResult, crate::methods::units::UnitError> {
    let input = model.inputs.first().map(|p| p.name.clone()).unwrap_or_default();
    let op = if reduce == Reduce::Max { "ReduceMax" } else { "ReduceMean" };
    let rank = crate::methods::units::tensor_rank(model, tensor).unwrap_or(4);
    let n = items.end.min(data.items.len());
    let mut res = PassResult { top: Vec::new(), bottom: Vec::new(), sample: Sample::new(sample_size(spec), spec.seed) };
    // Drawn on stderr only when it is a terminal (indicatif hides it otherwise).
    let len = n.saturating_sub(items.start);
    let bar = if len >= 256 { indicatif::ProgressBar::new(len as u64) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template("exemplars {bar:30} {pos}/{len} images, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut start = items.start;
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
            return Err(format!("`{tensor}` is not [N, C, ...]").into());
        }
        if res.top.is_empty() {
            let c = acts.shape()[1];
            res.top = vec![TopK::new(spec.k); c];
            res.bottom = vec![TopK::new(spec.bottom); if spec.bottom > 0 { c } else { 0 }];
        }
        for (r, row) in acts.axis_iter(Axis(0)).enumerate() {
            for (c, v) in row.iter().enumerate() {
                res.top[c].push(*v, start + r);
                if spec.bottom > 0 {
                    res.bottom[c].push(-*v, start + r);
                }
            }
            if spec.quantiles {
                res.sample.offer(start + r, row.iter().copied());
            }
        }
        bar.set_position((end - items.start) as u64);
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
        buf.extend(crate::pixels::preprocess(&img, pre.resize, pre.size, pre.mean, pre.std)?);
    }
    Array4::from_shape_vec((b, 3, s, s), buf).map(|a| a.into_dyn()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_quantiles_follow_the_data() {
        let mut r = Sample::new(64, 7);
        for i in 0..10_000 {
            r.offer(i, [i as f32, -(i as f32)].into_iter());
        }
        assert_eq!(r.items.len(), 64);
        let median = r.quantile(0, 0.5).map(|(v, _)| v);
        assert!(median.is_some_and(|m| (3500.0..6500.0).contains(&m)), "median of 0..10000 estimated as {median:?}");
        let (lo, hi) = (r.quantile(0, 0.0), r.quantile(0, 1.0));
        assert!(lo.map(|x| x.0) < hi.map(|x| x.0), "quantile 0 ({lo:?}) is below quantile 1 ({hi:?})");
        assert_eq!(r.quantile(1, 1.0).map(|x| x.1), lo.map(|x| x.1), "channel 1 is channel 0 negated");
        assert_eq!(Sample::new(4, 0).quantile(0, 0.5), None, "an empty sample has no quantiles");
    }

    #[test]
    fn samples_of_parts_merge_into_the_sample_of_the_whole() {
        let mut whole = Sample::new(16, 3);
        for i in 0..1000 {
            whole.offer(i, std::iter::once(i as f32));
        }
        let mut merged = Sample::new(16, 3);
        for part in [0..333, 333..334, 334..1000] {
            let mut s = Sample::new(16, 3);
            for i in part {
                s.offer(i, std::iter::once(i as f32));
            }
            for (p, i, row) in s.items {
                merged.offer_ranked(p, i, || row);
            }
        }
        let ids = |s: &Sample| s.items.iter().map(|x| x.1).collect::<Vec<_>>();
        assert_eq!(ids(&merged), ids(&whole));
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
