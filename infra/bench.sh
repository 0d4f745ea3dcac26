#!/usr/bin/env bash
# Side-by-side benchmark of our `serve` and the Python toolkit on feature-extraction with the real
# all-MiniLM-L6-v2, in one run, with ../shared/reference/bench.py (cold start, memory, sequential
# latency, 4-client throughput, batch-32 throughput). Needs ../shared/reference/setup.sh once.
# Writes the results to a new dated file, docs/benchmarks/<YYYY-MM-DD-HHMM>-encoders.md (UTC, the
# run's start), with the command and the host; it never edits README.md.
#   bash infra/bench.sh [extra bench.py args]      (~6 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
. infra/bench/result.sh encoders "$@"
CMDLINE="bash infra/bench.sh${*:+ $*}"
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
