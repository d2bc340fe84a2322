//! The investigation's report.html.

use super::*;
use assay_interpreter::html_escape;
use serde_json::Value as Json;

pub(super) fn report_html(task: &Json, transcript: &[Json], answer: &Json) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Investigation</h1><pre>{}</pre>",
        html_escape(&serde_json::to_string_pretty(task).unwrap_or_default())
    );
    for t in transcript {
        let role = t["message"]["role"].as_str().unwrap_or("");
        if role == "system" {
            continue;
        }
        let content = &t["message"]["content"];
        let text = match content.as_array() {
            Some(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join("\n"),
            None => content.as_str().or(t["endpoint_error"].as_str()).unwrap_or("").to_string(),
        };
        let images: String = t["images"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str())
                    .map(|f| format!("<img src=\"{}\" alt=\"{}\">", html_escape(f), html_escape(f)))
                    .collect()
            })
            .unwrap_or_default();
        let _ = write!(
            body,
            "<section class=\"{role}\"><h3>{role}</h3><pre>{}</pre>{images}</section>",
            html_escape(&text)
        );
    }
    let _ = write!(
        body,
        "<h2>Answer</h2><pre>{}</pre>",
        html_escape(&serde_json::to_string_pretty(answer).unwrap_or_default())
    );
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Assay investigation</title><style>body{{font-family:sans-serif;max-width:60em;margin:auto}}pre{{white-space:pre-wrap;background:#f6f6f6;padding:.5em}}.assistant h3{{color:#3b6ea5}}img{{max-width:224px;margin:4px;border:1px solid #ccc}}</style></head><body>{body}</body></html>\n"
    )
}
