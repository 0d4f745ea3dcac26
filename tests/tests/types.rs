//! `hf-inference-types` (sdk/rust), the client crate of the wire format, agrees with the server on
//! every golden: its validation says what the server's schemas say about every recorded request
//! and answer; every request the schema accepts reads into its request type and writes back as a
//! valid request that reads the same; every answer reads into its response type and writes back
//! as the same JSON.

use hf_inference_core::{schema, TaskSpec};
use hf_inference_tests::{goldens, FIXTURES, MINILM_GOLDEN};
use hf_inference_types as types;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// Reads `v` as a `T` and writes it back.
fn through<T: DeserializeOwned + Serialize>(v: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(v.clone()).map_err(|e| format!("does not read: {e}"))?;
    serde_json::to_value(&typed).map_err(|e| format!("does not write: {e}"))
}

type Through = fn(&Value) -> Result<Value, String>;

/// The request and response types of a task.
fn typed(task: types::Task) -> (Through, Through) {
    use types::*;
    match task {
        Task::FeatureExtraction => (
            through::<feature_extraction::FeatureExtractionRequest>,
            through::<feature_extraction::FeatureExtractionResponse>,
        ),
        Task::FillMask => (
            through::<fill_mask::FillMaskRequest>,
            through::<fill_mask::FillMaskResponse>,
        ),
        Task::ImageClassification => (
            through::<image_classification::ImageClassificationRequest>,
            through::<image_classification::ImageClassificationResponse>,
        ),
        Task::ImageSegmentation => (
            through::<image_segmentation::ImageSegmentationRequest>,
            through::<image_segmentation::ImageSegmentationResponse>,
        ),
        Task::ObjectDetection => (
            through::<object_detection::ObjectDetectionRequest>,
            through::<object_detection::ObjectDetectionResponse>,
        ),
        Task::QuestionAnswering => (
            through::<question_answering::QuestionAnsweringRequest>,
            through::<question_answering::QuestionAnsweringResponse>,
        ),
        Task::TableQuestionAnswering => (
            through::<table_question_answering::TableQuestionAnsweringRequest>,
            through::<table_question_answering::TableQuestionAnsweringResponse>,
        ),
        Task::TextClassification => (
            through::<text_classification::TextClassificationRequest>,
            through::<text_classification::TextClassificationResponse>,
        ),
        Task::TokenClassification => (
            through::<token_classification::TokenClassificationRequest>,
            through::<token_classification::TokenClassificationResponse>,
        ),
        Task::ZeroShotClassification => (
            through::<zero_shot_classification::ZeroShotClassificationRequest>,
            through::<zero_shot_classification::ZeroShotClassificationResponse>,
        ),
        Task::ZeroShotImageClassification => (
            through::<zero_shot_image_classification::ZeroShotImageClassificationRequest>,
            through::<zero_shot_image_classification::ZeroShotImageClassificationResponse>,
        ),
        Task::TextGeneration => (
            through::<text_generation::TextGenerationRequest>,
            through::<text_generation::TextGenerationResponse>,
        ),
        Task::Text2TextGeneration | Task::Summarization | Task::Translation => (
            through::<text_generation::Text2TextGenerationRequest>,
            through::<text_generation::Text2TextGenerationResponse>,
        ),
    }
}

/// The same JSON, numbers compared as numbers (`1` and `1.0` are one value).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, p)| y.get(k).is_some_and(|q| same(p, q)))
        }
        _ => a == b,
    }
}

#[test]
fn the_types_crate_agrees_with_the_server_on_every_golden() {
    let (mut requests, mut valid, mut answers) = (0, 0, 0);
    let mut problems = Vec::new();
    for name in FIXTURES.iter().map(|f| f.golden).chain([MINILM_GOLDEN]) {
        for g in goldens(name) {
            let Ok(spec) = g.hf_task.parse::<TaskSpec>() else {
                continue;
            };
            // the client crate's task for the same HF_TASK (aliases included)
            let task: types::Task = match g.hf_task.parse() {
                Ok(t) => t,
                Err(e) => panic!("{name} {}: {e}", g.case),
            };
            let server_task = match spec.task {
                hf_inference_core::Task::Conversational => hf_inference_core::Task::TextGeneration,
                t => t,
            };
            let (request, response) = typed(task);
            let at = format!("{name} {}", g.case);
            if let Some(doc) = g.request_document() {
                requests += 1;
                let server = schema::validate_request(server_task, &doc).is_ok();
                let ours = types::validate_request(task, &doc);
                if ours.is_ok() != server {
                    problems.push(format!("{at}: server valid {server}, types crate {ours:?}"));
                }
                if server {
                    valid += 1;
                    match request(&doc) {
                        Err(e) => problems.push(format!("{at}: request {e}")),
                        Ok(back) => {
                            // written back: still valid, and read the same
                            if let Err(e) = types::validate_request(task, &back) {
                                problems.push(format!("{at}: written back invalid: {e}"));
                            }
                            if request(&back).ok().as_ref() != Some(&back) {
                                problems.push(format!("{at}: written back reads differently"));
                            }
                        }
                    }
                }
            }
            if g.path == "/invocations"
                && g.status == 200
                && g.response_content_type.as_deref() == Some("application/json")
            {
                let Ok(body) = serde_json::from_slice::<Value>(&g.response_bytes()) else {
                    continue;
                };
                answers += 1;
                let server = schema::validate_response(server_task, &body).is_ok();
                let ours = types::validate_response(task, &body);
                if ours.is_ok() != server {
                    problems.push(format!(
                        "{at}: answer server valid {server}, types crate {ours:?}"
                    ));
                }
                match response(&body) {
                    Ok(back) if same(&back, &body) => {}
                    Ok(back) => problems.push(format!("{at}: answer written back differs: {back}")),
                    Err(e) => problems.push(format!("{at}: answer {e}")),
                }
            }
        }
    }
    eprintln!("types crate: {requests} requests ({valid} valid), {answers} answers");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        requests >= 500 && valid >= 300 && answers >= 300,
        "{requests} {valid} {answers}"
    );
}

/// The crate's error names the JSON path, as the Python and npm packages do.
#[test]
fn the_types_crate_names_the_json_path() {
    let bad = serde_json::json!({"inputs": "hi", "parameters": {"num_beams": 33}});
    let e = types::validate_request(types::Task::TextGeneration, &bad).unwrap_err();
    assert_eq!(e.path, "$.parameters.num_beams");
    assert!(schema::validate_request(hf_inference_core::Task::TextGeneration, &bad).is_err());
}
