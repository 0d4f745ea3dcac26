//! `feature-extraction`, as transformers' `FeatureExtractionPipeline`: the last hidden state of
//! every token, unpooled and unnormalised; each input is tokenized on its own.

use super::{PipelineOutput, TextEncoder};
use crate::error::ToolkitError;
use crate::task::Task;
use crate::types::feature_extraction::FeatureExtractionRequest;
use crate::types::OneOrMany;

/// The feature-extraction pipeline.
#[derive(Debug)]
pub struct FeatureExtractionPipeline {
    encoder: TextEncoder,
}

impl FeatureExtractionPipeline {
    /// Wraps an encoder.
    pub fn new(encoder: TextEncoder) -> Self {
        Self { encoder }
    }

    /// Runs a request.
    pub fn answer(&self, req: FeatureExtractionRequest) -> Result<PipelineOutput, ToolkitError> {
        let opts = req.parameters.unwrap_or_default().tokenize_options()?;
        let (batched, texts) = match req.inputs {
            OneOrMany::One(t) => (false, vec![t]),
            OneOrMany::Many(ts) => (true, ts),
        };
        let mut budget = self.encoder.budget();
        let seqs = texts
            .iter()
            .map(|t| budget.take(self.encoder.tokenizer().encode(t, None, &opts)?))
            .collect::<Result<Vec<_>, _>>()?;
        let items = self.encoder.run(seqs)?;
        Ok(PipelineOutput::Embeddings { batched, items })
    }
}

/// The registry's constructor.
pub(crate) fn build(
    parts: crate::pipeline::EncoderParts<'_>,
) -> Result<Box<dyn crate::pipeline::Pipeline>, ToolkitError> {
    Ok(Box::new(FeatureExtractionPipeline::new(parts.encoder)))
}

impl crate::pipeline::Pipeline for FeatureExtractionPipeline {
    fn task(&self) -> Task {
        Task::FeatureExtraction
    }

    fn run(
        &self,
        input: crate::pipeline::Input,
        _ctx: crate::context::Context,
    ) -> Result<PipelineOutput, ToolkitError> {
        self.answer(input.into_request(Task::FeatureExtraction)?)
    }

    fn warm_up_input(&self) -> crate::pipeline::Input {
        crate::pipeline::Input::Json(serde_json::json!({"inputs": "warm up"}))
    }
}
