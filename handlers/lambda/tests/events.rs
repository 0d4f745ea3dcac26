//! The sample events in handlers/lambda/events (API Gateway REST and HTTP APIs, the latter also
//! on a named stage, ALB, function URL) through lambda_http's own conversion, then the router.
//! Its own test binary: it sets `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH` as `main` does, before
//! any other test could read the environment.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;

use hf_inference_lambda::{router, Proxy, Route, Routes, Target};

#[test]
fn sample_events_through_lambda_http() {
    std::env::set_var("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}

async fn run() {
    // a stand-in endpoint that answers every call with the container's answer
    let container = hf_inference_tests::router_for("text-classification");
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let app = Router::new().route(
        "/endpoints/{name}/invocations",
        post(move |req: axum::extract::Request| {
            let container = container.clone();
            let counted = Arc::clone(&counted);
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                let (parts, body) = req.into_parts();
                let body = body.collect().await.unwrap().to_bytes();
                let mut fwd = axum::http::Request::post("/invocations");
                if let Some(ct) = parts.headers.get("content-type") {
                    fwd = fwd.header("content-type", ct);
                }
                container
                    .oneshot(fwd.body(Body::from(body)).unwrap())
                    .await
                    .unwrap()
                    .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = aws_sdk_sagemakerruntime::Client::from_conf(common::client_config(&url).build());
    let mut routes = Routes::default();
    routes.0.insert(
        String::new(),
        Route {
            task: hf_inference_core::Task::TextClassification,
            target: Target::Endpoint {
                name: "sentiment-prod".into(),
                variant: None,
            },
            validate_response: true,
        },
    );
    let app = router(Arc::new(Proxy::new(routes, Some(client), None).unwrap()));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    for (name, want) in [
        ("apigw-v1.json", 200),
        ("apigw-v2.json", 400),
        ("alb.json", 200),
        ("function-url.json", 200),
        ("apigw-v2-named-stage.json", 200),
    ] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let req = lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        // as main wraps the router: an HTTP API's named stage leaves the path
        let req = hf_inference_lambda::strip_http_api_stage(req);
        let (parts, body) = req.into_parts();
        let body = match body {
            lambda_http::Body::Empty => Vec::new(),
            lambda_http::Body::Text(t) => t.into_bytes(),
            lambda_http::Body::Binary(b) => b,
            _ => Vec::new(),
        };
        let resp = app
            .clone()
            .oneshot(axum::http::Request::from_parts(parts, Body::from(body)))
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let b = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(status, want, "{name}: {}", String::from_utf8_lossy(&b));
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "the invalid v2 payload was not sent on"
    );
}
