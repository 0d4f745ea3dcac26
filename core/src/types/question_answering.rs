//! `question-answering`: transformers' `QuestionAnsweringPipeline`
//! (`pipelines/question_answering.py`).

use serde::{Deserialize, Serialize};

use super::{OneOrMany, PaddingArg};

/// `{"inputs": {"question": ..., "context": ...}, "parameters": {...}}`, or a list of such
/// pairs. The toolkit's form without `inputs` (`{"question": ..., "context": ...}`) is moved under
/// `inputs` before this type is read.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QuestionAnsweringRequest {
    /// One pair or a list of pairs.
    pub inputs: OneOrMany<QuestionContext>,
    /// Parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<QuestionAnsweringParameters>,
}

/// A question and the context to find its answer in; both may be lists of the same length
/// (one answer per pair).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QuestionContext {
    /// The question(s).
    pub question: OneOrMany<String>,
    /// The context(s).
    pub context: OneOrMany<String>,
}

/// The pipeline's parameters (`null` means the default).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QuestionAnsweringParameters {
    /// How many answers (default 1; a list is returned when more than one is found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<usize>,
    /// Deprecated spelling of `top_k`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topk: Option<usize>,
    /// Overlap in tokens of the windows a long context is split into (default
    /// `min(max_seq_len / 2, 128)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_stride: Option<usize>,
    /// The longest answer, in tokens (default 15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_answer_len: Option<usize>,
    /// Tokens per window, question and special tokens included (default
    /// `min(model_max_length, 384)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_seq_len: Option<usize>,
    /// Accepted and ignored, as transformers ignores it with fast tokenizers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_question_len: Option<usize>,
    /// Also consider "no answer" (`{"score": ..., "start": 0, "end": 0, "answer": ""}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle_impossible_answer: Option<bool>,
    /// Widen answers to whole words (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub align_to_words: Option<bool>,
    /// Accepted; padding does not change the answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding: Option<PaddingArg>,
}

/// One answer.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Answer {
    /// P(start) × P(end) (f32 widened to f64).
    pub score: f64,
    /// First character of the answer in the context.
    pub start: usize,
    /// One past its last character.
    pub end: usize,
    /// `context[start..end]`.
    pub answer: String,
}
