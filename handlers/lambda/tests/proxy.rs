//! The Lambda front-end against a local stand-in for SageMaker Runtime: a test double that speaks
//! its REST API (`POST /endpoints/{name}/invocations`, restJson1 errors) and forwards to the real
//! container router serving a fixture model. Covers success with every passed-through header,
//! schema rejection before any call, oversize, unknown routes, every error mapping, response
//! validation and the in-process route.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use hf_inference_host::storage::{BoxFuture, Head, Object, ObjectStore, StorageError};
use hf_inference_host::Location;
use hf_inference_lambda::{router, Proxy, Route, Routes, Target};

/// The stand-in: endpoint name → container router; a few names act out SageMaker's errors.
struct Double {
    containers: HashMap<String, Router>,
    calls: AtomicUsize,
    seen: std::sync::Mutex<Vec<HeaderMap>>,
    bodies: std::sync::Mutex<Vec<bytes::Bytes>>,
}

fn aws_error(status: u16, kind: &str, body: Value) -> Response {
    let mut r = (StatusCode::from_u16(status).unwrap(), body.to_string()).into_response();
    r.headers_mut()
        .insert("x-amzn-errortype", kind.parse().unwrap());
    r.headers_mut()
        .insert("x-amzn-requestid", "req-1234".parse().unwrap());
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

async fn invocations(
    State(d): State<Arc<Double>>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    d.calls.fetch_add(1, Ordering::SeqCst);
    d.seen.lock().unwrap().push(req.headers().clone());
    match name.as_str() {
        "throttled" => {
            return aws_error(
                400,
                "ThrottlingException",
                json!({"message": "Rate exceeded"}),
            )
        }
        "not-ready" => {
            return aws_error(
                429,
                "ModelNotReadyException",
                json!({"Message": "Model not ready"}),
            )
        }
        "unavailable" => {
            return aws_error(
                503,
                "ServiceUnavailable",
                json!({"Message": "Service unavailable"}),
            )
        }
        "broken" => {
            return aws_error(
                500,
                "InternalFailure",
                json!({"Message": "Internal failure"}),
            )
        }
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            return (StatusCode::OK, "[]").into_response();
        }
        "liar" => {
            let mut r = (StatusCode::OK, r#"[{"label": 5}]"#).into_response();
            r.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            return r;
        }
        _ => {}
    }
    let Some(container) = d.containers.get(&name) else {
        return aws_error(
            400,
            "ValidationError",
            json!({"Message": format!("Endpoint {name} of account 123456789012 not found.")}),
        );
    };
    // SageMaker forwards the body with Content-Type and Accept to the container
    let mut fwd = axum::http::Request::post("/invocations");
    for h in ["content-type", "accept"] {
        if let Some(v) = req.headers().get(h) {
            fwd = fwd.header(h, v);
        }
    }
    let attrs = req
        .headers()
        .get("x-amzn-sagemaker-custom-attributes")
        .cloned();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    d.bodies.lock().unwrap().push(body.clone());
    let resp = container
        .clone()
        .oneshot(fwd.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let ct = resp.headers().get("content-type").cloned();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    if !status.is_success() {
        let original = String::from_utf8_lossy(&body).into_owned();
        return aws_error(
            424,
            "ModelError",
            json!({
                "Message": format!("Received client error ({}) from primary with message \"{original}\".", status.as_u16()),
                "OriginalStatusCode": status.as_u16(),
                "OriginalMessage": original,
                "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/x",
            }),
        );
    }
    let mut r = (StatusCode::OK, body).into_response();
    if let Some(ct) = ct {
        r.headers_mut().insert("content-type", ct);
    }
    if let Some(a) = attrs {
        r.headers_mut()
            .insert("x-amzn-sagemaker-custom-attributes", a);
    }
    r
}

/// SageMaker's `InvokeEndpointAsync`: records the call's headers and queues nothing (202).
async fn async_invocations(
    State(d): State<Arc<Double>>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    d.calls.fetch_add(1, Ordering::SeqCst);
    d.seen.lock().unwrap().push(req.headers().clone());
    let id = req
        .headers()
        .get("x-amzn-sagemaker-inference-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
        .to_owned();
    let mut r = (StatusCode::ACCEPTED, json!({"InferenceId": id}).to_string()).into_response();
    r.headers_mut().insert(
        "x-amzn-sagemaker-outputlocation",
        format!("s3://b/{name}/out/{id}.out").parse().unwrap(),
    );
    r.headers_mut().insert(
        "x-amzn-sagemaker-failurelocation",
        format!("s3://b/{name}/fail/{id}-error.out")
            .parse()
            .unwrap(),
    );
    r
}

/// Objects in memory: location → (body, content type).
#[derive(Default)]
struct MemoryStore(std::sync::Mutex<HashMap<String, (bytes::Bytes, String)>>);

impl ObjectStore for MemoryStore {
    fn get<'a>(
        &'a self,
        at: &'a Location,
        _limit: u64,
    ) -> BoxFuture<'a, Result<Object, StorageError>> {
        let found = self.0.lock().unwrap().get(&at.to_string()).cloned();
        Box::pin(async move {
            let (body, ct) = found.ok_or_else(|| StorageError::NotFound(at.to_string()))?;
            Ok(Object {
                body,
                content_type: Some(ct),
            })
        })
    }

    fn put<'a>(
        &'a self,
        at: &'a Location,
        body: bytes::Bytes,
        content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        self.0
            .lock()
            .unwrap()
            .insert(at.to_string(), (body, content_type.to_owned()));
        Box::pin(async { Ok(()) })
    }

    fn head<'a>(&'a self, at: &'a Location) -> BoxFuture<'a, Result<Head, StorageError>> {
        let found = self.0.lock().unwrap().get(&at.to_string()).cloned();
        Box::pin(async move { Ok(found.map(|(_, ct)| Some(ct))) })
    }

    fn list<'a>(
        &'a self,
        _prefix: &'a Location,
    ) -> BoxFuture<'a, Result<Vec<Location>, StorageError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

async fn start_double() -> (Arc<Double>, String) {
    let mut containers = HashMap::new();
    containers.insert(
        "sentiment-prod".to_owned(),
        hf_inference_tests::router_for("text-classification"),
    );
    containers.insert(
        "vit-prod".to_owned(),
        hf_inference_tests::router_for("image-classification"),
    );
    let d = Arc::new(Double {
        containers,
        calls: AtomicUsize::new(0),
        seen: std::sync::Mutex::new(Vec::new()),
        bodies: std::sync::Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/endpoints/{name}/invocations", post(invocations))
        .route(
            "/endpoints/{name}/async-invocations",
            post(async_invocations),
        )
        .with_state(Arc::clone(&d));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (d, format!("http://{addr}"))
}

fn client(url: &str) -> aws_sdk_sagemakerruntime::Client {
    let config = common::client_config(url)
        .timeout_config(
            aws_sdk_sagemakerruntime::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(1))
                .build(),
        )
        .retry_config(aws_sdk_sagemakerruntime::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_sagemakerruntime::Client::from_conf(config)
}

fn endpoint(name: &str) -> Route {
    Route {
        task: hf_inference_core::Task::TextClassification,
        target: Target::Endpoint {
            name: name.into(),
            variant: None,
        },
        validate_response: false,
    }
}

async fn call(
    app: &Router,
    path: &str,
    ct: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> (u16, HeaderMap, String) {
    call_bytes(app, path, ct, body.as_bytes().to_vec(), extra).await
}

async fn call_bytes(
    app: &Router,
    path: &str,
    ct: &str,
    body: Vec<u8>,
    extra: &[(&str, &str)],
) -> (u16, HeaderMap, String) {
    let mut req = axum::http::Request::post(path).header("content-type", ct);
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_validates_and_maps_errors() {
    let (double, url) = start_double().await;
    let mut routes = Routes::default();
    routes.0.insert(String::new(), endpoint("sentiment-prod"));
    for name in [
        "throttled",
        "not-ready",
        "unavailable",
        "broken",
        "slow",
        "missing",
    ] {
        routes.0.insert(name.into(), endpoint(name));
    }
    let mut checked = endpoint("sentiment-prod");
    checked.validate_response = true;
    routes.0.insert("checked".into(), checked);
    let mut liar = endpoint("liar");
    liar.validate_response = true;
    routes.0.insert("liar".into(), liar);
    let app = router(Arc::new(
        Proxy::new(routes, Some(client(&url)), None).unwrap(),
    ));
    let calls = || double.calls.load(Ordering::SeqCst);

    // success: the container's answer, with the passed-through headers
    let (s, h, b) = call(
        &app,
        "/invocations",
        "application/json",
        r#"{"inputs": "I love this"}"#,
        &[
            ("accept", "application/json"),
            ("x-amzn-sagemaker-custom-attributes", "trace=abc"),
            ("x-amzn-sagemaker-inference-id", "id-1"),
            ("x-amzn-sagemaker-target-variant", "blue"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let direct = call(
        &hf_inference_tests::router_for("text-classification"),
        "/invocations",
        "application/json",
        r#"{"inputs": "I love this"}"#,
        &[],
    )
    .await;
    assert_eq!(b, direct.2);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["x-amzn-sagemaker-custom-attributes"], "trace=abc");
    let seen = double.seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen["x-amzn-sagemaker-inference-id"], "id-1");
    assert_eq!(seen["x-amzn-sagemaker-target-variant"], "blue");
    assert_eq!(calls(), 1);

    // invalid payloads never reach the endpoint
    for (ct, body, want) in [
        ("application/json", r#"{"inputs": 123}"#, 400),
        (
            "application/json",
            r#"{"inputs": "a", "parameters": {"top_k": -1}}"#,
            400,
        ),
        ("application/json", r#"{"inputs": "unterminated"#, 400),
        ("text/plain", "hello", 415),
        (
            "application/jsonlines",
            "{\"inputs\": \"ok\"}\n{\"inputs\": 5}\n",
            400,
        ),
    ] {
        let (s, _, b) = call(&app, "/invocations", ct, body, &[]).await;
        assert_eq!(s, want, "{body}: {b}");
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["code"], want);
        assert!(!v["message"].as_str().unwrap().is_empty());
    }
    let (_, _, b) = call(
        &app,
        "/invocations",
        "application/json",
        r#"{"inputs": 123}"#,
        &[],
    )
    .await;
    assert!(
        b.contains("/inputs"),
        "the schema error names the path: {b}"
    );
    let (_, _, b) = call(
        &app,
        "/invocations",
        "application/jsonlines",
        "{\"inputs\": \"ok\"}\n{\"inputs\": 5}\n",
        &[],
    )
    .await;
    assert!(b.contains("line 2"), "{b}");
    let (s, _, _) = call(
        &app,
        "/invocations",
        "application/json",
        &format!("{{\"inputs\": \"{}\"}}", "a".repeat(7 << 20)),
        &[],
    )
    .await;
    assert_eq!(s, 413);
    assert_eq!(calls(), 1, "nothing invalid was sent on");

    // headers SageMaker would refuse are refused here, and nothing is sent
    let long_id = "x".repeat(65);
    for (h, v) in [
        ("x-amzn-sagemaker-target-variant", "no_such!"),
        ("x-amzn-sagemaker-inference-id", long_id.as_str()),
    ] {
        let (s, _, b) = call(
            &app,
            "/invocations",
            "application/json",
            r#"{"inputs": "x"}"#,
            &[(h, v)],
        )
        .await;
        assert_eq!(s, 400, "{h}: {b}");
    }
    let (s, _, b) = call(&app, "/invocations", "application/jsonlines", "\n \n", &[]).await;
    assert_eq!(s, 400, "an empty JSON Lines body: {b}");
    assert_eq!(calls(), 1);

    // a JSON Lines answer is checked line by line against the response schema
    let two = "{\"inputs\": \"a\"}\n{\"inputs\": \"b\"}\n";
    let (s, h, b) = call(
        &app,
        "/checked/invocations",
        "application/jsonlines",
        two,
        &[],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(h["content-type"], "application/jsonlines");
    assert_eq!(b.lines().count(), 2);
    assert_eq!(calls(), 2);

    // only configured routes exist
    let (s, _, b) = call(
        &app,
        "/other-endpoint/invocations",
        "application/json",
        r#"{"inputs": "x"}"#,
        &[],
    )
    .await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(calls(), 2);

    // a container error comes back with its own status and body
    let (s, h, b) = call(
        &app,
        "/invocations",
        "application/json",
        r#"{"inputs": "x"}"#,
        &[("accept", "application/x-npy")],
    )
    .await;
    assert_eq!(s, 406, "the container's 406 comes back as is: {b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["code"], 406);
    assert_eq!(h["x-amzn-requestid"], "req-1234");

    // SageMaker's own errors
    for (route, want, kind) in [
        ("throttled", 429, "Throttled"),
        ("not-ready", 503, "ModelNotReady"),
        ("unavailable", 503, "ServiceUnavailable"),
        ("broken", 502, "UpstreamError"),
        ("missing", 502, "UpstreamError"),
        ("slow", 504, "Timeout"),
        ("liar", 502, "InvalidResponse"),
    ] {
        let (s, h, b) = call(
            &app,
            &format!("/{route}/invocations"),
            "application/json",
            r#"{"inputs": "x"}"#,
            &[],
        )
        .await;
        assert_eq!(s, want, "{route}: {b}");
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["type"], kind, "{route}: {b}");
        if want == 503 || want == 429 {
            assert_eq!(h["retry-after"], "5", "{route}");
        }
        if route == "missing" {
            assert!(b.contains("not found") && b.contains("req-1234"), "{b}");
        }
    }
}

/// The golden record of a case of the toolkit's image-classification golden file.
fn image_golden(case: &str) -> hf_inference_tests::Golden {
    hf_inference_tests::goldens("image-classification")
        .into_iter()
        .find(|g| g.case == case)
        .unwrap_or_else(|| panic!("no golden {case}"))
}

/// Whether an answer is the toolkit's (the golden record's) within the parity tolerance.
fn assert_parity(g: &hf_inference_tests::Golden, status: u16, headers: &HeaderMap, body: &str) {
    let ct = headers.get("content-type").and_then(|v| v.to_str().ok());
    let verdict = hf_inference_tests::judge(g, status, ct, body.as_bytes());
    assert_eq!(
        verdict,
        hf_inference_tests::Verdict::Pass,
        "{}: {body}",
        g.case
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_routes_send_image_files_on_as_they_came() {
    let (double, url) = start_double().await;
    let vit = |target| Route {
        task: hf_inference_core::Task::ImageClassification,
        target,
        validate_response: true,
    };
    let mut routes = Routes::default();
    routes.0.insert(
        String::new(),
        vit(Target::Endpoint {
            name: "vit-prod".into(),
            variant: None,
        }),
    );
    let s3 = |p: &str| p.parse::<Location>().unwrap();
    routes.0.insert(
        "queued".into(),
        vit(Target::AsyncEndpoint {
            name: "vit-async".into(),
            input: s3("s3://b/vit-async/in/"),
            output: s3("s3://b/vit-async/out/"),
            failure: s3("s3://b/vit-async/fail/"),
        }),
    );
    let store = Arc::new(MemoryStore::default());
    let proxy = Proxy::new(routes, Some(client(&url)), None)
        .unwrap()
        .with_store(Arc::clone(&store) as Arc<dyn ObjectStore>);
    let app = router(Arc::new(proxy));
    let calls = || double.calls.load(Ordering::SeqCst);

    // a PNG and a JPEG go to the endpoint byte for byte, with their Content-Type; the answers
    // are the toolkit's
    for case in ["raw/image-png", "raw/image-jpeg", "raw/image-x-image"] {
        let g = image_golden(case);
        let ct = g.request_content_type.clone().unwrap();
        let (s, h, b) = call_bytes(&app, "/invocations", &ct, g.request_bytes(), &[]).await;
        assert_parity(&g, s, &h, &b);
        let sent = double.bodies.lock().unwrap().last().cloned().unwrap();
        assert_eq!(sent.as_ref(), g.request_bytes().as_slice(), "{case}");
        let seen = double.seen.lock().unwrap().last().cloned().unwrap();
        assert_eq!(seen["content-type"], ct.as_str(), "{case}");
    }
    assert_eq!(calls(), 3);
    // what the container refuses comes back as the container's answer (not an image: 400)
    let garbage = image_golden("bad/garbage-bytes-as-png");
    let (s, _, b) = call_bytes(
        &app,
        "/invocations",
        "image/png",
        garbage.request_bytes(),
        &[],
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(calls(), 4);

    // a type the task does not take is refused here (415, listing the image types), and
    // nothing is sent
    let png = image_golden("raw/image-png");
    for ct in ["text/plain", "application/octet-stream", "audio/wav"] {
        let (s, _, b) = call_bytes(&app, "/invocations", ct, png.request_bytes(), &[]).await;
        assert_eq!(s, 415, "{ct}: {b}");
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["code"], 415);
        assert!(v["message"].as_str().unwrap().contains("image/png"), "{b}");
    }
    assert_eq!(calls(), 4);

    // JSON bodies are still checked against the task's schema before anything is sent
    let (s, _, b) = call(
        &app,
        "/invocations",
        "application/json",
        r#"{"inputs": 123}"#,
        &[],
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(calls(), 4);
    let g = image_golden("json/base64");
    let (s, h, b) = call_bytes(
        &app,
        "/invocations",
        "application/json",
        g.request_bytes(),
        &[],
    )
    .await;
    assert_parity(&g, s, &h, &b);
    assert_eq!(calls(), 5);

    // an asynchronous route stores the image as it came, with its type, and queues it with it
    let (s, _, b) = call_bytes(
        &app,
        "/queued/invocations",
        "image/png",
        png.request_bytes(),
        &[("x-amzn-sagemaker-inference-id", "img-1")],
    )
    .await;
    assert_eq!(s, 202, "{b}");
    let stored = store
        .0
        .lock()
        .unwrap()
        .get("s3://b/vit-async/in/img-1")
        .cloned();
    let (body, ct) = stored.expect("the image is stored under the route's input prefix");
    assert_eq!(body.as_ref(), png.request_bytes().as_slice());
    assert_eq!(ct, "image/png");
    let seen = double.seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen["x-amzn-sagemaker-content-type"], "image/png");
    assert_eq!(
        seen["x-amzn-sagemaker-inputlocation"],
        "s3://b/vit-async/in/img-1"
    );
    let (s, _, _) = call_bytes(
        &app,
        "/queued/invocations",
        "text/plain",
        png.request_bytes(),
        &[],
    )
    .await;
    assert_eq!(s, 415);
    assert_eq!(calls(), 6);
}

#[cfg(feature = "local")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_image_route_answers_image_files() {
    let (dir, task) = hf_inference_tests::fixture_model("image-classification");
    let opts = hf_inference_core::LoadOptions::local(dir, Some(task.parse().unwrap()));
    let service = hf_inference_core::InferenceService::new(
        hf_inference_core::load_pipeline(&opts).unwrap(),
        hf_inference_core::Runtime::new(hf_inference_core::RuntimeOptions::default()).unwrap(),
    );
    let routes =
        Routes::parse(r#"{"vit": {"local": true, "task": "image-classification"}}"#).unwrap();
    let app = router(Arc::new(Proxy::new(routes, None, Some(service)).unwrap()));
    for case in [
        "raw/image-png",
        "raw/image-jpeg",
        "raw/png-accept-csv",
        "json/base64",
    ] {
        let g = image_golden(case);
        let ct = g.request_content_type.clone().unwrap();
        let accept: Vec<(&str, &str)> = g.accept.iter().map(|a| ("accept", a.as_str())).collect();
        let (s, h, b) = call_bytes(&app, "/vit/invocations", &ct, g.request_bytes(), &accept).await;
        assert_parity(&g, s, &h, &b);
    }
    let png = image_golden("raw/image-png");
    let (s, _, b) = call_bytes(
        &app,
        "/vit/invocations",
        "text/plain",
        png.request_bytes(),
        &[],
    )
    .await;
    assert_eq!(s, 415, "{b}");
    let garbage = image_golden("bad/garbage-bytes-as-png");
    let (s, _, b) = call_bytes(
        &app,
        "/vit/invocations",
        "image/png",
        garbage.request_bytes(),
        &[],
    )
    .await;
    assert_eq!(s, 400, "{b}");
}

#[cfg(feature = "local")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_route_runs_the_model_in_the_function() {
    let dir = hf_inference_tests::fixtures().join("models/token-classification");
    let opts = hf_inference_core::LoadOptions::local(dir, Some("ner".parse().unwrap()));
    let pipeline = hf_inference_core::load_pipeline(&opts).unwrap();
    let service = hf_inference_core::InferenceService::new(
        pipeline,
        hf_inference_core::Runtime::new(hf_inference_core::RuntimeOptions::default()).unwrap(),
    );
    let routes = Routes::parse(r#"{"ner": {"local": true, "task": "ner"}}"#).unwrap();
    let app = router(Arc::new(Proxy::new(routes, None, Some(service)).unwrap()));
    let body = r#"{"inputs": "My name is Sylvain and I work at Hugging Face in Brooklyn.", "parameters": {"aggregation_strategy": "simple"}}"#;
    let (s, _, b) = call(&app, "/ner/invocations", "application/json", body, &[]).await;
    assert_eq!(s, 200, "{b}");
    let direct = call(
        &hf_inference_tests::router_for("token-classification"),
        "/invocations",
        "application/json",
        body,
        &[],
    )
    .await;
    assert_eq!(b, direct.2);
    let (s, _, _) = call(
        &app,
        "/ner/invocations",
        "application/json",
        r#"{"inputs": "x", "parameters": {"aggregation_strategy": "bogus"}}"#,
        &[],
    )
    .await;
    assert_eq!(s, 400);
    let (s, _, _) = call(
        &app,
        "/invocations",
        "application/json",
        r#"{"inputs": "x"}"#,
        &[],
    )
    .await;
    assert_eq!(s, 404, "no default route was configured");

    // a local route whose task is not the loaded model's is a configuration error
    let dir = hf_inference_tests::fixtures().join("models/token-classification");
    let opts = hf_inference_core::LoadOptions::local(dir, Some("ner".parse().unwrap()));
    let service = hf_inference_core::InferenceService::new(
        hf_inference_core::load_pipeline(&opts).unwrap(),
        hf_inference_core::Runtime::new(hf_inference_core::RuntimeOptions::default()).unwrap(),
    );
    let wrong = Routes::parse(r#"{"s": {"local": true, "task": "sentiment-analysis"}}"#).unwrap();
    assert!(Proxy::new(wrong, None, Some(service)).is_err());
}

#[test]
fn route_configuration() {
    let r = Routes::parse(
        r#"{"sentiment": {"endpoint": "sentiment-prod", "task": "sentiment-analysis", "target_variant": "v2", "validate_response": true},
            "qa": {"endpoint": "qa", "task": "question-answering"}}"#,
    )
    .unwrap();
    assert_eq!(
        r.0["sentiment"],
        Route {
            task: hf_inference_core::Task::TextClassification,
            target: Target::Endpoint {
                name: "sentiment-prod".into(),
                variant: Some("v2".into())
            },
            validate_response: true,
        }
    );
    assert!(!r.needs_model());
    for bad in [
        r#"{"x": {"task": "ner"}}"#,
        r#"{"x": {"endpoint": "e", "local": true, "task": "ner"}}"#,
        r#"{"x": {"endpoint": "e", "task": "audio-classification"}}"#,
        r#"{"x/y": {"endpoint": "e", "task": "ner"}}"#,
        r#"{"x": {"endpoint": "e", "task": "ner", "typo": 1}}"#,
        r#"{"x": {"endpoint": "e", "task": "ner", "target_variant": " "}}"#,
        r#"{"x": {"local": true, "task": "ner", "target_variant": "v1"}}"#,
        r#"{"x": {"local": true, "task": "ner"}, "y": {"local": true, "task": "fill-mask"}}"#,
    ] {
        assert!(Routes::parse(bad).is_err(), "{bad}");
    }
}

#[cfg(feature = "local")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_zero_shot_image_route_reads_labels_from_custom_attributes() {
    let (dir, task) = hf_inference_tests::fixture_model("zero-shot-image-classification");
    let opts = hf_inference_core::LoadOptions::local(dir, Some(task.parse().unwrap()));
    let service = hf_inference_core::InferenceService::new(
        hf_inference_core::load_pipeline(&opts).unwrap(),
        hf_inference_core::Runtime::new(hf_inference_core::RuntimeOptions::default()).unwrap(),
    );
    let routes =
        Routes::parse(r#"{"clip": {"local": true, "task": "zero-shot-image-classification"}}"#)
            .unwrap();
    let app = router(Arc::new(Proxy::new(routes, None, Some(service)).unwrap()));
    // the golden JSON request with labels is the reference
    let g = hf_inference_tests::goldens("zero-shot-image-classification")
        .into_iter()
        .find(|g| g.case == "json/base64-params")
        .unwrap();
    let (s, h, b) = call_bytes(
        &app,
        "/clip/invocations",
        "application/json",
        g.request_bytes(),
        &[],
    )
    .await;
    assert_parity(&g, s, &h, &b);
    // the same image raw, the labels as custom attributes: the same answer
    let png = image_golden("raw/image-png");
    let (s, _, raw) = call_bytes(
        &app,
        "/clip/invocations",
        "image/png",
        png.request_bytes(),
        &[(
            "x-amzn-sagemaker-custom-attributes",
            "candidate_labels=cat,dog,car",
        )],
    )
    .await;
    assert_eq!(s, 200, "{raw}");
    assert_eq!(
        serde_json::from_str::<Value>(&raw).unwrap(),
        serde_json::from_str::<Value>(&b).unwrap()
    );
    // without them: a 400 saying how to send them
    let (s, _, b) = call_bytes(
        &app,
        "/clip/invocations",
        "image/png",
        png.request_bytes(),
        &[],
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("candidate_labels"), "{b}");
}
