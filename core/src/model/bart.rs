//! BART and Marian encoder-decoders on the CPU kernels, as transformers' `modeling_bart.py` and
//! `modeling_marian.py` compute them in float32: post-norm layers, scaled embeddings, learned
//! positions offset by 2 (BART) or sinusoidal ones (Marian), `layernorm_embedding` (BART), a key/value
//! cache for the decoder, the encoder's keys/values computed once per input, and the tied head
//! plus `final_logits_bias`.

use candle_nn::VarBuilder;
use serde::Deserialize;
use serde_json::Value;

use crate::error::ToolkitError;
use crate::kernels::decode::{cached_attention, Act, AttnShape, Visibility};
use crate::kernels::head::LmHead;
use crate::kernels::PackedLinear;
use crate::model::causal::Norm;
use crate::model::kernel_encoder::get;
use crate::model::lm::{argmax_only, KvCache, LanguageModel, StepInput};
use crate::model::seq2seq;

#[derive(Deserialize)]
struct BartConfig {
    vocab_size: usize,
    d_model: usize,
    encoder_layers: usize,
    decoder_layers: usize,
    encoder_attention_heads: usize,
    decoder_attention_heads: usize,
    encoder_ffn_dim: usize,
    decoder_ffn_dim: usize,
    max_position_embeddings: usize,
    #[serde(default = "default_act")]
    activation_function: String,
    #[serde(default)]
    scale_embedding: bool,
    #[serde(default)]
    normalize_before: bool,
    #[serde(default)]
    add_final_layer_norm: bool,
    /// Marian: `false` gives the decoder its own embeddings (and vocabulary).
    share_encoder_decoder_embeddings: Option<bool>,
    decoder_vocab_size: Option<usize>,
}

fn default_act() -> String {
    "gelu".into()
}

#[derive(Debug)]
struct Attention {
    /// `[q | k | v]` for self-attention; `q` alone for cross-attention (then `kv` holds `[k | v]`).
    q_or_qkv: PackedLinear,
    kv: Option<PackedLinear>,
    out: PackedLinear,
    norm: Norm,
}

#[derive(Debug)]
struct Layer {
    attn: Attention,
    cross: Option<Attention>,
    fc1: PackedLinear,
    fc2: PackedLinear,
    final_norm: Norm,
}

#[derive(Debug)]
enum Positions {
    /// BART: a learned table, position `p` at row `p + 2`.
    Learned { enc: Vec<f32>, dec: Vec<f32> },
    /// Marian: fixed sinusoids (`[max, d]`).
    Sinusoidal(Vec<f32>),
}

/// A BART or Marian model.
#[derive(Debug)]
pub struct Bart {
    vocab: usize,
    d: usize,
    heads: usize,
    shared: Vec<f32>,
    /// The decoder's own embeddings (Marian with separate vocabularies).
    dec_embed: Option<Vec<f32>>,
    embed_scale: f32,
    positions: Positions,
    max_positions: usize,
    enc_ln_embed: Option<Norm>,
    dec_ln_embed: Option<Norm>,
    encoder: Vec<Layer>,
    decoder: Vec<Layer>,
    lm_head: LmHead,
    act: Act,
}

fn cfg_err(kind: &str, e: impl std::fmt::Display) -> ToolkitError {
    ToolkitError::model_load(format!("invalid {kind} config.json: {e}"))
}

fn dense(vb: &VarBuilder, n: usize, k: usize) -> Result<PackedLinear, ToolkitError> {
    Ok(PackedLinear::new(
        &get(vb, &[n, k], "weight")?,
        Some(&get(vb, &[n], "bias")?),
        n,
        k,
    ))
}

fn layer_norm(vb: &VarBuilder, d: usize) -> Result<Norm, ToolkitError> {
    Ok(Norm::Layer {
        gamma: get(vb, &[d], "weight")?,
        beta: get(vb, &[d], "bias")?,
        eps: 1e-5,
    })
}

/// `MarianSinusoidalPositionalEmbedding._init_weight`: sines in the first half, cosines in the
/// second, `pos / 10000^(2·(j/2)/d)`.
fn sinusoids(max: usize, d: usize) -> Vec<f32> {
    let mut out = vec![0f32; max * d];
    let half = d / 2 + d % 2;
    for pos in 0..max {
        for j in 0..d {
            let angle = pos as f64 / 10_000f64.powf((2 * (j / 2)) as f64 / d as f64);
            if j % 2 == 0 {
                out[pos * d + j / 2] = angle.sin() as f32;
            } else {
                out[pos * d + half + j / 2] = angle.cos() as f32;
            }
        }
    }
    out
}

impl Bart {
    /// Loads a `bart` or `marian` model.
    pub fn load(config: &Value, vb: &VarBuilder) -> Result<Self, ToolkitError> {
        let kind = config
            .get("model_type")
            .and_then(Value::as_str)
            .unwrap_or("bart");
        let c: BartConfig = serde_json::from_value(config.clone()).map_err(|e| cfg_err(kind, e))?;
        if c.normalize_before || c.add_final_layer_norm {
            return Err(cfg_err(kind, "pre-norm variants (mBART) are not supported"));
        }
        if c.encoder_attention_heads != c.decoder_attention_heads {
            return Err(cfg_err(
                kind,
                "different encoder and decoder head counts are not supported",
            ));
        }
        let d = c.d_model;
        let heads = c.encoder_attention_heads;
        if heads == 0 || !d.is_multiple_of(heads) {
            return Err(cfg_err(
                kind,
                "d_model must be a multiple of the attention heads",
            ));
        }
        let act = Act::parse(&c.activation_function).ok_or_else(|| {
            cfg_err(
                kind,
                format!(
                    "activation_function {:?} is not supported",
                    c.activation_function
                ),
            )
        })?;
        let m = vb.pp("model");
        let attention =
            |a: &VarBuilder, norm: &VarBuilder, cross: bool| -> Result<Attention, ToolkitError> {
                let (q, k, v) = (a.pp("q_proj"), a.pp("k_proj"), a.pp("v_proj"));
                let w = |p: &VarBuilder| get(p, &[d, d], "weight");
                let b = |p: &VarBuilder| get(p, &[d], "bias");
                let (q_or_qkv, kv) = if cross {
                    let mut kw = w(&k)?;
                    kw.extend(w(&v)?);
                    let mut kb = b(&k)?;
                    kb.extend(b(&v)?);
                    (
                        dense(&q, d, d)?,
                        Some(PackedLinear::new(&kw, Some(&kb), 2 * d, d)),
                    )
                } else {
                    let mut all = w(&q)?;
                    all.extend(w(&k)?);
                    all.extend(w(&v)?);
                    let mut bias = b(&q)?;
                    bias.extend(b(&k)?);
                    bias.extend(b(&v)?);
                    (PackedLinear::new(&all, Some(&bias), 3 * d, d), None)
                };
                Ok(Attention {
                    q_or_qkv,
                    kv,
                    out: dense(&a.pp("out_proj"), d, d)?,
                    norm: layer_norm(norm, d)?,
                })
            };
        let stack = |name: &str,
                     n: usize,
                     ffn: usize,
                     cross: bool|
         -> Result<Vec<Layer>, ToolkitError> {
            (0..n)
                .map(|i| {
                    let l = m.pp(format!("{name}.layers.{i}"));
                    Ok(Layer {
                        attn: attention(&l.pp("self_attn"), &l.pp("self_attn_layer_norm"), false)?,
                        cross: if cross {
                            Some(attention(
                                &l.pp("encoder_attn"),
                                &l.pp("encoder_attn_layer_norm"),
                                true,
                            )?)
                        } else {
                            None
                        },
                        fc1: dense(&l.pp("fc1"), ffn, d)?,
                        fc2: dense(&l.pp("fc2"), d, ffn)?,
                        final_norm: layer_norm(&l.pp("final_layer_norm"), d)?,
                    })
                })
                .collect()
        };
        let shared = get(&m.pp("shared"), &[c.vocab_size, d], "weight")?;
        let positions = if kind == "marian" {
            Positions::Sinusoidal(sinusoids(c.max_position_embeddings, d))
        } else {
            let n = c.max_position_embeddings + 2;
            Positions::Learned {
                enc: get(&m.pp("encoder.embed_positions"), &[n, d], "weight")?,
                dec: get(&m.pp("decoder.embed_positions"), &[n, d], "weight")?,
            }
        };
        let ln_embed = |name: &str| -> Result<Option<Norm>, ToolkitError> {
            let p = m.pp(format!("{name}.layernorm_embedding"));
            if p.contains_tensor("weight") {
                Ok(Some(layer_norm(&p, d)?))
            } else {
                Ok(None)
            }
        };
        let bias_len = if c.share_encoder_decoder_embeddings == Some(false) {
            c.decoder_vocab_size.unwrap_or(c.vocab_size)
        } else {
            c.vocab_size
        };
        let bias = if vb.contains_tensor("final_logits_bias") {
            get(vb, &[1, bias_len], "final_logits_bias")?
        } else {
            vec![0.0; bias_len]
        };
        let separate = c.share_encoder_decoder_embeddings == Some(false);
        let dec_vocab = if separate {
            c.decoder_vocab_size.unwrap_or(c.vocab_size)
        } else {
            c.vocab_size
        };
        let dec_embed = if separate {
            Some(get(
                &m.pp("decoder.embed_tokens"),
                &[dec_vocab, d],
                "weight",
            )?)
        } else {
            None
        };
        let bias = if separate && bias.len() != dec_vocab {
            vec![0.0; dec_vocab]
        } else {
            bias
        };
        let head_w = if vb.contains_tensor("lm_head.weight") {
            get(&vb.pp("lm_head"), &[dec_vocab, d], "weight")?
        } else {
            dec_embed.clone().unwrap_or_else(|| shared.clone())
        };
        Ok(Self {
            vocab: dec_vocab,
            d,
            heads,
            embed_scale: if c.scale_embedding {
                (d as f32).sqrt()
            } else {
                1.0
            },
            positions,
            max_positions: c.max_position_embeddings,
            enc_ln_embed: ln_embed("encoder")?,
            dec_ln_embed: ln_embed("decoder")?,
            encoder: stack("encoder", c.encoder_layers, c.encoder_ffn_dim, false)?,
            decoder: stack("decoder", c.decoder_layers, c.decoder_ffn_dim, true)?,
            lm_head: LmHead::new(PackedLinear::new(&head_w, Some(&bias), dec_vocab, d)),
            shared,
            dec_embed,
            act,
        })
    }

    fn shape(&self) -> AttnShape {
        let hd = self.d / self.heads;
        AttnShape {
            heads: self.heads,
            kv_heads: self.heads,
            head_dim: hd,
            scale: (hd as f32).powf(-0.5),
        }
    }

    /// Embeds `ids` at positions `first..` of the encoder or decoder.
    fn embed(&self, ids: &[u32], first: usize, decoder: bool) -> Result<Vec<f32>, ToolkitError> {
        let d = self.d;
        let mut x = Vec::with_capacity(ids.len() * d);
        for (i, &t) in ids.iter().enumerate() {
            let t = t as usize;
            let table = match (&self.dec_embed, decoder) {
                (Some(e), true) => e,
                _ => &self.shared,
            };
            let row = table.get(t * d..(t + 1) * d).ok_or_else(|| {
                ToolkitError::InvalidParameters(format!(
                    "token id {t} is outside the vocabulary of {} tokens",
                    self.vocab
                ))
            })?;
            let p = first + i;
            if p >= self.max_positions {
                return Err(ToolkitError::InputTooLong(format!(
                    "the sequence reached position {p}, beyond the model's {} positions; shorten the input or pass \"truncation\": true",
                    self.max_positions
                )));
            }
            let pos = match &self.positions {
                Positions::Learned { enc, dec } => {
                    let table = if decoder { dec } else { enc };
                    &table[(p + 2) * d..(p + 3) * d]
                }
                Positions::Sinusoidal(table) => &table[p * d..(p + 1) * d],
            };
            x.extend(row.iter().zip(pos).map(|(e, q)| e * self.embed_scale + q));
        }
        let norm = if decoder {
            &self.dec_ln_embed
        } else {
            &self.enc_ln_embed
        };
        if let Some(n) = norm {
            n.apply(&mut x);
        }
        Ok(x)
    }

    fn feed_forward(&self, layer: &Layer, x: &mut [f32], rows: usize) {
        let mut h = layer.fc1.forward(x, rows);
        self.act.apply(&mut h);
        let out = layer.fc2.forward(&h, rows);
        for (a, b) in x.iter_mut().zip(&out) {
            *a += b;
        }
        layer.final_norm.apply(x);
    }
}

/// `x ← norm(x + y)`.
fn add_norm(x: &mut [f32], y: &[f32], norm: &Norm) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
    norm.apply(x);
}

/// Splits rows of `[q | k | v]` (width `3d`).
fn split3(qkv: &[f32], d: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let rows = qkv.len() / (3 * d);
    let (mut q, mut k, mut v) = (
        Vec::with_capacity(rows * d),
        Vec::with_capacity(rows * d),
        Vec::with_capacity(rows * d),
    );
    for row in qkv.chunks_exact(3 * d) {
        q.extend_from_slice(&row[..d]);
        k.extend_from_slice(&row[d..2 * d]);
        v.extend_from_slice(&row[2 * d..]);
    }
    (q, k, v)
}

impl LanguageModel for Bart {
    fn vocab_size(&self) -> usize {
        self.vocab
    }

    fn max_positions(&self) -> Option<usize> {
        Some(self.max_positions)
    }

    fn is_encoder_decoder(&self) -> bool {
        true
    }

    fn start(&self, input_ids: &[u32]) -> Result<KvCache, ToolkitError> {
        let s = input_ids.len();
        let d = self.d;
        let mut x = self.embed(input_ids, 0, false)?;
        for layer in &self.encoder {
            let (q, k, v) = split3(&layer.attn.q_or_qkv.forward(&x, s), d);
            let ctx = cached_attention(&q, &k, &v, (s, s), self.shape(), Visibility::All, None);
            let o = layer.attn.out.forward(&ctx, s);
            add_norm(&mut x, &o, &layer.attn.norm);
            self.feed_forward(layer, &mut x, s);
        }
        let kv = self
            .decoder
            .iter()
            .map(|l| {
                l.cross.as_ref().and_then(|c| c.kv.as_ref()).ok_or_else(|| {
                    ToolkitError::Internal("decoder layer without cross-attention".into())
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(seq2seq::encoder_state(&kv, &x, s, d))
    }

    fn screens_argmax(&self) -> bool {
        self.lm_head.screens()
    }

    fn step(&self, batch: &mut [StepInput<'_>]) -> Result<Vec<Vec<f32>>, ToolkitError> {
        let d = self.d;
        let (mut x, spans, rows) =
            seq2seq::stack(batch, |tokens, first| self.embed(tokens, first, true))?;
        for (li, layer) in self.decoder.iter().enumerate() {
            let qkv = layer.attn.q_or_qkv.forward(&x, rows);
            let ctx = seq2seq::self_attention(&qkv, batch, &spans, li, self.shape(), None);
            let o = layer.attn.out.forward(&ctx, rows);
            add_norm(&mut x, &o, &layer.attn.norm);
            let cross = layer.cross.as_ref().ok_or_else(|| {
                ToolkitError::Internal("decoder layer without cross-attention".into())
            })?;
            let q = cross.q_or_qkv.forward(&x, rows);
            let ctx = seq2seq::cross_attention(&q, batch, &spans, li, self.shape())?;
            let o = cross.out.forward(&ctx, rows);
            add_norm(&mut x, &o, &cross.norm);
            self.feed_forward(layer, &mut x, rows);
        }
        let last = seq2seq::finish_step(batch, &spans, &x, d);
        Ok(self.lm_head.logits(&last, spans.len(), &argmax_only(batch)))
    }
}

#[cfg(test)]
mod tests {
    use super::sinusoids;

    #[test]
    fn sinusoids_put_sines_first_and_cosines_second() {
        let t = sinusoids(3, 4);
        // position 0: sin 0 = 0, cos 0 = 1
        assert_eq!(&t[..4], &[0.0, 0.0, 1.0, 1.0]);
        // position 1, j=0: sin(1); j=2: sin(1/100)
        assert!((t[4] - 1f32.sin()).abs() < 1e-7);
        assert!((t[5] - 0.01f32.sin()).abs() < 1e-7);
        assert!((t[6] - 1f32.cos()).abs() < 1e-7);
    }
}
