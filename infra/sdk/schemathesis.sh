#!/usr/bin/env bash
# Fuzzes `serve` with schemathesis (PyPI, pinned below), one task at a time: starts the debug
# `serve` on a fixture model of every task the container serves (tests/fixtures/models), reads the
# task's OpenAPI document from GET /openapi.json and sends a bounded number of generated requests
# (the schema's examples, its boundary values, random valid and invalid bodies), checking that no
# answer is a 5xx, and that every status, content type and JSON body is one the document declares.
# A failure names the task, the request and the check; the script exits non-zero.
#
#   bash infra/sdk/schemathesis.sh                 # every task (~2-3 min on 2 cores)
#   bash infra/sdk/schemathesis.sh fill-mask       # some tasks
#   HF_SCHEMATHESIS_EXAMPLES=200 bash infra/sdk/schemathesis.sh text-generation
#
# Needs python3 with venv (schemathesis is installed into a fresh venv here) and cargo (the debug
# `serve` is built unless HF_SERVE_BIN names one). Reproducible: a fixed seed, one worker.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
version=4.32.5
examples=${HF_SCHEMATHESIS_EXAMPLES:-25}
seed=${HF_SCHEMATHESIS_SEED:-20241204}

# task, fixture model: one model per task (the alias tasks read the same schemas; conversational
# is text-generation with a chat template)
pairs=(
  "feature-extraction feature-extraction-tiny"
  "text-classification text-classification"
  "zero-shot-classification zero-shot-classification"
  "token-classification token-classification"
  "question-answering question-answering"
  "table-question-answering table-question-answering"
  "fill-mask fill-mask"
  "text-generation text-generation"
  "conversational llama-text-generation"
  "text2text-generation text2text-generation"
  "summarization summarization"
  "translation translation-t5"
  "image-classification image-classification"
  "image-segmentation image-segmentation"
  "object-detection object-detection"
  "zero-shot-image-classification zero-shot-image-classification"
)
wanted=("$@")

# HF_SERVE_BIN: a serve binary already built (CI passes the one `cargo test` just built)
if [ -n "${HF_SERVE_BIN:-}" ]; then
  serve=$HF_SERVE_BIN
else
  cargo build --locked -q -p hf-inference-sagemaker --bin serve
  serve=$repo/target/debug/serve
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/hf-schemathesis.XXXXXX")
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$version" >&2
st="$work/venv/bin/schemathesis"
echo "schemathesis $version: $examples examples per operation and phase, seed $seed" >&2

failed=()
ran=0
for pair in "${pairs[@]}"; do
  read -r task model <<<"$pair"
  if [ ${#wanted[@]} -gt 0 ] && [[ " ${wanted[*]} " != *" $task "* ]]; then continue; fi
  log="$work/$task.serve.log"
  # generation bounded so that a generated request cannot run for minutes (the bound itself is a
  # documented 400); the logs only at warn, so the server's output stays short
  HF_MAX_NEW_TOKENS=16 SAGEMAKER_MODEL_SERVER_TIMEOUT=60 RUST_LOG=warn \
    "$serve" --model-dir "tests/fixtures/models/$model" --task "$task" --port 0 --bind 127.0.0.1 \
    >"$log" 2>&1 &
  pid=$!
  addr=
  for _ in $(seq 1 600); do # the address first, then a healthy /ping: 60 s at most
    if [ -z "$addr" ]; then
      addr=$(sed -n 's/^listening on //p' "$log" | head -n 1)
    elif curl -fsS -o /dev/null "http://$addr/ping" 2>/dev/null; then
      break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if [ -z "$addr" ] || ! curl -fsS -o /dev/null "http://$addr/ping" 2>/dev/null; then
    echo "error: serve did not become healthy for $task ($model):" >&2
    sed 's/^/  | /' "$log" >&2
    failed+=("$task (did not start)")
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=
    continue
  fi
  start=$SECONDS
  out="$work/$task.schemathesis.log"
  # run from the scratch folder, with no example database: nothing is written into the repository
  if (cd "$work" && "$st" run "http://$addr/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing --max-examples "$examples" --seed "$seed" --workers 1 \
    --request-timeout 60 --suppress-health-check all --no-shrink --output-truncate true \
    --generation-database none --no-color) >"$out" 2>&1; then
    verdict=passed
  else
    verdict=FAILED
    failed+=("$task")
  fi
  ran=$((ran + 1))
  summary=$(grep -E "(API Operations|Test cases|Failures|Errors|Warnings):|passed|failed" "$out" | sed "s/^[[:space:]]*//" | tr -s " " | paste -sd";" - || true)
  echo "$task ($model): $verdict in $((SECONDS - start)) s: ${summary:-see below}"
  if [ "$verdict" = FAILED ]; then
    sed 's/^/  | /' "$out"
    echo "  serve's log:"
    tail -n 20 "$log" | sed 's/^/  | /'
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "error: serve for $task exited during the run:" >&2
    tail -n 20 "$log" | sed 's/^/  | /' >&2
    failed+=("$task (serve exited)")
  fi
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=
done
if [ "$ran" -eq 0 ] && [ ${#failed[@]} -eq 0 ]; then
  echo "error: no task matched: ${wanted[*]}" >&2
  exit 1
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "schemathesis: $ran tasks run, failed: ${failed[*]}" >&2
  exit 1
fi
echo "schemathesis: $ran tasks, no 5xx and every answer as the document says"
