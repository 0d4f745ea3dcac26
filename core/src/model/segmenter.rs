//! The image-segmentation seam: every segmentation family behind one trait, so the pipeline
//! (decode, preprocess, transformers' `post_process_{semantic,instance,panoptic}_segmentation`,
//! the masks as PNGs) is the same whatever the network. A model answers with what its head
//! computes: per-pixel label logits (SegFormer) or per-query class logits and mask logits
//! (MaskFormer). A new architecture is a module implementing [`Segmenter`], a
//! [`super::Family`] variant whose `vision_task` is image-segmentation, and one arm in [`load`].

use candle_core::Device;
use serde_json::Value;

use super::{Family, ModelFiles};
use crate::error::ToolkitError;
use crate::vision::PixelValues;

/// A mask-classification head's output for one image (MaskFormer's `class_queries_logits` and
/// `masks_queries_logits`).
#[derive(Debug, Clone, PartialEq)]
pub struct MaskQueries {
    /// Object queries.
    pub queries: usize,
    /// Labels, not counting "no object".
    pub labels: usize,
    /// `queries × (labels + 1)` class logits, "no object" last.
    pub class_logits: Vec<f32>,
    /// `queries × height × width` mask logits.
    pub masks: Vec<f32>,
    /// The masks' height.
    pub height: usize,
    /// The masks' width.
    pub width: usize,
}

/// What a segmentation model computes for one preprocessed image.
#[derive(Debug, Clone, PartialEq)]
pub enum Segmentation {
    /// Per-pixel logits, `labels × height × width` (semantic segmentation only).
    Semantic {
        /// Labels.
        labels: usize,
        /// Height of the logits.
        height: usize,
        /// Width of the logits.
        width: usize,
        /// The logits, label-major.
        logits: Vec<f32>,
    },
    /// Per-query classes and masks (semantic, instance and panoptic segmentation).
    MaskQueries(MaskQueries),
}

/// A loaded segmentation model.
pub trait Segmenter: Send + Sync + std::fmt::Debug {
    /// Segments one preprocessed image.
    fn segment(&self, image: &PixelValues) -> Result<Segmentation, ToolkitError>;

    /// The subtasks its image processor post-processes, in the pipeline's order of preference
    /// (`panoptic`, `instance`, `semantic`).
    fn subtasks(&self) -> &'static [&'static str];
}

/// Loads the model of an image-segmentation family with `labels` classes.
pub fn load(
    family: Family,
    files: &ModelFiles,
    config: &Value,
    labels: usize,
    device: &Device,
) -> Result<Box<dyn Segmenter>, ToolkitError> {
    match family {
        Family::Segformer => Ok(Box::new(super::segformer::Segformer::load(
            files, config, labels, device,
        )?)),
        Family::MaskFormer => Ok(Box::new(super::maskformer::MaskFormer::load(
            files, config, labels, device,
        )?)),
        other => Err(ToolkitError::Config(format!(
            "{} is not a segmentation model; it serves {}",
            other.model_type(),
            other.serves()
        ))),
    }
}
