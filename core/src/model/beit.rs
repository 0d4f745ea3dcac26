//! BEiT image classification (`BeitForImageClassification`), written from transformers'
//! `models/beit/modeling_beit.py` on candle's ops: patch embeddings behind a CLS token, optional
//! absolute position embeddings (resized bicubically to the image's patch grid), pre-norm layers
//! whose keys have no bias, with layer scale (`lambda_1`, `lambda_2`) and a relative position
//! bias (per layer, shared by all layers, or both) whose table is resized bilinearly to the
//! image's window, then either the mean of the patch tokens through the pooler's layer norm
//! (`use_mean_pooling`) or the CLS token through the final layer norm, and the classifier.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{layer_norm, linear, LayerNorm, Linear};
use serde::Deserialize;
use serde_json::Value;

use super::config::Activation;
use super::image_classifier::{logits_by_size, need_labels, Side2};
use super::layers::{interpolate_positions, LayerDims, PatchEmbedding, PreNormLayer, BEIT_NAMES};
use super::loader::{var_builder, ModelFiles};
use crate::error::ToolkitError;
use crate::vision::interpolate::bilinear_taps;
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
fn default_layer_scale() -> f64 {
    0.1
}
fn yes() -> bool {
    true
}

/// `BeitConfig` (the fields the network needs), with transformers' defaults.
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
    #[serde(default)]
    use_absolute_position_embeddings: bool,
    #[serde(default)]
    use_relative_position_bias: bool,
    #[serde(default)]
    use_shared_relative_position_bias: bool,
    #[serde(default = "default_layer_scale")]
    layer_scale_init_value: f64,
    #[serde(default = "yes")]
    use_mean_pooling: bool,
}

/// A relative position bias table (`BeitRelativePositionBias`) of the configured window.
#[derive(Debug, Clone)]
struct RelativeBias {
    /// `(2·wh − 1)·(2·ww − 1) + 3` rows of `heads` values.
    table: Vec<f32>,
    heads: usize,
    /// The configured window (patch grid), `(rows, cols)`.
    window: (usize, usize),
    /// The bias of the configured window, `[1, heads, 1 + n, 1 + n]`, built once: the images of
    /// a processor that crops to the model's size all have it.
    configured: Option<Tensor>,
}

impl RelativeBias {
    fn load(
        vb: candle_nn::VarBuilder,
        window: (usize, usize),
        heads: usize,
    ) -> Result<Self, ToolkitError> {
        let rows = (2 * window.0 - 1) * (2 * window.1 - 1) + 3;
        let table = vb
            .get((rows, heads), "relative_position_bias_table")?
            .to_device(&Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let mut rb = Self {
            table,
            heads,
            window,
            configured: None,
        };
        rb.configured = Some(rb.bias_tensor(window, vb.device())?);
        Ok(rb)
    }

    /// [`Self::bias`] as a `[1, heads, 1 + n, 1 + n]` tensor on `device`.
    fn bias_tensor(&self, window: (usize, usize), device: &Device) -> candle_core::Result<Tensor> {
        if let (Some(t), true) = (&self.configured, window == self.window) {
            return Ok(t.clone());
        }
        let n = window.0 * window.1 + 1;
        Tensor::from_vec(self.bias(window), (1, self.heads, n, n), device)
    }

    /// The bias of an image whose patch grid is `window`: `[heads, 1 + n, 1 + n]` (`n` patches,
    /// the CLS token first), as `BeitRelativePositionBias.forward` builds it in transformers 4.51:
    /// the table's pair part, laid out as `(2·ww − 1) × (2·wh − 1)` of the configured window,
    /// resized bilinearly to `(2·h − 1) × (2·w − 1)` of the image's, the three CLS rows kept, then
    /// gathered by relative position.
    fn bias(&self, window: (usize, usize)) -> Vec<f32> {
        let heads = self.heads;
        let (old_h, old_w) = (2 * self.window.0 - 1, 2 * self.window.1 - 1);
        let (new_h, new_w) = (2 * window.0 - 1, 2 * window.1 - 1);
        // the table viewed as [old_w][old_h] (transformers reshapes it so), resized to
        // [new_h][new_w]
        let rows_taps = bilinear_taps(old_w, new_h);
        let cols_taps = bilinear_taps(old_h, new_w);
        let mut table = vec![0f32; (new_h * new_w + 3) * heads];
        for (i, ti) in rows_taps.iter().enumerate() {
            for (j, tj) in cols_taps.iter().enumerate() {
                let out = &mut table[(i * new_w + j) * heads..(i * new_w + j + 1) * heads];
                for (&a, &wa) in ti.index.iter().zip(&ti.weight) {
                    for (&b, &wb) in tj.index.iter().zip(&tj.weight) {
                        let src = &self.table[(a * old_h + b) * heads..(a * old_h + b + 1) * heads];
                        for (o, &s) in out.iter_mut().zip(src) {
                            *o += wa * wb * s;
                        }
                    }
                }
            }
        }
        let old_pairs = old_h * old_w;
        let new_pairs = new_h * new_w;
        table[new_pairs * heads..].copy_from_slice(&self.table[old_pairs * heads..]);
        let index = relative_position_index(window);
        let n = window.0 * window.1 + 1;
        let mut out = vec![0f32; heads * n * n];
        for (pq, &r) in index.iter().enumerate() {
            for k in 0..heads {
                out[k * n * n + pq] = table[r * heads + k];
            }
        }
        out
    }
}

/// transformers' `generate_relative_position_index`: `(1 + n)²` rows of the bias table, `n`
/// the window's patches; the CLS token's row, column and corner take the table's last three
/// rows.
fn relative_position_index(window: (usize, usize)) -> Vec<usize> {
    let (wh, ww) = window;
    let area = wh * ww;
    let n = area + 1;
    let distances = (2 * wh - 1) * (2 * ww - 1) + 3;
    let mut index = vec![0usize; n * n];
    for p in 0..area {
        let (y1, x1) = (p / ww, p % ww);
        for q in 0..area {
            let (y2, x2) = (q / ww, q % ww);
            let dy = y1 + wh - 1 - y2;
            let dx = x1 + ww - 1 - x2;
            index[(p + 1) * n + q + 1] = dy * (2 * ww - 1) + dx;
        }
    }
    // row 0 (the CLS token attending to patches), then column 0 (patches attending to it)
    index[..n].fill(distances - 3);
    for row in index.chunks_mut(n) {
        row[0] = distances - 2;
    }
    index[0] = distances - 1;
    index
}

/// How the pooled vector is made.
enum Pooling {
    /// The mean of the patch tokens through `beit.pooler.layernorm`.
    Mean(LayerNorm),
    /// The CLS token through `beit.layernorm`.
    Cls(LayerNorm),
}

/// A loaded BEiT classifier.
pub struct BeitClassifier {
    patch: PatchEmbedding,
    patch_size: usize,
    /// `[1, 1, hidden]`.
    cls: Tensor,
    /// `[1, 1 + side², hidden]` with the position grid's side.
    position: Option<(Tensor, usize)>,
    layers: Vec<(PreNormLayer, Option<RelativeBias>)>,
    shared: Option<RelativeBias>,
    pooling: Pooling,
    classifier: Linear,
    device: Device,
}

impl std::fmt::Debug for BeitClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BeitClassifier")
            .field("patch_size", &self.patch_size)
            .field("layers", &self.layers.len())
            .field("absolute_positions", &self.position.is_some())
            .field("shared_bias", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

impl BeitClassifier {
    /// Loads the model of `config` (`config.json`) with `labels` classes.
    pub fn load(
        files: &ModelFiles,
        config: &Value,
        labels: usize,
        device: &Device,
    ) -> Result<Self, ToolkitError> {
        let cfg: Config = serde_json::from_value(config.clone()).map_err(|e| {
            ToolkitError::model_load(format!("invalid beit config in config.json: {e}"))
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
        let window = (height / p, width / p);
        let dims = LayerDims {
            hidden: h,
            heads,
            intermediate: cfg.intermediate_size,
            eps: cfg.layer_norm_eps,
            act: cfg.hidden_act,
        };
        let vb = var_builder(files, DType::F32, device)?;
        let emb = vb.pp("beit.embeddings");
        let position = if cfg.use_absolute_position_embeddings {
            // transformers reshapes them to a square grid to resize them
            if window.0 != window.1 {
                return Err(ToolkitError::model_load(
                    "config.json: beit's absolute position embeddings must form a square grid (image_size a square)",
                ));
            }
            Some((
                emb.get((1, 1 + window.0 * window.1, h), "position_embeddings")?,
                window.0,
            ))
        } else {
            None
        };
        let layer_scale = cfg.layer_scale_init_value > 0.0;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let lvb = vb.pp(format!("beit.encoder.layer.{i}"));
            let layer = PreNormLayer::load_scaled(lvb.clone(), &BEIT_NAMES, dims, layer_scale)?;
            let bias = if cfg.use_relative_position_bias {
                Some(RelativeBias::load(
                    lvb.pp("attention.attention.relative_position_bias"),
                    window,
                    heads,
                )?)
            } else {
                None
            };
            layers.push((layer, bias));
        }
        let shared = if cfg.use_shared_relative_position_bias {
            Some(RelativeBias::load(
                vb.pp("beit.encoder.relative_position_bias"),
                window,
                heads,
            )?)
        } else {
            None
        };
        let pooling = if cfg.use_mean_pooling {
            Pooling::Mean(layer_norm(
                h,
                cfg.layer_norm_eps,
                vb.pp("beit.pooler.layernorm"),
            )?)
        } else {
            Pooling::Cls(layer_norm(h, cfg.layer_norm_eps, vb.pp("beit.layernorm"))?)
        };
        Ok(Self {
            patch: PatchEmbedding::load(&emb, cfg.num_channels, h, p)?,
            patch_size: p,
            cls: emb.get((1, 1, h), "cls_token")?,
            position,
            layers,
            shared,
            pooling,
            classifier: linear(h, labels, vb.pp("classifier"))?,
            device: device.clone(),
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, _, height, width) = x.dims4()?;
        let p = self.patch_size;
        let window = (height / p, width / p);
        let patches = self.patch.tokens(x)?;
        let (n, h) = (patches.dim(1)?, patches.dim(2)?);
        let cls = self.cls.broadcast_as((b, 1, h))?;
        let mut hs = Tensor::cat(&[&cls, &patches], 1)?;
        if let Some((position, side)) = &self.position {
            let position =
                interpolate_positions(position, (*side, *side), (height, width), window)?;
            hs = hs.broadcast_add(&position)?;
        }
        let heads = |bias: &RelativeBias| bias.bias_tensor(window, &self.device);
        let shared = self.shared.as_ref().map(heads).transpose()?;
        for (layer, own) in &self.layers {
            let bias = match (own.as_ref().map(heads).transpose()?, &shared) {
                (Some(own), Some(shared)) => Some((own + shared)?),
                (Some(own), None) => Some(own),
                (None, shared) => shared.clone(),
            };
            hs = layer.forward(&hs, bias.as_ref())?;
        }
        let pooled = match &self.pooling {
            Pooling::Mean(norm) => norm.forward(&hs.narrow(1, 1, n)?.mean(1)?)?,
            Pooling::Cls(norm) => norm.forward(&hs.narrow(1, 0, 1)?.squeeze(1)?)?,
        };
        self.classifier.forward(&pooled)
    }
}

impl super::image_classifier::ImageClassifier for BeitClassifier {
    /// Any size of at least one patch: the position tables follow the image.
    fn input_size(&self) -> Option<(usize, usize)> {
        None
    }

    fn logits(&self, images: &[PixelValues]) -> Result<Vec<Vec<f32>>, ToolkitError> {
        logits_by_size(images, &self.device, self.patch_size, |x| {
            Ok(self.forward(x)?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relative_position_index_matches_transformers() {
        // BeitRelativePositionBias(config, window_size=(2, 2)).generate_relative_position_index((2, 2))
        let want = [
            [11, 9, 9, 9, 9],
            [10, 4, 3, 1, 0],
            [10, 5, 4, 2, 1],
            [10, 7, 6, 4, 3],
            [10, 8, 7, 5, 4],
        ];
        let got = relative_position_index((2, 2));
        assert_eq!(got, want.concat());
        // a 1x2 window: 1 x 3 distances + 3
        assert_eq!(
            relative_position_index((1, 2)),
            [[5, 3, 3], [4, 1, 0], [4, 2, 1]].concat()
        );
    }

    #[test]
    fn the_bias_is_built_as_transformers_builds_it() {
        // one head, a 1x2 window: 3 pair rows and the 3 CLS rows. transformers views the pair
        // rows as 3 x 1 and resizes them to 1 x 3 even at the configured size: the middle row
        // is repeated (BeitRelativePositionBias(...)((1, 2)) in transformers 4.51)
        let rb = RelativeBias {
            table: vec![10.0, 11.0, 12.0, 20.0, 21.0, 22.0],
            heads: 1,
            window: (1, 2),
            configured: None,
        };
        assert_eq!(
            rb.bias((1, 2)),
            vec![22.0, 20.0, 20.0, 21.0, 11.0, 11.0, 21.0, 11.0, 11.0]
        );
        // a 2x2 window's table (arange(12) ** 1.5) resized to a 3x3 window
        let rb = RelativeBias {
            table: (0..12).map(|i| (i as f32).powf(1.5)).collect(),
            heads: 1,
            window: (2, 2),
            configured: None,
        };
        let got = rb.bias((3, 3));
        assert_eq!(got.len(), 100);
        let want_rows = [
            36.48287, 27.0, 27.0, 27.0, 27.0, 27.0, 27.0, 27.0, 27.0, 27.0, 31.62278, 8.0, 6.31769,
            5.19615, 3.8, 2.76708, 2.07846, 1.0, 0.4, 0.0, 31.62278, 9.90821, 8.0, 6.31769,
            5.22152, 3.8, 2.76708, 2.09706, 1.0, 0.4,
        ];
        for (g, w) in got.iter().zip(want_rows) {
            assert!((g - w).abs() < 1e-4, "{g} vs {w}");
        }
        let sum: f32 = got.iter().sum();
        assert!((sum - 1290.9824).abs() < 1e-2, "{sum}");
    }
}
