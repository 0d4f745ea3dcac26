//! The Lambda front-end's streaming route against a local stand-in for SageMaker Runtime's
//! `InvokeEndpointWithResponseStream`: the double forwards to the real container router serving a
//! fixture generation model and sends each chunk of its Server-Sent Events as an AWS event-stream
//! `PayloadPart`, as SageMaker does; the proxy relays them as its own streamed body.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use hf_inference_lambda::{router, Proxy, Route, Routes, Target};

/// One event-stream message carrying `bytes` as a `PayloadPart`.
fn payload_part(bytes: &[u8]) -> Vec<u8> {
    let msg = Message::new(bytes.to_vec())
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("event".into()),
        ))
        .add_header(Header::new(
            ":event-type",
            HeaderValue::String("PayloadPart".into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/octet-stream".into()),
        ));
    let mut out = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&msg, &mut out).unwrap();
    out
}

async fn stream_invocations(
    State(container): State<Arc<Router>>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    if name != "chat-prod" {
        let mut r = (
            StatusCode::BAD_REQUEST,
            json!({"Message": format!("Endpoint {name} of account 123456789012 not found.")})
                .to_string(),
        )
            .into_response();
        r.headers_mut()
            .insert("x-amzn-errortype", "ValidationError".parse().unwrap());
        return r;
    }
    // SageMaker asks the container for a stream (the client's Accept is passed along)
    let accept = req
        .headers()
        .get("x-amzn-sagemaker-accept")
        .or_else(|| req.headers().get("accept"))
        .cloned();
    let mut fwd =
        axum::http::Request::post("/invocations").header("content-type", "application/json");
    if let Some(a) = accept {
        fwd = fwd.header("accept", a);
    }
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let resp = (*container)
        .clone()
        .oneshot(fwd.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    assert!(
        resp.status().is_success(),
        "the container refused the request"
    );
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let parts = resp
        .into_body()
        .into_data_stream()
        .map(|chunk| Ok::<_, std::convert::Infallible>(payload_part(&chunk.unwrap())));
    let mut r = Response::new(Body::from_stream(parts));
    r.headers_mut().insert(
        "content-type",
        "application/vnd.amazon.eventstream".parse().unwrap(),
    );
    r.headers_mut()
        .insert("x-amzn-sagemaker-content-type", ct.parse().unwrap());
    r
}

async fn start_double() -> String {
    let container = Arc::new(hf_inference_tests::router_for("llama-text-generation"));
    let app = Router::new()
        .route(
            "/endpoints/{name}/invocations-response-stream",
            post(stream_invocations),
        )
        .with_state(container);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn client(url: &str) -> aws_sdk_sagemakerruntime::Client {
    let config = common::client_config(url)
        .timeout_config(
            aws_sdk_sagemakerruntime::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .retry_config(aws_sdk_sagemakerruntime::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_sagemakerruntime::Client::from_conf(config)
}

fn proxy(url: &str) -> Router {
    let mut routes = Routes::default();
    for (name, endpoint) in [("", "chat-prod"), ("missing", "no-such-endpoint")] {
        routes.0.insert(
            name.into(),
            Route {
                task: hf_inference_core::Task::TextGeneration,
                target: Target::Endpoint {
                    name: endpoint.into(),
                    variant: None,
                },
                validate_response: false,
            },
        );
    }
    router(Arc::new(
        Proxy::new(routes, Some(client(url)), None).unwrap(),
    ))
}

async fn post_json(
    app: &Router,
    path: &str,
    body: Value,
    accept: Option<&str>,
) -> (u16, String, Vec<Vec<u8>>) {
    hf_inference_tests::post_json(app, path, &body, accept).await
}

fn events(chunks: &[Vec<u8>]) -> Vec<Value> {
    hf_inference_tests::sse_events(&chunks.concat())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_tokens_from_invoke_endpoint_with_response_stream() {
    let url = start_double().await;
    let app = proxy(&url);
    let direct = hf_inference_tests::router_for("llama-text-generation");
    let request = json!({"inputs": "Once upon a time", "parameters": {"max_new_tokens": 10}});
    for (body, accept) in [
        (request.clone(), Some("text/event-stream")),
        (
            json!({"inputs": "Once upon a time", "parameters": {"max_new_tokens": 10, "stream": true}}),
            None,
        ),
    ] {
        let (status, ct, chunks) = post_json(&app, "/invocations", body, accept).await;
        assert_eq!((status, ct.as_str()), (200, "text/event-stream"));
        // the parts arrive as the container wrote them: more than one chunk
        assert!(
            chunks.len() > 1,
            "relayed as a stream, not buffered: {} chunk(s)",
            chunks.len()
        );
        let evs = events(&chunks);
        assert_eq!(evs.len(), 10);
        // the same answer as the container gives without streaming
        let (_, _, whole) = post_json(&direct, "/invocations", request.clone(), None).await;
        let whole: Value = serde_json::from_slice(&whole.concat()).unwrap();
        assert_eq!(evs.last().unwrap()["output"], whole);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_requests_are_validated_and_upstream_errors_mapped() {
    let url = start_double().await;
    let app = proxy(&url);
    // schema: refused before any call
    let (status, _, body) = post_json(
        &app,
        "/invocations",
        json!({"inputs": 42, "parameters": {"stream": true}}),
        None,
    )
    .await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body.concat()));
    // an endpoint SageMaker does not know: its error, mapped as for InvokeEndpoint
    let (status, _, body) = post_json(
        &app,
        "/missing/invocations",
        json!({"inputs": "Hi"}),
        Some("text/event-stream"),
    )
    .await;
    let body: Value = serde_json::from_slice(&body.concat()).unwrap();
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["type"], "UpstreamError");
    assert!(
        body["message"].as_str().unwrap().contains("not found"),
        "{body}"
    );
}

/// `serve`'s SageMaker Runtime emulation (`HF_EMULATE_SAGEMAKER_RUNTIME`) is a stand-in the
/// proxy can call: InvokeEndpoint, its errors as ModelError, and the response stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_emulates_sagemaker_runtime_for_the_proxy() {
    let dir = hf_inference_tests::fixtures()
        .join("models")
        .join("llama-text-generation");
    let opts =
        hf_inference_core::LoadOptions::local(&dir, Some("text-generation".parse().unwrap()));
    let pipeline = hf_inference_core::load_pipeline(&opts).unwrap();
    let service = hf_inference_core::InferenceService::new(
        pipeline,
        hf_inference_core::Runtime::new(hf_inference_core::RuntimeOptions::default()).unwrap(),
    );
    let settings = hf_inference_http::HttpSettings {
        emulate_runtime: true,
        ..Default::default()
    };
    let container =
        hf_inference_http::router(hf_inference_http::AppState::ready(settings, service));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, container).await.unwrap() });
    let app = proxy(&format!("http://{addr}"));
    // buffered
    let (status, ct, body) = post_json(
        &app,
        "/invocations",
        json!({"inputs": "Once upon a time", "parameters": {"max_new_tokens": 4}}),
        None,
    )
    .await;
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    let v: Value = serde_json::from_slice(&body.concat()).unwrap();
    assert!(v[0]["generated_text"]
        .as_str()
        .unwrap()
        .starts_with("Once upon a time"));
    // the container's 400 comes back as the container's 400 (through ModelError)
    let (status, _, body) = post_json(
        &app,
        "/invocations",
        json!({"inputs": "Hi", "parameters": {"num_return_sequences": 3}}),
        None,
    )
    .await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body.concat()));
    // streamed
    let (status, ct, chunks) = post_json(
        &app,
        "/invocations",
        json!({"inputs": "Once upon a time", "parameters": {"max_new_tokens": 6}}),
        Some("text/event-stream"),
    )
    .await;
    assert_eq!((status, ct.as_str()), (200, "text/event-stream"));
    assert_eq!(events(&chunks).len(), 6);
}
