//! SigLIP (`SiglipModel`), written from transformers' `models/siglip/modeling_siglip.py` (4.51)
//! on candle's ops: a text transformer with no causal mask, pooled at its last position (the
//! texts are padded to a fixed length, so that is a padding token) and projected by `head`; a
//! vision transformer with no class token, pooled by its multihead attention-pooling head (a
//! learned probe attending over the patches, then a residual MLP). Both embeddings are
//! normalized and `logits_per_image = cos(image, text) · exp(logit_scale) + logit_bias`.
//! The encoder layers are CLIP's (same weight names, pre-norm).

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{
    conv2d, embedding, layer_norm, linear, Conv2d, Conv2dConfig, Embedding, LayerNorm, Linear,
    VarBuilder,
};
use serde::Deserialize;
use serde_json::Value;

use super::clip::{dims, encoder_layers};
use super::config::Activation;
use super::layers::{activate, attend, split_heads, LayerDims, PreNormLayer};
use super::loader::{var_builder, ModelFiles};
use crate::error::ToolkitError;
use crate::vision::PixelValues;

fn gelu_tanh() -> Activation {
    Activation::GeluNew
}
fn eps() -> f64 {
    1e-6
}
fn three() -> usize {
    3
}
fn sixty_four() -> usize {
    64
}

/// `SiglipTextConfig` (the fields the network needs).
#[derive(Debug, Clone, Deserialize)]
struct TextConfig {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    #[serde(default = "sixty_four")]
    max_position_embeddings: usize,
    #[serde(default = "gelu_tanh")]
    hidden_act: Activation,
    #[serde(default = "eps")]
    layer_norm_eps: f64,
    /// `head`'s output size; `hidden_size` when null or absent.
    #[serde(default)]
    projection_size: Option<usize>,
}

/// `SiglipVisionConfig` (the fields the network needs).
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
    #[serde(default = "gelu_tanh")]
    hidden_act: Activation,
    #[serde(default = "eps")]
    layer_norm_eps: f64,
    /// `vision_use_head`: SiglipModel needs the pooling head.
    #[serde(default)]
    vision_use_head: Option<bool>,
}

/// `SiglipConfig`.
#[derive(Debug, Clone, Deserialize)]
struct Config {
    text_config: TextConfig,
    vision_config: VisionConfig,
}

/// `SiglipMultiheadAttentionPoolingHead`: `torch.nn.MultiheadAttention` of a learned probe over
/// the patches (`in_proj_weight` packs the query, key and value projections), then
/// `x + mlp(layernorm(x))`.
struct PoolingHead {
    probe: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    dims: LayerDims,
}

impl PoolingHead {
    fn load(vb: VarBuilder, dims: LayerDims) -> candle_core::Result<Self> {
        let h = dims.hidden;
        let w = vb.get((3 * h, h), "attention.in_proj_weight")?;
        let b = vb.get(3 * h, "attention.in_proj_bias")?;
        let part = |i: usize| -> candle_core::Result<Linear> {
            Ok(Linear::new(
                w.narrow(0, i * h, h)?.contiguous()?,
                Some(b.narrow(0, i * h, h)?.contiguous()?),
            ))
        };
        Ok(Self {
            probe: vb.get((1, 1, h), "probe")?,
            q: part(0)?,
            k: part(1)?,
            v: part(2)?,
            out: linear(h, h, vb.pp("attention.out_proj"))?,
            norm: layer_norm(h, dims.eps, vb.pp("layernorm"))?,
            fc1: linear(h, dims.intermediate, vb.pp("mlp.fc1"))?,
            fc2: linear(dims.intermediate, h, vb.pp("mlp.fc2"))?,
            dims,
        })
    }

    /// `x`: `[n, patches, h]` → `[n, h]`.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let n = x.dim(0)?;
        let heads = self.dims.heads;
        let probe = self.probe.repeat((n, 1, 1))?;
        let q = split_heads(&self.q.forward(&probe)?, heads)?;
        let k = split_heads(&self.k.forward(x)?, heads)?;
        let v = split_heads(&self.v.forward(x)?, heads)?;
        let scale = 1.0 / ((self.dims.hidden / heads) as f64).sqrt();
        let a = self.out.forward(&attend(&q, &k, &v, scale, None)?)?;
        let m = activate(&self.fc1.forward(&self.norm.forward(&a)?)?, self.dims.act)?;
        (a + self.fc2.forward(&m)?)?.squeeze(1)
    }
}

/// A loaded SigLIP.
pub struct Siglip {
    token_embedding: Embedding,
    text_positions: Tensor,
    text_layers: Vec<PreNormLayer>,
    final_norm: LayerNorm,
    text_head: Linear,
    max_positions: usize,
    patch: Conv2d,
    vision_positions: Tensor,
    vision_layers: Vec<PreNormLayer>,
    post_norm: LayerNorm,
    pooling: PoolingHead,
    image_size: usize,
    logit_scale: f32,
    logit_bias: f32,
    device: Device,
}

impl std::fmt::Debug for Siglip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Siglip")
            .field("image_size", &self.image_size)
            .field("max_positions", &self.max_positions)
            .finish_non_exhaustive()
    }
}

/// Each row divided by its L2 norm.
fn normalize(x: &Tensor) -> candle_core::Result<Tensor> {
    x.broadcast_div(&x.sqr()?.sum_keepdim(1)?.sqrt()?)
}

impl Siglip {
    /// Loads the model of `config` (`config.json`).
    pub fn load(files: &ModelFiles, config: &Value, device: &Device) -> Result<Self, ToolkitError> {
        let cfg: Config = serde_json::from_value(config.clone()).map_err(|e| {
            ToolkitError::model_load(format!("invalid siglip config in config.json: {e}"))
        })?;
        let (t, v) = (&cfg.text_config, &cfg.vision_config);
        if v.patch_size == 0 || v.image_size < v.patch_size {
            return Err(ToolkitError::model_load(
                "config.json: vision_config.patch_size must be positive and at most image_size",
            ));
        }
        if v.vision_use_head == Some(false) {
            return Err(ToolkitError::model_load(
                "config.json: vision_config.vision_use_head is false; SiglipModel needs the attention-pooling head",
            ));
        }
        let projection = t.projection_size.unwrap_or(t.hidden_size);
        if projection != v.hidden_size {
            return Err(ToolkitError::model_load(format!(
                "config.json: text_config.projection_size ({projection}) must equal vision_config.hidden_size ({})",
                v.hidden_size
            )));
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
        let scalar =
            |name: &str| -> Result<f32, ToolkitError> { Ok(vb.get(1, name)?.to_vec1::<f32>()?[0]) };
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
            text_head: linear(t.hidden_size, projection, text.pp("head"))?,
            max_positions: t.max_position_embeddings,
            patch: conv2d(
                v.num_channels,
                v.hidden_size,
                v.patch_size,
                patch_cfg,
                vision.pp("embeddings.patch_embedding"),
            )?,
            vision_positions: vision.get(
                (patches, v.hidden_size),
                "embeddings.position_embedding.weight",
            )?,
            vision_layers,
            post_norm: layer_norm(v.hidden_size, v.layer_norm_eps, vision.pp("post_layernorm"))?,
            pooling: PoolingHead::load(vision.pp("head"), vdims)?,
            image_size: v.image_size,
            logit_scale: scalar("logit_scale")?.exp(),
            logit_bias: scalar("logit_bias")?,
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

    /// The normalized text embeddings `[n, projection]` of token sequences all of one length
    /// (padded by the tokenizer), with their attention masks when the tokenizer gives them.
    fn text_features(
        &self,
        texts: &[Vec<u32>],
        masks: Option<&[Vec<u32>]>,
    ) -> Result<Tensor, ToolkitError> {
        let len = texts.first().map_or(0, Vec::len);
        if len == 0 || texts.iter().any(|t| t.len() != len) {
            return Err(ToolkitError::Internal(
                "SigLIP texts must be padded to one length".into(),
            ));
        }
        if len > self.max_positions {
            return Err(ToolkitError::InputTooLong(format!(
                "the candidate labels are padded to {len} tokens, more than the model's {} positions",
                self.max_positions
            )));
        }
        let n = texts.len();
        let ids = Tensor::from_vec(texts.concat(), (n, len), &self.device)?;
        let mut x = self
            .token_embedding
            .forward(&ids)?
            .broadcast_add(&self.text_positions.narrow(0, 0, len)?)?;
        // padding keys masked out (`_prepare_4d_attention_mask`: the dtype's minimum)
        let bias = match masks {
            Some(m) => {
                let flat: Vec<f32> = m
                    .iter()
                    .flatten()
                    .map(|&v| if v == 0 { f32::MIN } else { 0.0 })
                    .collect();
                if flat.len() != n * len {
                    return Err(ToolkitError::Internal(
                        "SigLIP attention masks do not match the texts".into(),
                    ));
                }
                Some(Tensor::from_vec(flat, (n, 1, 1, len), &self.device)?)
            }
            None => None,
        };
        for layer in &self.text_layers {
            x = layer.forward(&x, bias.as_ref())?;
        }
        let x = self.final_norm.forward(&x)?;
        let last = x.narrow(1, len - 1, 1)?.squeeze(1)?;
        Ok(normalize(&self.text_head.forward(&last)?)?)
    }

    /// The normalized image embeddings `[n, hidden]`.
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
        let mut x = self
            .patch
            .forward(&x)?
            .flatten_from(2)?
            .transpose(1, 2)?
            .broadcast_add(&self.vision_positions)?;
        for layer in &self.vision_layers {
            x = layer.forward(&x, None)?;
        }
        let x = self.post_norm.forward(&x)?;
        Ok(normalize(&self.pooling.forward(&x)?)?)
    }

    /// `logits_per_image`: one row per image, one logit per text. `texts` are padded to one
    /// length; `masks` are their attention masks, when the tokenizer's `model_input_names`
    /// has them.
    pub fn logits_per_image(
        &self,
        images: &[PixelValues],
        texts: &[Vec<u32>],
        masks: Option<&[Vec<u32>]>,
    ) -> Result<Vec<Vec<f32>>, ToolkitError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let text = self.text_features(texts, masks)?;
        let image = self.image_features(images)?;
        let logits = image
            .matmul(&text.t()?)?
            .affine(f64::from(self.logit_scale), f64::from(self.logit_bias))?;
        Ok(logits.to_device(&Device::Cpu)?.to_vec2::<f32>()?)
    }
}
