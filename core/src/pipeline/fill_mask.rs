//! `fill-mask`, as transformers' `FillMaskPipeline` (4.51): softmax over the vocabulary at each
//! mask position, the `top_k` best (default 5, restricted to `targets` when given), the filled-in
//! sequence decoded without special tokens for a single mask and with them for several (so the
//! other masks stay visible), padding removed.

use super::{PipelineOutput, TextEncoder};
use crate::error::ToolkitError;
use crate::model::mlm::MlmHead;
use crate::task::Task;
use crate::tokenize::TokenizeOptions;
use crate::types::fill_mask::{FillMaskPrediction, FillMaskRequest};
use crate::types::OneOrMany;

/// The fill-mask pipeline.
#[derive(Debug)]
pub struct FillMaskPipeline {
    encoder: TextEncoder,
    head: MlmHead,
    mask: (String, u32),
}

impl FillMaskPipeline {
    /// Wraps an encoder (hidden states) and its masked-LM head.
    pub fn new(encoder: TextEncoder, head: MlmHead) -> Result<Self, ToolkitError> {
        let mask = encoder
            .tokenizer()
            .mask()
            .map(|(t, id)| (t.to_owned(), id))
            .ok_or_else(|| {
                ToolkitError::model_load("fill-mask needs a tokenizer with a mask token (mask_token in tokenizer_config.json)")
            })?;
        Ok(Self {
            encoder,
            head,
            mask,
        })
    }

    /// The model's mask token, e.g. `[MASK]`.
    pub fn mask_token(&self) -> &str {
        &self.mask.0
    }

    fn target_ids(&self, targets: Vec<String>) -> Result<Vec<u32>, ToolkitError> {
        let tok = self.encoder.tokenizer();
        let opts = TokenizeOptions {
            add_special_tokens: false,
            ..TokenizeOptions::default()
        };
        let mut ids = Vec::new();
        for t in targets {
            let id = match tok.token_to_id(&t) {
                Some(id) => Some(id),
                // not a vocabulary entry: transformers scores its first sub-token
                None => tok.encode(&t, None, &opts)?.ids.first().copied(),
            };
            match id {
                Some(id) if (id as usize) < self.head.vocab() => {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                _ => {
                    tracing::warn!(target = %t, "fill-mask target does not map to a token; ignored")
                }
            }
        }
        if ids.is_empty() {
            return Err(ToolkitError::InvalidParameters(
                "none of the targets maps to a token of the model's vocabulary; give at least one usable word".into(),
            ));
        }
        Ok(ids)
    }

    /// Runs a request.
    pub fn answer(&self, req: FillMaskRequest) -> Result<PipelineOutput, ToolkitError> {
        let params = req.parameters.unwrap_or_default();
        let targets = match params.targets {
            Some(OneOrMany::One(t)) => Some(self.target_ids(vec![t])?),
            Some(OneOrMany::Many(ts)) => Some(self.target_ids(ts)?),
            None => None,
        };
        let mut top_k = params.top_k.unwrap_or(5);
        if let Some(t) = &targets {
            top_k = top_k.min(t.len());
        }
        let (batched, texts) = match req.inputs {
            OneOrMany::One(t) => (false, vec![t]),
            OneOrMany::Many(ts) => (true, ts),
        };
        let tok = self.encoder.tokenizer();
        let (mask_token, mask_id) = (&self.mask.0, self.mask.1);
        let mut budget = self.encoder.budget();
        let seqs = texts
            .iter()
            .map(|t| budget.take(tok.encode(t, None, &TokenizeOptions::default())?))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, s) in seqs.iter().enumerate() {
            if !s.ids.contains(&mask_id) {
                let which = if batched {
                    format!(" in input {i}")
                } else {
                    String::new()
                };
                return Err(ToolkitError::Validation(format!(
                    "No mask_token ({mask_token}) found on the input{which}: put {mask_token} where the word to predict goes"
                )));
            }
        }
        let hidden = self.encoder.run(seqs.clone())?;
        let vocab = self.head.vocab();
        let mut results = Vec::with_capacity(seqs.len());
        for (seq, h) in seqs.iter().zip(&hidden) {
            let positions: Vec<usize> = seq
                .ids
                .iter()
                .enumerate()
                .filter(|(_, &id)| id == mask_id)
                .map(|(i, _)| i)
                .collect();
            let rows: Vec<f32> = positions
                .iter()
                .flat_map(|&p| h.row(p).iter().copied())
                .collect();
            let mut logits = self.head.logits(&rows, positions.len());
            let single = positions.len() == 1;
            let mut per_mask = Vec::with_capacity(positions.len());
            for (m, &pos) in positions.iter().enumerate() {
                let probs = &mut logits[m * vocab..(m + 1) * vocab];
                crate::kernels::softmax_rows(probs, vocab);
                let mut candidates: Vec<u32> = match &targets {
                    Some(t) => t.clone(),
                    None => (0..vocab as u32).collect(),
                };
                candidates.sort_by(|&a, &b| probs[b as usize].total_cmp(&probs[a as usize]));
                candidates.truncate(top_k);
                let mut row = Vec::with_capacity(candidates.len());
                for id in candidates {
                    let mut filled: Vec<u32> = seq.ids.clone();
                    filled[pos] = id;
                    filled.retain(|&t| t != tok.pad_id() || t == id);
                    row.push(FillMaskPrediction {
                        score: f64::from(probs[id as usize]),
                        token: id,
                        token_str: tok.decode(&[id], false)?,
                        sequence: tok.decode(&filled, single)?,
                    });
                }
                per_mask.push(row);
            }
            let value = if single {
                serde_json::to_value(&per_mask[0])
            } else {
                serde_json::to_value(&per_mask)
            }
            .map_err(|e| ToolkitError::Internal(format!("cannot encode the output: {e}")))?;
            results.push(value);
        }
        Ok(PipelineOutput::Json(if batched {
            serde_json::Value::Array(results)
        } else {
            results.pop().unwrap_or(serde_json::Value::Null)
        }))
    }
}

/// The registry's constructor.
pub(crate) fn build(
    parts: crate::pipeline::EncoderParts<'_>,
) -> Result<Box<dyn crate::pipeline::Pipeline>, ToolkitError> {
    let config = parts.encoder.config().clone();
    let head = crate::model::mlm::MlmHead::load(parts.files, &config)?;
    Ok(Box::new(FillMaskPipeline::new(parts.encoder, head)?))
}

impl crate::pipeline::Pipeline for FillMaskPipeline {
    fn task(&self) -> Task {
        Task::FillMask
    }

    fn run(
        &self,
        input: crate::pipeline::Input,
        _ctx: crate::context::Context,
    ) -> Result<PipelineOutput, ToolkitError> {
        self.answer(input.into_request(Task::FillMask)?)
    }

    fn warm_up_input(&self) -> crate::pipeline::Input {
        crate::pipeline::Input::Json(
            serde_json::json!({"inputs": format!("warm {} up", self.mask_token())}),
        )
    }
}
