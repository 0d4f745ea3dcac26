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
    // ~1 MB of context holds more tokens than a request may: refused before the rest of it
    // is tokenized, stride or not
    let context = "the tower is tall ".repeat(60_000);
    let qa = hf_inference_tests::router_for("question-answering");
    let body = serde_json::json!({
        "inputs": {"question": "How tall?", "context": context},
        "parameters": {"max_seq_len": 64, "doc_stride": 50}
    });
    let (status, v) = post(&qa, body.to_string()).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("HF_MAX_REQUEST_TOKENS"),
        "{v}"
    );
    // ~4 000 tokens fit, but a 64-token window moving a few tokens at a time would repeat them
    // in hundreds of windows (tens of thousands of tokens) built at once
    let short = "the tower is tall ".repeat(1_000);
    let body = serde_json::json!({
        "inputs": {"question": "How tall?", "context": short},
        "parameters": {"max_seq_len": 64, "doc_stride": 50}
    });
    let (status, v) = post(&qa, body.to_string()).await;
    assert_eq!(status, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("windows"), "{v}");

    let ner = hf_inference_tests::router_for("roberta-token-classification");
    let body = serde_json::json!({
        "inputs": short,
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

/// A long text (every kind of tokenizer the fixtures hold: WordPiece, byte-level BPE, Unigram
/// with and without Metaspace) truncated through the prefix path gives the same tokens as
/// tokenizing the whole text and truncating it, as `tokenizers`' own truncation does.
#[test]
fn truncating_a_long_text_from_a_prefix_matches_tokenizing_it_whole() {
    use hf_inference_core::model::ModelSource;
    use hf_inference_core::tokenize::{
        TextTokenizer, TokenizeOptions, TruncationStrategy, WindowOptions,
    };
    use tokenizers::utils::truncation::{TruncationDirection, TruncationParams};

    // prose with punctuation, runs of spaces, newlines, accents, CJK and a long word
    let unit =
        "The  quick brown fox, naïvely, jumped over 12 lazy dogs!\n\u{4e2d}\u{6587}\u{5b57} \
                Ça va? internationalization-supercalifragilisticexpialidocious\t(end) ";
    let text = unit.repeat(400); // ~50 KB: far past the first prefix of any length below
    for name in [
        "text-classification",
        "roberta-text-classification",
        "xlm-roberta-feature-extraction",
        "deberta-v2-text-classification",
        "translation-t5",
        "text-generation",
        "qwen2-text-generation",
    ] {
        let files = ModelSource::LocalDir(hf_inference_tests::fixtures().join("models").join(name))
            .resolve()
            .unwrap();
        let ours = TextTokenizer::load(&files, 0).unwrap();
        let mut reference =
            tokenizers::Tokenizer::from_file(files.tokenizer.as_ref().unwrap()).unwrap();
        reference.with_padding(None);
        for max_length in [8, 61, 512, 2000] {
            reference
                .with_truncation(Some(TruncationParams {
                    max_length,
                    strategy: TruncationStrategy::LongestFirst,
                    stride: 0,
                    direction: TruncationDirection::Right,
                }))
                .unwrap();
            for cut in [text.len() / 3, text.len() / 2 + 7, text.len()] {
                let mut at = cut;
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                let t = &text[..at];
                let want = reference.encode(t, true).unwrap();
                let opts = TokenizeOptions {
                    truncation: Some(TruncationStrategy::LongestFirst),
                    max_length: Some(max_length),
                    ..TokenizeOptions::default()
                };
                let got = ours.encode(t, None, &opts).unwrap();
                assert_eq!(
                    got.ids,
                    want.get_ids(),
                    "{name}, max_length {max_length}, {at} bytes"
                );
                // a window with character offsets (token classification without a stride)
                let want = reference.encode_char_offsets(t, true).unwrap();
                let w = WindowOptions {
                    strategy: TruncationStrategy::LongestFirst,
                    max_length: Some(max_length),
                    stride: 0,
                    max_tokens: 16_384,
                    first_only: true,
                };
                let got = ours.encode_windows(t, None, &w).unwrap();
                assert_eq!(got.len(), 1);
                assert_eq!(
                    got[0].get_ids(),
                    want.get_ids(),
                    "{name}, windows, {max_length}"
                );
                assert_eq!(
                    got[0].get_offsets(),
                    want.get_offsets(),
                    "{name}, offsets, {max_length}"
                );
            }
        }
    }
}

/// Past the request's token limit a text is refused before the rest of it is tokenized, and a
/// body of many small texts stops at the first one past the limit: the same 400 either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_past_the_token_limit_are_refused_without_tokenizing_them_whole() {
    let app = hf_inference_tests::router_for("text-classification");
    let words = "the quick brown fox jumps over the lazy dog ".repeat(20_000); // ~900 KB
    let (status, v) = post(&app, serde_json::json!({ "inputs": words }).to_string()).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["type"], "InputTooLong", "{v}");
    assert!(v["message"].as_str().unwrap().contains("16384"), "{v}");
    // truncated, the same text is answered from its first 512 tokens
    let body = serde_json::json!({ "inputs": words, "parameters": {"truncation": true} });
    let (status, v) = post(&app, body.to_string()).await;
    assert_eq!(status, 200, "{v}");
    let short = serde_json::json!({ "inputs": words[..4200], "parameters": {"truncation": true} });
    let (_, v_short) = post(&app, short.to_string()).await;
    assert_eq!(
        v, v_short,
        "the answer depends only on the first 512 tokens"
    );
    // a long run without spaces: one [UNK] to WordPiece, refused past 64 bytes a token
    let run = "a".repeat(2_000_000);
    let body = serde_json::json!({ "inputs": run, "parameters": {"truncation": true} });
    let (status, v) = post(&app, body.to_string()).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["type"], "InputTooLong", "{v}");
    // a request's texts are charged one by one: the first past the limit stops it
    let mut budget = hf_inference_core::tokenize::TokenBudget::new(10);
    budget.charge(6).unwrap();
    budget.charge(4).unwrap();
    let e = budget.charge(1).unwrap_err();
    assert_eq!(e.status(), 400);
    assert!(e.to_string().contains("HF_MAX_REQUEST_TOKENS"), "{e}");
}
