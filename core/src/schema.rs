//! The JSON Schemas of `schemas/`, embedded at build time: the single source of truth of the wire
//! format. Every request is validated against its task's request schema before a pipeline sees it;
//! tests validate every golden response against the response schema.

use std::sync::LazyLock;

use jsonschema::Validator;
use serde_json::Value;

use crate::error::ToolkitError;
use crate::task::Task;

/// A task's request and response schema, as JSON text.
#[derive(Debug, Clone, Copy)]
pub struct SchemaSource {
    /// The task.
    pub task: Task,
    /// `schemas/<task>/request.schema.json`.
    pub request: &'static str,
    /// `schemas/<task>/response.schema.json`.
    pub response: &'static str,
}

/// Every schema this build ships.
pub const SOURCES: &[SchemaSource] = &[
    SchemaSource {
        task: Task::FeatureExtraction,
        request: include_str!("../schemas/feature-extraction/request.schema.json"),
        response: include_str!("../schemas/feature-extraction/response.schema.json"),
    },
    SchemaSource {
        task: Task::TextClassification,
        request: include_str!("../schemas/text-classification/request.schema.json"),
        response: include_str!("../schemas/text-classification/response.schema.json"),
    },
    SchemaSource {
        task: Task::FillMask,
        request: include_str!("../schemas/fill-mask/request.schema.json"),
        response: include_str!("../schemas/fill-mask/response.schema.json"),
    },
    SchemaSource {
        task: Task::ZeroShotClassification,
        request: include_str!("../schemas/zero-shot-classification/request.schema.json"),
        response: include_str!("../schemas/zero-shot-classification/response.schema.json"),
    },
    SchemaSource {
        task: Task::TokenClassification,
        request: include_str!("../schemas/token-classification/request.schema.json"),
        response: include_str!("../schemas/token-classification/response.schema.json"),
    },
    SchemaSource {
        task: Task::QuestionAnswering,
        request: include_str!("../schemas/question-answering/request.schema.json"),
        response: include_str!("../schemas/question-answering/response.schema.json"),
    },
    SchemaSource {
        task: Task::TableQuestionAnswering,
        request: include_str!("../schemas/table-question-answering/request.schema.json"),
        response: include_str!("../schemas/table-question-answering/response.schema.json"),
    },
    SchemaSource {
        task: Task::ImageClassification,
        request: include_str!("../schemas/image-classification/request.schema.json"),
        response: include_str!("../schemas/image-classification/response.schema.json"),
    },
    SchemaSource {
        task: Task::ImageSegmentation,
        request: include_str!("../schemas/image-segmentation/request.schema.json"),
        response: include_str!("../schemas/image-segmentation/response.schema.json"),
    },
    SchemaSource {
        task: Task::ObjectDetection,
        request: include_str!("../schemas/object-detection/request.schema.json"),
        response: include_str!("../schemas/object-detection/response.schema.json"),
    },
    SchemaSource {
        task: Task::ZeroShotImageClassification,
        request: include_str!("../schemas/zero-shot-image-classification/request.schema.json"),
        response: include_str!("../schemas/zero-shot-image-classification/response.schema.json"),
    },
    SchemaSource {
        task: Task::TextGeneration,
        request: include_str!("../schemas/text-generation/request.schema.json"),
        response: include_str!("../schemas/text-generation/response.schema.json"),
    },
    SchemaSource {
        task: Task::Text2TextGeneration,
        request: include_str!("../schemas/text2text-generation/request.schema.json"),
        response: include_str!("../schemas/text2text-generation/response.schema.json"),
    },
    SchemaSource {
        task: Task::Summarization,
        request: include_str!("../schemas/summarization/request.schema.json"),
        response: include_str!("../schemas/summarization/response.schema.json"),
    },
    SchemaSource {
        task: Task::Translation,
        request: include_str!("../schemas/translation/request.schema.json"),
        response: include_str!("../schemas/translation/response.schema.json"),
    },
];

/// The container's OpenAPI 3.1 document (`GET /openapi.json`), generated with the schema bundle
/// from these schemas by `infra/schemas/bundle.py`.
pub const OPENAPI: &str = include_str!("../schemas/bundle/openapi.json");

/// The OpenAPI document of a container serving `task`: [`OPENAPI`] with `/invocations`' JSON
/// request body and JSON answer narrowed from any task's schema to this task's, and the raw
/// image bodies listed only for the tasks that take them. A client, or a fuzzer, that generates
/// requests from it sends what this container takes and checks answers against what it gives.
pub fn openapi_for(task: Task) -> Result<Value, ToolkitError> {
    let bad = |what: &str| ToolkitError::Internal(format!("the embedded OpenAPI document {what}"));
    // the conversational task is text-generation on the wire
    let task = match task {
        Task::Conversational => Task::TextGeneration,
        t => t,
    };
    let mut doc: Value =
        serde_json::from_str(OPENAPI).map_err(|e| bad(&format!("is not JSON: {e}")))?;
    if doc
        .pointer(&format!("/components/schemas/{}", task.id()))
        .is_none()
    {
        return Err(bad(&format!("has no schema for {task}")));
    }
    let operation = "/paths/~1invocations/post";
    for (pointer, part) in [
        ("/requestBody/content/application~1json/schema", "request"),
        (
            "/responses/200/content/application~1json/schema",
            "response",
        ),
    ] {
        let slot = doc
            .pointer_mut(&format!("{operation}{pointer}"))
            .ok_or_else(|| bad(&format!("has no {operation}{pointer}")))?;
        *slot =
            serde_json::json!({"$ref": format!("#/components/schemas/{}/$defs/{part}", task.id())});
    }
    let takes_images = !task.raw_media_types().is_empty();
    if let Some(content) = doc
        .pointer_mut(&format!("{operation}/requestBody/content"))
        .and_then(Value::as_object_mut)
    {
        content.retain(|media, _| takes_images || !media.starts_with("image/"));
    }
    if let Some(info) = doc.get_mut("info").and_then(Value::as_object_mut) {
        info.insert("title".into(), format!("hf-inference: {task}").into());
    }
    Ok(doc)
}

/// Schemas other schemas refer to by `$id` (resolved from the build, never fetched).
pub const SHARED: &[(&str, &str)] = &[
    (
        "https://hf-inference-rs.invalid/schemas/generation/parameters.schema.json",
        include_str!("../schemas/generation/parameters.schema.json"),
    ),
    (
        "https://hf-inference-rs.invalid/schemas/text2text-generation/request.schema.json",
        include_str!("../schemas/text2text-generation/request.schema.json"),
    ),
];

/// Resolves [`SHARED`] schemas by their URI; anything else is an error (no network).
struct Embedded;

impl jsonschema::Retrieve for Embedded {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let wanted = uri.as_str();
        SHARED
            .iter()
            .find(|(id, _)| *id == wanted)
            .ok_or_else(|| format!("unknown schema {wanted}").into())
            .and_then(|(_, text)| serde_json::from_str(text).map_err(Into::into))
    }
}

struct Compiled {
    task: Task,
    request: Validator,
    response: Validator,
    /// The request schema's `parameters` property names.
    parameters: Vec<String>,
}

fn compile(text: &str) -> Result<Validator, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    validator(&value)
}

/// Compiles a JSON Schema (2020-12) whose references to [`SHARED`] schemas resolve from this
/// build: for tests and tools that check a part of a schema (an example against its property).
pub fn validator(schema: &Value) -> Result<Validator, String> {
    jsonschema::draft202012::options()
        .with_retriever(Embedded)
        .build(schema)
        .map_err(|e| e.to_string())
}

static COMPILED: LazyLock<Result<Vec<Compiled>, String>> = LazyLock::new(|| {
    SOURCES
        .iter()
        .map(|s| {
            Ok(Compiled {
                task: s.task,
                request: compile(s.request).map_err(|e| format!("{} request: {e}", s.task))?,
                response: compile(s.response).map_err(|e| format!("{} response: {e}", s.task))?,
                parameters: serde_json::from_str::<Value>(s.request)
                    .ok()
                    .and_then(|v| {
                        v.pointer("/properties/parameters/properties")
                            .and_then(Value::as_object)
                            .map(|o| o.keys().cloned().collect())
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
});

fn compiled(task: Task) -> Result<&'static Compiled, ToolkitError> {
    let all = COMPILED
        .as_ref()
        .map_err(|e| ToolkitError::Internal(format!("embedded schema does not compile: {e}")))?;
    all.iter()
        .find(|c| c.task == task)
        .ok_or_else(|| ToolkitError::Internal(format!("no schema for task {task}")))
}

/// Checks at start-up that the task's schemas exist and compile.
pub fn ensure_available(task: Task) -> Result<(), ToolkitError> {
    compiled(task).map(|_| ())
}

/// The most specific errors under an error: a `oneOf`/`anyOf` failure says only that no branch
/// matched, so its branches' own errors are what tell a client what to fix.
fn leaves(e: &jsonschema::ValidationError<'_>, out: &mut Vec<(String, String)>) {
    use jsonschema::error::ValidationErrorKind as K;
    match e.kind() {
        K::OneOfNotValid { context } | K::AnyOf { context } if !context.is_empty() => {
            for sub in context.iter().flatten() {
                leaves(sub, out);
            }
        }
        _ => {
            let path = e.instance_path().to_string();
            let path = if path.is_empty() {
                "the body".to_owned()
            } else {
                path
            };
            let mut text = e.to_string();
            if text.len() > 300 {
                let cut = (0..=300)
                    .rev()
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(0);
                text.truncate(cut);
                text.push('…');
            }
            out.push((path, text));
        }
    }
}

fn describe(validator: &Validator, value: &Value) -> Option<String> {
    let mut found = Vec::new();
    for e in validator.iter_errors(value).take(8) {
        leaves(&e, &mut found);
    }
    // the deepest first: they are about the value that is wrong, not about its containers
    found.sort_by_key(|(path, _)| std::cmp::Reverse(path.matches('/').count()));
    let mut seen = std::collections::HashSet::new();
    let errors: Vec<String> = found
        .into_iter()
        .filter(|e| seen.insert(e.clone()))
        .take(3)
        .map(|(path, text)| format!("{path}: {text}"))
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

/// The names of a task's `parameters`, as its request schema lists them (empty for a task
/// without schemas).
/// Read once with the compiled schemas, not per request.
pub fn parameter_names(task: Task) -> &'static [String] {
    compiled(task).map_or(&[], |c| c.parameters.as_slice())
}

/// Validates a decoded request document against the task's request schema.
pub fn validate_request(task: Task, value: &Value) -> Result<(), ToolkitError> {
    let c = compiled(task)?;
    match describe(&c.request, value) {
        None => Ok(()),
        Some(why) => Err(ToolkitError::Validation(format!(
            "invalid {task} request: {why}. The request schema is schemas/{task}/request.schema.json"
        ))),
    }
}

/// Validates a response document against the task's response schema (used by tests and debug
/// builds to keep the schema honest).
pub fn validate_response(task: Task, value: &Value) -> Result<(), ToolkitError> {
    let c = compiled(task)?;
    match describe(&c.response, value) {
        None => Ok(()),
        Some(why) => Err(ToolkitError::Internal(format!(
            "invalid {task} response: {why}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_schema_compiles() {
        for s in SOURCES {
            ensure_available(s.task).unwrap();
        }
    }

    #[test]
    fn the_openapi_document_of_a_task_narrows_invocations_to_its_schemas() {
        let op = "/paths/~1invocations/post";
        for (task, wire, images) in [
            (Task::TextClassification, "text-classification", false),
            (Task::Conversational, "text-generation", false),
            (Task::ObjectDetection, "object-detection", true),
        ] {
            let doc = openapi_for(task).unwrap();
            let content = &doc.pointer(&format!("{op}/requestBody/content")).unwrap();
            assert_eq!(
                content["application/json"]["schema"]["$ref"],
                format!("#/components/schemas/{wire}/$defs/request")
            );
            assert_eq!(content.get("image/png").is_some(), images, "{task}");
            assert!(content.get("text/csv").is_some());
            let answer = doc
                .pointer(&format!(
                    "{op}/responses/200/content/application~1json/schema"
                ))
                .unwrap();
            assert_eq!(
                answer["$ref"],
                format!("#/components/schemas/{wire}/$defs/response")
            );
            // every other path and component is left as it is
            let whole: Value = serde_json::from_str(OPENAPI).unwrap();
            assert_eq!(doc["components"], whole["components"]);
            assert_eq!(doc["paths"]["/ping"], whole["paths"]["/ping"]);
        }
        // a task without schemas is an error, not a document that promises what is not served
        assert!(openapi_for(Task::AudioClassification).is_err());
    }

    #[test]
    fn text_classification_requests() {
        let ok = [
            json!({"inputs": "hi"}),
            json!({"inputs": ["a", "b"], "parameters": {"top_k": null}}),
            json!({"inputs": {"text": "a", "text_pair": "b"}}),
            json!({"text": "a", "text_pair": "b"}),
            json!({"inputs": "a", "parameters": {"function_to_apply": "SIGMOID", "top_k": 2}}),
            json!({"inputs": "a", "parameters": null}),
        ];
        for v in ok {
            validate_request(Task::TextClassification, &v).unwrap();
        }
        let bad = [
            json!("just a string"),
            json!(["a"]),
            json!({"inputs": 123}),
            json!({"inputs": null}),
            json!({"inputs": [1, 2]}),
            json!({"inputs": "a", "parameters": [1, 2]}),
            json!({"inputs": "a", "parameters": {"top_k": -1}}),
            json!({"inputs": "a", "parameters": {"function_to_apply": "relu"}}),
            json!({"inputs": "a", "parameters": {"not_a_real_param": 1}}),
            json!({"inputs": "a", "text": "b"}),
        ];
        for v in bad {
            let e = validate_request(Task::TextClassification, &v).unwrap_err();
            assert_eq!(e.status(), 400, "{v}");
        }
    }

    #[test]
    fn feature_extraction_requests_and_responses() {
        validate_request(Task::FeatureExtraction, &json!({"inputs": ["a", "b"]})).unwrap();
        let e = validate_request(Task::FeatureExtraction, &json!({"text": "a"})).unwrap_err();
        assert!(e.to_string().contains("inputs"), "{e}");
        validate_response(Task::FeatureExtraction, &json!([[[0.1, 0.2], [0.3, 0.4]]])).unwrap();
        validate_response(Task::FeatureExtraction, &json!([[[[0.1]]], [[[0.2]]]])).unwrap();
        validate_response(Task::FeatureExtraction, &json!([])).unwrap();
        assert!(validate_response(Task::FeatureExtraction, &json!([[0.1]])).is_err());
        validate_response(Task::TextClassification, &json!([])).unwrap();
        validate_response(
            Task::TextClassification,
            &json!([{"label": "a", "score": 0.5}]),
        )
        .unwrap();
        assert!(validate_response(Task::TextClassification, &json!([{"label": "a"}])).is_err());
    }
}
