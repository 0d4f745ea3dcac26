//! ConvNeXt and ConvNeXt V2 image classification (`ConvNextForImageClassification`,
//! `ConvNextV2ForImageClassification`), written from transformers' `models/convnext/` and
//! `models/convnextv2/modeling_*.py` on candle's ops: a patchify stem (a `patch_size` convolution
//! of that stride, a channels-first layer norm), stages that downsample (a channels-first layer
//! norm and a 2x2 convolution of stride 2) then stack blocks (a 7x7 depthwise convolution, a
//! channels-last layer norm, a pointwise MLP with `hidden_act`, ConvNeXt's layer scale or V2's
//! global response normalization, the residual), global average pooling, the final layer norm
//! (`layer_norm_eps`) and the classifier. Every other layer norm uses 1e-6, as transformers does.
//!
//! V2's GRN takes `torch.linalg.norm(x, ord=2, dim=(1, 2))` of the `[b, h, w, c]` activations:
//! with two dimensions and `ord=2` that is the matrix 2-norm (the largest singular value of each
//! channel's `h × w` map), not the Frobenius norm of the original ConvNeXt V2 code; it is
//! computed here as transformers does.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{layer_norm, linear, LayerNorm, Linear, VarBuilder};
use serde::Deserialize;
use serde_json::Value;

use super::conv::{
    chain_size, global_average, logits_each, ChannelsFirstNorm, Conv, ConvAct, ConvSpec, Padding,
};
use super::loader::{var_builder, ModelFiles};
use crate::error::ToolkitError;
use crate::vision::PixelValues;

/// The epsilon of every ConvNeXt layer norm but the last.
const NORM_EPS: f64 = 1e-6;

/// `ConvNextConfig` / `ConvNextV2Config` (the fields the network needs, transformers' defaults).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
struct Config {
    num_channels: usize,
    patch_size: usize,
    num_stages: usize,
    hidden_sizes: Vec<usize>,
    depths: Vec<usize>,
    hidden_act: String,
    layer_norm_eps: f64,
    layer_scale_init_value: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            num_channels: 3,
            patch_size: 4,
            num_stages: 4,
            hidden_sizes: vec![96, 192, 384, 768],
            depths: vec![3, 3, 9, 3],
            hidden_act: "gelu".into(),
            layer_norm_eps: 1e-12,
            layer_scale_init_value: 1e-6,
        }
    }
}

/// Which of the two networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// ConvNeXt: layer scale (when `layer_scale_init_value` > 0), no GRN.
    V1,
    /// ConvNeXt V2: GRN, no layer scale.
    V2,
}

/// The largest eigenvalue of the symmetric `n × n` matrix `a` (row-major), by Householder
/// reduction to a tridiagonal matrix and bisection on its Sturm sequence.
fn largest_eigenvalue(a: &mut [f64], n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let at = |i: usize, j: usize| i * n + j;
    let mut v = vec![0f64; n];
    let mut p = vec![0f64; n];
    for k in 0..n.saturating_sub(2) {
        // the column below the diagonal, k+1..n
        let norm = (k + 1..n).map(|i| a[at(i, k)].powi(2)).sum::<f64>().sqrt();
        if norm == 0.0 {
            continue;
        }
        let x0 = a[at(k + 1, k)];
        let alpha = if x0 > 0.0 { -norm } else { norm };
        for i in k + 1..n {
            v[i] = a[at(i, k)];
        }
        v[k + 1] -= alpha;
        let vn = (k + 1..n).map(|i| v[i] * v[i]).sum::<f64>().sqrt();
        if vn == 0.0 {
            continue;
        }
        for x in &mut v[k + 1..n] {
            *x /= vn;
        }
        // A' = H A H on the trailing block, H = I - 2 v vᵀ: p = A v, q = p - (vᵀp) v,
        // A' = A - 2 (v qᵀ + q vᵀ)
        for i in k + 1..n {
            p[i] = (k + 1..n).map(|j| a[at(i, j)] * v[j]).sum();
        }
        let kk: f64 = (k + 1..n).map(|i| v[i] * p[i]).sum();
        for i in k + 1..n {
            p[i] -= kk * v[i];
        }
        for i in k + 1..n {
            for j in k + 1..n {
                a[at(i, j)] -= 2.0 * (v[i] * p[j] + p[i] * v[j]);
            }
        }
        a[at(k + 1, k)] = alpha;
        a[at(k, k + 1)] = alpha;
        for i in k + 2..n {
            a[at(i, k)] = 0.0;
            a[at(k, i)] = 0.0;
        }
    }
    let d: Vec<f64> = (0..n).map(|i| a[at(i, i)]).collect();
    let e: Vec<f64> = (1..n).map(|i| a[at(i, i - 1)]).collect();
    // Gershgorin bounds
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for i in 0..n {
        let r = if i > 0 { e[i - 1].abs() } else { 0.0 } + if i + 1 < n { e[i].abs() } else { 0.0 };
        lo = lo.min(d[i] - r);
        hi = hi.max(d[i] + r);
    }
    // the number of eigenvalues below x
    let below = |x: f64| {
        let mut count = 0;
        let mut q = 1.0;
        for i in 0..n {
            let off = if i > 0 { e[i - 1] * e[i - 1] } else { 0.0 };
            q = d[i] - x - if i > 0 { off / q } else { 0.0 };
            if q == 0.0 {
                q = -f64::EPSILON * (x.abs() + 1.0);
            }
            if q < 0.0 {
                count += 1;
            }
        }
        count
    };
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if below(mid) == n {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The largest singular value of each channel's `h × w` map of `x` (`[b, h, w, c]`), as
/// `torch.linalg.norm(x, ord=2, dim=(1, 2), keepdim=True)`: `[b, 1, 1, c]`.
fn spectral_norms(x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, h, w, c) = x.dims4()?;
    // [b, c, h, w], and the Gram matrix of the smaller side, in float64
    let m = x
        .permute((0, 3, 1, 2))?
        .contiguous()?
        .to_dtype(DType::F64)?;
    let (gram, n) = if w <= h {
        (m.transpose(2, 3)?.contiguous()?.matmul(&m)?, w)
    } else {
        (m.matmul(&m.transpose(2, 3)?.contiguous()?)?, h)
    };
    if n == 0 {
        return Tensor::zeros((b, 1, 1, c), DType::F32, x.device());
    }
    let mut g: Vec<f64> = gram.to_device(&Device::Cpu)?.flatten_all()?.to_vec1()?;
    let norms: Vec<f32> = g
        .chunks_exact_mut(n * n)
        .map(|a| largest_eigenvalue(a, n).max(0.0).sqrt() as f32)
        .collect();
    Tensor::from_vec(norms, (b, 1, 1, c), x.device())
}

struct Block {
    dwconv: Conv,
    norm: LayerNorm,
    pwconv1: Linear,
    pwconv2: Linear,
    /// ConvNeXt's layer scale, `[c]`.
    scale: Option<Tensor>,
    /// ConvNeXt V2's GRN weight and bias, `[1, 1, 1, 4c]`.
    grn: Option<(Tensor, Tensor)>,
    act: ConvAct,
}

impl Block {
    fn load(
        vb: VarBuilder,
        dim: usize,
        cfg: &Config,
        version: Version,
        act: ConvAct,
    ) -> candle_core::Result<Self> {
        let dw = ConvSpec::new(dim, dim, 7)
            .padding(Padding::Symmetric(3))
            .groups(dim);
        let scale = match version {
            Version::V1 if cfg.layer_scale_init_value > 0.0 => {
                Some(vb.get(dim, "layer_scale_parameter")?)
            }
            _ => None,
        };
        let grn = match version {
            Version::V2 => Some((
                vb.get((1, 1, 1, 4 * dim), "grn.weight")?,
                vb.get((1, 1, 1, 4 * dim), "grn.bias")?,
            )),
            Version::V1 => None,
        };
        Ok(Self {
            dwconv: Conv::load(vb.pp("dwconv"), dw, true)?,
            norm: layer_norm(dim, NORM_EPS, vb.pp("layernorm"))?,
            pwconv1: linear(dim, 4 * dim, vb.pp("pwconv1"))?,
            pwconv2: linear(4 * dim, dim, vb.pp("pwconv2"))?,
            scale,
            grn,
            act,
        })
    }

    /// `x`: `[b, c, h, w]`.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let y = self.dwconv.forward(x)?;
        let y = y
            .permute((0, 2, 3, 1))?
            .contiguous()?
            .reshape((b * h * w, c))?;
        let y = self.norm.forward(&y)?;
        let y = self.act.apply(&self.pwconv1.forward(&y)?)?;
        let y = match &self.grn {
            Some((weight, bias)) => {
                let y = y.reshape((b, h, w, 4 * c))?;
                let g = spectral_norms(&y)?;
                let nf = g.broadcast_div(&(g.mean_keepdim(3)? + 1e-6)?)?;
                let out = y
                    .broadcast_mul(&nf)?
                    .broadcast_mul(weight)?
                    .broadcast_add(bias)?
                    .add(&y)?;
                out.reshape((b * h * w, 4 * c))?
            }
            None => y,
        };
        let y = self.pwconv2.forward(&y)?;
        let y = match &self.scale {
            Some(s) => y.broadcast_mul(s)?,
            None => y,
        };
        let y = y.reshape((b, h, w, c))?.permute((0, 3, 1, 2))?;
        x + y
    }
}

struct Stage {
    downsample: Option<(ChannelsFirstNorm, Conv)>,
    blocks: Vec<Block>,
}

/// A loaded ConvNeXt (or V2) classifier.
pub struct ConvNext {
    version: Version,
    stem: Conv,
    stem_norm: ChannelsFirstNorm,
    stages: Vec<Stage>,
    norm: LayerNorm,
    classifier: Linear,
    labels: usize,
    device: Device,
}

impl std::fmt::Debug for ConvNext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConvNext")
            .field("version", &self.version)
            .field("stages", &self.stages.len())
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

impl ConvNext {
    /// Loads the model of `config` (`config.json`) with `labels` classes.
    pub fn load(
        files: &ModelFiles,
        config: &Value,
        labels: usize,
        version: Version,
        device: &Device,
    ) -> Result<Self, ToolkitError> {
        let cfg: Config = serde_json::from_value(config.clone()).map_err(|e| {
            ToolkitError::model_load(format!("invalid convnext config in config.json: {e}"))
        })?;
        let n = cfg.num_stages;
        if n == 0 || cfg.hidden_sizes.len() < n || cfg.depths.len() < n {
            return Err(ToolkitError::model_load(format!(
                "config.json: num_stages is {n} but hidden_sizes and depths have {} and {} entries",
                cfg.hidden_sizes.len(),
                cfg.depths.len()
            )));
        }
        let last = cfg.hidden_sizes[n - 1];
        if cfg.hidden_sizes.last() != Some(&last) || cfg.hidden_sizes.contains(&0) {
            return Err(ToolkitError::model_load(
                "config.json: hidden_sizes must be positive and end with the last stage's size",
            ));
        }
        if cfg.num_channels != 3 || cfg.patch_size == 0 {
            return Err(ToolkitError::model_load(
                "config.json: num_channels must be 3 (RGB) and patch_size positive",
            ));
        }
        if labels == 0 {
            return Err(ToolkitError::model_load(
                "config.json has no labels (id2label or num_labels): not an image classifier",
            ));
        }
        let act = ConvAct::parse(&cfg.hidden_act)?;
        let vb = var_builder(files, DType::F32, device)?;
        let base = vb.pp(match version {
            Version::V1 => "convnext",
            Version::V2 => "convnextv2",
        });
        let emb = base.pp("embeddings");
        let h0 = cfg.hidden_sizes[0];
        let stem = Conv::load(
            emb.pp("patch_embeddings"),
            ConvSpec::new(cfg.num_channels, h0, cfg.patch_size).stride(cfg.patch_size),
            true,
        )?;
        let stem_norm = ChannelsFirstNorm::load(emb.pp("layernorm"), h0, NORM_EPS)?;
        let mut stages = Vec::with_capacity(n);
        let mut prev = h0;
        for i in 0..n {
            let out = cfg.hidden_sizes[i];
            let stride = if i > 0 { 2 } else { 1 };
            let st = base.pp(format!("encoder.stages.{i}"));
            let downsample = if prev != out || stride > 1 {
                let d = st.pp("downsampling_layer");
                Some((
                    ChannelsFirstNorm::load(d.pp("0"), prev, NORM_EPS)?,
                    Conv::load(d.pp("1"), ConvSpec::new(prev, out, 2).stride(stride), true)?,
                ))
            } else {
                None
            };
            let blocks = (0..cfg.depths[i])
                .map(|j| Block::load(st.pp(format!("layers.{j}")), out, &cfg, version, act))
                .collect::<candle_core::Result<Vec<_>>>()?;
            stages.push(Stage { downsample, blocks });
            prev = out;
        }
        Ok(Self {
            version,
            stem,
            stem_norm,
            stages,
            norm: layer_norm(last, cfg.layer_norm_eps, base.pp("layernorm"))?,
            classifier: linear(last, labels, vb.pp("classifier"))?,
            labels,
            device: device.clone(),
        })
    }

    fn forward(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = self.stem_norm.forward(&self.stem.forward(pixels)?)?;
        for stage in &self.stages {
            if let Some((norm, conv)) = &stage.downsample {
                x = conv.forward(&norm.forward(&x)?)?;
            }
            for block in &stage.blocks {
                x = block.forward(&x)?;
            }
        }
        let pooled = self.norm.forward(&global_average(&x)?)?;
        self.classifier.forward(&pooled)
    }
}

impl super::image_classifier::ImageClassifier for ConvNext {
    fn input_size(&self) -> Option<(usize, usize)> {
        None
    }

    fn logits(&self, images: &[PixelValues]) -> Result<Vec<Vec<f32>>, ToolkitError> {
        let fits = |h, w| {
            let convs = std::iter::once(&self.stem).chain(
                self.stages
                    .iter()
                    .filter_map(|s| s.downsample.as_ref().map(|(_, c)| c)),
            );
            // the blocks' 7x7 depthwise convolutions (padding 3) keep any size
            chain_size(convs, h, w).is_some()
        };
        logits_each(images, self.labels, &self.device, fits, |x| self.forward(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_eigenvalue_of_symmetric_matrices() {
        // numpy.linalg.eigvalsh
        let mut a = vec![2.0, 1.0, 0.0, 1.0, 3.0, 1.0, 0.0, 1.0, 4.0];
        assert!((largest_eigenvalue(&mut a, 3) - 4.732_050_807_568_877).abs() < 1e-12);
        let mut a = vec![5.0];
        assert_eq!(largest_eigenvalue(&mut a, 1), 5.0);
        let mut a = vec![1.0, 2.0, 2.0, 1.0];
        assert!((largest_eigenvalue(&mut a, 2) - 3.0).abs() < 1e-12);
        // two equal largest eigenvalues (the identity)
        let mut a = vec![0.0; 16];
        for i in 0..4 {
            a[i * 5] = 1.0;
        }
        assert!((largest_eigenvalue(&mut a, 4) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn grn_norms_are_matrix_two_norms() {
        // torch.linalg.norm(x, ord=2, dim=(1, 2)) of x = arange(24).reshape(1, 3, 4, 2) / 7 - 1:
        // the largest singular value of each 3x4 channel map, not the Frobenius norm
        let x = Tensor::arange(0f32, 24f32, &Device::Cpu)
            .unwrap()
            .reshape((1, 3, 4, 2))
            .unwrap();
        let x = ((x / 7.0).unwrap() - 1.0).unwrap();
        let g: Vec<f32> = spectral_norms(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let want = [3.837_029_7_f32, 4.128_594];
        for (a, b) in g.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{g:?}");
        }
    }
}
