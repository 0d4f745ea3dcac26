//! MobileNet V1 and V2 image classification (`MobileNetV1ForImageClassification`,
//! `MobileNetV2ForImageClassification`), written from transformers' `models/mobilenet_v1/` and
//! `models/mobilenet_v2/modeling_*.py` on candle's ops. Every convolution is followed by a batch
//! norm (`layer_norm_eps`, running statistics, folded into the convolution) and, but for V2's
//! projections, `hidden_act` (ReLU6 by default); with `tf_padding` (the default) inputs are padded
//! as TensorFlow's "SAME" does, asymmetrically, else by `(kernel - 1) / 2`.
//!
//! V1: a 3x3 stride-2 stem and 13 depthwise-separable pairs (a 3x3 depthwise, a 1x1 pointwise),
//! channels `max(int(depth · depth_multiplier), min_depth)`.
//! V2: a stem (3x3 stride 2, an optional 1x1 expansion, a 3x3 depthwise, a 1x1 projection), 16
//! inverted residuals (1x1 expansion by `expand_ratio`, 3x3 depthwise, 1x1 projection, the residual
//! where the shape is kept), channels scaled by `depth_multiplier` and rounded to multiples of
//! `depth_divisible_by` as TensorFlow's `make_divisible`; strides beyond `output_stride` turn into
//! dilations; a 1x1 head convolution to 1280 channels (`finegrained_output` keeps 1280 when the
//! multiplier is below 1). Both end in global average pooling and the classifier.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{linear, Linear, VarBuilder};
use serde::Deserialize;
use serde_json::Value;

use super::conv::{chain_size, global_average, logits_each, ConvAct, ConvLayer, ConvSpec, Padding};
use super::loader::{var_builder, ModelFiles};
use crate::error::ToolkitError;
use crate::vision::PixelValues;

/// Which network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MobileNetV1.
    V1,
    /// MobileNetV2.
    V2,
}

/// `MobileNetV1Config` and `MobileNetV2Config` (the fields the networks need, transformers'
/// defaults; V1 reads the first six).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
struct Config {
    num_channels: usize,
    depth_multiplier: f64,
    min_depth: usize,
    hidden_act: String,
    tf_padding: bool,
    layer_norm_eps: f64,
    depth_divisible_by: usize,
    expand_ratio: f64,
    output_stride: usize,
    first_layer_is_expansion: bool,
    finegrained_output: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            num_channels: 3,
            depth_multiplier: 1.0,
            min_depth: 8,
            hidden_act: "relu6".into(),
            tf_padding: true,
            layer_norm_eps: 0.001,
            depth_divisible_by: 8,
            expand_ratio: 6.0,
            output_stride: 32,
            first_layer_is_expansion: true,
            finegrained_output: true,
        }
    }
}

/// TensorFlow's `make_divisible` as transformers writes it: `value` to the nearest multiple of
/// `divisor` (halves up), at least `min_value`, and not below 90% of `value`.
fn make_divisible(value: usize, divisor: usize, min_value: usize) -> usize {
    let v = value as f64;
    // int(value + divisor / 2) // divisor * divisor
    let rounded = ((v + divisor as f64 / 2.0) as usize) / divisor * divisor;
    let mut new = min_value.max(rounded);
    if (new as f64) < 0.9 * v {
        new = new.saturating_add(divisor);
    }
    new
}

/// Whether `x` is a finite number above zero.
fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

/// `int(round(x))` with Python's rounding (half to even), for non-negative `x`.
fn py_round(x: f64) -> usize {
    x.round_ties_even().max(0.0) as usize
}

/// `MobileNetV{1,2}ConvLayer`: a convolution (no bias, TensorFlow's or symmetric padding), its
/// batch norm, an optional activation.
fn conv_layer(
    vb: VarBuilder,
    cfg: &Config,
    spec: ConvSpec,
    act: Option<ConvAct>,
) -> candle_core::Result<ConvLayer> {
    let padding = if cfg.tf_padding {
        Padding::TfSame
    } else {
        Padding::Symmetric((spec.kernel - 1) / 2 * spec.dilation)
    };
    ConvLayer::load(vb, spec.padding(padding), cfg.layer_norm_eps, act)
}

/// A sequence of convolution layers, with the residual around it when it keeps the shape.
struct Block {
    layers: Vec<ConvLayer>,
    residual: bool,
}

impl Block {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut y = x.clone();
        for l in &self.layers {
            y = l.forward(&y)?;
        }
        if self.residual {
            x + y
        } else {
            Ok(y)
        }
    }
}

/// A loaded MobileNet classifier.
pub struct MobileNet {
    version: Version,
    blocks: Vec<Block>,
    classifier: Linear,
    labels: usize,
    device: Device,
}

impl std::fmt::Debug for MobileNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MobileNet")
            .field("version", &self.version)
            .field("blocks", &self.blocks.len())
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

/// V1's layers: the stem and 13 depthwise-separable pairs, each a block of one layer; the last
/// channel count.
fn v1_blocks(
    base: &VarBuilder,
    cfg: &Config,
    act: ConvAct,
) -> candle_core::Result<(Vec<Block>, usize)> {
    let scaled = |depth: usize| ((depth as f64 * cfg.depth_multiplier) as usize).max(cfg.min_depth);
    let one = |layer: ConvLayer| Block {
        layers: vec![layer],
        residual: false,
    };
    let mut depth = 32;
    let mut out = scaled(depth);
    let mut blocks = vec![one(conv_layer(
        base.pp("conv_stem"),
        cfg,
        ConvSpec::new(cfg.num_channels, out, 3).stride(2),
        Some(act),
    )?)];
    let strides = [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1];
    for (i, &stride) in strides.iter().enumerate() {
        let in_ch = out;
        if stride == 2 || i == 0 {
            depth *= 2;
            out = scaled(depth);
        }
        blocks.push(one(conv_layer(
            base.pp(format!("layer.{}", 2 * i)),
            cfg,
            ConvSpec::new(in_ch, in_ch, 3).stride(stride).groups(in_ch),
            Some(act),
        )?));
        blocks.push(one(conv_layer(
            base.pp(format!("layer.{}", 2 * i + 1)),
            cfg,
            ConvSpec::new(in_ch, out, 1),
            Some(act),
        )?));
    }
    Ok((blocks, out))
}

/// V2's layers: the stem, 16 inverted residuals and the head convolution; the last channel count.
fn v2_blocks(
    base: &VarBuilder,
    cfg: &Config,
    act: ConvAct,
) -> candle_core::Result<(Vec<Block>, usize)> {
    let div = cfg.depth_divisible_by;
    let scaled = |c: usize| {
        make_divisible(
            py_round(c as f64 * cfg.depth_multiplier),
            div,
            cfg.min_depth,
        )
    };
    let channels: Vec<usize> = [
        16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320,
    ]
    .into_iter()
    .map(scaled)
    .collect();
    let strides = [2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1];
    let a = Some(act);

    let stem = base.pp("conv_stem");
    let expanded = scaled(32);
    let mut layers = vec![conv_layer(
        stem.pp("first_conv"),
        cfg,
        ConvSpec::new(cfg.num_channels, expanded, 3).stride(2),
        a,
    )?];
    if !cfg.first_layer_is_expansion {
        layers.push(conv_layer(
            stem.pp("expand_1x1"),
            cfg,
            ConvSpec::new(expanded, expanded, 1),
            a,
        )?);
    }
    layers.push(conv_layer(
        stem.pp("conv_3x3"),
        cfg,
        ConvSpec::new(expanded, expanded, 3).groups(expanded),
        a,
    )?);
    layers.push(conv_layer(
        stem.pp("reduce_1x1"),
        cfg,
        ConvSpec::new(expanded, channels[0], 1),
        None,
    )?);
    let mut blocks = vec![Block {
        layers,
        residual: false,
    }];

    let mut current_stride = 2;
    let mut dilation = 1;
    for (i, &s) in strides.iter().enumerate() {
        let (stride, layer_dilation) = if current_stride == cfg.output_stride {
            let d = dilation;
            dilation *= s;
            (1, d)
        } else {
            current_stride *= s;
            (s, 1)
        };
        let (in_ch, out_ch) = (channels[i], channels[i + 1]);
        let hidden = make_divisible(
            py_round(in_ch as f64 * cfg.expand_ratio),
            div,
            cfg.min_depth,
        );
        let l = base.pp(format!("layer.{i}"));
        blocks.push(Block {
            layers: vec![
                conv_layer(l.pp("expand_1x1"), cfg, ConvSpec::new(in_ch, hidden, 1), a)?,
                conv_layer(
                    l.pp("conv_3x3"),
                    cfg,
                    ConvSpec::new(hidden, hidden, 3)
                        .stride(stride)
                        .groups(hidden)
                        .dilation(layer_dilation),
                    a,
                )?,
                conv_layer(
                    l.pp("reduce_1x1"),
                    cfg,
                    ConvSpec::new(hidden, out_ch, 1),
                    None,
                )?,
            ],
            residual: stride == 1 && in_ch == out_ch,
        });
    }
    let last = channels[16];
    let out = if cfg.finegrained_output && cfg.depth_multiplier < 1.0 {
        1280
    } else {
        scaled(1280)
    };
    blocks.push(Block {
        layers: vec![conv_layer(
            base.pp("conv_1x1"),
            cfg,
            ConvSpec::new(last, out, 1),
            a,
        )?],
        residual: false,
    });
    Ok((blocks, out))
}

impl MobileNet {
    /// Loads the model of `config` (`config.json`) with `labels` classes.
    pub fn load(
        files: &ModelFiles,
        config: &Value,
        labels: usize,
        version: Version,
        device: &Device,
    ) -> Result<Self, ToolkitError> {
        let cfg: Config = serde_json::from_value(config.clone()).map_err(|e| {
            ToolkitError::model_load(format!("invalid mobilenet config in config.json: {e}"))
        })?;
        if cfg.num_channels != 3 {
            return Err(ToolkitError::model_load(
                "config.json: num_channels must be 3 (RGB)",
            ));
        }
        if !positive(cfg.depth_multiplier) {
            return Err(ToolkitError::model_load(
                "config.json: depth_multiplier must be greater than zero",
            ));
        }
        if version == Version::V2 {
            if !(1..=1 << 20).contains(&cfg.depth_divisible_by)
                || !(1..=1 << 20).contains(&cfg.min_depth)
            {
                return Err(ToolkitError::model_load(
                    "config.json: depth_divisible_by and min_depth must be positive (and below a million)",
                ));
            }
            if !positive(cfg.expand_ratio) {
                return Err(ToolkitError::model_load(
                    "config.json: expand_ratio must be greater than zero",
                ));
            }
            // channels beyond any real network: refused before their weights are asked for
            if cfg.depth_multiplier * 1280.0 > 1e6 || cfg.expand_ratio * 320.0 > 1e6 {
                return Err(ToolkitError::model_load(
                    "config.json: depth_multiplier or expand_ratio is out of range",
                ));
            }
        } else if cfg.depth_multiplier * 1024.0 > 1e6 || !(1..=1 << 20).contains(&cfg.min_depth) {
            return Err(ToolkitError::model_load(
                "config.json: depth_multiplier is out of range or min_depth zero",
            ));
        }
        if labels == 0 {
            return Err(ToolkitError::model_load(
                "config.json has no labels (id2label or num_labels): not an image classifier",
            ));
        }
        let act = ConvAct::parse(&cfg.hidden_act)?;
        let vb = var_builder(files, DType::F32, device)?;
        let (blocks, last) = match version {
            Version::V1 => v1_blocks(&vb.pp("mobilenet_v1"), &cfg, act)?,
            Version::V2 => v2_blocks(&vb.pp("mobilenet_v2"), &cfg, act)?,
        };
        Ok(Self {
            version,
            blocks,
            classifier: linear(last, labels, vb.pp("classifier"))?,
            labels,
            device: device.clone(),
        })
    }

    fn forward(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = pixels.clone();
        for b in &self.blocks {
            x = b.forward(&x)?;
        }
        // the classifier's dropout is the identity in eval mode
        self.classifier.forward(&global_average(&x)?)
    }
}

impl super::image_classifier::ImageClassifier for MobileNet {
    fn input_size(&self) -> Option<(usize, usize)> {
        None
    }

    fn logits(&self, images: &[PixelValues]) -> Result<Vec<Vec<f32>>, ToolkitError> {
        let fits = |h, w| {
            let convs = self
                .blocks
                .iter()
                .flat_map(|b| b.layers.iter().map(|l| &l.conv));
            chain_size(convs, h, w).is_some()
        };
        logits_each(images, self.labels, &self.device, fits, |x| self.forward(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_round_as_transformers_make_divisible() {
        // transformers' make_divisible / apply_depth_multiplier
        assert_eq!(make_divisible(16, 8, 8), 16);
        assert_eq!(make_divisible(6, 8, 8), 8);
        assert_eq!(make_divisible(12, 8, 8), 16);
        // 11 -> 8 is below 90% of 11: one more step, 16
        assert_eq!(make_divisible(11, 8, 8), 16);
        assert_eq!(make_divisible(100, 8, 8), 104);
        // 20 -> 16 is below 90% of 20: 32
        assert_eq!(make_divisible(20, 16, 8), 32);
        assert_eq!(make_divisible(36, 8, 8), 40);
        // Python's round: 24 * 0.35 = 8.4 -> 8; 160 * 0.35 = 56; 2.5 -> 2 (half to even)
        assert_eq!(py_round(24.0 * 0.35), 8);
        assert_eq!(py_round(2.5), 2);
        assert_eq!(py_round(3.5), 4);
    }
}
