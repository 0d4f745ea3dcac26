//! BERT, RoBERTa, XLM-RoBERTa and CamemBERT encoders with their sequence-classification heads,
//! following transformers' `modeling_bert.py` and `modeling_roberta.py`.
//!
//! The four share one network; they differ in where position ids start (RoBERTa counts from
//! `padding_idx + 1`, `create_position_ids_from_input_ids`), the checkpoint prefix (`bert.` /
//! `roberta.`), and the classification head: BERT classifies the pooled `[CLS]` state
//! (`pooler.dense` + tanh, then `classifier`), RoBERTa its own `classifier.dense` + tanh +
//! `classifier.out_proj` on `<s>`.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{embedding, layer_norm, linear, Embedding, LayerNorm, Linear, VarBuilder};

use super::config::{BertConfig, ModelConfig};
use super::layers::{first_token, EncoderLayer, LayerDims, LayerNames};
use super::{attention_bias, split_rows, HeadKind, Matrix, TextModel, TokenSequence};
use crate::error::ToolkitError;

/// The checkpoint names of a BERT layer's weights.
pub(crate) const LAYER_NAMES: LayerNames = LayerNames {
    q: "attention.self.query",
    k: "attention.self.key",
    v: "attention.self.value",
    out: "attention.output.dense",
    attn_norm: "attention.output.LayerNorm",
    ff_in: "intermediate.dense",
    ff_out: "output.dense",
    ff_norm: "output.LayerNorm",
};

enum Head {
    Hidden,
    /// BERT: pooler (dense + tanh on `[CLS]`) then `classifier`.
    Pooled {
        pooler: Linear,
        classifier: Linear,
    },
    /// RoBERTa: `classifier.dense` + tanh + `classifier.out_proj` on `<s>`.
    Roberta {
        dense: Linear,
        out_proj: Linear,
    },
}

/// A BERT-family encoder with its head.
pub struct BertModel {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
    layers: Vec<EncoderLayer>,
    head: Head,
    head_kind: HeadKind,
    pad_id: u32,
    roberta_positions: bool,
    type_vocab: usize,
    max_positions: usize,
    device: Device,
}

fn missing(what: &str, e: candle_core::Error) -> ToolkitError {
    ToolkitError::model_load_with(format!("the weights do not match the config ({what})"), e)
}

impl BertModel {
    /// Builds the model from its weights.
    pub fn load(
        vb: VarBuilder,
        c: &BertConfig,
        config: &ModelConfig,
        head_kind: HeadKind,
    ) -> Result<Self, ToolkitError> {
        let device = vb.device().clone();
        let enc = super::encoder_root(&vb, &["bert", "roberta"])?;
        let h = c.hidden_size;
        let emb = enc.pp("embeddings");
        let word = embedding(c.vocab_size, h, emb.pp("word_embeddings"))
            .map_err(|e| missing("embeddings", e))?;
        let position = embedding(c.max_position_embeddings, h, emb.pp("position_embeddings"))
            .map_err(|e| missing("position embeddings", e))?;
        let token_type = embedding(c.type_vocab_size, h, emb.pp("token_type_embeddings"))
            .map_err(|e| missing("token type embeddings", e))?;
        let norm = layer_norm(h, c.layer_norm_eps, emb.pp("LayerNorm"))
            .map_err(|e| missing("embeddings.LayerNorm", e))?;
        let dims = LayerDims {
            hidden: h,
            heads: c.num_attention_heads,
            intermediate: c.intermediate_size,
            eps: c.layer_norm_eps,
            act: c.hidden_act,
        };
        let layers = (0..c.num_hidden_layers)
            .map(|i| EncoderLayer::load(enc.pp(format!("encoder.layer.{i}")), &LAYER_NAMES, dims))
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(|e| missing("encoder layers", e))?;
        let head = match head_kind {
            HeadKind::HiddenStates => Head::Hidden,
            HeadKind::SequenceClassification => {
                let n = config.labels.len();
                if n == 0 {
                    return Err(ToolkitError::model_load(
                        "config.json has no id2label/num_labels: not a sequence-classification model",
                    ));
                }
                if vb.contains_tensor("classifier.out_proj.weight") {
                    Head::Roberta {
                        dense: linear(h, h, vb.pp("classifier.dense"))
                            .map_err(|e| missing("classifier.dense", e))?,
                        out_proj: linear(h, n, vb.pp("classifier.out_proj"))
                            .map_err(|e| missing("classifier.out_proj", e))?,
                    }
                } else {
                    Head::Pooled {
                        pooler: linear(h, h, enc.pp("pooler.dense"))
                            .map_err(|e| missing("pooler.dense", e))?,
                        classifier: linear(h, n, vb.pp("classifier"))
                            .map_err(|e| missing("classifier", e))?,
                    }
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
            word,
            position,
            token_type,
            norm,
            layers,
            head,
            head_kind,
            pad_id: config.pad_token_id,
            roberta_positions,
            type_vocab: c.type_vocab_size,
            max_positions: c.max_position_embeddings.saturating_sub(offset),
            device,
        })
    }

    fn position_ids(&self, batch: &[TokenSequence], s: usize) -> Vec<u32> {
        let mut out = Vec::with_capacity(batch.len() * s);
        for seq in batch {
            if self.roberta_positions {
                // cumsum(ids != pad) * (ids != pad) + pad, padding positions get `pad`
                let mut count = 0u32;
                for j in 0..s {
                    match seq.ids.get(j) {
                        Some(&id) if id != self.pad_id => {
                            count += 1;
                            out.push(count + self.pad_id);
                        }
                        _ => out.push(self.pad_id),
                    }
                }
            } else {
                out.extend(0..s as u32);
            }
        }
        out
    }
}

impl TextModel for BertModel {
    fn forward(&self, batch: &[TokenSequence]) -> Result<Vec<Matrix>, ToolkitError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut batch = batch.to_vec();
        for seq in &mut batch {
            for t in &mut seq.type_ids {
                if (*t as usize) >= self.type_vocab {
                    *t = 0;
                }
            }
        }
        let (ids, types, mask, s) = super::batch_tensors(&batch, self.pad_id, &self.device)?;
        let positions =
            Tensor::from_vec(self.position_ids(&batch, s), (batch.len(), s), &self.device)?;
        let x = (self.word.forward(&ids)? + self.token_type.forward(&types)?)?;
        let x = (x + self.position.forward(&positions)?)?;
        let mut x = self.norm.forward(&x)?;
        let bias = attention_bias(&mask, DType::F32)?;
        for layer in &self.layers {
            x = layer.forward(&x, &bias)?;
        }
        let out = match &self.head {
            Head::Hidden => x,
            Head::Pooled { pooler, classifier } => {
                classifier.forward(&pooler.forward(&first_token(&x)?)?.tanh()?)?
            }
            Head::Roberta { dense, out_proj } => {
                out_proj.forward(&dense.forward(&first_token(&x)?)?.tanh()?)?
            }
        };
        let lengths: Vec<usize> = batch.iter().map(|b| b.ids.len()).collect();
        split_rows(&out, &lengths)
    }

    fn max_positions(&self) -> usize {
        self.max_positions
    }

    fn head(&self) -> HeadKind {
        self.head_kind
    }
}
