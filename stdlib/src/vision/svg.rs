//! Drawing code to pixels: SVG rendered with resvg, deterministically (no
//! system fonts are loaded, so `<text>` is not drawn; shapes, paths,
//! gradients and transforms are). An agent writes drawing code instead of
//! calling a diffusion model.

use std::sync::Arc;

use assay_interpreter::{Image, Type, Value};

use crate::core::declare::{tool, ToolCtx, ToolResult};

/// Largest side of a rendered image.
const MAX_SIDE: u32 = 4096;
/// Bounds on filter work: each is far beyond what a drawn stimulus needs,
/// and far below what makes one render take minutes.
const MAX_OCTAVES: u32 = 16;
const MAX_FILTER_RADIUS: f32 = 512.0;
const MAX_FILTER_PRIMITIVES: usize = 256;
const MAX_NESTED_SVG: usize = 4;

/// Refuses filters whose cost grows without bound with one attribute
/// (`feTurbulence numOctaves="1000000000"` is 230 bytes and hours of work).
fn check_tree(tree: &resvg::usvg::Tree, depth: usize) -> Result<(), String> {
    use resvg::usvg::filter::Kind;
    if depth > MAX_NESTED_SVG {
        return Err(format!("SVG images nested more than {MAX_NESTED_SVG} deep"));
    }
    let mut primitives = 0;
    for f in tree.filters() {
        for p in f.primitives() {
            primitives += 1;
            match p.kind() {
                Kind::Turbulence(t) if t.num_octaves() > MAX_OCTAVES => {
                    return Err(format!("feTurbulence numOctaves=\"{}\" is more than {MAX_OCTAVES}", t.num_octaves()))
                }
                Kind::Morphology(m) if m.radius_x().get().max(m.radius_y().get()) > MAX_FILTER_RADIUS => {
                    return Err(format!("feMorphology radius is more than {MAX_FILTER_RADIUS}"))
                }
                Kind::GaussianBlur(b) if b.std_dev_x().get().max(b.std_dev_y().get()) > MAX_FILTER_RADIUS => {
                    return Err(format!("feGaussianBlur stdDeviation is more than {MAX_FILTER_RADIUS}"))
                }
                Kind::DropShadow(b) if b.std_dev_x().get().max(b.std_dev_y().get()) > MAX_FILTER_RADIUS => {
                    return Err(format!("feDropShadow stdDeviation is more than {MAX_FILTER_RADIUS}"))
                }
                _ => {}
            }
        }
    }
    if primitives > MAX_FILTER_PRIMITIVES {
        return Err(format!("more than {MAX_FILTER_PRIMITIVES} filter primitives"));
    }
    check_images(tree.root(), depth)
}

fn check_images(g: &resvg::usvg::Group, depth: usize) -> Result<(), String> {
    use resvg::usvg::{ImageKind, Node};
    for n in g.children() {
        match n {
            Node::Group(g) => check_images(g, depth)?,
            Node::Image(img) => {
                if let ImageKind::SVG(sub) = img.kind() {
                    check_tree(sub, depth + 1)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Renders SVG text to an RGBA image `width` wide (height from the aspect
/// ratio unless given) over a background colour (None: transparent).
pub fn render(text: &str, width: u32, height: Option<u32>, background: Option<[u8; 4]>) -> Result<Image, String> {
    render_with(text, width, height, background, None)
}

/// As [`render`], with text drawn in `fonts` (see [`crate::vision::font`]); with
/// none, text is not drawn.
pub fn render_with(
    text: &str,
    width: u32,
    height: Option<u32>,
    background: Option<[u8; 4]>,
    fonts: Option<std::sync::Arc<resvg::usvg::fontdb::Database>>,
) -> Result<Image, String> {
    // `<image href="file">` would make the renderer read any file by itself:
    // such references are collected and refused. Pictures embedded as
    // `data:` URLs are decoded (and nested SVG is parsed with these options).
    let refused = std::sync::Mutex::new(Vec::<String>::new());
    let opt = resvg::usvg::Options {
        image_href_resolver: resvg::usvg::ImageHrefResolver {
            resolve_data: resvg::usvg::ImageHrefResolver::default_data_resolver(),
            resolve_string: Box::new(|href: &str, _: &resvg::usvg::Options| {
                if let Ok(mut r) = refused.lock() {
                    r.push(href.chars().take(120).collect());
                }
                None
            }),
        },
        ..resvg::usvg::Options::default()
    };
    let opt = match fonts {
        Some(db) => resvg::usvg::Options { fontdb: db, font_family: crate::vision::font::FAMILY.into(), ..opt },
        None => opt,
    };
    let tree = resvg::usvg::Tree::from_str(text, &opt).map_err(|e| format!("not valid SVG: {e}"))?;
    if let Some(href) = refused.lock().ok().and_then(|r| r.first().cloned()) {
        return Err(format!(
            "the SVG's <image> refers to `{href}`; drawings may not read files (embed a picture as a data: URL, or load it with image() and compose with scene())"
        ));
    }
    check_tree(&tree, 0)?;
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
    Ok(Image::new(w, h, pixels))
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

tool! {
    /// Renders SVG drawing code to an image, deterministically: shapes, paths, gradients and transforms
    /// (text is not drawn: no fonts are loaded). Put SVG in a `backtick` string. The height follows the
    /// SVG's aspect ratio unless given.
    ///
    /// ```assay
    /// let img = svg(`<svg viewBox="0 0 10 10"><rect x="0" y="0" width="5" height="10" fill="red"/></svg>`, width: 20)
    /// assert img.width == 20 and img.height == 20
    /// let x = pixels(img, size: 20, resize: 20, mean: 0, std: 1)
    /// assert x[0][0][10][2] == 255 and x[0][1][10][2] == 0
    /// assert x[0][1][10][17] == 255
    /// ```
    svg in Images -> Type::Image;
    {
        /// SVG text, e.g. `<svg viewBox="0 0 10 10">...</svg>`
        code: String,
        /// width in pixels
        width: usize = 224,
        /// height in pixels
        height: Option<i64> = None,
        /// an SVG colour (white, teal, #rrggbb, ...) or none
        background: String = "white",
    }
    svg
}

fn svg(p: svg::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let code = p.code.as_str();
    if code.len() > 1 << 20 {
        return Err(p.code.error("SVG code larger than 1 MiB"));
    }
    let w = *p.width;
    let h = *p.height;
    if w == 0 || w > MAX_SIDE as usize || h.is_some_and(|h| h <= 0 || h > MAX_SIDE as i64) {
        return Err(p.width.error(format!("width and height must be between 1 and {MAX_SIDE}")));
    }
    let bg = parse_color(p.background.as_str()).map_err(|e| p.background.error(e))?;
    render(code, w as u32, h.map(|h| h as u32), bg)
        .map(|i| Value::Image(Arc::new(i)))
        .map_err(|e| p.code.error(e).help("write a complete <svg ...> element with a viewBox or width and height"))
}
