#!/usr/bin/env bash
# The main job on a fresh machine: build the container binary and serve the real all-MiniLM-L6-v2
# (feature-extraction) offline on port ${SAGEMAKER_BIND_TO_PORT:-8080}, exactly as SageMaker would
# run it. Try it:  curl -s localhost:8080/invocations -H 'Content-Type: application/json' \
#                        -d '{"inputs": "This is an example sentence"}'
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=$(bash infra/fetch-minilm.sh "${1:-}")
cargo build --release --locked -p hf-inference-sagemaker
export HF_TASK=${HF_TASK:-feature-extraction}
export HF_MODEL_DIR=$MODEL
exec "${CARGO_TARGET_DIR:-target}/release/serve" serve
