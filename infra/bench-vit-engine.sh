#!/usr/bin/env bash
# Bare forward pass of a ViT-base-shaped image classifier (random weights, 224x224, patch 16,
# hidden 768, 12 layers, 1000 labels): ours (`cargo bench -p hf-inference-core --bench
# vit_forward`, KernelVit on our CPU kernels) against ONNX Runtime and torch eager on the same
# model and inputs; batch 1 latency, batch-16 images/s, GFLOP/s and the share of the CPU's float32
# peak, in one run.
#   bash infra/bench-vit-engine.sh [--runs 20] [--rounds 5] [--model DIR]
# Writes docs/benchmarks/<YYYY-MM-DD-HHMM>-vit-engine.md (UTC); never edits README.md.
# Needs ../shared/reference/setup.sh once (the toolkit venv: torch, transformers). onnxruntime and
# onnx go into $REF_ROOT/ort-extra (pip --target, put on PYTHONPATH; the toolkit venv is left as
# it is) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. infra/bench/result.sh vit-engine "$@"
R=${REF_ROOT:-$HOME/.cache/hf-toolkit-reference}
MODELS=$R/bench-models
EXTRA=$R/ort-extra
PY=$R/venv/bin/python
"$PY" infra/bench/make_vision_models.py "$MODELS"
if ! PYTHONPATH=$EXTRA "$PY" -c 'import onnxruntime, onnx' 2>/dev/null; then
  # --no-deps: the venv's numpy (1.26), protobuf and packaging stay; ml_dtypes pinned to a build
  # that runs on numpy 1.x (onnx imports it)
  "$PY" -m pip install -q --target "$EXTRA" --no-deps onnxruntime onnx "ml_dtypes==0.5.1" \
    flatbuffers coloredlogs humanfriendly
fi
cargo bench --locked -p hf-inference-core --bench vit_forward --no-run
mkdir -p target
OUT=target/bench-vit-engine.md
MODEL=$MODELS/vit-base
PASS=()
while [ $# -gt 0 ]; do
  case $1 in
    --model) MODEL=$2; shift 2 ;;
    *) PASS+=("$1"); shift ;;
  esac
done
PYTHONPATH=$EXTRA "$PY" infra/bench/bench_vit_ort.py --model "$MODEL" \
  --ours-cmd "cargo bench --locked -q -p hf-inference-core --bench vit_forward -- {model}" \
  ${PASS[@]+"${PASS[@]}"} > "$OUT"
{
  header "ViT forward pass against ONNX Runtime and torch"
  cat "$OUT"
} > "$RESULT"
cat "$RESULT"
echo "wrote $RESULT" >&2
