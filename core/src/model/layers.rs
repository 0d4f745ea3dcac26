//! The transformer encoder layer shared by the BERT family and DistilBERT: post-norm self-attention
//! and feed-forward, as `BertLayer` / `TransformerBlock` in transformers
//! (`models/bert/modeling_bert.py`, `models/distilbert/modeling_distilbert.py`).

use candle_core::{Module, Result, Tensor};
use candle_nn::{layer_norm, linear, LayerNorm, Linear, VarBuilder};

use super::config::Activation;
use crate::vision::interpolate::{self, Taps};

/// The checkpoint names of a layer's weights, relative to the layer prefix.
pub(crate) struct LayerNames {
    pub(crate) q: &'static str,
    pub(crate) k: &'static str,
    pub(crate) v: &'static str,
    pub(crate) out: &'static str,
    pub(crate) attn_norm: &'static str,
    pub(crate) ff_in: &'static str,
    pub(crate) ff_out: &'static str,
    pub(crate) ff_norm: &'static str,
}

/// Sizes of a layer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerDims {
    pub(crate) hidden: usize,
    pub(crate) heads: usize,
    pub(crate) intermediate: usize,
    pub(crate) eps: f64,
    pub(crate) act: Activation,
}

pub(crate) fn activate(x: &Tensor, act: Activation) -> Result<Tensor> {
    match act {
        Activation::Gelu => x.gelu_erf(),
        Activation::GeluNew => x.gelu(),
        Activation::Relu => x.relu(),
        Activation::QuickGelu => x * candle_nn::ops::sigmoid(&(x * 1.702)?)?,
    }
}

/// ViT's patch embedding (`patch_embeddings.projection`, as DeiT, DINOv2, BEiT and YOLOS name it
/// too): a `patch × patch` convolution of stride `patch`, read out as tokens.
pub(crate) struct PatchEmbedding(candle_nn::Conv2d);

impl PatchEmbedding {
    /// Loads `patch_embeddings.projection` under the embeddings' `vb`.
    pub(crate) fn load(
        vb: &VarBuilder,
        channels: usize,
        hidden: usize,
        patch: usize,
    ) -> Result<Self> {
        let cfg = candle_nn::Conv2dConfig {
            stride: patch,
            ..Default::default()
        };
        candle_nn::conv2d(
            channels,
            hidden,
            patch,
            cfg,
            vb.pp("patch_embeddings.projection"),
        )
        .map(Self)
    }

    /// `[b, c, h, w]` pixels to `[b, patches, hidden]` tokens, row by row.
    pub(crate) fn tokens(&self, x: &Tensor) -> Result<Tensor> {
        self.0.forward(x)?.flatten_from(2)?.transpose(1, 2)
    }
}

/// `[b, s, heads · d]` → `[b, heads, s, d]`, contiguous: the heads of a projection.
pub(crate) fn split_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, s, h) = x.dims3()?;
    x.reshape((b, s, heads, h / heads))?
        .transpose(1, 2)?
        .contiguous()
}

/// Scaled dot-product attention with the heads merged back: `q` `[b, heads, t, d]`, `k` and `v`
/// `[b, heads, s, d]`; `softmax(q · kᵀ · scale + bias) · v` as `[b, t, heads · d]`. `bias` is
/// added to the scores as given (a mask, a relative position bias), broadcast.
pub(crate) fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    let (b, heads, t, d) = q.dims4()?;
    let mut scores = (q.matmul(&k.transpose(2, 3)?.contiguous()?)? * scale)?;
    if let Some(bias) = bias {
        scores = scores.broadcast_add(bias)?;
    }
    let probs = candle_nn::ops::softmax_last_dim(&scores)?;
    probs.matmul(v)?.transpose(1, 2)?.reshape((b, t, heads * d))
}

/// `1 / sqrt(head size)`, the scale of a layer's attention scores.
fn head_scale(dims: LayerDims) -> f64 {
    1.0 / ((dims.hidden / dims.heads) as f64).sqrt()
}

/// One encoder layer.
pub(crate) struct EncoderLayer {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    attn_norm: LayerNorm,
    ff_in: Linear,
    ff_out: Linear,
    ff_norm: LayerNorm,
    dims: LayerDims,
}

impl EncoderLayer {
    pub(crate) fn load(vb: VarBuilder, names: &LayerNames, dims: LayerDims) -> Result<Self> {
        let h = dims.hidden;
        Ok(Self {
            q: linear(h, h, vb.pp(names.q))?,
            k: linear(h, h, vb.pp(names.k))?,
            v: linear(h, h, vb.pp(names.v))?,
            out: linear(h, h, vb.pp(names.out))?,
            attn_norm: layer_norm(h, dims.eps, vb.pp(names.attn_norm))?,
            ff_in: linear(h, dims.intermediate, vb.pp(names.ff_in))?,
            ff_out: linear(dims.intermediate, h, vb.pp(names.ff_out))?,
            ff_norm: layer_norm(h, dims.eps, vb.pp(names.ff_norm))?,
            dims,
        })
    }

    /// `x`: `[b, s, h]`; `bias`: additive attention mask `[b, 1, 1, s]`.
    pub(crate) fn forward(&self, x: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let heads = self.dims.heads;
        let q = split_heads(&self.q.forward(x)?, heads)?;
        let k = split_heads(&self.k.forward(x)?, heads)?;
        let v = split_heads(&self.v.forward(x)?, heads)?;
        let ctx = attend(&q, &k, &v, head_scale(self.dims), Some(bias))?;
        let attn = self.attn_norm.forward(&(self.out.forward(&ctx)? + x)?)?;
        let ff = activate(&self.ff_in.forward(&attn)?, self.dims.act)?;
        self.ff_norm.forward(&(self.ff_out.forward(&ff)? + attn)?)
    }
}

/// The first token's hidden state of every sequence: `[b, s, h]` → `[b, h]`.
pub(crate) fn first_token(hidden: &Tensor) -> Result<Tensor> {
    hidden.narrow(1, 0, 1)?.squeeze(1)
}

/// The checkpoint names of a pre-norm layer's weights, relative to the layer prefix.
pub(crate) struct PreNormNames {
    pub(crate) norm1: &'static str,
    pub(crate) q: &'static str,
    pub(crate) k: &'static str,
    pub(crate) v: &'static str,
    pub(crate) out: &'static str,
    pub(crate) norm2: &'static str,
    pub(crate) fc1: &'static str,
    pub(crate) fc2: &'static str,
    /// The layer scales (a per-channel factor on each branch) when the layer has them: BEiT's
    /// `lambda_1` / `lambda_2`, DINOv2's `layer_scale1.lambda1` / `layer_scale2.lambda1`.
    pub(crate) scales: Option<(&'static str, &'static str)>,
    /// Whether the key projection has a bias (BEiT's has none).
    pub(crate) key_bias: bool,
}

/// ViT's names (`ViTLayer`, and YOLOS's, DeiT's).
pub(crate) const VIT_NAMES: PreNormNames = PreNormNames {
    norm1: "layernorm_before",
    q: "attention.attention.query",
    k: "attention.attention.key",
    v: "attention.attention.value",
    out: "attention.output.dense",
    norm2: "layernorm_after",
    fc1: "intermediate.dense",
    fc2: "output.dense",
    scales: None,
    key_bias: true,
};

/// BEiT's names (`BeitLayer`): ViT's, a key without bias, and layer scales.
pub(crate) const BEIT_NAMES: PreNormNames = PreNormNames {
    scales: Some(("lambda_1", "lambda_2")),
    key_bias: false,
    ..VIT_NAMES
};

/// DINOv2's names (`Dinov2Layer`).
pub(crate) const DINOV2_NAMES: PreNormNames = PreNormNames {
    norm1: "norm1",
    norm2: "norm2",
    fc1: "mlp.fc1",
    fc2: "mlp.fc2",
    scales: Some(("layer_scale1.lambda1", "layer_scale2.lambda1")),
    ..VIT_NAMES
};

/// CLIP's names (`CLIPEncoderLayer`, text and vision).
pub(crate) const CLIP_NAMES: PreNormNames = PreNormNames {
    norm1: "layer_norm1",
    q: "self_attn.q_proj",
    k: "self_attn.k_proj",
    v: "self_attn.v_proj",
    out: "self_attn.out_proj",
    norm2: "layer_norm2",
    fc1: "mlp.fc1",
    fc2: "mlp.fc2",
    scales: None,
    key_bias: true,
};

/// One pre-norm transformer layer (ViT, YOLOS, CLIP, DeiT, BEiT, DINOv2): `x + attn(norm1(x))`,
/// then `x + mlp(norm2(x))`, each branch optionally scaled per channel (layer scale).
pub(crate) struct PreNormLayer {
    norm1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    /// `[hidden]` factors of the attention and MLP branches.
    scales: Option<(Tensor, Tensor)>,
    dims: LayerDims,
}

impl PreNormLayer {
    /// Loads a layer; its layer scales too when `names` has them and `layer_scale` is set (BEiT
    /// has them only for a positive `layer_scale_init_value`).
    pub(crate) fn load(vb: VarBuilder, names: &PreNormNames, dims: LayerDims) -> Result<Self> {
        Self::load_scaled(vb, names, dims, names.scales.is_some())
    }

    /// [`Self::load`], with the layer scales only if `layer_scale`.
    pub(crate) fn load_scaled(
        vb: VarBuilder,
        names: &PreNormNames,
        dims: LayerDims,
        layer_scale: bool,
    ) -> Result<Self> {
        let h = dims.hidden;
        let scales = match names.scales {
            Some((s1, s2)) if layer_scale => Some((vb.get(h, s1)?, vb.get(h, s2)?)),
            _ => None,
        };
        Ok(Self {
            norm1: layer_norm(h, dims.eps, vb.pp(names.norm1))?,
            q: linear(h, h, vb.pp(names.q))?,
            k: if names.key_bias {
                linear(h, h, vb.pp(names.k))?
            } else {
                candle_nn::linear_no_bias(h, h, vb.pp(names.k))?
            },
            v: linear(h, h, vb.pp(names.v))?,
            out: linear(h, h, vb.pp(names.out))?,
            norm2: layer_norm(h, dims.eps, vb.pp(names.norm2))?,
            fc1: linear(h, dims.intermediate, vb.pp(names.fc1))?,
            fc2: linear(dims.intermediate, h, vb.pp(names.fc2))?,
            scales,
            dims,
        })
    }

    /// `x`: `[b, s, h]`; `bias`: an additive attention bias broadcast to `[b, heads, s, s]`
    /// (CLIP's causal mask, BEiT's relative position bias), or none.
    pub(crate) fn forward(&self, x: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let heads = self.dims.heads;
        let a = self.norm1.forward(x)?;
        let q = split_heads(&self.q.forward(&a)?, heads)?;
        let k = split_heads(&self.k.forward(&a)?, heads)?;
        let v = split_heads(&self.v.forward(&a)?, heads)?;
        let ctx = attend(&q, &k, &v, head_scale(self.dims), bias)?;
        let mut attn = self.out.forward(&ctx)?;
        if let Some((s1, _)) = &self.scales {
            attn = attn.broadcast_mul(s1)?;
        }
        let x = (attn + x)?;
        let m = activate(&self.fc1.forward(&self.norm2.forward(&x)?)?, self.dims.act)?;
        let mut m = self.fc2.forward(&m)?;
        if let Some((_, s2)) = &self.scales {
            m = m.broadcast_mul(s2)?;
        }
        m + x
    }
}

/// Resizes maps laid out as `[n, c, gh, gw]` to `[n, c, h, w]` with one interpolation matrix
/// per axis (`taps(in, out)` gives an axis's taps).
fn resize_2d(
    x: &Tensor,
    h: usize,
    w: usize,
    taps: fn(usize, usize) -> Vec<Taps>,
) -> Result<Tensor> {
    let (_, _, gh, gw) = x.dims4()?;
    if (gh, gw) == (h, w) {
        return Ok(x.clone());
    }
    let dev = x.device();
    let mw = Tensor::from_vec(interpolate::matrix(&taps(gw, w), gw), (w, gw), dev)?
        .t()?
        .contiguous()?;
    let mh = Tensor::from_vec(interpolate::matrix(&taps(gh, h), gh), (h, gh), dev)?;
    mh.broadcast_matmul(&x.contiguous()?.broadcast_matmul(&mw)?)
}

/// `nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)` on
/// `[n, c, gh, gw]` maps (position embeddings laid out as a grid).
pub(crate) fn resize_bicubic(x: &Tensor, h: usize, w: usize) -> Result<Tensor> {
    resize_2d(x, h, w, interpolate::bicubic_taps)
}

/// The position embeddings of a CLS token and a `grid` of patches, `[1, 1 + gh·gw, hidden]`,
/// for an image of `image` pixels (`(height, width)`) cut into `(rows, cols)` patches, as
/// `interpolate_pos_encoding` of DINOv2 and BEiT (`ViTEmbeddings`') in transformers 4.51: kept
/// when the patch count is the same and the image square, else the patch part resized
/// bicubically to `rows × cols` (`align_corners=False`, no antialiasing).
pub(crate) fn interpolate_positions(
    position: &Tensor,
    grid: (usize, usize),
    image: (usize, usize),
    patches: (usize, usize),
) -> Result<Tensor> {
    let (gh, gw) = grid;
    let (rows, cols) = patches;
    if rows * cols == gh * gw && image.0 == image.1 {
        return Ok(position.clone());
    }
    let hidden = position.dim(2)?;
    let cls = position.narrow(1, 0, 1)?;
    let grid = position
        .narrow(1, 1, gh * gw)?
        .reshape((1, gh, gw, hidden))?
        .permute((0, 3, 1, 2))?;
    let resized = resize_bicubic(&grid, rows, cols)?
        .permute((0, 2, 3, 1))?
        .reshape((1, rows * cols, hidden))?;
    Tensor::cat(&[cls, resized], 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn close(got: &Tensor, want: &[f32]) {
        let got: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn position_embeddings_are_resized_as_dinov2_resizes_them() {
        // Dinov2Embeddings(Dinov2Config(hidden_size=2, image_size=8, patch_size=4)) with
        // position_embeddings = arange(10).view(1, 5, 2) ** 1.5 / 3
        let table: Vec<f32> = (0..10).map(|i| (i as f32).powf(1.5) / 3.0).collect();
        let pos = Tensor::from_vec(table.clone(), (1, 5, 2), &Device::Cpu).unwrap();
        // interpolate_pos_encoding(embeddings, 8, 12): a 2x3 grid
        let got = interpolate_positions(&pos, (2, 2), (8, 12), (2, 3)).unwrap();
        close(
            &got,
            &[
                0.0, 0.333333, 0.793169, 1.558898, 1.804738, 2.729415, 2.816307, 3.899933,
                4.669512, 5.92806, 6.220726, 7.58671, 7.771942, 9.245363,
            ],
        );
        // a square image of as many patches: kept as is
        let same = interpolate_positions(&pos, (2, 2), (8, 8), (2, 2)).unwrap();
        close(&same, &table);
        // as many patches in a 4x16 image (1x4): resized all the same
        let wide = interpolate_positions(&pos, (2, 2), (4, 16), (1, 4)).unwrap();
        close(
            &wide,
            &[
                0.0, 0.333333, 2.690585, 3.698487, 3.415633, 4.498899, 4.60983, 5.817226, 5.334879,
                6.617639,
            ],
        );
    }
}
