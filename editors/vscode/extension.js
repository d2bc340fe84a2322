// Starts `assay lsp` for .assay files (the `assay.path` setting names the
// command) through vscode-languageclient; highlighting is the TextMate
// grammar in syntaxes/.
"use strict";
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("assay").get("path") || "assay";
  client = new LanguageClient(
    "assay",
    "Assay",
    { command, args: ["lsp"] },
    { documentSelector: [{ scheme: "file", language: "assay" }] }
  );
  context.subscriptions.push({ dispose: () => client && client.stop() });
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
