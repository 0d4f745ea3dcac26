#!/usr/bin/env bash
# Memory and throughput of long jobs (asynchronous inference, batch transform): N JSON Lines
# (default 100 000) streamed through one POST /invocations of the release `serve`, then the same
# inputs as one JSON body ({"inputs": [...]}, run in parts of 64). Reports the server's resident
# memory before, its peak (VmHWM) after each request, the body size and the rate.
#   bash infra/bench-jsonlines.sh [N] [MODEL_DIR] [TASK]
# Defaults: the tiny BERT text classifier of tests/fixtures (measures the streaming path, not the
# model); pass a real model to see the model's share, e.g. $(bash infra/fetch-minilm.sh).
# Writes the results to a new dated file, docs/benchmarks/<YYYY-MM-DD-HHMM>-jsonlines.md (UTC, the
# run's start), with the command and the host; it never edits README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. infra/bench/result.sh jsonlines "$@"
N=${1:-100000}
MODEL=${2:-tests/fixtures/models/text-classification}
TASK=${3:-text-classification}
cargo build --release --locked -p hf-inference-sagemaker
BIN=$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/serve
WORK=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

python3 - "$N" "$WORK" <<'PY'
import json, sys
n, work = int(sys.argv[1]), sys.argv[2]
texts = [f"Review {i}: the product arrived {'quickly' if i % 3 else 'late'} and works {'great' if i % 2 else 'poorly'}." for i in range(n)]
with open(f"{work}/in.jsonl", "w") as f:
    for t in texts:
        f.write(json.dumps({"inputs": t}) + "\n")
with open(f"{work}/in.json", "w") as f:
    json.dump({"inputs": texts}, f)
PY

HF_TASK=$TASK HF_MODEL_DIR=$MODEL SAGEMAKER_BIND_TO_PORT=0 HF_BIND_ADDRESS=127.0.0.1 \
  SAGEMAKER_MAX_PAYLOAD_IN_MB=0 SAGEMAKER_MODEL_SERVER_TIMEOUT=3600 \
  "$BIN" > "$WORK/serve.log" 2>&1 &
PID=$!
for _ in $(seq 1 600); do
  ADDR=$(sed -n 's/^listening on //p' "$WORK/serve.log" | head -1)
  [ -n "$ADDR" ] && curl -sf "http://$ADDR/ping" > /dev/null && break
  sleep 0.1
done
header "Long jobs: JSON Lines and long input lists" > "$RESULT"
echo "$N requests, model $MODEL ($TASK); RSS is the server's (VmRSS before, VmHWM after)." >> "$RESULT"
echo >> "$RESULT"
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$PID/status"; }
{
  echo "| request | body | answers | seconds | lines/s | RSS before (MiB) | peak RSS (MiB) |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
} | tee -a "$RESULT"
run() { # NAME FILE CONTENT_TYPE
  local before t0 t1 lines
  before=$(kib VmRSS)
  t0=$(date +%s.%N)
  curl -sf "http://$ADDR/invocations" -H "Content-Type: $3" -H "Accept: application/jsonlines" \
    --data-binary "@$2" -o "$WORK/out"
  t1=$(date +%s.%N)
  lines=$(wc -l < "$WORK/out")
  awk -v name="$1" -v size="$(du -h "$2" | cut -f1)" -v n="$lines" -v t0="$t0" -v t1="$t1" \
      -v b="$before" -v p="$(kib VmHWM)" \
    'BEGIN { s = t1 - t0; printf "| %s | %s | %d | %.1f | %.0f | %.0f | %.0f |\n", name, size, n, s, n / s, b / 1024, p / 1024 }'
}
run "JSON Lines, streamed" "$WORK/in.jsonl" application/jsonlines | tee -a "$RESULT"
run "one JSON body, parts of 64" "$WORK/in.json" application/json | tee -a "$RESULT"
echo "wrote $RESULT" >&2
