//! Masked-language-model heads, run on the CPU kernels over the encoder's hidden states of the
//! masked positions only (the vocabulary projection is the biggest matrix of a small encoder, so
//! it is never applied to every token):
//! BERT `cls.predictions` (transform dense + `hidden_act` + LayerNorm, decoder tied to the word
//! embeddings, `cls.predictions.bias`), DistilBERT `vocab_transform` / `vocab_layer_norm` /
//! `vocab_projector`, RoBERTa `lm_head` (dense + GELU + layer_norm, decoder + `lm_head.bias`).

use candle_nn::VarBuilder;

use super::config::{Activation, ArchConfig, ModelConfig};
use super::kernel_encoder::{get, linear, norm, Norm};
use super::{loader, ModelFiles};
use crate::error::ToolkitError;
use crate::kernels::{self, PackedLinear};

/// A masked-LM head.
pub struct MlmHead {
    transform: PackedLinear,
    act: Activation,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
    decoder: PackedLinear,
}

impl std::fmt::Debug for MlmHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MlmHead")
            .field("vocab", &self.decoder.n())
            .finish_non_exhaustive()
    }
}

fn first<'a>(vb: &VarBuilder, names: &[&'a str]) -> Option<&'a str> {
    names.iter().copied().find(|n| vb.contains_tensor(n))
}

impl MlmHead {
    /// Loads the head of a `*ForMaskedLM` checkpoint.
    pub fn load(files: &ModelFiles, config: &ModelConfig) -> Result<Self, ToolkitError> {
        let vb = loader::var_builder(files, candle_core::DType::F32, &candle_core::Device::Cpu)?;
        let (h, vocab, eps, act, prefixes) = match &config.arch {
            ArchConfig::Bert(c) => (
                c.hidden_size,
                c.vocab_size,
                c.layer_norm_eps,
                c.hidden_act,
                ["bert", "roberta"].as_slice(),
            ),
            ArchConfig::DistilBert(c) => (
                c.dim,
                c.vocab_size,
                1e-12,
                c.activation,
                ["distilbert"].as_slice(),
            ),
            ArchConfig::DebertaV2(_) => {
                return Err(ToolkitError::model_load(
                    "fill-mask is not supported for deberta-v2 models yet; they serve feature-extraction, text-classification, zero-shot-classification, token-classification and question-answering",
                ))
            }
        };
        let word = get(
            &super::encoder_root(&vb, prefixes)?,
            &[vocab, h],
            "embeddings.word_embeddings.weight",
        )?;
        // (transform, activation, norm, decoder weight, decoder bias) names per family
        let (t, act, n, dw, db): (&str, Activation, &str, &[&str], &[&str]) = if vb
            .contains_tensor("cls.predictions.transform.dense.weight")
        {
            (
                "cls.predictions.transform.dense",
                act,
                "cls.predictions.transform.LayerNorm",
                &["cls.predictions.decoder.weight"],
                &["cls.predictions.bias", "cls.predictions.decoder.bias"],
            )
        } else if vb.contains_tensor("vocab_transform.weight") {
            (
                "vocab_transform",
                act,
                "vocab_layer_norm",
                &["vocab_projector.weight"],
                &["vocab_projector.bias"],
            )
        } else if vb.contains_tensor("lm_head.dense.weight") {
            (
                "lm_head.dense",
                Activation::Gelu,
                "lm_head.layer_norm",
                &["lm_head.decoder.weight"],
                &["lm_head.bias", "lm_head.decoder.bias"],
            )
        } else {
            return Err(ToolkitError::model_load(
                "fill-mask needs a masked-LM checkpoint (cls.predictions, vocab_transform or lm_head weights); this one has none",
            ));
        };
        let transform = linear(&vb.pp(t), h, h)?;
        let Norm { gamma, beta } = norm(&vb.pp(n), h)?;
        // the decoder is usually tied to the word embeddings and not stored
        let weight = match first(&vb, dw) {
            Some(name) => get(&vb, &[vocab, h], name)?,
            None => word,
        };
        let bias = match first(&vb, db) {
            Some(name) => get(&vb, &[vocab], name)?,
            None => vec![0.0; vocab],
        };
        Ok(Self {
            transform,
            act,
            gamma,
            beta,
            eps: eps as f32,
            decoder: PackedLinear::new(&weight, Some(&bias), vocab, h),
        })
    }

    /// Vocabulary logits `[n, vocab]` of `n` hidden-state rows.
    pub fn logits(&self, rows: &[f32], n: usize) -> Vec<f32> {
        let mut x = self.transform.forward(rows, n);
        match self.act {
            Activation::Gelu => kernels::gelu_erf(&mut x),
            Activation::GeluNew => kernels::gelu_tanh(&mut x),
            Activation::Relu => kernels::relu(&mut x),
            Activation::QuickGelu => kernels::quick_gelu(&mut x),
        }
        kernels::add_layer_norm(&mut x, None, &self.gamma, &self.beta, self.eps);
        self.decoder.forward(&x, n)
    }

    /// The vocabulary size.
    pub fn vocab(&self) -> usize {
        self.decoder.n()
    }
}
