#!/usr/bin/env bash
# Installs moto's server (a local S3/SNS/SQS API, PyPI `moto[server]`) into DIR for the async
# handler's S3 tests, and prints DIR (run it with `PYTHONPATH=DIR python3 -m moto.server`).
# Idempotent; needs python3 + pip and access to PyPI only.
#   infra/fetch-moto.sh [DIR]   (default: ${XDG_CACHE_HOME:-~/.cache}/hf-inference-rs/moto-5.2.5)
set -euo pipefail
DIR=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/hf-inference-rs/moto-5.2.5}
if [ -f "$DIR/.installed" ]; then
  echo "$DIR"
  exit 0
fi
command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 python3-pip >/dev/null; }
rm -rf "$DIR"
python3 -m pip install --quiet --disable-pip-version-check --target "$DIR" "moto[server]==5.2.5" >&2
PYTHONPATH=$DIR python3 -c "import moto.server" >&2
touch "$DIR/.installed"
echo "$DIR"
