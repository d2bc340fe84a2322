//! `visualize`: feature visualisation (Olah et al. 2017) without a
//! diffusion model: an image optimised by gradient ascent on a channel
//! unit's activation, its gradient from Assay's backward graph. The image
//! is parameterised as Lucid parameterises it: colours decorrelated (the
//! square root of ImageNet's colour covariance) and each channel's
//! spatial frequencies scaled by 1/frequency (an orthonormal 2-D cosine
//! transform here), squashed into [0, 1] by a sigmoid; each step sees it
//! jittered (a random shift) so that the optimum is robust rather than a
//! pattern of single pixels. Seeded from the run: the same script gives the
//! same picture.

use std::sync::Arc;

use assay_interpreter::{Arg, Image, ToolCtx, ToolError, Type, Value};
use ndarray::{Array2, Array3, ArrayD, Axis};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::core::declare::{tool, ToolResult};
use crate::methods::grad::grad_error;
use crate::methods::saliency::{channel_unit, unit_gradient, ChannelUnit, GradError};

/// The square root of ImageNet's colour covariance (Lucid's
/// `color_correlation_svd_sqrt`), divided by its largest column norm.
const COLOUR: [[f32; 3]; 3] = [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]];
const COLOUR_NORM: f32 = 0.463_68;

tool! {
    /// Feature visualisation: an image that drives a channel unit, found by gradient ascent (Adam,
    /// `rate`) on the unit's activation over `steps` steps, its gradient computed by Assay's backward
    /// graph (docs/gradients.md). The image is parameterised with decorrelated colours and
    /// frequencies (Lucid's: 1/frequency scaling of a 2-D cosine transform, ImageNet's colour
    /// correlation) and seen through a random shift of up to `jitter` pixels each step. The start and
    /// the shifts come from the run's seed. Returns {image (the model's input size), value: the unit's
    /// activation on it, start: on the starting noise, history: per step}.
    ///
    /// ```assay
    /// let net = model("efficientnet-lite0")
    /// let u = unit(net, "/_blocks.15/_project_conv/Conv_output_0", channel: 99)
    /// let v = visualize(u, steps: 24)
    /// assert v.value > 4 * abs(v.start) and v.value > v.history[0]
    /// show "what drives block 15's channel 99", v.image
    /// ```
    visualize in Vision -> Type::record();
    {
        /// a channel unit of an image model: unit(model, tensor, channel: c) or synthetic(name)
        unit: Arg [Type::Handle(assay_interpreter::HandleKind::Unit)],
        /// optimisation steps
        steps: usize = 128,
        /// Adam's step size
        rate: f64 = 0.05,
        /// the largest random shift per step, in pixels
        jitter: usize = 8,
    }
    visualize
}

fn visualize(p: visualize::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let ChannelUnit { u, channel, reduce, pre, input } = channel_unit(&p.unit, "visualize")?;
    let s = pre.size as usize;
    let steps = (*p.steps).clamp(1, 4096);
    let jitter = (*p.jitter).min(s / 4);
    let basis = dct_basis(s);
    let scale = frequency_scale(s);
    let blame = |e: GradError| match e {
        GradError::Model(e) => grad_error(&u.model, e, p.unit.name(), p.unit.name()),
        GradError::Other(e) => ToolError::new(e),
    };
    // The spectrum, [3, s, s], from small noise.
    let rng = ctx.rng();
    let mut spec = Array3::<f32>::from_shape_fn((3, s, s), |_| {
        0.01 * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, &mut *rng) as f32
    });
    let (mut m1, mut m2) = (Array3::<f32>::zeros((3, s, s)), Array3::<f32>::zeros((3, s, s)));
    let model_input = |rgb: &Array3<f32>| -> ArrayD<f32> {
        let mut x = ArrayD::<f32>::zeros(vec![1, 3, s, s]);
        for c in 0..3 {
            let plane = rgb.index_axis(Axis(0), c).mapv(|v| (v * 255.0 - pre.mean[c]) / pre.std[c]);
            x.index_axis_mut(Axis(0), 0).index_axis_mut(Axis(0), c).assign(&plane);
        }
        x
    };
    let mut history = Vec::with_capacity(steps);
    let (b1, b2) = (0.9f32, 0.999f32);
    let start = {
        let (rgb, _) = render(&spec, &basis, &scale);
        unit_gradient(u, &input, channel, reduce, model_input(&rgb)).map_err(blame)?.0[0]
    };
    for step in 1..=steps {
        let (rgb, pre_sigmoid) = render(&spec, &basis, &scale);
        let (dy, dx) = (ctx.rng().random_range(0..=2 * jitter), ctx.rng().random_range(0..=2 * jitter));
        let shifted = roll(&rgb, dy as isize - jitter as isize, dx as isize - jitter as isize);
        let (value, g) = unit_gradient(u, &input, channel, reduce, model_input(&shifted)).map_err(blame)?;
        history.push(value[0]);
        // Back through the normalisation, the shift, the sigmoid, the
        // colours and the frequencies, to the spectrum.
        let mut d_rgb = Array3::<f32>::zeros((3, s, s));
        for c in 0..3 {
            let gc = g.index_axis(Axis(0), 0).index_axis(Axis(0), c).mapv(|v| v * 255.0 / pre.std[c]);
            d_rgb
                .index_axis_mut(Axis(0), c)
                .assign(&gc.into_dimensionality::<ndarray::Ix2>().map_err(|e| ToolError::new(e.to_string()))?);
        }
        let d_rgb = roll(&d_rgb, jitter as isize - dy as isize, jitter as isize - dx as isize);
        let d_pre = d_rgb
            * pre_sigmoid.mapv(|z| {
                let sg = 1.0 / (1.0 + (-z).exp());
                sg * (1.0 - sg)
            });
        let d_spec = spectrum_gradient(&d_pre, &basis, &scale);
        for ((w, (a, b)), g) in spec.iter_mut().zip(m1.iter_mut().zip(m2.iter_mut())).zip(d_spec.iter()) {
            // Ascent: the loss is minus the activation.
            let g = -*g;
            *a = b1 * *a + (1.0 - b1) * g;
            *b = b2 * *b + (1.0 - b2) * g * g;
            let (ah, bh) = (*a / (1.0 - b1.powi(step as i32)), *b / (1.0 - b2.powi(step as i32)));
            *w -= *p.rate as f32 * ah / (bh.sqrt() + 1e-8);
        }
    }
    let (rgb, _) = render(&spec, &basis, &scale);
    let mut px = Vec::with_capacity(s * s * 4);
    for y in 0..s {
        for x in 0..s {
            for c in 0..3 {
                px.push((rgb[[c, y, x]] * 255.0).round().clamp(0.0, 255.0) as u8);
            }
            px.push(255);
        }
    }
    // The activation on the picture as returned (8-bit colours), as a
    // script that feeds it back gets it.
    let img = Image::new(s as u32, s as u32, px);
    let x = crate::pixels::preprocess(&img, pre.size, pre.size, pre.mean, pre.std).map_err(ToolError::new)?;
    let x = ArrayD::from_shape_vec(vec![1, 3, s, s], x).map_err(|e| ToolError::new(e.to_string()))?;
    let value = unit_gradient(u, &input, channel, reduce, x).map_err(blame)?.0[0];
    Ok(Value::record([
        ("image", Value::Image(Arc::new(img))),
        ("value", Value::Num(value)),
        ("start", Value::Num(start)),
        ("history", Value::nums(history)),
    ]))
}

/// The orthonormal DCT-II matrix: row k is frequency k.
fn dct_basis(n: usize) -> Array2<f32> {
    Array2::from_shape_fn((n, n), |(k, i)| {
        let a = if k == 0 { (1.0 / n as f64).sqrt() } else { (2.0 / n as f64).sqrt() };
        (a * (std::f64::consts::PI * (i as f64 + 0.5) * k as f64 / n as f64).cos()) as f32
    })
}

/// 1/frequency per coefficient, the lowest frequencies capped at the
/// image's size: Lucid's spectrum scaling, with its overall factor (its
/// inverse FFT's 1/√(h·w) against this orthonormal transform's, and its
/// division by 4) so that the same step sizes give the same contrast.
fn frequency_scale(n: usize) -> Array2<f32> {
    Array2::from_shape_fn((n, n), |(ky, kx)| {
        // A cosine of index k has k/2n cycles per pixel.
        let f = ((ky * ky + kx * kx) as f32).sqrt() / (2.0 * n as f32);
        1.0 / f.max(1.0 / n as f32) / 8.0
    })
}

/// The image [3, s, s] in [0, 1] and its values before the sigmoid.
fn render(spec: &Array3<f32>, basis: &Array2<f32>, scale: &Array2<f32>) -> (Array3<f32>, Array3<f32>) {
    let s = basis.nrows();
    let mut decorrelated = Array3::<f32>::zeros((3, s, s));
    for c in 0..3 {
        let coeff = &spec.index_axis(Axis(0), c) * scale;
        // Inverse of an orthonormal transform: Bᵀ X B.
        let plane = basis.t().dot(&coeff).dot(basis);
        decorrelated.index_axis_mut(Axis(0), c).assign(&plane);
    }
    let mut pre = Array3::<f32>::zeros((3, s, s));
    for (c, row) in COLOUR.iter().enumerate() {
        for (k, w) in row.iter().enumerate() {
            pre.index_axis_mut(Axis(0), c).scaled_add(w / COLOUR_NORM, &decorrelated.index_axis(Axis(0), k));
        }
    }
    (pre.mapv(|z| 1.0 / (1.0 + (-z).exp())), pre)
}

/// The gradient with respect to the spectrum of one with respect to the
/// values before the sigmoid (the transpose of [`render`]'s linear part).
fn spectrum_gradient(d_pre: &Array3<f32>, basis: &Array2<f32>, scale: &Array2<f32>) -> Array3<f32> {
    let s = basis.nrows();
    let mut out = Array3::<f32>::zeros((3, s, s));
    for k in 0..3 {
        let mut d_dec = Array2::<f32>::zeros((s, s));
        for (c, row) in COLOUR.iter().enumerate() {
            d_dec.scaled_add(row[k] / COLOUR_NORM, &d_pre.index_axis(Axis(0), c));
        }
        let d_coeff = basis.dot(&d_dec).dot(&basis.t());
        out.index_axis_mut(Axis(0), k).assign(&(d_coeff * scale));
    }
    out
}

/// The image shifted by (dy, dx), wrapping around.
fn roll(img: &Array3<f32>, dy: isize, dx: isize) -> Array3<f32> {
    let (c, h, w) = img.dim();
    Array3::from_shape_fn((c, h, w), |(k, y, x)| {
        let sy = (y as isize - dy).rem_euclid(h as isize) as usize;
        let sx = (x as isize - dx).rem_euclid(w as isize) as usize;
        img[[k, sy, sx]]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// render's linear part and spectrum_gradient are each other's
    /// transpose: <A x, y> = <x, Aᵀ y> for random x, y.
    #[test]
    fn the_spectrum_gradient_is_the_transpose_of_rendering() {
        let s = 12;
        let (basis, scale) = (dct_basis(s), frequency_scale(s));
        let x = Array3::from_shape_fn((3, s, s), |(c, i, j)| ((c * 31 + i * 7 + j * 3) % 11) as f32 / 11.0 - 0.5);
        let y = Array3::from_shape_fn((3, s, s), |(c, i, j)| ((c * 13 + i * 5 + j * 17) % 7) as f32 / 7.0 - 0.5);
        let (_, ax) = render(&x, &basis, &scale);
        let aty = spectrum_gradient(&y, &basis, &scale);
        let lhs: f64 = ax.iter().zip(y.iter()).map(|(a, b)| (*a * *b) as f64).sum();
        let rhs: f64 = x.iter().zip(aty.iter()).map(|(a, b)| (*a * *b) as f64).sum();
        assert!((lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0), "{lhs} vs {rhs}");
        // The basis is orthonormal.
        let eye = basis.dot(&basis.t());
        for ((i, j), v) in eye.indexed_iter() {
            assert!((v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-5);
        }
    }

    #[test]
    fn a_roll_and_its_opposite_cancel() {
        let img = Array3::from_shape_fn((3, 5, 7), |(c, i, j)| (c * 100 + i * 10 + j) as f32);
        assert_eq!(roll(&roll(&img, 2, -3), -2, 3), img);
        assert_eq!(roll(&img, 1, 0)[[0, 1, 0]], img[[0, 0, 0]]);
    }
}
