//! The image-classification seam: every `*ForImageClassification` family behind one trait, so
//! the pipeline (decode, preprocess, rank) is the same whatever the network. A new architecture
//! is a module implementing [`ImageClassifier`], a [`super::Family`] variant whose
//! `vision_task` is image-classification, and one arm in [`load`].

use candle_core::Device;
use serde_json::Value;

use super::{convnext, mobilenet, Family, ModelFiles};
use crate::error::ToolkitError;
use crate::vision::PixelValues;

/// A loaded image classifier.
pub trait ImageClassifier: Send + Sync + std::fmt::Debug {
    /// The `(height, width)` every preprocessed image must have, when the network fixes it
    /// (position embeddings of a fixed grid); `None` when any size works (convolutional
    /// networks with global pooling).
    fn input_size(&self) -> Option<(usize, usize)>;

    /// The logits of each image, one float per label.
    fn logits(&self, images: &[PixelValues]) -> Result<Vec<Vec<f32>>, ToolkitError>;
}

/// Loads the classifier of an image-classification family with `labels` classes.
pub fn load(
    family: Family,
    files: &ModelFiles,
    config: &Value,
    labels: usize,
    device: &Device,
) -> Result<Box<dyn ImageClassifier>, ToolkitError> {
    match family {
        Family::Vit => Ok(Box::new(super::vit::VitClassifier::load(
            files, config, labels, device,
        )?)),
        Family::ConvNext | Family::ConvNextV2 => {
            let version = if family == Family::ConvNext {
                convnext::Version::V1
            } else {
                convnext::Version::V2
            };
            Ok(Box::new(convnext::ConvNext::load(
                files, config, labels, version, device,
            )?))
        }
        Family::ResNet => Ok(Box::new(super::resnet::ResNet::load(
            files, config, labels, device,
        )?)),
        Family::MobileNetV1 | Family::MobileNetV2 => {
            let version = if family == Family::MobileNetV1 {
                mobilenet::Version::V1
            } else {
                mobilenet::Version::V2
            };
            Ok(Box::new(mobilenet::MobileNet::load(
                files, config, labels, version, device,
            )?))
        }
        other => Err(ToolkitError::Config(format!(
            "{} is not an image classifier; it serves {}",
            other.model_type(),
            other.serves()
        ))),
    }
}
