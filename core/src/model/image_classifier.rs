//! The image-classification seam: every `*ForImageClassification` family behind one trait, so
//! the pipeline (decode, preprocess, rank) is the same whatever the network. A new architecture
//! is a module implementing [`ImageClassifier`], a [`super::Family`] variant whose
//! `vision_task` is image-classification, and one arm in [`load`].

use candle_core::{Device, Tensor};
use serde::Deserialize;
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
        // the CPU kernels on the CPU; candle's ViT elsewhere (CUDA)
        Family::Vit if device.is_cpu() => Ok(Box::new(super::kernel_vit::KernelVit::load(
            files, config, labels,
        )?)),
        Family::Vit => Ok(Box::new(super::vit::VitClassifier::load(
            files, config, labels, device,
        )?)),
        Family::Deit => Ok(Box::new(super::deit::DeitClassifier::load(
            files, config, labels, device,
        )?)),
        Family::Dinov2 => Ok(Box::new(super::dinov2::Dinov2Classifier::load(
            files, config, labels, device,
        )?)),
        Family::Beit => Ok(Box::new(super::beit::BeitClassifier::load(
            files, config, labels, device,
        )?)),
        Family::Swin => Ok(Box::new(super::swin::SwinClassifier::load(
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

/// A config's `image_size` or `patch_size`: one number for a square, or `[height, width]`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "SizeValue")]
pub(crate) struct Side2 {
    pub(crate) height: usize,
    pub(crate) width: usize,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SizeValue {
    Square(usize),
    Pair(Vec<usize>),
}

impl TryFrom<SizeValue> for Side2 {
    type Error = String;

    fn try_from(v: SizeValue) -> Result<Self, String> {
        match v {
            SizeValue::Square(n) => Ok(Side2 {
                height: n,
                width: n,
            }),
            SizeValue::Pair(p) => match p.as_slice() {
                [height, width] => Ok(Side2 {
                    height: *height,
                    width: *width,
                }),
                _ => Err(format!("expected a number or [height, width], got {p:?}")),
            },
        }
    }
}

/// Refuses a model without labels (`id2label` or `num_labels`).
pub(crate) fn need_labels(labels: usize) -> Result<(), ToolkitError> {
    if labels == 0 {
        return Err(ToolkitError::model_load(
            "config.json has no labels (id2label or num_labels): not an image classifier",
        ));
    }
    Ok(())
}

/// Runs `forward` (`[b, 3, h, w]` pixels to `[b, labels]` logits) over `images`, consecutive
/// images of one size in one batch, and returns each image's logits. An image smaller than
/// `min_side` on a side (one patch) is refused.
pub(crate) fn logits_by_size(
    images: &[PixelValues],
    device: &Device,
    min_side: usize,
    forward: impl Fn(&Tensor) -> Result<Tensor, ToolkitError>,
) -> Result<Vec<Vec<f32>>, ToolkitError> {
    if let Some(p) = images
        .iter()
        .find(|p| p.height < min_side || p.width < min_side)
    {
        return Err(ToolkitError::Validation(format!(
            "the image is {}x{} after preprocessing, smaller than one {min_side}x{min_side} patch; send a larger image",
            p.width, p.height
        )));
    }
    let mut out = Vec::with_capacity(images.len());
    let mut rest = images;
    while let Some(first) = rest.first() {
        let n = rest
            .iter()
            .take_while(|p| (p.height, p.width) == (first.height, first.width))
            .count();
        let (batch, tail) = rest.split_at(n);
        rest = tail;
        let mut data = Vec::with_capacity(n * 3 * first.height * first.width);
        for p in batch {
            data.extend_from_slice(&p.data);
        }
        let x = Tensor::from_vec(data, (n, 3, first.height, first.width), device)?;
        let logits = forward(&x)?.to_device(&Device::Cpu)?.to_vec2::<f32>()?;
        out.extend(logits);
    }
    Ok(out)
}
