//! Generation beyond the goldens: token streaming (Server-Sent Events), continuous batching of
//! concurrent requests (each answer the same as alone), seeded sampling, stop strings, the
//! legacy conversational body, and the limits.

use serde_json::{json, Value};

use hf_inference_tests::{post_json, router_for, sse_events};

async fn post(router: &axum::Router, body: Value, accept: Option<&str>) -> (u16, String, Vec<u8>) {
    let (status, ct, chunks) = post_json(router, "/invocations", &body, accept).await;
    (status, ct, chunks.concat())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_tokens_as_server_sent_events() {
    let router = router_for("llama-text-generation");
    let request = json!({"inputs": "Once upon a time", "parameters": {"max_new_tokens": 12}});
    let (status, _, whole) = post(&router, request.clone(), None).await;
    assert_eq!(status, 200);
    let whole: Value = serde_json::from_slice(&whole).unwrap();

    for (req, accept) in [
        (request.clone(), Some("text/event-stream")),
        (
            json!({"inputs": "Once upon a time", "parameters": {"max_new_tokens": 12, "stream": true}}),
            None,
        ),
    ] {
        let (status, ct, body) = post(&router, req, accept).await;
        assert_eq!((status, ct.as_str()), (200, "text/event-stream"));
        let evs = sse_events(&body);
        assert_eq!(evs.len(), 12, "one event per token: {evs:?}");
        for (i, e) in evs.iter().enumerate() {
            assert_eq!(e["index"], i + 1);
            assert!(e["token"]["id"].is_u64());
        }
        let last = evs.last().unwrap();
        // the final event carries the new text and the same answer as without streaming
        assert_eq!(last["output"], whole);
        let streamed: String = evs
            .iter()
            .map(|e| e["token"]["text"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(last["generated_text"], streamed);
        let full = whole[0]["generated_text"].as_str().unwrap();
        assert_eq!(format!("Once upon a time{streamed}"), full);
        assert!(evs[..evs.len() - 1]
            .iter()
            .all(|e| e["generated_text"].is_null()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_streamed_request_gets_its_status_not_a_stream() {
    let router = router_for("text-generation");
    let (status, ct, body) = post(
        &router,
        json!({"inputs": "Hi", "parameters": {"num_return_sequences": 2}}),
        Some("text/event-stream"),
    )
    .await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(ct.starts_with("application/json"));
    // a task that does not generate cannot stream
    let (status, _, _) = post(
        &router_for("text-classification"),
        json!({"inputs": "Hi"}),
        Some("text/event-stream"),
    )
    .await;
    assert_eq!(status, 406);
}

/// Concurrent requests share the engine's steps; each answer is what it is alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_generations_match_their_answers_alone() {
    let router = router_for("qwen2-text-generation");
    let requests: Vec<Value> = [
        ("Once upon a time", 20, 1),
        ("The weather today is", 7, 1),
        ("Amazon SageMaker", 15, 2),
        ("Hello", 30, 1),
        ("A long time ago in a galaxy far away", 9, 3),
    ]
    .iter()
    .map(|(p, n, beams)| json!({"inputs": p, "parameters": {"max_new_tokens": n, "num_beams": beams}}))
    .collect();
    let mut alone = Vec::new();
    for r in &requests {
        let (status, _, body) = post(&router, r.clone(), None).await;
        assert_eq!(status, 200);
        alone.push(body);
    }
    for _round in 0..2 {
        let handles: Vec<_> = requests
            .iter()
            .map(|r| {
                let router = router.clone();
                let r = r.clone();
                tokio::spawn(async move { post(&router, r, None).await })
            })
            .collect();
        for (h, expected) in handles.into_iter().zip(&alone) {
            let (status, _, body) = h.await.unwrap();
            assert_eq!(status, 200);
            assert_eq!(
                String::from_utf8_lossy(&body),
                String::from_utf8_lossy(expected)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_sampling_repeats_and_seeds_differ() {
    let router = router_for("gemma-text-generation");
    let req = |seed: u64| json!({"inputs": "Once upon a time", "parameters": {"do_sample": true, "seed": seed, "max_new_tokens": 16, "top_k": 0, "temperature": 1.5}});
    let (_, _, a) = post(&router, req(1), None).await;
    let (_, _, b) = post(&router, req(1), None).await;
    assert_eq!(a, b, "same seed, same text");
    let mut others = 0;
    for seed in 2..6 {
        let (status, _, c) = post(&router, req(seed), None).await;
        assert_eq!(status, 200);
        others += usize::from(c != a);
    }
    assert!(others >= 3, "different seeds should sample differently");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_strings_end_the_text_at_the_string() {
    let router = router_for("text-generation");
    let base = json!({"inputs": "Once upon a time", "parameters": {"max_new_tokens": 20, "return_full_text": false}});
    let (_, _, full) = post(&router, base, None).await;
    let full: Value = serde_json::from_slice(&full).unwrap();
    let text = full[0]["generated_text"].as_str().unwrap().to_owned();
    // stop at the first "mor" of the greedy continuation
    let cut = text.find("mor").expect("the greedy text has 'mor'") + 3;
    for key in ["stop", "stop_strings"] {
        let (status, _, out) = post(
            &router,
            json!({"inputs": "Once upon a time", "parameters": {"max_new_tokens": 20, "return_full_text": false, key: ["mor"]}}),
            None,
        )
        .await;
        assert_eq!(status, 200);
        let out: Value = serde_json::from_slice(&out).unwrap();
        let got = out[0]["generated_text"].as_str().unwrap();
        assert!(
            got.starts_with(&text[..cut]) && got.len() < text.len(),
            "{got:?} vs {text:?}"
        );
        assert!(got.contains("mor") && got.len() <= cut + 8, "{got:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversational_bodies_and_limits() {
    // the old conversational pipeline's body is a chat
    let router = router_for("llama-text-generation");
    let (status, _, body) = post(
        &router,
        json!({"past_user_inputs": ["Which movie is the best ?"], "generated_responses": ["It is Die Hard for sure."], "text": "Can you explain why ?", "parameters": {"max_new_tokens": 3}}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    let chat = v[0]["generated_text"].as_array().unwrap();
    assert_eq!(chat.len(), 4);
    assert_eq!(chat[2]["content"], "Can you explain why ?");
    assert_eq!(chat[3]["role"], "assistant");
    // HF_MAX_NEW_TOKENS (2048 by default) bounds what a request may ask for
    let (status, _, body) = post(
        &router,
        json!({"inputs": "Hi", "parameters": {"max_new_tokens": 100000}}),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("HF_MAX_NEW_TOKENS"));
    // unknown parameters are refused, naming them
    let (status, _, body) = post(
        &router,
        json!({"inputs": "Hi", "parameters": {"max_new_tokenz": 3}}),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("max_new_tokenz"));
}
