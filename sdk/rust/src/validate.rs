//! Validation against the embedded schema bundle: one self-contained JSON Schema (2020-12) per
//! task, its request at `#/$defs/request` and its response at `#/$defs/response`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::Validator;
use serde_json::Value;

use crate::Task;

/// The bundle of `task`: the server's request and response schemas with everything they refer
/// to, as JSON text (the file `schemas/<task>.schema.json` of this crate, a copy of the server's
/// `core/schemas/bundle/`).
pub fn schema(task: Task) -> &'static str {
    match task {
        Task::FeatureExtraction => include_str!("../schemas/feature-extraction.schema.json"),
        Task::FillMask => include_str!("../schemas/fill-mask.schema.json"),
        Task::ImageClassification => include_str!("../schemas/image-classification.schema.json"),
        Task::ImageSegmentation => include_str!("../schemas/image-segmentation.schema.json"),
        Task::ObjectDetection => include_str!("../schemas/object-detection.schema.json"),
        Task::QuestionAnswering => include_str!("../schemas/question-answering.schema.json"),
        Task::Summarization => include_str!("../schemas/summarization.schema.json"),
        Task::TableQuestionAnswering => {
            include_str!("../schemas/table-question-answering.schema.json")
        }
        Task::TextClassification => include_str!("../schemas/text-classification.schema.json"),
        Task::TextGeneration => include_str!("../schemas/text-generation.schema.json"),
        Task::Text2TextGeneration => include_str!("../schemas/text2text-generation.schema.json"),
        Task::TokenClassification => include_str!("../schemas/token-classification.schema.json"),
        Task::Translation => include_str!("../schemas/translation.schema.json"),
        Task::ZeroShotClassification => {
            include_str!("../schemas/zero-shot-classification.schema.json")
        }
        Task::ZeroShotImageClassification => {
            include_str!("../schemas/zero-shot-image-classification.schema.json")
        }
    }
}

/// A payload its schema refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// The task whose schema refused it.
    pub task: Task,
    /// `"request"` or `"response"`.
    pub part: &'static str,
    /// The JSON path of the offending value: `$` for the whole payload, `$.parameters.top_k`,
    /// `$.inputs[1]`.
    pub path: String,
    /// What is wrong with it, as the validator says.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {} {} at {}: {}",
            self.task, self.part, self.path, self.message
        )
    }
}

impl std::error::Error for ValidationError {}

/// Each task's compiled request and response validators, or why they do not compile.
type Compiled = BTreeMap<Task, Result<(Validator, Validator), String>>;

/// One part of a task's bundle (`#/$defs/request`), compiled: the bundle's own `$defs` hold
/// everything it refers to, so nothing is retrieved.
fn compile(task: Task, pointer: &str) -> Result<Validator, String> {
    let mut root: Value = serde_json::from_str(schema(task)).map_err(|e| e.to_string())?;
    if let Some(o) = root.as_object_mut() {
        o.insert("$ref".into(), Value::String(pointer.into()));
    }
    jsonschema::draft202012::new(&root).map_err(|e| e.to_string())
}

static COMPILED: LazyLock<Compiled> = LazyLock::new(|| {
    Task::ALL
        .into_iter()
        .map(|task| {
            let both = compile(task, "#/$defs/request")
                .and_then(|request| Ok((request, compile(task, "#/$defs/response")?)));
            (task, both)
        })
        .collect()
});

fn validator(task: Task, part: &'static str) -> Result<&'static Validator, ValidationError> {
    match COMPILED.get(&task) {
        Some(Ok((request, response))) => Ok(if part == "request" { request } else { response }),
        Some(Err(e)) => Err(ValidationError {
            task,
            part,
            path: "$".into(),
            message: format!("the embedded schema does not compile: {e}"),
        }),
        None => Err(ValidationError {
            task,
            part,
            path: "$".into(),
            message: "no embedded schema".into(),
        }),
    }
}

/// `/parameters/top_k` -> `$.parameters.top_k`, `/inputs/1` -> `$.inputs[1]`.
fn json_path(pointer: &str) -> String {
    let mut out = String::from("$");
    for raw in pointer.split('/').skip(1) {
        let key = raw.replace("~1", "/").replace("~0", "~");
        if !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{key}]"));
        } else {
            out.push('.');
            out.push_str(&key);
        }
    }
    out
}

/// The errors that say what to fix: a `oneOf`/`anyOf` failure only says that no branch matched,
/// so its branches' own errors are collected instead.
fn leaves(e: &jsonschema::ValidationError<'_>, out: &mut Vec<(String, String)>) {
    match e.kind() {
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context }
            if !context.is_empty() =>
        {
            for sub in context.iter().flatten() {
                leaves(sub, out);
            }
        }
        _ => out.push((e.instance_path().to_string(), e.to_string())),
    }
}

fn check(task: Task, part: &'static str, value: &Value) -> Result<(), ValidationError> {
    let v = validator(task, part)?;
    let mut found = Vec::new();
    for e in v.iter_errors(value).take(16) {
        leaves(&e, &mut found);
    }
    // the deepest: it is about the value that is wrong, not about one of its containers
    let deepest = found
        .into_iter()
        .enumerate()
        .max_by_key(|(i, (path, _))| (path.matches('/').count(), std::cmp::Reverse(*i)));
    match deepest {
        None => Ok(()),
        Some((_, (pointer, message))) => Err(ValidationError {
            task,
            part,
            path: json_path(&pointer),
            message,
        }),
    }
}

/// Checks a request body (the JSON sent to `/invocations`) against `task`'s request schema.
pub fn validate_request(task: Task, payload: &Value) -> Result<(), ValidationError> {
    check(task, "request", payload)
}

/// Checks an answer of `/invocations` (its JSON body) against `task`'s response schema.
pub fn validate_response(task: Task, body: &Value) -> Result<(), ValidationError> {
    check(task, "response", body)
}

/// Whether `payload` is a valid request body for `task`.
pub fn is_valid(task: Task, payload: &Value) -> bool {
    validator(task, "request").is_ok_and(|v| v.is_valid(payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_embedded_schema_compiles() {
        for task in Task::ALL {
            assert!(validator(task, "request").is_ok(), "{task}");
            assert!(validator(task, "response").is_ok(), "{task}");
        }
    }

    #[test]
    fn errors_name_the_json_path_of_the_offending_value() {
        let bad = json!({"inputs": "hi", "parameters": {"max_new_tokens": -1}});
        let e = validate_request(Task::TextGeneration, &bad).unwrap_err();
        assert_eq!(e.path, "$.parameters.max_new_tokens", "{e}");
        assert!(
            e.to_string()
                .starts_with("invalid text-generation request at $.parameters.max_new_tokens: "),
            "{e}"
        );
        let e = validate_request(Task::FillMask, &json!({"inputs": ["a", 3]})).unwrap_err();
        assert_eq!(e.path, "$.inputs[1]", "{e}");
        let e = validate_request(Task::FeatureExtraction, &json!(["a"])).unwrap_err();
        assert_eq!(e.path, "$", "{e}");
        let e = validate_response(Task::TextClassification, &json!([{"label": "a"}])).unwrap_err();
        assert_eq!((e.part, e.path.as_str()), ("response", "$[0]"), "{e}");
        validate_request(
            Task::ZeroShotClassification,
            &json!({"inputs": "a", "parameters": {"candidate_labels": ["x"]}}),
        )
        .unwrap();
        validate_response(Task::FeatureExtraction, &json!([[[0.5]]])).unwrap();
        assert!(is_valid(Task::FillMask, &json!({"inputs": "a [MASK]"})));
        assert!(!is_valid(
            Task::FillMask,
            &json!({"inputs": "a", "parameters": {"top_k": 0}})
        ));
    }

    #[test]
    fn json_paths() {
        assert_eq!(json_path(""), "$");
        assert_eq!(json_path("/parameters/top_k"), "$.parameters.top_k");
        assert_eq!(json_path("/inputs/0/role"), "$.inputs[0].role");
        assert_eq!(json_path("/a~1b/c~0d"), "$.a/b.c~d");
    }
}
