#!/usr/bin/env bash
# Checks the OpenAPI document with openapi-spec-validator (PyPI). Builds the Python and npm packages of sdk/ with the schema bundle (core/schemas/bundle/),
# installs each into a fresh environment (a venv, jsonschema from PyPI; an empty npm project, ajv
# from the npm registry), runs both over every golden request (the repository's, and the reference
# toolkit's in $REF_ROOT/golden when that folder exists) and writes their verdicts, one JSON line
# per request {"set", "dir", "file", "line", "python", "js"}, to the file it prints. The Rust test
# `sdk_packages_agree_with_the_server_on_every_golden_request` (HF_TEST_SDK_VERDICTS=<that file>)
# compares them with the server's and prints the three counts of each set.
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
# the goldens: the repository's, and the reference toolkit's own recordings where this machine has
# them (../shared/reference/ writes them to $REF_ROOT/golden; a clean clone, as CI's, has none)
ref_golden=${REF_ROOT:-$HOME/.cache/hf-toolkit-reference}/golden
sets=("repository $repo/tests/fixtures/golden")
if compgen -G "$ref_golden/*.jsonl" >/dev/null; then
  sets+=("reference $ref_golden")
else
  echo "reference goldens: none at $ref_golden (not in a clean clone such as CI's): only the repository's goldens are counted" >&2
fi
for set in "${sets[@]}"; do
  read -r name dir <<<"$set"
  (cd "$work" && "$work/venv/bin/python" "$repo/infra/sdk/run_goldens.py" "$dir") >"$work/python-$name.jsonl"
done
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
for set in "${sets[@]}"; do
  read -r name dir <<<"$set"
  NODE_PATH="$work/npm/node_modules" node infra/sdk/run_goldens.js "$dir" >"$work/js-$name.jsonl"
done

# one verdicts file over both sets: {"set", "dir", "file", "line", "python", "js"} per request;
# the Python and JavaScript counts printed here, the server's by the schemas test
: >"$work/verdicts.jsonl"
for set in "${sets[@]}"; do
  read -r name dir <<<"$set"
  python3 - "$name" "$dir" "$work/python-$name.jsonl" "$work/js-$name.jsonl" >>"$work/verdicts.jsonl" <<'PY'
import json, sys
name, folder = sys.argv[1], sys.argv[2]
py = {(d["file"], d["line"]): d["valid"] for d in map(json.loads, open(sys.argv[3]))}
js = {(d["file"], d["line"]): d["valid"] for d in map(json.loads, open(sys.argv[4]))}
keys = sorted(set(py) | set(js))
for k in keys:
    print(json.dumps({"set": name, "dir": folder, "file": k[0], "line": k[1], "python": py.get(k), "js": js.get(k)}))
count = lambda d: sum(1 for v in d.values() if v is True)
print(f"{name} goldens ({folder}): {len(keys)} JSON requests; valid: python {count(py)}, javascript {count(js)}", file=sys.stderr)
PY
done
echo "$work/verdicts.jsonl"
