# syntax=docker/dockerfile:1.7
# Lambda container images, for functions whose model is too big for a zip (250 MB unzipped):
#   docker build -f infra/lambda.Dockerfile --build-arg HANDLER=async-handler \
#     --build-context model=path/to/model -t hf-async-handler .            # the model in /var/task/model
#   docker build -f infra/lambda.Dockerfile --target runtime --build-arg HANDLER=lambda-proxy \
#     --build-arg CARGO_ARGS=--no-default-features -t hf-lambda-proxy .   # proxy only, no model
#   add --platform linux/arm64 for Graviton functions (Architectures: arm64)
# The binary is its own runtime interface client (lambda_runtime talks to the Runtime API); the
# base image adds the runtime interface emulator, so `docker run -p 9000:8080 IMAGE` answers
# locally on /2015-03-31/functions/function/invocations. Lambda runs it as a non-root user.

ARG RUST_VERSION=1.95.0

# cross-compiled on the build machine's own platform by cargo lambda (zig as the linker, for
# Amazon Linux's glibc), whatever the target platform: no emulation
FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-slim-bookworm AS build
ARG TARGETARCH
ARG HANDLER=async-handler
ARG CARGO_ARGS=""
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-pip nasm make \
 && rm -rf /var/lib/apt/lists/*
RUN pip3 install --no-cache-dir --break-system-packages cargo-lambda==1.9.2 ziglang==0.17.1 \
 && rustup target add x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu
WORKDIR /src
COPY . .
# CARGO_ARGS is a list of words on purpose (e.g. --no-default-features)
# hadolint ignore=SC2086
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    arch=$([ "$TARGETARCH" = arm64 ] && echo --arm64 || echo --x86-64) \
 && cargo lambda build --release --locked "$arch" --bin "$HANDLER" $CARGO_ARGS \
 && cp "target/lambda/$HANDLER/bootstrap" /bootstrap

# the model's files: give them with --build-context model=DIR (this empty stage is the default)
FROM scratch AS model

FROM public.ecr.aws/lambda/provided:al2023 AS runtime
COPY --from=build /bootstrap /var/runtime/bootstrap
ENV RUST_LOG=info
# provided runtimes ignore the handler name; the base image's entrypoint starts /var/runtime/bootstrap
CMD ["bootstrap"]

FROM runtime AS with-model
COPY --from=model / /var/task/model/
ENV HF_MODEL_DIR=/var/task/model
