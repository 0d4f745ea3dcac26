//! T5 (v1 and v1.1 / flan-T5 gated-GELU, and mT5) on the CPU kernels, as transformers'
//! `modeling_t5.py` computes it in float32: RMS layer norms, unscaled attention with relative
//! position buckets (computed in the first layer of each stack and shared by the others), a
//! key/value cache for the decoder and the encoder's keys/values computed once per input.

use candle_nn::VarBuilder;
use serde::Deserialize;
use serde_json::Value;

use crate::error::ToolkitError;
use crate::kernels::decode::{cached_attention, gated, Act, AttnShape, Visibility};
use crate::kernels::head::LmHead;
use crate::kernels::PackedLinear;
use crate::model::causal::Norm;
use crate::model::kernel_encoder::get;
use crate::model::lm::{argmax_only, KvCache, LanguageModel, StepInput};
use crate::model::seq2seq;

#[derive(Deserialize)]
struct T5Config {
    vocab_size: usize,
    d_model: usize,
    d_kv: usize,
    d_ff: usize,
    num_layers: usize,
    num_decoder_layers: Option<usize>,
    num_heads: usize,
    #[serde(default = "default_buckets")]
    relative_attention_num_buckets: usize,
    #[serde(default = "default_distance")]
    relative_attention_max_distance: usize,
    #[serde(default = "default_eps")]
    layer_norm_epsilon: f64,
    #[serde(default = "default_ff")]
    feed_forward_proj: String,
    #[serde(default = "yes")]
    tie_word_embeddings: bool,
}

fn default_buckets() -> usize {
    32
}
fn default_distance() -> usize {
    128
}
fn default_eps() -> f64 {
    1e-6
}
fn default_ff() -> String {
    "relu".into()
}
fn yes() -> bool {
    true
}

#[derive(Debug)]
struct Attention {
    /// Queries, keys and values fused (`[3 · inner, d_model]`), or queries alone for
    /// cross-attention (whose keys and values come from `kv`).
    q_or_qkv: PackedLinear,
    kv: Option<PackedLinear>,
    o: PackedLinear,
    norm: Norm,
}

#[derive(Debug)]
struct FeedForward {
    norm: Norm,
    wi: PackedLinear,
    wo: PackedLinear,
    act: Act,
    /// `Some(d_ff)` when `wi` holds `[wi_0 | wi_1]` (gated).
    gated: Option<usize>,
}

impl FeedForward {
    fn forward(&self, x: &mut [f32], rows: usize) {
        let mut y = x.to_vec();
        self.norm.apply(&mut y);
        let mut hmid = self.wi.forward(&y, rows);
        let hmid = match self.gated {
            Some(ff) => gated(&hmid, ff, self.act),
            None => {
                self.act.apply(&mut hmid);
                hmid
            }
        };
        let out = self.wo.forward(&hmid, rows);
        for (a, b) in x.iter_mut().zip(&out) {
            *a += b;
        }
    }
}

#[derive(Debug)]
struct EncoderBlock {
    attn: Attention,
    ff: FeedForward,
}

#[derive(Debug)]
struct DecoderBlock {
    attn: Attention,
    cross: Attention,
    ff: FeedForward,
}

/// A T5 encoder-decoder.
#[derive(Debug)]
pub struct T5 {
    vocab: usize,
    d_model: usize,
    inner: usize,
    heads: usize,
    d_kv: usize,
    buckets: usize,
    max_distance: usize,
    shared: Vec<f32>,
    enc_bias: Vec<f32>,
    dec_bias: Vec<f32>,
    encoder: Vec<EncoderBlock>,
    enc_norm: Norm,
    decoder: Vec<DecoderBlock>,
    dec_norm: Norm,
    lm_head: LmHead,
    /// `d_model^-0.5` when the head is tied to the embeddings, else 1.
    head_scale: f32,
}

fn cfg_err(e: impl std::fmt::Display) -> ToolkitError {
    ToolkitError::model_load(format!("invalid t5 config.json: {e}"))
}

fn lin(vb: &VarBuilder, n: usize, k: usize) -> Result<Vec<f32>, ToolkitError> {
    get(vb, &[n, k], "weight")
}

impl T5 {
    /// Loads a T5 / mT5 model.
    pub fn load(config: &Value, vb: &VarBuilder) -> Result<Self, ToolkitError> {
        let c: T5Config = serde_json::from_value(config.clone()).map_err(cfg_err)?;
        let (d, inner) = (c.d_model, c.num_heads * c.d_kv);
        let parts: Vec<&str> = c.feed_forward_proj.split('-').collect();
        let is_gated = parts.first() == Some(&"gated");
        let act_name = match parts.last().copied() {
            Some("gelu") if c.feed_forward_proj == "gated-gelu" => "gelu_new",
            Some(a) => a,
            None => "relu",
        };
        let act = Act::parse(act_name).ok_or_else(|| {
            cfg_err(format!(
                "feed_forward_proj {:?} is not supported",
                c.feed_forward_proj
            ))
        })?;
        let eps = c.layer_norm_epsilon as f32;
        let norm = |vb: &VarBuilder| -> Result<Norm, ToolkitError> {
            Ok(Norm::Rms {
                weight: get(vb, &[d], "weight")?,
                eps,
                add_one: false,
            })
        };
        let ff = |vb: &VarBuilder| -> Result<FeedForward, ToolkitError> {
            let dd = vb.pp("DenseReluDense");
            let wi = if is_gated {
                let mut w = lin(&dd.pp("wi_0"), c.d_ff, d)?;
                w.extend(lin(&dd.pp("wi_1"), c.d_ff, d)?);
                PackedLinear::new(&w, None, 2 * c.d_ff, d)
            } else {
                PackedLinear::new(&lin(&dd.pp("wi"), c.d_ff, d)?, None, c.d_ff, d)
            };
            Ok(FeedForward {
                norm: norm(&vb.pp("layer_norm"))?,
                wi,
                wo: PackedLinear::new(&lin(&dd.pp("wo"), d, c.d_ff)?, None, d, c.d_ff),
                act,
                gated: is_gated.then_some(c.d_ff),
            })
        };
        let self_attn = |vb: &VarBuilder, name: &str| -> Result<Attention, ToolkitError> {
            let a = vb.pp(name);
            let mut w = lin(&a.pp("q"), inner, d)?;
            w.extend(lin(&a.pp("k"), inner, d)?);
            w.extend(lin(&a.pp("v"), inner, d)?);
            Ok(Attention {
                q_or_qkv: PackedLinear::new(&w, None, 3 * inner, d),
                kv: None,
                o: PackedLinear::new(&lin(&a.pp("o"), d, inner)?, None, d, inner),
                norm: norm(&vb.pp("layer_norm"))?,
            })
        };
        let cross_attn = |vb: &VarBuilder| -> Result<Attention, ToolkitError> {
            let a = vb.pp("EncDecAttention");
            let mut kv = lin(&a.pp("k"), inner, d)?;
            kv.extend(lin(&a.pp("v"), inner, d)?);
            Ok(Attention {
                q_or_qkv: PackedLinear::new(&lin(&a.pp("q"), inner, d)?, None, inner, d),
                kv: Some(PackedLinear::new(&kv, None, 2 * inner, d)),
                o: PackedLinear::new(&lin(&a.pp("o"), d, inner)?, None, d, inner),
                norm: norm(&vb.pp("layer_norm"))?,
            })
        };
        let mut encoder = Vec::with_capacity(c.num_layers);
        for i in 0..c.num_layers {
            let b = vb.pp(format!("encoder.block.{i}.layer"));
            encoder.push(EncoderBlock {
                attn: self_attn(&b.pp("0"), "SelfAttention")?,
                ff: ff(&b.pp("1"))?,
            });
        }
        let n_dec = c.num_decoder_layers.unwrap_or(c.num_layers);
        let mut decoder = Vec::with_capacity(n_dec);
        for i in 0..n_dec {
            let b = vb.pp(format!("decoder.block.{i}.layer"));
            decoder.push(DecoderBlock {
                attn: self_attn(&b.pp("0"), "SelfAttention")?,
                cross: cross_attn(&b.pp("1"))?,
                ff: ff(&b.pp("2"))?,
            });
        }
        let bias = |stack: &str| {
            get(
                &vb.pp(format!(
                    "{stack}.block.0.layer.0.SelfAttention.relative_attention_bias"
                )),
                &[c.relative_attention_num_buckets, c.num_heads],
                "weight",
            )
        };
        let shared = get(&vb.pp("shared"), &[c.vocab_size, d], "weight")?;
        let (lm_head, head_scale) = if c.tie_word_embeddings {
            (
                LmHead::new(PackedLinear::new(&shared, None, c.vocab_size, d)),
                (d as f32).powf(-0.5),
            )
        } else {
            (
                LmHead::new(PackedLinear::new(
                    &lin(&vb.pp("lm_head"), c.vocab_size, d)?,
                    None,
                    c.vocab_size,
                    d,
                )),
                1.0,
            )
        };
        Ok(Self {
            vocab: c.vocab_size,
            d_model: d,
            inner,
            heads: c.num_heads,
            d_kv: c.d_kv,
            buckets: c.relative_attention_num_buckets,
            max_distance: c.relative_attention_max_distance,
            enc_bias: bias("encoder")?,
            dec_bias: bias("decoder")?,
            shared,
            encoder,
            enc_norm: norm(&vb.pp("encoder.final_layer_norm"))?,
            decoder,
            dec_norm: norm(&vb.pp("decoder.final_layer_norm"))?,
            lm_head,
            head_scale,
        })
    }

    fn shape(&self) -> AttnShape {
        AttnShape {
            heads: self.heads,
            kv_heads: self.heads,
            head_dim: self.d_kv,
            scale: 1.0,
        }
    }

    fn embed(&self, ids: &[u32]) -> Result<Vec<f32>, ToolkitError> {
        let d = self.d_model;
        let mut x = Vec::with_capacity(ids.len() * d);
        for &t in ids {
            let t = t as usize;
            let row = self.shared.get(t * d..(t + 1) * d).ok_or_else(|| {
                ToolkitError::InvalidParameters(format!(
                    "token id {t} is outside the vocabulary of {} tokens",
                    self.vocab
                ))
            })?;
            x.extend_from_slice(row);
        }
        Ok(x)
    }

    /// The position bias `[heads, t, l]` of queries at positions `first..first+t` over keys
    /// `0..l` (`T5Attention.compute_bias`).
    fn position_bias(
        &self,
        table: &[f32],
        first: usize,
        t: usize,
        l: usize,
        bidirectional: bool,
    ) -> Vec<f32> {
        let mut out = vec![0f32; self.heads * t * l];
        for i in 0..t {
            for j in 0..l {
                let b = bucket(
                    j as i64 - (first + i) as i64,
                    bidirectional,
                    self.buckets,
                    self.max_distance,
                );
                for h in 0..self.heads {
                    out[(h * t + i) * l + j] = table[b * self.heads + h];
                }
            }
        }
        out
    }
}

/// `T5Attention._relative_position_bucket`, in the same f32 arithmetic.
fn bucket(rel: i64, bidirectional: bool, num_buckets: usize, max_distance: usize) -> usize {
    let mut nb = num_buckets as i64;
    let mut base = 0i64;
    let rp = if bidirectional {
        nb /= 2;
        if rel > 0 {
            base += nb;
        }
        rel.abs()
    } else {
        (-rel).max(0)
    };
    let max_exact = nb / 2;
    let v = if rp < max_exact {
        rp
    } else {
        let scale = (max_distance as f64 / max_exact as f64).ln() as f32;
        let large = max_exact
            + ((rp as f32 / max_exact as f32).ln() / scale * (nb - max_exact) as f32) as i64;
        large.min(nb - 1)
    };
    (base + v) as usize
}

impl LanguageModel for T5 {
    fn vocab_size(&self) -> usize {
        self.vocab
    }

    fn max_positions(&self) -> Option<usize> {
        None
    }

    fn is_encoder_decoder(&self) -> bool {
        true
    }

    fn start(&self, input_ids: &[u32]) -> Result<KvCache, ToolkitError> {
        let s = input_ids.len();
        let inner = self.inner;
        let mut x = self.embed(input_ids)?;
        let bias = self.position_bias(&self.enc_bias, 0, s, s, true);
        for block in &self.encoder {
            let mut y = x.clone();
            block.attn.norm.apply(&mut y);
            let qkv = block.attn.q_or_qkv.forward(&y, s);
            let (mut q, mut k, mut v) = (
                Vec::with_capacity(s * inner),
                Vec::with_capacity(s * inner),
                Vec::with_capacity(s * inner),
            );
            for row in qkv.chunks_exact(3 * inner) {
                q.extend_from_slice(&row[..inner]);
                k.extend_from_slice(&row[inner..2 * inner]);
                v.extend_from_slice(&row[2 * inner..]);
            }
            let ctx = cached_attention(
                &q,
                &k,
                &v,
                (s, s),
                self.shape(),
                Visibility::All,
                Some(&bias),
            );
            let o = block.attn.o.forward(&ctx, s);
            for (a, b) in x.iter_mut().zip(&o) {
                *a += b;
            }
            block.ff.forward(&mut x, s);
        }
        self.enc_norm.apply(&mut x);
        let kv =
            self.decoder
                .iter()
                .map(|b| {
                    b.cross.kv.as_ref().ok_or_else(|| {
                        ToolkitError::Internal("cross-attention without keys".into())
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
        Ok(seq2seq::encoder_state(&kv, &x, s, inner))
    }

    fn screens_argmax(&self) -> bool {
        self.lm_head.screens()
    }

    fn step(&self, batch: &mut [StepInput<'_>]) -> Result<Vec<Vec<f32>>, ToolkitError> {
        let d = self.d_model;
        let (mut x, spans, rows) = seq2seq::stack(batch, |tokens, _| self.embed(tokens))?;
        let biases: Vec<Vec<f32>> = spans
            .iter()
            .map(|&(_, t, first)| self.position_bias(&self.dec_bias, first, t, first + t, false))
            .collect();
        for (li, block) in self.decoder.iter().enumerate() {
            // self-attention over the cache
            let mut y = x.clone();
            block.attn.norm.apply(&mut y);
            let qkv = block.attn.q_or_qkv.forward(&y, rows);
            let ctx = seq2seq::self_attention(&qkv, batch, &spans, li, self.shape(), Some(&biases));
            let o = block.attn.o.forward(&ctx, rows);
            for (a, b) in x.iter_mut().zip(&o) {
                *a += b;
            }
            // cross-attention over the encoder's keys/values
            let mut y = x.clone();
            block.cross.norm.apply(&mut y);
            let q = block.cross.q_or_qkv.forward(&y, rows);
            let ctx = seq2seq::cross_attention(&q, batch, &spans, li, self.shape())?;
            let o = block.cross.o.forward(&ctx, rows);
            for (a, b) in x.iter_mut().zip(&o) {
                *a += b;
            }
            block.ff.forward(&mut x, rows);
        }
        let mut last = seq2seq::finish_step(batch, &spans, &x, d);
        self.dec_norm.apply(&mut last);
        if self.head_scale != 1.0 {
            for v in &mut last {
                *v *= self.head_scale;
            }
        }
        Ok(self.lm_head.logits(&last, spans.len(), &argmax_only(batch)))
    }
}

#[cfg(test)]
mod tests {
    use super::bucket;

    #[test]
    fn buckets_match_transformers() {
        // values printed by transformers 4.51's T5Attention._relative_position_bucket: the
        // exact range, the log range, the clamp and the bidirectional offset
        assert_eq!(bucket(0, true, 32, 128), 0);
        assert_eq!(bucket(3, true, 32, 128), 19);
        assert_eq!(bucket(-3, true, 32, 128), 3);
        assert_eq!(bucket(-200, true, 32, 128), 15);
        assert_eq!(bucket(200, true, 32, 128), 31);
        assert_eq!(bucket(-5, false, 32, 128), 5);
        assert_eq!(bucket(5, false, 32, 128), 0);
        assert_eq!(bucket(-20, false, 32, 128), 17);
        assert_eq!(bucket(-9, true, 32, 128), 8);
        assert_eq!(bucket(-50, false, 32, 128), 24);
    }
}
