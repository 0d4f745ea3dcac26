#!/usr/bin/env python3
"""Bare forward pass of a ViT image classifier (preprocessed pixel values in, logits out): ours
(`cargo bench --bench vit_forward`, our CPU kernels) against ONNX Runtime (CPUExecutionProvider,
an opset-17 export of the same transformers `ViTForImageClassification`, dynamic batch) and torch
eager, on the same weights and the same inputs. Batch 1 latency (median of --runs calls) and
batch-16 throughput (median of --rounds calls), the achieved GFLOP/s and its share of this
machine's float32 peak. Prints a markdown table.

    PYTHONPATH=$REF_ROOT/ort-extra $REF_ROOT/venv/bin/python infra/bench/bench_vit_ort.py \
        --model DIR --ours-cmd 'CMD {model}'

FLOPs per image (2 x multiply-accumulates; layer norms, softmax, GELU and adds left out), with
P = patch size, C = 3 channels, N = (image/P)^2 + 1 tokens, D = hidden, F = intermediate,
L = layers, K = labels:
    patch embedding   2 * (N-1) * (C*P*P) * D
    per layer         2*N*D*3D (q,k,v) + 2*N*N*D (q.k^T, all heads) + 2*N*N*D (probs.v)
                      + 2*N*D*D (attention output) + 2*N*D*F + 2*N*F*D (feed-forward)
    classifier        2 * D * K (CLS token only)
ViT-base (224, P=16, N=197, D=768, F=3072, L=12, K=1000): 35.13 GFLOP per image.

Peak float32 FLOP/s = logical CPUs x GHz x FMA units per core x SIMD lanes x 2 (an FMA is two
FLOPs); lanes from /proc/cpuinfo flags (avx512f: 16, avx2+fma: 8, else 4), 2 FMA units per core
(Intel server cores with AVX-512, AMD Zen 2-5), except AMD family 0x19 (Zen 3/4), whose 512-bit
operations run on 256-bit units (8 lanes counted). GHz: the clock measured with every CPU busy (a
chain of dependent integer adds, one a cycle, compiled with `cc` under target/, one copy per CPU,
the slowest copy), since the `cpu MHz` of /proc/cpuinfo is the nominal clock (a VM reports it) and
turbo runs above it; `cpu MHz` when `cc` is missing or not on x86-64; PEAK_GHZ overrides.
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402


def image(k, size):
    """Image k of the bench, bit for bit as core/benches/vit_forward.rs builds it."""
    i = np.arange(3 * size * size, dtype=np.int64)
    v = ((i * 7919 + k * 104729) % 2001).astype(np.float32) / np.float32(1000.0) - np.float32(1.0)
    return v.reshape(3, size, size)


def vit_flops(c):
    size, p, d = c.get("image_size", 224), c.get("patch_size", 16), c.get("hidden_size", 768)
    f, layers = c.get("intermediate_size", 3072), c.get("num_hidden_layers", 12)
    ch = c.get("num_channels", 3)
    k = len(c.get("id2label") or {}) or c.get("num_labels", 2)
    n = (size // p) ** 2 + 1
    patch = 2 * (n - 1) * (ch * p * p) * d
    layer = 2 * n * d * 3 * d + 2 * n * n * d + 2 * n * n * d + 2 * n * d * d + 2 * n * d * f + 2 * n * f * d
    return patch + layers * layer + 2 * d * k


CLOCK_PROBE = r"""
#include <stdint.h>
#include <stdio.h>
#include <time.h>
int main(void) {
  struct timespec a, b;
  uint64_t x = 0, n = 50000000ULL;
  double best = 0;
  for (int r = 0; r < 5; r++) {
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (uint64_t i = 0; i < n; i++)
      __asm__ volatile(".rept 32\n\tadd $1, %0\n\t.endr" : "+r"(x));
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9;
    double ghz = 32.0 * n / s / 1e9;
    if (ghz > best) best = ghz;
  }
  printf("%.3f\n", best);
  return (int)(x & 0);
}
"""


def measured_ghz(cpus):
    """The clock with every CPU busy (GHz), or None where it cannot be measured."""
    import platform
    import shutil

    if platform.machine() not in ("x86_64", "AMD64") or not shutil.which("cc"):
        return None
    os.makedirs("target", exist_ok=True)
    src, exe = "target/clock_probe.c", "target/clock_probe"
    with open(src, "w") as f:
        f.write(CLOCK_PROBE)
    if subprocess.run(["cc", "-O2", "-o", exe, src], capture_output=True).returncode != 0:
        return None
    procs = [subprocess.Popen([exe], stdout=subprocess.PIPE, text=True) for _ in range(cpus)]
    try:
        return min(float(p.communicate()[0]) for p in procs)
    except ValueError:
        return None


def cpu_peak():
    """(GFLOP/s, how it was computed)."""
    info = open("/proc/cpuinfo").read()

    def field(name):
        for line in info.splitlines():
            if line.split(":")[0].strip() == name:
                return line.split(":", 1)[1].strip()
        return ""

    flags = set(field("flags").split())
    cpus = os.cpu_count() or 1
    nominal = float(field("cpu MHz") or 0) / 1000.0
    if os.environ.get("PEAK_GHZ"):
        ghz, clock = float(os.environ["PEAK_GHZ"]), "PEAK_GHZ"
    elif (m := measured_ghz(cpus)) is not None:
        ghz, clock = m, f"measured with {cpus} CPUs busy; `cpu MHz` says {nominal:.3f}"
    else:
        ghz, clock = nominal, "`cpu MHz`, the nominal clock; turbo may be higher"
    if "avx512f" in flags:
        lanes, isa = 16, "avx512f"
    elif "avx2" in flags and "fma" in flags:
        lanes, isa = 8, "avx2+fma"
    else:
        lanes, isa = 4, "sse"
    family = int(field("cpu family") or 0)
    vendor = field("vendor_id")
    if vendor == "AuthenticAMD" and family == 0x19 and lanes == 16:
        lanes, isa = 8, "avx512f on 256-bit units (AMD family 0x19)"
    fma_units = int(os.environ.get("PEAK_FMA_UNITS", 2))
    peak = cpus * ghz * fma_units * lanes * 2
    how = (f"{cpus} logical CPUs x {ghz:.3f} GHz ({clock}) x {fma_units} FMA units x {lanes} fp32 lanes ({isa}) "
           f"x 2 = {peak:.1f} GFLOP/s; CPU `{field('model name')}`, {vendor} family {family:#x} model "
           f"{field('model')}")
    return peak, how, nominal * fma_units * lanes * 2 * cpus


def time_calls(fn, warmup, n):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return statistics.median(out)


def export(model_dir, path, opset=17):
    import torch
    from transformers import ViTForImageClassification

    m = ViTForImageClassification.from_pretrained(model_dir, attn_implementation="eager").eval()
    size = m.config.image_size

    class Logits(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, pixel_values):
            return self.m(pixel_values=pixel_values, return_dict=False)[0]

    dummy = torch.from_numpy(np.stack([image(0, size), image(1, size)]))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with torch.no_grad():
        torch.onnx.export(Logits(m), (dummy,), tmp, input_names=["pixel_values"], output_names=["logits"],
                          dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}},
                          opset_version=opset, do_constant_folding=True, dynamo=False)
    os.replace(tmp, path)
    import onnx

    onnx.checker.check_model(onnx.load(path))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a ViTForImageClassification directory")
    ap.add_argument("--ours-cmd", required=True, help="our bench command; {model} is filled in, then RUNS ROUNDS appended")
    ap.add_argument("--onnx", default=None, help="the ONNX file to write (default target/<model>.onnx)")
    ap.add_argument("--runs", type=int, default=20, help="timed batch-1 calls (3 warm-up)")
    ap.add_argument("--rounds", type=int, default=5, help="timed batch-16 calls (1 warm-up)")
    args = ap.parse_args()

    import onnxruntime as ort
    import torch
    import transformers
    from transformers import ViTForImageClassification

    transformers.logging.set_verbosity_error()
    config = json.load(open(os.path.join(args.model, "config.json")))
    size, batch = config.get("image_size", 224), 16
    name = os.path.basename(os.path.normpath(args.model))
    onnx_path = args.onnx or f"target/{name}.onnx"
    nproc = os.cpu_count() or 1
    x1 = image(0, size)[None]
    x16 = np.stack([image(k, size) for k in range(batch)])
    rows, logits = [], {}

    t = time.perf_counter()
    export(args.model, onnx_path)
    print(f"exported {onnx_path} in {time.perf_counter() - t:.1f}s", file=sys.stderr, flush=True)

    def ort_row(label, so):
        sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
        logits[label] = sess.run(None, {"pixel_values": x1})[0][0]
        b1 = time_calls(lambda: sess.run(None, {"pixel_values": x1}), 3, args.runs)
        b16 = time_calls(lambda: sess.run(None, {"pixel_values": x16}), 1, args.rounds)
        rows.append((label, b1, b16))
        print(f"{label}: {b1:.1f} ms, batch {batch} {b16:.1f} ms", file=sys.stderr, flush=True)

    ort_row(f"ONNX Runtime {ort.__version__}, default session options", ort.SessionOptions())
    so = ort.SessionOptions()
    so.intra_op_num_threads = nproc
    ort_row(f"ONNX Runtime {ort.__version__}, intra_op_num_threads={nproc}", so)

    torch.set_num_threads(nproc)
    model = ViTForImageClassification.from_pretrained(args.model).eval()
    t1, t16 = torch.from_numpy(x1), torch.from_numpy(x16)
    label = f"torch {torch.__version__} eager ({model.config._attn_implementation} attention), {nproc} threads"
    with torch.no_grad():
        logits["torch"] = model(pixel_values=t1).logits[0].numpy()
        b1 = time_calls(lambda: model(pixel_values=t1), 3, args.runs)
        b16 = time_calls(lambda: model(pixel_values=t16), 1, args.rounds)
    rows.append((label, b1, b16))
    print(f"{label}: {b1:.1f} ms, batch {batch} {b16:.1f} ms", file=sys.stderr, flush=True)
    del model

    cmd = args.ours_cmd.format(model=shlex.quote(os.path.abspath(args.model))) + f" {args.runs} {args.rounds}"
    out = subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True).stdout
    ours = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    assert ours["batch"] == batch, ours["batch"]
    logits["ours"] = np.asarray(ours["logits0"], dtype=np.float32)
    rows.insert(0, ("ours (KernelVit, our CPU kernels)", ours["batch1_ms"], ours["batch_ms"]))

    flops = vit_flops(config)
    peak, how, nominal_peak = cpu_peak()
    print(f"`{name}` ({config.get('hidden_size')} hidden, {config.get('num_hidden_layers')} layers, "
          f"{config.get('num_attention_heads')} heads, {size}x{size}, patch {config.get('patch_size')}, "
          f"{len(config.get('id2label') or {})} labels, random weights), float32 on the CPU, preprocessed pixel values "
          f"to logits. Batch 1: median of {args.runs} calls (3 warm-up); batch {batch}: median of {args.rounds} calls "
          f"(1 warm-up). {flops / 1e9:.2f} GFLOP per image (2 x multiply-accumulates of the patch embedding, every "
          f"linear layer and both attention products; see infra/bench/bench_vit_ort.py).\n")
    print(f"Peak: {how}. At the nominal clock it would be {nominal_peak:.1f} GFLOP/s.\n")
    print(f"| engine | batch 1 ms | batch 1 GFLOP/s | batch 1 % of peak | batch {batch} ms | batch {batch} images/s "
          f"| batch {batch} GFLOP/s | batch {batch} % of peak |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, b1, b16 in rows:
        g1 = flops / (b1 * 1e6)
        g16 = batch * flops / (b16 * 1e6)
        print(f"| {label} | {b1:.1f} | {g1:.0f} | {100 * g1 / peak:.0f}% | {b16:.0f} | {batch * 1e3 / b16:.2f} "
              f"| {g16:.0f} | {100 * g16 / peak:.0f}% |")
    ref = logits["torch"].astype(np.float64)
    print("\nLogits of image 0 against torch's (same weights, same pixel values): ", end="")
    checks = []
    for key, name_ in (("ours", "ours"), (next(k for k in logits if k.startswith("ONNX")), "ONNX Runtime")):
        got = logits[key].astype(np.float64)
        cos = float(got @ ref / (np.linalg.norm(got) * np.linalg.norm(ref)))
        same = int(got.argmax() == ref.argmax())
        checks.append(f"{name_} max abs diff {np.abs(got - ref).max():.2e}, cosine {cos:.7f}, "
                      f"top-1 {'same' if same else 'DIFFERENT'}")
    print("; ".join(checks) + ".")


if __name__ == "__main__":
    main()
