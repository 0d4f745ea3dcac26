#!/usr/bin/env bash
# Checks the OpenAPI document with openapi-spec-validator (PyPI). Builds the Python and npm packages of sdk/ with the schema bundle (core/schemas/bundle/),
# installs each into a fresh environment (a venv, jsonschema from PyPI; an empty npm project, ajv
# from the npm registry), runs both over every golden request and writes their verdicts, one JSON
# line per request {"file", "line", "python", "js"}, to the file it prints. The Rust test
# `sdk_packages_agree_with_the_server_on_every_golden_request` (HF_TEST_SDK_VERDICTS=<that file>)
# compares them with the server's and prints the three counts.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/hf-sdk.XXXXXX")
trap 'rm -rf "$work/py" "$work/js" "$work/venv" "$work/npm"' EXIT
python3 infra/schemas/bundle.py --check >&2

# Python: build a wheel from a copy holding the bundle, install it in a fresh venv
cp -r sdk/python "$work/py"
mkdir -p "$work/py/src/hf_inference_schemas/schemas"
cp core/schemas/bundle/*.json "$work/py/src/hf_inference_schemas/schemas/"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "$work/py" >&2
(cd "$work" && "$work/venv/bin/python" "$repo/infra/sdk/run_goldens.py" "$repo/tests/fixtures/golden") >"$work/python.jsonl"
# the OpenAPI 3.1 document served at GET /openapi.json, checked by an OpenAPI validator
"$work/venv/bin/pip" install -q --disable-pip-version-check "openapi-spec-validator>=0.7" >&2
"$work/venv/bin/python" -c "
import json, sys
from openapi_spec_validator import validate
doc = json.load(open(sys.argv[1]))
validate(doc)
# the validator resolves schema references lazily: resolve every one here
def refs(n):
    if isinstance(n, dict):
        for k, v in n.items():
            if k == '\$ref':
                yield v
            elif k not in ('examples', 'default', 'const', 'enum'):
                yield from refs(v)
    elif isinstance(n, list):
        for v in n:
            yield from refs(v)
for ref in set(refs(doc)):
    node = doc
    for part in ref.removeprefix('#/').split('/'):
        node = node[part]
print('core/schemas/bundle/openapi.json: a valid OpenAPI 3.1 document', file=sys.stderr)
" core/schemas/bundle/openapi.json

# npm: pack a copy holding the bundle, install the tarball into an empty project
cp -r sdk/js "$work/js"
mkdir -p "$work/js/schemas"
cp core/schemas/bundle/*.json "$work/js/schemas/"
tarball=$(cd "$work/js" && npm pack --silent 2>/dev/null | tail -n 1)
mkdir -p "$work/npm"
(cd "$work/npm" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund "$work/js/$tarball" typescript@5 >&2)
# the generated TypeScript declarations compile, and narrow a validated payload to the task's type
cat >"$work/npm/use.ts" <<'TS'
import { validate, TextGenerationRequest, ZeroShotClassificationRequest } from "hf-inference-schemas";
const body: unknown = { inputs: "Hello", parameters: { max_new_tokens: 16 } };
validate("text-generation", body);
const request: TextGenerationRequest = body;
const zsc: ZeroShotClassificationRequest = { inputs: "a", parameters: { candidate_labels: ["x"] } };
console.log(request, zsc);
TS
(cd "$work/npm" && npx --no-install tsc --noEmit --strict use.ts >&2)
NODE_PATH="$work/npm/node_modules" node infra/sdk/run_goldens.js tests/fixtures/golden >"$work/js.jsonl"

python3 - "$work/python.jsonl" "$work/js.jsonl" >"$work/verdicts.jsonl" <<'PY'
import json, sys
py = {(d["file"], d["line"]): d["valid"] for d in map(json.loads, open(sys.argv[1]))}
js = {(d["file"], d["line"]): d["valid"] for d in map(json.loads, open(sys.argv[2]))}
for k in sorted(set(py) | set(js)):
    print(json.dumps({"file": k[0], "line": k[1], "python": py.get(k), "js": js.get(k)}))
PY
echo "$work/verdicts.jsonl"
