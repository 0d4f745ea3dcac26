//! Decoder-only language models on the CPU kernels, with a key/value cache: GPT-2 and the Llama
//! family (Llama, Mistral, Qwen2, Phi-3, Gemma), as transformers' `modeling_gpt2.py`,
//! `modeling_llama.py`, `modeling_mistral.py`, `modeling_qwen2.py`, `modeling_phi3.py` and
//! `modeling_gemma.py` compute them in float32.
//!
//! All of them are pre-norm blocks `x += attn(norm1(x)); x += mlp(norm2(x))`; they differ in the
//! norm (layer norm / RMS norm / Gemma's `1 + w`), positions (learned / rotary), the attention
//! projections (fused or not, with or without bias, grouped-query) and the MLP (plain / gated).

use candle_nn::VarBuilder;
use serde::Deserialize;
use serde_json::Value;

use crate::error::ToolkitError;
use crate::kernels::decode::{gated, rms_norm, Act, AttnShape, Rope};
use crate::kernels::head::LmHead;
use crate::kernels::{add_layer_norm, PackedLinear};
use crate::model::kernel_encoder::get;
use crate::model::lm::{argmax_only, attend_caches, KvCache, LanguageModel, LayerKv, StepInput};

/// A normalisation layer.
#[derive(Debug)]
pub(crate) enum Norm {
    /// LayerNorm with scale and shift.
    Layer {
        gamma: Vec<f32>,
        beta: Vec<f32>,
        eps: f32,
    },
    /// RMS norm (`add_one`: Gemma's `1 + w` scale).
    Rms {
        weight: Vec<f32>,
        eps: f32,
        add_one: bool,
    },
}

impl Norm {
    pub(crate) fn apply(&self, x: &mut [f32]) {
        match self {
            Norm::Layer { gamma, beta, eps } => add_layer_norm(x, None, gamma, beta, *eps),
            Norm::Rms {
                weight,
                eps,
                add_one,
            } => rms_norm(x, weight, *eps, *add_one),
        }
    }

    fn load_layer(vb: &VarBuilder, h: usize, eps: f32) -> Result<Norm, ToolkitError> {
        Ok(Norm::Layer {
            gamma: get(vb, &[h], "weight")?,
            beta: get(vb, &[h], "bias")?,
            eps,
        })
    }

    fn load_rms(vb: &VarBuilder, h: usize, eps: f32, add_one: bool) -> Result<Norm, ToolkitError> {
        Ok(Norm::Rms {
            weight: get(vb, &[h], "weight")?,
            eps,
            add_one,
        })
    }
}

#[derive(Debug)]
enum Mlp {
    /// `proj(act(fc(x)))`.
    Plain {
        fc: PackedLinear,
        proj: PackedLinear,
        act: Act,
    },
    /// `down(act(gate(x)) · up(x))`, gate and up fused.
    Gated {
        gate_up: PackedLinear,
        down: PackedLinear,
        act: Act,
        inter: usize,
    },
}

impl Mlp {
    fn forward(&self, x: &[f32], m: usize) -> Vec<f32> {
        match self {
            Mlp::Plain { fc, proj, act } => {
                let mut y = fc.forward(x, m);
                act.apply(&mut y);
                proj.forward(&y, m)
            }
            Mlp::Gated {
                gate_up,
                down,
                act,
                inter,
            } => {
                let y = gate_up.forward(x, m);
                down.forward(&gated(&y, *inter, *act), m)
            }
        }
    }
}

#[derive(Debug)]
struct Block {
    norm1: Norm,
    /// Queries, keys and values, fused: `[heads·hd | kv·hd | kv·hd]`.
    qkv: PackedLinear,
    out: PackedLinear,
    norm2: Norm,
    mlp: Mlp,
    /// Extra factor on the scores (GPT-2's `scale_attn_by_inverse_layer_idx`).
    score_scale: f32,
}

/// How positions enter the model.
#[derive(Debug)]
enum Positions {
    /// Learned absolute embeddings (`[max, h]`).
    Learned(Vec<f32>),
    /// Rotary embeddings on queries and keys.
    Rotary(Rope),
}

/// A decoder-only language model.
#[derive(Debug)]
pub struct CausalLm {
    kind: &'static str,
    vocab: usize,
    hidden: usize,
    /// The input embeddings; `None` when tied to the head, whose packed rows are used instead
    /// (one copy of a 150k-token vocabulary, not two).
    embed: Option<Vec<f32>>,
    /// Gemma multiplies embeddings by `sqrt(hidden)` (rounded to the model's dtype).
    embed_scale: Option<f32>,
    positions: Positions,
    blocks: Vec<Block>,
    final_norm: Norm,
    lm_head: LmHead,
    shape: AttnShape,
    window: Option<usize>,
    max_positions: Option<usize>,
}

fn cfg_err(kind: &str, e: impl std::fmt::Display) -> ToolkitError {
    ToolkitError::model_load(format!("invalid {kind} config.json: {e}"))
}

#[derive(Deserialize)]
struct Gpt2Config {
    vocab_size: usize,
    n_embd: usize,
    n_head: usize,
    n_layer: usize,
    n_positions: usize,
    n_inner: Option<usize>,
    #[serde(default = "default_ln_eps")]
    layer_norm_epsilon: f64,
    #[serde(default = "default_gelu_new")]
    activation_function: String,
    #[serde(default = "yes")]
    scale_attn_weights: bool,
    #[serde(default)]
    scale_attn_by_inverse_layer_idx: bool,
}

fn default_ln_eps() -> f64 {
    1e-5
}
fn default_gelu_new() -> String {
    "gelu_new".into()
}
fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct LlamaConfig {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    #[serde(default = "default_rms_eps")]
    rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    rope_theta: f64,
    rope_scaling: Option<Value>,
    max_position_embeddings: Option<usize>,
    tie_word_embeddings: Option<bool>,
    hidden_act: Option<String>,
    hidden_activation: Option<String>,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    mlp_bias: bool,
    sliding_window: Option<usize>,
    use_sliding_window: Option<bool>,
    partial_rotary_factor: Option<f64>,
}

fn default_rms_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    10_000.0
}

impl CausalLm {
    /// Loads the model of `config` (`config.json`'s value) from `vb`.
    pub fn load(config: &Value, vb: &VarBuilder) -> Result<Self, ToolkitError> {
        let model_type = config
            .get("model_type")
            .and_then(Value::as_str)
            .unwrap_or("");
        match model_type {
            "gpt2" => Self::load_gpt2(config, vb),
            "llama" | "mistral" | "qwen2" | "phi3" | "gemma" => {
                Self::load_llama(model_type, config, vb)
            }
            other => Err(ToolkitError::model_load(format!(
                "model_type {other:?} is not a supported decoder; supported: {}",
                super::Family::ALL
                    .into_iter()
                    .filter(|f| f.shape() == super::Shape::Decoder)
                    .map(super::Family::model_type)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    fn load_gpt2(config: &Value, root: &VarBuilder) -> Result<Self, ToolkitError> {
        let c: Gpt2Config =
            serde_json::from_value(config.clone()).map_err(|e| cfg_err("gpt2", e))?;
        let h = c.n_embd;
        if c.n_head == 0 || !h.is_multiple_of(c.n_head) {
            return Err(cfg_err("gpt2", "n_embd must be a multiple of n_head"));
        }
        let act = Act::parse(&c.activation_function).ok_or_else(|| {
            cfg_err(
                "gpt2",
                format!(
                    "activation_function {:?} is not supported",
                    c.activation_function
                ),
            )
        })?;
        // GPT2LMHeadModel checkpoints prefix "transformer.", GPT2Model ones do not
        let vb = if root.contains_tensor("transformer.wte.weight") {
            root.pp("transformer")
        } else {
            root.clone()
        };
        let eps = c.layer_norm_epsilon as f32;
        let inner = c.n_inner.unwrap_or(4 * h);
        // Conv1D stores weights as [in, out]: transpose to the [out, in] of a linear layer
        let conv = |vb: &VarBuilder, k: usize, n: usize| -> Result<PackedLinear, ToolkitError> {
            let w = get(vb, &[k, n], "weight")?;
            let b = get(vb, &[n], "bias")?;
            Ok(PackedLinear::new(&transpose(&w, k, n), Some(&b), n, k))
        };
        let mut blocks = Vec::with_capacity(c.n_layer);
        for i in 0..c.n_layer {
            let b = vb.pp(format!("h.{i}"));
            blocks.push(Block {
                norm1: Norm::load_layer(&b.pp("ln_1"), h, eps)?,
                qkv: conv(&b.pp("attn.c_attn"), h, 3 * h)?,
                out: conv(&b.pp("attn.c_proj"), h, h)?,
                norm2: Norm::load_layer(&b.pp("ln_2"), h, eps)?,
                mlp: Mlp::Plain {
                    fc: conv(&b.pp("mlp.c_fc"), h, inner)?,
                    proj: conv(&b.pp("mlp.c_proj"), inner, h)?,
                    act,
                },
                score_scale: if c.scale_attn_by_inverse_layer_idx {
                    1.0 / (i + 1) as f32
                } else {
                    1.0
                },
            });
        }
        let wte = get(&vb.pp("wte"), &[c.vocab_size, h], "weight")?;
        // GPT2LMHeadModel always ties the head to wte
        let lm_head = LmHead::new(PackedLinear::new(&wte, None, c.vocab_size, h));
        drop(wte);
        let hd = h / c.n_head;
        Ok(Self {
            kind: "gpt2",
            vocab: c.vocab_size,
            hidden: h,
            positions: Positions::Learned(get(&vb.pp("wpe"), &[c.n_positions, h], "weight")?),
            embed: None,
            embed_scale: None,
            blocks,
            final_norm: Norm::load_layer(&vb.pp("ln_f"), h, eps)?,
            lm_head,
            shape: AttnShape {
                heads: c.n_head,
                kv_heads: c.n_head,
                head_dim: hd,
                scale: if c.scale_attn_weights {
                    1.0 / (hd as f32).sqrt()
                } else {
                    1.0
                },
            },
            window: None,
            max_positions: Some(c.n_positions),
        })
    }

    fn load_llama(kind: &str, config: &Value, root: &VarBuilder) -> Result<Self, ToolkitError> {
        let c: LlamaConfig =
            serde_json::from_value(config.clone()).map_err(|e| cfg_err(kind, e))?;
        let h = c.hidden_size;
        let heads = c.num_attention_heads;
        let kv = c.num_key_value_heads.unwrap_or(heads);
        if heads == 0 || kv == 0 || !heads.is_multiple_of(kv) {
            return Err(cfg_err(
                kind,
                "num_attention_heads must be a positive multiple of num_key_value_heads",
            ));
        }
        let hd = c.head_dim.unwrap_or(h / heads);
        let gemma = kind == "gemma";
        let act_name = if gemma {
            // GemmaMLP uses `hidden_activation` (gelu_pytorch_tanh when unset)
            c.hidden_activation
                .clone()
                .unwrap_or_else(|| "gelu_pytorch_tanh".into())
        } else {
            c.hidden_act.clone().unwrap_or_else(|| "silu".into())
        };
        let act = Act::parse(&act_name)
            .ok_or_else(|| cfg_err(kind, format!("hidden_act {act_name:?} is not supported")))?;
        let rot_dim = match c.partial_rotary_factor {
            Some(f) if kind == "phi3" => ((hd as f64 * f) as usize) & !1,
            _ => hd,
        };
        let rope = rope_for(kind, &c, rot_dim)?;
        let eps = c.rms_norm_eps as f32;
        let vb = root.pp("model");
        let qkv_bias = kind == "qwen2" || c.attention_bias;
        let (qn, kn) = (heads * hd, kv * hd);
        let mut blocks = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let b = vb.pp(format!("layers.{i}"));
            let a = b.pp("self_attn");
            let qkv = if kind == "phi3" {
                dense(&a.pp("qkv_proj"), qn + 2 * kn, h, false)?
            } else {
                let parts = [("q_proj", qn), ("k_proj", kn), ("v_proj", kn)];
                let mut w = Vec::with_capacity((qn + 2 * kn) * h);
                let mut bias = Vec::with_capacity(qn + 2 * kn);
                for (name, n) in parts {
                    let p = a.pp(name);
                    w.extend(get(&p, &[n, h], "weight")?);
                    if qkv_bias {
                        bias.extend(get(&p, &[n], "bias")?);
                    }
                }
                PackedLinear::new(&w, qkv_bias.then_some(&bias[..]), qn + 2 * kn, h)
            };
            let m = b.pp("mlp");
            let inter = c.intermediate_size;
            let gate_up = if kind == "phi3" {
                dense(&m.pp("gate_up_proj"), 2 * inter, h, false)?
            } else {
                let mut w = get(&m.pp("gate_proj"), &[inter, h], "weight")?;
                w.extend(get(&m.pp("up_proj"), &[inter, h], "weight")?);
                let bias = if c.mlp_bias {
                    let mut b = get(&m.pp("gate_proj"), &[inter], "bias")?;
                    b.extend(get(&m.pp("up_proj"), &[inter], "bias")?);
                    Some(b)
                } else {
                    None
                };
                PackedLinear::new(&w, bias.as_deref(), 2 * inter, h)
            };
            blocks.push(Block {
                norm1: Norm::load_rms(&b.pp("input_layernorm"), h, eps, gemma)?,
                qkv,
                out: dense(&a.pp("o_proj"), h, qn, c.attention_bias)?,
                norm2: Norm::load_rms(&b.pp("post_attention_layernorm"), h, eps, gemma)?,
                mlp: Mlp::Gated {
                    gate_up,
                    down: dense(&m.pp("down_proj"), h, inter, c.mlp_bias)?,
                    act,
                    inter,
                },
                score_scale: 1.0,
            });
        }
        let table = get(&vb.pp("embed_tokens"), &[c.vocab_size, h], "weight")?;
        let tied = c.tie_word_embeddings.unwrap_or(gemma);
        let (embed, lm_head) = if !tied && root.contains_tensor("lm_head.weight") {
            (
                Some(table),
                LmHead::new(dense(&root.pp("lm_head"), c.vocab_size, h, false)?),
            )
        } else {
            (
                None,
                LmHead::new(PackedLinear::new(&table, None, c.vocab_size, h)),
            )
        };
        let window = match kind {
            "mistral" => c.sliding_window,
            "qwen2" if c.use_sliding_window == Some(true) => c.sliding_window,
            _ => None,
        };
        Ok(Self {
            kind: match kind {
                "llama" => "llama",
                "mistral" => "mistral",
                "qwen2" => "qwen2",
                "phi3" => "phi3",
                _ => "gemma",
            },
            vocab: c.vocab_size,
            hidden: h,
            embed,
            // torch.tensor(hidden_size**0.5, dtype=float32)
            embed_scale: gemma.then(|| (h as f64).sqrt() as f32),
            positions: Positions::Rotary(rope),
            blocks,
            final_norm: Norm::load_rms(&vb.pp("norm"), h, eps, gemma)?,
            lm_head,
            shape: AttnShape {
                heads,
                kv_heads: kv,
                head_dim: hd,
                scale: 1.0 / (hd as f32).sqrt(),
            },
            window,
            max_positions: c.max_position_embeddings,
        })
    }

    /// The architecture (`gpt2`, `llama`, …).
    pub fn kind(&self) -> &'static str {
        self.kind
    }
}

/// A linear layer `[n, k]`, with its bias when `bias`.
fn dense(vb: &VarBuilder, n: usize, k: usize, bias: bool) -> Result<PackedLinear, ToolkitError> {
    let w = get(vb, &[n, k], "weight")?;
    let b = if bias {
        Some(get(vb, &[n], "bias")?)
    } else {
        None
    };
    Ok(PackedLinear::new(&w, b.as_deref(), n, k))
}

/// `[rows, cols]` → `[cols, rows]`.
fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = w[r * cols + c];
        }
    }
    out
}

/// Rotary embeddings of the config, with the `rope_scaling` kinds transformers' Llama family
/// computes at load (`default`, `linear`, `llama3`); others are refused rather than run wrong.
fn rope_for(kind: &str, c: &LlamaConfig, dim: usize) -> Result<Rope, ToolkitError> {
    let base = Rope::new(dim, c.rope_theta as f32);
    let Some(scaling) = c.rope_scaling.as_ref().filter(|v| !v.is_null()) else {
        return Ok(base);
    };
    let rope_type = scaling
        .get("rope_type")
        .or_else(|| scaling.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let num = |k: &str| scaling.get(k).and_then(Value::as_f64);
    match rope_type {
        "default" => Ok(base),
        "linear" => {
            let f = num("factor").unwrap_or(1.0) as f32;
            Ok(Rope::with_inv_freq(
                base.inv_freq().iter().map(|v| v / f).collect(),
                1.0,
            ))
        }
        "llama3" => {
            // _compute_llama3_parameters
            let factor = num("factor").unwrap_or(8.0);
            let low = num("low_freq_factor").unwrap_or(1.0);
            let high = num("high_freq_factor").unwrap_or(4.0);
            let old = num("original_max_position_embeddings").unwrap_or(8192.0);
            let (low_wl, high_wl) = (old / low, old / high);
            let inv = base
                .inv_freq()
                .iter()
                .map(|&f| {
                    let f64v = f64::from(f);
                    let wl = 2.0 * std::f64::consts::PI / f64v;
                    if wl > low_wl {
                        (f64v / factor) as f32
                    } else if wl < high_wl {
                        f
                    } else {
                        let smooth = (old / wl - low) / (high - low);
                        ((1.0 - smooth) * f64v / factor + smooth * f64v) as f32
                    }
                })
                .collect();
            Ok(Rope::with_inv_freq(inv, 1.0))
        }
        other => Err(cfg_err(
            kind,
            format!(
                "rope_scaling type {other:?} is not supported (supported: default, linear, llama3)"
            ),
        )),
    }
}

impl CausalLm {
    /// Embeds `tokens` at positions `first..`.
    fn embed(&self, tokens: &[u32], first: usize, out: &mut Vec<f32>) -> Result<(), ToolkitError> {
        let h = self.hidden;
        for (i, &t) in tokens.iter().enumerate() {
            let t = t as usize;
            if t >= self.vocab {
                return Err(ToolkitError::InvalidParameters(format!(
                    "token id {t} is outside the vocabulary of {} tokens",
                    self.vocab
                )));
            }
            let tied;
            let row = match &self.embed {
                Some(e) => &e[t * h..(t + 1) * h],
                None => {
                    tied = self.lm_head.linear().weight_row(t);
                    &tied[..]
                }
            };
            match (&self.positions, self.embed_scale) {
                (Positions::Learned(wpe), _) => {
                    let p = first + i;
                    let pos = wpe.get(p * h..(p + 1) * h).ok_or_else(|| {
                        ToolkitError::InputTooLong(format!(
                            "the sequence reached position {p}, beyond the model's {} positions",
                            wpe.len() / h
                        ))
                    })?;
                    out.extend(row.iter().zip(pos).map(|(a, b)| a + b));
                }
                (Positions::Rotary(_), Some(s)) => out.extend(row.iter().map(|v| v * s)),
                (Positions::Rotary(_), None) => out.extend_from_slice(row),
            }
        }
        Ok(())
    }
}

impl LanguageModel for CausalLm {
    fn vocab_size(&self) -> usize {
        self.vocab
    }

    fn max_positions(&self) -> Option<usize> {
        self.max_positions
    }

    fn position_limit(&self) -> Option<usize> {
        match self.positions {
            Positions::Learned(_) => self.max_positions,
            Positions::Rotary(_) => None,
        }
    }

    fn is_encoder_decoder(&self) -> bool {
        false
    }

    fn start(&self, _input_ids: &[u32]) -> Result<KvCache, ToolkitError> {
        Ok(KvCache {
            layers: (0..self.blocks.len()).map(|_| LayerKv::default()).collect(),
            len: 0,
            cross: None,
        })
    }

    fn screens_argmax(&self) -> bool {
        self.lm_head.screens()
    }

    fn step(&self, batch: &mut [StepInput<'_>]) -> Result<Vec<Vec<f32>>, ToolkitError> {
        let h = self.hidden;
        let AttnShape {
            heads,
            kv_heads,
            head_dim: hd,
            ..
        } = self.shape;
        let (qn, kn) = (heads * hd, kv_heads * hd);
        let w = qn + 2 * kn;
        // all new tokens of all sequences, as rows of one matrix
        let mut x = Vec::new();
        let mut spans = Vec::with_capacity(batch.len());
        let mut rows = 0;
        for s in batch.iter() {
            if s.tokens.is_empty() {
                return Err(ToolkitError::Internal("a model step without tokens".into()));
            }
            if s.cache.layers.len() != self.blocks.len() {
                return Err(ToolkitError::Internal("a cache of another model".into()));
            }
            self.embed(s.tokens, s.cache.len, &mut x)?;
            spans.push((rows, s.tokens.len(), s.cache.len));
            rows += s.tokens.len();
        }
        for (li, block) in self.blocks.iter().enumerate() {
            let mut y = x.clone();
            block.norm1.apply(&mut y);
            let mut qkv = block.qkv.forward(&y, rows);
            let mut queries = Vec::with_capacity(batch.len());
            for (s, &(r0, t, first)) in batch.iter_mut().zip(&spans) {
                let mut q = Vec::with_capacity(t * qn);
                let kv = &mut s.cache.layers[li];
                for i in 0..t {
                    let row = &mut qkv[(r0 + i) * w..(r0 + i + 1) * w];
                    if let Positions::Rotary(rope) = &self.positions {
                        let (qp, rest) = row.split_at_mut(qn);
                        rope.apply(qp, hd, first + i);
                        rope.apply(&mut rest[..kn], hd, first + i);
                    }
                    q.extend_from_slice(&row[..qn]);
                    kv.k.extend_from_slice(&row[qn..qn + kn]);
                    kv.v.extend_from_slice(&row[qn + kn..]);
                }
                queries.push(q);
            }
            let shape = AttnShape {
                scale: self.shape.scale * block.score_scale,
                ..self.shape
            };
            let ctx = attend_caches(batch, &spans, li, &queries, shape, self.window, None);
            let attn = block.out.forward(&ctx, rows);
            for (a, b) in x.iter_mut().zip(&attn) {
                *a += b;
            }
            let mut y = x.clone();
            block.norm2.apply(&mut y);
            let ff = block.mlp.forward(&y, rows);
            for (a, b) in x.iter_mut().zip(&ff) {
                *a += b;
            }
        }
        for (s, &(_, t, _)) in batch.iter_mut().zip(&spans) {
            s.cache.len += t;
        }
        // final norm and head on the last new token of each sequence only
        let mut last = Vec::with_capacity(batch.len() * h);
        for &(r0, t, _) in &spans {
            last.extend_from_slice(&x[(r0 + t - 1) * h..(r0 + t) * h]);
        }
        self.final_norm.apply(&mut last);
        Ok(self.lm_head.logits(&last, spans.len(), &argmax_only(batch)))
    }
}
