// Validate hf-inference requests and responses on the client, with the server's own schemas
// (the bundle of core/schemas/bundle/, copied in when the package is built), over ajv's
// JSON Schema 2020-12 draft. Values that depend on the model are checked by the server only.
"use strict";
const Ajv2020 = require("ajv/dist/2020");
const index = require("./schemas/index.json");

// HF_TASK aliases the server accepts, as the schema each one uses
const ALIASES = {
  "sentiment-analysis": "text-classification",
  ner: "token-classification",
  conversational: "text-generation",
};

const ajv = new Ajv2020({ allErrors: true, strict: false });
const cache = new Map();

class ValidationError extends Error {
  constructor(task, path, message) {
    super(`invalid ${task} payload at ${path}: ${message}`);
    this.name = "ValidationError";
    this.task = task;
    this.path = path;
    this.detail = message;
  }
}

function tasks() {
  return Object.keys(index.tasks).sort();
}

function validator(task, part) {
  const name = ALIASES[task] || task;
  const key = `${name} ${part}`;
  if (!cache.has(key)) {
    const entry = index.tasks[name];
    if (!entry) throw new Error(`unknown task ${task}; known: ${tasks().join(", ")}`);
    const bundle = require(`./schemas/${entry.file}`);
    if (!ajv.getSchema(bundle.$id)) ajv.addSchema(bundle);
    cache.set(key, ajv.getSchema(bundle.$id + entry[part]));
  }
  return cache.get(key);
}

// "/parameters/top_k" -> "$.parameters.top_k" (the path Python's jsonschema names)
function jsonPath(pointer) {
  return "$" + pointer.split("/").slice(1).map((p) => {
    const k = p.replace(/~1/g, "/").replace(/~0/g, "~");
    return /^\d+$/.test(k) ? `[${k}]` : `.${k}`;
  }).join("");
}

function check(task, part, value) {
  const v = validator(task, part);
  if (!v(value)) {
    // a oneOf/anyOf failure only says no branch matched; the deepest error says what to fix
    const leaves = v.errors.filter((e) => !["oneOf", "anyOf", "if"].includes(e.keyword));
    const depth = (e) => (e.instancePath.match(/\//g) || []).length;
    const e = (leaves.length ? leaves : v.errors).reduce((a, b) => (depth(b) > depth(a) ? b : a));
    throw new ValidationError(task, jsonPath(e.instancePath), e.message);
  }
}

module.exports = {
  ValidationError,
  tasks,
  validate: (task, payload) => check(task, "request", payload),
  validateResponse: (task, body) => check(task, "response", body),
  isValid: (task, payload) => validator(task, "request")(payload),
};
