//! Tool documentation generated from the registry: `assay tools`, its
//! `--json` form for agents, and docs/tools.md. One source of truth.

use std::fmt::Write as _;

use assay_interpreter::{Default, Registry, Signature};
use serde_json::json;

fn categories(r: &Registry) -> Vec<(&'static str, Vec<&Signature>)> {
    let mut cats: Vec<(&'static str, Vec<&Signature>)> = Vec::new();
    for s in r.signatures() {
        match cats.iter_mut().find(|(c, _)| *c == s.category) {
            Some((_, v)) => v.push(s),
            None => cats.push((s.category, vec![s])),
        }
    }
    cats.sort_by_key(|(c, _)| *c);
    cats
}

pub fn tools_text(r: &Registry) -> String {
    let mut out = String::new();
    for (cat, sigs) in categories(r) {
        let _ = writeln!(out, "{cat}:");
        for s in sigs {
            let _ = writeln!(out, "  {}\n      {}", s.render(), s.doc);
        }
    }
    let _ = writeln!(out, "\n{} tools. `assay tools --json` gives parameters, docs and examples.", r.len());
    out
}

pub fn tools_json(r: &Registry) -> serde_json::Value {
    let tools: Vec<_> = r
        .signatures()
        .map(|s| {
            let params: Vec<_> = s
                .params
                .iter()
                .map(|p| {
                    let default = match &p.default {
                        Default::Required => json!(null),
                        Default::Value(v) => json!(v.to_repr()),
                    };
                    json!({"name": p.name, "type": p.ty.to_string(), "required": matches!(p.default, Default::Required), "default": default, "doc": p.doc})
                })
                .collect();
            json!({
                "name": s.name,
                "category": s.category,
                "signature": s.render(),
                "params": params,
                "returns": s.returns.to_string(),
                "doc": s.doc,
                "examples": s.examples,
            })
        })
        .collect();
    json!({"tools": tools})
}

pub fn tools_markdown(r: &Registry) -> String {
    let mut out = String::new();
    out.push_str("# Assay tools\n\n");
    out.push_str("Generated from the tool registry by `assay tools --markdown`; do not edit by hand.\n");
    out.push_str("Every example below is a script that the test suite runs; its asserts pass.\n\n");
    for (cat, sigs) in categories(r) {
        let _ = writeln!(out, "## {cat}\n");
        for s in sigs {
            let _ = writeln!(out, "### `{}`\n\n```\n{}\n```\n\n{}\n", s.name, s.render(), s.doc);
            if let Some(var) = s.requires {
                let _ = writeln!(out, "Needs `{var}` to be set; its example runs only where it is.\n");
            }
            if !s.params.is_empty() {
                out.push_str("| parameter | type | default | meaning |\n|---|---|---|---|\n");
                for p in &s.params {
                    let d = match &p.default {
                        Default::Required => "required".to_string(),
                        Default::Value(v) => format!("`{}`", v.to_repr()),
                    };
                    let _ = writeln!(out, "| `{}` | {} | {} | {} |", p.name, p.ty, d, p.doc);
                }
                out.push('\n');
            }
            for ex in &s.examples {
                let _ = writeln!(out, "```assay\n{ex}\n```\n");
            }
        }
    }
    out
}
