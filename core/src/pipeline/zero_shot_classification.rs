//! `zero-shot-classification`, as transformers' `ZeroShotClassificationPipeline` (4.51): every
//! (sequence, hypothesis) pair goes through an NLI sequence classifier; without `multi_label` the
//! entailment logits are softmaxed over the labels, with it (or with one label) each label's
//! [contradiction, entailment] pair is softmaxed on its own. The entailment class is the first
//! label of `label2id` starting with "entail" (else the last class, as transformers falls back to
//! -1); contradiction is class 0 (or the last one when entailment is 0).

use super::{PipelineOutput, TextEncoder};
use crate::error::ToolkitError;
use crate::task::Task;
use crate::tokenize::{TokenizeOptions, TruncationStrategy};
use crate::types::zero_shot_classification::{
    ZeroShotClassificationOutput, ZeroShotClassificationRequest,
};
use crate::types::OneOrMany;

const DEFAULT_TEMPLATE: &str = "This example is {}.";

/// The zero-shot-classification pipeline.
#[derive(Debug)]
pub struct ZeroShotClassificationPipeline {
    encoder: TextEncoder,
    entailment: usize,
    contradiction: usize,
}

impl ZeroShotClassificationPipeline {
    /// Wraps an NLI sequence classifier.
    pub fn new(encoder: TextEncoder) -> Result<Self, ToolkitError> {
        let labels = &encoder.config().labels;
        if labels.len() < 2 {
            return Err(ToolkitError::model_load(
                "zero-shot-classification needs an NLI model with entailment and contradiction classes (id2label in config.json)",
            ));
        }
        let entailment = match labels
            .iter()
            .position(|l| l.to_lowercase().starts_with("entail"))
        {
            Some(i) => i,
            None => {
                tracing::warn!("no label starting with \"entail\" in id2label; using the last class as entailment, as transformers does");
                labels.len() - 1
            }
        };
        let contradiction = if entailment == 0 { labels.len() - 1 } else { 0 };
        Ok(Self {
            encoder,
            entailment,
            contradiction,
        })
    }

    /// Runs a request.
    pub fn answer(
        &self,
        req: ZeroShotClassificationRequest,
    ) -> Result<PipelineOutput, ToolkitError> {
        let params = req.parameters.unwrap_or_default();
        let labels: Vec<String> = match params.candidate_labels {
            Some(OneOrMany::One(s)) => s
                .split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            Some(OneOrMany::Many(v)) => v,
            None => Vec::new(),
        };
        if labels.is_empty() {
            return Err(ToolkitError::InvalidParameters(
                "zero-shot-classification needs at least one label: pass \"parameters\": {\"candidate_labels\": [\"label\", ...]} (a list or a comma-separated string)".into(),
            ));
        }
        let template = params
            .hypothesis_template
            .as_deref()
            .unwrap_or(DEFAULT_TEMPLATE);
        if !template.contains("{}") {
            return Err(ToolkitError::InvalidParameters(format!(
                "hypothesis_template {template:?} has no {{}} to put the label in; use e.g. \"This example is {{}}.\""
            )));
        }
        let (batched, sequences) = match req.inputs {
            OneOrMany::One(s) => (false, vec![s]),
            OneOrMany::Many(v) => (true, v),
        };
        // transformers tokenizes the pairs with truncation="only_first": the sequence is cut, the
        // hypothesis kept
        let opts = TokenizeOptions {
            truncation: Some(TruncationStrategy::OnlyFirst),
            ..TokenizeOptions::default()
        };
        let hypotheses: Vec<String> = labels
            .iter()
            .map(|l| template.replacen("{}", l, 1))
            .collect();
        let tok = self.encoder.tokenizer();
        let mut seqs = Vec::with_capacity(
            sequences
                .len()
                .saturating_mul(labels.len())
                .min(self.encoder.max_request_tokens()),
        );
        let mut budget = self.encoder.budget();
        for s in &sequences {
            for h in &hypotheses {
                seqs.push(budget.take(tok.encode(s, Some(h), &opts)?)?);
            }
        }
        let logits = self.encoder.run(seqs)?;
        let multi = params.multi_label.unwrap_or(false) || labels.len() == 1;
        let mut results = Vec::with_capacity(sequences.len());
        for (i, sequence) in sequences.into_iter().enumerate() {
            let rows = &logits[i * labels.len()..(i + 1) * labels.len()];
            let scores: Vec<f32> = if multi {
                rows.iter()
                    .map(|m| {
                        let (c, e) = (
                            m.row(0)[self.contradiction].exp(),
                            m.row(0)[self.entailment].exp(),
                        );
                        e / (c + e)
                    })
                    .collect()
            } else {
                let exps: Vec<f32> = rows
                    .iter()
                    .map(|m| m.row(0)[self.entailment].exp())
                    .collect();
                let sum: f32 = exps.iter().sum();
                exps.iter().map(|e| e / sum).collect()
            };
            let mut order: Vec<usize> = (0..labels.len()).collect();
            order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
            if scores.iter().any(|s| !s.is_finite()) {
                return Err(ToolkitError::Internal(
                    "the model produced non-finite scores".into(),
                ));
            }
            results.push(ZeroShotClassificationOutput {
                sequence,
                labels: order.iter().map(|&j| labels[j].clone()).collect(),
                scores: order.iter().map(|&j| f64::from(scores[j])).collect(),
            });
        }
        let value = if batched {
            serde_json::to_value(&results)
        } else {
            serde_json::to_value(&results[0])
        }
        .map_err(|e| ToolkitError::Internal(format!("cannot encode the output: {e}")))?;
        Ok(PipelineOutput::Json(value))
    }
}

/// The registry's constructor.
pub(crate) fn build(
    parts: crate::pipeline::EncoderParts<'_>,
) -> Result<Box<dyn crate::pipeline::Pipeline>, ToolkitError> {
    Ok(Box::new(ZeroShotClassificationPipeline::new(
        parts.encoder,
    )?))
}

impl crate::pipeline::Pipeline for ZeroShotClassificationPipeline {
    fn task(&self) -> Task {
        Task::ZeroShotClassification
    }

    fn run(
        &self,
        input: crate::pipeline::Input,
        _ctx: crate::context::Context,
    ) -> Result<PipelineOutput, ToolkitError> {
        self.answer(input.into_request(Task::ZeroShotClassification)?)
    }

    fn warm_up_input(&self) -> crate::pipeline::Input {
        crate::pipeline::Input::Json(
            serde_json::json!({"inputs": "warm up", "parameters": {"candidate_labels": ["a", "b"]}}),
        )
    }
}
