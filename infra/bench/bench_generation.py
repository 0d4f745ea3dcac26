#!/usr/bin/env python3
"""Generation benchmark, ours and the Python toolkit side by side (stdlib client).

    python3 infra/bench/bench_generation.py --model DIR --task text-generation \
        --server-cmd 'HF_TASK={task} HF_MODEL_DIR={model} SAGEMAKER_BIND_TO_PORT={port} serve' \
        [--toolkit-serve ../shared/reference/serve.sh] [--new-tokens 32] [--requests 3] [--repeats 3] [--markdown F]

Every request asks for exactly --new-tokens tokens (min_new_tokens = max_new_tokens, greedy), so
both servers do the same work. Measures, per server:
  ttft         latency of a request for one new token (the toolkit cannot stream; for us the first
               Server-Sent Event of a streamed request is reported too)
  1 stream     sequential requests: new tokens per second
  4 streams    four clients at once (one connection each): total new tokens per second, the
               median of --repeats runs (one run of 4 x --requests requests moves by +-15% on a
               shared host)
Every request goes to 127.0.0.1; loops are bounded by count.
"""
import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import threading
import time

PROMPT = "w100 w200 w300 w400 w500 w600 w700 w800 w900 w1000 w1100 w1200 w1300 w1400 w1500 w1600"


def request(port, body, accept=None, timeout=1800):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if accept:
        headers["Accept"] = accept
    t0 = time.perf_counter()
    conn.request("POST", "/invocations", body=json.dumps(body), headers=headers)
    resp = conn.getresponse()
    first = None
    chunks = []
    while True:
        c = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
        if not c:
            break
        if first is None:
            first = time.perf_counter() - t0
        chunks.append(c)
    total = time.perf_counter() - t0
    conn.close()
    if resp.status != 200:
        raise RuntimeError(f"status {resp.status}: {b''.join(chunks)[:300]!r}")
    return total, first


def body(n, stream=False):
    p = {"max_new_tokens": n, "min_new_tokens": n, "do_sample": False}
    if stream:
        p["stream"] = True
    return {"inputs": PROMPT, "parameters": p}


def wait_ready(port, timeout=900):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            request(port, body(1), timeout=600)
            return
        except Exception:
            time.sleep(1)
    raise RuntimeError("server did not come up")


def measure(port, n, requests, ours, repeats=1):
    out = {}
    ttft = [request(port, body(1))[0] for _ in range(requests)]
    out["ttft_ms"] = statistics.median(ttft) * 1000
    if ours:
        firsts = [request(port, body(n, stream=True), accept="text/event-stream")[1] for _ in range(requests)]
        out["sse_first_event_ms"] = statistics.median(firsts) * 1000
    lat = [request(port, body(n))[0] for _ in range(requests)]
    out["one_stream_tok_s"] = n / statistics.median(lat)
    results = []

    def client():
        for _ in range(requests):
            results.append(request(port, body(n))[0])

    runs = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        runs.append(4 * requests * n / (time.perf_counter() - t0))
    out["four_streams_runs_tok_s"] = runs
    out["four_streams_tok_s"] = statistics.median(runs)
    return out


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--task", default="text-generation")
    ap.add_argument("--server-cmd", required=True)
    ap.add_argument("--toolkit-serve", default=None, help="the reference harness's serve.sh: measure the toolkit too")
    ap.add_argument("--port", type=int, default=8097)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--requests", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3, help="4-stream runs per server (the median is reported)")
    ap.add_argument("--markdown", default=None)
    args = ap.parse_args()
    rows = {}
    cmd = args.server_cmd.format(task=args.task, model=args.model, port=args.port)
    proc = subprocess.Popen(cmd, shell=True, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(args.port)
        rows["ours"] = measure(args.port, args.new_tokens, args.requests, True, args.repeats)
        rows["ours"]["rss_mb"] = rss_mb(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
    if args.toolkit_serve:
        pid = int(subprocess.check_output([args.toolkit_serve, args.task, args.model, str(args.port)]).decode().strip())
        try:
            wait_ready(args.port)
            rows["toolkit"] = measure(args.port, args.new_tokens, args.requests, False, args.repeats)
            rows["toolkit"]["rss_mb"] = rss_mb(pid)
        finally:
            subprocess.call([os.path.join(os.path.dirname(args.toolkit_serve), "stop.sh"), str(pid)])
    print(json.dumps(rows, indent=2))
    name = os.path.basename(args.model.rstrip("/"))
    lines = [f"| {name} ({args.task}, {args.new_tokens} new tokens) | ours | toolkit | ratio |", "| --- | --- | --- | --- |"]
    def row(label, key, fmt, better_low):
        o = rows["ours"].get(key)
        t = rows.get("toolkit", {}).get(key)
        if o is None:
            return
        ratio = "" if t is None else f"{(t / o if better_low else o / t):.2f}x"
        tt = "" if t is None else fmt.format(t)
        lines.append(f"| {label} | {fmt.format(o)} | {tt} | {ratio} |")
    row("time to first token (1-token request), ms", "ttft_ms", "{:.0f}", True)
    row("first streamed event, ms", "sse_first_event_ms", "{:.0f}", True)
    row("1 stream, new tokens/s", "one_stream_tok_s", "{:.2f}", False)
    row(f"4 streams, new tokens/s (total, median of {args.repeats} runs)", "four_streams_tok_s", "{:.2f}", False)
    row("server RSS after the run, MiB", "rss_mb", "{:.0f}", True)
    md = "\n".join(lines) + "\n"
    print(md)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write(md + "\n")


if __name__ == "__main__":
    main()
