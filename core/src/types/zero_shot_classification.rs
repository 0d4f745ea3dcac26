//! `zero-shot-classification`: transformers' `ZeroShotClassificationPipeline`
//! (`pipelines/zero_shot_classification.py`).

use serde::{Deserialize, Serialize};

use super::OneOrMany;

/// `{"inputs": ..., "parameters": {"candidate_labels": ...}}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZeroShotClassificationRequest {
    /// One sequence or a list.
    pub inputs: OneOrMany<String>,
    /// Parameters (`candidate_labels` is required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<ZeroShotClassificationParameters>,
}

/// The pipeline's parameters.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZeroShotClassificationParameters {
    /// The labels: a list, or a comma-separated string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_labels: Option<OneOrMany<String>>,
    /// `{}` is replaced by each label (default `"This example is {}."`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hypothesis_template: Option<String>,
    /// Score every label on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_label: Option<bool>,
}

/// One sequence's result.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ZeroShotClassificationOutput {
    /// The input sequence.
    pub sequence: String,
    /// The labels, best first.
    pub labels: Vec<String>,
    /// Their scores, f32 widened to f64.
    pub scores: Vec<f64>,
}
