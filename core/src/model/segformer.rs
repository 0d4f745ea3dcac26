//! SegFormer semantic segmentation (`SegformerForSemanticSegmentation`), written from
//! transformers' `models/segformer/modeling_segformer.py` on candle's ops: a Mix Transformer
//! encoder (overlapping patch embeddings, efficient self-attention with a strided reduction of
//! keys and values, a Mix-FFN with a depthwise 3x3 convolution) and the all-MLP decode head.
//! As transformers does, every layer norm uses torch's default epsilon (1e-5, whatever
//! `layer_norm_eps` says), the decode head upsamples bilinearly and its classifier has a bias
//! (candle-transformers' port differs on all three, so it is not used).

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{
    batch_norm, conv2d, conv2d_no_bias, layer_norm, linear, BatchNorm, Conv2d, Conv2dConfig,
    LayerNorm, Linear, ModuleT, VarBuilder,
};
use serde::Deserialize;
use serde_json::Value;

use super::config::Activation;
use super::layers::{activate, attend, split_heads};
use super::loader::{var_builder, ModelFiles};
use crate::error::ToolkitError;
use crate::vision::{interpolate, PixelValues};

/// torch's `nn.LayerNorm` / `nn.BatchNorm2d` default epsilon, which transformers' SegFormer uses.
const TORCH_EPS: f64 = 1e-5;

fn default_act() -> Activation {
    Activation::Gelu
}

/// `SegformerConfig` (the fields the network needs).
#[derive(Debug, Clone, Deserialize)]
struct Config {
    #[serde(default = "three")]
    num_channels: usize,
    num_encoder_blocks: usize,
    depths: Vec<usize>,
    sr_ratios: Vec<usize>,
    hidden_sizes: Vec<usize>,
    patch_sizes: Vec<usize>,
    strides: Vec<usize>,
    num_attention_heads: Vec<usize>,
    mlp_ratios: Vec<f64>,
    #[serde(default = "default_act")]
    hidden_act: Activation,
    decoder_hidden_size: usize,
    #[serde(default = "yes")]
    reshape_last_stage: bool,
}

fn three() -> usize {
    3
}
fn yes() -> bool {
    true
}

/// Bilinear resize (`align_corners=False`) of `[b, c, h, w]` to `[b, c, out_h, out_w]`, as two
/// matmuls with the interpolation matrices of each axis.
pub(crate) fn resize_bilinear(
    x: &Tensor,
    out_h: usize,
    out_w: usize,
) -> candle_core::Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if (h, w) == (out_h, out_w) {
        return Ok(x.clone());
    }
    let dev = x.device();
    // [w, out_w]: columns are output samples
    let mw = Tensor::from_vec(
        interpolate::matrix(&interpolate::bilinear_taps(w, out_w), w),
        (out_w, w),
        dev,
    )?
    .t()?
    .contiguous()?;
    let mh = Tensor::from_vec(
        interpolate::matrix(&interpolate::bilinear_taps(h, out_h), h),
        (out_h, h),
        dev,
    )?;
    let x = x.contiguous()?.broadcast_matmul(&mw)?;
    mh.broadcast_matmul(&x)
}

/// `[b, n, c]` tokens of an `h × w` map to `[b, c, h, w]`.
fn to_map(x: &Tensor, h: usize, w: usize) -> candle_core::Result<Tensor> {
    let (b, _, c) = x.dims3()?;
    x.transpose(1, 2)?.contiguous()?.reshape((b, c, h, w))
}

/// `[b, c, h, w]` to `[b, h·w, c]` tokens.
fn to_tokens(x: &Tensor) -> candle_core::Result<Tensor> {
    x.flatten_from(2)?.transpose(1, 2)?.contiguous()
}

struct Layer {
    norm1: LayerNorm,
    query: Linear,
    key: Linear,
    value: Linear,
    reduction: Option<(Conv2d, LayerNorm)>,
    out: Linear,
    norm2: LayerNorm,
    dense1: Linear,
    dwconv: Conv2d,
    dense2: Linear,
    heads: usize,
    act: Activation,
}

impl Layer {
    fn load(
        vb: VarBuilder,
        hidden: usize,
        heads: usize,
        sr: usize,
        mlp_ratio: f64,
        act: Activation,
    ) -> candle_core::Result<Self> {
        let att = vb.pp("attention.self");
        let reduction = if sr > 1 {
            let cfg = Conv2dConfig {
                stride: sr,
                ..Default::default()
            };
            Some((
                conv2d(hidden, hidden, sr, cfg, att.pp("sr"))?,
                layer_norm(hidden, TORCH_EPS, att.pp("layer_norm"))?,
            ))
        } else {
            None
        };
        let mlp_hidden = (hidden as f64 * mlp_ratio) as usize;
        let dw = Conv2dConfig {
            padding: 1,
            groups: mlp_hidden,
            ..Default::default()
        };
        Ok(Self {
            norm1: layer_norm(hidden, TORCH_EPS, vb.pp("layer_norm_1"))?,
            query: linear(hidden, hidden, att.pp("query"))?,
            key: linear(hidden, hidden, att.pp("key"))?,
            value: linear(hidden, hidden, att.pp("value"))?,
            reduction,
            out: linear(hidden, hidden, vb.pp("attention.output.dense"))?,
            norm2: layer_norm(hidden, TORCH_EPS, vb.pp("layer_norm_2"))?,
            dense1: linear(hidden, mlp_hidden, vb.pp("mlp.dense1"))?,
            dwconv: conv2d(mlp_hidden, mlp_hidden, 3, dw, vb.pp("mlp.dwconv.dwconv"))?,
            dense2: linear(mlp_hidden, hidden, vb.pp("mlp.dense2"))?,
            heads,
            act,
        })
    }

    /// `x`: `[b, h·w, c]` tokens of an `h × w` map.
    fn forward(&self, x: &Tensor, h: usize, w: usize) -> candle_core::Result<Tensor> {
        let c = x.dim(2)?;
        let a = self.norm1.forward(x)?;
        let q = split_heads(&self.query.forward(&a)?, self.heads)?;
        let kv = match &self.reduction {
            Some((conv, norm)) => norm.forward(&to_tokens(&conv.forward(&to_map(&a, h, w)?)?)?)?,
            None => a,
        };
        let k = split_heads(&self.key.forward(&kv)?, self.heads)?;
        let v = split_heads(&self.value.forward(&kv)?, self.heads)?;
        let scale = 1.0 / ((c / self.heads) as f64).sqrt();
        let ctx = attend(&q, &k, &v, scale, None)?;
        let x = (self.out.forward(&ctx)? + x)?;
        let m = self.dense1.forward(&self.norm2.forward(&x)?)?;
        let m = self.dwconv.forward(&to_map(&m, h, w)?)?;
        let m = to_tokens(&activate(&m, self.act)?)?;
        self.dense2.forward(&m)? + x
    }
}

struct Stage {
    patch: Conv2d,
    patch_norm: LayerNorm,
    layers: Vec<Layer>,
    norm: LayerNorm,
}

/// A loaded SegFormer.
pub struct Segformer {
    stages: Vec<Stage>,
    linear_c: Vec<Linear>,
    linear_fuse: Conv2d,
    batch_norm: BatchNorm,
    classifier: Conv2d,
    labels: usize,
    device: Device,
}

impl std::fmt::Debug for Segformer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segformer")
            .field("stages", &self.stages.len())
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

impl Segformer {
    /// Loads the model of `config` (`config.json`) with `labels` classes.
    pub fn load(
        files: &ModelFiles,
        config: &Value,
        labels: usize,
        device: &Device,
    ) -> Result<Self, ToolkitError> {
        let cfg: Config = serde_json::from_value(config.clone()).map_err(|e| {
            ToolkitError::model_load(format!("invalid segformer config in config.json: {e}"))
        })?;
        let n = cfg.num_encoder_blocks;
        let lists = [
            cfg.depths.len(),
            cfg.sr_ratios.len(),
            cfg.hidden_sizes.len(),
            cfg.patch_sizes.len(),
            cfg.strides.len(),
            cfg.num_attention_heads.len(),
            cfg.mlp_ratios.len(),
        ];
        if n == 0 || lists.iter().any(|&l| l < n) {
            return Err(ToolkitError::model_load(format!(
                "config.json: num_encoder_blocks is {n} but the per-block lists (depths, sr_ratios, hidden_sizes, patch_sizes, strides, num_attention_heads, mlp_ratios) have {lists:?} entries"
            )));
        }
        for i in 0..n {
            let heads = cfg.num_attention_heads[i];
            if heads == 0 || !cfg.hidden_sizes[i].is_multiple_of(heads) {
                return Err(ToolkitError::model_load(format!(
                    "config.json: hidden_sizes[{i}] must be a multiple of num_attention_heads[{i}]"
                )));
            }
            if cfg.strides[i] == 0 || cfg.patch_sizes[i] == 0 {
                return Err(ToolkitError::model_load(format!(
                    "config.json: patch_sizes[{i}] and strides[{i}] must be positive"
                )));
            }
        }
        if !cfg.reshape_last_stage {
            return Err(ToolkitError::model_load(
                "config.json: reshape_last_stage false is not supported for semantic segmentation",
            ));
        }
        if labels == 0 {
            return Err(ToolkitError::model_load(
                "config.json has no labels (id2label or num_labels): not a segmentation model",
            ));
        }
        let vb = var_builder(files, DType::F32, device)?;
        let enc = vb.pp("segformer.encoder");
        let mut stages = Vec::with_capacity(n);
        for i in 0..n {
            let hidden = cfg.hidden_sizes[i];
            let in_ch = if i == 0 {
                cfg.num_channels
            } else {
                cfg.hidden_sizes[i - 1]
            };
            let patch_cfg = Conv2dConfig {
                stride: cfg.strides[i],
                padding: cfg.patch_sizes[i] / 2,
                ..Default::default()
            };
            let pe = enc.pp(format!("patch_embeddings.{i}"));
            let layers = (0..cfg.depths[i])
                .map(|j| {
                    Layer::load(
                        enc.pp(format!("block.{i}.{j}")),
                        hidden,
                        cfg.num_attention_heads[i],
                        cfg.sr_ratios[i],
                        cfg.mlp_ratios[i],
                        cfg.hidden_act,
                    )
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            stages.push(Stage {
                patch: conv2d(in_ch, hidden, cfg.patch_sizes[i], patch_cfg, pe.pp("proj"))?,
                patch_norm: layer_norm(hidden, TORCH_EPS, pe.pp("layer_norm"))?,
                layers,
                norm: layer_norm(hidden, TORCH_EPS, enc.pp(format!("layer_norm.{i}")))?,
            });
        }
        let head = vb.pp("decode_head");
        let d = cfg.decoder_hidden_size;
        let linear_c = (0..n)
            .map(|i| {
                linear(
                    cfg.hidden_sizes[i],
                    d,
                    head.pp(format!("linear_c.{i}.proj")),
                )
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            stages,
            linear_c,
            linear_fuse: conv2d_no_bias(
                d * n,
                d,
                1,
                Conv2dConfig::default(),
                head.pp("linear_fuse"),
            )?,
            batch_norm: batch_norm(d, TORCH_EPS, head.pp("batch_norm"))?,
            classifier: conv2d(d, labels, 1, Conv2dConfig::default(), head.pp("classifier"))?,
            labels,
            device: device.clone(),
        })
    }

    /// The logits of one preprocessed image: `labels` maps of `h × w` (a quarter of the input's
    /// side for the usual first stride of 4), returned as `(h, w, data)` with `data` label-major.
    pub fn logits(&self, image: &PixelValues) -> Result<(usize, usize, Vec<f32>), ToolkitError> {
        let x = Tensor::from_slice(&image.data, (1, 3, image.height, image.width), &self.device)?;
        let out = self.forward(&x)?;
        let (_, l, h, w) = out.dims4()?;
        if l != self.labels {
            return Err(ToolkitError::Internal(format!(
                "the model produced {l} label maps, expected {}",
                self.labels
            )));
        }
        let data: Vec<f32> = out.to_device(&Device::Cpu)?.flatten_all()?.to_vec1()?;
        Ok((h, w, data))
    }

    fn forward(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = pixels.clone();
        let mut maps = Vec::with_capacity(self.stages.len());
        for stage in &self.stages {
            let e = stage.patch.forward(&x)?;
            let (_, _, h, w) = e.dims4()?;
            let mut t = stage.patch_norm.forward(&to_tokens(&e)?)?;
            for layer in &stage.layers {
                t = layer.forward(&t, h, w)?;
            }
            x = to_map(&stage.norm.forward(&t)?, h, w)?;
            maps.push(x.clone());
        }
        let (_, _, h0, w0) = maps[0].dims4()?;
        let mut fused = Vec::with_capacity(maps.len());
        for (m, proj) in maps.iter().zip(&self.linear_c) {
            let (_, _, h, w) = m.dims4()?;
            let p = to_map(&proj.forward(&to_tokens(m)?)?, h, w)?;
            fused.push(resize_bilinear(&p, h0, w0)?);
        }
        fused.reverse();
        let x = self.linear_fuse.forward(&Tensor::cat(&fused, 1)?)?;
        let x = self.batch_norm.forward_t(&x, false)?.relu()?;
        self.classifier.forward(&x)
    }
}

impl super::segmenter::Segmenter for Segformer {
    fn segment(&self, image: &PixelValues) -> Result<super::segmenter::Segmentation, ToolkitError> {
        let (height, width, logits) = self.logits(image)?;
        Ok(super::segmenter::Segmentation::Semantic {
            labels: self.labels,
            height,
            width,
            logits,
        })
    }

    fn subtasks(&self) -> &'static [&'static str] {
        &["semantic"]
    }
}
