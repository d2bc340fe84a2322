//! `saliency`: which pixels a channel unit's activation depends on, by its
//! gradient with respect to the model's input (`onnx::grad`): the plain
//! gradient (Simonyan et al. 2014), integrated gradients (Sundararajan et
//! al. 2017) and SmoothGrad (Smilkov et al. 2017).

use std::sync::Arc;

use assay_interpreter::{Arg, Image, Tensor, ToolCtx, ToolError, Type, Value};
use ndarray::{Array2, ArrayD, Axis, Dimension, IxDyn};
use rand_distr::{Distribution, StandardNormal};

use crate::core::declare::{tool, ToolResult};
use crate::methods::grad::grad_error;
use crate::methods::units::{unit_of, Reduce, Select, Unit};
use crate::onnx::grad::grad_name;

/// Input rows per backward run (integrated gradients' steps, SmoothGrad's
/// samples): bounds the backward pass's memory.
const ROWS_PER_RUN: usize = 8;

tool! {
    /// Where in an image a channel unit looks: the gradient of the unit's activation (its channel's
    /// max or mean over space, as the unit reduces) with respect to the input pixels, computed in
    /// ONNX Runtime by Assay's backward graph (docs/gradients.md). `method`: "gradient" (|∂a/∂x|),
    /// "integrated" (integrated gradients from the all-zero input, the dataset mean after
    /// normalisation, in `steps` steps: the attributions sum to about a(x) − a(baseline), reported as
    /// `total` and `difference`; none for the other methods), or "smoothgrad" (the gradient averaged over `steps` copies of the
    /// input with Gaussian noise of `noise` times the input's range, drawn from the run's seed).
    /// Returns {map: [size, size] tensor (≥ 0, the largest over colour channels), image: the map drawn
    /// over the picture the model sees, value: the activation, total, difference}.
    ///
    /// ```assay
    /// let u = unit(model("efficientnet-lite0"), "logits", channel: 281)
    /// let cat = sample_photos()[1].image
    /// let s = saliency(u, cat, method: "integrated", steps: 16)
    /// assert s.map.shape == [224, 224] and min(s.map) >= 0
    /// assert abs(s.total - s.difference) < 0.25 * abs(s.difference), "completeness"
    /// show "where the tabby logit looks", s.image
    /// ```
    saliency in Vision -> Type::record();
    {
        /// a channel unit of an image model: unit(model, tensor, channel: c) or synthetic(name)
        unit: Arg [Type::Handle(assay_interpreter::HandleKind::Unit)],
        /// the image
        image: Value [Type::Image],
        /// "gradient", "integrated" or "smoothgrad"
        method: String = "gradient",
        /// integrated gradients' steps, or SmoothGrad's noisy samples
        steps: usize = 32,
        /// SmoothGrad's noise, as a fraction of the input's range
        noise: f64 = 0.15,
    }
    saliency
}

/// A channel unit of an image model, as the gradient tools take it: the
/// unit, its channel and reduction, the model's preprocessing and input.
pub(crate) struct ChannelUnit<'a> {
    pub u: &'a Unit,
    pub channel: usize,
    pub reduce: Reduce,
    pub pre: crate::onnx::model::Preprocess,
    pub input: String,
}

/// `unit` as a channel unit of an image model; errors blame it, naming `tool`.
pub(crate) fn channel_unit<'a>(unit: &'a Arg, tool: &str) -> Result<ChannelUnit<'a>, ToolError> {
    let u = unit_of(unit)?;
    let Select::Channel(Some(channel), reduce) = u.select else {
        return Err(unit.error(format!("{tool} needs a channel unit: unit(model, tensor, channel: c)")));
    };
    let pre = u.model.card.preprocess.ok_or_else(|| {
        unit.error("the unit's model does not say how images become its input (an image model from model())")
    })?;
    let input = u.model.inputs.first().map(|i| i.name.clone()).unwrap_or_default();
    Ok(ChannelUnit { u, channel, reduce, pre, input })
}

fn saliency(p: saliency::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let ChannelUnit { u, channel, reduce, pre, input } = channel_unit(&p.unit, "saliency")?;
    let Value::Image(img) = &*p.image else { return Err(p.image.error("expected an image")) };
    let s = pre.size as usize;
    let x = crate::pixels::preprocess(img, pre.resize, pre.size, pre.mean, pre.std).map_err(|e| p.image.error(e))?;
    let x = ArrayD::from_shape_vec(vec![1, 3, s, s], x).map_err(|e| ToolError::new(e.to_string()))?;
    let steps = (*p.steps).clamp(1, 1024);
    let grad_of = |rows: ArrayD<f32>| unit_gradient(u, &input, channel, reduce, rows);
    let blame = |e: GradError| match e {
        GradError::Model(e) => grad_error(&u.model, e, p.image.name(), p.unit.name()),
        GradError::Other(e) => ToolError::new(e),
    };
    let (values, plain) = grad_of(x.clone()).map_err(blame)?;
    let value = values[0];
    let (attr, total, difference) = match p.method.as_str() {
        "gradient" => (plain, None, None),
        "integrated" => {
            // Midpoint rule on the straight path from 0 to x.
            let rows: Vec<ArrayD<f32>> = (0..steps).map(|k| &x * ((k as f32 + 0.5) / steps as f32)).collect();
            let g = mean_gradient(&rows, &grad_of).map_err(blame)?;
            let attr = &g * &x;
            let (base, _) = grad_of(ArrayD::zeros(x.raw_dim())).map_err(blame)?;
            (attr.clone(), Some(attr.iter().map(|v| *v as f64).sum()), Some(value - base[0]))
        }
        "smoothgrad" => {
            let (lo, hi) = x.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
            let sigma = (*p.noise * (hi - lo) as f64) as f32;
            let rng = ctx.rng();
            let rows: Vec<ArrayD<f32>> = (0..steps)
                .map(|_| {
                    x.mapv(|v| {
                        v + sigma * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, &mut *rng) as f32
                    })
                })
                .collect::<Vec<_>>();
            (mean_gradient(&rows, &grad_of).map_err(blame)?, None, None)
        }
        other => {
            return Err(p
                .method
                .error(format!("unknown method `{other}`"))
                .help("method: \"gradient\" (plain), \"integrated\" (integrated gradients) or \"smoothgrad\""))
        }
    };
    // The largest magnitude over colour channels, per pixel.
    let map: Array2<f32> = attr
        .index_axis(Axis(0), 0)
        .map_axis(Axis(0), |c| c.iter().fold(0f32, |a, v| a.max(v.abs())))
        .into_dimensionality()
        .map_err(|e| ToolError::new(e.to_string()))?;
    let view = crate::pixels::crop_view(img, pre.resize, pre.size).map_err(|e| p.image.error(e))?;
    let drawn = heat_image(&view, &map.view());
    Ok(Value::record([
        ("map", Value::Tensor(Tensor::new(map.into_dyn()))),
        ("image", Value::Image(Arc::new(drawn))),
        ("value", Value::Num(value)),
        ("total", total.map(Value::Num).unwrap_or(Value::None)),
        ("difference", difference.map(Value::Num).unwrap_or(Value::None)),
    ]))
}

/// A unit's activations on some rows and its gradient with respect to them.
pub(crate) type Gradient = Result<(Vec<f64>, ArrayD<f32>), GradError>;

pub(crate) enum GradError {
    Model(crate::onnx::error::ModelError),
    Other(String),
}

/// The unit's activation on each row of `x` [N, 3, S, S] and its gradient
/// with respect to `x`. The activation is the channel's max over space (its
/// gradient flows to the place of the max) or its mean.
pub(crate) fn unit_gradient(u: &Unit, input: &str, channel: usize, reduce: Reduce, x: ArrayD<f32>) -> Gradient {
    let n = x.shape()[0];
    let feeds = vec![(input.to_string(), x)];
    // The forward values first: the seed of a max is the place of the max.
    let t = u.model.capture(feeds.clone(), std::slice::from_ref(&u.tensor)).map_err(GradError::Model)?;
    let t = t.get(&u.tensor).ok_or_else(|| GradError::Other("the run gave no unit tensor".into()))?;
    if t.ndim() < 2 || t.shape()[1] <= channel {
        return Err(GradError::Other(format!("`{}` {:?} has no channel {channel}", u.tensor, t.shape())));
    }
    let rank = t.ndim();
    let (mut idx, mut w, mut values) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..n {
        let plane = t.index_axis(Axis(0), r);
        let plane = plane.index_axis(Axis(0), channel);
        let cells: Vec<(IxDyn, f32)> = plane.indexed_iter().map(|(i, v)| (i, *v)).collect();
        let k = cells.len().max(1) as f32;
        let chosen: Vec<(IxDyn, f32)> = match reduce {
            Reduce::Mean => cells.into_iter().map(|(i, _)| (i, 1.0 / k)).collect(),
            Reduce::Max => cells
                .into_iter()
                .fold(None::<(IxDyn, f32)>, |best, (i, v)| match best {
                    Some((_, b)) if b >= v => best,
                    _ => Some((i, v)),
                })
                .map(|(i, _)| vec![(i, 1.0)])
                .unwrap_or_default(),
        };
        values.push(chosen.iter().map(|(i, wt)| plane[i.clone()] as f64 * *wt as f64).sum());
        for (i, wt) in chosen {
            idx.push(r as f32);
            idx.push(channel as f32);
            idx.extend(i.as_array_view().iter().map(|v| *v as f32));
            w.push(wt);
        }
    }
    let k = w.len();
    let seed = (
        ArrayD::from_shape_vec(vec![k, rank], idx).map_err(|e| GradError::Other(e.to_string()))?,
        ArrayD::from_shape_vec(vec![k], w).map_err(|e| GradError::Other(e.to_string()))?,
    );
    let mut out = u.model.grad(feeds, &[input.to_string()], &u.tensor, seed).map_err(GradError::Model)?;
    let g = out.remove(&grad_name(input)).ok_or_else(|| GradError::Other("no gradient came back".into()))?;
    Ok((values, g))
}

/// The mean over `rows` (each [1, 3, S, S]) of the unit's gradient, run
/// [`ROWS_PER_RUN`] rows at a time; [3, S, S] with a leading axis of 1.
fn mean_gradient(rows: &[ArrayD<f32>], grad_of: &dyn Fn(ArrayD<f32>) -> Gradient) -> Result<ArrayD<f32>, GradError> {
    let mut sum: Option<ArrayD<f32>> = None;
    for chunk in rows.chunks(ROWS_PER_RUN) {
        let views: Vec<_> = chunk.iter().map(|r| r.view()).collect();
        let batch = ndarray::concatenate(Axis(0), &views).map_err(|e| GradError::Other(e.to_string()))?;
        let (_, g) = grad_of(batch)?;
        let part = g.sum_axis(Axis(0)).insert_axis(Axis(0));
        sum = Some(match sum {
            Some(s) => s + part,
            None => part,
        });
    }
    let sum = sum.ok_or_else(|| GradError::Other("no rows".into()))?;
    Ok(sum / rows.len() as f32)
}

/// The picture in grey with the map over it, from transparent (0) to red
/// and yellow (the map's 99th percentile and above: a few extreme pixels
/// would leave the rest of a saliency map invisible).
fn heat_image(img: &Image, map: &ndarray::ArrayView2<f32>) -> Image {
    let mut sorted: Vec<f32> = map.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f32::total_cmp);
    let max = sorted.get(sorted.len() * 99 / 100).copied().unwrap_or(0.0);
    let mut px = img.pixels.clone();
    let (w, h) = (img.width as usize, img.height as usize);
    let (mh, mw) = (map.shape()[0], map.shape()[1]);
    for y in 0..h {
        for x in 0..w {
            let v = if max > 0.0 { (map[[y * mh / h.max(1), x * mw / w.max(1)]] / max).min(1.0) } else { 0.0 };
            let i = (y * w + x) * 4;
            let grey = 0.299 * px[i] as f32 + 0.587 * px[i + 1] as f32 + 0.114 * px[i + 2] as f32;
            let heat = [255.0, (2.0 * v - 1.0).clamp(0.0, 1.0) * 255.0, 0.0];
            let a = (1.5 * v).min(0.85);
            for c in 0..3 {
                px[i + c] = ((1.0 - a) * grey * 0.8 + a * heat[c]).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    Image::new(img.width, img.height, px)
}
