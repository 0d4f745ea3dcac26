//! The HTTP layer in-process (no socket): health while loading and while inference is busy,
//! overload, limits, routing, and error bodies.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

use hf_inference_core::model::{
    HeadKind, Matrix, ModelConfig, ModelSource, TextModel, TokenSequence,
};
use hf_inference_core::pipeline::TextEncoder;
use hf_inference_core::tokenize::TextTokenizer;
use hf_inference_core::{
    InferenceService, LoadOptions, Runtime, RuntimeOptions, Task, ToolkitError,
};
use hf_inference_http::{router, AppState, HttpSettings};
use hf_inference_tests::fixtures;

/// A model that reports each forward pass as it starts, blocks it until the test lets it go,
/// then returns zeros.
struct GatedModel {
    gate: Arc<Mutex<mpsc::Receiver<()>>>,
    started: Mutex<mpsc::Sender<()>>,
}

impl TextModel for GatedModel {
    fn forward(&self, batch: &[TokenSequence]) -> Result<Vec<Matrix>, ToolkitError> {
        let _ = self.started.lock().unwrap().send(());
        let _ = self
            .gate
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(30));
        Ok(batch
            .iter()
            .map(|s| Matrix {
                rows: s.ids.len(),
                cols: 4,
                data: vec![0.0; s.ids.len() * 4],
            })
            .collect())
    }
    fn max_positions(&self) -> usize {
        512
    }
    fn head(&self) -> HeadKind {
        HeadKind::HiddenStates
    }
}

/// A feature-extraction service over the fixture tokenizer and a gated model: the sender opens
/// the gate for one pass, the receiver hears of each pass that starts.
fn gated_service(
    runtime: RuntimeOptions,
) -> (InferenceService, mpsc::Sender<()>, mpsc::Receiver<()>) {
    let dir = fixtures().join("models/feature-extraction-tiny");
    let files = ModelSource::LocalDir(dir.clone()).resolve().unwrap();
    let config = ModelConfig::from_file(&files.config).unwrap();
    let tokenizer = TextTokenizer::load(&files, 0).unwrap();
    let (tx, rx) = mpsc::channel();
    let (started_tx, started_rx) = mpsc::channel();
    let model = GatedModel {
        gate: Arc::new(Mutex::new(rx)),
        started: Mutex::new(started_tx),
    };
    let encoder = TextEncoder::new(
        tokenizer,
        Box::new(model),
        config,
        &LoadOptions::local(dir, None),
    )
    .unwrap();
    let pipeline =
        hf_inference_core::pipeline::from_encoder(Task::FeatureExtraction, encoder).unwrap();
    (
        InferenceService::new(pipeline, Runtime::new(runtime).unwrap()),
        tx,
        started_rx,
    )
}

async fn call(app: &axum::Router, req: Request<Body>) -> (u16, String) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn post(body: &str) -> Request<Body> {
    Request::post("/invocations")
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn assert_error(status: u16, body: &str, want: u16) {
    assert_eq!(status, want, "{body}");
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(v["code"], want, "{body}");
    assert!(
        v["type"].is_string() && !v["message"].as_str().unwrap().is_empty(),
        "{body}"
    );
}

#[tokio::test]
async fn ping_is_503_while_loading_then_200() {
    let state = AppState::loading(HttpSettings::default());
    let app = router(state.clone());
    let (s, b) = call(&app, get("/ping")).await;
    assert_error(s, &b, 503);
    let (s, b) = call(&app, post(r#"{"inputs": "hi"}"#)).await;
    assert_error(s, &b, 503);
    // while loading, the OpenAPI document describes every task's requests
    let (s, b) = call(&app, get("/openapi.json")).await;
    assert_eq!(s, 200);
    let doc: serde_json::Value = serde_json::from_str(&b).unwrap();
    let requests = doc["paths"]["/invocations"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"]["anyOf"]
        .as_array()
        .unwrap();
    assert_eq!(requests.len(), hf_inference_core::schema::SOURCES.len());
    let (service, gate, _started) = gated_service(RuntimeOptions::default());
    state.set_ready(service);
    let (s, b) = call(&app, get("/ping")).await;
    assert_eq!((s, b.contains("Healthy")), (200, true), "{b}");
    drop(gate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_answers_while_inference_is_busy_and_a_full_queue_is_503() {
    let (service, gate, started) = gated_service(RuntimeOptions {
        workers: 1,
        queue_capacity: 1,
        timeout: Duration::from_secs(30),
    });
    let state = AppState::ready(HttpSettings::default(), service);
    let app = router(state.clone());
    let busy = tokio::spawn({
        let app = app.clone();
        async move { call(&app, post(r#"{"inputs": "first"}"#)).await }
    });
    let in_flight = || state.service().unwrap().runtime().in_flight();
    // wait until the first request is inside the model (off the queue)
    let started = tokio::task::spawn_blocking(move || {
        let first = started.recv_timeout(Duration::from_secs(30));
        (first, started)
    });
    let (first, started) = started.await.unwrap();
    first.expect("the first request never reached the model");
    // the worker is blocked inside the model: /ping still answers
    let (s, _) = call(&app, get("/ping")).await;
    assert_eq!(s, 200);
    assert!(!busy.is_finished());
    // one request may wait in the queue ...
    let queued = tokio::spawn({
        let app = app.clone();
        async move { call(&app, post(r#"{"inputs": "second"}"#)).await }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while in_flight() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the second request was not queued"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // ... the next one is refused at once
    let (s, b) = call(&app, post(r#"{"inputs": "third"}"#)).await;
    assert_error(s, &b, 503);
    assert!(b.contains("queue"), "{b}");
    gate.send(()).unwrap();
    gate.send(()).unwrap();
    let (s, b) = busy.await.unwrap();
    assert_eq!(s, 200, "{b}");
    assert!(b.starts_with("[[[0.0,0.0,0.0,0.0]"), "{b}");
    assert_eq!(queued.await.unwrap().0, 200);
    drop(started);
}

#[tokio::test]
async fn limits_routing_and_media_types() {
    let (service, gate, _started) = gated_service(RuntimeOptions::default());
    let settings = HttpSettings {
        max_payload_bytes: 1000,
        max_stream_bytes: 1000,
        model_url: "/opt/ml/model".into(),
        ..Default::default()
    };
    let app = router(AppState::ready(settings, service));

    // declared too large: refused before reading
    let big = "x".repeat(2000);
    let (s, b) = call(&app, post(&big)).await;
    assert_error(s, &b, 413);
    // chunked (no Content-Length) and too large: refused while reading
    let chunks = futures_stream(vec![vec![b'x'; 600], vec![b'x'; 600]]);
    let req = Request::post("/invocations")
        .header("content-type", "application/json")
        .body(chunks)
        .unwrap();
    let (s, b) = call(&app, req).await;
    assert_error(s, &b, 413);

    let (s, b) = call(&app, post(r#"{"inputs": "unterminated"#)).await;
    assert_error(s, &b, 400);
    assert!(b.contains("not valid JSON"), "{b}");
    let (s, b) = call(&app, post(r#"{"inputs": 123}"#)).await;
    assert_error(s, &b, 400);
    assert!(b.contains("/inputs"), "{b}");
    let (s, b) = call(&app, post(r#"["a", "b"]"#)).await;
    assert_error(s, &b, 400);
    let req = Request::post("/invocations")
        .header("content-type", "text/plain")
        .body(Body::from("hi"))
        .unwrap();
    let (s, b) = call(&app, req).await;
    assert_error(s, &b, 415);
    let req = Request::post("/invocations")
        .header("content-type", "application/json")
        .header("accept", "application/xml")
        .body(Body::from(r#"{"inputs": "hi"}"#))
        .unwrap();
    let (s, b) = call(&app, req).await;
    assert_error(s, &b, 406);
    let (s, b) = call(&app, get("/invocations")).await;
    assert_error(s, &b, 405);
    let (s, b) = call(&app, get("/nope")).await;
    assert_error(s, &b, 404);
    let (s, b) = call(&app, get("/models/other")).await;
    assert_error(s, &b, 404);

    let (s, b) = call(&app, get("/execution-parameters")).await;
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["BatchStrategy"], "MULTI_RECORD");
    assert_eq!(v["MaxPayloadInMB"], 1);
    let execution = v.clone();
    let (s, b) = call(&app, get("/models")).await;
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["models"][0]["modelName"], "model");
    // the OpenAPI document: served, and describing what the routes above answer
    let (s, b) = call(&app, get("/openapi.json")).await;
    assert_eq!(s, 200);
    let doc: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for (path, body) in [("/models", &v), ("/execution-parameters", &execution)] {
        let mut schema = doc["paths"][path]["get"]["responses"]["200"]["content"]
            ["application/json"]["schema"]
            .clone();
        schema["components"] = doc["components"].clone();
        assert!(jsonschema::is_valid(&schema, body), "{path}: {body}");
    }
    // once loaded, `/invocations` is described with this task's schemas (feature-extraction)
    let invoke = &doc["paths"]["/invocations"]["post"];
    assert_eq!(
        invoke["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/feature-extraction/$defs/request"
    );
    assert!(invoke["requestBody"]["content"].get("image/png").is_none());
    let mut answer = invoke["responses"]["200"]["content"]["application/json"]["schema"].clone();
    answer["components"] = doc["components"].clone();
    assert!(jsonschema::is_valid(
        &answer,
        &serde_json::json!([[[0.5, -1.0]]])
    ));
    assert!(!jsonschema::is_valid(
        &answer,
        &serde_json::json!([{"label": "a", "score": 0.5}])
    ));
    drop(gate);
}

/// A body delivered in chunks without a Content-Length.
fn futures_stream(chunks: Vec<Vec<u8>>) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        for c in chunks {
            if tx.send(Ok(c.into())).await.is_err() {
                return;
            }
        }
    });
    Body::from_stream(ReceiverStream(rx))
}

struct ReceiverStream(tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, std::io::Error>>);

impl futures_core::Stream for ReceiverStream {
    type Item = Result<axum::body::Bytes, std::io::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}
