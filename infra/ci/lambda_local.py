"""Runs a Lambda function's bootstrap (from a cargo lambda zip) on this machine against a stand-in
for the Lambda Runtime API, hands it one event, and reports what it answered and how long the cold
start took; optionally in a cgroup limited to one vCPU (cgroup v1 `cpu` or v2 `cpu.max`), as
docs/deploy.md describes. With --hub-model DIR, a stand-in for the Hugging Face Hub serves DIR
as the repository `local/model` (HF_ENDPOINT), so the function fetches its model into /tmp at
cold start without a network.

    python3 infra/ci/lambda_local.py ZIP EVENT.json [--env K=V ...] [--one-cpu] [--hub-model DIR]
prints one JSON line: {"init_ms", "first_response_ms", "response", "error"}.
"""

import argparse
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

COMMIT = "0" * 40


class Runtime(http.server.BaseHTTPRequestHandler):
    """The Runtime API: one event on the first /next, then nothing (the function waits)."""

    event = b"{}"
    served = False
    result = {}
    done = threading.Event()
    next_at = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.endswith("/invocation/next"):
            if Runtime.next_at is None:
                Runtime.next_at = time.monotonic()
            if Runtime.served:
                Runtime.done.wait(30)
                self.send_response(500)
                self.end_headers()
                return
            Runtime.served = True
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", "req-1")
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 900_000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                             "arn:aws:lambda:us-east-1:123456789012:function:local")
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(Runtime.event)
        else:
            self.send_response(404)
            self.end_headers()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        kind = "response" if self.path.endswith("/response") else "error"
        Runtime.result = {"at": time.monotonic(), "kind": kind, "body": body.decode("utf-8", "replace")}
        self.send_response(202)
        self.end_headers()
        Runtime.done.set()


def hub_handler(model_dir):
    files = sorted(os.listdir(model_dir))
    blobs = {}
    for f in files:
        with open(os.path.join(model_dir, f), "rb") as fh:
            data = fh.read()
        blobs[f] = (data, hashlib.sha256(data).hexdigest())

    class Hub(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _file(self):
            prefix = f"/local/model/resolve/{COMMIT}/"
            name = self.path[len(prefix):] if self.path.startswith(prefix) else None
            return blobs.get(name) if name else None

        def do_HEAD(self):
            f = self._file()
            if f is None:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("ETag", f'"{f[1]}"')
            self.send_header("Content-Length", str(len(f[0])))
            self.end_headers()

        def do_GET(self):
            if self.path.startswith("/api/models/local/model/revision/"):
                body = json.dumps({"sha": COMMIT, "siblings": [{"rfilename": f} for f in files]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            f = self._file()
            if f is None:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(f[0])))
            self.end_headers()
            self.wfile.write(f[0])

    return Hub


def serve(handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def one_cpu_cgroup():
    """A cgroup with one vCPU of quota; returns (path, the file to write a pid into) or None."""
    name = f"hf-lambda-local-{os.getpid()}"
    v1 = "/sys/fs/cgroup/cpu"
    if os.path.isdir(v1) and os.path.exists(os.path.join(v1, "cpu.cfs_quota_us")):
        path = os.path.join(v1, name)
        os.mkdir(path)
        with open(os.path.join(path, "cpu.cfs_period_us"), "w") as f:
            f.write("100000")
        with open(os.path.join(path, "cpu.cfs_quota_us"), "w") as f:
            f.write("100000")
        return path
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        path = os.path.join("/sys/fs/cgroup", name)
        os.mkdir(path)
        with open(os.path.join(path, "cpu.max"), "w") as f:
            f.write("100000 100000")
        return path
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("zip")
    ap.add_argument("event")
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--one-cpu", action="store_true")
    ap.add_argument("--hub-model")
    args = ap.parse_args()

    task = tempfile.mkdtemp(prefix="var-task-")
    tmp = tempfile.mkdtemp(prefix="lambda-tmp-")
    with zipfile.ZipFile(args.zip) as z:
        z.extractall(task)
    bootstrap = os.path.join(task, "bootstrap")
    os.chmod(bootstrap, 0o755)
    with open(args.event, "rb") as f:
        Runtime.event = f.read()
    runtime = serve(Runtime)
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{runtime.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "local",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/local",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "LAMBDA_TASK_ROOT": task,
        "TMPDIR": tmp,
        "RUST_LOG": "warn",
    }
    for kv in args.env:
        k, v = kv.split("=", 1)
        env[k] = v.replace("{task}", task).replace("{tmp}", tmp)
    if args.hub_model:
        hub = serve(hub_handler(args.hub_model))
        env.update({"HF_ENDPOINT": f"http://127.0.0.1:{hub.server_address[1]}", "HF_MODEL_ID": "local/model",
                    "HF_HOME": os.path.join(tmp, "hf")})
    cgroup = one_cpu_cgroup() if args.one_cpu else None
    if args.one_cpu and cgroup is None:
        sys.exit("lambda_local: no writable cpu cgroup here for --one-cpu")

    def enter_cgroup():
        if cgroup:
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))

    start = time.monotonic()
    proc = subprocess.Popen([bootstrap], env=env, cwd=task, preexec_fn=enter_cgroup,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    finished = Runtime.done.wait(120)
    proc.kill()
    logs = proc.communicate()[0].decode("utf-8", "replace")
    if cgroup:
        os.rmdir(cgroup)
    shutil.rmtree(task)
    shutil.rmtree(tmp)
    out = {
        "init_ms": round((Runtime.next_at - start) * 1000, 1) if Runtime.next_at else None,
        "first_response_ms": round((Runtime.result["at"] - start) * 1000, 1) if finished else None,
        "kind": Runtime.result.get("kind"),
        "response": Runtime.result.get("body"),
    }
    if not finished or out["kind"] != "response":
        out["logs"] = logs[-4000:]
    print(json.dumps(out))
    sys.exit(0 if finished and out["kind"] == "response" else 1)


if __name__ == "__main__":
    main()
