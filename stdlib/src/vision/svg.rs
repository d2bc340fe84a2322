//! Drawing code to pixels: SVG rendered with resvg, deterministically (no
//! system fonts are loaded, so `<text>` is not drawn; shapes, paths,
//! gradients and transforms are). An agent writes drawing code instead of
//! calling a diffusion model.

use std::sync::Arc;

use assay_interpreter::{Args, Image, Registry, Signature, ToolCtx, ToolError, Type, Value};

use crate::core::FnTool;

/// Largest side of a rendered image.
const MAX_SIDE: u32 = 4096;

/// Renders SVG text to an RGBA image `width` wide (height from the aspect
/// ratio unless given) over a background colour (None: transparent).
pub fn render(text: &str, width: u32, height: Option<u32>, background: Option<[u8; 4]>) -> Result<Image, String> {
    let opt = resvg::usvg::Options::default();
    let tree = resvg::usvg::Tree::from_str(text, &opt).map_err(|e| format!("not valid SVG: {e}"))?;
    let size = tree.size();
    let w = width.clamp(1, MAX_SIDE);
    let h = height.unwrap_or_else(|| ((size.height() / size.width()) * w as f32).round() as u32).clamp(1, MAX_SIDE);
    let mut pixmap = resvg::tiny_skia::Pixmap::new(w, h).ok_or("cannot allocate the image")?;
    if let Some([r, g, b, a]) = background {
        pixmap.fill(resvg::tiny_skia::Color::from_rgba8(r, g, b, a));
    }
    let transform = resvg::tiny_skia::Transform::from_scale(w as f32 / size.width(), h as f32 / size.height());
    resvg::render(&tree, transform, &mut pixmap.as_mut());
    let mut pixels = Vec::with_capacity((w * h * 4) as usize);
    for p in pixmap.pixels() {
        let c = p.demultiply();
        pixels.extend([c.red(), c.green(), c.blue(), c.alpha()]);
    }
    Ok(Image { width: w, height: h, pixels })
}

/// Any SVG/CSS colour ("red", "#f80", "rgb(0, 128, 255)"), or "none".
pub fn parse_color(s: &str) -> Result<Option<[u8; 4]>, String> {
    if s == "none" || s == "transparent" {
        return Ok(None);
    }
    let c: svgtypes::Color = s.parse().map_err(|_| {
        format!("unknown colour \"{s}\"; use an SVG colour name (red, teal, ...), #rrggbb, rgb(r, g, b) or none")
    })?;
    Ok(Some([c.red, c.green, c.blue, c.alpha]))
}

fn svg_sig() -> Signature {
    Signature::new("svg", "images", "Renders SVG drawing code to an image, deterministically: shapes, paths, gradients and transforms (text is not drawn: no fonts are loaded). Put SVG in a `backtick` string. The height follows the SVG's aspect ratio unless given.")
        .param("code", Type::Str, "SVG text, e.g. `<svg viewBox=\"0 0 10 10\">...</svg>`")
        .opt("width", Type::Num, Value::Num(224.0), "width in pixels")
        .opt("height", Type::Num, Value::None, "height in pixels")
        .opt("background", Type::Str, Value::str("white"), "an SVG colour (white, teal, #rrggbb, ...) or none")
        .returns(Type::Image)
        .example("let img = svg(`<svg viewBox=\"0 0 10 10\"><rect x=\"0\" y=\"0\" width=\"5\" height=\"10\" fill=\"red\"/></svg>`, width: 20)\nassert img.width == 20 and img.height == 20\nlet x = pixels(img, size: 20, resize: 20, mean: 0, std: 1)\nassert x[0][0][10][2] == 255 and x[0][1][10][2] == 0\nassert x[0][1][10][17] == 255")
}
fn svg(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let code = a.str(0)?;
    if code.len() > 1 << 20 {
        return Err(ToolError::arg(0, "SVG code larger than 1 MiB"));
    }
    let w = a.count(1)?;
    let h = a.opt_int(2)?;
    if w == 0 || w > MAX_SIDE as usize || h.is_some_and(|h| h <= 0 || h > MAX_SIDE as i64) {
        return Err(ToolError::arg(1, format!("width and height must be between 1 and {MAX_SIDE}")));
    }
    let bg = parse_color(a.str(3)?).map_err(|e| ToolError::arg(3, e))?;
    render(code, w as u32, h.map(|h| h as u32), bg)
        .map(|i| Value::Image(Arc::new(i)))
        .map_err(|e| ToolError::arg(0, e).help("write a complete <svg ...> element with a viewBox or width and height"))
}

pub(crate) fn register(r: &mut Registry) {
    r.register(FnTool::new(svg_sig, svg));
}
