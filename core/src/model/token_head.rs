//! Per-token linear heads, run on the CPU kernels over the encoder's hidden states:
//! `classifier` of `*ForTokenClassification` (one logit per label) and `qa_outputs` of
//! `*ForQuestionAnswering` (start and end logits). BERT, DistilBERT and RoBERTa name them alike.

use super::config::ModelConfig;
use super::kernel_encoder::linear;
use super::{loader, Matrix, ModelFiles};
use crate::error::ToolkitError;
use crate::kernels::PackedLinear;

/// A linear layer applied to every token.
pub struct TokenHead {
    linear: PackedLinear,
}

impl std::fmt::Debug for TokenHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenHead")
            .field("outputs", &self.linear.n())
            .finish_non_exhaustive()
    }
}

impl TokenHead {
    /// Loads the `[outputs × hidden]` layer `name` (`classifier`, `qa_outputs`).
    pub fn load(
        files: &ModelFiles,
        config: &ModelConfig,
        name: &str,
        outputs: usize,
    ) -> Result<Self, ToolkitError> {
        let vb = loader::var_builder(files, candle_core::DType::F32, &candle_core::Device::Cpu)?;
        let hidden = config.arch.hidden_size();
        if !vb.contains_tensor(&format!("{name}.weight")) {
            return Err(ToolkitError::model_load(format!(
                "the checkpoint has no `{name}` layer; {} needs a model saved with that head ({})",
                config.model_type,
                config.architectures.join(", ")
            )));
        }
        if outputs == 0 {
            return Err(ToolkitError::model_load(
                "the model has no labels (id2label in config.json)",
            ));
        }
        Ok(Self {
            linear: linear(&vb.pp(name), outputs, hidden)?,
        })
    }

    /// `[tokens × outputs]` logits of a `[tokens × hidden]` matrix.
    pub fn logits(&self, hidden: &Matrix) -> Result<Matrix, ToolkitError> {
        if hidden.cols != self.linear.k() {
            return Err(ToolkitError::Internal(format!(
                "hidden states are {} wide, the head expects {}",
                hidden.cols,
                self.linear.k()
            )));
        }
        Ok(Matrix {
            rows: hidden.rows,
            cols: self.linear.n(),
            data: self.linear.forward(&hidden.data, hidden.rows),
        })
    }

    /// The number of outputs per token.
    pub fn outputs(&self) -> usize {
        self.linear.n()
    }
}
