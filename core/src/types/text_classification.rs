//! `text-classification` / `sentiment-analysis`: transformers' `TextClassificationPipeline`
//! (`pipelines/text_classification.py`).

use serde::{Deserialize, Serialize};

use super::{absent_or_null, PaddingArg, TruncationArg};
use crate::error::ToolkitError;
use crate::tokenize::TokenizeOptions;

/// A text, or a text pair classified together.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TextInput {
    /// A single text.
    Text(String),
    /// `{"text": ..., "text_pair": ...}`.
    Pair(TextPair),
}

/// `{"text": ..., "text_pair": ...}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TextPair {
    /// The first text.
    pub text: String,
    /// The optional second text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_pair: Option<String>,
}

/// What `inputs` holds.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TextClassificationInputs {
    /// A list of texts or pairs. Tried first: serde would otherwise read a two-element array as
    /// a `TextPair` (structs deserialize from sequences).
    Many(Vec<TextInput>),
    /// One text or pair.
    One(TextInput),
}

/// A request: `{"inputs": ..., "parameters": ...}`, or, as the toolkit allows, a bare
/// `{"text": ..., "text_pair": ...}` body.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TextClassificationRequest {
    /// The usual envelope.
    Envelope {
        /// The inputs.
        inputs: TextClassificationInputs,
        /// Parameters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parameters: Option<TextClassificationParameters>,
    },
    /// A body without `inputs`: the whole object is the input.
    Bare {
        /// The pair.
        #[serde(flatten)]
        pair: TextPair,
        /// Parameters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parameters: Option<TextClassificationParameters>,
    },
}

/// The function applied to the logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassificationFunction {
    /// Softmax over labels.
    Softmax,
    /// Per-label sigmoid.
    Sigmoid,
    /// Raw logits.
    None,
}

impl ClassificationFunction {
    /// `function_to_apply` as transformers reads it (any case); `None` when not given.
    pub fn parse(name: Option<&str>) -> Result<Option<Self>, ToolkitError> {
        match name.map(str::to_ascii_lowercase).as_deref() {
            None => Ok(None),
            Some("softmax") => Ok(Some(ClassificationFunction::Softmax)),
            Some("sigmoid") => Ok(Some(ClassificationFunction::Sigmoid)),
            Some("none") => Ok(Some(ClassificationFunction::None)),
            Some(other) => Err(ToolkitError::InvalidParameters(format!(
                "function_to_apply {other:?} is not one of softmax, sigmoid, none"
            ))),
        }
    }
}

/// The pipeline's parameters.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TextClassificationParameters {
    /// `Some(Some(k))`: the k best; `Some(None)` (`null`): every label; `None`: legacy output.
    #[serde(
        default,
        deserialize_with = "absent_or_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub top_k: Option<Option<usize>>,
    /// softmax / sigmoid / none (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_to_apply: Option<String>,
    /// Deprecated: true = every label, false = the best one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_all_scores: Option<bool>,
    /// Truncation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncation: Option<TruncationArg>,
    /// Maximum length for truncation and padding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// Padding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding: Option<PaddingArg>,
    /// Add special tokens (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_special_tokens: Option<bool>,
}

impl TextClassificationParameters {
    /// The function to apply, if given.
    pub fn function(&self) -> Result<Option<ClassificationFunction>, ToolkitError> {
        ClassificationFunction::parse(self.function_to_apply.as_deref())
    }

    /// The tokenizer options.
    pub fn tokenize_options(&self) -> Result<TokenizeOptions, ToolkitError> {
        Ok(TokenizeOptions {
            truncation: match &self.truncation {
                Some(t) => t.strategy()?,
                None => None,
            },
            max_length: self.max_length,
            padding: match &self.padding {
                Some(p) => p.padding()?,
                None => Default::default(),
            },
            add_special_tokens: self.add_special_tokens.unwrap_or(true),
        })
    }
}

/// One label and its score.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct LabelScore {
    /// The label (`id2label`).
    pub label: String,
    /// The score, f32 widened to f64 as `numpy.float32.item()` does.
    pub score: f64,
}

/// The response, shaped as transformers shapes it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TextClassificationOutput {
    /// A bare object (a `{"text", "text_pair"}` input without top_k).
    One(LabelScore),
    /// One list.
    List(Vec<LabelScore>),
    /// One list per input.
    Nested(Vec<Vec<LabelScore>>),
}
