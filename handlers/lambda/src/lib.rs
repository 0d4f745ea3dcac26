//! # hf-inference-lambda
//!
//! The Lambda front-end: an HTTP function (API Gateway REST and HTTP APIs, ALB, function URLs,
//! through `lambda_http`) that validates each payload against its task's JSON Schema and
//! proxies it to a SageMaker endpoint with `InvokeEndpoint`, or runs the model in-process.
//!
//! Routes come from configuration only, so a caller can never make the function's role invoke
//! an endpoint it was not given: `SAGEMAKER_ENDPOINT_NAME` + `HF_TASK` serve `POST /invocations`;
//! `HF_ROUTES` (JSON, or a file named by `HF_ROUTES_FILE`) maps `POST /{name}/invocations` to an
//! endpoint (or to the function's own model) and a task. An asynchronous route writes the body to
//! S3, calls `InvokeEndpointAsync` (202), and serves the result from `GET /{name}/results`.
//!
//! Nothing invalid reaches an endpoint: body size, media types, JSON well-formedness and the
//! request schema are checked first (400 listing the schema errors); routes on image tasks also
//! take the image itself (`image/png`, `image/jpeg`, ...), sent on byte for byte, and refuse other
//! media types with a 415. The endpoint's answer is
//! returned as it came; its errors are mapped: a `ModelError` gives the container's own status
//! and body, throttling 429, a model not ready or a service unavailable 503 with `Retry-After`,
//! a timeout 504, anything else 502 with the AWS request id. Errors of the proxy's own use the
//! container's body and kinds ([`ProxyError`]).
//!
//! In-process routes need the inference engine and sit behind the default `local` feature; a
//! build with `--no-default-features` only proxies and links no engine.
//!
//! ```no_run
//! use std::sync::Arc;
//! use clap::Parser;
//!
//! # async fn demo() -> Result<(), hf_inference_lambda::ConfigError> {
//! let config = hf_inference_lambda::Config::parse();
//! let proxy = config.proxy(hf_inference_lambda::client_from_env).await?;
//! let app = hf_inference_lambda::router(Arc::new(proxy));
//! # drop(app);
//! # Ok(()) }
//! ```

mod asynchronous;
mod config;
mod error;
#[cfg(feature = "local")]
mod local;
mod proxy;
mod stream;
mod sync;
mod upstream;

use std::future::Future;
use std::time::Duration;

pub use config::{ConfigError, ProxyArgs, Route, Routes, Target};
pub use error::ProxyError;
pub use proxy::{router, strip_http_api_stage, LocalModel, Proxy};
pub use upstream::{client_from_env, map_sdk_error, map_upstream_error, ContainerError};

/// SageMaker's `InvokeEndpoint` payload limit (and about Lambda's synchronous one).
pub const MAX_BODY: usize = 6 * 1024 * 1024;

/// The function's configuration: every option also reads an environment variable (`--help`).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "lambda-proxy",
    version,
    about = "Hugging Face inference on Lambda: schema-checked proxy to SageMaker endpoints, or the model in-process"
)]
pub struct Config {
    /// Routes and proxy settings.
    #[command(flatten)]
    pub proxy: ProxyArgs,

    /// The model of in-process routes (default /var/task/model); the task is the routes'.
    #[cfg(feature = "local")]
    #[command(flatten)]
    pub model: hf_inference_host::ModelArgs,

    /// The per-request limits of in-process routes.
    #[cfg(feature = "local")]
    #[command(flatten)]
    pub limits: hf_inference_host::LimitsArgs,

    /// The inference threads of in-process routes (default two threads, 16 queued, and
    /// HF_PROXY_TIMEOUT_SECONDS).
    #[cfg(feature = "local")]
    #[command(flatten)]
    pub runtime: hf_inference_host::RuntimeArgs,
}

impl Config {
    /// Builds the proxy: the routes, a SageMaker client from `client` when any route calls an
    /// endpoint (synchronous or asynchronous), and the local model when any route runs in-process.
    pub async fn proxy<F, Fut>(&self, client: F) -> Result<Proxy, ConfigError>
    where
        F: FnOnce(Duration) -> Fut,
        Fut: Future<Output = aws_sdk_sagemakerruntime::Client>,
    {
        let routes = self.proxy.routes()?;
        let timeout = Duration::from_secs(self.proxy.proxy_timeout.max(1));
        let client = match routes.needs_client() {
            true => Some(client(timeout).await),
            false => None,
        };
        let local = self.local_model(&routes, timeout).await?;
        Proxy::new(routes, client, local)
    }

    #[cfg(feature = "local")]
    async fn local_model(
        &self,
        routes: &Routes,
        timeout: Duration,
    ) -> Result<Option<LocalModel>, ConfigError> {
        local::load(routes, &self.model, &self.limits, &self.runtime, timeout).await
    }

    /// A build without in-process routes loads nothing ([`Proxy::new`] refuses local routes).
    #[cfg(not(feature = "local"))]
    async fn local_model(
        &self,
        _routes: &Routes,
        _timeout: Duration,
    ) -> Result<Option<LocalModel>, ConfigError> {
        Ok(None)
    }
}
