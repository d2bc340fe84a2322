//! `assay inspect model.onnx`: what a model contains, grouped so that a
//! person can find "the output of block 15" in a graph of thousands of nodes.

use assay::outln;
use std::collections::BTreeMap;
use std::path::Path;

use assay_interpreter::Value;
use assay_stdlib::methods::run::inspect_rows;
use assay_stdlib::onnx::{graph, model::Model};
use serde_json::json;
use sha2::Digest;

use assay::out::{EXIT_OK, EXIT_SCRIPT, EXIT_USAGE};

fn field(v: &Value, k: &str) -> Value {
    match v {
        Value::Record(r) => r.get(k).cloned().unwrap_or_default(),
        _ => Value::None,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::None => String::new(),
        Value::List(items) => format!("[{}]", items.iter().map(|x| x.to_text()).collect::<Vec<_>>().join(", ")),
        other => other.to_text(),
    }
}

/// The module a node belongs to: its name up to the last `/` (exporters
/// such as torch name nodes `/layer.3/conv/Conv`), or its op type.
fn module_of(node: &str, op: &str) -> String {
    match node.rfind('/') {
        Some(i) if i > 0 => node[..i].to_string(),
        _ => format!("({op})"),
    }
}

pub(crate) fn cmd_inspect(path: &Path, json_out: bool, pattern: Option<&str>) -> u8 {
    let fail = |msg: String, code: u8| {
        if json_out {
            outln!("{}", serde_json::to_string_pretty(&json!({"error": msg})).unwrap_or_default());
        } else {
            eprintln!("error: {msg}");
        }
        code
    };
    // An ONNX file is a protobuf, which cannot be over 2 GiB.
    let bytes = match assay_interpreter::read_regular_following(path, 2 << 30) {
        Ok(b) => b,
        Err(e) => return fail(format!("cannot read {e}"), EXIT_USAGE),
    };
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    let display = path.display().to_string();
    let model = match Model::load(path, &display, &bytes, sha.clone(), assay_stdlib::onnx::model::Provider::Cpu) {
        Ok(m) => m,
        Err(e) => return fail(format!("cannot load {display}: {e}"), EXIT_SCRIPT),
    };
    let rows = match inspect_rows(&model) {
        Ok(r) => r,
        Err(e) => return fail(e.to_string(), EXIT_SCRIPT),
    };
    let pat = match pattern.map(glob::Pattern::new).transpose() {
        Ok(p) => p,
        Err(e) => return fail(format!("bad --pattern: {e}"), EXIT_USAGE),
    };
    let rows: Vec<Value> =
        rows.into_iter().filter(|r| pat.as_ref().is_none_or(|p| p.matches(&field(r, "name").to_text()))).collect();
    let opsets: Vec<String> = model
        .proto
        .opset_import
        .iter()
        .map(|o| format!("{}:{}", if o.domain().is_empty() { "ai.onnx" } else { o.domain() }, o.version()))
        .collect();
    let nodes = model.proto.graph.as_ref().map(|g| g.node.len()).unwrap_or(0);
    let sub = graph::subgraph_nodes(&model.proto);
    let external = assay_stdlib::onnx::model::external_files(&model.proto);
    if json_out {
        let to_json = |v: &Value| -> serde_json::Value {
            json!({
                "name": field(v, "name").to_text(),
                "kind": field(v, "kind").to_text(),
                "op": field(v, "op").to_text(),
                "node": field(v, "node").to_text(),
                "dtype": field(v, "dtype").to_text(),
                "shape": match field(v, "shape") {
                    Value::List(items) => items.iter().map(|x| match x { Value::Num(n) => json!(*n as i64), other => json!(other.to_text()) }).collect::<Vec<_>>(),
                    _ => Vec::new(),
                },
                "module": module_of(&field(v, "node").to_text(), &field(v, "op").to_text()),
            })
        };
        let doc = json!({
            "path": display,
            "sha256": sha,
            "ir_version": model.proto.ir_version(),
            "producer": model.proto.producer_name(),
            "opsets": opsets,
            "nodes": nodes,
            "subgraph_nodes": sub,
            "external_data": external,
            "tensors": rows.iter().map(to_json).collect::<Vec<_>>(),
        });
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return EXIT_OK;
    }
    outln!("{display}");
    outln!("  sha256 {sha}");
    outln!(
        "  producer {} · IR {} · opsets {} · {nodes} nodes{}",
        if model.proto.producer_name().is_empty() { "unknown" } else { model.proto.producer_name() },
        model.proto.ir_version(),
        opsets.join(", "),
        if sub > 0 { format!(" (+{sub} inside If/Loop bodies, not hookable)") } else { String::new() }
    );
    if !external.is_empty() {
        outln!("  external data: {}", external.join(", "));
    }
    let line = |r: &Value| {
        format!(
            "{}  {} {}  {}",
            field(r, "name").to_text(),
            field(r, "dtype").to_text(),
            text(&field(r, "shape")),
            field(r, "op").to_text()
        )
    };
    for (title, kind) in [("inputs", "input"), ("outputs", "output")] {
        outln!("{title}:");
        for r in rows.iter().filter(|r| field(r, "kind").to_text() == kind) {
            outln!("  {}", line(r));
        }
    }
    let mut groups: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for r in rows.iter().filter(|r| field(r, "kind").to_text() == "intermediate") {
        let m = module_of(&field(r, "node").to_text(), &field(r, "op").to_text());
        if !groups.contains_key(&m) {
            order.push(m.clone());
        }
        groups.entry(m).or_default().push(r);
    }
    outln!("intermediate tensors ({}), by module:", groups.values().map(|v| v.len()).sum::<usize>());
    for m in order {
        let items = &groups[&m];
        outln!("  {m}  ({} tensors)", items.len());
        for r in items {
            outln!("    {}", line(r));
        }
    }
    EXIT_OK
}
