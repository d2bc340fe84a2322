//! Controlled image edits that change one thing at a time, deterministic
//! (noise is seeded from the run). An edit is a record made by a small tool
//! (`crop(0.5)`, `flip("h")`, ...) and applied by `edit(images, op)`, so a
//! script can build lists of edits and sweep over them.

use std::sync::Arc;

use assay_interpreter::{Args, Image, Registry, Signature, ToolCtx, ToolError, Type, Value};
use image::RgbaImage;
use rand::Rng;

use crate::core::FnTool;

fn op(name: &str, fields: Vec<(&str, Value)>) -> Value {
    let mut all = vec![("op", Value::str(name))];
    all.extend(fields);
    Value::record(all)
}

fn to_rgba(img: &Image) -> Result<RgbaImage, String> {
    RgbaImage::from_raw(img.width, img.height, img.pixels.clone()).ok_or_else(|| "corrupt image buffer".to_string())
}

fn from_rgba(img: RgbaImage) -> Image {
    Image { width: img.width(), height: img.height(), pixels: img.into_raw() }
}

fn fraction(a: &Args, i: usize, lo: f64, hi: f64) -> Result<f64, ToolError> {
    let v = a.num(i)?;
    if !(lo..=hi).contains(&v) {
        let name = a.names.get(i).copied().unwrap_or("value");
        return Err(ToolError::arg(i, format!("`{name}` must be between {lo} and {hi}, found {v}")));
    }
    Ok(v)
}

/// Samples `img` at (x, y) with bilinear interpolation; outside is white.
fn sample(img: &RgbaImage, x: f32, y: f32) -> [u8; 4] {
    let (w, h) = (img.width() as f32, img.height() as f32);
    if x < -0.5 || y < -0.5 || x > w - 0.5 || y > h - 0.5 {
        return [255, 255, 255, 255];
    }
    let x = x.clamp(0.0, w - 1.0);
    let y = y.clamp(0.0, h - 1.0);
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = ((x0 + 1).min(img.width() - 1), (y0 + 1).min(img.height() - 1));
    let (tx, ty) = (x - x0 as f32, y - y0 as f32);
    let mut out = [0u8; 4];
    for (c, o) in out.iter_mut().enumerate() {
        let p = |xx, yy| img.get_pixel(xx, yy).0[c] as f32;
        let v = p(x0, y0) * (1.0 - tx) * (1.0 - ty)
            + p(x1, y0) * tx * (1.0 - ty)
            + p(x0, y1) * (1.0 - tx) * ty
            + p(x1, y1) * tx * ty;
        *o = v.round().clamp(0.0, 255.0) as u8;
    }
    out
}

/// Applies one edit record to an image.
fn apply(img: &Image, op: &Value, ctx: &mut dyn ToolCtx) -> Result<Image, String> {
    let Value::Record(r) = op else {
        return Err(format!("an edit is a record from crop(), flip(), ...; found a {}", op.type_name()));
    };
    let num = |k: &str| match r.get(k) {
        Some(Value::Num(n)) => Ok(*n),
        _ => Err(format!("the edit has no number `{k}`")),
    };
    let name = match r.get("op") {
        Some(Value::Str(s)) => s.to_string(),
        _ => return Err("the edit has no `op`".into()),
    };
    let src = to_rgba(img)?;
    let (w, h) = (src.width(), src.height());
    Ok(match name.as_str() {
        "crop" => {
            let s = num("scale")?;
            let (cw, ch) = (((w as f64) * s).round().max(1.0) as u32, ((h as f64) * s).round().max(1.0) as u32);
            from_rgba(image::imageops::crop_imm(&src, (w - cw) / 2, (h - ch) / 2, cw, ch).to_image())
        }
        "resize" => {
            let (nw, nh) = (num("width")? as u32, num("height")? as u32);
            from_rgba(image::imageops::resize(&src, nw.max(1), nh.max(1), image::imageops::FilterType::Triangle))
        }
        "flip" => match r.get("axis").map(|v| v.to_text()).as_deref() {
            Some("v") => from_rgba(image::imageops::flip_vertical(&src)),
            _ => from_rgba(image::imageops::flip_horizontal(&src)),
        },
        "rotate" => {
            let (s, c) = (num("degrees")?.to_radians() as f32).sin_cos();
            let (cx, cy) = (w as f32 / 2.0 - 0.5, h as f32 / 2.0 - 0.5);
            from_rgba(RgbaImage::from_fn(w, h, |x, y| {
                let (dx, dy) = (x as f32 - cx, y as f32 - cy);
                // Inverse rotation: where in the source does this pixel come from?
                image::Rgba(sample(&src, c * dx + s * dy + cx, -s * dx + c * dy + cy))
            }))
        }
        "translate" => {
            let (dx, dy) = (num("dx")? as f32 * w as f32, num("dy")? as f32 * h as f32);
            from_rgba(RgbaImage::from_fn(w, h, |x, y| image::Rgba(sample(&src, x as f32 - dx, y as f32 - dy))))
        }
        "occlude" => {
            let (x0, y0) = ((num("x")? * w as f64) as u32, (num("y")? * h as f64) as u32);
            let (x1, y1) = (
                ((num("x")? + num("width")?) * w as f64).min(w as f64) as u32,
                ((num("y")? + num("height")?) * h as f64).min(h as f64) as u32,
            );
            let mut out = src;
            for y in y0..y1 {
                for x in x0..x1 {
                    out.put_pixel(x, y, image::Rgba([128, 128, 128, 255]));
                }
            }
            from_rgba(out)
        }
        "greyscale" => {
            let mut out = src;
            for p in out.pixels_mut() {
                let l = (0.299 * p.0[0] as f32 + 0.587 * p.0[1] as f32 + 0.114 * p.0[2] as f32).round() as u8;
                p.0 = [l, l, l, p.0[3]];
            }
            from_rgba(out)
        }
        "blur" => from_rgba(image::imageops::blur(&src, num("sigma")? as f32)),
        "contrast" => from_rgba(image::imageops::contrast(&src, num("percent")? as f32)),
        "hue" => from_rgba(image::imageops::huerotate(&src, num("degrees")? as i32)),
        "noise" => {
            let amount = num("amount")? as f32;
            let rng = ctx.rng();
            let mut out = src;
            for p in out.pixels_mut() {
                for c in 0..3 {
                    let n: f32 = rng.random_range(-1.0f32..1.0) * amount * 255.0;
                    p.0[c] = (p.0[c] as f32 + n).round().clamp(0.0, 255.0) as u8;
                }
            }
            from_rgba(out)
        }
        other => return Err(format!("unknown edit `{other}`")),
    })
}

fn edit_sig() -> Signature {
    Signature::new("edit", "images", "Applies an edit (or a list of edits, in order) to an image or to each of a list of images: crop(scale), resize(w, h), flip(axis), rotate(degrees), translate(dx, dy), occlude(x, y, w, h), greyscale(), blur(sigma), contrast(percent), hue(degrees), noise(amount). Deterministic; noise draws from the run's seed.")
        .param("images", Type::OneOf(vec![Type::Image, Type::list(Type::Image)]), "an image or a list of images")
        .param("op", Type::OneOf(vec![Type::record(), Type::list(Type::record())]), "an edit, or a list of edits")
        .returns(Type::OneOf(vec![Type::Image, Type::list(Type::Image)]))
        .example("let img = image(\"fixtures/red.png\")\nassert edit(img, crop(0.5)).width == 2\nlet g = edit(img, [greyscale(), flip(\"h\")])\nassert pixels(g, size: 2, resize: 2, mean: 0, std: 1)[0][1][0][0] == 76")
}
fn edit(a: &Args, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let ops: Vec<Value> = match a.get(1) {
        Value::List(items) => items.as_ref().clone(),
        other => vec![other.clone()],
    };
    let mut run = |img: &Arc<Image>| -> Result<Value, ToolError> {
        let mut cur = img.as_ref().clone();
        for o in &ops {
            cur = apply(&cur, o, ctx).map_err(|e| ToolError::arg(1, e))?;
        }
        Ok(Value::Image(Arc::new(cur)))
    };
    match a.get(0) {
        Value::Image(i) => run(i),
        Value::List(items) => {
            let mut out = Vec::new();
            for v in items.iter() {
                match v {
                    Value::Image(i) => out.push(run(i)?),
                    other => return Err(ToolError::arg(0, format!("expected images, found a {}", other.type_name()))),
                }
            }
            Ok(Value::list(out))
        }
        other => {
            Err(ToolError::arg(0, format!("expected an image or a list of images, found a {}", other.type_name())))
        }
    }
}

macro_rules! edit_op {
    ($sig:ident, $fun:ident, $name:literal, $doc:literal, [$(($p:literal, $lo:expr, $hi:expr, $pdoc:literal)),*], $ex:literal) => {
        fn $sig() -> Signature {
            Signature::new($name, "images", $doc)
                $(.param($p, Type::Num, $pdoc))*
                .returns(Type::record())
                .example($ex)
        }
        #[allow(unused_mut, unused_variables, unused_assignments, reason = "edits without parameters")]
        fn $fun(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
            let mut fields = Vec::new();
            let mut i = 0;
            $(
                fields.push(($p, Value::Num(fraction(a, i, $lo, $hi)?)));
                i += 1;
            )*
            Ok(op($name, fields))
        }
    };
}

edit_op!(
    crop_sig,
    crop,
    "crop",
    "An edit: keep the centre `scale` of each side.",
    [("scale", 0.01, 1.0, "fraction of width and height kept")],
    "assert crop(0.5).scale == 0.5"
);
edit_op!(
    resize_sig,
    resize,
    "resize",
    "An edit: resize to width x height pixels.",
    [("width", 1.0, 4096.0, "pixels"), ("height", 1.0, 4096.0, "pixels")],
    "assert resize(32, 16).width == 32"
);
edit_op!(
    rotate_sig,
    rotate,
    "rotate",
    "An edit: rotate by `degrees` (counter-clockwise) about the centre, on white.",
    [("degrees", -360.0, 360.0, "angle")],
    "assert rotate(90).degrees == 90"
);
edit_op!(
    translate_sig,
    translate,
    "translate",
    "An edit: shift by dx, dy (fractions of width and height), filling with white.",
    [("dx", -1.0, 1.0, "fraction of width"), ("dy", -1.0, 1.0, "fraction of height")],
    "assert translate(0.25, 0).dx == 0.25"
);
edit_op!(
    occlude_sig,
    occlude,
    "occlude",
    "An edit: cover a rectangle (fractions of the image: x, y, width, height) with grey.",
    [("x", 0.0, 1.0, "left"), ("y", 0.0, 1.0, "top"), ("width", 0.0, 1.0, "width"), ("height", 0.0, 1.0, "height")],
    "assert occlude(0, 0, 0.5, 0.5).op == \"occlude\""
);
edit_op!(
    greyscale_sig,
    greyscale,
    "greyscale",
    "An edit: remove colour (luma 0.299 R + 0.587 G + 0.114 B).",
    [],
    "assert greyscale().op == \"greyscale\""
);
edit_op!(
    blur_sig,
    blur,
    "blur",
    "An edit: Gaussian blur with standard deviation `sigma` pixels.",
    [("sigma", 0.0, 100.0, "pixels")],
    "assert blur(2).sigma == 2"
);
edit_op!(
    contrast_sig,
    contrast,
    "contrast",
    "An edit: change contrast by `percent` (negative lowers it).",
    [("percent", -100.0, 1000.0, "change in percent")],
    "assert contrast(-50).percent == -50"
);
edit_op!(
    hue_sig,
    hue,
    "hue",
    "An edit: rotate hues by `degrees` (recolour: red to green is about 120).",
    [("degrees", -360.0, 360.0, "hue rotation")],
    "assert hue(120).degrees == 120"
);
edit_op!(
    noise_sig,
    noise,
    "noise",
    "An edit: add uniform noise of up to `amount` (a fraction of 255) to each channel, drawn from the run's seed.",
    [("amount", 0.0, 1.0, "strength")],
    "assert noise(0.1).amount == 0.1"
);

fn flip_sig() -> Signature {
    Signature::new("flip", "images", "An edit: mirror horizontally (\"h\") or vertically (\"v\").")
        .opt("axis", Type::Str, Value::str("h"), "\"h\" or \"v\"")
        .returns(Type::record())
        .example("assert flip(\"v\").axis == \"v\"")
}
fn flip(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let axis = a.str(0)?;
    if axis != "h" && axis != "v" {
        return Err(ToolError::arg(0, format!("axis is \"h\" or \"v\", found \"{axis}\"")));
    }
    Ok(op("flip", vec![("axis", Value::str(axis))]))
}

pub(crate) fn register(r: &mut Registry) {
    for (sig, f) in [
        (edit_sig as fn() -> Signature, edit as crate::core::ToolFn),
        (crop_sig, crop),
        (resize_sig, resize),
        (rotate_sig, rotate),
        (translate_sig, translate),
        (occlude_sig, occlude),
        (greyscale_sig, greyscale),
        (blur_sig, blur),
        (contrast_sig, contrast),
        (hue_sig, hue),
        (noise_sig, noise),
        (flip_sig, flip),
    ] {
        r.register(FnTool::new(sig, f));
    }
}
