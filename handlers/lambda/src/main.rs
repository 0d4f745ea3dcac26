//! `lambda-proxy`: the Lambda front-end (see the crate docs). On Lambda it serves the runtime
//! API through `lambda_http` (API Gateway REST/HTTP, ALB, function URLs); locally,
//! `cargo lambda watch` runs it behind an emulated function URL.

use std::sync::Arc;
use std::time::Duration;

use hf_inference_core::{load_pipeline, InferenceService, LoadOptions, Runtime, RuntimeOptions};
use hf_inference_lambda::{client_from_env, router, strip_http_api_stage, Proxy, Routes};

fn main() -> Result<(), lambda_http::Error> {
    // REST API stages are deployment details, not part of our routes (set before any thread)
    if std::env::var_os("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH").is_none() {
        std::env::set_var("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true");
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .without_time()
        .init();
    let routes = Routes::from_env()?;
    let timeout = match std::env::var("HF_PROXY_TIMEOUT_SECONDS") {
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("HF_PROXY_TIMEOUT_SECONDS={v:?} is not a number of seconds"))?,
        Err(_) => 60,
    };
    let has_endpoints = routes
        .0
        .values()
        .any(|r| matches!(r.target, hf_inference_lambda::Target::Endpoint { .. }));
    let client = if has_endpoints {
        Some(client_from_env(Duration::from_secs(timeout.max(1))).await)
    } else {
        None
    };
    let local = if routes.needs_model() {
        let dir = std::env::var("HF_MODEL_DIR").unwrap_or_else(|_| "/var/task/model".into());
        let task = routes
            .0
            .values()
            .find(|r| r.target == hf_inference_lambda::Target::Local)
            .map(|r| r.task);
        let pipeline = load_pipeline(&LoadOptions::local(
            dir,
            task.map(|t| t.id().parse()).transpose()?,
        ))?;
        pipeline.warm_up()?;
        let runtime = Runtime::new(RuntimeOptions {
            workers: 2,
            queue_capacity: 16,
            timeout: Duration::from_secs(timeout.max(1)),
        })?;
        Some(InferenceService::new(pipeline, runtime))
    } else {
        None
    };
    let proxy = Proxy::new(routes, client, local)?;
    // A function URL with InvokeMode RESPONSE_STREAM (or API Gateway's response streaming)
    // delivers streamed bodies as they are written; buffered invocation modes get them whole.
    let streaming = std::env::var("HF_PROXY_RESPONSE_STREAM")
        .is_ok_and(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "True"));
    let app = tower::ServiceBuilder::new()
        .map_request(strip_http_api_stage)
        .service(router(Arc::new(proxy)));
    if streaming {
        lambda_http::run_with_streaming_response(app).await
    } else {
        lambda_http::run(app).await
    }
}
