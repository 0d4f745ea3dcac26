//! The CPU encoder on our own kernels ([`crate::kernels`]): BERT, RoBERTa, XLM-RoBERTa, CamemBERT
//! and DistilBERT with their heads, the same network as [`super::bert`] and
//! [`super::distilbert`] (which stay as the candle reference and the GPU path).
//!
//! Sequences are never padded: the linear layers run on every token of the batch stacked
//! (`[tokens, hidden]`), and attention runs per sequence, so a batch costs what its tokens cost.

use candle_nn::VarBuilder;

use super::config::{Activation, BertConfig, DistilBertConfig, ModelConfig};
use super::layers::LayerNames;
use super::{HeadKind, Matrix, TextModel, TokenSequence};
use crate::error::ToolkitError;
use crate::kernels::{self, PackedLinear};

/// A layer norm's scale and shift.
pub(crate) struct Norm {
    pub(crate) gamma: Vec<f32>,
    pub(crate) beta: Vec<f32>,
}

struct Layer {
    qkv: PackedLinear,
    out: PackedLinear,
    attn_norm: Norm,
    ff_in: PackedLinear,
    ff_out: PackedLinear,
    ff_norm: Norm,
}

enum Head {
    Hidden,
    /// BERT: pooler (tanh) then classifier.
    Pooled(PackedLinear, PackedLinear),
    /// RoBERTa: dense (tanh) then out_proj.
    Roberta(PackedLinear, PackedLinear),
    /// DistilBERT: pre_classifier (ReLU) then classifier.
    Distil(PackedLinear, PackedLinear),
}

/// An encoder with its head, on the CPU kernels.
pub struct KernelEncoder {
    word: Vec<f32>,
    vocab: usize,
    position: Vec<f32>,
    position_rows: usize,
    token_type: Option<(Vec<f32>, usize)>,
    emb_norm: Norm,
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
    act: Activation,
    eps: f32,
    head: Head,
    head_kind: HeadKind,
    pad_id: u32,
    roberta_positions: bool,
    max_positions: usize,
    team: kernels::team::Team,
}

/// The encoder's own team of threads: a forward pass runs on the calling thread (the batcher's)
/// and the many small parallel sections of a pass split with helpers that spin for the length
/// of the pass (see [`kernels::team`]).
pub(crate) fn team() -> Result<kernels::team::Team, ToolkitError> {
    kernels::team::Team::new("encoder")
        .map_err(|e| ToolkitError::Internal(format!("cannot start the encoder threads: {e}")))
}

fn load_err(what: &str, e: candle_core::Error) -> ToolkitError {
    ToolkitError::model_load_with(format!("the weights do not match the config ({what})"), e)
}

/// A tensor of the checkpoint as f32 values.
pub(crate) fn get(vb: &VarBuilder, dims: &[usize], name: &str) -> Result<Vec<f32>, ToolkitError> {
    with_values(vb, dims, name, <[f32]>::to_vec)
}

/// Runs `f` on a tensor of the checkpoint as f32 values, borrowed from the tensor candle has read
/// when it is f32 and contiguous (what packing a weight needs: no copy of it, and none of the
/// page faults of a fresh copy; a model's load time is mostly such copies).
pub(crate) fn with_values<R>(
    vb: &VarBuilder,
    dims: &[usize],
    name: &str,
    f: impl FnOnce(&[f32]) -> R,
) -> Result<R, ToolkitError> {
    let t = vb
        .get(dims, name)
        .and_then(|t| t.to_dtype(candle_core::DType::F32))
        .map_err(|e| load_err(name, e))?;
    {
        let (storage, layout) = t.storage_and_layout();
        if let (candle_core::Storage::Cpu(cpu), Some((start, end))) =
            (&*storage, layout.contiguous_offsets())
        {
            if let Some(values) = cpu.as_slice::<f32>().ok().and_then(|v| v.get(start..end)) {
                return Ok(f(values));
            }
        }
    }
    let values = t
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| load_err(name, e))?;
    Ok(f(&values))
}

/// A linear layer (`weight`, optional `bias`), packed.
pub(crate) fn linear(vb: &VarBuilder, n: usize, k: usize) -> Result<PackedLinear, ToolkitError> {
    let b = if vb.contains_tensor("bias") {
        Some(get(vb, &[n], "bias")?)
    } else {
        None
    };
    with_values(vb, &[n, k], "weight", |w| {
        PackedLinear::new(w, b.as_deref(), n, k)
    })
}

/// A layer norm (`weight`/`bias`, or the older `gamma`/`beta`).
pub(crate) fn norm(vb: &VarBuilder, h: usize) -> Result<Norm, ToolkitError> {
    let g = if vb.contains_tensor("gamma") {
        "gamma"
    } else {
        "weight"
    };
    let b = if vb.contains_tensor("beta") {
        "beta"
    } else {
        "bias"
    };
    Ok(Norm {
        gamma: get(vb, &[h], g)?,
        beta: get(vb, &[h], b)?,
    })
}

fn layer(
    vb: &VarBuilder,
    names: &LayerNames,
    h: usize,
    inter: usize,
) -> Result<Layer, ToolkitError> {
    let mut w = Vec::with_capacity(3 * h * h);
    let mut b = Vec::with_capacity(3 * h);
    for name in [names.q, names.k, names.v] {
        let p = vb.pp(name);
        with_values(&p, &[h, h], "weight", |v| w.extend_from_slice(v))?;
        with_values(&p, &[h], "bias", |v| b.extend_from_slice(v))?;
    }
    Ok(Layer {
        qkv: PackedLinear::new(&w, Some(&b), 3 * h, h),
        out: linear(&vb.pp(names.out), h, h)?,
        attn_norm: norm(&vb.pp(names.attn_norm), h)?,
        ff_in: linear(&vb.pp(names.ff_in), inter, h)?,
        ff_out: linear(&vb.pp(names.ff_out), h, inter)?,
        ff_norm: norm(&vb.pp(names.ff_norm), h)?,
    })
}

fn labels(config: &ModelConfig) -> Result<usize, ToolkitError> {
    match config.labels.len() {
        0 => Err(ToolkitError::model_load(
            "config.json has no id2label/num_labels: not a sequence-classification model",
        )),
        n => Ok(n),
    }
}

impl KernelEncoder {
    /// BERT, RoBERTa, XLM-RoBERTa, CamemBERT.
    pub fn from_bert(
        vb: VarBuilder,
        c: &BertConfig,
        config: &ModelConfig,
        head_kind: HeadKind,
    ) -> Result<Self, ToolkitError> {
        let enc = super::encoder_root(&vb, &["bert", "roberta"])?;
        let h = c.hidden_size;
        let emb = enc.pp("embeddings");
        let names = super::bert::LAYER_NAMES;
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                layer(
                    &enc.pp(format!("encoder.layer.{i}")),
                    &names,
                    h,
                    c.intermediate_size,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let head = match head_kind {
            HeadKind::HiddenStates => Head::Hidden,
            HeadKind::SequenceClassification => {
                let n = labels(config)?;
                if vb.contains_tensor("classifier.out_proj.weight") {
                    Head::Roberta(
                        linear(&vb.pp("classifier.dense"), h, h)?,
                        linear(&vb.pp("classifier.out_proj"), n, h)?,
                    )
                } else {
                    Head::Pooled(
                        linear(&enc.pp("pooler.dense"), h, h)?,
                        linear(&vb.pp("classifier"), n, h)?,
                    )
                }
            }
        };
        let roberta_positions = config.roberta_positions();
        let offset = if roberta_positions {
            config.pad_token_id as usize + 1
        } else {
            0
        };
        Ok(Self {
            word: get(&emb, &[c.vocab_size, h], "word_embeddings.weight")?,
            vocab: c.vocab_size,
            position: get(
                &emb,
                &[c.max_position_embeddings, h],
                "position_embeddings.weight",
            )?,
            position_rows: c.max_position_embeddings,
            token_type: Some((
                get(
                    &emb,
                    &[c.type_vocab_size, h],
                    "token_type_embeddings.weight",
                )?,
                c.type_vocab_size,
            )),
            emb_norm: norm(&emb.pp("LayerNorm"), h)?,
            layers,
            hidden: h,
            heads: c.num_attention_heads,
            act: c.hidden_act,
            eps: c.layer_norm_eps as f32,
            head,
            head_kind,
            pad_id: config.pad_token_id,
            roberta_positions,
            max_positions: c.max_position_embeddings.saturating_sub(offset),
            team: team()?,
        })
    }

    /// DistilBERT.
    pub fn from_distilbert(
        vb: VarBuilder,
        c: &DistilBertConfig,
        config: &ModelConfig,
        head_kind: HeadKind,
    ) -> Result<Self, ToolkitError> {
        let enc = super::encoder_root(&vb, &["distilbert"])?;
        let h = c.dim;
        let emb = enc.pp("embeddings");
        let names = super::distilbert::LAYER_NAMES;
        let layers = (0..c.n_layers)
            .map(|i| {
                layer(
                    &enc.pp(format!("transformer.layer.{i}")),
                    &names,
                    h,
                    c.hidden_dim,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let head = match head_kind {
            HeadKind::HiddenStates => Head::Hidden,
            HeadKind::SequenceClassification => {
                let n = labels(config)?;
                Head::Distil(
                    linear(&vb.pp("pre_classifier"), h, h)?,
                    linear(&vb.pp("classifier"), n, h)?,
                )
            }
        };
        Ok(Self {
            word: get(&emb, &[c.vocab_size, h], "word_embeddings.weight")?,
            vocab: c.vocab_size,
            position: get(
                &emb,
                &[c.max_position_embeddings, h],
                "position_embeddings.weight",
            )?,
            position_rows: c.max_position_embeddings,
            token_type: None,
            emb_norm: norm(&emb.pp("LayerNorm"), h)?,
            layers,
            hidden: h,
            heads: c.n_heads,
            act: c.activation,
            eps: 1e-12,
            head,
            head_kind,
            pad_id: config.pad_token_id,
            roberta_positions: false,
            max_positions: c.max_position_embeddings,
            team: team()?,
        })
    }

    fn embed(&self, batch: &[TokenSequence], total: usize) -> Result<Vec<f32>, ToolkitError> {
        let h = self.hidden;
        let mut x = Vec::with_capacity(total * h);
        for seq in batch {
            let mut count = 0u32;
            for (t, &id) in seq.ids.iter().enumerate() {
                let id = id as usize;
                if id >= self.vocab {
                    return Err(ToolkitError::Internal(format!(
                        "token id {id} is outside the vocabulary"
                    )));
                }
                let pos = if self.roberta_positions {
                    if seq.ids[t] != self.pad_id {
                        count += 1;
                        (count + self.pad_id) as usize
                    } else {
                        self.pad_id as usize
                    }
                } else {
                    t
                };
                if pos >= self.position_rows {
                    return Err(ToolkitError::Internal(format!(
                        "position {pos} is outside the table"
                    )));
                }
                let w = &self.word[id * h..(id + 1) * h];
                let p = &self.position[pos * h..(pos + 1) * h];
                let start = x.len();
                x.extend(w.iter().zip(p).map(|(a, b)| a + b));
                if let Some((table, n)) = &self.token_type {
                    let tt = seq.type_ids.get(t).map_or(0, |&v| v as usize);
                    let tt = if tt < *n { tt } else { 0 };
                    for (v, e) in x[start..].iter_mut().zip(&table[tt * h..(tt + 1) * h]) {
                        *v += e;
                    }
                }
            }
        }
        kernels::add_layer_norm(
            &mut x,
            None,
            &self.emb_norm.gamma,
            &self.emb_norm.beta,
            self.eps,
        );
        Ok(x)
    }

    /// The feed-forward activation, applied by the threads of the first feed-forward product
    /// to the columns they computed.
    fn activation(&self) -> fn(&mut [f32]) {
        match self.act {
            Activation::Gelu => kernels::gelu_erf,
            Activation::GeluNew => kernels::gelu_tanh,
            Activation::Relu => kernels::relu,
            Activation::QuickGelu => kernels::quick_gelu,
        }
    }

    fn attention(&self, qkv: &[f32], batch: &[TokenSequence], offsets: &[usize]) -> Vec<f32> {
        let h = self.hidden;
        let total = offsets.last().copied().unwrap_or(0);
        let run = |i: usize| {
            let (a, b) = (offsets[i], offsets[i + 1]);
            kernels::attention(
                &qkv[a * 3 * h..b * 3 * h],
                b - a,
                h,
                self.heads,
                &batch[i].attention_mask,
            )
        };
        if batch.len() >= kernels::team::threads() {
            // enough sequences to keep every thread busy: one task each
            let parts: Vec<Vec<f32>> = kernels::team::map(batch.len(), run);
            let mut ctx = Vec::with_capacity(total * h);
            for p in parts {
                ctx.extend(p);
            }
            return ctx;
        }
        // fewer sequences than threads (a single sentence, a long document): one task per head
        let heads = self.heads;
        let parts: Vec<Vec<f32>> = kernels::team::map(batch.len() * heads, |t| {
            let (i, head) = (t / heads, t % heads);
            let (a, b) = (offsets[i], offsets[i + 1]);
            kernels::attention_head(
                &qkv[a * 3 * h..b * 3 * h],
                b - a,
                h,
                heads,
                &batch[i].attention_mask,
                head,
            )
        });
        let mut ctx = vec![0f32; total * h];
        for (t, part) in parts.iter().enumerate() {
            let (i, head) = (t / heads, t % heads);
            let rows = &mut ctx[offsets[i] * h..offsets[i + 1] * h];
            kernels::put_head(rows, h, heads, head, part);
        }
        ctx
    }
}

impl TextModel for KernelEncoder {
    fn forward(&self, batch: &[TokenSequence]) -> Result<Vec<Matrix>, ToolkitError> {
        self.team.run(|| self.forward_in_pool(batch))
    }

    fn max_positions(&self) -> usize {
        self.max_positions
    }

    fn head(&self) -> HeadKind {
        self.head_kind
    }
}

impl KernelEncoder {
    fn forward_in_pool(&self, batch: &[TokenSequence]) -> Result<Vec<Matrix>, ToolkitError> {
        let h = self.hidden;
        let mut offsets = Vec::with_capacity(batch.len() + 1);
        offsets.push(0);
        for s in batch {
            if s.attention_mask.len() != s.ids.len() {
                return Err(ToolkitError::Internal(
                    "attention mask length differs from ids".into(),
                ));
            }
            offsets.push(offsets.last().copied().unwrap_or(0) + s.ids.len());
        }
        let total = offsets.last().copied().unwrap_or(0);
        if total == 0 {
            return Ok(batch
                .iter()
                .map(|_| Matrix {
                    rows: 0,
                    cols: h,
                    data: vec![],
                })
                .collect());
        }
        let mut x = self.embed(batch, total)?;
        for l in &self.layers {
            let qkv = l.qkv.forward(&x, total);
            let ctx = self.attention(&qkv, batch, &offsets);
            let mut a = l.out.forward(&ctx, total);
            kernels::add_layer_norm(
                &mut a,
                Some(&x),
                &l.attn_norm.gamma,
                &l.attn_norm.beta,
                self.eps,
            );
            let f = l.ff_in.forward_then(&a, total, Some(self.activation()));
            let mut y = l.ff_out.forward(&f, total);
            kernels::add_layer_norm(
                &mut y,
                Some(&a),
                &l.ff_norm.gamma,
                &l.ff_norm.beta,
                self.eps,
            );
            x = y;
        }
        let first = || {
            let mut v = Vec::with_capacity(batch.len() * h);
            for &o in &offsets[..batch.len()] {
                v.extend_from_slice(&x[o * h..(o + 1) * h]);
            }
            v
        };
        let b = batch.len();
        let logits = |l1: &PackedLinear, l2: &PackedLinear, act: fn(&mut [f32])| {
            let mut z = l1.forward(&first(), b);
            act(&mut z);
            let out = l2.forward(&z, b);
            let n = l2.n();
            out.chunks_exact(n)
                .map(|r| Matrix {
                    rows: 1,
                    cols: n,
                    data: r.to_vec(),
                })
                .collect::<Vec<_>>()
        };
        fn tanh(z: &mut [f32]) {
            z.iter_mut().for_each(|v| *v = v.tanh());
        }
        Ok(match &self.head {
            Head::Hidden => offsets
                .windows(2)
                .map(|w| Matrix {
                    rows: w[1] - w[0],
                    cols: h,
                    data: x[w[0] * h..w[1] * h].to_vec(),
                })
                .collect(),
            Head::Pooled(a, c) | Head::Roberta(a, c) => logits(a, c, tanh),
            Head::Distil(a, c) => logits(a, c, kernels::relu),
        })
    }
}
