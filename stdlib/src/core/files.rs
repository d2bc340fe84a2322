//! Reading files the script names. Every read goes through the run's
//! sandbox (allowed roots, symlinks resolved) and its digest is recorded in
//! the run's manifest.

use std::collections::BTreeMap;
use std::sync::Arc;

use assay_interpreter::{Bound, ToolCtx, ToolError, Type, Value};

use crate::core::declare::{tool, ToolResult};

/// Files larger than this are refused by the text readers.
const MAX_TEXT_BYTES: usize = 64 << 20;

fn text_of(path: &Bound<String>, ctx: &mut dyn ToolCtx) -> Result<String, ToolError> {
    let bytes = ctx.read_file(path).map_err(|e| e.at(path.name()))?;
    if bytes.len() > MAX_TEXT_BYTES {
        return Err(path
            .error(format!("`{path}` is {} bytes, more than the {MAX_TEXT_BYTES} a text reader takes", bytes.len())));
    }
    String::from_utf8(bytes).map_err(|_| path.error(format!("`{path}` is not UTF-8 text")))
}

tool! {
    /// The contents of a text file under the script's allowed roots.
    ///
    /// ```assay
    /// assert read_text("fixtures/notes.txt") == "hello assay\n"
    /// ```
    read_text in Files -> Type::Str;
    {
        /// path relative to the script's folder
        path: String,
    }
    read_text
}

fn read_text(p: read_text::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    Ok(Value::str(text_of(&p.path, ctx)?))
}

tool! {
    /// The lines of a text file, without line endings; empty lines dropped.
    ///
    /// ```assay
    /// let lines = read_lines("fixtures/prompts.txt")
    /// assert lines == ["The capital of France is", "1, 2, 3,"]
    /// ```
    read_lines in Files -> Type::list(Type::Str);
    {
        /// path relative to the script's folder
        path: String,
    }
    read_lines
}

fn read_lines(p: read_lines::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let t = text_of(&p.path, ctx)?;
    Ok(Value::list(t.lines().map(|l| l.trim_end_matches('\r')).filter(|l| !l.is_empty()).map(Value::str).collect()))
}

fn from_json(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Null => Value::None,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Num(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Value::str(s),
        serde_json::Value::Array(items) => Value::list(items.iter().map(from_json).collect()),
        serde_json::Value::Object(m) => {
            Value::Record(Arc::new(m.iter().map(|(k, v)| (k.clone(), from_json(v))).collect::<BTreeMap<_, _>>()))
        }
    }
}

tool! {
    /// Parses a JSON file into lists, records, numbers, strings, bools and none. A .jsonl file gives a
    /// list, one item per line.
    ///
    /// ```assay
    /// let cfg = read_json("fixtures/config.json")
    /// assert cfg.threshold == 0.5
    /// assert cfg.layers == ["a", "b"]
    /// ```
    read_json in Files -> Type::Any;
    {
        /// path relative to the script's folder
        path: String,
    }
    read_json
}

fn read_json(p: read_json::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let path = &p.path;
    let t = text_of(&p.path, ctx)?;
    if path.ends_with(".jsonl") {
        let mut out = Vec::new();
        for (i, line) in t.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let j: serde_json::Value =
                serde_json::from_str(line).map_err(|e| p.path.error(format!("`{path}` line {}: {e}", i + 1)))?;
            out.push(from_json(&j));
        }
        return Ok(Value::list(out));
    }
    let j: serde_json::Value =
        serde_json::from_str(&t).map_err(|e| p.path.error(format!("`{path}` is not valid JSON: {e}")))?;
    Ok(from_json(&j))
}
