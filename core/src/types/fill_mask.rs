//! `fill-mask`: transformers' `FillMaskPipeline` (`pipelines/fill_mask.py`).

use serde::{Deserialize, Serialize};

use super::OneOrMany;

/// `{"inputs": ..., "parameters": {...}}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FillMaskRequest {
    /// A text with the model's mask token, or a list of them.
    pub inputs: OneOrMany<String>,
    /// Parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<FillMaskParameters>,
}

/// The pipeline's parameters.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FillMaskParameters {
    /// How many predictions per mask (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<usize>,
    /// Restrict the predictions to these words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<OneOrMany<String>>,
}

/// One prediction.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct FillMaskPrediction {
    /// Probability, f32 widened to f64.
    pub score: f64,
    /// The token id.
    pub token: u32,
    /// The decoded token.
    pub token_str: String,
    /// The input with the mask filled in.
    pub sequence: String,
}
