//! DeiT image classification (`DeiTForImageClassification` and
//! `DeiTForImageClassificationWithTeacher`), written from transformers'
//! `models/deit/modeling_deit.py` on candle's ops: patch embeddings behind a CLS token and a
//! distillation token, learned position embeddings of the configured grid (the pipeline does not
//! interpolate them), ViT's pre-norm layers, the final layer norm, then either one classifier on
//! the CLS token or, with a teacher, the mean of a classifier on the CLS token and one on the
//! distillation token.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{layer_norm, linear, LayerNorm, Linear};
use serde::Deserialize;
use serde_json::Value;

use super::config::Activation;
use super::image_classifier::{logits_by_size, need_labels, Side2};
use super::layers::{LayerDims, PatchEmbedding, PreNormLayer, VIT_NAMES};
use super::loader::{var_builder, ModelFiles};
use crate::error::ToolkitError;
use crate::vision::PixelValues;

fn default_hidden() -> usize {
    768
}
fn default_layers() -> usize {
    12
}
fn default_heads() -> usize {
    12
}
fn default_intermediate() -> usize {
    3072
}
fn default_act() -> Activation {
    Activation::Gelu
}
fn default_eps() -> f64 {
    1e-12
}
fn default_image() -> Side2 {
    Side2 {
        height: 224,
        width: 224,
    }
}
fn default_patch() -> usize {
    16
}
fn three() -> usize {
    3
}
fn yes() -> bool {
    true
}

/// `DeiTConfig` (the fields the network needs), with transformers' defaults.
#[derive(Debug, Clone, Deserialize)]
struct Config {
    #[serde(default = "default_hidden")]
    hidden_size: usize,
    #[serde(default = "default_layers")]
    num_hidden_layers: usize,
    #[serde(default = "default_heads")]
    num_attention_heads: usize,
    #[serde(default = "default_intermediate")]
    intermediate_size: usize,
    #[serde(default = "default_act")]
    hidden_act: Activation,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default = "default_image")]
    image_size: Side2,
    #[serde(default = "default_patch")]
    patch_size: usize,
    #[serde(default = "three")]
    num_channels: usize,
    #[serde(default = "yes")]
    qkv_bias: bool,
    #[serde(default)]
    architectures: Vec<String>,
}

/// The classification head.
enum Head {
    /// `DeiTForImageClassification`: `classifier` on the CLS token.
    Cls(Linear),
    /// `DeiTForImageClassificationWithTeacher`: the mean of `cls_classifier` on the CLS token and
    /// `distillation_classifier` on the distillation token.
    Teacher(Linear, Linear),
}

/// A loaded DeiT classifier.
pub struct DeitClassifier {
    patch: PatchEmbedding,
    /// `[1, 1, hidden]` each.
    cls: Tensor,
    distillation: Tensor,
    /// `[1, 2 + patches, hidden]`.
    position: Tensor,
    layers: Vec<PreNormLayer>,
    norm: LayerNorm,
    head: Head,
    image: (usize, usize),
    device: Device,
}

impl std::fmt::Debug for DeitClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeitClassifier")
            .field("image", &self.image)
            .field("layers", &self.layers.len())
            .field("teacher", &matches!(self.head, Head::Teacher(..)))
            .finish_non_exhaustive()
    }
}

/// Whether transformers' auto class would build the model with a teacher: `deit` maps to both
/// heads, and the first of `architectures` naming one of them decides (`DeiTForImageClassification`
/// when none does).
fn with_teacher(architectures: &[String]) -> bool {
    architectures
        .iter()
        .find(|a| {
            matches!(
                a.as_str(),
                "DeiTForImageClassification" | "DeiTForImageClassificationWithTeacher"
            )
        })
        .is_some_and(|a| a == "DeiTForImageClassificationWithTeacher")
}

impl DeitClassifier {
    /// Loads the model of `config` (`config.json`) with `labels` classes.
    pub fn load(
        files: &ModelFiles,
        config: &Value,
        labels: usize,
        device: &Device,
    ) -> Result<Self, ToolkitError> {
        let cfg: Config = serde_json::from_value(config.clone()).map_err(|e| {
            ToolkitError::model_load(format!("invalid deit config in config.json: {e}"))
        })?;
        need_labels(labels)?;
        let h = cfg.hidden_size;
        let heads = cfg.num_attention_heads;
        if heads == 0 || !h.is_multiple_of(heads) {
            return Err(ToolkitError::model_load(
                "config.json: hidden_size must be a multiple of num_attention_heads",
            ));
        }
        let p = cfg.patch_size;
        let Side2 { height, width } = cfg.image_size;
        if p == 0 || height < p || width < p {
            return Err(ToolkitError::model_load(
                "config.json: patch_size must be positive and at most image_size",
            ));
        }
        let patches = (height / p) * (width / p);
        let vb = var_builder(files, DType::F32, device)?;
        let emb = vb.pp("deit.embeddings");
        let dims = LayerDims {
            hidden: h,
            heads,
            intermediate: cfg.intermediate_size,
            eps: cfg.layer_norm_eps,
            act: cfg.hidden_act,
        };
        if !cfg.qkv_bias {
            return Err(ToolkitError::model_load(
                "config.json: deit without qkv_bias is not supported",
            ));
        }
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| PreNormLayer::load(vb.pp(format!("deit.encoder.layer.{i}")), &VIT_NAMES, dims))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let head = if with_teacher(&cfg.architectures) {
            Head::Teacher(
                linear(h, labels, vb.pp("cls_classifier"))?,
                linear(h, labels, vb.pp("distillation_classifier"))?,
            )
        } else {
            Head::Cls(linear(h, labels, vb.pp("classifier"))?)
        };
        Ok(Self {
            patch: PatchEmbedding::load(&emb, cfg.num_channels, h, p)?,
            cls: emb.get((1, 1, h), "cls_token")?,
            distillation: emb.get((1, 1, h), "distillation_token")?,
            position: emb.get((1, patches + 2, h), "position_embeddings")?,
            layers,
            norm: layer_norm(h, cfg.layer_norm_eps, vb.pp("deit.layernorm"))?,
            head,
            image: (height, width),
            device: device.clone(),
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let b = x.dim(0)?;
        let patches = self.patch.tokens(x)?;
        let h = patches.dim(2)?;
        let cls = self.cls.broadcast_as((b, 1, h))?;
        let dist = self.distillation.broadcast_as((b, 1, h))?;
        let mut hs = Tensor::cat(&[&cls, &dist, &patches], 1)?.broadcast_add(&self.position)?;
        for layer in &self.layers {
            hs = layer.forward(&hs, None)?;
        }
        let hs = self.norm.forward(&hs)?;
        match &self.head {
            Head::Cls(c) => c.forward(&hs.narrow(1, 0, 1)?.squeeze(1)?),
            Head::Teacher(c, d) => {
                let cls = c.forward(&hs.narrow(1, 0, 1)?.squeeze(1)?)?;
                let dist = d.forward(&hs.narrow(1, 1, 1)?.squeeze(1)?)?;
                (cls + dist)? / 2.0
            }
        }
    }
}

impl super::image_classifier::ImageClassifier for DeitClassifier {
    fn input_size(&self) -> Option<(usize, usize)> {
        Some(self.image)
    }

    fn logits(&self, images: &[PixelValues]) -> Result<Vec<Vec<f32>>, ToolkitError> {
        let (h, w) = self.image;
        if let Some(p) = images.iter().find(|p| (p.height, p.width) != (h, w)) {
            return Err(ToolkitError::Internal(format!(
                "a preprocessed image is {}x{} but the model takes {w}x{h}",
                p.width, p.height
            )));
        }
        logits_by_size(images, &self.device, 1, |x| Ok(self.forward(x)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_deit_architecture_decides_the_head() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(with_teacher(&a(&["DeiTForImageClassificationWithTeacher"])));
        assert!(!with_teacher(&a(&["DeiTForImageClassification"])));
        assert!(!with_teacher(&a(&[])));
        assert!(with_teacher(&a(&[
            "DeiTModel",
            "DeiTForImageClassificationWithTeacher",
            "DeiTForImageClassification"
        ])));
    }
}
