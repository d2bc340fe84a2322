//! Plots as images for the report: bar, line, heatmap and histogram, drawn
//! as SVG and rendered with resvg. Titles, axis labels and tick text are
//! drawn in the one pinned font (see [`crate::vision::font`]), so a plot is the same
//! pixels on every machine; a plot without text is drawn as before fonts.

use std::fmt::Write as _;
use std::sync::Arc;

use assay_interpreter::{to_numbers, to_tensor, Arg, Bound, ToolError, Type, Value};

use crate::core::declare::{tool, ToolCtx, ToolResult};

const W: f64 = 480.0;
const H: f64 = 300.0;
const PAD: f64 = 24.0;
/// Tick text size, in pixels.
const TICK: f64 = 9.0;
/// Advance of one character of tick text, roughly (DejaVu Sans at 9 px).
const CHAR: f64 = 5.4;
const MAX_TICK_CHARS: usize = 14;

/// Where the data is drawn.
#[derive(Clone, Copy)]
struct Area {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

/// The plain plot's area: no text, the same pixels as before text existed.
const PLAIN: Area = Area { x0: PAD, y0: PAD, x1: W - PAD, y1: H - PAD };

/// A plot's text: title, axis labels and tick text.
#[derive(Default)]
struct Labels {
    title: Option<String>,
    x: Option<String>,
    y: Option<String>,
    x_ticks: Vec<String>,
    y_ticks: Vec<String>,
}

impl Labels {
    fn any(&self) -> bool {
        self.title.is_some()
            || self.x.is_some()
            || self.y.is_some()
            || !self.x_ticks.is_empty()
            || !self.y_ticks.is_empty()
    }
}

fn esc(s: &str) -> String {
    let s: String = s.chars().take(60).collect();
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn clip(s: &str) -> String {
    let n = s.chars().count();
    if n <= MAX_TICK_CHARS {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(MAX_TICK_CHARS - 1).collect::<String>())
    }
}

/// Numbers as tick text: at most 3 significant digits.
fn num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (2 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
    let t = format!("{v:.digits$}");
    if t.contains('.') {
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        t
    }
}

/// Whether x tick text is turned to fit (words, or many ticks).
fn turned(ticks: &[String], width: f64) -> bool {
    let longest = ticks.iter().map(|t| clip(t).chars().count()).max().unwrap_or(0) as f64;
    longest * CHAR > width / ticks.len().max(1) as f64
}

/// The area left for data once the text has its margins.
fn area(l: &Labels, y_ticks: &[String], colour_bar: bool) -> Area {
    if !l.any() {
        return PLAIN;
    }
    let widest = |t: &[String]| t.iter().map(|s| clip(s).chars().count()).max().unwrap_or(0) as f64 * CHAR;
    let x0 = 8.0 + if l.y.is_some() { 16.0 } else { 0.0 } + widest(y_ticks) + 6.0;
    let right = 10.0 + if colour_bar { 44.0 } else { 0.0 };
    let x_ticks_h = if l.x_ticks.is_empty() {
        0.0
    } else if turned(&l.x_ticks, W - x0 - right) {
        (widest(&l.x_ticks) * 0.82).min(70.0) + 8.0
    } else {
        TICK + 6.0
    };
    let y1 = H - 8.0 - if l.x.is_some() { 16.0 } else { 0.0 } - x_ticks_h;
    let y0 = 10.0 + if l.title.is_some() { 18.0 } else { 0.0 };
    Area { x0, y0, x1: W - right, y1 }
}

/// Every `k`th of `n` ticks so that their text does not overlap in `room`.
fn every(n: usize, room: f64, each: f64) -> usize {
    ((n as f64 * each) / room.max(1.0)).ceil().max(1.0) as usize
}

/// The title, axis labels and tick text, as SVG. `x_at(i)` and `y_at(i)`
/// place tick i; y tick text is given (heatmap rows, or numbers).
fn text(l: &Labels, a: Area, x_at: &dyn Fn(usize) -> f64, y_ticks: &[(f64, String)]) -> String {
    let mut s = String::new();
    let style = format!("font-family=\"{}\" fill=\"#222\"", crate::vision::font::FAMILY);
    if let Some(t) = &l.title {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"16\" font-size=\"12\" text-anchor=\"middle\" {style}>{}</text>",
            (a.x0 + a.x1) / 2.0,
            esc(t)
        );
    }
    if let Some(t) = &l.x {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" {style}>{}</text>",
            (a.x0 + a.x1) / 2.0,
            H - 8.0,
            esc(t)
        );
    }
    if let Some(t) = &l.y {
        let cy = (a.y0 + a.y1) / 2.0;
        let _ = write!(s, "<text x=\"18\" y=\"{cy:.1}\" font-size=\"11\" text-anchor=\"middle\" transform=\"rotate(-90 18 {cy:.1})\" {style}>{}</text>", esc(t));
    }
    let n = l.x_ticks.len();
    if n > 0 {
        let turn = turned(&l.x_ticks, a.x1 - a.x0);
        let k = if turn { every(n, a.x1 - a.x0, TICK + 2.0) } else { 1 };
        for (i, t) in l.x_ticks.iter().enumerate().step_by(k) {
            let x = x_at(i);
            let y = a.y1 + TICK + 3.0;
            if turn {
                let _ = write!(s, "<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"{TICK}\" text-anchor=\"end\" transform=\"rotate(-55 {x:.1} {:.1})\" {style}>{}</text>", y - 4.0, y - 4.0, esc(&clip(t)));
            } else {
                let _ = write!(
                    s,
                    "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{TICK}\" text-anchor=\"middle\" {style}>{}</text>",
                    esc(&clip(t))
                );
            }
        }
    }
    let k = every(y_ticks.len(), a.y1 - a.y0, TICK + 2.0);
    for (y, t) in y_ticks.iter().step_by(k) {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"{TICK}\" text-anchor=\"end\" {style}>{}</text>",
            a.x0 - 4.0,
            y + TICK / 3.0,
            esc(&clip(t))
        );
    }
    s
}

fn frame(body: &str, a: Area) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\"><rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>{body}\
         <line x1=\"{x0}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#444\" stroke-width=\"1\"/>\
         <line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{b}\" stroke=\"#444\" stroke-width=\"1\"/></svg>",
        x0 = a.x0,
        y0 = a.y0,
        b = a.y1,
        r = a.x1
    )
}

/// The value range a bar or line plot shows (zero always in it).
fn range(values: &[f64]) -> (f64, f64) {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let lo = finite.iter().copied().fold(0.0f64, f64::min);
    let hi = finite.iter().copied().fold(0.0f64, f64::max);
    (lo, hi)
}

/// Maps values to the plot's vertical pixels, with zero on the axis if in range.
fn scale(values: &[f64], a: Area) -> impl Fn(f64) -> f64 {
    let (lo, hi) = range(values);
    let span = if hi > lo { hi - lo } else { 1.0 };
    move |v: f64| a.y1 - (v.clamp(lo, hi) - lo) / span * (a.y1 - a.y0)
}

fn bars(values: &[f64], a: Area) -> String {
    let y = scale(values, a);
    let n = values.len().max(1) as f64;
    let w = (a.x1 - a.x0) / n;
    let zero = y(0.0);
    let mut s = String::new();
    for (i, v) in values.iter().enumerate() {
        let top = y(*v).min(zero);
        let height = (y(*v) - zero).abs().max(0.5);
        let colour = if *v >= 0.0 { "#3b6ea5" } else { "#b5473a" };
        let _ = write!(
            s,
            "<rect x=\"{:.2}\" y=\"{top:.2}\" width=\"{:.2}\" height=\"{height:.2}\" fill=\"{colour}\"/>",
            a.x0 + i as f64 * w + w * 0.1,
            w * 0.8
        );
    }
    s
}

fn line(values: &[f64], a: Area) -> String {
    let y = scale(values, a);
    let n = values.len();
    let step = if n > 1 { (a.x1 - a.x0) / (n - 1) as f64 } else { 0.0 };
    let pts: Vec<String> =
        values.iter().enumerate().map(|(i, v)| format!("{:.2},{:.2}", a.x0 + i as f64 * step, y(*v))).collect();
    format!("<polyline points=\"{}\" fill=\"none\" stroke=\"#3b6ea5\" stroke-width=\"2\"/>", pts.join(" "))
}

/// Blue (low) through white to red (high), symmetric about zero when the
/// data has both signs.
fn colour(v: f64, lo: f64, hi: f64) -> (u8, u8, u8) {
    let m = lo.abs().max(hi.abs()).max(1e-12);
    let t = if lo < 0.0 { (v / m).clamp(-1.0, 1.0) } else { ((v - lo) / (hi - lo).max(1e-12)).clamp(0.0, 1.0) };
    let (rr, gg, bb) = if t >= 0.0 {
        (255.0, 255.0 * (1.0 - t), 255.0 * (1.0 - t))
    } else {
        (255.0 * (1.0 + t), 255.0 * (1.0 + t), 255.0)
    };
    (rr as u8, gg as u8, bb as u8)
}

fn heat_range(data: &[f64]) -> (f64, f64) {
    let finite: Vec<f64> = data.iter().copied().filter(|v| v.is_finite()).collect();
    let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

/// Maps the range `r` onto pixels `p0`..`p1` (the middle if it is one value).
fn axis(r: (f64, f64), p0: f64, p1: f64) -> impl Fn(f64) -> f64 {
    move |v: f64| if r.1 > r.0 { p0 + (v - r.0) / (r.1 - r.0) * (p1 - p0) } else { (p0 + p1) / 2.0 }
}

/// A scatter plot's `[xs, ys]`: two lists (or tensors) of numbers of one length.
fn scatter_data(data: &Bound<Value>) -> Result<(Vec<f64>, Vec<f64>), ToolError> {
    let help = "give [xs, ys]: two lists of numbers of the same length, one dot per pair";
    let parts = match &**data {
        Value::List(items) if items.len() == 2 => items.clone(),
        Value::Tensor(t) if t.ndim() == 2 && t.shape()[0] == 2 => {
            let rows: Vec<Value> = t.outer_iter().map(|r| Value::nums(r.iter().map(|v| *v as f64))).collect();
            Arc::new(rows)
        }
        other => {
            return Err(data.error(format!("a scatter plot needs [xs, ys], found {}", other.type_name())).help(help))
        }
    };
    let xs = to_numbers(&parts[0]).map_err(|e| data.error(format!("xs: expected numbers: {e}")).help(help))?;
    let ys = to_numbers(&parts[1]).map_err(|e| data.error(format!("ys: expected numbers: {e}")).help(help))?;
    if xs.len() != ys.len() || xs.is_empty() || xs.len() > 100_000 {
        return Err(data
            .error(format!("{} xs and {} ys: give between 1 and 100000 pairs", xs.len(), ys.len()))
            .help(help));
    }
    if !xs.iter().zip(&ys).any(|(x, y)| x.is_finite() && y.is_finite()) {
        return Err(data.error("no pair of finite numbers to draw").help(help));
    }
    Ok((xs, ys))
}

fn heat(rows: usize, cols: usize, data: &[f64], a: Area) -> String {
    let (lo, hi) = heat_range(data);
    let (cw, ch) = ((a.x1 - a.x0) / cols.max(1) as f64, (a.y1 - a.y0) / rows.max(1) as f64);
    let mut s = String::new();
    for r in 0..rows {
        for c in 0..cols {
            let (rr, gg, bb) = colour(data[r * cols + c], lo, hi);
            let _ = write!(
                s,
                "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"rgb({},{},{})\"/>",
                a.x0 + c as f64 * cw,
                a.y0 + r as f64 * ch,
                cw + 0.3,
                ch + 0.3,
                rr,
                gg,
                bb
            );
        }
    }
    s
}

/// A colour bar right of a heatmap, its ends labelled with the values.
fn colour_bar(data: &[f64], a: Area) -> String {
    let (lo, hi) = heat_range(data);
    let x = a.x1 + 10.0;
    let steps = 32;
    let h = (a.y1 - a.y0) / steps as f64;
    let mut s = String::new();
    for i in 0..steps {
        let v = hi - (hi - lo) * (i as f64 + 0.5) / steps as f64;
        let (r, g, b) = colour(v, lo, hi);
        let _ = write!(
            s,
            "<rect x=\"{x:.1}\" y=\"{:.2}\" width=\"10\" height=\"{:.2}\" fill=\"rgb({r},{g},{b})\"/>",
            a.y0 + i as f64 * h,
            h + 0.3
        );
    }
    let style = format!("font-family=\"{}\" fill=\"#222\" font-size=\"{TICK}\"", crate::vision::font::FAMILY);
    let _ = write!(s, "<text x=\"{:.1}\" y=\"{:.1}\" {style}>{}</text>", x + 13.0, a.y0 + TICK, esc(&num(hi)));
    let _ = write!(s, "<text x=\"{:.1}\" y=\"{:.1}\" {style}>{}</text>", x + 13.0, a.y1, esc(&num(lo)));
    s
}

tool! {
    /// Draws a plot as an image for the report: "bar" (one bar per value; negative bars red), "line",
    /// "histogram" (of the values, `bins`), "heatmap" (a 2-D tensor or list of rows; blue below
    /// zero, red above), or "scatter" (`[xs, ys]`, two lists of equal length: one dot per pair). With a `title`, axis labels or tick text, the text is drawn in DejaVu Sans
    /// (fetched once into Assay's cache; the same pixels on every machine), bar and line plots get
    /// value ticks and a heatmap a colour bar; e.g. an attention pattern with the tokens on both axes.
    /// Without them the plot has no text: name it in `show`.
    ///
    /// ```assay
    /// let h = plot("heatmap", tensor([[1, -1], [0.5, 0]]))
    /// assert h.width == 480 and h.height == 300
    /// assert plot("bar", [3, -1, 2]).width == 480
    /// ```
    ///
    /// ```assay
    /// let tokens = ["The", " capital", " of", " France"]
    /// let pattern = tensor([[1, 0, 0, 0], [0.6, 0.4, 0, 0], [0.2, 0.5, 0.3, 0], [0.1, 0.2, 0.1, 0.6]])
    /// let p = plot("heatmap", pattern, title: "layer 3, head 2", x_label: "key", y_label: "query", x_ticks: tokens, y_ticks: tokens)
    /// assert p != plot("heatmap", pattern), "the text is drawn"
    /// ```
    ///
    /// ```assay
    /// let xs = range(50)
    /// let s = plot("scatter", [xs, map(xs, x => x * x)], x_label: "x", y_label: "x squared")
    /// assert s.width == 480 and s != plot("scatter", [xs, xs], x_label: "x", y_label: "x squared")
    /// ```
    plot in Vision -> Type::Image;
    {
        /// "bar", "line", "histogram", "heatmap" or "scatter"
        kind: String,
        /// numbers, rows of numbers for a heatmap, or [xs, ys] for a scatter plot
        data: Value,
        /// bins of a histogram
        bins: usize = 20,
        /// a title above the plot
        title: Option<String> = None,
        /// the horizontal axis's label, e.g. "head" or "key token"
        x_label: Option<String> = None,
        /// the vertical axis's label, e.g. "layer"
        y_label: Option<String> = None,
        /// text under each column (heatmap) or value (bar, line): tokens, or numbers
        x_ticks: Arg [Type::OneOf(vec![Type::list(Type::Any), Type::Range])] = None,
        /// text beside each row of a heatmap: tokens, or numbers
        y_ticks: Arg [Type::OneOf(vec![Type::list(Type::Any), Type::Range])] = None,
    }
    plot
}

fn plot(p: plot::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let kind = p.kind.as_str();
    let mut labels =
        Labels { title: (*p.title).clone(), x: (*p.x_label).clone(), y: (*p.y_label).clone(), ..Labels::default() };
    let svg = match kind {
        "bar" | "line" | "histogram" => {
            let values = to_numbers(&p.data).map_err(|e| p.data.error(format!("expected numbers: {e}")))?;
            if values.is_empty() || values.len() > 100_000 {
                return Err(p.data.error("give between 1 and 100000 numbers"));
            }
            if !p.y_ticks.is_none() {
                return Err(p
                    .y_ticks
                    .error("a bar, line or histogram plot's vertical ticks are its values")
                    .help("leave y_ticks out; y_label names the axis"));
            }
            let (values, n_ticks) = match kind {
                "histogram" => {
                    let bins = p.bins.clamp(1, 1000);
                    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let width = if hi > lo { (hi - lo) / bins as f64 } else { 1.0 };
                    let mut counts = vec![0.0; bins];
                    for v in &values {
                        counts[(((v - lo) / width) as usize).min(bins - 1)] += 1.0;
                    }
                    (counts, bins)
                }
                _ => {
                    let n = values.len();
                    (values, n)
                }
            };
            labels.x_ticks = ticks(&p.x_ticks, Some(n_ticks), "columns")?;
            // Value ticks at the ends of the range and at zero (always in it).
            let (lo, hi) = range(&values);
            let mut at = vec![lo, 0.0, hi];
            at.dedup();
            let value_ticks: Vec<String> = if labels.any() { at.iter().map(|v| num(*v)).collect() } else { Vec::new() };
            let area = area(&labels, &value_ticks, false);
            let body = if kind == "line" { line(&values, area) } else { bars(&values, area) };
            if labels.any() {
                let y = scale(&values, area);
                let n = values.len().max(1) as f64;
                let x_at = |i: usize| {
                    if kind == "line" {
                        area.x0 + i as f64 * if n > 1.0 { (area.x1 - area.x0) / (n - 1.0) } else { 0.0 }
                    } else {
                        area.x0 + (i as f64 + 0.5) * (area.x1 - area.x0) / n
                    }
                };
                let ys: Vec<(f64, String)> = at.iter().map(|v| (y(*v), num(*v))).collect();
                frame(&format!("{body}{}", text(&labels, area, &x_at, &ys)), area)
            } else {
                frame(&body, area)
            }
        }
        "scatter" => {
            let (xs, ys) = scatter_data(&p.data)?;
            for (t, what) in [(&p.x_ticks, "horizontal"), (&p.y_ticks, "vertical")] {
                if !t.is_none() {
                    return Err(t
                        .error(format!("a scatter plot's {what} ticks are its values"))
                        .help("leave x_ticks and y_ticks out; x_label and y_label name the axes"));
                }
            }
            let (xr, yr) = (heat_range(&xs), heat_range(&ys));
            let y_text: Vec<String> = if labels.any() { vec![num(yr.0), num(yr.1)] } else { Vec::new() };
            if labels.any() {
                labels.x_ticks = vec![num(xr.0), num(xr.1)];
            }
            let area = area(&labels, &y_text, false);
            let (fx, fy) = (axis(xr, area.x0 + 4.0, area.x1 - 4.0), axis(yr, area.y1 - 4.0, area.y0 + 4.0));
            let mut body = String::new();
            for (x, y) in xs.iter().zip(&ys).filter(|(x, y)| x.is_finite() && y.is_finite()) {
                let _ = write!(
                    body,
                    "<circle cx=\"{:.2}\" cy=\"{:.2}\" r=\"2.2\" fill=\"#3b6ea5\" fill-opacity=\"0.6\"/>",
                    fx(*x),
                    fy(*y)
                );
            }
            if labels.any() {
                let x_at = |i: usize| if i == 0 { fx(xr.0) } else { fx(xr.1) };
                let ys_at = vec![(fy(yr.0), num(yr.0)), (fy(yr.1), num(yr.1))];
                frame(&format!("{body}{}", text(&labels, area, &x_at, &ys_at)), area)
            } else {
                frame(&body, area)
            }
        }
        "heatmap" => {
            let t = to_tensor(&p.data).map_err(|e| p.data.error(format!("a heatmap needs rows of numbers: {e}")))?;
            if t.ndim() != 2 || t.is_empty() {
                return Err(p.data.error(format!("a heatmap needs a 2-D tensor, found shape {:?}", t.shape())));
            }
            let (r, c) = (t.shape()[0], t.shape()[1]);
            // The image is 480x300: more cells than this cannot be seen, and
            // each one is an SVG element (10,000 x 10,000 would be 10 GB of text).
            const MAX_CELLS: usize = 250_000;
            if r.saturating_mul(c) > MAX_CELLS {
                return Err(p
                    .data
                    .error(format!("a heatmap of {r} x {c} cells is more than the {MAX_CELLS} it can draw"))
                    .help("average or max-pool the rows and columns first, or plot a slice"));
            }
            labels.x_ticks = ticks(&p.x_ticks, Some(c), "columns")?;
            labels.y_ticks = ticks(&p.y_ticks, Some(r), "rows")?;
            let data: Vec<f64> = t.iter().map(|x| *x as f64).collect();
            let area = area(&labels, &labels.y_ticks, labels.any());
            let body = heat(r, c, &data, area);
            if labels.any() {
                let (cw, ch) = ((area.x1 - area.x0) / c as f64, (area.y1 - area.y0) / r as f64);
                let x_at = |i: usize| area.x0 + (i as f64 + 0.5) * cw;
                let ys: Vec<(f64, String)> = labels
                    .y_ticks
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (area.y0 + (i as f64 + 0.5) * ch, t.clone()))
                    .collect();
                frame(&format!("{body}{}{}", text(&labels, area, &x_at, &ys), colour_bar(&data, area)), area)
            } else {
                frame(&body, area)
            }
        }
        other => {
            return Err(p.kind.error(format!("unknown plot \"{other}\"; use bar, line, histogram, heatmap or scatter")))
        }
    };
    let fonts = if labels.any() { Some(crate::vision::font::fonts().map_err(ToolError::new)?) } else { None };
    crate::vision::svg::render_with(&svg, W as u32, Some(H as u32), Some([255, 255, 255, 255]), fonts)
        .map(|i| Value::Image(Arc::new(i)))
        .map_err(ToolError::new)
}

/// Tick labels, one per column or row (`what`) where `want` says how many.
fn ticks(x: &Arg, want: Option<usize>, what: &str) -> Result<Vec<String>, ToolError> {
    let v = x.get();
    if matches!(v, Value::None) {
        return Ok(Vec::new());
    }
    let items = x.items()?;
    if let Some(n) = want {
        if items.len() != n {
            return Err(x
                .error(format!("{} tick labels for {n} {}", items.len(), what))
                .help("give one label per column (x_ticks) or row (y_ticks), or none"));
        }
    }
    Ok(items
        .iter()
        .map(|v| match v {
            Value::Num(x) => num(*x),
            Value::Str(s) => s.to_string(),
            v => v.to_text(),
        })
        .collect())
}
