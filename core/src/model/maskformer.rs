//! MaskFormer (`MaskFormerForInstanceSegmentation`), written from transformers 4.51's
//! `models/maskformer/modeling_maskformer.py` on candle's ops:
//!
//! - the backbone: transformers' own ResNet (`backbone_config` a `ResNetConfig`, the one DETR
//!   reads, [`super::detr`]), every stage in `out_features` a feature map;
//! - the pixel decoder (`MaskFormerPixelDecoder`): an FPN whose stem (3×3 convolution, GroupNorm
//!   of 32 groups, ReLU) reads the last feature map, then per finer feature map a lateral 1×1
//!   convolution and GroupNorm added to the coarser output upsampled (nearest) to its size,
//!   followed by the same conv block; a 3×3 `mask_projection` of the finest gives the pixel
//!   embeddings;
//! - the transformer module: the last backbone feature map (projected by a 1×1 convolution to
//!   the decoder's `d_model` when their widths differ) with sine positions
//!   (`MaskFormerSinePositionEmbedding`, normalized, the same numbers as DETR's over an unmasked
//!   map) read by a DETR decoder (no encoder) whose queries start at zero and whose query
//!   embeddings are `queries_embedder`, then the decoder's final layer norm;
//! - the heads: `class_predictor` (the labels plus "no object") and `mask_embedder`, a three
//!   layer MLP whose output dotted with every pixel embedding is the query's mask logits
//!   (`einsum("bqc,bchw->bqhw")`).
//!
//! The Swin backbone transformers defaults to (`MaskFormerSwinBackbone`) is not read here: a
//! checkpoint with one is refused at load with a message saying so.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{
    conv2d, conv2d_no_bias, group_norm, layer_norm, linear, Conv2d, Conv2dConfig, GroupNorm,
    LayerNorm, Linear, VarBuilder,
};
use serde_json::Value;

use super::detr::{sine_position, Config as DetrConfig, DecoderLayer, ResNet, ResNetConfig};
use super::loader::{var_builder, ModelFiles};
use super::segmenter::{MaskQueries, Segmentation, Segmenter};
use crate::error::ToolkitError;
use crate::vision::PixelValues;

/// `MaskFormerFPNConvLayer` or the lateral projection: a bias-free convolution, GroupNorm of
/// 32 groups, and (the conv layer only) ReLU.
struct ConvNorm {
    conv: Conv2d,
    norm: GroupNorm,
    relu: bool,
}

impl ConvNorm {
    fn load(
        vb: VarBuilder,
        (cin, cout): (usize, usize),
        kernel: usize,
        relu: bool,
    ) -> candle_core::Result<Self> {
        let cfg = Conv2dConfig {
            padding: kernel / 2,
            ..Default::default()
        };
        Ok(Self {
            conv: conv2d_no_bias(cin, cout, kernel, cfg, vb.pp("0"))?,
            norm: group_norm(32, cout, 1e-5, vb.pp("1"))?,
            relu,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let x = self.norm.forward(&self.conv.forward(x)?)?;
        if self.relu {
            x.relu()
        } else {
            Ok(x)
        }
    }
}

/// torch's `interpolate(mode="nearest")` of `[b, c, h, w]` to `out_h × out_w`: source index
/// `min(floor(i · (in / out)), in − 1)` with the scale in float32.
fn nearest(x: &Tensor, (out_h, out_w): (usize, usize)) -> candle_core::Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if (h, w) == (out_h, out_w) {
        return Ok(x.clone());
    }
    let index = |inp: usize, out: usize| -> Vec<u32> {
        let scale = inp as f32 / out as f32;
        (0..out)
            .map(|i| (((i as f32) * scale).floor() as usize).min(inp - 1) as u32)
            .collect()
    };
    let rows = Tensor::new(index(h, out_h), x.device())?;
    let cols = Tensor::new(index(w, out_w), x.device())?;
    x.index_select(&rows, 2)?.index_select(&cols, 3)
}

/// A loaded MaskFormer.
pub struct MaskFormer {
    backbone: ResNet,
    /// The backbone stages (1-based) whose outputs are the feature maps, in order.
    outputs: Vec<usize>,
    fpn_stem: ConvNorm,
    /// Coarse to fine: each `(lateral projection, conv block)`.
    fpn_layers: Vec<(ConvNorm, ConvNorm)>,
    mask_projection: Conv2d,
    input_projection: Option<Conv2d>,
    decoder: Vec<DecoderLayer>,
    decoder_norm: LayerNorm,
    /// `[1, queries, d_model]`.
    query_pos: Tensor,
    class_head: Linear,
    mask_embedder: [Linear; 3],
    d_model: usize,
    labels: usize,
    device: Device,
}

impl std::fmt::Debug for MaskFormer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaskFormer")
            .field("d_model", &self.d_model)
            .field("labels", &self.labels)
            .field("decoder_layers", &self.decoder.len())
            .finish_non_exhaustive()
    }
}

impl MaskFormer {
    /// Loads the model of `config` (`config.json`) with `labels` classes.
    pub fn load(
        files: &ModelFiles,
        config: &Value,
        labels: usize,
        device: &Device,
    ) -> Result<Self, ToolkitError> {
        let bad = |m: String| ToolkitError::model_load(format!("config.json: {m}"));
        let backbone_cfg = match config.get("backbone_config") {
            Some(v) if v.get("model_type").and_then(Value::as_str) == Some("resnet") => v,
            Some(v) if !v.is_null() => {
                return Err(bad(format!(
                    "MaskFormer's backbone_config is {:?}; only transformers' resnet backbone is supported (not swin)",
                    v.get("model_type").and_then(Value::as_str).unwrap_or("")
                )))
            }
            _ => {
                return Err(bad(
                    "MaskFormer without a backbone_config (transformers' default Swin) is not supported; only a resnet backbone_config is".into(),
                ))
            }
        };
        if config.get("use_timm_backbone").and_then(Value::as_bool) == Some(true) {
            return Err(bad("MaskFormer on a timm backbone is not supported".into()));
        }
        let resnet: ResNetConfig = serde_json::from_value(backbone_cfg.clone())
            .map_err(|e| bad(format!("invalid backbone_config: {e}")))?;
        let outputs = resnet
            .output_stages()
            .map_err(|e| bad(format!("backbone_config: {e}")))?;
        let spec = resnet.spec()?;
        let decoder_cfg: DetrConfig = serde_json::from_value(
            config
                .get("decoder_config")
                .cloned()
                .unwrap_or_else(|| serde_json::json!({})),
        )
        .map_err(|e| bad(format!("invalid decoder_config: {e}")))?;
        let usize_of = |k: &str, default: usize| {
            config
                .get(k)
                .and_then(Value::as_u64)
                .map_or(default, |n| n as usize)
        };
        let fpn = usize_of("fpn_feature_size", 256);
        let mask_size = usize_of("mask_feature_size", 256);
        let d = decoder_cfg.d_model;
        let heads = decoder_cfg.decoder_attention_heads;
        if heads == 0 || !d.is_multiple_of(heads) || !d.is_multiple_of(2) {
            return Err(bad(
                "decoder_config: d_model must be even and a multiple of decoder_attention_heads"
                    .into(),
            ));
        }
        if !fpn.is_multiple_of(32) || fpn == 0 {
            return Err(bad(format!(
                "fpn_feature_size {fpn} must be a multiple of 32 (GroupNorm's 32 groups)"
            )));
        }
        if labels == 0 || decoder_cfg.num_queries == 0 {
            return Err(bad(
                "a MaskFormer needs labels (id2label) and queries".into()
            ));
        }
        let vb = var_builder(files, DType::F32, device)?;
        let m = vb.pp("model");
        let pixel = m.pp("pixel_level_module");
        let backbone = ResNet::load(&pixel.pp("encoder"), &spec)?;
        let all = ResNet::stage_channels(&spec);
        let channels: Vec<usize> = outputs.iter().map(|&s| all[s - 1]).collect();
        let last = *channels
            .last()
            .ok_or_else(|| bad("the backbone outputs no feature map".into()))?;
        let fpn_vb = pixel.pp("decoder.fpn");
        let fpn_stem = ConvNorm::load(fpn_vb.pp("stem"), (last, fpn), 3, true)?;
        let fpn_layers = channels[..channels.len() - 1]
            .iter()
            .rev()
            .enumerate()
            .map(|(i, &lateral)| {
                let l = fpn_vb.pp(format!("layers.{i}"));
                Ok((
                    ConvNorm::load(l.pp("proj"), (lateral, fpn), 1, false)?,
                    ConvNorm::load(l.pp("block"), (fpn, fpn), 3, true)?,
                ))
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let mask_projection = conv2d(
            fpn,
            mask_size,
            3,
            Conv2dConfig {
                padding: 1,
                ..Default::default()
            },
            pixel.pp("decoder.mask_projection"),
        )?;
        let t = m.pp("transformer_module");
        let input_projection = if last != d {
            Some(conv2d(
                last,
                d,
                1,
                Conv2dConfig::default(),
                t.pp("input_projection"),
            )?)
        } else {
            None
        };
        let decoder = (0..decoder_cfg.decoder_layers)
            .map(|i| DecoderLayer::load(t.pp(format!("decoder.layers.{i}")), &decoder_cfg))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let e = vb.pp("mask_embedder");
        Ok(Self {
            backbone,
            outputs,
            fpn_stem,
            fpn_layers,
            mask_projection,
            input_projection,
            decoder,
            decoder_norm: layer_norm(d, 1e-5, t.pp("decoder.layernorm"))?,
            query_pos: t
                .get((decoder_cfg.num_queries, d), "queries_embedder.weight")?
                .unsqueeze(0)?,
            class_head: linear(d, labels + 1, vb.pp("class_predictor"))?,
            mask_embedder: [
                linear(d, d, e.pp("0.0"))?,
                linear(d, d, e.pp("1.0"))?,
                linear(d, mask_size, e.pp("2.0"))?,
            ],
            d_model: d,
            labels,
            device: device.clone(),
        })
    }
}

impl Segmenter for MaskFormer {
    fn subtasks(&self) -> &'static [&'static str] {
        &["panoptic", "instance", "semantic"]
    }

    fn segment(&self, image: &PixelValues) -> Result<Segmentation, ToolkitError> {
        let (ih, iw) = (image.height, image.width);
        let x = Tensor::from_slice(&image.data, (1, 3, ih, iw), &self.device)?;
        let stages = self.backbone.forward_stages(&x)?;
        let features: Vec<&Tensor> = self.outputs.iter().map(|&s| &stages[s - 1]).collect();
        let Some(&coarsest) = features.last() else {
            return Err(ToolkitError::Internal("no feature maps".into()));
        };
        let (_, _, h, w) = coarsest.dims4()?;
        if h == 0 || w == 0 {
            return Err(ToolkitError::Validation(format!(
                "the image is {iw}x{ih} after preprocessing, too small for the model's backbone; send a larger image"
            )));
        }
        // the pixel decoder
        let mut fpn = self.fpn_stem.forward(coarsest)?;
        for ((proj, block), left) in self.fpn_layers.iter().zip(features.iter().rev().skip(1)) {
            let left = proj.forward(left)?;
            let (_, _, lh, lw) = left.dims4()?;
            fpn = block.forward(&(nearest(&fpn, (lh, lw))? + left)?)?;
        }
        let pixels = self.mask_projection.forward(&fpn)?;
        let (_, c, mh, mw) = pixels.dims4()?;
        // the transformer module
        let src = match &self.input_projection {
            Some(p) => p.forward(coarsest)?,
            None => coarsest.clone(),
        };
        let d = self.d_model;
        let memory = src.flatten_from(2)?.transpose(1, 2)?.contiguous()?;
        let pos = Tensor::from_vec(
            sine_position((h, w), (h, w), d),
            (1, h * w, d),
            &self.device,
        )?;
        let mut hs = self.query_pos.zeros_like()?;
        for layer in &self.decoder {
            hs = layer.forward(&hs, &self.query_pos, &memory, &pos, None)?;
        }
        let hs = self.decoder_norm.forward(&hs)?.squeeze(0)?;
        let class_logits = self.class_head.forward(&hs)?;
        let [e0, e1, e2] = &self.mask_embedder;
        let emb = e2.forward(&e1.forward(&e0.forward(&hs)?.relu()?)?.relu()?)?;
        let masks = emb.matmul(&pixels.squeeze(0)?.reshape((c, mh * mw))?)?;
        let queries = hs.dim(0)?;
        Ok(Segmentation::MaskQueries(MaskQueries {
            queries,
            labels: self.labels,
            class_logits: class_logits
                .to_device(&Device::Cpu)?
                .flatten_all()?
                .to_vec1()?,
            masks: masks.to_device(&Device::Cpu)?.flatten_all()?.to_vec1()?,
            height: mh,
            width: mw,
        }))
    }
}
