//! DINOv2 image classification (`Dinov2ForImageClassification`), written from transformers'
//! `models/dinov2/modeling_dinov2.py` on candle's ops: patch embeddings behind a CLS token, the
//! position embeddings of the configured square grid resized bicubically to the image's patch
//! grid (DINOv2 takes images of any size), pre-norm layers with layer scale, the final layer
//! norm, and the classifier on the CLS token concatenated with the mean of the patch tokens.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{layer_norm, linear, LayerNorm, Linear};
use serde::Deserialize;
use serde_json::Value;

use super::config::Activation;
use super::image_classifier::{logits_by_size, need_labels, Side2};
use super::layers::{interpolate_positions, LayerDims, PatchEmbedding, PreNormLayer, DINOV2_NAMES};
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
fn default_mlp_ratio() -> f64 {
    4.0
}
fn default_act() -> Activation {
    Activation::Gelu
}
fn default_eps() -> f64 {
    1e-6
}
fn default_image() -> Side2 {
    Side2 {
        height: 224,
        width: 224,
    }
}
fn default_patch() -> usize {
    14
}
fn three() -> usize {
    3
}
fn yes() -> bool {
    true
}

/// `Dinov2Config` (the fields the network needs), with transformers' defaults.
#[derive(Debug, Clone, Deserialize)]
struct Config {
    #[serde(default = "default_hidden")]
    hidden_size: usize,
    #[serde(default = "default_layers")]
    num_hidden_layers: usize,
    #[serde(default = "default_heads")]
    num_attention_heads: usize,
    #[serde(default = "default_mlp_ratio")]
    mlp_ratio: f64,
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
    use_swiglu_ffn: bool,
}

/// A loaded DINOv2 classifier.
pub struct Dinov2Classifier {
    patch: PatchEmbedding,
    patch_size: usize,
    /// `[1, 1, hidden]`.
    cls: Tensor,
    /// `[1, 1 + side², hidden]`.
    position: Tensor,
    /// The position grid's side.
    side: usize,
    layers: Vec<PreNormLayer>,
    norm: LayerNorm,
    classifier: Linear,
    device: Device,
}

impl std::fmt::Debug for Dinov2Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dinov2Classifier")
            .field("patch_size", &self.patch_size)
            .field("side", &self.side)
            .field("layers", &self.layers.len())
            .finish_non_exhaustive()
    }
}

impl Dinov2Classifier {
    /// Loads the model of `config` (`config.json`) with `labels` classes.
    pub fn load(
        files: &ModelFiles,
        config: &Value,
        labels: usize,
        device: &Device,
    ) -> Result<Self, ToolkitError> {
        let cfg: Config = serde_json::from_value(config.clone()).map_err(|e| {
            ToolkitError::model_load(format!("invalid dinov2 config in config.json: {e}"))
        })?;
        need_labels(labels)?;
        let h = cfg.hidden_size;
        let heads = cfg.num_attention_heads;
        if heads == 0 || !h.is_multiple_of(heads) {
            return Err(ToolkitError::model_load(
                "config.json: hidden_size must be a multiple of num_attention_heads",
            ));
        }
        if cfg.use_swiglu_ffn || !cfg.qkv_bias {
            return Err(ToolkitError::model_load(
                "config.json: dinov2 with use_swiglu_ffn or without qkv_bias is not supported yet",
            ));
        }
        let p = cfg.patch_size;
        let Side2 { height, width } = cfg.image_size;
        if p == 0 || height < p || width < p {
            return Err(ToolkitError::model_load(
                "config.json: patch_size must be positive and at most image_size",
            ));
        }
        // transformers reshapes the position embeddings to a square grid to resize them
        let (gh, gw) = (height / p, width / p);
        if gh != gw {
            return Err(ToolkitError::model_load(
                "config.json: dinov2's position embeddings must form a square grid (image_size a square)",
            ));
        }
        // Dinov2MLP's hidden features: int(hidden_size * mlp_ratio)
        let intermediate = (h as f64 * cfg.mlp_ratio) as usize;
        let dims = LayerDims {
            hidden: h,
            heads,
            intermediate,
            eps: cfg.layer_norm_eps,
            act: cfg.hidden_act,
        };
        let vb = var_builder(files, DType::F32, device)?;
        let emb = vb.pp("dinov2.embeddings");
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| {
                PreNormLayer::load(
                    vb.pp(format!("dinov2.encoder.layer.{i}")),
                    &DINOV2_NAMES,
                    dims,
                )
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            patch: PatchEmbedding::load(&emb, cfg.num_channels, h, p)?,
            patch_size: p,
            cls: emb.get((1, 1, h), "cls_token")?,
            position: emb.get((1, 1 + gh * gw, h), "position_embeddings")?,
            side: gh,
            layers,
            norm: layer_norm(h, cfg.layer_norm_eps, vb.pp("dinov2.layernorm"))?,
            classifier: linear(2 * h, labels, vb.pp("classifier"))?,
            device: device.clone(),
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, _, height, width) = x.dims4()?;
        let p = self.patch_size;
        let patches = self.patch.tokens(x)?;
        let h = patches.dim(2)?;
        let n = patches.dim(1)?;
        let cls = self.cls.broadcast_as((b, 1, h))?;
        let position = interpolate_positions(
            &self.position,
            (self.side, self.side),
            (height, width),
            (height / p, width / p),
        )?;
        let mut hs = Tensor::cat(&[&cls, &patches], 1)?.broadcast_add(&position)?;
        for layer in &self.layers {
            hs = layer.forward(&hs, None)?;
        }
        let hs = self.norm.forward(&hs)?;
        let cls = hs.narrow(1, 0, 1)?.squeeze(1)?;
        let mean = hs.narrow(1, 1, n)?.mean(1)?;
        self.classifier.forward(&Tensor::cat(&[cls, mean], 1)?)
    }
}

impl super::image_classifier::ImageClassifier for Dinov2Classifier {
    /// Any size of at least one patch: the position embeddings follow the image.
    fn input_size(&self) -> Option<(usize, usize)> {
        None
    }

    fn logits(&self, images: &[PixelValues]) -> Result<Vec<Vec<f32>>, ToolkitError> {
        logits_by_size(images, &self.device, self.patch_size, |x| {
            Ok(self.forward(x)?)
        })
    }
}
