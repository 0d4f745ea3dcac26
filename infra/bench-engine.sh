#!/usr/bin/env bash
# The engine benchmark, in one go on one machine state: ONNX Runtime's and torch's bare forward pass
# (../shared/reference/compute/forward_bench.py) with ours as an extra row (--external-cmd), then
# our `serve` end to end with ../shared/reference/bench.py. Writes the results to a new dated file,
# docs/benchmarks/<YYYY-MM-DD-HHMM>-engine.md (UTC, the run's start), with the command and the host;
# it never edits README.md (docs/benchmarks/README.md indexes the runs).
#   bash infra/bench-engine.sh        (~10 minutes the first time: the compute venv takes ~3)
set -euo pipefail
cd "$(dirname "$0")/.."
CMDLINE="bash infra/bench-engine.sh${*:+ $*}"
STAMP=$(date -u +%Y-%m-%d-%H%M)
RESULT=docs/benchmarks/$STAMP-engine.md
[ -e "$RESULT" ] && RESULT=docs/benchmarks/$STAMP$(date -u +%S)-engine.md
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
[ -x "$R/compute-venv/bin/python" ] || bash "$REF/compute/setup.sh"
cargo bench --locked -p hf-inference-core --bench forward --no-run
BENCH=$(ls -t "${CARGO_TARGET_DIR:-target}"/release/deps/forward-* | grep -v '\.d$' | head -1)
cargo build --release --locked -p hf-inference-sagemaker
BIN=$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/serve
mkdir -p target
"$R/compute-venv/bin/python" "$REF/compute/forward_bench.py" \
  --external-cmd "$BENCH --json" --md-out target/engine-bench.md
echo >> target/engine-bench.md
"$R/venv/bin/python" "$REF/bench.py" --cold-runs 1 \
  --server-cmd "env HF_TASK=feature-extraction HF_MODEL_DIR={model} SAGEMAKER_BIND_TO_PORT={port} $BIN" \
  --out target/serve-bench.json
python3 - target/serve-bench.json >> target/engine-bench.md <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s, c, b = r["sequential"], r["concurrent"], r["batch"]
print("| our `serve`, end to end (HTTP + JSON) | single sentence median / p90 | 4 clients | batch of 32 |")
print("| --- | --- | --- | --- |")
print(f"| bench.py | {s['median_ms']} / {s['p90_ms']} ms | {c['throughput_rps']} req/s | {b['median_ms']} ms, {b['sentences_per_s_at_median']} sentences/s |")
PY
{
  header "Engine benchmark"
  cat target/engine-bench.md
} > "$RESULT"
cat "$RESULT"
echo "wrote $RESULT" >&2
