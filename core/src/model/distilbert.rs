//! DistilBERT and its sequence-classification head, following transformers'
//! `models/distilbert/modeling_distilbert.py`: word + position embeddings (no segments), post-norm
//! layers, and `pre_classifier` + ReLU + `classifier` on the first token.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{embedding, layer_norm, linear, Embedding, LayerNorm, Linear, VarBuilder};

use super::config::{DistilBertConfig, ModelConfig};
use super::layers::{first_token, EncoderLayer, LayerDims, LayerNames};
use super::{attention_bias, split_rows, HeadKind, Matrix, TextModel, TokenSequence};
use crate::error::ToolkitError;

/// The checkpoint names of a DistilBERT layer's weights.
pub(crate) const LAYER_NAMES: LayerNames = LayerNames {
    q: "attention.q_lin",
    k: "attention.k_lin",
    v: "attention.v_lin",
    out: "attention.out_lin",
    attn_norm: "sa_layer_norm",
    ff_in: "ffn.lin1",
    ff_out: "ffn.lin2",
    ff_norm: "output_layer_norm",
};

/// A DistilBERT encoder with its head.
pub struct DistilBertModel {
    word: Embedding,
    position: Embedding,
    norm: LayerNorm,
    layers: Vec<EncoderLayer>,
    classifier: Option<(Linear, Linear)>,
    head_kind: HeadKind,
    pad_id: u32,
    max_positions: usize,
    device: Device,
}

fn missing(what: &str, e: candle_core::Error) -> ToolkitError {
    ToolkitError::model_load_with(format!("the weights do not match the config ({what})"), e)
}

impl DistilBertModel {
    /// Builds the model from its weights.
    pub fn load(
        vb: VarBuilder,
        c: &DistilBertConfig,
        config: &ModelConfig,
        head_kind: HeadKind,
    ) -> Result<Self, ToolkitError> {
        let device = vb.device().clone();
        let enc = super::encoder_root(&vb, &["distilbert"])?;
        let h = c.dim;
        let emb = enc.pp("embeddings");
        let word = embedding(c.vocab_size, h, emb.pp("word_embeddings"))
            .map_err(|e| missing("embeddings", e))?;
        let position = embedding(c.max_position_embeddings, h, emb.pp("position_embeddings"))
            .map_err(|e| missing("position embeddings", e))?;
        let norm = layer_norm(h, 1e-12, emb.pp("LayerNorm"))
            .map_err(|e| missing("embeddings.LayerNorm", e))?;
        let dims = LayerDims {
            hidden: h,
            heads: c.n_heads,
            intermediate: c.hidden_dim,
            eps: 1e-12,
            act: c.activation,
        };
        let layers = (0..c.n_layers)
            .map(|i| {
                EncoderLayer::load(enc.pp(format!("transformer.layer.{i}")), &LAYER_NAMES, dims)
            })
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(|e| missing("transformer layers", e))?;
        let classifier = match head_kind {
            HeadKind::HiddenStates => None,
            HeadKind::SequenceClassification => {
                let n = config.labels.len();
                if n == 0 {
                    return Err(ToolkitError::model_load(
                        "config.json has no id2label/num_labels: not a sequence-classification model",
                    ));
                }
                Some((
                    linear(h, h, vb.pp("pre_classifier"))
                        .map_err(|e| missing("pre_classifier", e))?,
                    linear(h, n, vb.pp("classifier")).map_err(|e| missing("classifier", e))?,
                ))
            }
        };
        Ok(Self {
            word,
            position,
            norm,
            layers,
            classifier,
            head_kind,
            pad_id: config.pad_token_id,
            max_positions: c.max_position_embeddings,
            device,
        })
    }
}

impl TextModel for DistilBertModel {
    fn forward(&self, batch: &[TokenSequence]) -> Result<Vec<Matrix>, ToolkitError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, _types, mask, s) = super::batch_tensors(batch, self.pad_id, &self.device)?;
        let positions = Tensor::arange(0u32, s as u32, &self.device)?.unsqueeze(0)?;
        let x = self
            .word
            .forward(&ids)?
            .broadcast_add(&self.position.forward(&positions)?)?;
        let mut x = self.norm.forward(&x)?;
        let bias = attention_bias(&mask, DType::F32)?;
        for layer in &self.layers {
            x = layer.forward(&x, &bias)?;
        }
        let out = match &self.classifier {
            None => x,
            Some((pre, cls)) => cls.forward(&pre.forward(&first_token(&x)?)?.relu()?)?,
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
