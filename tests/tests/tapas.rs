//! TAPAS (table-question-answering): the tokenizer's ids and seven token type channels against
//! transformers' `TapasTokenizer`, and the model's token and aggregation logits against
//! `TapasForQuestionAnswering`, both recorded by tests/fixtures/record_tapas_ids.py on the
//! harness's TAPAS (BERT-uncased vocab) and our WTQ-style fixture (a vocab with `[EMPTY]`, a
//! 64-token window).

use hf_inference_core::model::tapas::{Tapas, TapasInput};
use hf_inference_core::tokenize::tapas::{Table, TapasTokenizer, Truncation, CHANNELS};
use serde_json::Value;

fn records() -> Value {
    let path = hf_inference_tests::fixtures().join("golden/tapas-tokenizer-ids.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn table(v: &Value) -> Table {
    let obj = v.as_object().unwrap();
    let columns: Vec<String> = obj.keys().cloned().collect();
    let cols: Vec<Vec<String>> = obj
        .values()
        .map(|c| serde_json::from_value(c.clone()).unwrap())
        .collect();
    let rows = (0..cols[0].len())
        .map(|r| cols.iter().map(|c| c[r].clone()).collect())
        .collect();
    Table { columns, rows }
}

fn model_dir(name: &str) -> std::path::PathBuf {
    hf_inference_tests::fixtures().join("models").join(name)
}

#[test]
fn tapas_tokenizer_matches_transformers_on_every_channel() {
    let recs = records();
    let models = recs["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    let mut checked = 0;
    let mut numeric = [false; 3];
    for m in models {
        let name = m["model"].as_str().unwrap();
        let tok = TapasTokenizer::load(&model_dir(name)).unwrap();
        for case in m["cases"].as_array().unwrap() {
            let what = format!("{name} / {}", case["name"]);
            let queries: Vec<String> = serde_json::from_value(case["queries"].clone()).unwrap();
            let truncation = match case["truncation"].as_str().unwrap() {
                "drop_rows_to_fit" => Truncation::DropRowsToFit,
                _ => Truncation::None,
            };
            let max_length = case["max_length"].as_u64().map(|m| m as usize);
            let encs = tok
                .encode(&table(&case["table"]), &queries, truncation, max_length)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let ids: Vec<Vec<u32>> = serde_json::from_value(case["input_ids"].clone()).unwrap();
            let types: Vec<Vec<[u32; CHANNELS]>> =
                serde_json::from_value(case["token_type_ids"].clone()).unwrap();
            assert_eq!(encs.len(), queries.len(), "{what}");
            for (i, e) in encs.iter().enumerate() {
                assert_eq!(e.ids, ids[i], "{what}: ids of query {i} {:?}", queries[i]);
                for (j, (ours, theirs)) in e.token_types.iter().zip(&types[i]).enumerate() {
                    assert_eq!(
                        ours, theirs,
                        "{what}: query {i}, token {j} (id {})",
                        e.ids[j]
                    );
                }
                assert_eq!(e.token_types.len(), types[i].len(), "{what}");
                for (k, seen) in numeric.iter_mut().enumerate() {
                    *seen |= e.token_types.iter().any(|t| t[4 + k] > 0);
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 30, "{checked} encodings");
    assert_eq!(
        numeric, [true; 3],
        "ranks, inverse ranks and relations all exercised"
    );
}

#[test]
fn tapas_logits_match_transformers() {
    let recs = records();
    for m in recs["models"].as_array().unwrap() {
        let name = m["model"].as_str().unwrap();
        let dir = model_dir(name);
        let tok = TapasTokenizer::load(&dir).unwrap();
        let files = hf_inference_core::model::ModelSource::LocalDir(dir.clone())
            .resolve()
            .unwrap();
        let raw: Value =
            serde_json::from_str(&std::fs::read_to_string(&files.config).unwrap()).unwrap();
        let model = Tapas::from_files(&files, &raw, &candle_core::Device::Cpu).unwrap();
        for rec in m["logits"].as_array().unwrap() {
            let case = m["cases"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == rec["name"])
                .unwrap();
            let expected: Vec<Vec<f32>> = serde_json::from_value(rec["logits"].clone()).unwrap();
            let queries: Vec<String> = serde_json::from_value(case["queries"].clone()).unwrap();
            let queries = &queries[..expected.len()];
            let truncation = match case["truncation"].as_str().unwrap() {
                "drop_rows_to_fit" => Truncation::DropRowsToFit,
                _ => Truncation::None,
            };
            let encs = tok
                .encode(&table(&case["table"]), queries, truncation, None)
                .unwrap();
            let len = encs.iter().map(|e| e.ids.len()).max().unwrap();
            let batch: Vec<TapasInput> = encs
                .into_iter()
                .map(|e| {
                    let n = e.ids.len();
                    let mut ids = e.ids;
                    ids.resize(len, tok.pad_id());
                    let mut token_types = e.token_types;
                    token_types.resize(len, [0; CHANNELS]);
                    let mut attention = vec![1; n];
                    attention.resize(len, 0);
                    TapasInput {
                        ids,
                        token_types,
                        attention,
                    }
                })
                .collect();
            let out = model.forward(&batch).unwrap();
            for (i, (o, want)) in out.iter().zip(&expected).enumerate() {
                assert_eq!(o.logits.len(), want.len());
                for (j, (a, b)) in o.logits.iter().zip(want).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-3 * b.abs().max(1.0),
                        "{name} {} query {i} token {j}: {a} vs {b}",
                        rec["name"]
                    );
                }
                let agg: Option<Vec<Vec<f32>>> =
                    serde_json::from_value(rec["logits_aggregation"].clone()).unwrap();
                match (&o.aggregation, agg) {
                    (Some(a), Some(b)) => {
                        for (x, y) in a.iter().zip(&b[i]) {
                            assert!(
                                (x - y).abs() < 1e-4,
                                "{name}: aggregation {a:?} vs {:?}",
                                b[i]
                            );
                        }
                    }
                    (None, None) => {}
                    other => panic!("{name}: aggregation heads differ: {other:?}"),
                }
            }
        }
    }
}

/// POSTs `body` to the router; the status and the JSON answer.
async fn ask(router: &axum::Router, body: Value) -> (u16, Value) {
    let (status, _, chunks) =
        hf_inference_tests::post_json(router, "/invocations", &body, None).await;
    let bytes: Vec<u8> = chunks.concat();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, v)
}

/// A 4xx error body `{"code", "type", "message"}` whose message says `what`.
fn refused(status: u16, v: &Value, what: &str) {
    assert!((400..500).contains(&status), "{status}: {v}");
    assert_eq!(v["code"], u64::from(status), "{v}");
    let msg = v["message"].as_str().unwrap_or_default();
    assert!(msg.contains(what), "{what:?} not in {msg:?}");
}

/// Hostile tables through the HTTP router: a 4xx saying what to send, never a panic or a 500.
#[tokio::test]
async fn bad_tables_are_refused_with_what_to_send() {
    let harness = hf_inference_tests::router_for("table-question-answering");
    let wtq = hf_inference_tests::router_for("tapas-wtq-table-question-answering");
    let q = "How many stars?";
    let (s, v) = ask(
        &harness,
        serde_json::json!({"inputs": {"query": q, "table": {"a": ["1", "2"], "b": ["3"]}}}),
    )
    .await;
    refused(s, &v, "differ in length");
    let (s, v) = ask(
        &harness,
        serde_json::json!({"inputs": {"query": q, "table": {"a": ["1", 2]}}}),
    )
    .await;
    refused(s, &v, "");
    let (s, v) = ask(
        &harness,
        serde_json::json!({"inputs": {"query": q, "table": {}}}),
    )
    .await;
    refused(s, &v, "");
    let (s, v) = ask(
        &harness,
        serde_json::json!({"inputs": {"query": [], "table": {"a": ["1"]}}}),
    )
    .await;
    refused(s, &v, "");
    // the harness's vocab has no [EMPTY]: a cell of punctuation (or "n/a", "?", "nan") cannot be
    // embedded (the toolkit's index error), said plainly; an empty string has no tokens at all
    let (s, v) = ask(
        &harness,
        serde_json::json!({"inputs": {"query": q, "table": {"a": ["x", "?"]}}}),
    )
    .await;
    refused(s, &v, "[EMPTY]");
    let (s, v) = ask(
        &harness,
        serde_json::json!({"inputs": {"query": q, "table": {"a": ["x", ""]}}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // the WTQ-style fixture has [EMPTY]: served
    let (s, v) = ask(
        &wtq,
        serde_json::json!({"inputs": {"query": q, "table": {"a": ["x", "n/a"]}}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // past the window without truncation
    let rows: Vec<String> = (0..40).map(|i| format!("row {i}")).collect();
    let (s, v) = ask(&wtq, serde_json::json!({"inputs": {"query": q, "table": {"a": rows}}, "parameters": {"truncation": false}})).await;
    refused(s, &v, "truncation");
    // with truncation (the default) the rows that fit are kept
    let (s, v) = ask(
        &wtq,
        serde_json::json!({"inputs": {"query": q, "table": {"a": rows}}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // more rows than the row-id embeddings (256) even when the window would take them: a 4xx
    let many: Vec<String> = (0..300).map(|i| format!("{}", i % 7)).collect();
    let (s, v) = ask(&harness, serde_json::json!({"inputs": {"query": q, "table": {"a": many}}, "parameters": {"truncation": false}})).await;
    assert!((400..500).contains(&s), "{s}: {v}");
    let (s, v) = ask(&harness, serde_json::json!({"inputs": {"query": q, "table": {"a": ["1"]}}, "parameters": {"truncation": "longest_first"}})).await;
    refused(s, &v, "");
    // a sequential conversation answers one object per question, aggregator included
    let (s, v) = ask(&wtq, serde_json::json!({"inputs": {"query": ["Which repository has the most stars?", "and the contributors?"],
        "table": {"Repository": ["Transformers", "Datasets"], "Stars": ["36542", "4512"], "Contributors": ["651", "77"]}},
        "parameters": {"sequential": true}})).await;
    assert_eq!(s, 200, "{v}");
    let answers = v.as_array().unwrap();
    assert_eq!(answers.len(), 2);
    for a in answers {
        assert!(
            a["aggregator"].is_string() && a["coordinates"].is_array(),
            "{a}"
        );
    }
}
