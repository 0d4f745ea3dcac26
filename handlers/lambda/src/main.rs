//! `lambda-proxy`: the Lambda front-end (see the crate docs). On Lambda it serves the runtime
//! API through `lambda_http` (API Gateway REST/HTTP, ALB, function URLs); locally,
//! `cargo lambda watch` runs it behind an emulated function URL.

use std::sync::Arc;

use clap::Parser;
use hf_inference_host::{init_logging, LogFormat};
use hf_inference_lambda::{client_from_env, router, strip_http_api_stage, Config};

/// jemalloc, whose background thread gives freed memory back to the system within about half a
/// second (`dirty_decay_ms`), so RSS returns near its idle level after a burst of large requests
/// (glibc's malloc keeps what it grew to). Measured in docs/operations.md.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read from this symbol once when it starts.
#[allow(unsafe_code, non_upper_case_globals)] // an exported symbol (jemalloc's `malloc_conf`)
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] = b"background_thread:true,dirty_decay_ms:500,muzzy_decay_ms:0\0";

fn main() -> Result<(), lambda_http::Error> {
    // REST API stages are deployment details, not part of our routes (set before any thread)
    if std::env::var_os("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH").is_none() {
        std::env::set_var("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true");
    }
    let config = Config::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(config))
}

async fn run(config: Config) -> Result<(), lambda_http::Error> {
    init_logging(LogFormat::LambdaJson)?;
    let proxy = config.proxy(client_from_env).await?;
    // A function URL with InvokeMode RESPONSE_STREAM (or API Gateway's response streaming)
    // delivers streamed bodies as they are written; buffered invocation modes get them whole.
    let app = tower::ServiceBuilder::new()
        .map_request(strip_http_api_stage)
        .service(router(Arc::new(proxy)));
    if config.proxy.response_stream {
        lambda_http::run_with_streaming_response(app).await
    } else {
        lambda_http::run(app).await
    }
}
