//! YOLOS object detection (`YolosForObjectDetection`), written from transformers'
//! `models/yolos/modeling_yolos.py` on candle's ops: a ViT over the image's patches with a CLS
//! token in front and `num_detection_tokens` detection tokens behind, its position embeddings
//! resized bicubically to the image's patch grid (YOLOS takes images of any size), optionally
//! mid-layer position embeddings (`use_mid_position_embeddings`), the final layer norm, and two
//! three-layer MLP heads on the detection tokens: class logits (the labels plus "no object")
//! and boxes (`sigmoid`, centre x, centre y, width, height relative to the image).

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{layer_norm, linear, LayerNorm, Linear};
use serde::Deserialize;
use serde_json::Value;

use super::config::Activation;
use super::layers::{resize_bicubic, LayerDims, PatchEmbedding, PreNormLayer, VIT_NAMES};
use super::loader::{var_builder, ModelFiles};
use super::object_detector::{Detections, ObjectDetector};
use crate::error::ToolkitError;
use crate::vision::PixelValues;

fn default_act() -> Activation {
    Activation::Gelu
}
fn default_eps() -> f64 {
    1e-12
}
fn three() -> usize {
    3
}

/// `image_size`: `[height, width]`, or one number for a square.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum ImageSize {
    Square(usize),
    Pair(Vec<usize>),
}

/// `YolosConfig` (the fields the network needs).
#[derive(Debug, Clone, Deserialize)]
struct Config {
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    #[serde(default = "default_act")]
    hidden_act: Activation,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    image_size: ImageSize,
    patch_size: usize,
    #[serde(default = "three")]
    num_channels: usize,
    num_detection_tokens: usize,
    #[serde(default)]
    use_mid_position_embeddings: bool,
}

/// A loaded YOLOS.
pub struct Yolos {
    patch: PatchEmbedding,
    cls: Tensor,
    detection: Tensor,
    /// `[1, 1 + grid_h·grid_w + detections, hidden]`.
    position: Tensor,
    /// Mid-layer position embeddings, `[layers - 1, 1, seq, hidden]`.
    mid_position: Option<Tensor>,
    grid: (usize, usize),
    patch_size: usize,
    layers: Vec<PreNormLayer>,
    norm: LayerNorm,
    class_head: [Linear; 3],
    box_head: [Linear; 3],
    labels: usize,
    detections: usize,
    device: Device,
}

impl std::fmt::Debug for Yolos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Yolos")
            .field("grid", &self.grid)
            .field("patch_size", &self.patch_size)
            .field("labels", &self.labels)
            .field("detections", &self.detections)
            .finish_non_exhaustive()
    }
}

fn mlp(vb: candle_nn::VarBuilder, hidden: usize, out: usize) -> candle_core::Result<[Linear; 3]> {
    Ok([
        linear(hidden, hidden, vb.pp("layers.0"))?,
        linear(hidden, hidden, vb.pp("layers.1"))?,
        linear(hidden, out, vb.pp("layers.2"))?,
    ])
}

fn run_mlp(head: &[Linear; 3], x: &Tensor) -> candle_core::Result<Tensor> {
    let x = head[0].forward(x)?.relu()?;
    let x = head[1].forward(&x)?.relu()?;
    head[2].forward(&x)
}

impl Yolos {
    /// Loads the model of `config` (`config.json`) with `labels` classes.
    pub fn load(
        files: &ModelFiles,
        config: &Value,
        labels: usize,
        device: &Device,
    ) -> Result<Self, ToolkitError> {
        let cfg: Config = serde_json::from_value(config.clone()).map_err(|e| {
            ToolkitError::model_load(format!("invalid yolos config in config.json: {e}"))
        })?;
        let (ih, iw) = match &cfg.image_size {
            ImageSize::Square(n) => (*n, *n),
            ImageSize::Pair(v) if v.len() == 2 => (v[0], v[1]),
            ImageSize::Pair(v) => {
                return Err(ToolkitError::model_load(format!(
                    "config.json: image_size must be a number or [height, width], got {v:?}"
                )))
            }
        };
        let p = cfg.patch_size;
        if p == 0 || ih < p || iw < p {
            return Err(ToolkitError::model_load(
                "config.json: patch_size must be positive and at most image_size",
            ));
        }
        let heads = cfg.num_attention_heads;
        if heads == 0 || !cfg.hidden_size.is_multiple_of(heads) {
            return Err(ToolkitError::model_load(
                "config.json: hidden_size must be a multiple of num_attention_heads",
            ));
        }
        if labels == 0 || cfg.num_detection_tokens == 0 || cfg.num_hidden_layers == 0 {
            return Err(ToolkitError::model_load(
                "config.json: a detector needs labels (id2label), detection tokens and layers",
            ));
        }
        let grid = (ih / p, iw / p);
        let seq = 1 + grid.0 * grid.1 + cfg.num_detection_tokens;
        let h = cfg.hidden_size;
        let vb = var_builder(files, DType::F32, device)?;
        let emb = vb.pp("vit.embeddings");
        let dims = LayerDims {
            hidden: h,
            heads,
            intermediate: cfg.intermediate_size,
            eps: cfg.layer_norm_eps,
            act: cfg.hidden_act,
        };
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| PreNormLayer::load(vb.pp(format!("vit.encoder.layer.{i}")), &VIT_NAMES, dims))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let mid_position = if cfg.use_mid_position_embeddings && cfg.num_hidden_layers > 1 {
            Some(vb.get(
                (cfg.num_hidden_layers - 1, 1, seq, h),
                "vit.encoder.mid_position_embeddings",
            )?)
        } else {
            None
        };
        Ok(Self {
            patch: PatchEmbedding::load(&emb, cfg.num_channels, h, p)?,
            cls: emb.get((1, 1, h), "cls_token")?,
            detection: emb.get((1, cfg.num_detection_tokens, h), "detection_tokens")?,
            position: emb.get((1, seq, h), "position_embeddings")?,
            mid_position,
            grid,
            patch_size: p,
            layers,
            norm: layer_norm(h, cfg.layer_norm_eps, vb.pp("vit.layernorm"))?,
            class_head: mlp(vb.pp("class_labels_classifier"), h, labels + 1)?,
            box_head: mlp(vb.pp("bbox_predictor"), h, 4)?,
            labels,
            detections: cfg.num_detection_tokens,
            device: device.clone(),
        })
    }

    /// The patch size: an image's sides are cut to multiples of it.
    pub fn patch_size(&self) -> usize {
        self.patch_size
    }

    /// transformers' `InterpolateInitialPositionEmbeddings` / `InterpolateMidPositionEmbeddings`:
    /// `pos` is `[n, 1, seq, hidden]`; the patch part is resized to the `h × w` patch grid,
    /// the CLS and detection parts kept. Returns `[n, 1, 1 + h·w + detections, hidden]`.
    fn position_for(&self, pos: &Tensor, h: usize, w: usize) -> candle_core::Result<Tensor> {
        let (n, _, seq, hidden) = pos.dims4()?;
        let (gh, gw) = self.grid;
        let d = self.detections;
        let cls = pos.narrow(2, 0, 1)?;
        let det = pos.narrow(2, seq - d, d)?;
        let patches = pos
            .narrow(2, 1, gh * gw)?
            .reshape((n, gh, gw, hidden))?
            .permute((0, 3, 1, 2))?;
        let resized = resize_bicubic(&patches, h, w)?
            .permute((0, 2, 3, 1))?
            .reshape((n, 1, h * w, hidden))?;
        Tensor::cat(&[cls, resized, det], 2)
    }
}

impl ObjectDetector for Yolos {
    /// Detects objects in one preprocessed image (any size of at least one patch).
    fn detect(
        &self,
        image: &PixelValues,
        _valid: (usize, usize),
    ) -> Result<Detections, ToolkitError> {
        let p = self.patch_size;
        let (gh, gw) = (image.height / p, image.width / p);
        if gh == 0 || gw == 0 {
            return Err(ToolkitError::Validation(format!(
                "the image is {}x{} after preprocessing, smaller than one {p}x{p} patch; send a larger image",
                image.width, image.height
            )));
        }
        let x = Tensor::from_slice(&image.data, (1, 3, image.height, image.width), &self.device)?;
        let patches = self.patch.tokens(&x)?;
        let mut hs = Tensor::cat(&[&self.cls, &patches, &self.detection], 1)?;
        let pos = self.position_for(&self.position.unsqueeze(0)?, gh, gw)?;
        hs = hs.broadcast_add(&pos.squeeze(0)?)?;
        let mid = match &self.mid_position {
            Some(m) => Some(self.position_for(m, gh, gw)?),
            None => None,
        };
        for (i, layer) in self.layers.iter().enumerate() {
            hs = layer.forward(&hs, None)?;
            if let Some(m) = &mid {
                if i + 1 < self.layers.len() {
                    hs = hs.broadcast_add(&m.get(i)?)?;
                }
            }
        }
        let hs = self.norm.forward(&hs)?;
        let seq = hs.dim(1)?;
        let tokens = hs.narrow(1, seq - self.detections, self.detections)?;
        let logits = run_mlp(&self.class_head, &tokens)?
            .squeeze(0)?
            .to_device(&Device::Cpu)?
            .to_vec2::<f32>()?;
        let boxes = candle_nn::ops::sigmoid(&run_mlp(&self.box_head, &tokens)?)?
            .squeeze(0)?
            .to_device(&Device::Cpu)?
            .to_vec2::<f32>()?
            .into_iter()
            .map(|b| [b[0], b[1], b[2], b[3]])
            .collect();
        Ok(Detections { logits, boxes })
    }
}
