//! Controlled image edits that change one thing at a time, deterministic
//! (noise is seeded from the run). An edit is a record made by a small tool
//! (`crop(0.5)`, `flip("h")`, ...) and applied by `edit(images, op)`, so a
//! script can build lists of edits and sweep over them.

use std::sync::Arc;

use assay_interpreter::{Bound, Image, Name, ToolCtx, ToolError, Type, Value};
use image::RgbaImage;
use rand::Rng;

use crate::core::declare::{tool, ToolResult};
use crate::core::kinds::Images;

fn op(name: &str, fields: Vec<(&str, Value)>) -> Value {
    let mut all = vec![("op", Value::str(name))];
    all.extend(fields);
    Value::record(all)
}

fn to_rgba(img: &Image) -> Result<RgbaImage, String> {
    RgbaImage::from_raw(img.width, img.height, img.pixels.clone()).ok_or_else(|| "corrupt image buffer".to_string())
}

fn from_rgba(img: RgbaImage) -> Image {
    Image::new(img.width(), img.height(), img.into_raw())
}

fn fraction(x: &Bound<f64>, lo: f64, hi: f64) -> Result<f64, ToolError> {
    within(x, lo, hi)?;
    Ok(**x)
}

/// A bound number, as a value, if it lies in [lo, hi].
fn within(x: &Bound<f64>, lo: f64, hi: f64) -> Result<Value, ToolError> {
    within_named(**x, x.name(), lo, hi)
}

/// `v`, the argument of parameter `name`, as a number if it lies in [lo, hi].
fn within_named(v: f64, name: Name, lo: f64, hi: f64) -> Result<Value, ToolError> {
    if !(lo..=hi).contains(&v) {
        return Err(ToolError::arg(name, format!("`{name}` must be between {lo} and {hi}, found {v}")));
    }
    Ok(Value::Num(v))
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

/// Alpha-composites `pic` onto `dst`, scaled to `width` (a fraction of
/// dst's width, aspect kept) and centred at (cx, cy) (fractions).
pub fn paste_onto(dst: &mut RgbaImage, pic: &RgbaImage, cx: f64, cy: f64, width: f64) {
    let (w, h) = (dst.width() as f64, dst.height() as f64);
    let pw = (width * w).round().max(1.0);
    let ph = (pw * pic.height() as f64 / pic.width().max(1) as f64).round().max(1.0);
    let scaled = image::imageops::resize(pic, pw as u32, ph as u32, image::imageops::FilterType::Triangle);
    let (x0, y0) = ((cx * w - pw / 2.0).round() as i64, (cy * h - ph / 2.0).round() as i64);
    image::imageops::overlay(dst, &scaled, x0, y0);
}

/// Gives every pixel the hue and saturation of `colour`, keeping its
/// lightness and alpha: white stays white, black stays black.
pub fn recolour_pixels(img: &mut RgbaImage, colour: [u8; 4]) {
    let (th, ts, _) = to_hsl([colour[0], colour[1], colour[2]]);
    for p in img.pixels_mut() {
        let (_, _, l) = to_hsl([p.0[0], p.0[1], p.0[2]]);
        let [r, g, b] = from_hsl(th, ts, l);
        p.0 = [r, g, b, p.0[3]];
    }
}

fn to_hsl(c: [u8; 3]) -> (f32, f32, f32) {
    let [r, g, b] = c.map(|v| v as f32 / 255.0);
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    let l = (max + min) / 2.0;
    let d = max - min;
    if d == 0.0 {
        return (0.0, 0.0, l);
    }
    let s = if l > 0.5 { d / (2.0 - max - min) } else { d / (max + min) };
    let h = if max == r {
        ((g - b) / d).rem_euclid(6.0)
    } else if max == g {
        (b - r) / d + 2.0
    } else {
        (r - g) / d + 4.0
    };
    (h * 60.0, s, l)
}

fn from_hsl(h: f32, s: f32, l: f32) -> [u8; 3] {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let x = c * (1.0 - ((h / 60.0).rem_euclid(2.0) - 1.0).abs());
    let m = l - c / 2.0;
    let (r, g, b) = match (h / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    [r, g, b].map(|v| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8)
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
        "paste" => {
            let Some(Value::Image(pic)) = r.get("picture") else { return Err("the edit has no `picture`".into()) };
            let mut out = src;
            paste_onto(&mut out, &to_rgba(pic)?, num("x")?, num("y")?, num("scale")?);
            from_rgba(out)
        }
        "recolour" => {
            let colour = r.get("colour").map(|v| v.to_text()).unwrap_or_default();
            let c = crate::vision::svg::parse_color(&colour)?.ok_or("recolour needs a colour, not none")?;
            let mut out = src;
            recolour_pixels(&mut out, c);
            from_rgba(out)
        }
        other => return Err(format!("unknown edit `{other}`")),
    })
}

tool! {
    /// Applies an edit (or a list of edits, in order) to an image or to each of a list of images:
    /// crop(scale), resize(w, h), flip(axis), rotate(degrees), translate(dx, dy), occlude(x, y, w, h),
    /// paste(picture, x, y, scale), recolour(colour), greyscale(), blur(sigma), contrast(percent),
    /// hue(degrees), noise(amount). Deterministic; noise draws from the run's seed.
    ///
    /// ```assay
    /// let img = image("fixtures/red.png")
    /// assert edit(img, crop(0.5)).width == 2
    /// let g = edit(img, [greyscale(), flip("h")])
    /// assert pixels(g, size: 2, resize: 2, mean: 0, std: 1)[0][1][0][0] == 76
    /// ```
    edit in Images -> Type::OneOf(vec![Type::Image, Type::list(Type::Image)]);
    {
        /// an image or a list of images
        images: Images,
        /// an edit, or a list of edits
        op: Value [Type::OneOf(vec![Type::record(), Type::list(Type::record())])],
    }
    edit
}

fn edit(p: edit::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let ops: Vec<Value> = match &*p.op {
        Value::List(items) => items.as_ref().clone(),
        other => vec![other.clone()],
    };
    let mut run = |img: &Arc<Image>| -> Result<Value, ToolError> {
        let mut cur = img.as_ref().clone();
        for o in &ops {
            cur = apply(&cur, o, ctx).map_err(|e| p.op.error(e))?;
        }
        Ok(Value::Image(Arc::new(cur)))
    };
    let Images { images, one } = &*p.images;
    if *one {
        return run(&images[0]);
    }
    Ok(Value::list(images.iter().map(run).collect::<Result<_, _>>()?))
}

tool! {
    /// An edit: keep the centre `scale` of each side.
    ///
    /// ```assay
    /// assert crop(0.5).scale == 0.5
    /// ```
    crop in Images -> Type::record();
    {
        /// fraction of width and height kept
        scale: f64,
    }
    crop
}

fn crop(p: crop::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(op("crop", vec![("scale", within(&p.scale, 0.01, 1.0)?)]))
}
tool! {
    /// An edit: resize to width x height pixels.
    ///
    /// ```assay
    /// assert resize(32, 16).width == 32
    /// ```
    resize in Images -> Type::record();
    {
        /// pixels
        width: f64,
        /// pixels
        height: f64,
    }
    resize
}

fn resize(p: resize::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(op("resize", vec![("width", within(&p.width, 1.0, 4096.0)?), ("height", within(&p.height, 1.0, 4096.0)?)]))
}
tool! {
    /// An edit: rotate by `degrees` (counter-clockwise) about the centre, on white.
    ///
    /// ```assay
    /// assert rotate(90).degrees == 90
    /// ```
    rotate in Images -> Type::record();
    {
        /// angle
        degrees: f64,
    }
    rotate
}

fn rotate(p: rotate::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(op("rotate", vec![("degrees", within(&p.degrees, -360.0, 360.0)?)]))
}
tool! {
    /// An edit: shift by dx, dy (fractions of width and height), filling with white.
    ///
    /// ```assay
    /// assert translate(0.25, 0).dx == 0.25
    /// ```
    translate in Images -> Type::record();
    {
        /// fraction of width
        dx: f64,
        /// fraction of height
        dy: f64,
    }
    translate
}

fn translate(p: translate::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(op("translate", vec![("dx", within(&p.dx, -1.0, 1.0)?), ("dy", within(&p.dy, -1.0, 1.0)?)]))
}
tool! {
    /// An edit: cover a rectangle (fractions of the image: x, y, width, height) with grey.
    ///
    /// ```assay
    /// assert occlude(0, 0, 0.5, 0.5).op == "occlude"
    /// ```
    occlude in Images -> Type::record();
    {
        /// left
        x: f64,
        /// top
        y: f64,
        /// width
        width: f64,
        /// height
        height: f64,
    }
    occlude
}

fn occlude(p: occlude::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(op(
        "occlude",
        vec![
            ("x", within(&p.x, 0.0, 1.0)?),
            ("y", within(&p.y, 0.0, 1.0)?),
            ("width", within(&p.width, 0.0, 1.0)?),
            ("height", within(&p.height, 0.0, 1.0)?),
        ],
    ))
}
tool! {
    /// An edit: remove colour (luma 0.299 R + 0.587 G + 0.114 B).
    ///
    /// ```assay
    /// assert greyscale().op == "greyscale"
    /// ```
    greyscale in Images -> Type::record();
    {
    }
    greyscale
}

fn greyscale(_: greyscale::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(op("greyscale", vec![]))
}
tool! {
    /// An edit: Gaussian blur with standard deviation `sigma` pixels.
    ///
    /// ```assay
    /// assert blur(2).sigma == 2
    /// ```
    blur in Images -> Type::record();
    {
        /// pixels
        sigma: f64,
    }
    blur
}

fn blur(p: blur::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(op("blur", vec![("sigma", within(&p.sigma, 0.0, 100.0)?)]))
}
tool! {
    /// An edit: change contrast by `percent` (negative lowers it).
    ///
    /// ```assay
    /// assert contrast(-50).percent == -50
    /// ```
    contrast in Images -> Type::record();
    {
        /// change in percent
        percent: f64,
    }
    contrast
}

fn contrast(p: contrast::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(op("contrast", vec![("percent", within(&p.percent, -100.0, 1000.0)?)]))
}
tool! {
    /// An edit: rotate hues by `degrees` (recolour: red to green is about 120).
    ///
    /// ```assay
    /// assert hue(120).degrees == 120
    /// ```
    hue in Images -> Type::record();
    {
        /// hue rotation
        degrees: f64,
    }
    hue
}

fn hue(p: hue::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(op("hue", vec![("degrees", within(&p.degrees, -360.0, 360.0)?)]))
}
tool! {
    /// An edit: add uniform noise of up to `amount` (a fraction of 255) to each channel, drawn from the run's seed.
    ///
    /// ```assay
    /// assert noise(0.1).amount == 0.1
    /// ```
    noise in Images -> Type::record();
    {
        /// strength
        amount: f64,
    }
    noise
}

fn noise(p: noise::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(op("noise", vec![("amount", within(&p.amount, 0.0, 1.0)?)]))
}

tool! {
    /// An edit: mirror horizontally ("h") or vertically ("v").
    ///
    /// ```assay
    /// assert flip("v").axis == "v"
    /// ```
    flip in Images -> Type::record();
    {
        /// "h" or "v"
        axis: String = "h",
    }
    flip
}

fn flip(p: flip::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let axis = p.axis.as_str();
    if axis != "h" && axis != "v" {
        return Err(p.axis.error(format!("axis is \"h\" or \"v\", found \"{axis}\"")));
    }
    Ok(op("flip", vec![("axis", Value::str(axis))]))
}

tool! {
    /// An edit: paste a picture (its transparency kept) centred at x, y (fractions of the image),
    /// `scale` times the image's width wide.
    ///
    /// ```assay
    /// let dot = svg(`<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="#0000ff"/></svg>`)
    /// let canvas = svg(`<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"/>`, background: "white")
    /// let p = edit(canvas, paste(dot, x: 0.25, y: 0.25, scale: 0.5))
    /// assert pixels(p, size: 20, resize: 20, mean: 0, std: 1)[0][2][5][5] == 255
    /// assert pixels(p, size: 20, resize: 20, mean: 0, std: 1)[0][0][15][15] == 255
    /// ```
    paste in Images -> Type::record();
    {
        /// the picture, e.g. item(emoji(), i, background: "none").image
        picture: Value [Type::Image],
        /// centre, fraction of width
        x: f64 = 0.5,
        /// centre, fraction of height
        y: f64 = 0.5,
        /// the picture's width as a fraction of the image's
        scale: f64 = 0.3,
    }
    paste
}

fn paste(p: paste::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let Value::Image(pic) = &*p.picture else { return Err(p.picture.error("expected an image")) };
    Ok(op(
        "paste",
        vec![
            ("picture", Value::Image(pic.clone())),
            ("x", Value::Num(fraction(&p.x, -1.0, 2.0)?)),
            ("y", Value::Num(fraction(&p.y, -1.0, 2.0)?)),
            ("scale", Value::Num(fraction(&p.scale, 0.001, 10.0)?)),
        ],
    ))
}

tool! {
    /// An edit: give every pixel the hue and saturation of `colour` (any SVG colour), keeping its
    /// lightness: a yellow banana becomes a red one; white and black stay.
    ///
    /// ```assay
    /// let img = image("fixtures/red.png")
    /// let g = edit(img, recolour("lime"))
    /// let x = pixels(g, size: 4, resize: 4, mean: 0, std: 1)
    /// assert x[0][1][0][0] > 200 and x[0][0][0][0] < 10
    /// ```
    recolour in Images -> Type::record();
    {
        /// e.g. "red", "#2060ff"
        colour: String,
    }
    recolour
}

fn recolour(p: recolour::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let c = p.colour.as_str();
    if crate::vision::svg::parse_color(c).map_err(|e| p.colour.error(e))?.is_none() {
        return Err(p.colour.error("recolour needs a colour, not none"));
    }
    Ok(op("recolour", vec![("colour", Value::str(c))]))
}

tool! {
    /// Composes a picture from parts, in order (later parts on top): each part is a record {image, x,
    /// y, scale} placing an image (an svg() drawing, an emoji with background "none", a photo) centred
    /// at x, y (fractions) at `scale` times the scene's width, optionally with `colour` (recolour) or
    /// `hue` (degrees) and `rotate` (degrees). Drawing a stimulus instead of generating one: every
    /// pixel is determined by the script.
    ///
    /// ```assay
    /// let sq = svg(`<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8" fill="black"/></svg>`)
    /// let s = scene([{image: sq, x: 0.75, y: 0.5, scale: 0.5, colour: "red"}], width: 16, height: 16, background: "navy")
    /// let x = pixels(s, size: 16, resize: 16, mean: 0, std: 1)
    /// assert x[0][2][8][2] == 128 and x[0][0][8][12] == 0
    /// ```
    scene in Images -> Type::Image;
    {
        /// the parts
        parts: Vec<Value> [Type::list(Type::record())],
        /// pixels
        width: usize = 224,
        /// pixels
        height: usize = 224,
        /// an SVG colour, or "none"
        background: String = "white",
    }
    scene
}

fn scene(p: scene::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let (w, h) = (*p.width, *p.height);
    if !(1..=4096).contains(&w) || !(1..=4096).contains(&h) {
        return Err(ToolError::new(format!("a scene is 1 to 4096 pixels on a side, not {w}x{h}")));
    }
    let bg = crate::vision::svg::parse_color(p.background.as_str())
        .map_err(|e| p.background.error(e))?
        .unwrap_or([0, 0, 0, 0]);
    let mut canvas = RgbaImage::from_pixel(w as u32, h as u32, image::Rgba(bg));
    for (i, part) in p.parts.clone().iter().enumerate() {
        let Value::Record(r) = part else {
            return Err(p
                .parts
                .error(format!("part {i} is a {}, not a record {{image, x, y, scale}}", part.type_name())));
        };
        let bad = |what: String| {
            p.parts
                .error(format!("part {i}: {what}"))
                .help("a part is {image, x, y, scale} with optional colour, hue, rotate")
        };
        for k in r.keys() {
            if !["image", "x", "y", "scale", "colour", "hue", "rotate"].contains(&k.as_str()) {
                return Err(bad(format!("unknown field `{k}`")));
            }
        }
        let Some(Value::Image(img)) = r.get("image") else { return Err(bad("no `image`".into())) };
        let num = |k: &str, d: f64| match r.get(k) {
            None => Ok(d),
            Some(Value::Num(n)) if n.is_finite() => Ok(*n),
            Some(v) => Err(bad(format!("`{k}` must be a number, found a {}", v.type_name()))),
        };
        let mut pic = img.as_ref().clone();
        if let Some(c) = r.get("colour") {
            pic = apply(&pic, &op("recolour", vec![("colour", c.clone())]), ctx).map_err(bad)?;
        }
        if r.contains_key("hue") {
            pic = apply(&pic, &op("hue", vec![("degrees", Value::Num(num("hue", 0.0)?))]), ctx).map_err(bad)?;
        }
        let mut pic = to_rgba(&pic).map_err(bad)?;
        if r.contains_key("rotate") {
            // Rotate on a transparent square canvas large enough to hold it.
            let side = ((pic.width().pow(2) + pic.height().pow(2)) as f64).sqrt().ceil() as u32;
            let mut sq = RgbaImage::new(side, side);
            image::imageops::overlay(
                &mut sq,
                &pic,
                ((side - pic.width()) / 2) as i64,
                ((side - pic.height()) / 2) as i64,
            );
            let (s, c) = (num("rotate", 0.0)?.to_radians() as f32).sin_cos();
            let cc = side as f32 / 2.0 - 0.5;
            pic = RgbaImage::from_fn(side, side, |x, y| {
                let (dx, dy) = (x as f32 - cc, y as f32 - cc);
                let (sx, sy) = (c * dx + s * dy + cc, -s * dx + c * dy + cc);
                if sx < 0.0 || sy < 0.0 || sx > side as f32 - 1.0 || sy > side as f32 - 1.0 {
                    image::Rgba([0, 0, 0, 0])
                } else {
                    *sq.get_pixel(sx.round() as u32, sy.round() as u32)
                }
            });
        }
        let scale = num("scale", 0.3)?;
        if scale <= 0.0 || scale > 10.0 {
            return Err(bad(format!("`scale` must be above 0 and at most 10, found {scale}")));
        }
        paste_onto(&mut canvas, &pic, num("x", 0.5)?, num("y", 0.5)?, scale);
    }
    Ok(Value::Image(Arc::new(from_rgba(canvas))))
}
