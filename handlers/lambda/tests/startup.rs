//! Start-up as `main` does it, from the configuration: a function with only asynchronous routes
//! gets its SageMaker client, and in-process routes read the same model, limit and runtime
//! variables as every host (an over-long input gets `serve`'s own 400).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Parser;
use hf_inference_lambda::Config;

fn client_maker(
    made: &AtomicUsize,
) -> impl FnOnce(std::time::Duration) -> std::future::Ready<aws_sdk_sagemakerruntime::Client> + '_ {
    move |_timeout| {
        made.fetch_add(1, Ordering::SeqCst);
        std::future::ready(aws_sdk_sagemakerruntime::Client::from_conf(
            common::client_config("http://127.0.0.1:9").build(),
        ))
    }
}

#[tokio::test]
async fn asynchronous_routes_alone_get_a_sagemaker_client() {
    let routes = r#"{"jobs": {"endpoint": "e", "task": "sentiment-analysis",
        "async_input_path": "s3://b/in/", "async_output_path": "s3://b/out/",
        "async_failure_path": "s3://b/fail/"}}"#;
    let config = Config::try_parse_from(["lambda-proxy", "--routes", routes]).unwrap();
    let made = AtomicUsize::new(0);
    let proxy = config.proxy(client_maker(&made)).await;
    assert!(proxy.is_ok(), "{proxy:?}");
    assert_eq!(made.load(Ordering::SeqCst), 1);
}

#[cfg(feature = "local")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_route_honours_the_request_token_limit_as_serve_does() {
    use std::sync::Arc;

    use axum::body::Body;
    use hf_inference_lambda::router;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    const LONG: &str = r#"{"inputs": "I love this movie, it is the best film I have seen in years and I would watch it again"}"#;
    let dir = hf_inference_tests::fixtures().join("models/text-classification");
    let dir = dir.to_str().unwrap();
    let config = Config::try_parse_from([
        "lambda-proxy",
        "--routes",
        r#"{"sentiment": {"local": true, "task": "text-classification"}}"#,
        "--model-dir",
        dir,
        "--task",
        "text-classification",
        "--max-request-tokens",
        "8",
        "--workers",
        "1",
        "--queue-capacity",
        "4",
    ])
    .unwrap();
    let made = AtomicUsize::new(0);
    let proxy = config.proxy(client_maker(&made)).await.unwrap();
    assert_eq!(
        made.load(Ordering::SeqCst),
        0,
        "no endpoint route, no client"
    );
    let app = router(Arc::new(proxy));

    // serve: its router over a service loaded by the shared host crate with the same limit
    let load = config.model.load_options(&config.limits).unwrap();
    let service =
        hf_inference_host::load_service(&load, hf_inference_core::RuntimeOptions::default())
            .unwrap();
    let serve = hf_inference_http::router(hf_inference_http::AppState::ready(
        hf_inference_http::HttpSettings::default(),
        service,
    ));

    let mut answers = Vec::new();
    for (app, path) in [(app, "/sentiment/invocations"), (serve, "/invocations")] {
        let req = axum::http::Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(LONG))
            .unwrap();
        let resp = app.oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        answers.push((status, String::from_utf8_lossy(&body).into_owned()));
    }
    assert_eq!(answers[0], answers[1], "the same answer as serve's");
    assert_eq!(answers[0].0, 400, "{}", answers[0].1);
    assert!(
        answers[0].1.contains("HF_MAX_REQUEST_TOKENS"),
        "{}",
        answers[0].1
    );
}
