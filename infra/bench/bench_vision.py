#!/usr/bin/env python3
"""Image-classification benchmark, ours and the Python toolkit side by side (stdlib client).

    python3 infra/bench/bench_vision.py --model DIR \
        --server-cmd 'HF_TASK=image-classification HF_MODEL_DIR={model} SAGEMAKER_BIND_TO_PORT={port} serve' \
        [--toolkit-serve ../shared/reference/serve.sh] [--requests 20] [--markdown F]

Every request sends the same JPEG (640x480, the kind of photo a client sends; both servers decode
it, resize it to the model's 224x224 and classify it) as a raw `image/jpeg` body. Per server:
  cold start    process start to the first 200 from /ping (the toolkit: MMS and its worker)
  single image  median latency of --requests sequential requests
  4 clients     images/s with four clients at once, one connection each
  batch of 16   images/s for one JSON request holding 16 base64 images
  RSS           resident memory of the server's processes after the run
Every request goes to 127.0.0.1; loops are bounded by count.
"""
import argparse
import base64
import http.client
import io
import json
import os
import signal
import statistics
import subprocess
import threading
import time


def make_jpeg():
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:480, 0:640]
    img = np.stack([(x * 255 // 639), (y * 255 // 479), ((x // 32 + y // 32) % 2) * 200 + 30], axis=-1)
    buf = io.BytesIO()
    Image.fromarray(img.astype(np.uint8), "RGB").save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def request(port, body, content_type, timeout=600):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", "/invocations", body=body, headers={"Content-Type": content_type})
        r = c.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"status {r.status}: {data[:200]!r}")
        return json.loads(data)
    finally:
        c.close()


def wait_ready(port, started, timeout=900):
    while time.time() - started < timeout:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/ping")
            if c.getresponse().status == 200:
                return time.time() - started
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("the server did not come up")


def rss_mb(pgid):
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.getpgid(int(pid)) != pgid:
                continue
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except (OSError, ProcessLookupError):
            pass
    return total / 1024


def measure(port, jpeg, n):
    for _ in range(3):  # warm both servers' caches and pools
        request(port, jpeg, "image/jpeg")
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        request(port, jpeg, "image/jpeg")
        lat.append((time.perf_counter() - t) * 1000)
    done = []

    def client():
        for _ in range(n // 2):
            request(port, jpeg, "image/jpeg")
            done.append(1)

    t = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    four = len(done) / (time.perf_counter() - t)
    batch = json.dumps({"inputs": [base64.b64encode(jpeg).decode()] * 16})
    request(port, batch, "application/json")
    t = time.perf_counter()
    for _ in range(2):
        request(port, batch, "application/json")
    batch_rate = 32 / (time.perf_counter() - t)
    return {"single_ms": statistics.median(lat), "four_clients_img_s": four, "batch16_img_s": batch_rate}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--server-cmd", required=True)
    ap.add_argument("--toolkit-serve", default=None)
    ap.add_argument("--port", type=int, default=8098)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--markdown", default=None)
    args = ap.parse_args()
    jpeg = make_jpeg()
    rows = {}
    cmd = args.server_cmd.format(model=args.model, port=args.port)
    started = time.time()
    proc = subprocess.Popen(cmd, shell=True, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        cold = wait_ready(args.port, started)
        rows["ours"] = measure(args.port, jpeg, args.requests)
        rows["ours"]["cold_start_s"] = cold
        rows["ours"]["rss_mb"] = rss_mb(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
    if args.toolkit_serve:
        started = time.time()
        pid = int(subprocess.check_output([args.toolkit_serve, "image-classification", args.model, str(args.port)]).decode().strip())
        try:
            cold = wait_ready(args.port, started)
            rows["toolkit"] = measure(args.port, jpeg, args.requests)
            rows["toolkit"]["cold_start_s"] = cold
            rows["toolkit"]["rss_mb"] = rss_mb(pid)
        finally:
            subprocess.call([os.path.join(os.path.dirname(args.toolkit_serve), "stop.sh"), str(pid)])
    print(json.dumps(rows, indent=2))
    name = os.path.basename(args.model.rstrip("/"))
    lines = [f"| {name} (image-classification, 640x480 JPEG) | ours | toolkit | ratio |", "| --- | --- | --- | --- |"]

    def row(label, key, fmt, better_low):
        o = rows["ours"].get(key)
        t = rows.get("toolkit", {}).get(key)
        ratio = "" if t is None else f"{(t / o if better_low else o / t):.2f}x"
        tt = "" if t is None else fmt.format(t)
        lines.append(f"| {label} | {fmt.format(o)} | {tt} | {ratio} |")

    row("cold start to /ping 200, s", "cold_start_s", "{:.2f}", True)
    row(f"single image, median of {args.requests}, ms", "single_ms", "{:.1f}", True)
    row("4 clients, images/s", "four_clients_img_s", "{:.1f}", False)
    row("one request of 16 images, images/s", "batch16_img_s", "{:.1f}", False)
    row("server RSS after the run, MiB", "rss_mb", "{:.0f}", True)
    md = "\n".join(lines) + "\n"
    print(md)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write(md + "\n")


if __name__ == "__main__":
    main()
