//! The compute seam: models take token ids and return hidden states or logits, and know nothing
//! of HTTP or JSON.
//!
//! Architectures are an open set behind [`TextModel`]; [`load`] reads `config.json`'s
//! `model_type` and builds the matching candle implementation.

pub mod bart;
pub mod beit;
pub mod bert;
pub mod causal;
pub mod clip;
pub mod config;
pub(crate) mod conv;
pub mod convnext;
pub mod deberta;
pub mod deit;
pub mod detr;
pub mod device;
pub mod dinov2;
pub mod distilbert;
pub mod family;
pub mod image_classifier;
pub mod kernel_encoder;
pub mod kernel_vit;
pub(crate) mod layers;
pub mod lm;
pub mod loader;
pub mod maskformer;
pub mod mlm;
pub mod mobilenet;
pub mod object_detector;
pub mod resnet;
pub mod segformer;
pub mod segmenter;
pub(crate) mod seq2seq;
pub mod siglip;
pub mod swin;
pub mod t5;
pub mod tapas;
pub mod token_head;
pub mod vit;
pub mod yolos;

pub use device::{DeviceChoice, CUDA_BUILD};
pub use family::{Family, Shape};

use candle_core::{DType, Device, Tensor};

use crate::error::ToolkitError;
pub use config::{ArchConfig, ModelConfig};
pub use loader::{ModelFiles, ModelSource};

/// One tokenized sequence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenSequence {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Segment (token type) ids, same length as `ids`.
    pub type_ids: Vec<u32>,
    /// 1 for real tokens, 0 for padding, same length as `ids`.
    pub attention_mask: Vec<u32>,
}

/// A row-major matrix of f32.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// `rows * cols` values.
    pub data: Vec<f32>,
}

impl Matrix {
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

/// What the model's head computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadKind {
    /// The last hidden state of every token: one `[tokens × hidden]` matrix per sequence.
    HiddenStates,
    /// Sequence classification logits: one `[1 × labels]` matrix per sequence.
    SequenceClassification,
}

/// An encoder model with its head.
pub trait TextModel: Send + Sync {
    /// Runs the model on a batch of sequences (of any lengths) and returns one matrix per
    /// sequence, shaped by the head (see [`HeadKind`]).
    fn forward(&self, batch: &[TokenSequence]) -> Result<Vec<Matrix>, ToolkitError>;
    /// The longest sequence the position embeddings allow.
    fn max_positions(&self) -> usize;
    /// The head.
    fn head(&self) -> HeadKind;
}

/// The encoder's weights inside a checkpoint: at the root (a bare `BertModel`) or under one of
/// `prefixes` (`bert.`, `roberta.`, `distilbert.` in the task models).
pub(crate) fn encoder_root<'a>(
    vb: &candle_nn::VarBuilder<'a>,
    prefixes: &[&str],
) -> Result<candle_nn::VarBuilder<'a>, ToolkitError> {
    const KEY: &str = "embeddings.word_embeddings.weight";
    if vb.contains_tensor(KEY) {
        return Ok(vb.clone());
    }
    prefixes
        .iter()
        .map(|p| vb.pp(p))
        .find(|v| v.contains_tensor(KEY))
        .ok_or_else(|| {
            ToolkitError::model_load(format!(
                "the weights have no {KEY} (at the root or under {})",
                prefixes
                    .iter()
                    .map(|p| format!("{p}."))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// Pads a batch on the right into `[b, s]` u32 tensors: ids, type ids, attention mask.
pub(crate) fn batch_tensors(
    batch: &[TokenSequence],
    pad_id: u32,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor, Tensor, usize)> {
    let b = batch.len();
    let s = batch.iter().map(|x| x.ids.len()).max().unwrap_or(0);
    let mut ids = vec![pad_id; b * s];
    let mut types = vec![0u32; b * s];
    let mut mask = vec![0u32; b * s];
    for (i, seq) in batch.iter().enumerate() {
        let n = seq.ids.len();
        ids[i * s..i * s + n].copy_from_slice(&seq.ids);
        types[i * s..i * s + n].copy_from_slice(&seq.type_ids);
        mask[i * s..i * s + n].copy_from_slice(&seq.attention_mask);
    }
    Ok((
        Tensor::from_vec(ids, (b, s), device)?,
        Tensor::from_vec(types, (b, s), device)?,
        Tensor::from_vec(mask, (b, s), device)?,
        s,
    ))
}

/// `[b, s]` mask of 1/0 → additive `[b, 1, 1, s]` bias of 0 / a large negative value.
pub(crate) fn attention_bias(mask: &Tensor, dtype: DType) -> candle_core::Result<Tensor> {
    let (b, s) = mask.dims2()?;
    let m = mask.to_dtype(dtype)?;
    // (1 - m) * f32::MIN as transformers does (`_prepare_4d_attention_mask`)
    let bias = ((m.ones_like()? - m)? * f64::from(f32::MIN))?;
    bias.reshape((b, 1, 1, s))
}

/// Splits a `[b, s, h]` tensor into one `[len_i × h]` matrix per sequence (trimming padding), or a
/// `[b, n]` tensor into `[1 × n]` matrices.
pub(crate) fn split_rows(out: &Tensor, lengths: &[usize]) -> Result<Vec<Matrix>, ToolkitError> {
    let out = out.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
    match out.dims() {
        &[b, s, h] => {
            let flat: Vec<f32> = out.flatten_all()?.to_vec1()?;
            Ok((0..b)
                .map(|i| {
                    let n = lengths.get(i).copied().unwrap_or(s).min(s);
                    Matrix {
                        rows: n,
                        cols: h,
                        data: flat[i * s * h..i * s * h + n * h].to_vec(),
                    }
                })
                .collect())
        }
        &[b, n] => {
            let flat: Vec<f32> = out.flatten_all()?.to_vec1()?;
            Ok((0..b)
                .map(|i| Matrix {
                    rows: 1,
                    cols: n,
                    data: flat[i * n..(i + 1) * n].to_vec(),
                })
                .collect())
        }
        other => Err(ToolkitError::Internal(format!(
            "unexpected model output shape {other:?}"
        ))),
    }
}

/// Loads the model described by `files` for the given head.
pub fn load(
    files: &ModelFiles,
    config: &ModelConfig,
    head: HeadKind,
    device: &Device,
) -> Result<Box<dyn TextModel>, ToolkitError> {
    let vb = loader::var_builder(files, DType::F32, device)?;
    if device.is_cpu() {
        return match &config.arch {
            ArchConfig::Bert(c) => Ok(Box::new(kernel_encoder::KernelEncoder::from_bert(
                vb, c, config, head,
            )?)),
            ArchConfig::DistilBert(c) => Ok(Box::new(
                kernel_encoder::KernelEncoder::from_distilbert(vb, c, config, head)?,
            )),
            ArchConfig::DebertaV2(c) => {
                Ok(Box::new(deberta::DebertaV2::load(vb, c, config, head)?))
            }
        };
    }
    load_candle(files, config, head, device)
}

/// Loads the candle implementation (the GPU path, and the reference the CPU kernels are tested
/// against).
pub fn load_candle(
    files: &ModelFiles,
    config: &ModelConfig,
    head: HeadKind,
    device: &Device,
) -> Result<Box<dyn TextModel>, ToolkitError> {
    let vb = loader::var_builder(files, DType::F32, device)?;
    match &config.arch {
        ArchConfig::Bert(c) => Ok(Box::new(bert::BertModel::load(vb, c, config, head)?)),
        ArchConfig::DistilBert(c) => Ok(Box::new(distilbert::DistilBertModel::load(
            vb, c, config, head,
        )?)),
        ArchConfig::DebertaV2(c) => Ok(Box::new(deberta::DebertaV2::load(vb, c, config, head)?)),
    }
}
