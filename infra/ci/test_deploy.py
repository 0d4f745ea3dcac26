"""The deploy scripts without an AWS account: infra/pack-model.sh's archive, infra/deploy.sh's
dry run (which must run nothing), and every infra/deploy.sh and infra/pack-model.sh command of
docs/deploy.md, run here as the docs write them (deploy.sh with DRY_RUN=1).

    python3 -m unittest discover -s infra/ci -p 'test_deploy.py' -v
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "models", "text-classification")


def sh(args, env=None, check=True):
    p = subprocess.run(args, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


class PackModel(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def pack(self, src, check=True):
        out = os.path.join(self.tmp, "out", "model.tar.gz")
        return sh(["bash", "infra/pack-model.sh", src, out], check=check), out

    def test_files_at_the_root_reproducibly(self):
        _, out = self.pack(FIXTURE)
        with tarfile.open(out) as t:
            members = t.getmembers()
        self.assertEqual(sorted(m.name for m in members), sorted(os.listdir(FIXTURE)))
        for m in members:
            self.assertTrue(m.isfile() and "/" not in m.name, m.name)
            self.assertEqual((m.uid, m.gid, m.mtime), (0, 0, 0), m.name)
        with open(out, "rb") as f:
            first = f.read()
        self.pack(FIXTURE)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), first, "the same directory must give the same archive")

    def test_one_weight_format_and_only_the_top_level(self):
        src = os.path.join(self.tmp, "sharded")
        os.makedirs(os.path.join(src, "onnx"))
        index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
        files = {"config.json": "{}", "tokenizer.json": "{}", "model.safetensors.index.json": json.dumps(index),
                 "model-00001-of-00002.safetensors": "1", "model-00002-of-00002.safetensors": "2",
                 "pytorch_model.bin": "x", "tf_model.h5": "x", "README.md": "x", "onnx/model.onnx": "x",
                 "generation_config.json": "{}"}
        for name, text in files.items():
            with open(os.path.join(src, name), "w") as f:
                f.write(text)
        p, out = self.pack(src)
        with tarfile.open(out) as t:
            names = sorted(t.getnames())
        self.assertEqual(names, ["config.json", "generation_config.json", "model-00001-of-00002.safetensors",
                                 "model-00002-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.json"])
        self.assertIn("left out: README.md onnx/", p.stderr)

    def test_refuses_custom_code_and_a_model_without_weights(self):
        src = os.path.join(self.tmp, "with-code")
        shutil.copytree(FIXTURE, src)
        os.makedirs(os.path.join(src, "code"))
        p, out = self.pack(src, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("code is custom inference code", p.stderr)
        self.assertFalse(os.path.exists(out))
        shutil.rmtree(os.path.join(src, "code"))
        os.remove(os.path.join(src, "model.safetensors"))
        p, _ = self.pack(src, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("has no weights", p.stderr)


class DeployDryRun(unittest.TestCase):
    """deploy.sh with aws, docker and cargo replaced by stubs that record any call."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.log = os.path.join(self.tmp, "calls")
        bin_dir = os.path.join(self.tmp, "bin")
        os.makedirs(bin_dir)
        for tool in ["aws", "docker", "cargo"]:
            path = os.path.join(bin_dir, tool)
            with open(path, "w") as f:
                f.write(f'#!/bin/sh\necho "{tool} $*" >> {shlex.quote(self.log)}\n'
                        # docker login reads the password from the pipe
                        'case "$*" in *--password-stdin*) cat >/dev/null ;; esac\necho 111122223333\n')
            os.chmod(path, 0o755)
        self.env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HF_DEPLOY_BUCKET": "my-bucket",
                    "AWS_REGION": "eu-west-1", "DRY_RUN": "", "AWS_ACCOUNT_ID": ""}

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def calls(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return f.read().splitlines()

    def deploy(self, *args, check=True):
        return sh(["bash", "infra/deploy.sh", *args], env=self.env, check=check)

    def test_a_dry_run_prints_every_command_and_runs_none(self):
        out = ""
        for args in [["build", "cpu"], ["build", "arm64"], ["build", "cuda"], ["push", "cpu"],
                     ["model", FIXTURE, "sst2"], ["zip", "lambda-proxy", "--arm64"], ["upload", "lambda-proxy"],
                     ["stack", "sagemaker-endpoint", "hf-demo", "HfTask=text-classification"],
                     ["invoke", "hf-demo"], ["predict", "hf-demo"], ["delete", "hf-demo"]]:
            out += self.deploy("--dry-run", *args).stdout
        self.assertEqual(self.calls(), [])
        expected = [
            "+ docker build --platform linux/amd64 -f infra/Dockerfile -t hf-inference-rs:cpu .",
            "+ docker build --platform linux/arm64 -f infra/Dockerfile -t hf-inference-rs:arm64 .",
            "+ docker build --platform linux/amd64 -f infra/Dockerfile --target cuda -t hf-inference-rs:cuda .",
            "+ docker push 123456789012.dkr.ecr.eu-west-1.amazonaws.com/hf-inference-rs:cpu",
            "+ aws s3 cp target/deploy/sst2/model.tar.gz s3://my-bucket/models/sst2/model.tar.gz --region eu-west-1",
            "+ cargo lambda build --release --locked --arm64 --output-format zip -p hf-inference-lambda --bin lambda-proxy --no-default-features",
            "+ aws s3 cp target/lambda/lambda-proxy/bootstrap.zip s3://my-bucket/lambda/lambda-proxy.zip --region eu-west-1",
            "+ aws cloudformation deploy --region eu-west-1 --template-file infra/templates/sagemaker-endpoint/template.yaml --stack-name hf-demo --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset --parameter-overrides HfTask=text-classification",
            "+ aws cloudformation delete-stack --region eu-west-1 --stack-name hf-demo",
            "+ aws cloudformation wait stack-delete-complete --region eu-west-1 --stack-name hf-demo",
        ]
        for line in expected:
            self.assertIn(line, out.splitlines())
        self.assertIn("aws sagemaker-runtime invoke-endpoint --region eu-west-1 --endpoint-name", out)
        self.assertIn("Predictor(sys.argv[1], serializer=JSONSerializer(), deserializer=JSONDeserializer())", out)
        # the model really was packed (packing needs no account)
        self.assertTrue(os.path.exists(os.path.join(ROOT, "target", "deploy", "sst2", "model.tar.gz")))

    def test_without_the_dry_run_the_commands_run(self):
        self.env["AWS_ACCOUNT_ID"] = "111122223333"
        self.deploy("push", "cpu")
        calls = self.calls()
        self.assertIn("docker push 111122223333.dkr.ecr.eu-west-1.amazonaws.com/hf-inference-rs:cpu", calls)
        self.assertTrue(any(c.startswith("aws ecr get-login-password --region eu-west-1") for c in calls), calls)
        self.env["DRY_RUN"] = "1"
        before = len(self.calls())
        self.deploy("delete", "hf-demo")
        self.assertEqual(len(self.calls()), before)

    def test_mistakes_are_refused_before_any_call(self):
        p = self.deploy("--dry-run", "stack", "sagemaker-endpoint", "x", "Nope=1", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("has no parameter Nope", p.stderr)
        p = self.deploy("--dry-run", "stack", "no-such-template", "x", check=False)
        self.assertIn("no template", p.stderr)
        p = self.deploy("--dry-run", "build", "gpu", check=False)
        self.assertIn("unknown image gpu", p.stderr)
        self.env["HF_DEPLOY_BUCKET"] = ""
        p = self.deploy("--dry-run", "upload", "lambda-proxy", check=False)
        self.assertIn("set HF_DEPLOY_BUCKET", p.stderr)
        self.assertEqual(self.calls(), [])


def commands(text):
    """The infra/deploy.sh and infra/pack-model.sh lines of a Markdown text's bash blocks."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith(("infra/deploy.sh", "infra/pack-model.sh")):
                lines.append(line)
    return lines


class DocsCommands(unittest.TestCase):
    """Every infra/deploy.sh and infra/pack-model.sh line of docs/deploy.md and of the README's
    Deploy section runs here."""

    def run_all(self, lines):
        env = {"DRY_RUN": "1", "HF_DEPLOY_BUCKET": "my-bucket", "AWS_ACCOUNT_ID": ""}
        for line in lines:
            p = sh(["bash", "-c", line], env=env, check=False)
            self.assertEqual(p.returncode, 0, f"{line}\n{p.stdout}\n{p.stderr}")

    def test_the_readme_deploy_section_runs(self):
        with open(os.path.join(ROOT, "README.md")) as f:
            text = f.read()
        section = text.split("## Deploy\n", 1)[1].split("\n## ", 1)[0]
        lines = commands(section)
        self.assertEqual(len(lines), 4, lines)
        self.run_all(lines)

    def test_the_documented_commands_run(self):
        with open(os.path.join(ROOT, "docs", "deploy.md")) as f:
            text = f.read()
        blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
        lines = []
        for block in blocks:
            # join continuation lines, drop comments
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split(" #", 1)[0].strip()
                if line.startswith(("infra/deploy.sh", "infra/pack-model.sh")):
                    lines.append(line)
        self.assertGreaterEqual(len(lines), 10, lines)
        env = {"DRY_RUN": "1", "HF_DEPLOY_BUCKET": "my-bucket", "AWS_ACCOUNT_ID": ""}
        for line in lines:
            p = sh(["bash", "-c", line], env=env, check=False)
            self.assertEqual(p.returncode, 0, f"{line}\n{p.stdout}\n{p.stderr}")


if __name__ == "__main__":
    unittest.main()
