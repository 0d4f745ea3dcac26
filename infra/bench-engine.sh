#!/usr/bin/env bash
# The engine benchmark, in one go on one machine state: ONNX Runtime's and torch's bare forward pass
# (../shared/reference/compute/forward_bench.py) with ours as an extra row (--external-cmd), then
# our `serve` end to end with ../shared/reference/bench.py. Writes target/engine-bench.md and puts
# it into README.md between the `bench-engine` markers (the CPU engine section).
#   bash infra/bench-engine.sh        (~10 minutes the first time: the compute venv takes ~3)
set -euo pipefail
cd "$(dirname "$0")/.."
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
python3 - target/engine-bench.md README.md <<'PY'
import sys
table, readme = open(sys.argv[1]).read(), open(sys.argv[2]).read()
begin, end = "<!-- bench-engine:begin", "<!-- bench-engine:end -->"
i, j = readme.find(begin), readme.find(end)
if i < 0 or j < i:
    sys.exit("README.md has no bench-engine markers; the table is in " + sys.argv[1])
i = readme.index("\n", i) + 1
block = table.replace("### Bare forward pass", "#### Bare forward pass", 1).strip() + "\n"
open(sys.argv[2], "w").write(readme[:i] + block + readme[j:])
PY
cat target/engine-bench.md
