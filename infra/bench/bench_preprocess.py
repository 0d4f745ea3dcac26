#!/usr/bin/env python3
"""Decode and preprocessing of a 1920x1080 JPEG: Pillow plus transformers' image processor (what
the toolkit's pipeline does before the model runs: `load_image` = open, EXIF transpose, RGB; then
the slow ViTImageProcessor that `pipeline()` loads, to numpy) against ours (`cargo bench --bench
preprocess`), in one run. Prints a markdown table.

    $REF_ROOT/venv/bin/python infra/bench/bench_preprocess.py --model DIR --ours-cmd 'CMD {image} {model}'
"""
import argparse
import io
import json
import os
import shlex
import statistics
import subprocess
import time

import numpy as np
from PIL import Image, ImageOps
from transformers import AutoImageProcessor


def make_jpeg(path, w=1920, h=1080):
    """A deterministic photo-like picture: smooth gradients, shapes and sensor-like noise."""
    rng = np.random.default_rng(20240601)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 128 + 100 * np.sin(x / 97.0) * np.cos(y / 61.0)
    g = 128 + 90 * np.sin((x + y) / 143.0)
    b = 128 + 80 * np.cos(np.hypot(x - w / 2, y - h / 2) / 50.0)
    img = np.stack([r, g, b], -1) + rng.normal(0, 12, (h, w, 3))
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB").save(path, "JPEG", quality=90)


def pil_times(image_bytes, model, runs):
    processor = AutoImageProcessor.from_pretrained(model, use_fast=False)
    dec, prep, tot = [], [], []
    for i in range(runs + 3):
        t0 = time.perf_counter()
        img = Image.open(io.BytesIO(image_bytes))
        img = ImageOps.exif_transpose(img)
        img = img.convert("RGB")
        t1 = time.perf_counter()
        out = processor(images=img, return_tensors="np")
        t2 = time.perf_counter()
        assert out["pixel_values"].shape[-1] > 0
        if i >= 3:
            dec.append((t1 - t0) * 1e3)
            prep.append((t2 - t1) * 1e3)
            tot.append((t2 - t0) * 1e3)
    med = statistics.median
    return {"decode_ms": med(dec), "preprocess_ms": med(prep), "total_ms": med(tot), "processor": type(processor).__name__}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="a model directory with preprocessor_config.json")
    ap.add_argument("--ours-cmd", required=True, help="our bench command; {image} and {model} are filled in")
    ap.add_argument("--image", default="target/bench-1920x1080.jpg")
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    if not os.path.exists(args.image):
        os.makedirs(os.path.dirname(args.image) or ".", exist_ok=True)
        make_jpeg(args.image)
    data = open(args.image, "rb").read()
    theirs = pil_times(data, args.model, args.runs)
    cmd = args.ours_cmd.format(image=shlex.quote(os.path.abspath(args.image)), model=shlex.quote(os.path.abspath(args.model))) + f" {args.runs}"
    out = subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True).stdout
    ours = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
    print(f"1920x1080 JPEG ({len(data) // 1024} KiB, quality 90, 4:2:0) to a 224x224 float tensor; "
          f"{theirs['processor']} from `{os.path.basename(os.path.normpath(args.model))}`; median of {args.runs} runs, ms.\n")
    print("| step | ours | Pillow + transformers | ratio |")
    print("| --- | --- | --- | --- |")
    for key, name in (("decode_ms", "decode to RGB"), ("preprocess_ms", "resize, rescale, normalize"), ("total_ms", "total")):
        print(f"| {name} | {ours[key]:.2f} | {theirs[key]:.2f} | {theirs[key] / ours[key]:.2f}x |")


if __name__ == "__main__":
    main()
