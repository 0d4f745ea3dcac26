//! DeBERTa-v2/v3 (`model_type: deberta-v2`): the encoder is candle-transformers'
//! `debertav2` (disentangled attention over relative-position buckets), here on every device; the
//! heads follow transformers' `modeling_deberta_v2.py`: hidden states for the token heads
//! (`classifier`, `qa_outputs`, applied by the pipelines), and for sequence classification the
//! context pooler (`pooler.dense` + `pooler_hidden_act` on `[CLS]`) then `classifier`.

use candle_core::{Device, Module};
use candle_nn::{linear, Linear, VarBuilder};
use candle_transformers::models::debertav2::{
    Config as DebertaConfig, DebertaV2ContextPooler, DebertaV2Model,
};

use super::config::ModelConfig;
use super::{split_rows, HeadKind, Matrix, TextModel, TokenSequence};
use crate::error::ToolkitError;

/// A DeBERTa-v2 encoder with its head.
pub struct DebertaV2 {
    model: DebertaV2Model,
    classifier: Option<(DebertaV2ContextPooler, Linear)>,
    head_kind: HeadKind,
    pad_id: u32,
    max_positions: usize,
    device: Device,
}

fn missing(what: &str, e: candle_core::Error) -> ToolkitError {
    ToolkitError::model_load_with(format!("the weights do not match the config ({what})"), e)
}

impl DebertaV2 {
    /// Builds the model from its weights.
    pub fn load(
        vb: VarBuilder,
        c: &DebertaConfig,
        config: &ModelConfig,
        head_kind: HeadKind,
    ) -> Result<Self, ToolkitError> {
        let device = vb.device().clone();
        let enc = super::encoder_root(&vb, &["deberta"])?;
        let model = DebertaV2Model::load(enc, c).map_err(|e| missing("encoder", e))?;
        let classifier = match head_kind {
            HeadKind::HiddenStates => None,
            HeadKind::SequenceClassification => {
                let n = config.labels.len();
                if n == 0 {
                    return Err(ToolkitError::model_load(
                        "a sequence classifier needs labels (id2label in config.json)",
                    ));
                }
                let pooler = DebertaV2ContextPooler::load(vb.clone(), c)
                    .map_err(|e| missing("pooler", e))?;
                let width = pooler.output_dim().map_err(|e| missing("pooler", e))?;
                let classifier =
                    linear(width, n, vb.pp("classifier")).map_err(|e| missing("classifier", e))?;
                Some((pooler, classifier))
            }
        };
        Ok(Self {
            model,
            classifier,
            head_kind,
            pad_id: config.pad_token_id,
            max_positions: c.max_position_embeddings,
            device,
        })
    }
}

impl TextModel for DebertaV2 {
    fn forward(&self, batch: &[TokenSequence]) -> Result<Vec<Matrix>, ToolkitError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, types, mask, _) = super::batch_tensors(batch, self.pad_id, &self.device)?;
        let x = self.model.forward(&ids, Some(types), Some(mask))?;
        let out = match &self.classifier {
            None => x,
            Some((pooler, classifier)) => classifier.forward(&pooler.forward(&x)?)?,
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
