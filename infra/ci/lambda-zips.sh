#!/usr/bin/env bash
# Builds the Lambda zips with cargo lambda (release, --locked, zig as the linker) and checks them:
#   lambda-proxy --no-default-features   x86_64 and arm64   the proxy-only zip: under 10 MB
#   async-handler (the engine in-process) x86_64            under Lambda's 50 MB direct upload,
#                                                           250 MB unzipped with the model beside it
# then runs each x86_64 bootstrap here against a stand-in Runtime API (infra/ci/lambda_local.py)
# with one event, so that a zip that cannot start (a missing library, a glibc too new) fails.
# About 25 minutes on a 2-core machine, the cargo cache warm (docs/deploy.md, "Lambda zips").
# Needs cargo-lambda and zig on PATH (infra/ci/fetch-deploy-tools.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
ci=false
case "${CI:-}" in "" | 0 | false | FALSE | False) ;; *) ci=true ;; esac
MB=$((1024 * 1024))
size() { stat -c %s "$1"; }
unzipped() { python3 -c 'import sys, zipfile; print(sum(i.file_size for i in zipfile.ZipFile(sys.argv[1]).infolist()))' "$1"; }
check() { # check ZIP LIMIT_BYTES WHAT
  local s
  s=$(size "$1")
  printf '%s: %s bytes (%s MB), %s bytes unzipped\n' "$1" "$s" "$(python3 -c "print(round($s / $MB, 1))")" "$(unzipped "$1")"
  if [ "$s" -ge "$2" ]; then
    echo "error: $1 is $s bytes, over $3 ($2 bytes)" >&2
    exit 1
  fi
}
out=target/lambda-zips
mkdir -p "$out"

echo "-- lambda-proxy, proxy only, x86_64"
cargo lambda build --release --locked --x86-64 --output-format zip -p hf-inference-lambda --bin lambda-proxy --no-default-features
cp target/lambda/lambda-proxy/bootstrap.zip "$out/lambda-proxy-x86_64.zip"
check "$out/lambda-proxy-x86_64.zip" $((10 * MB)) "the proxy-only zip's 10 MB budget"
python3 infra/ci/lambda_local.py "$out/lambda-proxy-x86_64.zip" handlers/lambda/events/function-url.json \
  --env SAGEMAKER_ENDPOINT_NAME=local-endpoint --env HF_TASK=text-classification >"$out/lambda-proxy-x86_64.run.json"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); b=json.loads(r["response"]); assert b["statusCode"]==200, r; print("lambda-proxy answered GET /ping:", b["statusCode"], "cold start", r["first_response_ms"], "ms")' "$out/lambda-proxy-x86_64.run.json"

echo "-- lambda-proxy, proxy only, arm64"
if rustup target list --installed 2>/dev/null | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu; then
  cargo lambda build --release --locked --arm64 --output-format zip -p hf-inference-lambda --bin lambda-proxy --no-default-features
  cp target/lambda/lambda-proxy/bootstrap.zip "$out/lambda-proxy-arm64.zip"
  check "$out/lambda-proxy-arm64.zip" $((10 * MB)) "the proxy-only zip's 10 MB budget"
  python3 -c 'import sys, zipfile; d=zipfile.ZipFile(sys.argv[1]).read("bootstrap")[:20]; assert d[:4]==b"\x7fELF" and int.from_bytes(d[18:20],"little")==183, "not an aarch64 ELF"; print("bootstrap is an aarch64 ELF")' "$out/lambda-proxy-arm64.zip"
elif [ "$ci" = true ]; then
  echo "error: the aarch64-unknown-linux-gnu standard library cannot be installed (rustup target add)" >&2
  exit 1
else
  echo "warning: no aarch64-unknown-linux-gnu standard library (rustup target add failed): arm64 zip not built" >&2
fi

echo "-- async-handler, in-process engine, x86_64, the model beside it"
model_root=$(mktemp -d)
trap 'rm -rf "$model_root"' EXIT
cp -r tests/fixtures/models/text-classification "$model_root/model"
cargo lambda build --release --locked --x86-64 --output-format zip -p hf-inference-async --bin async-handler
cp target/lambda/async-handler/bootstrap.zip "$out/async-handler-x86_64.zip"
check "$out/async-handler-x86_64.zip" $((50 * MB)) "Lambda's 50 MB direct-upload limit"
# the model in model/ beside bootstrap: /var/task/model on Lambda
python3 - "$out/async-handler-x86_64.zip" "$model_root/model" "$out/async-handler-with-model-x86_64.zip" <<'PY'
import os, shutil, sys, zipfile
src, model, dst = sys.argv[1:]
shutil.copy(src, dst)
with zipfile.ZipFile(dst, "a", zipfile.ZIP_DEFLATED) as z:
    for name in sorted(os.listdir(model)):
        z.write(os.path.join(model, name), f"model/{name}")
PY
python3 -c 'import sys, zipfile; n=sum(i.file_size for i in zipfile.ZipFile(sys.argv[1]).infolist()); assert n < 250*1024*1024, n' "$out/async-handler-with-model-x86_64.zip"
echo '{"inputs": "I love this"}' >"$model_root/in.json"
printf '{"InputLocation": "file://%s/in.json", "InferenceId": "cold-start", "OutputLocation": "file://%s/out"}' "$model_root" "$model_root" >"$model_root/job.json"
python3 infra/ci/lambda_local.py "$out/async-handler-with-model-x86_64.zip" "$model_root/job.json" \
  --env HF_TASK=text-classification --env 'HF_MODEL_DIR={task}/model' --env "HF_ASYNC_OUTPUT_PATH=$model_root/out" \
  >"$out/async-handler-x86_64.run.json"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert "Completed" in r["response"], r; print("async-handler ran the job:", r["response"][:200], "cold start", r["first_response_ms"], "ms")' "$out/async-handler-x86_64.run.json"
ls "$model_root/out"
echo "zips: $(ls "$out"/*.zip | tr '\n' ' ')"
