#!/usr/bin/env bash
# Packs a local model directory into the model.tar.gz SageMaker expects: the files at the root of
# the archive (no top folder), which SageMaker extracts into /opt/ml/model before `serve` starts.
#   infra/pack-model.sh MODEL_DIR [OUT]      (OUT: model.tar.gz)
# MODEL_DIR is what save_pretrained writes, or a Hub repository downloaded to a folder: config.json,
# the weights (model.safetensors, or model.safetensors.index.json and its shards, or
# pytorch_model.bin) and the tokenizer (tokenizer.json, or vocab/merges/spiece.model files) or, for
# image tasks, preprocessor_config.json. Only the top level is packed, and only one weight format
# (safetensors before pytorch_model.bin; other frameworks' weights are left out, as the Python
# toolkit's Hub filter does). A code/ folder (the Python toolkit's inference.py) is refused: this
# server runs no custom code and stops at start on a model that has one. The archive is
# reproducible: sorted names, owner 0, mtime 0, gzip without a timestamp.
set -euo pipefail
die() { echo "pack-model: $*" >&2; exit 1; }
[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: infra/pack-model.sh MODEL_DIR [OUT]"
dir=${1%/}
out=${2:-model.tar.gz}
[ -d "$dir" ] || die "$dir is not a directory"
[ -f "$dir/config.json" ] || die "$dir has no config.json (save the model with save_pretrained, or download the whole repository)"
if [ -d "$dir/code" ]; then
  die "$dir/code is custom inference code (inference.py, requirements.txt): hf-inference-rs runs none and would refuse this model at start; pack the directory without code/"
fi

weights=()
if [ -f "$dir/model.safetensors" ]; then
  weights=(model.safetensors)
elif [ -f "$dir/model.safetensors.index.json" ]; then
  weights=(model.safetensors.index.json)
  while IFS= read -r shard; do
    [ -f "$dir/$shard" ] || die "$dir/model.safetensors.index.json names $shard, which is missing"
    weights+=("$shard")
  done < <(python3 -c 'import json,sys; print("\n".join(sorted(set(json.load(open(sys.argv[1]))["weight_map"].values()))))' "$dir/model.safetensors.index.json")
elif [ -f "$dir/pytorch_model.bin" ]; then
  weights=(pytorch_model.bin)
else
  die "$dir has no weights: expected model.safetensors, model.safetensors.index.json or pytorch_model.bin"
fi

files=()
skipped=()
for path in "$dir"/* "$dir"/.[!.]*; do
  [ -e "$path" ] || continue
  name=${path##*/}
  if [ -d "$path" ]; then
    skipped+=("$name/")
    continue
  fi
  case "$name" in
    *.safetensors | model.safetensors.index.json | pytorch_model*.bin | tf_model.h5 | flax_model.msgpack | *.onnx | *.ckpt | *.tflite | *.mlmodel | *.msgpack | *.h5 | *.tar.gz)
      ;; # weights: only the chosen format below
    .gitattributes | .git | README.md | *.png | *.jpg)
      skipped+=("$name") ;;
    *)
      files+=("$name") ;;
  esac
done
files+=("${weights[@]}")
has_tokenizer=false
for f in tokenizer.json vocab.txt vocab.json spiece.model sentencepiece.bpe.model preprocessor_config.json; do
  [ -f "$dir/$f" ] && has_tokenizer=true
done
$has_tokenizer || echo "pack-model: warning: $dir has no tokenizer or preprocessor files; the server will refuse a task that needs one" >&2
if [ ${#skipped[@]} -gt 0 ]; then
  echo "pack-model: left out: ${skipped[*]}" >&2
fi

mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
mapfile -t sorted < <(printf '%s\n' "${files[@]}" | LC_ALL=C sort -u)
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$dir" -cf - -- "${sorted[@]}" | gzip -n -9 >"$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "pack-model: $out ($(du -h "$out" | cut -f1)): ${sorted[*]}" >&2
echo "$out"
