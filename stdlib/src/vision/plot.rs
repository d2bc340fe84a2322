//! Plots as images for the report: bar, line, heatmap and histogram, drawn
//! as SVG and rendered with resvg (deterministic; no fonts, so no text —
//! the `show` title names the plot and the values sit in results.json).

use std::fmt::Write as _;
use std::sync::Arc;

use assay_interpreter::{to_numbers, to_tensor, Args, Registry, Signature, ToolCtx, ToolError, Type, Value};

use crate::core::FnTool;

const W: f64 = 480.0;
const H: f64 = 300.0;
const PAD: f64 = 24.0;

fn frame(body: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\"><rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>{body}\
         <line x1=\"{PAD}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#444\" stroke-width=\"1\"/>\
         <line x1=\"{PAD}\" y1=\"{PAD}\" x2=\"{PAD}\" y2=\"{b}\" stroke=\"#444\" stroke-width=\"1\"/></svg>",
        b = H - PAD,
        r = W - PAD
    )
}

/// Maps values to the plot's vertical pixels, with zero on the axis if in range.
fn scale(values: &[f64]) -> impl Fn(f64) -> f64 {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let lo = finite.iter().copied().fold(0.0f64, f64::min);
    let hi = finite.iter().copied().fold(0.0f64, f64::max);
    let span = if hi > lo { hi - lo } else { 1.0 };
    move |v: f64| H - PAD - (v.clamp(lo, hi) - lo) / span * (H - 2.0 * PAD)
}

fn bars(values: &[f64]) -> String {
    let y = scale(values);
    let n = values.len().max(1) as f64;
    let w = (W - 2.0 * PAD) / n;
    let zero = y(0.0);
    let mut s = String::new();
    for (i, v) in values.iter().enumerate() {
        let top = y(*v).min(zero);
        let height = (y(*v) - zero).abs().max(0.5);
        let colour = if *v >= 0.0 { "#3b6ea5" } else { "#b5473a" };
        let _ = write!(
            s,
            "<rect x=\"{:.2}\" y=\"{top:.2}\" width=\"{:.2}\" height=\"{height:.2}\" fill=\"{colour}\"/>",
            PAD + i as f64 * w + w * 0.1,
            w * 0.8
        );
    }
    s
}

fn line(values: &[f64]) -> String {
    let y = scale(values);
    let n = values.len();
    let step = if n > 1 { (W - 2.0 * PAD) / (n - 1) as f64 } else { 0.0 };
    let pts: Vec<String> =
        values.iter().enumerate().map(|(i, v)| format!("{:.2},{:.2}", PAD + i as f64 * step, y(*v))).collect();
    format!("<polyline points=\"{}\" fill=\"none\" stroke=\"#3b6ea5\" stroke-width=\"2\"/>", pts.join(" "))
}

/// Blue (low) through white to red (high), symmetric about zero when the
/// data has both signs.
fn heat(rows: usize, cols: usize, data: &[f64]) -> String {
    let finite: Vec<f64> = data.iter().copied().filter(|v| v.is_finite()).collect();
    let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let m = lo.abs().max(hi.abs()).max(1e-12);
    let (cw, ch) = ((W - 2.0 * PAD) / cols.max(1) as f64, (H - 2.0 * PAD) / rows.max(1) as f64);
    let mut s = String::new();
    for r in 0..rows {
        for c in 0..cols {
            let v = data[r * cols + c];
            let t = if lo < 0.0 { (v / m).clamp(-1.0, 1.0) } else { ((v - lo) / (hi - lo).max(1e-12)).clamp(0.0, 1.0) };
            let (rr, gg, bb) = if t >= 0.0 {
                (255.0, 255.0 * (1.0 - t), 255.0 * (1.0 - t))
            } else {
                (255.0 * (1.0 + t), 255.0 * (1.0 + t), 255.0)
            };
            let _ = write!(
                s,
                "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"rgb({},{},{})\"/>",
                PAD + c as f64 * cw,
                PAD + r as f64 * ch,
                cw + 0.3,
                ch + 0.3,
                rr as u8,
                gg as u8,
                bb as u8
            );
        }
    }
    s
}

fn plot_sig() -> Signature {
    Signature::new("plot", "vision", "Draws a plot as an image for the report: \"bar\" (one bar per value; negative bars red), \"line\", \"histogram\" (of the values, `bins`), or \"heatmap\" (a 2-D tensor or list of rows; blue below zero, red above). There is no text: name the plot in `show`.")
        .param("kind", Type::Str, "\"bar\", \"line\", \"histogram\" or \"heatmap\"")
        .param("data", Type::Any, "numbers, or rows of numbers for a heatmap")
        .opt("bins", Type::Num, Value::Num(20.0), "bins of a histogram")
        .returns(Type::Image)
        .example("let h = plot(\"heatmap\", tensor([[1, -1], [0.5, 0]]))\nassert h.width == 480 and h.height == 300\nassert plot(\"bar\", [3, -1, 2]).width == 480")
}
fn plot(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let kind = a.str("kind")?;
    let body = match kind {
        "bar" | "line" | "histogram" => {
            let values =
                to_numbers(a.get("data")).map_err(|e| ToolError::arg("data", format!("expected numbers: {e}")))?;
            if values.is_empty() || values.len() > 100_000 {
                return Err(ToolError::arg("data", "give between 1 and 100000 numbers"));
            }
            match kind {
                "bar" => bars(&values),
                "line" => line(&values),
                _ => {
                    let bins = a.count("bins")?.clamp(1, 1000);
                    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let width = if hi > lo { (hi - lo) / bins as f64 } else { 1.0 };
                    let mut counts = vec![0.0; bins];
                    for v in &values {
                        counts[(((v - lo) / width) as usize).min(bins - 1)] += 1.0;
                    }
                    bars(&counts)
                }
            }
        }
        "heatmap" => {
            let t = to_tensor(a.get("data"))
                .map_err(|e| ToolError::arg("data", format!("a heatmap needs rows of numbers: {e}")))?;
            if t.ndim() != 2 || t.is_empty() {
                return Err(ToolError::arg(
                    "data",
                    format!("a heatmap needs a 2-D tensor, found shape {:?}", t.shape()),
                ));
            }
            let (r, c) = (t.shape()[0], t.shape()[1]);
            // The image is 480x300: more cells than this cannot be seen, and
            // each one is an SVG element (10,000 x 10,000 would be 10 GB of text).
            const MAX_CELLS: usize = 250_000;
            if r.saturating_mul(c) > MAX_CELLS {
                return Err(ToolError::arg(
                    "data",
                    format!("a heatmap of {r} x {c} cells is more than the {MAX_CELLS} it can draw"),
                )
                .help("average or max-pool the rows and columns first, or plot a slice"));
            }
            heat(r, c, &t.iter().map(|x| *x as f64).collect::<Vec<_>>())
        }
        other => {
            return Err(ToolError::arg(
                "kind",
                format!("unknown plot \"{other}\"; use bar, line, histogram or heatmap"),
            ))
        }
    };
    super::svg::render(&frame(&body), W as u32, Some(H as u32), Some([255, 255, 255, 255]))
        .map(|i| Value::Image(Arc::new(i)))
        .map_err(ToolError::new)
}

pub(crate) fn register(r: &mut Registry) {
    r.register(FnTool::new(plot_sig, plot));
}
