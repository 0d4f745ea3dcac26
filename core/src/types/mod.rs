//! Typed requests and responses, one module per task. The JSON Schemas in `schemas/` are the
//! wire contract; these types are what the pipelines work with once a request has passed them.

pub mod feature_extraction;
pub mod fill_mask;
pub mod image_classification;
pub mod image_segmentation;
pub mod images;
pub mod object_detection;
pub mod question_answering;
pub mod table_question_answering;
pub mod text_classification;
pub mod token_classification;
pub mod zero_shot_classification;
pub mod zero_shot_image_classification;

use serde::{Deserialize, Deserializer};

use crate::error::ToolkitError;
use crate::tokenize::{Padding, TruncationStrategy};

/// One value or a list of them (`"inputs": "a"` or `"inputs": ["a", "b"]`).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// A single value.
    One(T),
    /// A list.
    Many(Vec<T>),
}

/// The `truncation` argument of a tokenizer call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum TruncationArg {
    /// `true` = longest_first, `false` = none.
    Bool(bool),
    /// A strategy name.
    Strategy(String),
}

impl TruncationArg {
    /// The strategy, `None` for no truncation.
    pub fn strategy(&self) -> Result<Option<TruncationStrategy>, ToolkitError> {
        match self {
            TruncationArg::Bool(false) => Ok(None),
            TruncationArg::Bool(true) => Ok(Some(TruncationStrategy::LongestFirst)),
            TruncationArg::Strategy(s) => match s.as_str() {
                "longest_first" => Ok(Some(TruncationStrategy::LongestFirst)),
                "only_first" => Ok(Some(TruncationStrategy::OnlyFirst)),
                "only_second" => Ok(Some(TruncationStrategy::OnlySecond)),
                "do_not_truncate" => Ok(None),
                other => Err(ToolkitError::InvalidParameters(format!(
                    "truncation {other:?} is not one of true, false, \"longest_first\", \"only_first\", \"only_second\", \"do_not_truncate\""
                ))),
            },
        }
    }
}

/// The `padding` argument of a tokenizer call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum PaddingArg {
    /// `true` = longest (a no-op for one input), `false` = none.
    Bool(bool),
    /// A strategy name.
    Strategy(String),
}

impl PaddingArg {
    /// The padding for one input.
    pub fn padding(&self) -> Result<Padding, ToolkitError> {
        match self {
            PaddingArg::Bool(_) => Ok(Padding::None),
            PaddingArg::Strategy(s) => match s.as_str() {
                "longest" | "do_not_pad" => Ok(Padding::None),
                "max_length" => Ok(Padding::MaxLength),
                other => Err(ToolkitError::InvalidParameters(format!(
                    "padding {other:?} is not one of true, false, \"longest\", \"max_length\", \"do_not_pad\""
                ))),
            },
        }
    }
}

/// Deserializes a field that distinguishes "absent" (`None`) from `null` (`Some(None)`).
pub(crate) fn absent_or_null<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Deserializes a schema-validated document into its typed request.
pub fn from_value<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, ToolkitError> {
    serde_json::from_value(value)
        .map_err(|e| ToolkitError::Validation(format!("invalid request: {e}")))
}
