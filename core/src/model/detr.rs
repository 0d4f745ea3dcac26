//! DETR object detection (`DetrForObjectDetection`), written from transformers 4.51's
//! `models/detr/modeling_detr.py` on candle's ops:
//!
//! - the convolutional backbone, a ResNet of basic or bottleneck blocks run up to the last
//!   feature map it outputs: transformers' own (`use_timm_backbone: false`, `backbone_config` a
//!   `ResNetConfig`, `models/resnet/modeling_resnet.py`) or timm's (`use_timm_backbone: true`,
//!   `backbone` one of timm 1.0's plain-stem `resnet*`, with `backbone_kwargs`, as
//!   `DetrConvEncoder` builds it through `timm.create_model(..., features_only=True)`), every
//!   batch norm frozen as `DetrFrozenBatchNorm2d` computes it
//!   (`scale = weight · (running_var + 1e-5).rsqrt()`, `x · scale + (bias − running_mean · scale)`);
//! - the input projection (a 1×1 convolution to `d_model`) and `DetrSinePositionEmbedding`
//!   (`normalize=True`, temperature 10000, scale 2π, in float32 as torch computes it) over the
//!   feature map's pixel mask;
//! - the post-norm encoder (positions added to the queries and keys only, never the values);
//! - the decoder: queries that start at zero, the query position embeddings added to the queries
//!   and keys of the self-attention and to the queries of the cross-attention, the feature map's
//!   positions to the cross-attention's keys, post-norm, then the decoder's final layer norm;
//! - the heads: a linear class head (the labels plus "no object") and a three-layer box MLP
//!   (`sigmoid`: centre x, centre y, width, height relative to the image).
//!
//! transformers' pipeline processes one image at a time: `DetrImageProcessor` pads it to its own
//! size, so its `pixel_mask` is all ones and the attention masks mask nothing, unless the
//! processor has a `pad_size`: then the image is padded with zeros at its bottom and right, and
//! the mask (the picture's top-left region, downsampled to the feature map as torch's nearest
//! interpolation does) shapes the position embedding and masks the padding's keys in the
//! encoder's and the decoder's cross-attention.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{
    conv2d, conv2d_no_bias, layer_norm, linear, Conv2d, Conv2dConfig, LayerNorm, Linear, VarBuilder,
};
use serde::Deserialize;
use serde_json::Value;

use super::config::Activation;
use super::layers::{activate, attend, split_heads};
use super::loader::{var_builder, ModelFiles};
use super::object_detector::{Detections, ObjectDetector};
use crate::error::ToolkitError;
use crate::vision::PixelValues;

fn yes() -> bool {
    true
}
fn relu() -> Activation {
    Activation::Relu
}
fn three() -> usize {
    3
}
fn d_model() -> usize {
    256
}
fn six() -> usize {
    6
}
fn eight() -> usize {
    8
}
fn ffn() -> usize {
    2048
}
fn hundred() -> usize {
    100
}
fn sine() -> String {
    "sine".into()
}

/// `DetrConfig` (the fields the network needs; transformers' defaults).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Config {
    /// transformers' own backbone (`backbone_config`) when false, timm's (`backbone`,
    /// `backbone_kwargs`) when true.
    #[serde(default = "yes")]
    use_timm_backbone: bool,
    #[serde(default)]
    backbone_config: Option<Value>,
    #[serde(default = "d_model")]
    pub(crate) d_model: usize,
    #[serde(default = "six")]
    encoder_layers: usize,
    #[serde(default = "six")]
    pub(crate) decoder_layers: usize,
    #[serde(default = "eight")]
    encoder_attention_heads: usize,
    #[serde(default = "eight")]
    pub(crate) decoder_attention_heads: usize,
    #[serde(default = "ffn")]
    encoder_ffn_dim: usize,
    #[serde(default = "ffn")]
    pub(crate) decoder_ffn_dim: usize,
    #[serde(default = "hundred")]
    pub(crate) num_queries: usize,
    #[serde(default = "relu")]
    pub(crate) activation_function: Activation,
    #[serde(default = "sine")]
    position_embedding_type: String,
}

fn resnet_embedding() -> usize {
    64
}
fn resnet_hidden() -> Vec<usize> {
    vec![256, 512, 1024, 2048]
}
fn resnet_depths() -> Vec<usize> {
    vec![3, 4, 6, 3]
}
fn bottleneck() -> String {
    "bottleneck".into()
}

/// `ResNetConfig` (the fields the backbone needs; transformers' defaults).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ResNetConfig {
    #[serde(default = "three")]
    num_channels: usize,
    #[serde(default = "resnet_embedding")]
    embedding_size: usize,
    #[serde(default = "resnet_hidden")]
    hidden_sizes: Vec<usize>,
    #[serde(default = "resnet_depths")]
    depths: Vec<usize>,
    #[serde(default = "bottleneck")]
    layer_type: String,
    #[serde(default = "relu")]
    hidden_act: Activation,
    #[serde(default)]
    downsample_in_first_stage: bool,
    #[serde(default)]
    downsample_in_bottleneck: bool,
    #[serde(default)]
    out_features: Option<Vec<String>>,
    #[serde(default)]
    out_indices: Option<Vec<i64>>,
}

impl ResNetConfig {
    /// The index in `["stem", "stage1", ...]` of the feature map DETR uses: the backbone's last
    /// output (`out_indices`, else `out_features`, else the last stage, as transformers'
    /// `get_aligned_output_features_output_indices`).
    fn last_output(&self) -> Result<usize, String> {
        let stages = self.depths.len();
        let names: Vec<String> = std::iter::once("stem".to_owned())
            .chain((1..=stages).map(|i| format!("stage{i}")))
            .collect();
        if let Some(&i) = self.out_indices.as_ref().and_then(|v| v.last()) {
            let n = names.len() as i64;
            let i = if i < 0 { i + n } else { i };
            return usize::try_from(i)
                .ok()
                .filter(|&i| i < names.len())
                .ok_or_else(|| format!("out_indices names a stage past the backbone's {stages}"));
        }
        if let Some(f) = self.out_features.as_ref().and_then(|v| v.last()) {
            return names
                .iter()
                .position(|n| n == f)
                .ok_or_else(|| format!("out_features names {f:?}, not one of {names:?}"));
        }
        Ok(stages)
    }

    /// The stages (1 = `stage1`; 0, the stem, is refused) whose feature maps the backbone
    /// outputs, in order (`out_indices`, else `out_features`, else the last stage).
    pub(crate) fn output_stages(&self) -> Result<Vec<usize>, String> {
        let stages = self.depths.len();
        let names: Vec<String> = std::iter::once("stem".to_owned())
            .chain((1..=stages).map(|i| format!("stage{i}")))
            .collect();
        let picked: Vec<usize> = if let Some(v) = &self.out_indices {
            v.iter()
                .map(|&i| {
                    let n = names.len() as i64;
                    let i = if i < 0 { i + n } else { i };
                    usize::try_from(i)
                        .ok()
                        .filter(|&i| i < names.len())
                        .ok_or_else(|| {
                            format!("out_indices names a stage past the backbone's {stages}")
                        })
                })
                .collect::<Result<_, _>>()?
        } else if let Some(v) = &self.out_features {
            v.iter()
                .map(|f| {
                    names
                        .iter()
                        .position(|n| n == f)
                        .ok_or_else(|| format!("out_features names {f:?}, not one of {names:?}"))
                })
                .collect::<Result<_, _>>()?
        } else {
            vec![stages]
        };
        if picked.is_empty() || picked.contains(&0) || picked.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!(
                "the backbone's outputs {picked:?} must be stages after the stem, in order"
            ));
        }
        Ok(picked)
    }

    /// The backbone this configuration describes.
    pub(crate) fn spec(&self) -> Result<Backbone, ToolkitError> {
        let bad = |m: String| ToolkitError::model_load(format!("config.json backbone_config: {m}"));
        if self.depths.len() != self.hidden_sizes.len() || self.depths.is_empty() {
            return Err(bad(
                "depths and hidden_sizes must name the same stages".into()
            ));
        }
        let bottleneck = match self.layer_type.as_str() {
            "bottleneck" => true,
            "basic" => false,
            other => {
                return Err(bad(format!(
                    "layer_type {other:?} is not basic or bottleneck"
                )))
            }
        };
        let last = self.last_output().map_err(bad)?;
        Ok(Backbone {
            naming: Naming::Transformers,
            in_channels: self.num_channels,
            stem_channels: self.embedding_size,
            widths: self
                .hidden_sizes
                .iter()
                .map(|&c| if bottleneck { c / 4 } else { c })
                .collect(),
            outputs: self.hidden_sizes.clone(),
            depths: self.depths.clone(),
            bottleneck,
            act: self.hidden_act,
            first_stride: if self.downsample_in_first_stage { 2 } else { 1 },
            stride_in_first_conv: self.downsample_in_bottleneck,
            // "stem" is the embedder's output, after its max pool
            stages: last,
            pooled: true,
        })
    }
}

/// The timm ResNets a DETR names as its `backbone` (`use_timm_backbone: true`): timm 1.0's
/// `resnet*` of the plain stem (a 7×7 convolution of 64 channels and a max pool), their block
/// and stage depths.
fn timm_resnet(name: &str) -> Option<(bool, [usize; 4])> {
    Some(match name {
        "resnet18" => (false, [2, 2, 2, 2]),
        "resnet34" => (false, [3, 4, 6, 3]),
        "resnet26" => (true, [2, 2, 2, 2]),
        "resnet50" => (true, [3, 4, 6, 3]),
        "resnet101" => (true, [3, 4, 23, 3]),
        "resnet152" => (true, [3, 8, 36, 3]),
        _ => return None,
    })
}

/// `backbone_kwargs` of a timm backbone: what `DetrConvEncoder` hands `timm.create_model`
/// besides `features_only=True`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimmKwargs {
    #[serde(default)]
    out_indices: Option<Vec<usize>>,
    #[serde(default)]
    in_chans: Option<usize>,
    #[serde(default)]
    layers: Option<Vec<usize>>,
    #[serde(default)]
    channels: Option<Vec<usize>>,
}

/// The backbone of a DETR whose `use_timm_backbone` is true, from `backbone`,
/// `backbone_kwargs`, `num_channels` and `dilation`, as `DetrConvEncoder` builds it with
/// `timm.create_model(backbone, features_only=True, out_indices=..., in_chans=..., **kwargs)`.
fn timm_spec(config: &Value) -> Result<Backbone, ToolkitError> {
    let bad = |m: String| ToolkitError::model_load(format!("config.json: {m}"));
    let name = config
        .get("backbone")
        .and_then(Value::as_str)
        .unwrap_or("resnet50");
    let (bottleneck, depths) = timm_resnet(name).ok_or_else(|| {
        bad(format!(
            "the timm backbone {name:?} is not supported (resnet18, resnet34, resnet26, resnet50, resnet101 or resnet152)"
        ))
    })?;
    if config.get("dilation").and_then(Value::as_bool) == Some(true) {
        return Err(bad(
            "a dilated timm backbone (dilation: true, the DC5 variants) is not supported".into(),
        ));
    }
    let kwargs: TimmKwargs = match config.get("backbone_kwargs") {
        None | Some(Value::Null) => TimmKwargs::default(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| bad(format!("backbone_kwargs this server cannot build: {e}")))?,
    };
    let depths = kwargs.layers.unwrap_or(depths.to_vec());
    let widths = kwargs.channels.unwrap_or(vec![64, 128, 256, 512]);
    if depths.len() != widths.len() || depths.is_empty() {
        return Err(bad(
            "backbone_kwargs: layers and channels must name the same stages".into(),
        ));
    }
    // feature 0 is the stem's activation (before the max pool), feature i the i-th stage's
    let last = kwargs
        .out_indices
        .as_ref()
        .map_or(4, |v| v.last().copied().unwrap_or(4));
    if last > depths.len() {
        return Err(bad(format!(
            "backbone_kwargs: out_indices names feature {last} of a backbone of {} stages",
            depths.len()
        )));
    }
    let in_channels = kwargs
        .in_chans
        .or_else(|| {
            config
                .get("num_channels")
                .and_then(Value::as_u64)
                .map(|n| n as usize)
        })
        .unwrap_or(3);
    Ok(Backbone {
        naming: Naming::Timm,
        in_channels,
        stem_channels: 64,
        outputs: widths
            .iter()
            .map(|&c| if bottleneck { c * 4 } else { c })
            .collect(),
        widths,
        depths,
        bottleneck,
        act: Activation::Relu,
        first_stride: 1,
        stride_in_first_conv: false,
        stages: last,
        pooled: last > 0,
    })
}

/// Whose weight names a backbone has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Naming {
    /// transformers' `ResNetBackbone`: `embedder.embedder.{convolution,normalization}`,
    /// `encoder.stages.{i}.layers.{j}.layer.{k}.{convolution,normalization}`,
    /// `...shortcut.{convolution,normalization}`.
    Transformers,
    /// timm's `ResNet` (through `FeatureListNet`): `conv1`, `bn1`, `layer{i+1}.{j}.conv{k+1}`,
    /// `...bn{k+1}`, `...downsample.{0,1}`.
    Timm,
}

impl Naming {
    /// The stem's convolution and norm.
    fn stem(self) -> (&'static str, &'static str) {
        match self {
            Naming::Transformers => (
                "embedder.embedder.convolution",
                "embedder.embedder.normalization",
            ),
            Naming::Timm => ("conv1", "bn1"),
        }
    }

    /// The prefix of stage `i`'s block `j`.
    fn block(self, i: usize, j: usize) -> String {
        match self {
            Naming::Transformers => format!("encoder.stages.{i}.layers.{j}"),
            Naming::Timm => format!("layer{}.{j}", i + 1),
        }
    }

    /// A block's `k`-th convolution and its norm.
    fn conv(self, k: usize) -> (String, String) {
        match self {
            Naming::Transformers => (
                format!("layer.{k}.convolution"),
                format!("layer.{k}.normalization"),
            ),
            Naming::Timm => (format!("conv{}", k + 1), format!("bn{}", k + 1)),
        }
    }

    /// A block's shortcut convolution and norm.
    fn shortcut(self) -> (&'static str, &'static str) {
        match self {
            Naming::Transformers => ("shortcut.convolution", "shortcut.normalization"),
            Naming::Timm => ("downsample.0", "downsample.1"),
        }
    }
}

/// A ResNet backbone's shape, whichever library built it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Backbone {
    naming: Naming,
    in_channels: usize,
    stem_channels: usize,
    /// Each stage's inner width (a bottleneck's reduced channels, a basic block's channels).
    widths: Vec<usize>,
    /// Each stage's output channels.
    outputs: Vec<usize>,
    depths: Vec<usize>,
    bottleneck: bool,
    /// The stem's activation and each block's after the residual sum (the convolutions inside a
    /// block always use ReLU).
    act: Activation,
    /// The first stage's stride (later stages stride by 2).
    first_stride: usize,
    /// Whether a bottleneck strides in its first (1×1) convolution rather than its 3×3 one.
    stride_in_first_conv: bool,
    /// How many stages run before the feature map DETR reads.
    stages: usize,
    /// Whether the stem's max pool runs (timm's feature 0 is read before it).
    pooled: bool,
}

/// `DetrFrozenBatchNorm2d`: `x · scale + shift`, both `[1, C, 1, 1]`.
struct FrozenBatchNorm {
    scale: Tensor,
    shift: Tensor,
}

impl FrozenBatchNorm {
    fn load(vb: VarBuilder, c: usize) -> candle_core::Result<Self> {
        let shape = (1, c, 1, 1);
        let weight = vb.get(c, "weight")?.reshape(shape)?;
        let bias = vb.get(c, "bias")?.reshape(shape)?;
        let mean = vb.get(c, "running_mean")?.reshape(shape)?;
        let var = vb.get(c, "running_var")?.reshape(shape)?;
        // its own epsilon, whatever the backbone's config says
        let scale = (weight * (var + 1e-5)?.sqrt()?.recip()?)?;
        let shift = (bias - (mean * &scale)?)?;
        Ok(Self { scale, shift })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.broadcast_mul(&self.scale)?.broadcast_add(&self.shift)
    }
}

/// A bias-free convolution (padding `k / 2`), its frozen norm, an activation
/// (transformers' `ResNetConvLayer`; timm's `convN`, `bnN`, `actN`).
struct ConvLayer {
    conv: Conv2d,
    norm: FrozenBatchNorm,
    act: Option<Activation>,
}

impl ConvLayer {
    fn load(
        vb: &VarBuilder,
        (conv_name, norm_name): (&str, &str),
        (cin, cout): (usize, usize),
        (kernel, stride): (usize, usize),
        act: Option<Activation>,
    ) -> candle_core::Result<Self> {
        let cfg = Conv2dConfig {
            padding: kernel / 2,
            stride,
            ..Default::default()
        };
        Ok(Self {
            conv: conv2d_no_bias(cin, cout, kernel, cfg, vb.pp(conv_name))?,
            norm: FrozenBatchNorm::load(vb.pp(norm_name), cout)?,
            act,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let x = self.norm.forward(&self.conv.forward(x)?)?;
        match self.act {
            Some(a) => activate(&x, a),
            None => Ok(x),
        }
    }
}

/// A basic or bottleneck residual block: `act(convs(x) + shortcut(x))`.
struct ResidualLayer {
    layers: Vec<ConvLayer>,
    /// A strided 1×1 convolution and norm where the shape changes.
    shortcut: Option<ConvLayer>,
    act: Activation,
}

impl ResidualLayer {
    fn load(
        vb: &VarBuilder,
        spec: &Backbone,
        (cin, width, cout): (usize, usize, usize),
        stride: usize,
    ) -> candle_core::Result<Self> {
        let names = spec.naming;
        let shortcut = if cin != cout || stride != 1 {
            Some(ConvLayer::load(
                vb,
                names.shortcut(),
                (cin, cout),
                (1, stride),
                None,
            )?)
        } else {
            None
        };
        let conv = |k: usize, io: (usize, usize), ks: (usize, usize), act: bool| {
            let (c, n) = names.conv(k);
            ConvLayer::load(vb, (&c, &n), io, ks, act.then_some(Activation::Relu))
        };
        let layers = if spec.bottleneck {
            let (s1, s2) = if spec.stride_in_first_conv {
                (stride, 1)
            } else {
                (1, stride)
            };
            vec![
                conv(0, (cin, width), (1, s1), true)?,
                conv(1, (width, width), (3, s2), true)?,
                conv(2, (width, cout), (1, 1), false)?,
            ]
        } else {
            vec![
                conv(0, (cin, width), (3, stride), true)?,
                conv(1, (width, cout), (3, 1), false)?,
            ]
        };
        Ok(Self {
            layers,
            shortcut,
            act: spec.act,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        for layer in &self.layers {
            h = layer.forward(&h)?;
        }
        let residual = match &self.shortcut {
            Some(s) => s.forward(x)?,
            None => x.clone(),
        };
        activate(&(h + residual)?, self.act)
    }
}

/// The ResNet backbone run up to the feature map DETR reads.
pub(crate) struct ResNet {
    stem: ConvLayer,
    pooled: bool,
    stages: Vec<Vec<ResidualLayer>>,
    pub(crate) channels: usize,
}

impl ResNet {
    pub(crate) fn load(vb: &VarBuilder, spec: &Backbone) -> candle_core::Result<Self> {
        let stem = ConvLayer::load(
            vb,
            spec.naming.stem(),
            (spec.in_channels, spec.stem_channels),
            (7, 2),
            Some(spec.act),
        )?;
        let mut stages = Vec::new();
        let mut cin = spec.stem_channels;
        for i in 0..spec.stages {
            let (width, cout, depth) = (spec.widths[i], spec.outputs[i], spec.depths[i]);
            let stride = if i == 0 { spec.first_stride } else { 2 };
            let layers = (0..depth)
                .map(|j| {
                    let (c, s) = if j == 0 { (cin, stride) } else { (cout, 1) };
                    ResidualLayer::load(&vb.pp(spec.naming.block(i, j)), spec, (c, width, cout), s)
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            stages.push(layers);
            cin = cout;
        }
        Ok(Self {
            stem,
            pooled: spec.pooled,
            stages,
            channels: cin,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut stages = self.forward_stages(x)?;
        stages
            .pop()
            .ok_or_else(|| candle_core::Error::Msg("a backbone of no stages".into()))
    }

    /// The feature map after the stem (when no stage runs) or after each stage, in order.
    pub(crate) fn forward_stages(&self, x: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        let mut h = self.stem.forward(x)?;
        if self.pooled {
            // nn.MaxPool2d(kernel_size=3, stride=2, padding=1): the padding never wins the max
            h = pad_neg_inf(&h)?.max_pool2d_with_stride(3, 2)?;
        }
        if self.stages.is_empty() {
            return Ok(vec![h]);
        }
        let mut out = Vec::with_capacity(self.stages.len());
        for stage in &self.stages {
            for layer in stage {
                h = layer.forward(&h)?;
            }
            out.push(h.clone());
        }
        Ok(out)
    }

    /// Each stage's output channels.
    pub(crate) fn stage_channels(spec: &Backbone) -> &[usize] {
        &spec.outputs[..spec.stages]
    }
}

/// Pads `[b, c, h, w]` by one on every side with `-inf`.
fn pad_neg_inf(x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let col = Tensor::full(f32::NEG_INFINITY, (b, c, h, 1), x.device())?;
    let x = Tensor::cat(&[&col, x, &col], 3)?;
    let row = Tensor::full(f32::NEG_INFINITY, (b, c, 1, w + 2), x.device())?;
    Tensor::cat(&[&row, &x, &row], 2)
}

/// `DetrAttention`: multi-head attention whose queries and keys carry position embeddings that
/// its values do not.
struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    heads: usize,
}

impl Attention {
    fn load(vb: VarBuilder, d: usize, heads: usize) -> candle_core::Result<Self> {
        Ok(Self {
            q: linear(d, d, vb.pp("q_proj"))?,
            k: linear(d, d, vb.pp("k_proj"))?,
            v: linear(d, d, vb.pp("v_proj"))?,
            out: linear(d, d, vb.pp("out_proj"))?,
            heads,
        })
    }

    /// `queries` `[b, t, d]` and `keys` `[b, s, d]` with their positions added, `values`
    /// `[b, s, d]` without; `mask`: an additive `[b, 1, 1, s]` key mask, or none.
    fn forward(
        &self,
        queries: &Tensor,
        keys: &Tensor,
        values: &Tensor,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let d = queries.dim(2)?;
        let scaling = ((d / self.heads) as f64).powf(-0.5);
        // transformers scales the projected queries before the product (then the scores by 1)
        let q = split_heads(&(self.q.forward(queries)? * scaling)?, self.heads)?;
        let k = split_heads(&self.k.forward(keys)?, self.heads)?;
        let v = split_heads(&self.v.forward(values)?, self.heads)?;
        self.out.forward(&attend(&q, &k, &v, 1.0, mask)?)
    }
}

/// The feed-forward block of both layer kinds: `fc2(act(fc1(x)))`.
struct FeedForward {
    fc1: Linear,
    fc2: Linear,
    act: Activation,
}

impl FeedForward {
    fn load(vb: &VarBuilder, d: usize, ffn: usize, act: Activation) -> candle_core::Result<Self> {
        Ok(Self {
            fc1: linear(d, ffn, vb.pp("fc1"))?,
            fc2: linear(ffn, d, vb.pp("fc2"))?,
            act,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.fc2
            .forward(&activate(&self.fc1.forward(x)?, self.act)?)
    }
}

/// `DetrEncoderLayer` (post-norm).
struct EncoderLayer {
    attn: Attention,
    attn_norm: LayerNorm,
    ff: FeedForward,
    ff_norm: LayerNorm,
}

impl EncoderLayer {
    fn load(vb: VarBuilder, cfg: &Config) -> candle_core::Result<Self> {
        let d = cfg.d_model;
        Ok(Self {
            attn: Attention::load(vb.pp("self_attn"), d, cfg.encoder_attention_heads)?,
            attn_norm: layer_norm(d, 1e-5, vb.pp("self_attn_layer_norm"))?,
            ff: FeedForward::load(&vb, d, cfg.encoder_ffn_dim, cfg.activation_function)?,
            ff_norm: layer_norm(d, 1e-5, vb.pp("final_layer_norm"))?,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        pos: &Tensor,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let qk = (x + pos)?;
        let a = self.attn.forward(&qk, &qk, x, mask)?;
        let x = self.attn_norm.forward(&(x + a)?)?;
        let f = self.ff.forward(&x)?;
        self.ff_norm.forward(&(x + f)?)
    }
}

/// `DetrDecoderLayer` (post-norm).
pub(crate) struct DecoderLayer {
    self_attn: Attention,
    self_norm: LayerNorm,
    cross_attn: Attention,
    cross_norm: LayerNorm,
    ff: FeedForward,
    ff_norm: LayerNorm,
}

impl DecoderLayer {
    pub(crate) fn load(vb: VarBuilder, cfg: &Config) -> candle_core::Result<Self> {
        let (d, heads) = (cfg.d_model, cfg.decoder_attention_heads);
        Ok(Self {
            self_attn: Attention::load(vb.pp("self_attn"), d, heads)?,
            self_norm: layer_norm(d, 1e-5, vb.pp("self_attn_layer_norm"))?,
            cross_attn: Attention::load(vb.pp("encoder_attn"), d, heads)?,
            cross_norm: layer_norm(d, 1e-5, vb.pp("encoder_attn_layer_norm"))?,
            ff: FeedForward::load(&vb, d, cfg.decoder_ffn_dim, cfg.activation_function)?,
            ff_norm: layer_norm(d, 1e-5, vb.pp("final_layer_norm"))?,
        })
    }

    /// `x`: the queries `[b, q, d]`; `query_pos` their position embeddings; `memory` the
    /// encoder's output with its positions `pos` and key mask.
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        query_pos: &Tensor,
        memory: &Tensor,
        pos: &Tensor,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let qk = x.broadcast_add(query_pos)?;
        let a = self.self_attn.forward(&qk, &qk, x, None)?;
        let x = self.self_norm.forward(&(x + a)?)?;
        let q = x.broadcast_add(query_pos)?;
        let k = (memory + pos)?;
        let c = self.cross_attn.forward(&q, &k, memory, mask)?;
        let x = self.cross_norm.forward(&(x + c)?)?;
        let f = self.ff.forward(&x)?;
        self.ff_norm.forward(&(x + f)?)
    }
}

/// `DetrSinePositionEmbedding(d_model / 2, normalize=True)` of a `h × w` feature map whose
/// pixel mask is one on its top-left `valid_h × valid_w` region: `[h·w, d_model]` in row-major
/// token order, the `y` half before the `x` half, each as interleaved `sin`/`cos` pairs. All in
/// float32, in torch's order of operations.
pub(crate) fn sine_position(
    (h, w): (usize, usize),
    (valid_h, valid_w): (usize, usize),
    d_model: usize,
) -> Vec<f32> {
    let n = d_model / 2;
    let scale = 2.0 * std::f32::consts::PI;
    // dim_t = temperature ** (2 * floor(k / 2) / n)
    let dim_t: Vec<f32> = (0..n)
        .map(|k| 10000f32.powf(2.0 * (k / 2) as f32 / n as f32))
        .collect();
    let embed = |v: f32, out: &mut [f32]| {
        for (k, (o, t)) in out.iter_mut().zip(&dim_t).enumerate() {
            let a = v / t;
            *o = if k % 2 == 0 { a.sin() } else { a.cos() };
        }
    };
    // the mask's cumulative sums down the columns (y) and along the rows (x), each divided by
    // its last value plus 1e-6: 1, 2, ... inside the valid region, held past it, and zero in
    // the columns (rows) that are all padding
    let cumulative = |k: usize, valid: usize, inside: bool| {
        if inside {
            (k + 1).min(valid) as f32 / (valid as f32 + 1e-6) * scale
        } else {
            0.0
        }
    };
    let mut pos = vec![0f32; h * w * 2 * n];
    for i in 0..h {
        for j in 0..w {
            let y = cumulative(i, valid_h, j < valid_w);
            let x = cumulative(j, valid_w, i < valid_h);
            let row = &mut pos[(i * w + j) * 2 * n..(i * w + j + 1) * 2 * n];
            let (py, px) = row.split_at_mut(n);
            embed(y, py);
            embed(x, px);
        }
    }
    pos
}

fn mlp(vb: VarBuilder, d: usize, out: usize) -> candle_core::Result<[Linear; 3]> {
    Ok([
        linear(d, d, vb.pp("layers.0"))?,
        linear(d, d, vb.pp("layers.1"))?,
        linear(d, out, vb.pp("layers.2"))?,
    ])
}

/// A loaded DETR.
pub struct Detr {
    backbone: ResNet,
    input_projection: Conv2d,
    encoder: Vec<EncoderLayer>,
    decoder: Vec<DecoderLayer>,
    decoder_norm: LayerNorm,
    /// `[1, queries, d_model]`.
    query_pos: Tensor,
    class_head: Linear,
    box_head: [Linear; 3],
    d_model: usize,
    queries: usize,
    labels: usize,
    device: Device,
}

impl std::fmt::Debug for Detr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detr")
            .field("d_model", &self.d_model)
            .field("queries", &self.queries)
            .field("labels", &self.labels)
            .field("encoder_layers", &self.encoder.len())
            .field("decoder_layers", &self.decoder.len())
            .finish_non_exhaustive()
    }
}

impl Detr {
    /// Loads the model of `config` (`config.json`) with `labels` classes.
    pub fn load(
        files: &ModelFiles,
        config: &Value,
        labels: usize,
        device: &Device,
    ) -> Result<Self, ToolkitError> {
        let cfg: Config = serde_json::from_value(config.clone()).map_err(|e| {
            ToolkitError::model_load(format!("invalid detr config in config.json: {e}"))
        })?;
        let spec = if cfg.use_timm_backbone {
            timm_spec(config)?
        } else {
            let resnet: ResNetConfig = match &cfg.backbone_config {
                // DetrConfig's default: transformers' ResNet-50, read at its last stage
                None | Some(Value::Null) => {
                    let named = config.get("backbone").and_then(Value::as_str);
                    if !matches!(named, None | Some("resnet50")) {
                        return Err(ToolkitError::model_load(format!(
                            "config.json: the backbone {named:?} without a backbone_config is not supported; only a resnet backbone_config is"
                        )));
                    }
                    ResNetConfig {
                        out_features: Some(vec!["stage4".into()]),
                        ..serde_json::from_value(serde_json::json!({})).map_err(|e| {
                            ToolkitError::model_load(format!("default ResNet config: {e}"))
                        })?
                    }
                }
                Some(v) => {
                    let kind = v.get("model_type").and_then(Value::as_str).unwrap_or("");
                    if kind != "resnet" {
                        return Err(ToolkitError::model_load(format!(
                            "config.json: DETR's backbone_config is {kind:?}; only a resnet backbone is supported"
                        )));
                    }
                    serde_json::from_value(v.clone()).map_err(|e| {
                        ToolkitError::model_load(format!(
                            "invalid backbone_config in config.json: {e}"
                        ))
                    })?
                }
            };
            resnet.spec()?
        };
        if cfg.position_embedding_type != "sine" {
            return Err(ToolkitError::model_load(format!(
                "config.json: position_embedding_type {:?} is not supported (only \"sine\")",
                cfg.position_embedding_type
            )));
        }
        let d = cfg.d_model;
        for (what, heads) in [
            ("encoder_attention_heads", cfg.encoder_attention_heads),
            ("decoder_attention_heads", cfg.decoder_attention_heads),
        ] {
            if heads == 0 || !d.is_multiple_of(heads) {
                return Err(ToolkitError::model_load(format!(
                    "config.json: d_model must be a multiple of {what}"
                )));
            }
        }
        if !d.is_multiple_of(2) || labels == 0 || cfg.num_queries == 0 {
            return Err(ToolkitError::model_load(
                "config.json: a detector needs an even d_model, labels (id2label) and object queries",
            ));
        }
        let vb = var_builder(files, DType::F32, device)?;
        let m = vb.pp("model");
        let backbone = ResNet::load(&m.pp("backbone.conv_encoder.model"), &spec)?;
        let input_projection = conv2d(
            backbone.channels,
            d,
            1,
            Conv2dConfig::default(),
            m.pp("input_projection"),
        )?;
        let encoder = (0..cfg.encoder_layers)
            .map(|i| EncoderLayer::load(m.pp(format!("encoder.layers.{i}")), &cfg))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let decoder = (0..cfg.decoder_layers)
            .map(|i| DecoderLayer::load(m.pp(format!("decoder.layers.{i}")), &cfg))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            backbone,
            input_projection,
            encoder,
            decoder,
            decoder_norm: layer_norm(d, 1e-5, m.pp("decoder.layernorm"))?,
            query_pos: m
                .get((cfg.num_queries, d), "query_position_embeddings.weight")?
                .unsqueeze(0)?,
            class_head: linear(d, labels + 1, vb.pp("class_labels_classifier"))?,
            box_head: mlp(vb.pp("bbox_predictor"), d, 4)?,
            d_model: d,
            queries: cfg.num_queries,
            labels,
            device: device.clone(),
        })
    }
}

/// transformers' nearest-neighbour downsampling of the pixel mask (`interpolate(mode="nearest")`:
/// source index `floor(i · in / out)`) for a mask that is one on the first `valid` of `full`
/// pixels: how many of the `out` feature rows (or columns) are valid.
fn downsampled_valid(valid: usize, full: usize, out: usize) -> usize {
    let scale = full as f32 / out as f32;
    (0..out)
        .take_while(|&i| ((i as f32 * scale).floor() as usize) < valid)
        .count()
}

impl ObjectDetector for Detr {
    fn detect(
        &self,
        image: &PixelValues,
        (valid_h, valid_w): (usize, usize),
    ) -> Result<Detections, ToolkitError> {
        let (ih, iw) = (image.height, image.width);
        let x = Tensor::from_slice(&image.data, (1, 3, ih, iw), &self.device)?;
        let features = self.backbone.forward(&x)?;
        let (_, _, h, w) = features.dims4()?;
        if h == 0 || w == 0 {
            return Err(ToolkitError::Validation(format!(
                "the image is {iw}x{ih} after preprocessing, too small for the model's backbone; send a larger image"
            )));
        }
        // the pixel mask at the feature map's size (all of it unless a pad_size padded the image)
        let valid = (
            downsampled_valid(valid_h, ih, h),
            downsampled_valid(valid_w, iw, w),
        );
        let mask = if valid == (h, w) {
            None
        } else {
            let bias: Vec<f32> = (0..h * w)
                .map(|t| {
                    if t / w < valid.0 && t % w < valid.1 {
                        0.0
                    } else {
                        f32::MIN
                    }
                })
                .collect();
            Some(Tensor::from_vec(bias, (1, 1, 1, h * w), &self.device)?)
        };
        let d = self.d_model;
        let src = self
            .input_projection
            .forward(&features)?
            .flatten_from(2)?
            .transpose(1, 2)?
            .contiguous()?;
        let pos = Tensor::from_vec(sine_position((h, w), valid, d), (1, h * w, d), &self.device)?;
        let mut memory = src;
        for layer in &self.encoder {
            memory = layer.forward(&memory, &pos, mask.as_ref())?;
        }
        let mut hs = self.query_pos.zeros_like()?;
        for layer in &self.decoder {
            hs = layer.forward(&hs, &self.query_pos, &memory, &pos, mask.as_ref())?;
        }
        let hs = self.decoder_norm.forward(&hs)?;
        let logits = self
            .class_head
            .forward(&hs)?
            .squeeze(0)?
            .to_device(&Device::Cpu)?
            .to_vec2::<f32>()?;
        let b = &self.box_head;
        let boxes = b[0].forward(&hs)?.relu()?;
        let boxes = b[1].forward(&boxes)?.relu()?;
        let boxes = candle_nn::ops::sigmoid(&b[2].forward(&boxes)?)?
            .squeeze(0)?
            .to_device(&Device::Cpu)?
            .to_vec2::<f32>()?
            .into_iter()
            .map(|b| [b[0], b[1], b[2], b[3]])
            .collect();
        Ok(Detections { logits, boxes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sine_embedding_follows_transformers() {
        // a 2x3 map, d_model 8: 4 channels of y, then 4 of x, each sin/cos pairs
        let pos = sine_position((2, 3), (2, 3), 8);
        assert_eq!(pos.len(), 2 * 3 * 8);
        let two_pi = 2.0 * std::f32::consts::PI;
        // token (1, 2): y = 2 / 2 · 2π, x = 3 / 3 · 2π
        let t = &pos[(3 + 2) * 8..(3 + 3) * 8];
        let y = 2.0 / (2.0 + 1e-6) * two_pi;
        let x = 3.0 / (3.0 + 1e-6) * two_pi;
        let dim1 = 10000f32.powf(0.5);
        let want = [
            y.sin(),
            y.cos(),
            (y / dim1).sin(),
            (y / dim1).cos(),
            x.sin(),
            x.cos(),
            (x / dim1).sin(),
            (x / dim1).cos(),
        ];
        for (a, b) in t.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{t:?} vs {want:?}");
        }
    }

    #[test]
    fn a_mask_downsamples_as_nearest_interpolation() {
        assert_eq!(downsampled_valid(32, 32, 4), 4);
        // 30 of 40 pixels valid over 5 feature rows: sources 0, 8, 16, 24, 32 -> 4 valid
        assert_eq!(downsampled_valid(30, 40, 5), 4);
    }

    #[test]
    fn a_timm_backbone_is_read_from_its_name_and_kwargs() {
        // facebook/detr-resnet-50: no backbone_kwargs (DetrConfig's out_indices 1-4)
        let spec =
            timm_spec(&serde_json::json!({"backbone": "resnet50", "dilation": false})).unwrap();
        assert_eq!(spec.naming, Naming::Timm);
        assert_eq!(
            (spec.stem_channels, spec.stages, spec.pooled),
            (64, 4, true)
        );
        assert_eq!(spec.depths, [3, 4, 6, 3]);
        assert_eq!(spec.outputs, [256, 512, 1024, 2048]);
        assert!(spec.bottleneck && !spec.stride_in_first_conv);
        // resnet18's basic blocks, cut by backbone_kwargs
        let spec = timm_spec(&serde_json::json!({
            "backbone": "resnet18",
            "backbone_kwargs": {"out_indices": [1, 2], "in_chans": 1, "layers": [1, 2], "channels": [8, 16]}
        }))
        .unwrap();
        assert!(!spec.bottleneck);
        assert_eq!((spec.in_channels, spec.stages), (1, 2));
        assert_eq!(
            (spec.widths.clone(), spec.outputs),
            (vec![8, 16], vec![8, 16])
        );
        // feature 0 is the stem before its max pool
        let spec =
            timm_spec(&serde_json::json!({"backbone_kwargs": {"out_indices": [0]}})).unwrap();
        assert_eq!((spec.stages, spec.pooled), (0, false));
        // what this port cannot build is refused at load
        for config in [
            serde_json::json!({"backbone": "resnet50d"}),
            serde_json::json!({"backbone": "resnet50", "dilation": true}),
            serde_json::json!({"backbone_kwargs": {"output_stride": 16}}),
            serde_json::json!({"backbone_kwargs": {"out_indices": [5]}}),
        ] {
            let e = timm_spec(&config).unwrap_err();
            assert_eq!(e.status(), 500, "{config}: {e}");
        }
    }

    #[test]
    fn the_backbone_reads_its_last_output_stage() {
        let cfg: ResNetConfig = serde_json::from_value(serde_json::json!({
            "depths": [1, 2], "hidden_sizes": [16, 32], "out_features": ["stage2"], "out_indices": [2]
        }))
        .unwrap();
        assert_eq!(cfg.last_output(), Ok(2));
        let cfg: ResNetConfig =
            serde_json::from_value(serde_json::json!({"out_features": ["stage1", "stage3"]}))
                .unwrap();
        assert_eq!(cfg.last_output(), Ok(3));
        let cfg: ResNetConfig = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(cfg.last_output(), Ok(4));
        let cfg: ResNetConfig =
            serde_json::from_value(serde_json::json!({"out_indices": [-1]})).unwrap();
        assert_eq!(cfg.last_output(), Ok(4));
        let cfg: ResNetConfig =
            serde_json::from_value(serde_json::json!({"out_features": ["stage9"]})).unwrap();
        assert!(cfg.last_output().is_err());
    }
}
