//! Swin Transformer image classification (`SwinForImageClassification`), written from
//! transformers' `models/swin/modeling_swin.py` on candle's ops: patch embeddings (the image
//! padded to whole patches) and their layer norm, stages of blocks attending within windows
//! (every second block's windows shifted by half a window, with the mask that keeps the wrapped
//! regions apart, and a learned relative position bias in each block), patch merging between
//! stages, the final layer norm, the mean of the tokens, and the classifier.
//!
//! As in transformers, a stage whose grid is no larger than a window neither shifts nor cuts it
//! (one window holds the whole grid); a grid smaller than a window on a side fails there (its
//! bias table is a window's), and is refused here. transformers also keeps that decision for
//! the calls after it (`set_shift_and_window_size` changes the layer), so a model served images
//! of several sizes answers by the history of its requests; here each image is taken on its own,
//! which is the same answer whenever the processor brings every image to one size.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{
    conv2d, layer_norm, linear, linear_no_bias, Conv2d, Conv2dConfig, LayerNorm, Linear,
};
use serde::Deserialize;
use serde_json::Value;

use super::config::Activation;
use super::image_classifier::{logits_by_size, need_labels, Side2};
use super::layers::{activate, split_heads};
use super::loader::{var_builder, ModelFiles};
use crate::error::ToolkitError;
use crate::vision::PixelValues;

fn default_patch() -> Side2 {
    Side2 {
        height: 4,
        width: 4,
    }
}
fn three() -> usize {
    3
}
fn default_embed() -> usize {
    96
}
fn default_depths() -> Vec<usize> {
    vec![2, 2, 6, 2]
}
fn default_heads() -> Vec<usize> {
    vec![3, 6, 12, 24]
}
fn default_window() -> usize {
    7
}
fn default_mlp_ratio() -> f64 {
    4.0
}
fn default_act() -> Activation {
    Activation::Gelu
}
fn default_eps() -> f64 {
    1e-5
}
fn yes() -> bool {
    true
}

/// `SwinConfig` (the fields the network needs), with transformers' defaults.
#[derive(Debug, Clone, Deserialize)]
struct Config {
    #[serde(default = "default_patch")]
    patch_size: Side2,
    #[serde(default = "three")]
    num_channels: usize,
    #[serde(default = "default_embed")]
    embed_dim: usize,
    #[serde(default = "default_depths")]
    depths: Vec<usize>,
    #[serde(default = "default_heads")]
    num_heads: Vec<usize>,
    #[serde(default = "default_window")]
    window_size: usize,
    #[serde(default = "default_mlp_ratio")]
    mlp_ratio: f64,
    #[serde(default = "yes")]
    qkv_bias: bool,
    #[serde(default = "default_act")]
    hidden_act: Activation,
    #[serde(default)]
    use_absolute_embeddings: bool,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
}

/// The relative position of every pair of a window's `w × w` tokens, as rows of the bias table
/// (`SwinSelfAttention.relative_position_index`).
fn relative_position_index(w: usize) -> Vec<usize> {
    let n = w * w;
    let mut index = Vec::with_capacity(n * n);
    for p in 0..n {
        let (y1, x1) = (p / w, p % w);
        for q in 0..n {
            let (y2, x2) = (q / w, q % w);
            index.push((y1 + w - 1 - y2) * (2 * w - 1) + (x1 + w - 1 - x2));
        }
    }
    index
}

/// The shifted-window mask (`SwinLayer.get_attn_mask`): `[windows, w², w²]`, 0 between tokens of
/// the same region of the `height × width` grid and −100 between regions (the grid is cut into
/// 3 × 3 regions at `−w` and `−shift` from its ends), windows in row-major order.
fn shifted_window_mask(height: usize, width: usize, w: usize, shift: usize) -> Vec<f32> {
    let region = |i: usize, n: usize| {
        if i < n - w {
            0
        } else if i < n - shift {
            1
        } else {
            2
        }
    };
    let (rows, cols) = (height / w, width / w);
    let n = w * w;
    let mut mask = Vec::with_capacity(rows * cols * n * n);
    for r in 0..rows {
        for c in 0..cols {
            let labels: Vec<usize> = (0..n)
                .map(|t| {
                    let (y, x) = (r * w + t / w, c * w + t % w);
                    region(y, height) * 3 + region(x, width)
                })
                .collect();
            for &a in &labels {
                for &b in &labels {
                    mask.push(if a == b { 0.0 } else { -100.0 });
                }
            }
        }
    }
    mask
}

/// One Swin block (`SwinLayer`).
struct Block {
    norm_before: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    /// `[1, heads, w², w²]`.
    bias: Tensor,
    norm_after: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    heads: usize,
    window: usize,
    shift: usize,
    act: Activation,
}

impl Block {
    #[allow(clippy::too_many_arguments)]
    fn load(
        vb: candle_nn::VarBuilder,
        dim: usize,
        heads: usize,
        window: usize,
        shift: usize,
        cfg: &Config,
    ) -> Result<Self, ToolkitError> {
        let qkv = |name: &str| {
            if cfg.qkv_bias {
                linear(dim, dim, vb.pp("attention.self").pp(name))
            } else {
                linear_no_bias(dim, dim, vb.pp("attention.self").pp(name))
            }
        };
        let n = window * window;
        let rows = (2 * window - 1) * (2 * window - 1);
        let table = vb
            .get((rows, heads), "attention.self.relative_position_bias_table")?
            .to_device(&Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let index = relative_position_index(window);
        let mut bias = vec![0f32; heads * n * n];
        for (pq, &r) in index.iter().enumerate() {
            for h in 0..heads {
                bias[h * n * n + pq] = table[r * heads + h];
            }
        }
        let hidden = (cfg.mlp_ratio * dim as f64) as usize;
        Ok(Self {
            norm_before: layer_norm(dim, cfg.layer_norm_eps, vb.pp("layernorm_before"))?,
            q: qkv("query")?,
            k: qkv("key")?,
            v: qkv("value")?,
            out: linear(dim, dim, vb.pp("attention.output.dense"))?,
            bias: Tensor::from_vec(bias, (1, heads, n, n), vb.device())?,
            norm_after: layer_norm(dim, cfg.layer_norm_eps, vb.pp("layernorm_after"))?,
            fc1: linear(dim, hidden, vb.pp("intermediate.dense"))?,
            fc2: linear(hidden, dim, vb.pp("output.dense"))?,
            heads,
            window,
            shift,
            act: cfg.hidden_act,
        })
    }

    /// Attention within windows: `x` is `[b·windows, w², c]`, `mask` `[1, windows, 1, w², w²]`.
    fn attend(
        &self,
        x: &Tensor,
        windows: usize,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let (bw, n, c) = x.dims3()?;
        let hd = c / self.heads;
        let q = split_heads(&self.q.forward(x)?, self.heads)?;
        let k = split_heads(&self.k.forward(x)?, self.heads)?;
        let v = split_heads(&self.v.forward(x)?, self.heads)?;
        let mut scores = (q.matmul(&k.transpose(2, 3)?.contiguous()?)? / (hd as f64).sqrt())?
            .broadcast_add(&self.bias)?;
        if let Some(mask) = mask {
            scores = scores
                .reshape((bw / windows, windows, self.heads, n, n))?
                .broadcast_add(mask)?
                .reshape((bw, self.heads, n, n))?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let ctx = probs.matmul(&v)?.transpose(1, 2)?.reshape((bw, n, c))?;
        self.out.forward(&ctx)
    }

    /// `x`: `[b, h·w, c]` on an `h × w` grid.
    fn forward(&self, x: &Tensor, (h, w): (usize, usize)) -> Result<Tensor, ToolkitError> {
        let (b, _, c) = x.dims3()?;
        // set_shift_and_window_size: a grid no larger than a window is one window, unshifted
        let (ws, shift) = if h.min(w) <= self.window {
            (h.min(w), 0)
        } else {
            (self.window, self.shift)
        };
        if ws != self.window {
            return Err(ToolkitError::Validation(format!(
                "the image is too small for the model: a {w}x{h} grid of patches at one stage is smaller than its {0}x{0} windows; send a larger image",
                self.window
            )));
        }
        let y = self.norm_before.forward(x)?.reshape((b, h, w, c))?;
        let (hp, wp) = (h.div_ceil(ws) * ws, w.div_ceil(ws) * ws);
        let mut y = y
            .pad_with_zeros(1, 0, hp - h)?
            .pad_with_zeros(2, 0, wp - w)?;
        if shift > 0 {
            y = y.roll(-(shift as i32), 1)?.roll(-(shift as i32), 2)?;
        }
        let (rows, cols) = (hp / ws, wp / ws);
        let windows = y
            .reshape(vec![b, rows, ws, cols, ws, c])?
            .permute((0, 1, 3, 2, 4, 5))?
            .contiguous()?
            .reshape((b * rows * cols, ws * ws, c))?;
        let mask = if shift > 0 {
            let n = ws * ws;
            Some(Tensor::from_vec(
                shifted_window_mask(hp, wp, ws, shift),
                vec![1, rows * cols, 1, n, n],
                x.device(),
            )?)
        } else {
            None
        };
        let attn = self.attend(&windows, rows * cols, mask.as_ref())?;
        let mut y = attn
            .reshape(vec![b, rows, cols, ws, ws, c])?
            .permute((0, 1, 3, 2, 4, 5))?
            .contiguous()?
            .reshape((b, hp, wp, c))?;
        if shift > 0 {
            y = y.roll(shift as i32, 1)?.roll(shift as i32, 2)?;
        }
        let y = y
            .narrow(1, 0, h)?
            .narrow(2, 0, w)?
            .contiguous()?
            .reshape((b, h * w, c))?;
        let x = (x + y)?;
        let m = activate(&self.fc1.forward(&self.norm_after.forward(&x)?)?, self.act)?;
        Ok((self.fc2.forward(&m)? + x)?)
    }
}

/// `SwinPatchMerging`: each 2 × 2 group of tokens (the grid padded to even sides) concatenated,
/// normed and projected to twice the channels.
struct Merge {
    norm: LayerNorm,
    reduction: Linear,
}

impl Merge {
    fn forward(&self, x: &Tensor, (h, w): (usize, usize)) -> candle_core::Result<Tensor> {
        let (b, _, c) = x.dims3()?;
        let x = x
            .reshape((b, h, w, c))?
            .pad_with_zeros(1, 0, h % 2)?
            .pad_with_zeros(2, 0, w % 2)?;
        let (h2, w2) = (h.div_ceil(2), w.div_ceil(2));
        let x = x.reshape(vec![b, h2, 2, w2, 2, c])?;
        let part = |r: usize, col: usize| -> candle_core::Result<Tensor> {
            x.narrow(2, r, 1)?
                .narrow(4, col, 1)?
                .reshape((b, h2, w2, c))
        };
        // transformers' order: [0::2, 0::2], [1::2, 0::2], [0::2, 1::2], [1::2, 1::2]
        let x = Tensor::cat(&[part(0, 0)?, part(1, 0)?, part(0, 1)?, part(1, 1)?], 3)?
            .reshape((b, h2 * w2, 4 * c))?;
        self.reduction.forward(&self.norm.forward(&x)?)
    }
}

/// A loaded Swin classifier.
pub struct SwinClassifier {
    patch: Conv2d,
    patch_size: (usize, usize),
    patch_norm: LayerNorm,
    stages: Vec<(Vec<Block>, Option<Merge>)>,
    norm: LayerNorm,
    classifier: Linear,
    device: Device,
}

impl std::fmt::Debug for SwinClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwinClassifier")
            .field("patch_size", &self.patch_size)
            .field("stages", &self.stages.len())
            .finish_non_exhaustive()
    }
}

impl SwinClassifier {
    /// Loads the model of `config` (`config.json`) with `labels` classes.
    pub fn load(
        files: &ModelFiles,
        config: &Value,
        labels: usize,
        device: &Device,
    ) -> Result<Self, ToolkitError> {
        let cfg: Config = serde_json::from_value(config.clone()).map_err(|e| {
            ToolkitError::model_load(format!("invalid swin config in config.json: {e}"))
        })?;
        need_labels(labels)?;
        if cfg.depths.is_empty() || cfg.depths.len() != cfg.num_heads.len() {
            return Err(ToolkitError::model_load(
                "config.json: depths and num_heads must name the same stages",
            ));
        }
        if cfg.window_size == 0 || cfg.patch_size.height == 0 || cfg.patch_size.width == 0 {
            return Err(ToolkitError::model_load(
                "config.json: window_size and patch_size must be positive",
            ));
        }
        if cfg.use_absolute_embeddings {
            // transformers 4.51 adds num_patches + 1 embeddings to num_patches tokens: it fails
            return Err(ToolkitError::model_load(
                "config.json: swin with use_absolute_embeddings is not supported (transformers cannot run it either)",
            ));
        }
        let vb = var_builder(files, DType::F32, device)?;
        let c0 = cfg.embed_dim;
        let p = cfg.patch_size;
        if p.height != p.width {
            return Err(ToolkitError::model_load(
                "config.json: swin with a non-square patch_size is not supported",
            ));
        }
        let patch_cfg = Conv2dConfig {
            stride: p.height,
            ..Default::default()
        };
        let emb = vb.pp("swin.embeddings");
        let patch = conv2d(
            cfg.num_channels,
            c0,
            p.height,
            patch_cfg,
            emb.pp("patch_embeddings.projection"),
        )?;
        // SwinEmbeddings' norm is nn.LayerNorm(embed_dim): torch's default epsilon
        let patch_norm = layer_norm(c0, 1e-5, emb.pp("norm"))?;
        let mut stages = Vec::with_capacity(cfg.depths.len());
        let mut dim = c0;
        for (i, (&depth, &heads)) in cfg.depths.iter().zip(&cfg.num_heads).enumerate() {
            if heads == 0 || !dim.is_multiple_of(heads) {
                return Err(ToolkitError::model_load(format!(
                    "config.json: stage {i}'s width {dim} is not a multiple of its {heads} heads"
                )));
            }
            let svb = vb.pp(format!("swin.encoder.layers.{i}"));
            let blocks = (0..depth)
                .map(|j| {
                    let shift = if j % 2 == 0 { 0 } else { cfg.window_size / 2 };
                    Block::load(
                        svb.pp(format!("blocks.{j}")),
                        dim,
                        heads,
                        cfg.window_size,
                        shift,
                        &cfg,
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            let merge = if i + 1 < cfg.depths.len() {
                let m = Merge {
                    norm: layer_norm(4 * dim, 1e-5, svb.pp("downsample.norm"))?,
                    reduction: linear_no_bias(4 * dim, 2 * dim, svb.pp("downsample.reduction"))?,
                };
                dim *= 2;
                Some(m)
            } else {
                None
            };
            stages.push((blocks, merge));
        }
        Ok(Self {
            patch,
            patch_size: (p.height, p.width),
            patch_norm,
            stages,
            norm: layer_norm(dim, cfg.layer_norm_eps, vb.pp("swin.layernorm"))?,
            classifier: linear(dim, labels, vb.pp("classifier"))?,
            device: device.clone(),
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor, ToolkitError> {
        let (_, _, height, width) = x.dims4()?;
        let (ph, pw) = self.patch_size;
        // SwinPatchEmbeddings.maybe_pad: zeros right and below up to whole patches
        let x = x
            .pad_with_zeros(3, 0, (pw - width % pw) % pw)?
            .pad_with_zeros(2, 0, (ph - height % ph) % ph)?;
        let x = self.patch.forward(&x)?;
        let (_, _, mut h, mut w) = x.dims4()?;
        let mut hs = self
            .patch_norm
            .forward(&x.flatten_from(2)?.transpose(1, 2)?)?;
        for (blocks, merge) in &self.stages {
            for block in blocks {
                hs = block.forward(&hs, (h, w))?;
            }
            if let Some(m) = merge {
                hs = m.forward(&hs, (h, w))?;
                (h, w) = (h.div_ceil(2), w.div_ceil(2));
            }
        }
        let pooled = self.norm.forward(&hs)?.mean(1)?;
        Ok(self.classifier.forward(&pooled)?)
    }
}

impl super::image_classifier::ImageClassifier for SwinClassifier {
    /// Any size: the image is padded to whole patches and windows.
    fn input_size(&self) -> Option<(usize, usize)> {
        None
    }

    fn logits(&self, images: &[PixelValues]) -> Result<Vec<Vec<f32>>, ToolkitError> {
        logits_by_size(images, &self.device, 1, |x| self.forward(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relative_position_index_matches_transformers() {
        // SwinSelfAttention(config, 4, 1, window_size=2).relative_position_index
        assert_eq!(
            relative_position_index(2),
            [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]].concat()
        );
    }

    #[test]
    fn the_shifted_window_mask_matches_transformers() {
        // SwinLayer(config, dim, res, heads, shift_size=1) with window_size 2:
        // get_attn_mask(4, 4, ...): 4 windows of 4 tokens
        let m = shifted_window_mask(4, 4, 2, 1);
        assert_eq!(m.len(), 4 * 16);
        let z = 0.0;
        let x = -100.0;
        // the first window lies in region 0: no mask
        assert!(m[..16].iter().all(|&v| v == 0.0));
        // the second window's columns 2 and 3 are regions 1 and 2
        assert_eq!(
            &m[16..32],
            &[z, x, z, x, x, z, x, z, z, x, z, x, x, z, x, z]
        );
        // the last window holds four regions
        assert_eq!(
            &m[48..64],
            &[z, x, x, x, x, z, x, x, x, x, z, x, x, x, x, z]
        );
    }
}
