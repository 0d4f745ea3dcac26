//! JSON Lines through the router (batch transform and asynchronous inference): one answer per
//! non-blank line, in order, each the same as the request sent alone; a bad line gets its error
//! object in place; the body is streamed and its limit still holds.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

use hf_inference_tests::router_for;

async fn call(
    app: &axum::Router,
    content_type: &str,
    accept: Option<&str>,
    body: Body,
) -> (u16, Option<String>, String) {
    let mut req = Request::post("/invocations").header("content-type", content_type);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ct, String::from_utf8(body.to_vec()).unwrap())
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_line_is_answered_in_place_and_bad_lines_get_their_error() {
    let app = router_for("token-classification");
    let requests = [
        r#"{"inputs": "My name is Sylvain and I work at Hugging Face in Brooklyn."}"#,
        r#"{"inputs": "Paris is the capital of France.", "parameters": {"aggregation_strategy": "simple"}}"#,
        r#"{"inputs": 123}"#,
        "not json at all",
        r#"{"inputs": ["a", "b"], "parameters": {"aggregation_strategy": "bogus"}}"#,
        r#"{"inputs": ["Hugging Face", "in New York"]}"#,
    ];
    // CRLF, a blank line, no newline at the end
    let body = format!(
        "{}\r\n{}\n\n{}\n{}\n   \n{}\n{}",
        requests[0], requests[1], requests[2], requests[3], requests[4], requests[5]
    );
    let (status, ct, out) = call(&app, "application/jsonlines", None, Body::from(body)).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(ct.as_deref(), Some("application/jsonlines"));
    assert!(out.ends_with('\n'));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), requests.len(), "{out}");
    for (req, line) in requests.iter().zip(&lines) {
        let (s, _, alone) = call(&app, "application/json", None, Body::from(req.to_string())).await;
        if s == 200 {
            assert_eq!(json(line), json(&alone), "{req}");
        } else {
            let v = json(line);
            assert_eq!(v["code"], s, "{req}: {line}");
            assert!(
                v["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{line}"
            );
        }
    }
    assert_eq!(json(lines[2])["code"], 400);
    assert_eq!(json(lines[3])["code"], 400);

    // the same lines framed as one JSON array
    let body = requests.join("\n");
    let (status, ct, out) = call(
        &app,
        "application/x-jsonlines",
        Some("application/json"),
        Body::from(body),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(ct.as_deref(), Some("application/json"));
    let array = json(&out);
    assert_eq!(array.as_array().map(Vec::len), Some(requests.len()));
    assert_eq!(array[0], json(lines[0]));
    assert_eq!(array[4]["code"], 400);

    // CSV cannot frame lines
    let (status, _, out) = call(
        &app,
        "application/jsonlines",
        Some("text/csv"),
        Body::from(requests[0]),
    )
    .await;
    assert_eq!(status, 406, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_lines_stay_in_order() {
    let app = router_for("text-classification");
    let n = 3000;
    let texts: Vec<String> = (0..n)
        .map(|i| format!("review number {i}: {}", "great ".repeat(i % 7)))
        .collect();
    let body: String = texts
        .iter()
        .map(|t| format!("{}\n", serde_json::json!({ "inputs": t })))
        .collect();
    let (status, _, out) = call(&app, "application/jsonlines", None, Body::from(body)).await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), n);
    for i in [0, 1, 6, 7, 1234, n - 1] {
        let req = serde_json::json!({ "inputs": texts[i] }).to_string();
        let (_, _, alone) = call(&app, "application/json", None, Body::from(req)).await;
        assert_eq!(json(lines[i]), json(&alone), "line {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payload_limit_holds_for_a_streamed_body() {
    // chunked (no Content-Length): the lines read before the limit are answered, then a 413 line
    let app = router_for("text-classification");
    let line = format!("{}\n", serde_json::json!({"inputs": "a".repeat(1000)}));
    let chunks: Vec<Result<axum::body::Bytes, std::io::Error>> = (0..8000)
        .map(|_| Ok(axum::body::Bytes::from(line.clone())))
        .collect();
    let body = Body::from_stream(futures_util::stream::iter(chunks));
    let (status, _, out) = call(&app, "application/jsonlines", None, body).await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = out.lines().collect();
    let last = json(lines.last().unwrap());
    assert_eq!(last["code"], 413, "{}", lines.last().unwrap());
    assert!(lines.len() > 1 && lines.len() < 8000, "{}", lines.len());
    assert!(json(lines[0])[0]["label"].is_string(), "{}", lines[0]);
}

/// The same request run in one piece, straight through the pipeline.
fn whole(golden_model: &str, task: &str, request: &serde_json::Value) -> serde_json::Value {
    let dir = hf_inference_tests::fixtures()
        .join("models")
        .join(golden_model);
    let opts = hf_inference_core::LoadOptions {
        max_request_tokens: 1 << 30,
        ..hf_inference_core::LoadOptions::local(dir, Some(task.parse().unwrap()))
    };
    let p = hf_inference_core::load_pipeline(&opts).unwrap();
    p.run(
        hf_inference_core::Input::Json(request.clone()),
        hf_inference_core::Context::detached(),
    )
    .unwrap()
    .to_value()
}

/// A long `inputs` list is run in parts and streamed; the answer is the one of the whole list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_input_lists_are_answered_in_parts_as_one_array() {
    let texts: Vec<String> = (0..300)
        .map(|i| format!("sentence {i} is {}", "very ".repeat(i % 5)))
        .collect();
    for (model, task, request) in [
        (
            "text-classification",
            "text-classification",
            serde_json::json!({"inputs": texts, "parameters": {"top_k": 2}}),
        ),
        (
            "token-classification",
            "token-classification",
            serde_json::json!({"inputs": texts[..129], "parameters": {"aggregation_strategy": "first"}}),
        ),
        (
            "question-answering",
            "question-answering",
            // 65 pairs: one part (no one-pair tail, which QA would answer unwrapped)
            serde_json::json!({"inputs": texts[..65].iter().map(|t| serde_json::json!({"question": "What is it?", "context": t})).collect::<Vec<_>>()}),
        ),
        (
            "feature-extraction-tiny",
            "feature-extraction",
            serde_json::json!({"inputs": texts[..100]}),
        ),
    ] {
        let app = hf_inference_tests::router_for_dir(
            &hf_inference_tests::fixtures().join("models").join(model),
            task,
        );
        let (status, ct, out) = call(
            &app,
            "application/json",
            None,
            Body::from(request.to_string()),
        )
        .await;
        assert_eq!(status, 200, "{task}: {out}");
        assert_eq!(ct.as_deref(), Some("application/json"));
        let got = json(&out);
        let want = whole(model, task, &request);
        assert_eq!(
            got.as_array().map(Vec::len),
            want.as_array().map(Vec::len),
            "{task}"
        );
        let verdict = hf_inference_tests::parity_close(&want, &got, "$");
        assert!(verdict.is_none(), "{task}: {verdict:?}");

        // the same inputs as JSON Lines: one answer per input
        let (status, ct, out) = call(
            &app,
            "application/json",
            Some("application/jsonlines"),
            Body::from(request.to_string()),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(ct.as_deref(), Some("application/jsonlines"));
        assert_eq!(
            out.lines().count(),
            want.as_array().unwrap().len(),
            "{task}"
        );
        assert_eq!(json(out.lines().next().unwrap()), want[0], "{task}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_long_request_still_gets_its_status() {
    let app = router_for("text-classification");
    let texts: Vec<String> = (0..200).map(|i| format!("text {i}")).collect();
    let body = serde_json::json!({"inputs": texts, "parameters": {"top_k": -1}}).to_string();
    let (status, _, out) = call(&app, "application/json", None, Body::from(body)).await;
    assert_eq!(status, 400, "{out}");
    assert_eq!(json(&out)["code"], 400);
}

/// Batch transform's SplitType=Line joins records with newlines and keeps `application/json`:
/// one answer per record, one per line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_json_documents_in_one_body_are_answered_one_per_line() {
    let app = router_for("text-classification");
    let records = [
        r#"{"inputs": "I love this"}"#,
        r#"{"inputs": ["I hate this", "meh"], "parameters": {"top_k": 2}}"#,
        r#"{"inputs": 5}"#,
    ];
    let (status, ct, out) = call(
        &app,
        "application/json",
        Some("application/json"),
        Body::from(records.join("\n")),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(ct.as_deref(), Some("application/json"));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (r, line) in records.iter().zip(&lines).take(2) {
        let (_, _, alone) = call(&app, "application/json", None, Body::from(r.to_string())).await;
        assert_eq!(json(line), json(&alone));
    }
    assert_eq!(json(lines[2])["code"], 400);
    // one broken document is still a plain 400
    let (status, _, _) = call(
        &app,
        "application/json",
        None,
        Body::from("{\"inputs\": \"a\"} x"),
    )
    .await;
    assert_eq!(status, 400);
}
