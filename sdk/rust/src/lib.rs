//! # hf-inference-types
//!
//! The wire format of hf-inference, the Rust re-implementation of the Hugging Face Inference
//! Toolkit for SageMaker, for clients and proxies: serde types of every task's request and
//! response (one module per task, named after transformers' pipelines), the server's JSON
//! Schemas (one self-contained bundle per task, embedded), and [`validate_request`] /
//! [`validate_response`], whose [`ValidationError`] names the JSON path of the offending value
//! as the Python and npm packages do (`$.parameters.max_new_tokens`).
//!
//! It links no inference engine (no candle, no tokenizers), no HTTP client and no async runtime:
//! serde, serde_json and jsonschema only. The schemas hold every rule on a request's shape the
//! server enforces; what depends on the model (a label, a token limit) is the server's to check.
//!
//! ```
//! use hf_inference_types::{validate_request, Task, ValidationError};
//! use hf_inference_types::text_generation::{GenerationParameters, TextGenerationRequest};
//!
//! let request = TextGenerationRequest::prompt("Once upon a time").with_parameters(
//!     GenerationParameters { max_new_tokens: Some(32), ..Default::default() },
//! );
//! let body = serde_json::to_value(&request).unwrap();
//! validate_request(Task::TextGeneration, &body).unwrap(); // then InvokeEndpoint with `body`
//!
//! // a payload the server would refuse is refused here, with the path of what is wrong
//! let bad = serde_json::json!({"inputs": "hi", "parameters": {"max_new_tokens": 0}});
//! let err: ValidationError = validate_request(Task::TextGeneration, &bad).unwrap_err();
//! assert_eq!(err.path, "$.parameters.max_new_tokens");
//!
//! // answers read into the task's response type
//! let answer: hf_inference_types::text_classification::TextClassificationResponse =
//!     serde_json::from_str(r#"[{"label": "POSITIVE", "score": 0.99}]"#).unwrap();
//! # let _ = answer;
//! ```

mod types;
mod validate;

pub use types::*;
pub use validate::{is_valid, schema, validate_request, validate_response, ValidationError};

use std::fmt;
use std::str::FromStr;

/// A task the server serves (`HF_TASK`), as far as the wire is concerned: the aliases parse to
/// the task whose schemas they use (`sentiment-analysis`, `ner`, `conversational`,
/// `translation_xx_to_yy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Task {
    /// `feature-extraction`.
    FeatureExtraction,
    /// `fill-mask`.
    FillMask,
    /// `image-classification`.
    ImageClassification,
    /// `image-segmentation`.
    ImageSegmentation,
    /// `object-detection`.
    ObjectDetection,
    /// `question-answering`.
    QuestionAnswering,
    /// `summarization`.
    Summarization,
    /// `table-question-answering`.
    TableQuestionAnswering,
    /// `text-classification` (alias `sentiment-analysis`).
    TextClassification,
    /// `text-generation` (and the toolkit's `conversational`).
    TextGeneration,
    /// `text2text-generation`.
    Text2TextGeneration,
    /// `token-classification` (alias `ner`).
    TokenClassification,
    /// `translation` (and `translation_xx_to_yy`).
    Translation,
    /// `zero-shot-classification`.
    ZeroShotClassification,
    /// `zero-shot-image-classification`.
    ZeroShotImageClassification,
}

impl Task {
    /// Every task with schemas, in the order of their ids.
    pub const ALL: [Task; 15] = [
        Task::FeatureExtraction,
        Task::FillMask,
        Task::ImageClassification,
        Task::ImageSegmentation,
        Task::ObjectDetection,
        Task::QuestionAnswering,
        Task::Summarization,
        Task::TableQuestionAnswering,
        Task::TextClassification,
        Task::TextGeneration,
        Task::Text2TextGeneration,
        Task::TokenClassification,
        Task::Translation,
        Task::ZeroShotClassification,
        Task::ZeroShotImageClassification,
    ];

    /// The canonical `HF_TASK` id.
    pub fn id(self) -> &'static str {
        match self {
            Task::FeatureExtraction => "feature-extraction",
            Task::FillMask => "fill-mask",
            Task::ImageClassification => "image-classification",
            Task::ImageSegmentation => "image-segmentation",
            Task::ObjectDetection => "object-detection",
            Task::QuestionAnswering => "question-answering",
            Task::Summarization => "summarization",
            Task::TableQuestionAnswering => "table-question-answering",
            Task::TextClassification => "text-classification",
            Task::TextGeneration => "text-generation",
            Task::Text2TextGeneration => "text2text-generation",
            Task::TokenClassification => "token-classification",
            Task::Translation => "translation",
            Task::ZeroShotClassification => "zero-shot-classification",
            Task::ZeroShotImageClassification => "zero-shot-image-classification",
        }
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// An `HF_TASK` this crate has no schemas for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownTask(pub String);

impl fmt::Display for UnknownTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<&str> = Task::ALL.iter().map(|t| t.id()).collect();
        write!(f, "unknown task {:?}; known: {}", self.0, known.join(", "))
    }
}

impl std::error::Error for UnknownTask {}

impl FromStr for Task {
    type Err = UnknownTask;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sentiment-analysis" => return Ok(Task::TextClassification),
            "ner" => return Ok(Task::TokenClassification),
            "conversational" => return Ok(Task::TextGeneration),
            _ => {}
        }
        // transformers' translation_xx_to_yy
        if s.strip_prefix("translation_")
            .and_then(|rest| rest.split_once("_to_"))
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
        {
            return Ok(Task::Translation);
        }
        Task::ALL
            .into_iter()
            .find(|t| t.id() == s)
            .ok_or_else(|| UnknownTask(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_and_aliases_parse() {
        for t in Task::ALL {
            assert_eq!(t.id().parse::<Task>(), Ok(t));
        }
        assert_eq!("ner".parse::<Task>(), Ok(Task::TokenClassification));
        assert_eq!("conversational".parse::<Task>(), Ok(Task::TextGeneration));
        assert_eq!(
            "translation_en_to_de".parse::<Task>(),
            Ok(Task::Translation)
        );
        let e = "translation_en".parse::<Task>().unwrap_err();
        assert!(e.to_string().contains("fill-mask"), "{e}");
        assert!("audio-classification".parse::<Task>().is_err());
    }
}
