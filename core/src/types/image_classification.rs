//! `image-classification`: the JSON form of a request (a raw image body needs none).

use serde::Deserialize;

/// `{"inputs": <image or list>, "parameters": {...}}`.
pub type ImageClassificationRequest = super::images::ImagesRequest<ImageClassificationParameters>;

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
