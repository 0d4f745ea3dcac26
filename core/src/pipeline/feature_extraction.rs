//! `feature-extraction`, as transformers' `FeatureExtractionPipeline`: the last hidden state of
//! every token, unpooled and unnormalised; each input is tokenized on its own.

use super::{PipelineOutput, TextEncoder};
use crate::error::ToolkitError;
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
    pub fn run(&self, req: FeatureExtractionRequest) -> Result<PipelineOutput, ToolkitError> {
        let opts = req.parameters.unwrap_or_default().tokenize_options()?;
        let (batched, texts) = match req.inputs {
            OneOrMany::One(t) => (false, vec![t]),
            OneOrMany::Many(ts) => (true, ts),
        };
        let seqs = texts
            .iter()
            .map(|t| self.encoder.tokenizer().encode(t, None, &opts))
            .collect::<Result<Vec<_>, _>>()?;
        let items = self.encoder.run(seqs)?;
        Ok(PipelineOutput::Embeddings { batched, items })
    }
}
