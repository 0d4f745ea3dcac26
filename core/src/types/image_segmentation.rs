//! `image-segmentation`: the JSON form of a request (a raw image body needs none).

use serde::Deserialize;

/// `{"inputs": <image or list>, "parameters": {...}}`.
pub type ImageSegmentationRequest = super::images::ImagesRequest<ImageSegmentationParameters>;

/// `ImageSegmentationPipeline`'s parameters.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSegmentationParameters {
    /// `semantic`, `instance` or `panoptic` (default: what the model does, in that order of
    /// preference: panoptic, instance, semantic).
    pub subtask: Option<String>,
    /// Instance and panoptic: the least score of a kept segment (default 0.9).
    pub threshold: Option<f64>,
    /// Instance and panoptic: the probability above which a pixel is in a mask (default 0.5).
    pub mask_threshold: Option<f64>,
    /// Panoptic: merges small disconnected parts of a mask (default 0.5).
    pub overlap_mask_area_threshold: Option<f64>,
    /// transformers' URL-fetching timeout: accepted, unused (nothing is fetched).
    pub timeout: Option<f64>,
}
