//! report.html: everything the script `show`ed, then its records and
//! asserts, in one self-contained page (inline CSS, images as data URLs)
//! that opens offline.

use base64::Engine as _;

use crate::eval::{Outcome, Status};
use crate::value::{format_num, Value};

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em;border-bottom:1px solid #ddd}\
.line{color:#888;font-size:.8em;font-weight:normal}table{border-collapse:collapse;margin:.5em 0}\
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;font-variant-numeric:tabular-nums}\
th{background:#f5f5f5}.grid{display:flex;flex-wrap:wrap;gap:8px}.cell{text-align:center;font-size:.8em}\
.cell img{display:block;width:160px;height:auto;image-rendering:pixelated;border:1px solid #ccc}\
img.plot{max-width:100%;border:1px solid #eee}\
.pass{color:#176f2c}.fail{color:#b00020;font-weight:bold}pre{background:#f7f7f7;padding:.6em;overflow:auto}\
.status-ok{color:#176f2c}.status-assert-failed,.status-error{color:#b00020}\
mark{background:#ffb347;font-weight:bold}.tokens span{white-space:pre;border-radius:2px}.contexts li{white-space:pre-wrap;margin:.2em 0}";

fn img_tag(v: &Value, class: &str) -> Option<String> {
    if let Value::Image(img) = v {
        let png = img.to_png_fast().ok()?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(png);
        Some(format!(
            "<img class=\"{class}\" src=\"data:image/png;base64,{b64}\" width=\"{}\" height=\"{}\" alt=\"image {}x{}\">",
            img.width, img.height, img.width, img.height
        ))
    } else {
        None
    }
}

/// Text with one token marked `⟦...⟧` (a language-model unit's exemplar
/// context), escaped, the token highlighted.
fn marked(s: &str) -> String {
    let e = escape(s);
    if e.matches('⟦').count() == 1 && e.matches('⟧').count() == 1 && e.find('⟦') < e.find('⟧') {
        e.replace('⟦', "<mark>").replace('⟧', "</mark>")
    } else {
        e
    }
}

/// A unit's values on a text (`tokens` beside `activations`) as the text
/// itself, each token shaded by its value (the largest darkest) and
/// labelled with it.
fn profile_html(v: &Value) -> Option<String> {
    let Value::Record(f) = v else { return None };
    let (Some(Value::List(tokens)), Some(Value::List(values))) = (f.get("tokens"), f.get("activations")) else {
        return None;
    };
    let values: Vec<f64> =
        values.iter().map(|x| if let Value::Num(n) = x { Some(*n) } else { None }).collect::<Option<_>>()?;
    if tokens.len() != values.len() || !tokens.iter().all(|t| matches!(t, Value::Str(_))) {
        return None;
    }
    let top = values.iter().copied().fold(0.0f64, f64::max);
    let mut h = String::from("<p class=\"tokens\">");
    for (t, v) in tokens.iter().zip(&values) {
        let alpha = if top > 0.0 { (v.max(0.0) / top).min(1.0) } else { 0.0 };
        h.push_str(&format!(
            "<span title=\"{}\" style=\"background:rgba(230,120,0,{alpha:.2})\">{}</span>",
            escape(&format_num((v * 1000.0).round() / 1000.0)),
            escape(&t.to_text())
        ));
    }
    h.push_str("</p>");
    Some(h)
}

fn render_value(v: &Value, out: &mut String) {
    if let Some(h) = profile_html(v) {
        out.push_str(&h);
        return;
    }
    match v {
        Value::List(items)
            if !items.is_empty() && items.iter().all(|x| matches!(x, Value::Str(s) if s.contains('⟦'))) =>
        {
            out.push_str("<ol class=\"contexts\">");
            for x in items.iter() {
                out.push_str(&format!("<li>{}</li>", marked(&x.to_text())));
            }
            out.push_str("</ol>");
        }
        Value::List(items) if !items.is_empty() && items.iter().all(|x| profile_html(x).is_some()) => {
            for x in items.iter() {
                out.push_str(&profile_html(x).unwrap_or_default());
            }
        }
        Value::Image(_) => {
            if let Some(t) = img_tag(v, "plot") {
                out.push_str(&t);
            }
        }
        Value::List(items) if !items.is_empty() && items.iter().all(|x| matches!(x, Value::Image(_))) => {
            out.push_str("<div class=\"grid\">");
            for (i, x) in items.iter().enumerate() {
                out.push_str(&format!(
                    "<div class=\"cell\">{}<span>{i}</span></div>",
                    img_tag(x, "").unwrap_or_default()
                ));
            }
            out.push_str("</div>");
        }
        // A list of records is a table with one column per field.
        Value::List(items) if !items.is_empty() && items.iter().all(|x| matches!(x, Value::Record(_))) => {
            let mut cols: Vec<String> = Vec::new();
            for x in items.iter() {
                if let Value::Record(f) = x {
                    for k in f.keys() {
                        if !cols.contains(k) {
                            cols.push(k.clone());
                        }
                    }
                }
            }
            out.push_str("<table><tr>");
            for c in &cols {
                out.push_str(&format!("<th>{}</th>", escape(c)));
            }
            out.push_str("</tr>");
            for x in items.iter() {
                out.push_str("<tr>");
                if let Value::Record(f) = x {
                    for c in &cols {
                        out.push_str("<td>");
                        match f.get(c) {
                            Some(v @ Value::Image(_)) => out.push_str(&img_tag(v, "").unwrap_or_default()),
                            Some(v) => out.push_str(&escape(&v.to_text())),
                            None => {}
                        }
                        out.push_str("</td>");
                    }
                }
                out.push_str("</tr>");
            }
            out.push_str("</table>");
        }
        Value::Record(fields) => {
            out.push_str("<table>");
            for (k, x) in fields.iter() {
                out.push_str(&format!("<tr><th>{}</th><td>", escape(k)));
                render_value(x, out);
                out.push_str("</td></tr>");
            }
            out.push_str("</table>");
        }
        Value::Tensor(t) if t.ndim() == 2 && t.len() <= 400 => {
            out.push_str("<table>");
            for row in t.outer_iter() {
                out.push_str("<tr>");
                for x in row.iter() {
                    out.push_str(&format!("<td>{}</td>", escape(&format_num(*x as f64))));
                }
                out.push_str("</tr>");
            }
            out.push_str("</table>");
        }
        Value::Str(s) if s.contains('\n') => out.push_str(&format!("<pre>{}</pre>", escape(s))),
        other => out.push_str(&format!("<p><code>{}</code></p>", escape(&other.to_text()))),
    }
}

/// The whole page.
pub fn report_html(title: &str, out: &Outcome) -> String {
    let status = Status::of(out);
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str(&format!("<title>{}</title><style>{STYLE}</style></head><body>\n", escape(title)));
    h.push_str(&format!(
        "<h1>{}</h1><p>status: <span class=\"status-{}\">{}</span> · seed {} · {} tool calls</p>\n",
        escape(title),
        status.as_str(),
        status.as_str(),
        out.seed,
        out.trace.len()
    ));
    if let Some(e) = &out.error {
        h.push_str(&format!("<p class=\"fail\">error: {}</p>", escape(&e.message)));
    }
    for s in &out.shows {
        let t = s.title.clone().unwrap_or_else(|| format!("line {}", s.line));
        h.push_str(&format!("<section><h2>{} <span class=\"line\">line {}</span></h2>", escape(&t), s.line));
        for v in &s.values {
            render_value(v, &mut h);
        }
        h.push_str("</section>\n");
    }
    if !out.records.is_empty() {
        h.push_str("<section><h2>Records</h2><table><tr><th>name</th><th>value</th></tr>");
        for (k, v) in &out.records {
            h.push_str(&format!("<tr><td>{}</td><td>", escape(k)));
            render_value(v, &mut h);
            h.push_str("</td></tr>");
        }
        h.push_str("</table></section>\n");
    }
    if !out.asserts.is_empty() {
        h.push_str("<section><h2>Asserts</h2><table><tr><th>line</th><th>claim</th><th>result</th></tr>");
        for a in &out.asserts {
            let (class, word) = if a.passed { ("pass", "passed") } else { ("fail", "FAILED") };
            let msg = a.message.as_deref().map(|m| format!(" — {}", escape(m))).unwrap_or_default();
            h.push_str(&format!(
                "<tr><td>{}</td><td><code>{}</code>{msg}</td><td class=\"{class}\">{word}</td></tr>",
                a.line,
                escape(&a.expr)
            ));
        }
        h.push_str("</table></section>\n");
    }
    h.push_str("</body></html>\n");
    h
}
