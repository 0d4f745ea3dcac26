"""Validates every golden request with the installed Python package; prints one JSON line per
request: {"file", "line", "valid"}. Usage: python run_goldens.py tests/fixtures/golden"""
import base64
import json
import pathlib
import sys

import hf_inference_schemas as sdk

# the messages name the JSON path of what is wrong
try:
    sdk.validate("text-generation", {"inputs": "hi", "parameters": {"max_new_tokens": -1}})
    sys.exit("max_new_tokens -1 passed the Python package")
except sdk.ValidationError as e:
    assert e.path == "$.parameters.max_new_tokens", e
sdk.validate_response("text-classification", [{"label": "a", "score": 0.5}])

known = set(sdk.tasks()) | set(sdk.ALIASES)
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.jsonl")):
    for i, line in enumerate(f.read_text("utf-8").splitlines()):
        g = json.loads(line)
        ct = (g.get("request_content_type") or "").split(";")[0].strip().lower()
        if g.get("path") != "/invocations" or g.get("method") not in ("POST", "PUT"):
            continue
        if ct != "application/json" or g.get("request_body_encoding") == "elided":
            continue
        if g.get("hf_task") not in known:
            continue
        body = g.get("request_body") or ""
        if g.get("request_body_encoding") == "base64":
            body = base64.b64decode(body).decode("utf-8", "replace")
        try:
            doc = json.loads(body, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        except ValueError:
            continue
        print(json.dumps({"file": f.stem, "line": i, "valid": sdk.is_valid(g["hf_task"], doc)}))
