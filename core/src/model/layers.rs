//! The transformer encoder layer shared by the BERT family and DistilBERT: post-norm self-attention
//! and feed-forward, as `BertLayer` / `TransformerBlock` in transformers
//! (`models/bert/modeling_bert.py`, `models/distilbert/modeling_distilbert.py`).

use candle_core::{Module, Result, Tensor};
use candle_nn::{layer_norm, linear, LayerNorm, Linear, VarBuilder};

use super::config::Activation;

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

    fn heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, s, _) = x.dims3()?;
        let hd = self.dims.hidden / self.dims.heads;
        x.reshape((b, s, self.dims.heads, hd))?
            .transpose(1, 2)?
            .contiguous()
    }

    /// `x`: `[b, s, h]`; `bias`: additive attention mask `[b, 1, 1, s]`.
    pub(crate) fn forward(&self, x: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let (b, s, h) = x.dims3()?;
        let hd = h / self.dims.heads;
        let q = self.heads(&self.q.forward(x)?)?;
        let k = self.heads(&self.k.forward(x)?)?;
        let v = self.heads(&self.v.forward(x)?)?;
        let scale = 1.0 / (hd as f64).sqrt();
        let scores = (q.matmul(&k.transpose(2, 3)?.contiguous()?)? * scale)?.broadcast_add(bias)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let ctx = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, s, h))?;
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
};

/// One pre-norm transformer layer (ViT, YOLOS, CLIP): `x + attn(norm1(x))`, then
/// `x + mlp(norm2(x))`.
pub(crate) struct PreNormLayer {
    norm1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    dims: LayerDims,
}

impl PreNormLayer {
    pub(crate) fn load(vb: VarBuilder, names: &PreNormNames, dims: LayerDims) -> Result<Self> {
        let h = dims.hidden;
        Ok(Self {
            norm1: layer_norm(h, dims.eps, vb.pp(names.norm1))?,
            q: linear(h, h, vb.pp(names.q))?,
            k: linear(h, h, vb.pp(names.k))?,
            v: linear(h, h, vb.pp(names.v))?,
            out: linear(h, h, vb.pp(names.out))?,
            norm2: layer_norm(h, dims.eps, vb.pp(names.norm2))?,
            fc1: linear(h, dims.intermediate, vb.pp(names.fc1))?,
            fc2: linear(dims.intermediate, h, vb.pp(names.fc2))?,
            dims,
        })
    }

    fn heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, s, _) = x.dims3()?;
        let hd = self.dims.hidden / self.dims.heads;
        x.reshape((b, s, self.dims.heads, hd))?
            .transpose(1, 2)?
            .contiguous()
    }

    /// `x`: `[b, s, h]`; `bias`: an additive attention mask broadcast to `[b, heads, s, s]`
    /// (CLIP's causal mask), or none.
    pub(crate) fn forward(&self, x: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let (b, s, h) = x.dims3()?;
        let hd = h / self.dims.heads;
        let a = self.norm1.forward(x)?;
        let q = self.heads(&self.q.forward(&a)?)?;
        let k = self.heads(&self.k.forward(&a)?)?;
        let v = self.heads(&self.v.forward(&a)?)?;
        let scale = 1.0 / (hd as f64).sqrt();
        let mut scores = (q.matmul(&k.transpose(2, 3)?.contiguous()?)? * scale)?;
        if let Some(bias) = bias {
            scores = scores.broadcast_add(bias)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let ctx = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, s, h))?;
        let x = (self.out.forward(&ctx)? + x)?;
        let m = activate(&self.fc1.forward(&self.norm2.forward(&x)?)?, self.dims.act)?;
        self.fc2.forward(&m)? + x
    }
}
