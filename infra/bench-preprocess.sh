#!/usr/bin/env bash
# Decode and preprocessing of a 1920x1080 JPEG for a ViT (issue: the vision family): ours
# (`cargo bench -p hf-inference-core --bench preprocess`) against Pillow plus transformers' slow
# ViTImageProcessor, side by side in one run.
#   bash infra/bench-preprocess.sh [--runs 30]
# Writes docs/benchmarks/<YYYY-MM-DD-HHMM>-preprocess.md (UTC); never edits README.md.
# Needs ../shared/reference/setup.sh once.
set -euo pipefail
cd "$(dirname "$0")/.."
. infra/bench/result.sh preprocess "$@"
R=${REF_ROOT:-$HOME/.cache/hf-toolkit-reference}
MODELS=$R/bench-models
"$R/venv/bin/python" infra/bench/make_vision_models.py "$MODELS"
cargo bench --locked -p hf-inference-core --bench preprocess --no-run
OUT=target/bench-preprocess.md
"$R/venv/bin/python" infra/bench/bench_preprocess.py --model "$MODELS/vit-base" \
  --ours-cmd "cargo bench --locked -q -p hf-inference-core --bench preprocess -- {image} {model}" "$@" > "$OUT"
{
  header "Image decode and preprocessing against Pillow and transformers"
  cat "$OUT"
} > "$RESULT"
cat "$RESULT"
echo "wrote $RESULT" >&2
