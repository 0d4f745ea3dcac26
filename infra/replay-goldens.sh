#!/usr/bin/env bash
# Replays every golden file of tests/fixtures/golden (recorded from the real Python toolkit) against
# the release `serve`, each on its fixture model, and judges the answers with the reference's
# compare_golden.py --parity. Needs ../shared/reference (the toolkit's tools, read-only) and a
# release build: cargo build --release -p hf-inference-sagemaker --bin serve.
# Usage: bash infra/replay-goldens.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
REF=${REF:-../shared/reference}
OUT=${1:-$(mktemp -d)}
SERVE=${SERVE:-target/release/serve}
PORT=${PORT:-18181}
[ -x "$SERVE" ] || { echo "build it first: cargo build --release -p hf-inference-sagemaker --bin serve" >&2; exit 2; }
MODELS=tests/fixtures/models
# golden file, fixture model, task (as tests/src/lib.rs pairs them)
PAIRS=$(cat <<'T'
feature-extraction-tiny feature-extraction-tiny feature-extraction
xlm-roberta-feature-extraction xlm-roberta-feature-extraction feature-extraction
text-classification text-classification text-classification
distilbert-text-classification distilbert-text-classification text-classification
roberta-text-classification roberta-text-classification text-classification
zero-shot-classification zero-shot-classification zero-shot-classification
distilbert-zero-shot-classification distilbert-text-classification zero-shot-classification
roberta-zero-shot-classification roberta-text-classification zero-shot-classification
token-classification token-classification token-classification
distilbert-token-classification distilbert-token-classification token-classification
roberta-token-classification roberta-token-classification token-classification
fill-mask fill-mask fill-mask
distilbert-fill-mask distilbert-fill-mask fill-mask
roberta-fill-mask roberta-fill-mask fill-mask
question-answering question-answering question-answering
distilbert-question-answering distilbert-question-answering question-answering
roberta-question-answering roberta-question-answering question-answering
deberta-v2-token-classification deberta-v2-token-classification token-classification
deberta-v2-question-answering deberta-v2-question-answering question-answering
deberta-v2-text-classification deberta-v2-text-classification text-classification
deberta-v2-zero-shot-classification deberta-v2-text-classification zero-shot-classification
text-generation text-generation text-generation
summarization summarization summarization
text2text-generation text2text-generation text2text-generation
translation translation translation
translation-t5 translation-t5 translation
llama-text-generation llama-text-generation text-generation
qwen2-text-generation qwen2-text-generation text-generation
mistral-text-generation mistral-text-generation text-generation
phi3-text-generation phi3-text-generation text-generation
gemma-text-generation gemma-text-generation text-generation
bart-summarization bart-summarization summarization
t5-v1_1-text2text-generation t5-v1_1-text2text-generation text2text-generation
feature-extraction-minilm MINILM feature-extraction
T
)
mkdir -p "$OUT"
names=()
while read -r golden model task; do
  [ -n "$golden" ] || continue
  if [ "$model" = MINILM ]; then
    dir=$(bash infra/fetch-minilm.sh) || { echo "skip $golden: MiniLM not fetched" >&2; continue; }
  else
    dir=$MODELS/$model
  fi
  HF_TASK=$task HF_MODEL_DIR=$dir SAGEMAKER_BIND_TO_PORT=$PORT "$SERVE" >"$OUT/$golden.log" 2>&1 &
  pid=$!
  for _ in $(seq 200); do curl -sf "localhost:$PORT/ping" >/dev/null && break; sleep 0.05; done
  python3 "$REF/replay.py" tests/fixtures/golden --task "$golden" --port "$PORT" --out "$OUT" >/dev/null
  kill "$pid"; wait "$pid" 2>/dev/null || true
  names+=("$golden")
done <<<"$PAIRS"
python3 "$REF/compare_golden.py" tests/fixtures/golden "$OUT" --parity --tasks "$(IFS=,; echo "${names[*]}")"
