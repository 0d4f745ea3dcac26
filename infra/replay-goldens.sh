#!/usr/bin/env bash
# Replays every golden file of tests/fixtures/golden (recorded from the real Python toolkit) against
# the release `serve`, each on its fixture model, and judges the answers with the reference's
# compare_golden.py --parity. Needs ../shared/reference (the toolkit's tools, read-only) and a
# release build: cargo build --release -p hf-inference-sagemaker --bin serve.
# Usage: bash infra/replay-goldens.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
REF=${REF:-../shared/reference}
OUT=${1:-$(mktemp -d)}
SERVE=${SERVE:-target/release/serve}
PORT=${PORT:-18181}
[ -x "$SERVE" ] || { echo "build it first: cargo build --release -p hf-inference-sagemaker --bin serve" >&2; exit 2; }
MODELS=tests/fixtures/models
# golden file, fixture model, task: the tests' fixture table (tests/src/lib.rs FIXTURES), and
# the real MiniLM
# (PAIRS may be given instead, e.g. to replay while the tree does not build)
PAIRS=${PAIRS:-"$(cargo run -q -p hf-inference-tests --bin fixtures)
feature-extraction-minilm MINILM feature-extraction"}
mkdir -p "$OUT"
names=()
while read -r golden model task; do
  [ -n "$golden" ] || continue
  if [ "$model" = MINILM ]; then
    dir=$(bash infra/fetch-minilm.sh) || { echo "skip $golden: MiniLM not fetched" >&2; continue; }
  else
    dir=$MODELS/$model
  fi
  HF_TASK=$task HF_MODEL_DIR=$dir SAGEMAKER_BIND_TO_PORT=$PORT "$SERVE" >"$OUT/$golden.log" 2>&1 &
  pid=$!
  for _ in $(seq 200); do curl -sf "localhost:$PORT/ping" >/dev/null && break; sleep 0.05; done
  python3 "$REF/replay.py" tests/fixtures/golden --task "$golden" --port "$PORT" --out "$OUT" >/dev/null
  kill "$pid"; wait "$pid" 2>/dev/null || true
  names+=("$golden")
done <<<"$PAIRS"
python3 "$REF/compare_golden.py" tests/fixtures/golden "$OUT" --parity --tasks "$(IFS=,; echo "${names[*]}")"
