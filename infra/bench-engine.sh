#!/usr/bin/env bash
# The engine benchmark, in one go on one machine state: ONNX Runtime's and torch's bare forward pass
# (../shared/reference/compute/forward_bench.py) with ours as an extra row (--external-cmd), then
# our `serve` end to end with ../shared/reference/bench.py. Writes the results to a new dated file,
# docs/benchmarks/<YYYY-MM-DD-HHMM>-engine.md (UTC, the run's start), with the command and the host;
# it never edits README.md (docs/benchmarks/README.md indexes the runs).
#   bash infra/bench-engine.sh        (~10 minutes the first time: the compute venv takes ~3)
set -euo pipefail
cd "$(dirname "$0")/.."
. infra/bench/result.sh engine "$@"
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
