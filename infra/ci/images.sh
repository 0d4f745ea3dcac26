#!/usr/bin/env bash
# Builds the SageMaker CPU image and the Lambda proxy image, starts the SageMaker one as SageMaker
# does (`docker run IMAGE serve`, the model mounted at /opt/ml/model, port 8080) and checks /ping
# and /invocations. Needs a running Docker engine (infra/ci/deploy.sh calls it only then).
set -euo pipefail
cd "$(dirname "$0")/../.."
export DOCKER_BUILDKIT=1
docker build -f infra/Dockerfile -t hf-inference-rs:ci .
docker build -f infra/lambda.Dockerfile --target runtime --build-arg HANDLER=lambda-proxy \
  --build-arg CARGO_ARGS=--no-default-features -t hf-lambda-proxy:ci .
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep ':ci '
model=$PWD/tests/fixtures/models/text-classification
id=$(docker run -d --rm -p 127.0.0.1::8080 -v "$model:/opt/ml/model:ro" hf-inference-rs:ci serve)
trap 'docker rm -f "$id" >/dev/null 2>&1 || true' EXIT
port=$(docker port "$id" 8080/tcp | head -n1 | sed 's/.*://')
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/ping" >/dev/null 2>&1; then break; fi
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/ping"
answer=$(curl -fsS "http://127.0.0.1:$port/invocations" -H 'Content-Type: application/json' \
  -d '{"inputs": ["I love this", "I hate this"]}')
echo "$answer"
python3 -c 'import json,sys; a=json.loads(sys.argv[1]); assert len(a)==2 and all({"label","score"}<=set(x) for x in a), a' "$answer"
echo "images: built; the SageMaker image answered /ping and /invocations"
