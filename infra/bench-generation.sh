#!/usr/bin/env bash
# Side-by-side generation benchmark of our `serve` and the Python toolkit (issue: the generation
# family): a Qwen2-0.5B-sized decoder and a t5-small-sized encoder-decoder with random weights
# (made once by the reference venv, ~2.2 GB under $REF_ROOT/bench-models), greedy, a fixed number
# of new tokens; time to first token, tokens/s on one stream and on four concurrent streams.
#   bash infra/bench-generation.sh [--new-tokens 32] [--requests 3] [--repeats 3]
# Writes the results to a new dated file, docs/benchmarks/<YYYY-MM-DD-HHMM>-generation.md (UTC, the
# run's start), with the command and the host; it never edits README.md.
# Needs ../shared/reference/setup.sh once.
set -euo pipefail
cd "$(dirname "$0")/.."
. infra/bench/result.sh generation "$@"
REF=${REFERENCE_DIR:-$(cd .. && pwd)/shared/reference}
R=${REF_ROOT:-$HOME/.cache/hf-toolkit-reference}
MODELS=$R/bench-models
"$R/venv/bin/python" infra/bench/make_generation_models.py "$MODELS"
cargo build --release --locked -p hf-inference-sagemaker
BIN=$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/serve
mkdir -p target
OUT=target/bench-generation.md
: > "$OUT"
for spec in "qwen2-0.5b-bf16 text-generation" "t5-small text2text-generation"; do
  read -r model task <<<"$spec"
  python3 infra/bench/bench_generation.py --model "$MODELS/$model" --task "$task" \
    --server-cmd "env HF_TASK={task} HF_MODEL_DIR={model} SAGEMAKER_BIND_TO_PORT={port} $BIN" \
    --toolkit-serve "$REF/serve.sh" --markdown "$OUT" "$@"
done
{
  header "Generation against the Python toolkit"
  cat "$OUT"
} > "$RESULT"
cat "$RESULT"
echo "wrote $RESULT" >&2
