//! What operators read: `GET /metrics` after a few invocations.

use axum::body::Body;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn call(app: &axum::Router, method: &str, path: &str, body: &str) -> (u16, String) {
    let req = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// The value of the sample of `name` whose labels include every one of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_errors_latency_batches_and_tokens() {
    let app = hf_inference_tests::router_for("text-classification");
    for body in [
        r#"{"inputs": "I love this"}"#,
        r#"{"inputs": ["I hate this", "meh"]}"#,
    ] {
        let (status, b) = call(&app, "POST", "/invocations", body).await;
        assert_eq!(status, 200, "{b}");
    }
    let (status, b) = call(&app, "POST", "/invocations", r#"{"inputs": 123}"#).await;
    assert_eq!(status, 400, "{b}");
    // the queue's slot of the last request is given back just after its answer is sent, so a
    // scrape right after may still count it: scrape until the gauge is back to 0 (a leak never
    // gets there; generous bound, for a loaded machine)
    let started = std::time::Instant::now();
    let text = loop {
        let (status, text) = call(&app, "GET", "/metrics", "").await;
        assert_eq!(status, 200);
        if sample(&text, "hf_queue_depth", &[]) == Some(0.0) {
            break text;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "hf_queue_depth never went back to 0: {text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let task = r#"task="text-classification""#;
    assert_eq!(
        sample(&text, "hf_requests_total", &[task, r#"status="200""#]),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "hf_requests_total", &[task, r#"status="400""#]),
        Some(1.0),
        "{text}"
    );
    let kind: serde_json::Value = serde_json::from_str(&b).unwrap();
    let kind = format!(r#"type="{}""#, kind["type"].as_str().unwrap());
    assert_eq!(
        sample(&text, "hf_request_errors_total", &[task, &kind]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "hf_request_duration_seconds_count", &[task]),
        Some(3.0),
        "{text}"
    );
    assert!(sample(&text, "hf_request_duration_seconds_sum", &[task]).unwrap() > 0.0);
    let sent = (r#"{"inputs": "I love this"}"#.len()
        + r#"{"inputs": ["I hate this", "meh"]}"#.len()
        + r#"{"inputs": 123}"#.len()) as f64;
    assert_eq!(
        sample(&text, "hf_request_body_bytes_total", &[r#"direction="in""#]),
        Some(sent)
    );
    assert!(
        sample(
            &text,
            "hf_request_body_bytes_total",
            &[r#"direction="out""#]
        )
        .unwrap()
            > 0.0
    );
    // the engine's counters are the process's (other tests run models too): at least ours
    assert!(
        sample(&text, "hf_forward_passes_total", &[]).unwrap() >= 2.0,
        "{text}"
    );
    assert!(
        sample(&text, "hf_batch_size_count", &[]).unwrap() >= 2.0,
        "{text}"
    );
    // "I love this" is 5 tokens with [CLS] and [SEP]; the list more
    assert!(
        sample(&text, "hf_tokens_total", &[r#"kind="input""#]).unwrap() >= 10.0,
        "{text}"
    );
}
