//! `assay lsp`: a language server over standard input and output, on the
//! same parser and checker as `assay check`: every diagnostic (with its
//! help) as the script changes; hover for tools (signature and doc),
//! parameters and the script's own names; completion of tools, keywords,
//! the script's names, a tool's named parameters, a record's fields and a
//! `use` module's functions; signature help; go to
//! definition of `let`s, functions, parameters, loop variables and `use`
//! modules; document symbols; formatting (`assay fmt`).
//!
//! Positions follow the protocol: lines from 0, columns in UTF-16 code
//! units.

use std::collections::HashMap;

use assay_grammar::{Expr, ExprKind, FnBody, FnDef, Program, Span, Stmt, StmtKind};
use assay_interpreter::{check, Diag, Registry, Severity, SourceFile};
use lsp_server::{Connection, Message, Notification, Request, RequestId, Response};
use lsp_types as lt;
use serde_json::{json, Value as Json};

const KEYWORDS: &[&str] = &[
    "let", "fn", "if", "else", "for", "in", "return", "break", "continue", "seed", "use", "as", "show", "record",
    "assert", "true", "false", "none", "and", "or", "not",
];

/// A line index of one text: byte offsets and UTF-16 positions both ways.
struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { text, starts }
    }

    fn position(&self, offset: usize) -> lt::Position {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|s| *s <= offset).saturating_sub(1);
        let start = self.starts[line];
        let col: usize = self.text.get(start..offset).map_or(0, |s| s.chars().map(char::len_utf16).sum());
        lt::Position::new(line as u32, col as u32)
    }

    fn offset(&self, p: lt::Position) -> usize {
        let Some(&start) = self.starts.get(p.line as usize) else { return self.text.len() };
        let end = self.starts.get(p.line as usize + 1).copied().unwrap_or(self.text.len());
        let mut units = 0;
        for (i, c) in self.text[start..end].char_indices() {
            if units >= p.character as usize {
                return start + i;
            }
            units += c.len_utf16();
        }
        end
    }

    fn range(&self, span: Span) -> lt::Range {
        lt::Range::new(self.position(span.start), self.position(span.end))
    }
}

/// The word (a name) at `offset`, and where it starts.
fn word_at(text: &str, offset: usize) -> Option<(usize, &str)> {
    let b = text.as_bytes();
    let is = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut s = offset.min(b.len());
    while s > 0 && is(b[s - 1]) {
        s -= 1;
    }
    let mut e = offset.min(b.len());
    while e < b.len() && is(b[e]) {
        e += 1;
    }
    (s < e).then(|| (s, &text[s..e]))
}

/// A name the script binds: what, where, and how (for hover).
#[derive(Debug, Clone)]
struct Binding {
    name: String,
    span: Span,
    kind: &'static str,
    /// The statement (or parameter list) that binds it, for hover.
    detail: String,
    top_level: bool,
}

fn bindings(text: &str, program: &Program) -> Vec<Binding> {
    let mut out = Vec::new();
    for s in &program.stmts {
        bind_stmt(text, s, true, &mut out);
    }
    out
}

fn first_line(text: &str, span: Span) -> String {
    text.get(span.start..span.end).unwrap_or("").lines().next().unwrap_or("").trim_end_matches('{').trim().to_string()
}

fn bind_stmt(text: &str, s: &Stmt, top: bool, out: &mut Vec<Binding>) {
    let mut add = |name: &assay_grammar::Ident, kind: &'static str, detail: String| {
        out.push(Binding { name: name.node.clone(), span: name.span, kind, detail, top_level: top });
    };
    match &s.node {
        StmtKind::Let { name, value } => {
            add(name, "let", first_line(text, s.span));
            bind_expr(text, value, out);
        }
        StmtKind::Use { alias, .. } => add(alias, "module", first_line(text, s.span)),
        StmtKind::Fn(f) => {
            if let Some(n) = &f.name {
                add(n, "fn", first_line(text, f.span));
            }
            bind_fn(text, f, out);
        }
        StmtKind::For { index, var, body, .. } => {
            if let Some(i) = index {
                add(i, "loop index", first_line(text, s.span));
            }
            add(var, "loop variable", first_line(text, s.span));
            body.node.iter().for_each(|s| bind_stmt(text, s, false, out));
        }
        StmtKind::If { then, otherwise, .. } => {
            then.node.iter().for_each(|s| bind_stmt(text, s, false, out));
            if let Some(o) = otherwise {
                o.node.iter().for_each(|s| bind_stmt(text, s, false, out));
            }
        }
        _ => {}
    }
}

/// Lambdas' parameters and what their bodies bind.
fn bind_expr(text: &str, e: &Expr, out: &mut Vec<Binding>) {
    if let ExprKind::Lambda(f) = &e.node {
        bind_fn(text, f, out);
    }
}

/// A function's or lambda's parameters, and what its body binds.
fn bind_fn(text: &str, f: &FnDef, out: &mut Vec<Binding>) {
    for p in &f.params {
        out.push(Binding {
            name: p.name.node.clone(),
            span: p.name.span,
            kind: "parameter",
            detail: format!("parameter of {}", first_line(text, f.span)),
            top_level: false,
        });
    }
    match &f.body {
        FnBody::Block(b) => b.node.iter().for_each(|s| bind_stmt(text, s, false, out)),
        FnBody::Expr(e) => bind_expr(text, e, out),
    }
}

/// The binding of `name` that a use at `offset` most likely means: the
/// last one before it (a use before any binding: the first after it).
fn binding_for<'b>(all: &'b [Binding], name: &str, offset: usize) -> Option<&'b Binding> {
    let same: Vec<&Binding> = all.iter().filter(|b| b.name == name).collect();
    same.iter().rev().find(|b| b.span.start <= offset).or(same.first()).copied()
}

/// The call the cursor is inside: the tool's name and the argument index.
fn call_at(text: &str, offset: usize) -> Option<(String, usize, Vec<String>)> {
    let b = text.as_bytes();
    let mut depth = 0i32;
    let mut commas = 0;
    let mut i = offset.min(b.len());
    while i > 0 {
        i -= 1;
        match b[i] {
            b')' | b']' | b'}' => depth += 1,
            b'(' | b'[' | b'{' if depth > 0 => depth -= 1,
            b'(' => {
                let (_, name) = word_at(text, i)?;
                let args = text[i + 1..offset.min(b.len())].to_string();
                let named: Vec<String> = args
                    .split(',')
                    .filter_map(|a| a.split_once(':').map(|(n, _)| n.trim().to_string()))
                    .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                    .collect();
                return Some((name.to_string(), commas, named));
            }
            b'[' | b'{' => return None,
            b',' if depth == 0 => commas += 1,
            b'\n' if depth == 0 && i + 1 < offset && text[i..offset].trim().is_empty() => {}
            _ => {}
        }
    }
    None
}

/// `text` without the dots that wait for a field name (`r.` at the end of
/// a line, as other half-typed accesses are while one is completed).
fn without_dangling_dots(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        let dangling = c == '.'
            && i > 0
            && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b')' || b[i - 1] == b']')
            && b.get(i + 1).is_none_or(|n| n.is_ascii_whitespace());
        if !dangling {
            out.push(c);
        }
    }
    out
}

fn tool_doc(sig: &assay_interpreter::Signature) -> String {
    let params: Vec<String> = sig.params.iter().map(|p| format!("- `{}`: {}", p.name, p.doc)).collect();
    format!("```\n{}\n```\n\n{}\n\n{}", sig.render(), sig.doc, params.join("\n"))
}

/// The language server's state: the open documents and the tools.
pub struct Server<'r> {
    registry: &'r Registry,
    docs: HashMap<String, String>,
}

impl<'r> Server<'r> {
    pub fn new(registry: &'r Registry) -> Self {
        Server { registry, docs: HashMap::new() }
    }

    /// What the server offers, for `initialize`.
    pub fn capabilities() -> Json {
        json!({
            "textDocumentSync": 1,
            "hoverProvider": true,
            "completionProvider": {"triggerCharacters": ["(", ",", " "]},
            "signatureHelpProvider": {"triggerCharacters": ["(", ","]},
            "definitionProvider": true,
            "documentSymbolProvider": true,
            "documentFormattingProvider": true,
        })
    }

    /// Every diagnostic of a document, as the protocol has them.
    fn diagnostics(&self, uri: &str) -> Vec<lt::Diagnostic> {
        let Some(text) = self.docs.get(uri) else { return Vec::new() };
        let name = uri.rsplit('/').next().unwrap_or(uri);
        let file = SourceFile::new(name, text.as_str());
        let diags: Vec<Diag> = match assay_grammar::parse(text) {
            Err(e) => vec![Diag::from_syntax(&file, &e)],
            Ok(program) => check(&file, &program, self.registry, &Default::default()),
        };
        let lines = Lines::new(text);
        diags
            .iter()
            .map(|d| {
                let range = d.span.map_or_else(lt::Range::default, |s| lines.range(s));
                let mut message = d.message.clone();
                if let Some(h) = &d.help {
                    message.push_str("\nhelp: ");
                    message.push_str(h);
                }
                lt::Diagnostic {
                    range,
                    severity: Some(if d.severity == Severity::Warning {
                        lt::DiagnosticSeverity::WARNING
                    } else {
                        lt::DiagnosticSeverity::ERROR
                    }),
                    code: Some(lt::NumberOrString::String(d.code.as_str().to_string())),
                    source: Some("assay".into()),
                    message,
                    ..Default::default()
                }
            })
            .collect()
    }

    fn publish(&self, conn: &Connection, uri: &str) {
        let params = json!({"uri": uri, "diagnostics": self.diagnostics(uri)});
        let _ = conn
            .sender
            .send(Message::Notification(Notification::new("textDocument/publishDiagnostics".into(), params)));
    }

    fn notification(&mut self, conn: &Connection, n: Notification) {
        let uri = n.params.pointer("/textDocument/uri").and_then(Json::as_str).unwrap_or("").to_string();
        match n.method.as_str() {
            "textDocument/didOpen" => {
                let text = n.params.pointer("/textDocument/text").and_then(Json::as_str).unwrap_or("");
                self.docs.insert(uri.clone(), text.to_string());
                self.publish(conn, &uri);
            }
            "textDocument/didChange" => {
                // Full synchronisation: the last change is the whole text.
                let changes = n.params.get("contentChanges").and_then(Json::as_array);
                if let Some(text) = changes.and_then(|c| c.last()).and_then(|c| c.get("text")).and_then(Json::as_str) {
                    self.docs.insert(uri.clone(), text.to_string());
                    self.publish(conn, &uri);
                }
            }
            "textDocument/didClose" => {
                self.docs.remove(&uri);
            }
            _ => {}
        }
    }

    /// The answer to one request (null where there is none).
    pub fn request(&self, method: &str, params: &Json) -> Json {
        let uri = params.pointer("/textDocument/uri").and_then(Json::as_str).unwrap_or("");
        let Some(text) = self.docs.get(uri) else { return Json::Null };
        let lines = Lines::new(text);
        let pos: Option<lt::Position> = params.get("position").and_then(|p| serde_json::from_value(p.clone()).ok());
        let offset = pos.map(|p| lines.offset(p));
        let program = assay_grammar::parse(text).ok();
        let binds = program.as_ref().map(|p| bindings(text, p)).unwrap_or_default();
        let to_json = |v: Result<Json, serde_json::Error>| v.unwrap_or(Json::Null);
        match method {
            "textDocument/hover" => {
                let Some((start, word)) = offset.and_then(|o| word_at(text, o)) else { return Json::Null };
                let range = lines.range(Span::new(start, start + word.len()));
                let value = if let Some(b) = binding_for(&binds, word, start) {
                    format!("```assay\n{}\n```\n\n({})", b.detail, b.kind)
                } else if let Some((sig, _)) = self.registry.get(word) {
                    tool_doc(sig)
                } else if let Some((tool, _, _)) = call_at(text, start) {
                    // A named parameter: `k` in `top_k(xs, k: 3)`.
                    let Some((sig, _)) = self.registry.get(&tool) else { return Json::Null };
                    let Some(p) = sig.params.iter().find(|p| p.name == word) else { return Json::Null };
                    format!("`{}: {}` (parameter of `{}`)\n\n{}", p.name, p.ty, sig.name, p.doc)
                } else if KEYWORDS.contains(&word) {
                    format!("`{word}`: a keyword (docs/language.md)")
                } else {
                    return Json::Null;
                };
                json!({"contents": {"kind": "markdown", "value": value}, "range": range})
            }
            "textDocument/completion" => {
                if let Some(items) = offset.and_then(|o| self.members(uri, text, program.as_ref(), o)) {
                    return json!(items);
                }
                let mut items: Vec<Json> = Vec::new();
                if let Some((tool, _, named)) = offset.and_then(|o| call_at(text, o)) {
                    if let Some((sig, _)) = self.registry.get(&tool) {
                        for p in sig.params.iter().filter(|p| !named.iter().any(|n| n == p.name)) {
                            items.push(json!({"label": format!("{}:", p.name), "kind": 5, "detail": format!("{}", p.ty), "documentation": p.doc, "insertText": format!("{}: ", p.name)}));
                        }
                    }
                }
                let mut seen = std::collections::HashSet::new();
                for b in binds.iter().filter(|b| offset.is_none_or(|o| b.top_level || b.span.start <= o)) {
                    if seen.insert(b.name.clone()) {
                        items.push(
                            json!({"label": b.name, "kind": if b.kind == "fn" { 3 } else { 6 }, "detail": b.detail}),
                        );
                    }
                }
                for sig in self.registry.signatures() {
                    items.push(json!({"label": sig.name, "kind": 3, "detail": sig.render(), "documentation": {"kind": "markdown", "value": sig.doc}}));
                }
                items.extend(KEYWORDS.iter().map(|k| json!({"label": k, "kind": 14})));
                json!(items)
            }
            "textDocument/signatureHelp" => {
                let Some((tool, arg, _)) = offset.and_then(|o| call_at(text, o)) else { return Json::Null };
                let Some((sig, _)) = self.registry.get(&tool) else { return Json::Null };
                let params: Vec<Json> = sig
                    .params
                    .iter()
                    .map(|p| json!({"label": format!("{}: {}", p.name, p.ty), "documentation": p.doc}))
                    .collect();
                json!({"signatures": [{"label": sig.render(), "documentation": sig.doc, "parameters": params}],
                       "activeSignature": 0, "activeParameter": arg.min(sig.params.len().saturating_sub(1))})
            }
            "textDocument/definition" => {
                let Some((start, word)) = offset.and_then(|o| word_at(text, o)) else { return Json::Null };
                let Some(b) = binding_for(&binds, word, start) else { return Json::Null };
                if let (Some(p), "module") = (program.as_ref(), b.kind) {
                    // A module: its file, beside the script.
                    let path = p.stmts.iter().find_map(|s| match &s.node {
                        StmtKind::Use { path, alias } if alias.node == word => Some(path.node.clone()),
                        _ => None,
                    });
                    if let Some(path) = path {
                        let dir = uri.rsplit_once('/').map_or("", |(d, _)| d);
                        return json!({"uri": format!("{dir}/{path}"), "range": lt::Range::default()});
                    }
                }
                json!({"uri": uri, "range": lines.range(b.span)})
            }
            "textDocument/documentSymbol" => {
                let symbols: Vec<Json> = binds
                    .iter()
                    .filter(|b| b.top_level)
                    .map(|b| {
                        json!({"name": b.name, "kind": if b.kind == "fn" { 12 } else if b.kind == "module" { 2 } else { 13 },
                               "range": lines.range(b.span), "selectionRange": lines.range(b.span), "detail": b.detail})
                    })
                    .collect();
                json!(symbols)
            }
            "textDocument/formatting" => match assay_grammar::format(text) {
                Ok(f) if f != *text => to_json(serde_json::to_value(vec![lt::TextEdit::new(
                    lt::Range::new(lt::Position::new(0, 0), lines.position(text.len())),
                    f,
                )])),
                _ => json!([]),
            },
            _ => Json::Null,
        }
    }

    /// Completion after `name.`: a `use` module's functions (read from the
    /// module file beside the script) or the fields of a record the script
    /// built with a literal; None where the cursor is not after a dot.
    fn members(&self, uri: &str, text: &str, program: Option<&Program>, offset: usize) -> Option<Vec<Json>> {
        let start = word_at(text, offset).map_or(offset, |(s, _)| s);
        let before = text.get(..start)?;
        let owner_end = before.strip_suffix('.')?.len();
        let (_, owner) = word_at(text, owner_end.checked_sub(1)?)?;
        // Mid-edit the script rarely parses (`r.` wants a name): parse it
        // without the dot and the half-typed name.
        let repaired;
        let program = match program {
            Some(p) => p,
            None => {
                let without = format!("{}{}", &text[..owner_end], text.get(offset..).unwrap_or(""));
                repaired = assay_grammar::parse(&without)
                    .or_else(|_| assay_grammar::parse(&without_dangling_dots(&without)))
                    .ok()?;
                &repaired
            }
        };
        for s in &program.stmts {
            match &s.node {
                StmtKind::Use { path, alias } if alias.node == owner => {
                    let dir = uri.strip_prefix("file://").and_then(|p| p.rsplit_once('/')).map(|(d, _)| d)?;
                    let source = std::fs::read_to_string(std::path::Path::new(dir).join(&path.node)).ok()?;
                    let fns = source.lines().filter_map(|l| {
                        let rest = l.trim_start().strip_prefix("fn ")?;
                        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                        (!name.is_empty() && !name.starts_with('_')).then(|| {
                            json!({"label": name, "kind": 3, "detail": format!("{owner}: {}", l.trim().trim_end_matches('{').trim())})
                        })
                    });
                    return Some(fns.collect());
                }
                StmtKind::Let { name, value } if name.node == owner => {
                    if let ExprKind::Record(fields) = &value.node {
                        return Some(fields.iter().map(|(f, _)| json!({"label": f.node, "kind": 5})).collect());
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// Serves `conn` until the client shuts it down.
    pub fn serve(&mut self, conn: &Connection) -> Result<(), String> {
        conn.initialize(Self::capabilities()).map_err(|e| e.to_string())?;
        // After `shutdown` only `exit` ends the server; a repeated
        // `shutdown` (some clients send one more) is answered again.
        let mut shut = false;
        for msg in &conn.receiver {
            match msg {
                Message::Request(Request { id, method, .. }) if method == "shutdown" => {
                    shut = true;
                    respond(conn, id, Json::Null);
                }
                Message::Request(Request { id, .. }) if shut => {
                    let error = lsp_server::ResponseError {
                        code: lsp_server::ErrorCode::InvalidRequest as i32,
                        message: "the server is shutting down".into(),
                        data: None,
                    };
                    let _ = conn.sender.send(Message::Response(Response { id, result: None, error: Some(error) }));
                }
                Message::Request(Request { id, method, params }) => {
                    let result = self.request(&method, &params);
                    respond(conn, id, result);
                }
                Message::Notification(n) if n.method == "exit" => return Ok(()),
                Message::Notification(n) => self.notification(conn, n),
                Message::Response(_) => {}
            }
        }
        Ok(())
    }
}

fn respond(conn: &Connection, id: RequestId, result: Json) {
    let _ = conn.sender.send(Message::Response(Response { id, result: Some(result), error: None }));
}

/// `assay lsp`: the server on standard input and output.
pub fn cmd_lsp(registry: &Registry) -> u8 {
    let (conn, io) = Connection::stdio();
    let mut server = Server::new(registry);
    let served = server.serve(&conn);
    drop(conn);
    let joined = io.join();
    match (served, joined) {
        (Ok(()), Ok(())) => crate::out::EXIT_OK,
        (Err(e), _) => {
            eprintln!("assay lsp: {e}");
            crate::out::EXIT_USAGE
        }
        (_, Err(e)) => {
            eprintln!("assay lsp: {e}");
            crate::out::EXIT_USAGE
        }
    }
}
