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
CMDLINE="bash infra/bench-generation.sh${*:+ $*}"
STAMP=$(date -u +%Y-%m-%d-%H%M)
RESULT=docs/benchmarks/$STAMP-generation.md
[ -e "$RESULT" ] && RESULT=docs/benchmarks/$STAMP$(date -u +%S)-generation.md
header() { # the result file's title, command and host: header TITLE
  printf '# %s, %s %s:%s UTC\n\n## Command\n\n```bash\n%s\n```\n\n## Host\n\n' "$1" \
    "${STAMP:0:10}" "${STAMP:11:2}" "${STAMP:13:2}" "$CMDLINE"
  local commit
  if commit=$(git rev-parse --short HEAD 2>/dev/null); then
    git diff --quiet HEAD || commit="$commit, with uncommitted changes"
  else commit=unknown; fi
  echo "- commit: $commit"
  echo "- CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) logical CPUs; memory $(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); $(uname -sr)"
  printf '\n## Results\n\n'
}
mkdir -p docs/benchmarks
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
