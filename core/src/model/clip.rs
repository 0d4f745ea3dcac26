//! CLIP (`CLIPModel`), written from transformers' `models/clip/modeling_clip.py` on candle's
//! ops: a text transformer (causal attention, pooled at the end-of-text token) and a vision
//! transformer (a CLS token over the image's patches, pooled on it), each projected into one
//! embedding space, where `logits_per_image = exp(logit_scale) · cos(image, text)`.
//! candle-transformers' port hard-codes its configurations and pools at the largest token id,
//! so it is not used.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{
    conv2d_no_bias, embedding, layer_norm, linear_no_bias, Conv2d, Conv2dConfig, Embedding,
    LayerNorm, Linear, VarBuilder,
};
use serde::Deserialize;
use serde_json::Value;

use super::config::Activation;
use super::layers::{LayerDims, PreNormLayer, CLIP_NAMES};
use super::loader::{var_builder, ModelFiles};
use crate::error::ToolkitError;
use crate::vision::PixelValues;

fn quick_gelu() -> Activation {
    Activation::QuickGelu
}
fn eps() -> f64 {
    1e-5
}
fn eos() -> u32 {
    2
}
fn three() -> usize {
    3
}

/// `CLIPTextConfig` (the fields the network needs).
#[derive(Debug, Clone, Deserialize)]
struct TextConfig {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    max_position_embeddings: usize,
    #[serde(default = "quick_gelu")]
    hidden_act: Activation,
    #[serde(default = "eps")]
    layer_norm_eps: f64,
    #[serde(default = "eos")]
    eos_token_id: u32,
}

/// `CLIPVisionConfig` (the fields the network needs).
#[derive(Debug, Clone, Deserialize)]
struct VisionConfig {
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    image_size: usize,
    patch_size: usize,
    #[serde(default = "three")]
    num_channels: usize,
    #[serde(default = "quick_gelu")]
    hidden_act: Activation,
    #[serde(default = "eps")]
    layer_norm_eps: f64,
}

/// `CLIPConfig`.
#[derive(Debug, Clone, Deserialize)]
struct Config {
    text_config: TextConfig,
    vision_config: VisionConfig,
    #[serde(default = "default_projection")]
    projection_dim: usize,
}

fn default_projection() -> usize {
    512
}

/// A tower's layer sizes, checked (CLIP and SigLIP).
pub(super) fn dims(
    hidden: usize,
    heads: usize,
    intermediate: usize,
    eps: f64,
    act: Activation,
) -> Result<LayerDims, ToolkitError> {
    if heads == 0 || !hidden.is_multiple_of(heads) {
        return Err(ToolkitError::model_load(
            "config.json: hidden_size must be a multiple of num_attention_heads",
        ));
    }
    Ok(LayerDims {
        hidden,
        heads,
        intermediate,
        eps,
        act,
    })
}

/// A tower's `encoder.layers.{i}` under `tower` (CLIP and SigLIP name them alike).
pub(super) fn encoder_layers(
    tower: &VarBuilder,
    n: usize,
    dims: LayerDims,
) -> candle_core::Result<Vec<PreNormLayer>> {
    (0..n)
        .map(|i| PreNormLayer::load(tower.pp(format!("encoder.layers.{i}")), &CLIP_NAMES, dims))
        .collect()
}

/// A loaded CLIP.
pub struct Clip {
    token_embedding: Embedding,
    text_positions: Tensor,
    text_layers: Vec<PreNormLayer>,
    final_norm: LayerNorm,
    text_projection: Linear,
    eos_token_id: u32,
    max_positions: usize,
    patch: Conv2d,
    class_embedding: Tensor,
    vision_positions: Tensor,
    pre_norm: LayerNorm,
    vision_layers: Vec<PreNormLayer>,
    post_norm: LayerNorm,
    visual_projection: Linear,
    image_size: usize,
    logit_scale: f32,
    device: Device,
}

impl std::fmt::Debug for Clip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clip")
            .field("image_size", &self.image_size)
            .field("max_positions", &self.max_positions)
            .finish_non_exhaustive()
    }
}

/// Each row divided by its L2 norm.
fn normalize(x: &Tensor) -> candle_core::Result<Tensor> {
    x.broadcast_div(&x.sqr()?.sum_keepdim(1)?.sqrt()?)
}

impl Clip {
    /// Loads the model of `config` (`config.json`).
    pub fn load(files: &ModelFiles, config: &Value, device: &Device) -> Result<Self, ToolkitError> {
        let cfg: Config = serde_json::from_value(config.clone()).map_err(|e| {
            ToolkitError::model_load(format!("invalid clip config in config.json: {e}"))
        })?;
        let (t, v) = (&cfg.text_config, &cfg.vision_config);
        if v.patch_size == 0 || v.image_size < v.patch_size {
            return Err(ToolkitError::model_load(
                "config.json: vision_config.patch_size must be positive and at most image_size",
            ));
        }
        let vb = var_builder(files, DType::F32, device)?;
        let tdims = dims(
            t.hidden_size,
            t.num_attention_heads,
            t.intermediate_size,
            t.layer_norm_eps,
            t.hidden_act,
        )?;
        let vdims = dims(
            v.hidden_size,
            v.num_attention_heads,
            v.intermediate_size,
            v.layer_norm_eps,
            v.hidden_act,
        )?;
        let text = vb.pp("text_model");
        let vision = vb.pp("vision_model");
        let text_layers = encoder_layers(&text, t.num_hidden_layers, tdims)?;
        let vision_layers = encoder_layers(&vision, v.num_hidden_layers, vdims)?;
        let patches = (v.image_size / v.patch_size).pow(2);
        let patch_cfg = Conv2dConfig {
            stride: v.patch_size,
            ..Default::default()
        };
        let logit_scale = vb.get((), "logit_scale")?.to_scalar::<f32>()?;
        Ok(Self {
            token_embedding: embedding(
                t.vocab_size,
                t.hidden_size,
                text.pp("embeddings.token_embedding"),
            )?,
            text_positions: text.get(
                (t.max_position_embeddings, t.hidden_size),
                "embeddings.position_embedding.weight",
            )?,
            text_layers,
            final_norm: layer_norm(t.hidden_size, t.layer_norm_eps, text.pp("final_layer_norm"))?,
            text_projection: linear_no_bias(
                t.hidden_size,
                cfg.projection_dim,
                vb.pp("text_projection"),
            )?,
            eos_token_id: t.eos_token_id,
            max_positions: t.max_position_embeddings,
            patch: conv2d_no_bias(
                v.num_channels,
                v.hidden_size,
                v.patch_size,
                patch_cfg,
                vision.pp("embeddings.patch_embedding"),
            )?,
            class_embedding: vision.get(v.hidden_size, "embeddings.class_embedding")?,
            vision_positions: vision.get(
                (patches + 1, v.hidden_size),
                "embeddings.position_embedding.weight",
            )?,
            pre_norm: layer_norm(v.hidden_size, v.layer_norm_eps, vision.pp("pre_layrnorm"))?,
            vision_layers,
            post_norm: layer_norm(v.hidden_size, v.layer_norm_eps, vision.pp("post_layernorm"))?,
            visual_projection: linear_no_bias(
                v.hidden_size,
                cfg.projection_dim,
                vb.pp("visual_projection"),
            )?,
            image_size: v.image_size,
            logit_scale: logit_scale.exp(),
            device: device.clone(),
        })
    }

    /// The side of the square images the model takes.
    pub fn image_size(&self) -> usize {
        self.image_size
    }

    /// The most tokens a text may have (`max_position_embeddings`).
    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// The normalized text embeddings `[n, projection]` of token sequences (with their special
    /// tokens). Sequences are padded to the longest: under the causal mask the pooled token
    /// never sees the padding.
    fn text_features(&self, texts: &[Vec<u32>]) -> Result<Tensor, ToolkitError> {
        let len = texts.iter().map(Vec::len).max().unwrap_or(0);
        if len == 0 || texts.iter().any(Vec::is_empty) {
            return Err(ToolkitError::Validation(
                "a candidate label tokenized to nothing".into(),
            ));
        }
        if len > self.max_positions {
            return Err(ToolkitError::InputTooLong(format!(
                "a candidate label (with the hypothesis template) is {len} tokens, more than the model's {}; shorten it",
                self.max_positions
            )));
        }
        let mut ids = Vec::with_capacity(texts.len() * len);
        let mut pooled = Vec::with_capacity(texts.len());
        for t in texts {
            // transformers: argmax of the ids for legacy configs (eos_token_id 2), else the
            // first end-of-text token
            let at = if self.eos_token_id == 2 {
                t.iter()
                    .enumerate()
                    .fold(
                        (0, 0),
                        |best, (i, &id)| if id > best.1 { (i, id) } else { best },
                    )
                    .0
            } else {
                t.iter()
                    .position(|&id| id == self.eos_token_id)
                    .unwrap_or(0)
            };
            pooled.push(at as u32);
            ids.extend_from_slice(t);
            ids.extend(std::iter::repeat_n(self.eos_token_id, len - t.len()));
        }
        let n = texts.len();
        let ids = Tensor::from_vec(ids, (n, len), &self.device)?;
        let mut x = self
            .token_embedding
            .forward(&ids)?
            .broadcast_add(&self.text_positions.narrow(0, 0, len)?)?;
        let mask: Vec<f32> = (0..len * len)
            .map(|i| {
                if i % len > i / len {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, (1, 1, len, len), &self.device)?;
        for layer in &self.text_layers {
            x = layer.forward(&x, Some(&mask))?;
        }
        let x = self.final_norm.forward(&x)?;
        let index = Tensor::from_vec(pooled, n, &self.device)?;
        // row i, position pooled[i]
        let rows = x.reshape((n * len, x.dim(2)?))?.index_select(
            &(index + Tensor::arange(0u32, n as u32, &self.device)?.affine(len as f64, 0.0)?)?,
            0,
        )?;
        Ok(normalize(&self.text_projection.forward(&rows)?)?)
    }

    /// The normalized image embeddings `[n, projection]`.
    fn image_features(&self, images: &[PixelValues]) -> Result<Tensor, ToolkitError> {
        let s = self.image_size;
        if let Some(p) = images.iter().find(|p| (p.height, p.width) != (s, s)) {
            return Err(ToolkitError::Internal(format!(
                "a preprocessed image is {}x{} but the model takes {s}x{s}",
                p.width, p.height
            )));
        }
        let mut data = Vec::with_capacity(images.len() * 3 * s * s);
        for p in images {
            data.extend_from_slice(&p.data);
        }
        let n = images.len();
        let x = Tensor::from_vec(data, (n, 3, s, s), &self.device)?;
        let patches = self.patch.forward(&x)?.flatten_from(2)?.transpose(1, 2)?;
        let h = patches.dim(2)?;
        let cls = self.class_embedding.reshape((1, 1, h))?.repeat((n, 1, 1))?;
        let x = Tensor::cat(&[cls, patches], 1)?.broadcast_add(&self.vision_positions)?;
        let mut x = self.pre_norm.forward(&x)?;
        for layer in &self.vision_layers {
            x = layer.forward(&x, None)?;
        }
        let pooled = self.post_norm.forward(&x.narrow(1, 0, 1)?.squeeze(1)?)?;
        Ok(normalize(&self.visual_projection.forward(&pooled)?)?)
    }

    /// `logits_per_image`: one row per image, one logit per text.
    pub fn logits_per_image(
        &self,
        images: &[PixelValues],
        texts: &[Vec<u32>],
    ) -> Result<Vec<Vec<f32>>, ToolkitError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let text = self.text_features(texts)?;
        let image = self.image_features(images)?;
        let logits = (image.matmul(&text.t()?)? * f64::from(self.logit_scale))?;
        Ok(logits.to_device(&Device::Cpu)?.to_vec2::<f32>()?)
    }
}
