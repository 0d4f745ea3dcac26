// Validates every golden request with the installed npm package; prints one JSON line per
// request: {"file", "line", "valid"}. Usage: node run_goldens.js tests/fixtures/golden
"use strict";
const fs = require("fs");
const path = require("path");
const assert = require("assert");
const sdk = require("hf-inference-schemas");

// the messages name the JSON path of what is wrong
assert.throws(
  () => sdk.validate("text-generation", { inputs: "hi", parameters: { max_new_tokens: -1 } }),
  (e) => e instanceof sdk.ValidationError && e.path === "$.parameters.max_new_tokens",
);
sdk.validateResponse("text-classification", [{ label: "a", score: 0.5 }]);

const known = new Set([...sdk.tasks(), "sentiment-analysis", "ner", "conversational"]);
const dir = process.argv[2];
for (const name of fs.readdirSync(dir).filter((n) => n.endsWith(".jsonl")).sort()) {
  const lines = fs.readFileSync(path.join(dir, name), "utf8").split("\n");
  lines.forEach((line, i) => {
    if (!line) return;
    const g = JSON.parse(line);
    const ct = (g.request_content_type || "").split(";")[0].trim().toLowerCase();
    if (g.path !== "/invocations" || !["POST", "PUT"].includes(g.method)) return;
    if (ct !== "application/json" || g.request_body_encoding === "elided") return;
    if (!known.has(g.hf_task)) return;
    let body = g.request_body || "";
    if (g.request_body_encoding === "base64") body = Buffer.from(body, "base64").toString("utf8");
    let doc;
    try {
      doc = JSON.parse(body);
    } catch {
      return;
    }
    const file = name.replace(/\.jsonl$/, "");
    console.log(JSON.stringify({ file, line: i, valid: sdk.isValid(g.hf_task, doc) }));
  });
}
