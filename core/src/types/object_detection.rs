//! `object-detection`: the JSON form of a request (a raw image body needs none).

use serde::Deserialize;

/// `{"inputs": <image or list>, "parameters": {...}}`.
pub type ObjectDetectionRequest = super::images::ImagesRequest<ObjectDetectionParameters>;

/// `ObjectDetectionPipeline`'s parameters.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectDetectionParameters {
    /// Detections scoring above this are kept (default 0.5).
    pub threshold: Option<f64>,
    /// transformers' URL-fetching timeout: accepted, unused (nothing is fetched).
    pub timeout: Option<f64>,
}
