#!/usr/bin/env bash
# Side-by-side benchmark of our `serve` and the Python toolkit on feature-extraction with the real
# all-MiniLM-L6-v2, in one run, with ../shared/reference/bench.py (cold start, memory, sequential
# latency, 4-client throughput, batch-32 throughput). Needs ../shared/reference/setup.sh once.
# Writes the results to a new dated file, docs/benchmarks/<YYYY-MM-DD-HHMM>-encoders.md (UTC, the
# run's start), with the command and the host; it never edits README.md.
#   bash infra/bench.sh [extra bench.py args]      (~6 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
CMDLINE="bash infra/bench.sh${*:+ $*}"
STAMP=$(date -u +%Y-%m-%d-%H%M)
RESULT=docs/benchmarks/$STAMP-encoders.md
[ -e "$RESULT" ] && RESULT=docs/benchmarks/$STAMP$(date -u +%S)-encoders.md
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
cargo build --release --locked -p hf-inference-sagemaker
BIN=$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/serve
mkdir -p target
"$R/venv/bin/python" "$REF/bench.py" --toolkit \
  --server-cmd "env HF_TASK=feature-extraction HF_MODEL_DIR={model} SAGEMAKER_BIND_TO_PORT={port} $BIN" \
  --markdown target/bench.md "$@"
{
  header "Encoders against the Python toolkit"
  cat target/bench.md
} > "$RESULT"
cat "$RESULT"
echo "wrote $RESULT" >&2
