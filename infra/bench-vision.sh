#!/usr/bin/env bash
# Side-by-side image-classification benchmark of our `serve` and the Python toolkit (issue: the
# vision family): a ViT-tiny-shaped and a ViT-base-shaped classifier with random weights, and the
# ViT-base stored in bfloat16 (its memory: the toolkit loads it as float32; made once
# by the reference venv under $REF_ROOT/bench-models), one 640x480 JPEG per request; cold start,
# single-image latency, 4-client and batch throughput, memory.
#   bash infra/bench-vision.sh [--requests 20]
# Writes the results to a new dated file, docs/benchmarks/<YYYY-MM-DD-HHMM>-vision.md (UTC, the
# run's start), with the command and the host; it never edits README.md.
# Needs ../shared/reference/setup.sh once.
set -euo pipefail
cd "$(dirname "$0")/.."
. infra/bench/result.sh vision "$@"
REF=${REFERENCE_DIR:-$(cd .. && pwd)/shared/reference}
R=${REF_ROOT:-$HOME/.cache/hf-toolkit-reference}
MODELS=$R/bench-models
"$R/venv/bin/python" infra/bench/make_vision_models.py "$MODELS"
cargo build --release --locked -p hf-inference-sagemaker
BIN=$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/serve
mkdir -p target
OUT=target/bench-vision.md
: > "$OUT"
for model in vit-tiny vit-base vit-base-bf16; do
  "$R/venv/bin/python" infra/bench/bench_vision.py --model "$MODELS/$model" \
    --server-cmd "env HF_TASK=image-classification HF_MODEL_DIR={model} SAGEMAKER_BIND_TO_PORT={port} $BIN" \
    --toolkit-serve "$REF/serve.sh" --markdown "$OUT" "$@"
done
{
  header "Image classification against the Python toolkit"
  cat "$OUT"
} > "$RESULT"
cat "$RESULT"
echo "wrote $RESULT" >&2
