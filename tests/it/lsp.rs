//! `assay lsp` through its protocol: a client on an in-memory connection
//! (the same messages an editor sends over stdio) opens and edits a
//! script and asks for diagnostics, hover, completion, signature help,
//! definitions, symbols and formatting; and the `assay lsp` command itself
//! answers an editor's first exchange over real pipes.

use std::io::{Read, Write};
use std::time::Duration;

use lsp_server::{Connection, Message, Notification, Request, RequestId};
use serde_json::{json, Value as Json};

use crate::support::assay_bin;

struct Client {
    conn: Connection,
    next: i32,
}

impl Client {
    fn request(&mut self, method: &str, params: Json) -> Json {
        self.next += 1;
        let id = RequestId::from(self.next);
        self.conn.sender.send(Message::Request(Request::new(id.clone(), method.into(), params))).unwrap();
        loop {
            match self.conn.receiver.recv_timeout(Duration::from_secs(30)).expect("an answer") {
                Message::Response(r) if r.id == id => return r.result.unwrap_or(Json::Null),
                _ => continue,
            }
        }
    }

    fn notify(&self, method: &str, params: Json) {
        self.conn.sender.send(Message::Notification(Notification::new(method.into(), params))).unwrap();
    }

    /// The next diagnostics published.
    fn diagnostics(&self) -> Json {
        loop {
            match self.conn.receiver.recv_timeout(Duration::from_secs(30)).expect("diagnostics") {
                Message::Notification(n) if n.method == "textDocument/publishDiagnostics" => return n.params,
                _ => continue,
            }
        }
    }
}

const URI: &str = "file:///tmp/work/probe.assay";

fn at(line: u32, character: u32) -> Json {
    json!({"textDocument": {"uri": URI}, "position": {"line": line, "character": character}})
}

#[test]
fn the_server_answers_an_editor_through_its_protocol() {
    let registry = assay_stdlib::registry();
    let (server_side, client_side) = Connection::memory();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut server = assay::lsp::Server::new(&registry);
            server.serve(&server_side).unwrap();
        });
        let mut c = Client { conn: client_side, next: 0 };
        let init = c.request("initialize", json!({"capabilities": {}}));
        assert_eq!(init["capabilities"]["hoverProvider"], true, "{init}");
        c.notify("initialized", json!({}));

        // An error on line 3 (0-based 2): an unknown name, with its help.
        let bad = "let xs = [3, 1, 2]\nlet top = top_k(xs, 2)\nshow \"t\", tpo\n";
        c.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": URI, "languageId": "assay", "version": 1, "text": bad}}),
        );
        let d = c.diagnostics();
        let first = &d["diagnostics"][0];
        assert_eq!(first["range"]["start"]["line"], 2, "{d}");
        assert_eq!(first["range"]["start"]["character"], 10, "{d}");
        let msg = first["message"].as_str().unwrap();
        assert!(msg.contains("unknown name `tpo`") && msg.contains("\nhelp: "), "{msg}");
        assert_eq!(first["severity"], 1);

        // Fixed (and badly laid out): no diagnostics.
        let text = "let xs=[3, 1, 2]\nlet top = top_k(xs, 2, largest: false)\nfn twice(x) {\n  return 2*x\n}\nshow \"t\", twice(top.values[0])\n";
        c.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": URI, "version": 2}, "contentChanges": [{"text": text}]}),
        );
        assert_eq!(c.diagnostics()["diagnostics"], json!([]));

        // Hover: a tool's signature and doc; a named parameter; a local.
        let h = c.request("textDocument/hover", at(1, 12));
        let v = h["contents"]["value"].as_str().unwrap();
        assert!(v.contains("top_k(xs: ") && v.contains("largest"), "{v}");
        let h = c.request("textDocument/hover", at(1, 25));
        assert!(h["contents"]["value"].as_str().unwrap().contains("(parameter of `top_k`)"), "{h}");
        let h = c.request("textDocument/hover", at(5, 11));
        assert!(h["contents"]["value"].as_str().unwrap().contains("fn twice(x)"), "{h}");

        // Completion inside a call: its named parameters not yet given,
        // the script's names and the tools.
        let items = c.request("textDocument/completion", at(1, 37));
        let labels: Vec<&str> = items.as_array().unwrap().iter().filter_map(|i| i["label"].as_str()).collect();
        assert!(labels.contains(&"twice") && labels.contains(&"xs") && labels.contains(&"mean"), "{labels:?}");
        assert!(!labels.contains(&"largest:"), "a parameter already given is not offered: {labels:?}");

        // Signature help: the second argument of top_k.
        let sh = c.request("textDocument/signatureHelp", at(1, 20));
        assert_eq!(sh["activeParameter"], 1, "{sh}");
        assert!(sh["signatures"][0]["label"].as_str().unwrap().starts_with("top_k("), "{sh}");

        // Go to definition: `twice` at its use -> its fn; `x` -> the parameter.
        let def = c.request("textDocument/definition", at(5, 11));
        assert_eq!(def["range"]["start"], json!({"line": 2, "character": 3}), "{def}");
        let def = c.request("textDocument/definition", at(3, 11));
        assert_eq!(def["range"]["start"], json!({"line": 2, "character": 9}), "{def}");

        // Symbols: the top-level names.
        let syms = c.request("textDocument/documentSymbol", json!({"textDocument": {"uri": URI}}));
        let names: Vec<&str> = syms.as_array().unwrap().iter().filter_map(|s| s["name"].as_str()).collect();
        assert_eq!(names, ["xs", "top", "twice"]);

        // Formatting: one edit, the whole text as `assay fmt` writes it.
        let edits = c.request(
            "textDocument/formatting",
            json!({"textDocument": {"uri": URI}, "options": {"tabSize": 2, "insertSpaces": true}}),
        );
        assert_eq!(edits[0]["newText"], assay_grammar::format(text).unwrap(), "{edits}");
        assert!(edits[0]["newText"].as_str().unwrap().starts_with("let xs = [3, 1, 2]\n"));

        // After a dot: a record's fields, a module's functions (the rhai
        // file beside the script).
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("h.rhai"),
            "fn half(x) { x / 2.0 }\nfn twice(x) { x * 2.0 }\nfn _hidden() { 0 }\n",
        )
        .unwrap();
        let uri2 = format!("file://{}/m.assay", dir.path().display());
        let text2 = "use \"h.rhai\" as h\nlet r = {alpha: 1, beta: 2}\nlet a = r.\nlet b = h.\n";
        c.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri2, "languageId": "assay", "version": 1, "text": text2}}),
        );
        let _ = c.diagnostics();
        let labels = |items: Json| -> Vec<String> {
            items.as_array().unwrap().iter().filter_map(|i| i["label"].as_str().map(String::from)).collect()
        };
        let fields = c.request(
            "textDocument/completion",
            json!({"textDocument": {"uri": uri2}, "position": {"line": 2, "character": 10}}),
        );
        assert_eq!(labels(fields), ["alpha", "beta"]);
        let fns = c.request(
            "textDocument/completion",
            json!({"textDocument": {"uri": uri2}, "position": {"line": 3, "character": 10}}),
        );
        assert_eq!(labels(fns), ["half", "twice"]);

        let _ = c.request("shutdown", Json::Null);
        c.notify("exit", Json::Null);
    });
}

fn frame(body: &Json) -> Vec<u8> {
    let b = body.to_string();
    format!("Content-Length: {}\r\n\r\n{b}", b.len()).into_bytes()
}

#[test]
fn assay_lsp_speaks_over_stdio() {
    let mut child = std::process::Command::new(assay_bin())
        .arg("lsp")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for m in [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}),
        json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
        json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": URI, "languageId": "assay", "version": 1, "text": "let x = mean([1, 2]\n"}}}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}),
        json!({"jsonrpc": "2.0", "method": "exit"}),
    ] {
        stdin.write_all(&frame(&m)).unwrap();
    }
    drop(stdin);
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(out.contains("\"capabilities\"") && out.contains("publishDiagnostics"), "{out}");
    assert!(out.contains("assay::syntax"), "the unclosed call is reported: {out}");
}

/// Neovim (Debian's package), headless, with its built-in LSP client and
/// no configuration of the user's: opening a script with an error shows
/// the diagnostic at its line, and hover returns the tool's doc. Skipped
/// where Neovim is not installed, and required where
/// ASSAY_REQUIRE_NVIM=1 (CI installs it).
#[test]
fn neovim_shows_the_diagnostic_and_the_hover() {
    if std::process::Command::new("nvim").arg("--version").output().is_err() {
        assert!(std::env::var("ASSAY_REQUIRE_NVIM").is_err(), "ASSAY_REQUIRE_NVIM=1 but nvim is not installed");
        eprintln!("skipped: nvim is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("probe.assay"), "let xs = [3, 1, 2]\nlet top = top_k(xs, 2)\nshow \"t\", tpo\n").unwrap();
    let lua = format!(
        r#"local log = io.open("{log}", "w")
vim.cmd("edit {script}")
local buf = vim.api.nvim_get_current_buf()
local id = vim.lsp.start_client({{ name = "assay", cmd = {{ "{bin}", "lsp" }}, root_dir = "{dir}" }})
vim.lsp.buf_attach_client(buf, id)
vim.wait(20000, function() return #vim.diagnostic.get(buf) > 0 end, 50)
for _, x in ipairs(vim.diagnostic.get(buf)) do
  log:write(string.format("diagnostic %d:%d %s\n", x.lnum + 1, x.col + 1, x.message:gsub("\n", " | ")))
end
local params = {{ textDocument = {{ uri = vim.uri_from_bufnr(buf) }}, position = {{ line = 1, character = 12 }} }}
for _, r in pairs(vim.lsp.buf_request_sync(buf, "textDocument/hover", params, 10000) or {{}}) do
  if r.result then log:write("hover " .. r.result.contents.value:gsub("\n", " | ") .. "\n") end
end
vim.lsp.stop_client(id)
log:close()
vim.cmd("qa!")
"#,
        log = d.join("session.log").display(),
        script = d.join("probe.assay").display(),
        bin = assay_bin().display(),
        dir = d.display(),
    );
    std::fs::write(d.join("check.lua"), lua).unwrap();
    let out = std::process::Command::new("timeout")
        .args(["120", "nvim", "--headless", "-u", "NONE", "-c"])
        .arg(format!("luafile {}", d.join("check.lua").display()))
        .output()
        .unwrap();
    let log = std::fs::read_to_string(d.join("session.log")).unwrap_or_default();
    assert!(
        log.contains("diagnostic 3:11 unknown name `tpo` | help: "),
        "{log}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(log.contains("hover ``` | top_k(xs: ") && log.contains("The k largest numbers"), "{log}");
    eprintln!("{log}");
}
