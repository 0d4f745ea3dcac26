//! `feature-extraction`: transformers' `FeatureExtractionPipeline`
//! (`pipelines/feature_extraction.py`).

use serde::{Deserialize, Serialize};

use super::{OneOrMany, PaddingArg, TruncationArg};
use crate::error::ToolkitError;
use crate::tokenize::TokenizeOptions;

/// `{"inputs": ..., "parameters": {...}}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureExtractionRequest {
    /// One string or a list of strings.
    pub inputs: OneOrMany<String>,
    /// Optional parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<FeatureExtractionParameters>,
}

/// The pipeline's parameters.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureExtractionParameters {
    /// Shorthand for `tokenize_kwargs.truncation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncation: Option<TruncationArg>,
    /// Tokenizer arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenize_kwargs: Option<TokenizeKwargs>,
}

/// The tokenizer arguments we honour.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizeKwargs {
    /// Truncation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncation: Option<TruncationArg>,
    /// Maximum length for truncation and padding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// Padding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding: Option<PaddingArg>,
    /// Add special tokens (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_special_tokens: Option<bool>,
}

impl FeatureExtractionParameters {
    /// The tokenizer options, refusing `truncation` given twice as transformers does.
    pub fn tokenize_options(&self) -> Result<TokenizeOptions, ToolkitError> {
        let kw = self.tokenize_kwargs.clone().unwrap_or_default();
        if self.truncation.is_some() && kw.truncation.is_some() {
            return Err(ToolkitError::InvalidParameters(
                "truncation parameter defined twice (given as keyword argument as well as in tokenize_kwargs); give it once".into(),
            ));
        }
        let truncation = match self.truncation.as_ref().or(kw.truncation.as_ref()) {
            Some(t) => t.strategy()?,
            None => None,
        };
        Ok(TokenizeOptions {
            truncation,
            max_length: kw.max_length,
            padding: match &kw.padding {
                Some(p) => p.padding()?,
                None => Default::default(),
            },
            add_special_tokens: kw.add_special_tokens.unwrap_or(true),
        })
    }
}
