//! ResNet image classification (`ResNetForImageClassification`, transformers' own ResNet, not
//! timm's), written from transformers' `models/resnet/modeling_resnet.py` on candle's ops: a 7x7
//! stride-2 stem with a batch norm and `hidden_act`, a 3x3 stride-2 max pool, stages of basic
//! layers (two 3x3 convolutions) or bottleneck layers (1x1 down to a quarter of the channels, 3x3,
//! 1x1 up), a projection shortcut where the shape changes, global average pooling and the
//! classifier. As transformers does, the convolutions inside a layer always use ReLU; `hidden_act`
//! is the stem's and the one after each residual sum. The first stage downsamples only with
//! `downsample_in_first_stage`; a bottleneck downsamples in its first 1x1 convolution with
//! `downsample_in_bottleneck`, else in its 3x3. Batch norms (torch's epsilon, 1e-5) run on their
//! running statistics, folded into the convolutions.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{linear, Linear, VarBuilder};
use serde::Deserialize;
use serde_json::Value;

use super::conv::{
    chain_size, global_average, logits_each, max_pool, Conv, ConvAct, ConvLayer, ConvSpec, Padding,
};
use super::loader::{var_builder, ModelFiles};
use crate::error::ToolkitError;
use crate::vision::PixelValues;

/// `nn.BatchNorm2d`'s default epsilon.
const BN_EPS: f64 = 1e-5;

/// `ResNetConfig` (the fields the network needs, transformers' defaults).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
struct Config {
    num_channels: usize,
    embedding_size: usize,
    hidden_sizes: Vec<usize>,
    depths: Vec<usize>,
    layer_type: String,
    hidden_act: String,
    downsample_in_first_stage: bool,
    downsample_in_bottleneck: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            num_channels: 3,
            embedding_size: 64,
            hidden_sizes: vec![256, 512, 1024, 2048],
            depths: vec![3, 4, 6, 3],
            layer_type: "bottleneck".into(),
            hidden_act: "relu".into(),
            downsample_in_first_stage: false,
            downsample_in_bottleneck: false,
        }
    }
}

/// `ResNetConvLayer`: a convolution (padding `kernel / 2`, no bias), a batch norm, an optional
/// activation.
fn conv_layer(
    vb: VarBuilder,
    in_ch: usize,
    out_ch: usize,
    kernel: usize,
    stride: usize,
    act: Option<ConvAct>,
) -> candle_core::Result<ConvLayer> {
    let spec = ConvSpec::new(in_ch, out_ch, kernel)
        .stride(stride)
        .padding(Padding::Symmetric(kernel / 2));
    ConvLayer::load(vb, spec, BN_EPS, act)
}

/// A basic or bottleneck layer with its shortcut.
struct Layer {
    shortcut: Option<Conv>,
    convs: Vec<ConvLayer>,
    act: ConvAct,
}

impl Layer {
    #[allow(clippy::too_many_arguments)]
    fn load(
        vb: VarBuilder,
        bottleneck: bool,
        in_ch: usize,
        out_ch: usize,
        stride: usize,
        downsample_in_bottleneck: bool,
        act: ConvAct,
    ) -> candle_core::Result<Self> {
        let shortcut = if in_ch != out_ch || stride != 1 {
            let spec = ConvSpec::new(in_ch, out_ch, 1).stride(stride);
            let s = vb.pp("shortcut");
            Some(Conv::load_with_batch_norm(
                s.pp("convolution"),
                s.pp("normalization"),
                spec,
                BN_EPS,
            )?)
        } else {
            None
        };
        let l = vb.pp("layer");
        let relu = Some(ConvAct::Relu);
        let convs = if bottleneck {
            let reduced = out_ch / 4;
            let (s1, s3) = if downsample_in_bottleneck {
                (stride, 1)
            } else {
                (1, stride)
            };
            vec![
                conv_layer(l.pp("0"), in_ch, reduced, 1, s1, relu)?,
                conv_layer(l.pp("1"), reduced, reduced, 3, s3, relu)?,
                conv_layer(l.pp("2"), reduced, out_ch, 1, 1, None)?,
            ]
        } else {
            vec![
                conv_layer(l.pp("0"), in_ch, out_ch, 3, stride, relu)?,
                conv_layer(l.pp("1"), out_ch, out_ch, 3, 1, None)?,
            ]
        };
        Ok(Self {
            shortcut,
            convs,
            act,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut y = x.clone();
        for c in &self.convs {
            y = c.forward(&y)?;
        }
        let residual = match &self.shortcut {
            Some(s) => s.forward(x)?,
            None => x.clone(),
        };
        self.act.apply(&(y + residual)?)
    }
}

/// A loaded ResNet classifier.
pub struct ResNet {
    stem: ConvLayer,
    layers: Vec<Layer>,
    classifier: Linear,
    labels: usize,
    device: Device,
}

impl std::fmt::Debug for ResNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResNet")
            .field("layers", &self.layers.len())
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

impl ResNet {
    /// Loads the model of `config` (`config.json`) with `labels` classes.
    pub fn load(
        files: &ModelFiles,
        config: &Value,
        labels: usize,
        device: &Device,
    ) -> Result<Self, ToolkitError> {
        let cfg: Config = serde_json::from_value(config.clone()).map_err(|e| {
            ToolkitError::model_load(format!("invalid resnet config in config.json: {e}"))
        })?;
        let bottleneck = match cfg.layer_type.as_str() {
            "bottleneck" => true,
            "basic" => false,
            other => {
                return Err(ToolkitError::model_load(format!(
                    "config.json: layer_type {other:?} is not one of basic, bottleneck"
                )))
            }
        };
        let n = cfg.hidden_sizes.len();
        if n == 0 || cfg.depths.len() != n {
            return Err(ToolkitError::model_load(format!(
                "config.json: hidden_sizes and depths must have the same (non-zero) number of stages, got {} and {}",
                n,
                cfg.depths.len()
            )));
        }
        let min_width = if bottleneck { 4 } else { 1 };
        if cfg.num_channels != 3
            || cfg.embedding_size == 0
            || cfg.hidden_sizes.iter().any(|&h| h < min_width)
        {
            return Err(ToolkitError::model_load(
                "config.json: num_channels must be 3 (RGB), embedding_size positive and hidden_sizes at least 4 for bottleneck layers",
            ));
        }
        if labels == 0 {
            return Err(ToolkitError::model_load(
                "config.json has no labels (id2label or num_labels): not an image classifier",
            ));
        }
        let act = ConvAct::parse(&cfg.hidden_act)?;
        let vb = var_builder(files, DType::F32, device)?;
        let base = vb.pp("resnet");
        let stem = conv_layer(
            base.pp("embedder.embedder"),
            cfg.num_channels,
            cfg.embedding_size,
            7,
            2,
            Some(act),
        )?;
        let mut layers = Vec::new();
        let mut in_ch = cfg.embedding_size;
        for (i, (&out_ch, &depth)) in cfg.hidden_sizes.iter().zip(&cfg.depths).enumerate() {
            let stride = if i > 0 || cfg.downsample_in_first_stage {
                2
            } else {
                1
            };
            let st = base.pp(format!("encoder.stages.{i}.layers"));
            // ResNetStage builds its first layer whatever the depth (a depth of 0 is one layer)
            for j in 0..depth.max(1) {
                let (cin, s) = if j == 0 { (in_ch, stride) } else { (out_ch, 1) };
                layers.push(Layer::load(
                    st.pp(j.to_string()),
                    bottleneck,
                    cin,
                    out_ch,
                    s,
                    cfg.downsample_in_bottleneck,
                    act,
                )?);
            }
            in_ch = out_ch;
        }
        Ok(Self {
            stem,
            layers,
            classifier: linear(in_ch, labels, vb.pp("classifier.1"))?,
            labels,
            device: device.clone(),
        })
    }

    fn forward(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = max_pool(&self.stem.forward(pixels)?, 3, 2, 1)?;
        for layer in &self.layers {
            x = layer.forward(&x)?;
        }
        self.classifier.forward(&global_average(&x)?)
    }
}

impl super::image_classifier::ImageClassifier for ResNet {
    fn input_size(&self) -> Option<(usize, usize)> {
        None
    }

    fn logits(&self, images: &[PixelValues]) -> Result<Vec<Vec<f32>>, ToolkitError> {
        let fits = |h, w| {
            let Some((h, w)) = self.stem.conv.out_size(h, w) else {
                return false;
            };
            // the max pool (3x3, stride 2, padding 1) takes any size
            let (h, w) = ((h - 1) / 2 + 1, (w - 1) / 2 + 1);
            let convs = self
                .layers
                .iter()
                .flat_map(|l| l.convs.iter().map(|c| &c.conv));
            chain_size(convs, h, w).is_some()
        };
        logits_each(images, self.labels, &self.device, fits, |x| self.forward(x))
    }
}
