//! The object-detection seam: every `*ForObjectDetection` family behind one trait, so the
//! pipeline (decode, preprocess, `post_process_object_detection`) is the same whatever the
//! network. A new architecture is a module implementing [`ObjectDetector`], a
//! [`super::Family`] variant whose `vision_task` is object-detection, and one arm in [`load`].

use candle_core::Device;
use serde_json::Value;

use super::{Family, ModelFiles};
use crate::error::ToolkitError;
use crate::vision::PixelValues;

/// The detections of one image, one per detection token (YOLOS) or object query (DETR).
#[derive(Debug, Clone, PartialEq)]
pub struct Detections {
    /// Class logits, `labels + 1` per token (the last is "no object").
    pub logits: Vec<Vec<f32>>,
    /// Boxes relative to the image: centre x, centre y, width, height.
    pub boxes: Vec<[f32; 4]>,
}

/// A loaded object detector.
pub trait ObjectDetector: Send + Sync + std::fmt::Debug {
    /// Detects objects in one preprocessed (and padded) image whose top-left `valid`
    /// `(height, width)` region is the picture, the rest padding (DETR's `pixel_mask`; YOLOS
    /// takes no mask and sees the padding).
    fn detect(
        &self,
        image: &PixelValues,
        valid: (usize, usize),
    ) -> Result<Detections, ToolkitError>;
}

/// Loads the detector of an object-detection family with `labels` classes (plus "no object").
pub fn load(
    family: Family,
    files: &ModelFiles,
    config: &Value,
    labels: usize,
    device: &Device,
) -> Result<Box<dyn ObjectDetector>, ToolkitError> {
    match family {
        Family::Yolos => Ok(Box::new(super::yolos::Yolos::load(
            files, config, labels, device,
        )?)),
        Family::Detr => Ok(Box::new(super::detr::Detr::load(
            files, config, labels, device,
        )?)),
        other => Err(ToolkitError::Config(format!(
            "{} is not an object detector; it serves {}",
            other.model_type(),
            other.serves()
        ))),
    }
}
