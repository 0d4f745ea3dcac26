//! `zero-shot-image-classification`: the JSON form of a request. A raw image body takes its
//! parameters from the request's custom attributes or query string (see the README).

use serde::Deserialize;

use super::OneOrMany;

/// `{"inputs": <image or list>, "parameters": {"candidate_labels": [...], ...}}`.
pub type ZeroShotImageClassificationRequest =
    super::images::ImagesRequest<ZeroShotImageClassificationParameters>;

/// `ZeroShotImageClassificationPipeline`'s parameters.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZeroShotImageClassificationParameters {
    /// The labels to score (required): a list, or one comma-separated string.
    pub candidate_labels: Option<OneOrMany<String>>,
    /// The text each label is put into (default `"This is a photo of {}."`).
    pub hypothesis_template: Option<String>,
    /// transformers' URL-fetching timeout: accepted, unused (nothing is fetched).
    pub timeout: Option<f64>,
}
