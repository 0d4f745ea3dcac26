//! Requests that would make the server build far more work than they carry are refused before
//! the work exists: a tiny `stride` over a long text repeats every token in many windows.

use axum::body::Body;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn post(app: &axum::Router, body: String) -> (u16, serde_json::Value) {
    let req = axum::http::Request::post("/invocations")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stride_that_would_multiply_the_text_is_refused_up_front() {
    // ~1 MB of context: with a 60-token window moving 1 token at a time that would be about
    // 250 000 windows (15 M tokens) built at once
    let context = "the tower is tall ".repeat(60_000);
    let qa = hf_inference_tests::router_for("question-answering");
    let body = serde_json::json!({
        "inputs": {"question": "How tall?", "context": context},
        "parameters": {"max_seq_len": 64, "doc_stride": 50}
    });
    let (status, v) = post(&qa, body.to_string()).await;
    assert_eq!(status, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("windows"), "{v}");

    let ner = hf_inference_tests::router_for("roberta-token-classification");
    let body = serde_json::json!({
        "inputs": context,
        "parameters": {"aggregation_strategy": "simple", "stride": 60}
    });
    let (status, v) = post(&ner, body.to_string()).await;
    assert_eq!(status, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("windows"), "{v}");

    // the same text without a stride is simply truncated
    let body =
        serde_json::json!({"inputs": context, "parameters": {"aggregation_strategy": "simple"}});
    let (status, v) = post(&ner, body.to_string()).await;
    assert_eq!(status, 200, "{v}");
}
