//! The asynchronous route against local stand-ins: moto serves S3 (installed by
//! infra/ci/check.sh, which sets HF_TEST_MOTO_DIR; failing under CI and skipped with a notice elsewhere without it) and a test
//! double serves SageMaker Runtime's `POST /endpoints/{name}/async-invocations`, running the real
//! container router on the stored input and writing its answer where SageMaker would. Its own
//! test binary: it sets the AWS environment before any thread starts.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use hf_inference_lambda::{router, Proxy, Routes};

const BUCKET: &str = "hf-async-route";

struct Double {
    s3: aws_sdk_s3::Client,
    container: Router,
    calls: AtomicUsize,
}

/// SageMaker's side: read the input from S3, run the container, write `<id>.out` under the
/// output prefix (or `<id>-error.out` under the failure prefix), answer 202.
async fn async_invocations(
    State(d): State<Arc<Double>>,
    Path(_name): Path<String>,
    req: Request,
) -> Response {
    d.calls.fetch_add(1, Ordering::SeqCst);
    let h = req.headers();
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let input = get("x-amzn-sagemaker-inputlocation").unwrap();
    let id = get("x-amzn-sagemaker-inference-id").unwrap();
    let ct = get("x-amzn-sagemaker-content-type").unwrap_or_else(|| "application/json".into());
    let accept = get("x-amzn-sagemaker-accept");
    let key = input
        .strip_prefix(&format!("s3://{BUCKET}/"))
        .unwrap()
        .to_owned();
    let obj =
        d.s3.get_object()
            .bucket(BUCKET)
            .key(&key)
            .send()
            .await
            .unwrap();
    let body = obj.body.collect().await.unwrap().into_bytes();
    let mut fwd = axum::http::Request::post("/invocations").header("content-type", ct);
    if let Some(a) = accept {
        fwd = fwd.header("accept", a);
    }
    let resp = d
        .container
        .clone()
        .oneshot(fwd.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let ok = resp.status().is_success();
    let out_ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let answer = resp.into_body().collect().await.unwrap().to_bytes();
    let (out_key, fail_key) = (
        format!("async-out/{id}.out"),
        format!("async-fail/{id}-error.out"),
    );
    let key = if ok { &out_key } else { &fail_key };
    d.s3.put_object()
        .bucket(BUCKET)
        .key(key)
        .content_type(out_ct)
        .body(answer.to_vec().into())
        .send()
        .await
        .unwrap();
    let mut r = (StatusCode::ACCEPTED, json!({"InferenceId": id}).to_string()).into_response();
    r.headers_mut().insert(
        "x-amzn-sagemaker-outputlocation",
        format!("s3://{BUCKET}/{out_key}").parse().unwrap(),
    );
    r.headers_mut().insert(
        "x-amzn-sagemaker-failurelocation",
        format!("s3://{BUCKET}/{fail_key}").parse().unwrap(),
    );
    r
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> (u16, String) {
    let mut req = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&b).into_owned())
}

fn query(v: &Value) -> String {
    let enc = |s: &str| s.replace(':', "%3A").replace('/', "%2F");
    format!(
        "output={}&failure={}",
        enc(v["OutputLocation"].as_str().unwrap()),
        enc(v["FailureLocation"].as_str().unwrap())
    )
}

#[test]
fn an_asynchronous_route_stores_the_input_invokes_and_serves_the_result() {
    let Some(moto) = hf_inference_tests::Moto::start(
        "an_asynchronous_route_stores_the_input_invokes_and_serves_the_result",
    ) else {
        return;
    };
    // before any thread: the proxy's S3 store reads the standard environment
    std::env::set_var("AWS_ENDPOINT_URL_S3", moto.url());
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_REGION", "us-east-1");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(moto.port));
}

async fn run(port: u16) {
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&shared)
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let double = Arc::new(Double {
        s3: s3.clone(),
        container: hf_inference_tests::router_for("text-classification"),
        calls: AtomicUsize::new(0),
    });
    let app = Router::new()
        .route(
            "/endpoints/{name}/async-invocations",
            post(async_invocations),
        )
        .with_state(Arc::clone(&double));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = aws_sdk_sagemakerruntime::Client::from_conf(common::client_config(&url).build());
    let routes = Routes::parse(&format!(
        r#"{{"batch": {{"endpoint": "sentiment-async", "task": "text-classification",
             "async_input_path": "s3://{BUCKET}/async-in/", "async_output_path": "s3://{BUCKET}/async-out/",
             "async_failure_path": "s3://{BUCKET}/async-fail/"}}}}"#
    ))
    .unwrap();
    let proxy = router(Arc::new(Proxy::new(routes, Some(client), None).unwrap()));

    // accepted: the input is stored, the endpoint invoked, the locations returned
    let (s, b) = call(
        &proxy,
        "POST",
        "/batch/invocations",
        r#"{"inputs": "I love this"}"#,
        &[("x-amzn-sagemaker-inference-id", "job-1")],
    )
    .await;
    assert_eq!(s, 202, "{b}");
    let accepted: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(accepted["InferenceId"], "job-1");
    assert!(s3
        .head_object()
        .bucket(BUCKET)
        .key("async-in/job-1")
        .send()
        .await
        .is_ok());

    // the result, as the container gives it
    let (s, b) = call(
        &proxy,
        "GET",
        &format!("/batch/results?{}", query(&accepted)),
        "",
        &[],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let direct = call(
        &hf_inference_tests::router_for("text-classification"),
        "POST",
        "/invocations",
        r#"{"inputs": "I love this"}"#,
        &[],
    )
    .await;
    assert_eq!(b, direct.1);

    // a failure comes back with the container's status and body
    let (s, b) = call(
        &proxy,
        "POST",
        "/batch/invocations",
        r#"{"inputs": "x"}"#,
        &[("accept", "application/x-npy")],
    )
    .await;
    assert_eq!(s, 202, "{b}");
    let failed: Value = serde_json::from_str(&b).unwrap();
    let (s, b) = call(
        &proxy,
        "GET",
        &format!("/batch/results?{}", query(&failed)),
        "",
        &[],
    )
    .await;
    assert_eq!(s, 406, "{b}");

    // not there yet: 202; outside the route's prefixes: refused
    let pending = json!({"OutputLocation": format!("s3://{BUCKET}/async-out/nothing.out"), "FailureLocation": format!("s3://{BUCKET}/async-fail/nothing-error.out")});
    let (s, b) = call(
        &proxy,
        "GET",
        &format!("/batch/results?{}", query(&pending)),
        "",
        &[],
    )
    .await;
    assert_eq!(s, 202, "{b}");
    let elsewhere = json!({"OutputLocation": format!("s3://{BUCKET}/async-in/job-1"), "FailureLocation": format!("s3://other/async-fail/x")});
    let (s, _) = call(
        &proxy,
        "GET",
        &format!("/batch/results?{}", query(&elsewhere)),
        "",
        &[],
    )
    .await;
    assert_eq!(s, 403);

    // invalid payloads are neither stored nor sent
    let before = double.calls.load(Ordering::SeqCst);
    let (s, _) = call(
        &proxy,
        "POST",
        "/batch/invocations",
        r#"{"inputs": 5}"#,
        &[],
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(double.calls.load(Ordering::SeqCst), before);
}
