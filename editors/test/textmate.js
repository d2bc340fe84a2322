// Tokenizes scripts with the TextMate grammar as VS Code does
// (vscode-textmate and vscode-oniguruma, found through NODE_PATH) and
// prints, per script, each token's line, UTF-16 start and end, and
// scopes, and whether the grammar is back at its first state at the end
// (no string, raw string or interpolation left open).
// Usage: node textmate.js GRAMMAR FILE...
"use strict";
const fs = require("fs");
const path = require("path");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

async function main() {
  const [grammarPath, ...files] = process.argv.slice(2);
  const wasm = fs.readFileSync(path.join(path.dirname(require.resolve("vscode-oniguruma")), "onig.wasm")).buffer;
  await oniguruma.loadWASM(wasm);
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (s) => new oniguruma.OnigScanner(s),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    // Only Assay's own grammar: embedded languages (text.xml) are the
    // editor's, and are left out here.
    loadGrammar: async (scope) =>
      scope === "source.assay" ? vsctm.parseRawGrammar(fs.readFileSync(grammarPath, "utf8"), grammarPath) : null,
  });
  const grammar = await registry.loadGrammar("source.assay");
  const out = [];
  for (const file of files) {
    const lines = fs.readFileSync(file, "utf8").split("\n");
    let stack = vsctm.INITIAL;
    const tokens = [];
    lines.forEach((line, n) => {
      const r = grammar.tokenizeLine(line, stack);
      for (const t of r.tokens) tokens.push([n, t.startIndex, t.endIndex, t.scopes.slice(1)]);
      stack = r.ruleStack;
    });
    out.push({ file, tokens, closed: stack.depth === 1, depth: stack.depth });
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
