//! `image-classification`: the JSON form of a request (a raw image body needs none).

use serde::Deserialize;

use super::OneOrMany;

/// `{"inputs": <image or list>, "parameters": {...}}`, images as base64 or data URIs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageClassificationRequest {
    /// One image or a list.
    pub inputs: OneOrMany<String>,
    /// The pipeline's parameters.
    #[serde(default)]
    pub parameters: Option<ImageClassificationParameters>,
}

/// `ImageClassificationPipeline`'s parameters.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageClassificationParameters {
    /// Labels to return (default 5).
    pub top_k: Option<usize>,
    /// softmax, sigmoid or none.
    pub function_to_apply: Option<String>,
    /// transformers' URL-fetching timeout: accepted, unused (nothing is fetched).
    pub timeout: Option<f64>,
}
