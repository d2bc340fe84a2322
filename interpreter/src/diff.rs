//! `assay diff A B`: what changed between two runs, record by record and
//! assert by assert, read from their results.json.

use serde_json::{json, Value as Json};

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Added { name: String, new: Json },
    Removed { name: String, old: Json },
    Changed { name: String, old: Json, new: Json },
}

impl Change {
    pub fn to_json(&self) -> Json {
        match self {
            Change::Added { name, new } => json!({"kind": "added", "name": name, "new": new}),
            Change::Removed { name, old } => json!({"kind": "removed", "name": name, "old": old}),
            Change::Changed { name, old, new } => {
                json!({"kind": "changed", "name": name, "old": old, "new": new})
            }
        }
    }
    pub fn to_text(&self) -> String {
        let short = |j: &Json| {
            let s = j.to_string();
            if s.len() > 120 {
                format!("{}…", &s[..s.char_indices().nth(119).map(|(i, _)| i).unwrap_or(s.len())])
            } else {
                s
            }
        };
        match self {
            Change::Added { name, new } => format!("+ {name}: {}", short(new)),
            Change::Removed { name, old } => format!("- {name}: {}", short(old)),
            Change::Changed { name, old, new } => {
                format!("~ {name}: {} -> {}", short(old), short(new))
            }
        }
    }
}

/// Compares two results.json documents.
pub fn diff_results(a: &Json, b: &Json) -> Vec<Change> {
    let mut out = Vec::new();
    let empty = serde_json::Map::new();
    let ra = a.get("records").and_then(|r| r.as_object()).unwrap_or(&empty);
    let rb = b.get("records").and_then(|r| r.as_object()).unwrap_or(&empty);
    let mut names: Vec<&String> = ra.keys().chain(rb.keys()).collect();
    names.sort();
    names.dedup();
    for n in names {
        match (ra.get(n), rb.get(n)) {
            (Some(x), Some(y)) if x != y => {
                out.push(Change::Changed { name: format!("record {n}"), old: x.clone(), new: y.clone() })
            }
            (Some(x), None) => out.push(Change::Removed { name: format!("record {n}"), old: x.clone() }),
            (None, Some(y)) => out.push(Change::Added { name: format!("record {n}"), new: y.clone() }),
            _ => {}
        }
    }
    // Asserts are matched by their claim text.
    let key = |x: &Json| x.get("expr").and_then(|e| e.as_str()).unwrap_or("").to_string();
    let aa: Vec<Json> = a.get("asserts").and_then(|x| x.as_array()).cloned().unwrap_or_default();
    let ab: Vec<Json> = b.get("asserts").and_then(|x| x.as_array()).cloned().unwrap_or_default();
    for x in &aa {
        let k = key(x);
        match ab.iter().find(|y| key(y) == k) {
            None => out.push(Change::Removed {
                name: format!("assert {k}"),
                old: x.get("passed").cloned().unwrap_or(Json::Null),
            }),
            Some(y) if x.get("passed") != y.get("passed") => out.push(Change::Changed {
                name: format!("assert {k}"),
                old: x.get("passed").cloned().unwrap_or(Json::Null),
                new: y.get("passed").cloned().unwrap_or(Json::Null),
            }),
            _ => {}
        }
    }
    for y in &ab {
        let k = key(y);
        if !aa.iter().any(|x| key(x) == k) {
            out.push(Change::Added {
                name: format!("assert {k}"),
                new: y.get("passed").cloned().unwrap_or(Json::Null),
            });
        }
    }
    for field in ["status", "error"] {
        let (x, y) = (a.get(field).cloned().unwrap_or(Json::Null), b.get(field).cloned().unwrap_or(Json::Null));
        if x != y {
            out.push(Change::Changed { name: field.to_string(), old: x, new: y });
        }
    }
    out
}
