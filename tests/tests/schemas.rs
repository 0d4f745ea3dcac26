//! The request schemas (`schemas/<task>/request.schema.json`, the wire contract) and the Rust
//! request types the pipelines deserialise into cannot drift apart: every golden request that
//! passes its task's schema deserialises into the task's type.

use std::collections::BTreeMap;

use hf_inference_core::pipeline::question_answering::normalize_request;
use hf_inference_core::types::feature_extraction::FeatureExtractionRequest;
use hf_inference_core::types::fill_mask::FillMaskRequest;
use hf_inference_core::types::image_classification::ImageClassificationRequest;
use hf_inference_core::types::image_segmentation::ImageSegmentationRequest;
use hf_inference_core::types::object_detection::ObjectDetectionRequest;
use hf_inference_core::types::question_answering::QuestionAnsweringRequest;
use hf_inference_core::types::text_classification::TextClassificationRequest;
use hf_inference_core::types::token_classification::TokenClassificationRequest;
use hf_inference_core::types::zero_shot_classification::ZeroShotClassificationRequest;
use hf_inference_core::types::zero_shot_image_classification::ZeroShotImageClassificationRequest;
use hf_inference_core::{schema, Task, TaskSpec};
use hf_inference_tests::{goldens, FIXTURES, MINILM_GOLDEN};
use serde_json::Value;

/// Deserialises a schema-valid document as the pipelines do.
fn typed<T: serde::de::DeserializeOwned>(doc: Value) -> Result<(), String> {
    hf_inference_core::types::from_value::<T>(doc)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Question answering's request, after the toolkit's form without `inputs` is moved under it (as
/// the pipeline does before deserialising).
fn question_answering(doc: Value) -> Result<(), String> {
    typed::<QuestionAnsweringRequest>(normalize_request(doc))
}

/// What deserialises a document into `task`'s request type; `None` for the generation tasks.
///
/// The generation tasks have no typed request: their pipeline reads the parameters from the JSON
/// document itself. Checking them would mean loading each fixture model and calling
/// `pipeline.run_json(doc)`, which runs the generation too (too slow here; the parity test does
/// it, through the router), so they are skipped.
fn request_type(task: Task) -> Option<fn(Value) -> Result<(), String>> {
    match task {
        Task::FeatureExtraction => Some(typed::<FeatureExtractionRequest>),
        Task::TextClassification => Some(typed::<TextClassificationRequest>),
        Task::FillMask => Some(typed::<FillMaskRequest>),
        Task::ZeroShotClassification => Some(typed::<ZeroShotClassificationRequest>),
        Task::TokenClassification => Some(typed::<TokenClassificationRequest>),
        Task::QuestionAnswering => Some(question_answering),
        Task::ImageClassification => Some(typed::<ImageClassificationRequest>),
        Task::ImageSegmentation => Some(typed::<ImageSegmentationRequest>),
        Task::ObjectDetection => Some(typed::<ObjectDetectionRequest>),
        Task::ZeroShotImageClassification => Some(typed::<ZeroShotImageClassificationRequest>),
        Task::TextGeneration
        | Task::Text2TextGeneration
        | Task::Summarization
        | Task::Translation
        | Task::Conversational => None,
        other => panic!("a golden file of {other}: name its request type in request_type()"),
    }
}

#[test]
fn schema_valid_golden_requests_deserialise_into_their_types() {
    let names = FIXTURES.iter().map(|f| f.golden).chain([MINILM_GOLDEN]);
    // per task: (deserialised, refused by the schema)
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut skipped_generation = 0;
    let mut failures = Vec::new();
    for name in names {
        for g in goldens(name) {
            let Some(doc) = g.request_document() else {
                continue;
            };
            let task = g
                .hf_task
                .parse::<TaskSpec>()
                .unwrap_or_else(|e| panic!("{name} {}: {e}", g.case))
                .task;
            let Some(deserialise) = request_type(task) else {
                skipped_generation += 1;
                continue;
            };
            let entry = counts.entry(task.id()).or_default();
            if schema::validate_request(task, &doc).is_err() {
                entry.1 += 1;
                continue;
            }
            match deserialise(doc) {
                Ok(()) => entry.0 += 1,
                Err(e) => failures.push(format!(
                    "{name} {}: valid against schemas/{task}/request.schema.json but not a {task} request: {e}",
                    g.case
                )),
            }
        }
    }
    eprintln!("(deserialised, refused by the schema) per task: {counts:?}; {skipped_generation} generation requests skipped");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // every task with a typed request is exercised, and by more than a handful of requests
    for task in [
        Task::FeatureExtraction,
        Task::TextClassification,
        Task::FillMask,
        Task::ZeroShotClassification,
        Task::TokenClassification,
        Task::QuestionAnswering,
    ] {
        let (checked, refused) = counts.get(task.id()).copied().unwrap_or_default();
        assert!(
            checked >= 20,
            "{task}: only {checked} requests deserialised"
        );
        assert!(refused >= 1, "{task}: the schema refused no golden request");
    }
    // image tasks: most of their goldens are raw image bodies; the JSON ones are few
    let (checked, refused) = counts
        .get(Task::ImageClassification.id())
        .copied()
        .unwrap_or_default();
    assert!(
        checked >= 5 && refused >= 1,
        "image-classification: {checked} deserialised, {refused} refused"
    );
    let total: usize = counts.values().map(|(checked, _)| checked).sum();
    assert!(total >= 400, "only {total} requests deserialised");
}
