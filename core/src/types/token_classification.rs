//! `token-classification` (alias `ner`): transformers' `TokenClassificationPipeline`
//! (`pipelines/token_classification.py`).

use serde::{Deserialize, Serialize};

use super::OneOrMany;

/// `{"inputs": ..., "parameters": {...}}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenClassificationRequest {
    /// A text or a list of texts.
    pub inputs: OneOrMany<String>,
    /// Parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<TokenClassificationParameters>,
}

/// The pipeline's parameters (`null` means the default, as in Python).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenClassificationParameters {
    /// `none` (default), `simple`, `first`, `average` or `max`, any case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation_strategy: Option<String>,
    /// Labels left out (default `["O"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_labels: Option<Vec<String>>,
    /// Overlap, in tokens, of the windows a long text is split into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stride: Option<usize>,
    /// Deprecated: `simple` (or `first` with `ignore_subwords`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grouped_entities: Option<bool>,
    /// Deprecated: see `grouped_entities`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_subwords: Option<bool>,
}

/// One token (aggregation `none`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct TokenPrediction {
    /// The label.
    pub entity: String,
    /// Its probability (f32 widened to f64).
    pub score: f64,
    /// The token's position in the tokenized input.
    pub index: usize,
    /// The vocabulary entry.
    pub word: String,
    /// First character.
    pub start: usize,
    /// One past the last character.
    pub end: usize,
}

/// One entity (any other aggregation).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct EntityGroup {
    /// The label without its `B-`/`I-` prefix.
    pub entity_group: String,
    /// The mean probability of its tokens or words.
    pub score: f64,
    /// The tokens decoded back to text.
    pub word: String,
    /// First character.
    pub start: usize,
    /// One past the last character.
    pub end: usize,
}
