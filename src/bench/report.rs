//! The benchmark's table (per category), as text, JSON and an HTML report
//! with plots comparing every investigator that ran on the set.

use std::fmt::Write as _;
use std::path::Path;

use assay_interpreter::{html_escape, read_regular};
use serde_json::{json, Value as Json};

use super::Suite;

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn num(v: Option<f64>) -> Json {
    v.map(assay_interpreter::num_json).unwrap_or(Json::Null)
}

/// One row per category ("all" first, then each tag in order of first
/// appearance): how many items and the suite's metrics over them.
pub(crate) fn table(suite: Suite, rows: &[Json]) -> Json {
    let mut cats: Vec<String> = vec!["all".into()];
    for r in rows {
        for t in r["tags"].as_array().into_iter().flatten().filter_map(|t| t.as_str()) {
            if !cats.iter().any(|c| c == t) {
                cats.push(t.to_string());
            }
        }
    }
    let out: Vec<Json> = cats
        .iter()
        .map(|cat| {
            let these: Vec<&Json> = rows
                .iter()
                .filter(|r| cat == "all" || r["tags"].as_array().is_some_and(|a| a.iter().any(|t| t == cat.as_str())))
                .collect();
            let solved: Vec<f64> =
                these.iter().map(|r| f64::from(u8::from(r["scores"]["solved"].as_bool() == Some(true)))).collect();
            let mut row = json!({"category": cat, "n": these.len()});
            if suite != Suite::Neurons {
                row["solved"] = num(mean(&solved));
            }
            match suite {
                Suite::Numeric => {
                    // An unscored answer (an error, no answer) counts as infinite NMSE.
                    let nmse: Vec<f64> =
                        these.iter().map(|r| r["scores"]["nmse"].as_f64().unwrap_or(f64::INFINITY)).collect();
                    let domain: Vec<f64> = these
                        .iter()
                        .map(|r| f64::from(u8::from(r["scores"]["domain_correct"].as_bool() == Some(true))))
                        .collect();
                    row["median_nmse"] = num(median(nmse.clone()));
                    // The mean, with each NMSE capped at 1 (the error of
                    // predicting zero) so one wild answer cannot swamp it.
                    let capped: Vec<f64> = nmse.iter().map(|v| v.min(1.0)).collect();
                    row["mean_nmse"] = num(mean(&capped));
                    row["domain_correct"] = num(mean(&domain));
                }
                Suite::Strings => {
                    let acc: Vec<f64> = these.iter().map(|r| r["scores"]["accuracy"].as_f64().unwrap_or(0.0)).collect();
                    row["accuracy"] = num(mean(&acc));
                }
                Suite::Neurons => {
                    // An unscored answer counts as chance (0.5).
                    let auc: Vec<f64> = these.iter().map(|r| r["scores"]["score"].as_f64().unwrap_or(0.5)).collect();
                    row["auc"] = num(mean(&auc));
                    let judged: Vec<f64> = these
                        .iter()
                        .filter_map(|r| r["label_judged"].as_bool())
                        .map(|b| f64::from(u8::from(b)))
                        .collect();
                    if !judged.is_empty() {
                        row["label_agrees"] = num(mean(&judged));
                    }
                }
            }
            // FIND's description test, where a judge was configured.
            let tested: Vec<f64> = these.iter().filter_map(|r| r["description_test"].as_f64()).collect();
            if !tested.is_empty() {
                row["description_test"] = num(mean(&tested));
            }
            row
        })
        .collect();
    Json::Array(out)
}

fn cell(v: &Json) -> String {
    match v {
        Json::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e9 => format!("{f}"),
            Some(f) if f.abs() >= 1e4 => format!("{f:.3e}"),
            Some(f) => format!("{f:.3}"),
            None => n.to_string(),
        },
        Json::Null => "-".into(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn columns(table: &Json) -> Vec<String> {
    let mut cols: Vec<String> = vec!["category".into(), "n".into()];
    if let Some(first) = table.as_array().and_then(|a| a.first()).and_then(|r| r.as_object()) {
        for k in first.keys() {
            if !cols.contains(k) {
                cols.push(k.clone());
            }
        }
    }
    cols
}

/// The table as aligned text, headed by the investigator's name.
pub(crate) fn table_text(name: &str, table: &Json) -> String {
    let cols = columns(table);
    let rows: Vec<Vec<String>> = table
        .as_array()
        .map(|a| a.iter().map(|r| cols.iter().map(|c| cell(&r[c.as_str()])).collect()).collect())
        .unwrap_or_default();
    let widths: Vec<usize> =
        (0..cols.len()).map(|i| rows.iter().map(|r| r[i].len()).chain([cols[i].len()]).max().unwrap_or(0)).collect();
    let mut out = format!("{name}\n");
    let line = |cells: &[String]| {
        cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string()
    };
    let _ = writeln!(out, "  {}", line(&cols));
    for r in &rows {
        let _ = writeln!(out, "  {}", line(r));
    }
    out
}

/// One line per item: its id, tags, status, scores and, for an item that
/// scored 0 or failed, which check failed.
pub(crate) fn items_text(rows: &[Json]) -> String {
    let mut out = String::from("  items:\n");
    for it in rows {
        let _ = writeln!(out, "  {}", crate::out::escape_controls(&item_line(it)));
    }
    out
}

/// An item as one line of text (also report.html's list).
fn item_line(it: &Json) -> String {
    let tags: Vec<&str> = it["tags"].as_array().into_iter().flatten().filter_map(|t| t.as_str()).collect();
    let mut scores: Vec<String> = it["scores"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| *k != "failed" && *k != "error" && !v.is_array())
        .map(|(k, v)| format!("{k} {}", cell(v)))
        .collect();
    if scores.is_empty() {
        scores.push("no scores".into());
    }
    let mut line = format!(
        "{} [{}] {}: {}",
        it["id"].as_str().unwrap_or(""),
        tags.join(", "),
        it["status"].as_str().unwrap_or(""),
        scores.join(", ")
    );
    for k in ["failed", "error"] {
        if let Some(why) = it["scores"][k].as_str() {
            let _ = write!(line, "; {k}: {why}");
        }
    }
    line
}

/// A horizontal bar chart (values in [0, 1]) as inline SVG.
fn bars(title: &str, series: &[(String, Vec<(String, f64)>)]) -> String {
    let cats: Vec<String> = series.first().map(|(_, v)| v.iter().map(|(c, _)| c.clone()).collect()).unwrap_or_default();
    let colours = ["#3b6ea5", "#d08c2b", "#5a9e5a", "#a54a4a", "#7d5aa5", "#4aa5a0"];
    let bar_h = 12.0;
    let group_h = bar_h * series.len() as f64 + 10.0;
    let height = 40.0 + group_h * cats.len() as f64 + 20.0 * series.len() as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\"><text x=\"0\" y=\"14\" font-size=\"13\">{}</text>",
        html_escape(title)
    );
    for (ci, cat) in cats.iter().enumerate() {
        let y0 = 30.0 + group_h * ci as f64;
        let _ = write!(svg, "<text x=\"0\" y=\"{}\">{}</text>", y0 + bar_h, html_escape(cat));
        for (si, (_, values)) in series.iter().enumerate() {
            let v = values.get(ci).map(|(_, v)| *v).unwrap_or(0.0).clamp(0.0, 1.0);
            let y = y0 + bar_h * si as f64;
            let _ = write!(
                svg,
                "<rect x=\"120\" y=\"{y}\" width=\"{:.1}\" height=\"{}\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{}\">{v:.3}</text>",
                400.0 * v,
                bar_h - 2.0,
                colours[si % colours.len()],
                125.0 + 400.0 * v,
                y + bar_h - 3.0
            );
        }
    }
    let ly = 30.0 + group_h * cats.len() as f64;
    for (si, (name, _)) in series.iter().enumerate() {
        let y = ly + 20.0 * si as f64;
        let _ = write!(
            svg,
            "<rect x=\"120\" y=\"{y}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"138\" y=\"{}\">{}</text>",
            colours[si % colours.len()],
            y + 10.0,
            html_escape(name)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// report.html: every investigator's table on the set, and plots of the
/// main metric per category.
pub(crate) fn write_report(out: &Path) -> std::io::Result<()> {
    let mut results: Vec<Json> = std::fs::read_dir(out)?
        .filter_map(|e| e.ok())
        .filter_map(|e| read_regular(&e.path().join("results.json"), 1 << 30).ok())
        .filter_map(|b| serde_json::from_slice::<Json>(&b).ok())
        .collect();
    results.sort_by(|a, b| a["investigator"].as_str().cmp(&b["investigator"].as_str()));
    let mut body = String::from("<h1>Assay benchmark</h1>");
    if let Some(r) = results.first() {
        let _ = write!(
            body,
            "<p>Suite <b>{}</b>, seed {}, set sha256 <code>{}</code>.</p>",
            html_escape(r["suite"].as_str().unwrap_or("")),
            r["seed"],
            html_escape(r["set_sha256"].as_str().unwrap_or(""))
        );
    }
    for metric in ["solved", "domain_correct", "accuracy", "auc", "label_agrees", "description_test"] {
        let series: Vec<(String, Vec<(String, f64)>)> = results
            .iter()
            .filter(|r| r["table"][0].get(metric).is_some())
            .map(|r| {
                let vals = r["table"]
                    .as_array()
                    .map(|t| {
                        t.iter()
                            .map(|row| {
                                (
                                    row["category"].as_str().unwrap_or("").to_string(),
                                    row[metric].as_f64().unwrap_or(0.0),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                (r["investigator"].as_str().unwrap_or("").to_string(), vals)
            })
            .collect();
        if !series.is_empty() {
            body.push_str(&bars(&format!("{metric} by category"), &series));
        }
    }
    for r in &results {
        let name = r["investigator"].as_str().unwrap_or("");
        let cols = columns(&r["table"]);
        let _ = write!(body, "<h2>{}</h2><table><tr>", html_escape(name));
        for c in &cols {
            let _ = write!(body, "<th>{}</th>", html_escape(c));
        }
        body.push_str("</tr>");
        for row in r["table"].as_array().into_iter().flatten() {
            body.push_str("<tr>");
            for c in &cols {
                let _ = write!(body, "<td>{}</td>", html_escape(&cell(&row[c.as_str()])));
            }
            body.push_str("</tr>");
        }
        body.push_str("</table><details><summary>items</summary><ul>");
        for it in r["items"].as_array().into_iter().flatten() {
            let folder = format!("{}/report.html", it["folder"].as_str().unwrap_or(""));
            let _ = write!(body, "<li><a href=\"{}\">{}</a></li>", html_escape(&folder), html_escape(&item_line(it)));
        }
        body.push_str("</ul></details>");
    }
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Assay benchmark</title><style>body{{font-family:sans-serif;max-width:60em;margin:auto}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}svg{{display:block;margin:1em 0}}</style></head><body>{body}</body></html>\n"
    );
    super::write_atomic(&out.join("report.html"), html.as_bytes())
}
