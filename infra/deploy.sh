#!/usr/bin/env bash
# From this repository to an endpoint: build and push the images, pack and upload the model, build
# and upload the Lambda zips, create the stacks of infra/templates/, invoke, tear down.
# docs/deploy.md walks through it. Every AWS call goes through the AWS CLI with your usual
# credentials; with DRY_RUN=1 (or --dry-run) nothing runs and every command is printed instead,
# which needs no account, no credentials and no Docker (CI runs it so).
#
#   infra/deploy.sh [--dry-run] COMMAND ARGS...
#     build   IMAGE                      docker build one image: cpu | arm64 | cuda | lambda-proxy | async-lambda
#     push    IMAGE                      create the ECR repository if needed, log in, push; prints the image URI
#     model   MODEL_DIR NAME             pack MODEL_DIR (infra/pack-model.sh) and upload it to s3://$HF_DEPLOY_BUCKET/models/NAME/model.tar.gz
#     zip     HANDLER [--arm64] [--model DIR]   cargo lambda build --release --output-format zip: lambda-proxy
#                                        (proxy only) | lambda-proxy-local | async-handler; --model adds DIR's
#                                        files under model/ (/var/task/model on Lambda)
#     upload  HANDLER                    copy its zip to s3://$HF_DEPLOY_BUCKET/lambda/HANDLER.zip
#     stack   TEMPLATE STACK [Key=Value...]   create or update STACK from infra/templates/TEMPLATE
#     invoke  STACK [JSON]               InvokeEndpoint on the stack's endpoint with the AWS CLI
#     predict STACK [JSON]               the same with the SageMaker Python SDK's Predictor
#     delete  STACK                      delete the stack and wait
# Environment: AWS_REGION (us-east-1), HF_DEPLOY_BUCKET (an S3 bucket of yours for models and zips),
# HF_DEPLOY_REPOSITORY (ECR repository name, hf-inference-rs), AWS_ACCOUNT_ID (asked of STS when unset).
set -euo pipefail
cd "$(dirname "$0")/.."

dry=${DRY_RUN:-0}
if [ "${1:-}" = --dry-run ]; then dry=1; shift; fi
case "$dry" in 1 | true | yes) dry=1 ;; *) dry=0 ;; esac
region=${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}
repository=${HF_DEPLOY_REPOSITORY:-hf-inference-rs}
bucket=${HF_DEPLOY_BUCKET:-}

die() { echo "deploy: $*" >&2; exit 1; }
# run CMD...: prints the command (quoted as a shell would read it back), then runs it unless dry
run() {
  printf '+'; printf ' %q' "$@"; printf '\n'
  [ "$dry" = 1 ] || "$@"
}
# runs a pipeline given as one string (printed as is)
run_sh() {
  printf '+ %s\n' "$1"
  [ "$dry" = 1 ] || bash -o pipefail -c "$1"
}
# the output value of a stack; a placeholder in a dry run
stack_output() {
  if [ "$dry" = 1 ]; then
    echo "<$2 of $1>"
  else
    aws cloudformation describe-stacks --region "$region" --stack-name "$1" \
      --query "Stacks[0].Outputs[?OutputKey=='$2'].OutputValue" --output text
  fi
}
account() {
  if [ -n "${AWS_ACCOUNT_ID:-}" ]; then
    echo "$AWS_ACCOUNT_ID"
  elif [ "$dry" = 1 ]; then
    echo 123456789012
  else
    aws sts get-caller-identity --query Account --output text
  fi
}
need_bucket() { [ -n "$bucket" ] || die "set HF_DEPLOY_BUCKET to an S3 bucket of yours (for models and Lambda zips)"; }
registry() { echo "$(account).dkr.ecr.$region.amazonaws.com"; }

# image name -> (tag, docker build arguments)
image_tag() {
  case "$1" in
    cpu | arm64 | cuda | lambda-proxy | async-lambda) echo "$1" ;;
    *) die "unknown image $1 (cpu, arm64, cuda, lambda-proxy, async-lambda)" ;;
  esac
}
build_args() {
  case "$1" in
    cpu) echo "--platform linux/amd64 -f infra/Dockerfile" ;;
    arm64) echo "--platform linux/arm64 -f infra/Dockerfile" ;;
    cuda) echo "--platform linux/amd64 -f infra/Dockerfile --target cuda" ;;
    lambda-proxy) echo "--platform linux/amd64 -f infra/lambda.Dockerfile --target runtime --build-arg HANDLER=lambda-proxy --build-arg CARGO_ARGS=--no-default-features" ;;
    # the model comes from --build-context model=DIR, given after the image name
    async-lambda) echo "--platform linux/amd64 -f infra/lambda.Dockerfile --target with-model --build-arg HANDLER=async-handler" ;;
  esac
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  build)
    [ $# -ge 1 ] || die "usage: deploy.sh build IMAGE [docker build options, e.g. --build-context model=DIR]"
    tag=$(image_tag "$1"); shift
    # shellcheck disable=SC2046 # the arguments are words on purpose
    run docker build $(build_args "$tag") -t "$repository:$tag" "$@" .
    ;;
  push)
    [ $# -eq 1 ] || die "usage: deploy.sh push IMAGE"
    tag=$(image_tag "$1")
    reg=$(registry)
    run_sh "aws ecr describe-repositories --region $region --repository-names $repository >/dev/null 2>&1 || aws ecr create-repository --region $region --repository-name $repository --image-scanning-configuration scanOnPush=true >/dev/null"
    run_sh "aws ecr get-login-password --region $region | docker login --username AWS --password-stdin $reg"
    run docker tag "$repository:$tag" "$reg/$repository:$tag"
    run docker push "$reg/$repository:$tag"
    echo "image: $reg/$repository:$tag"
    ;;
  model)
    [ $# -eq 2 ] || die "usage: deploy.sh model MODEL_DIR NAME"
    need_bucket
    out="target/deploy/$2/model.tar.gz"
    # packing needs no account: it runs in a dry run too
    bash infra/pack-model.sh "$1" "$out" >/dev/null
    run aws s3 cp "$out" "s3://$bucket/models/$2/model.tar.gz" --region "$region"
    echo "ModelDataUrl: s3://$bucket/models/$2/model.tar.gz"
    ;;
  zip)
    [ $# -ge 1 ] || die "usage: deploy.sh zip lambda-proxy|lambda-proxy-local|async-handler [--arm64] [--model DIR]"
    handler=$1; shift
    arch=()
    model=""
    while [ $# -gt 0 ]; do
      case "$1" in
        --arm64) arch=(--arm64) ;;
        --model) [ $# -ge 2 ] || die "--model needs a directory"; model=$2; shift ;;
        *) die "unknown option $1" ;;
      esac
      shift
    done
    case "$handler" in
      # proxy only: no inference engine linked (the smallest zip)
      lambda-proxy) run cargo lambda build --release --locked "${arch[@]}" --output-format zip -p hf-inference-lambda --bin lambda-proxy --no-default-features ;;
      # with `local` routes: the model runs in the function
      lambda-proxy-local) run cargo lambda build --release --locked "${arch[@]}" --output-format zip -p hf-inference-lambda --bin lambda-proxy ;;
      async-handler) run cargo lambda build --release --locked "${arch[@]}" --output-format zip -p hf-inference-async --bin async-handler ;;
      *) die "unknown handler $handler" ;;
    esac
    zip="target/lambda/${handler%-local}/bootstrap.zip"
    if [ -n "$model" ]; then
      [ -f "$model/config.json" ] || die "$model has no config.json"
      [ ! -d "$model/code" ] || die "$model/code is custom inference code, which the handlers refuse at start"
      run python3 -c 'import os, sys, zipfile
z = zipfile.ZipFile(sys.argv[1], "a", zipfile.ZIP_DEFLATED)
for n in sorted(os.listdir(sys.argv[2])):
    p = os.path.join(sys.argv[2], n)
    if os.path.isfile(p):
        z.write(p, "model/" + n)
z.close()' "$zip" "$model"
    fi
    echo "zip: $zip"
    ;;
  upload)
    [ $# -eq 1 ] || die "usage: deploy.sh upload lambda-proxy|async-handler"
    need_bucket
    run aws s3 cp "target/lambda/$1/bootstrap.zip" "s3://$bucket/lambda/$1.zip" --region "$region"
    echo "CodeS3Bucket=$bucket CodeS3Key=lambda/$1.zip"
    ;;
  stack)
    [ $# -ge 2 ] || die "usage: deploy.sh stack TEMPLATE STACK [Key=Value ...]"
    template="infra/templates/$1/template.yaml"
    [ -f "$template" ] || die "no template $template (see infra/templates/)"
    stack=$2; shift 2
    for kv in "$@"; do
      key=${kv%%=*}
      [ "$key" != "$kv" ] || die "parameter $kv is not Key=Value"
      grep -q "^  $key:\$" "$template" || die "$template has no parameter $key"
    done
    overrides=()
    [ $# -eq 0 ] || overrides=(--parameter-overrides "$@")
    run aws cloudformation deploy --region "$region" --template-file "$template" --stack-name "$stack" \
      --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset "${overrides[@]}"
    run aws cloudformation describe-stacks --region "$region" --stack-name "$stack" \
      --query "Stacks[0].Outputs" --output table
    ;;
  invoke)
    [ $# -ge 1 ] || die "usage: deploy.sh invoke STACK [JSON]"
    endpoint=$(stack_output "$1" EndpointName)
    body=${2:-'{"inputs": "I love this"}'}
    run aws sagemaker-runtime invoke-endpoint --region "$region" --endpoint-name "$endpoint" \
      --content-type application/json --accept application/json --cli-binary-format raw-in-base64-out \
      --body "$body" /dev/stdout
    ;;
  predict)
    [ $# -ge 1 ] || die "usage: deploy.sh predict STACK [JSON]"
    endpoint=$(stack_output "$1" EndpointName)
    body=${2:-'{"inputs": "I love this"}'}
    # the SageMaker Python SDK (pip install sagemaker): what HuggingFaceModel(...).deploy() returns
    run python3 -c 'import json, sys
from sagemaker.deserializers import JSONDeserializer
from sagemaker.predictor import Predictor
from sagemaker.serializers import JSONSerializer
p = Predictor(sys.argv[1], serializer=JSONSerializer(), deserializer=JSONDeserializer())
print(json.dumps(p.predict(json.loads(sys.argv[2]))))' "$endpoint" "$body"
    ;;
  delete)
    [ $# -eq 1 ] || die "usage: deploy.sh delete STACK"
    run aws cloudformation delete-stack --region "$region" --stack-name "$1"
    run aws cloudformation wait stack-delete-complete --region "$region" --stack-name "$1"
    ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    [ -z "$cmd" ] || [ "$cmd" = help ] || die "unknown command $cmd"
    ;;
esac
