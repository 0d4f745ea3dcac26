//! TAPAS for table question answering, as transformers' `TapasForQuestionAnswering`
//! (`models/tapas/modeling_tapas.py`, 4.51) runs it without labels: BERT's encoder over word,
//! position and seven token type embeddings (summed), positions restarting in every cell when
//! `reset_position_index_per_cell`; a cell-selection head whose token logits are averaged per
//! cell and kept only in the column the column head picks (`select_one_column`, as
//! `_single_column_cell_selection_loss` rewrites the logits at inference, -10000 elsewhere);
//! and an aggregation head on the pooled `[CLS]` state.
//!
//! Cells are indexed as transformers' `ProductIndexMap` does: row ids capped at
//! `max_num_rows - 1` and column ids at `max_num_columns - 1`, so rows past the cap share one
//! cell id per column.

use std::collections::HashMap;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{embedding, layer_norm, linear, Embedding, LayerNorm, Linear, VarBuilder};
use serde::Deserialize;

use super::config::Activation;
use super::layers::{first_token, EncoderLayer, LayerDims};
use crate::error::ToolkitError;

/// The number of token type id channels: segment, column, row, previous answer, column rank,
/// inverse column rank, numeric relation (the tokenizer writes them, the model embeds them).
pub const CHANNELS: usize = 7;

const CLOSE_ENOUGH_TO_LOG_ZERO: f32 = -10000.0;
const EPSILON_ZERO_DIVISION: f32 = 1e-10;

fn default_act() -> Activation {
    Activation::Gelu
}
fn default_eps() -> f64 {
    1e-12
}
fn yes() -> bool {
    true
}
fn one() -> f64 {
    1.0
}
fn rows() -> usize {
    64
}
fn columns() -> usize {
    32
}

/// `TapasConfig`: what inference reads.
#[derive(Debug, Clone, Deserialize)]
pub struct TapasConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden size.
    pub hidden_size: usize,
    /// Layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Feed-forward size.
    pub intermediate_size: usize,
    /// Activation.
    #[serde(default = "default_act")]
    pub hidden_act: Activation,
    /// Position embeddings.
    pub max_position_embeddings: usize,
    /// The seven token type vocabularies.
    pub type_vocab_sizes: Vec<usize>,
    /// Layer norm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Positions restart in every cell.
    #[serde(default = "yes")]
    pub reset_position_index_per_cell: bool,
    /// Row ids are capped below this in the cell index.
    #[serde(default = "rows")]
    pub max_num_rows: usize,
    /// Column ids are capped below this in the cell index.
    #[serde(default = "columns")]
    pub max_num_columns: usize,
    /// The cell-selection logits are divided by it.
    #[serde(default = "one")]
    pub temperature: f64,
    /// Cells are selected from one column.
    #[serde(default = "yes")]
    pub select_one_column: bool,
    /// The column head may pick no column.
    #[serde(default)]
    pub allow_empty_column_selection: bool,
    /// Aggregation operators (0: no aggregation head).
    #[serde(default)]
    pub num_aggregation_labels: usize,
    /// Their names by index.
    #[serde(default)]
    pub aggregation_labels: Option<HashMap<String, String>>,
    /// The operator that means "no aggregation".
    #[serde(default)]
    pub no_aggregation_label_index: Option<usize>,
}

/// One sequence for the model: ids, token types and attention mask, all of one length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapasInput {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Seven token type ids per token.
    pub token_types: Vec<[u32; CHANNELS]>,
    /// 1 for tokens, 0 for padding.
    pub attention: Vec<u32>,
}

/// What the model gives for one sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct TapasOutput {
    /// Cell-selection logit of every token.
    pub logits: Vec<f32>,
    /// Aggregation logits, when the model has the head.
    pub aggregation: Option<Vec<f32>>,
}

/// The model.
pub struct Tapas {
    word: Embedding,
    position: Embedding,
    token_types: Vec<Embedding>,
    norm: LayerNorm,
    layers: Vec<EncoderLayer>,
    pooler: Linear,
    output_weights: Vec<f32>,
    output_bias: f32,
    column_weights: Vec<f32>,
    column_bias: f32,
    aggregation: Option<Linear>,
    config: TapasConfig,
    device: Device,
}

fn missing(what: &str, e: candle_core::Error) -> ToolkitError {
    ToolkitError::model_load_with(format!("the weights do not match the config ({what})"), e)
}

impl Tapas {
    /// Reads `config.json`'s TAPAS fields.
    pub fn config(raw: &serde_json::Value) -> Result<TapasConfig, ToolkitError> {
        let c: TapasConfig = serde_json::from_value(raw.clone())
            .map_err(|e| ToolkitError::model_load(format!("config.json: {e}")))?;
        if c.type_vocab_sizes.len() != CHANNELS {
            return Err(ToolkitError::model_load(format!(
                "config.json: type_vocab_sizes has {} entries; TAPAS has {CHANNELS}",
                c.type_vocab_sizes.len()
            )));
        }
        if !c.select_one_column {
            // transformers 4.51 fails every inference on such a model (its column logits are
            // None where `_single_column_cell_selection_loss` needs them)
            return Err(ToolkitError::model_load(
                "config.json: select_one_column false is not supported (transformers' TapasForQuestionAnswering cannot run it either)",
            ));
        }
        if c.num_attention_heads == 0
            || !c.hidden_size.is_multiple_of(c.num_attention_heads)
            || c.max_num_rows == 0
            || c.max_num_columns == 0
        {
            return Err(ToolkitError::model_load(
                "config.json: hidden_size, num_attention_heads, max_num_rows or max_num_columns is invalid",
            ));
        }
        Ok(c)
    }

    /// Loads the model of a model directory's files (`config.json` already parsed) on `device`.
    pub fn from_files(
        files: &super::ModelFiles,
        raw_config: &serde_json::Value,
        device: &Device,
    ) -> Result<Self, ToolkitError> {
        let config = Self::config(raw_config)?;
        let vb = super::loader::var_builder(files, DType::F32, device)?;
        Self::load(vb, config)
    }

    /// Builds the model from its weights (`tapas.` prefix, heads at the root).
    pub fn load(vb: VarBuilder, config: TapasConfig) -> Result<Self, ToolkitError> {
        let device = vb.device().clone();
        let h = config.hidden_size;
        let enc = super::encoder_root(&vb, &["tapas"])?;
        let emb = enc.pp("embeddings");
        let word = embedding(config.vocab_size, h, emb.pp("word_embeddings"))
            .map_err(|e| missing("embeddings", e))?;
        let position = embedding(
            config.max_position_embeddings,
            h,
            emb.pp("position_embeddings"),
        )
        .map_err(|e| missing("position embeddings", e))?;
        let token_types = config
            .type_vocab_sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| embedding(n, h, emb.pp(format!("token_type_embeddings_{i}"))))
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(|e| missing("token type embeddings", e))?;
        let norm = layer_norm(h, config.layer_norm_eps, emb.pp("LayerNorm"))
            .map_err(|e| missing("embeddings.LayerNorm", e))?;
        let dims = LayerDims {
            hidden: h,
            heads: config.num_attention_heads,
            intermediate: config.intermediate_size,
            eps: config.layer_norm_eps,
            act: config.hidden_act,
        };
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                EncoderLayer::load(
                    enc.pp(format!("encoder.layer.{i}")),
                    &super::bert::LAYER_NAMES,
                    dims,
                )
            })
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(|e| missing("encoder layers", e))?;
        let pooler = linear(h, h, enc.pp("pooler.dense")).map_err(|e| missing("pooler", e))?;
        let vector = |name: &str| -> Result<Vec<f32>, ToolkitError> {
            vb.get(h, name)
                .and_then(|t| t.to_dtype(DType::F32)?.to_device(&Device::Cpu)?.to_vec1())
                .map_err(|e| missing(name, e))
        };
        let scalar = |name: &str| -> Result<f32, ToolkitError> {
            vb.get((), name)
                .and_then(|t| t.to_dtype(DType::F32)?.to_device(&Device::Cpu)?.to_scalar())
                .map_err(|e| missing(name, e))
        };
        let aggregation = if config.num_aggregation_labels > 0 {
            Some(
                linear(
                    h,
                    config.num_aggregation_labels,
                    vb.pp("aggregation_classifier"),
                )
                .map_err(|e| missing("aggregation_classifier", e))?,
            )
        } else {
            None
        };
        Ok(Self {
            word,
            position,
            token_types,
            norm,
            layers,
            pooler,
            output_weights: vector("output_weights")?,
            output_bias: scalar("output_bias")?,
            column_weights: vector("column_output_weights")?,
            column_bias: scalar("column_output_bias")?,
            aggregation,
            config,
            device,
        })
    }

    /// The configuration.
    pub fn tapas_config(&self) -> &TapasConfig {
        &self.config
    }

    /// Checks that every id fits its embedding table (transformers fails with an index error):
    /// a 4xx naming what is too large.
    pub fn check(&self, input: &TapasInput) -> Result<(), ToolkitError> {
        if let Some(&id) = input
            .ids
            .iter()
            .find(|&&i| i as usize >= self.config.vocab_size)
        {
            return Err(ToolkitError::Validation(format!(
                "token id {id} is outside this model's vocabulary of {} (the tokenizer's [EMPTY] token, for a cell of only punctuation or \"n/a\", \"?\", \"nan\", when vocab.txt lacks it): fill those cells or leave them \"\"",
                self.config.vocab_size
            )));
        }
        const NAMES: [&str; CHANNELS] = [
            "segment",
            "column",
            "row",
            "previous answer",
            "column rank",
            "inverse column rank",
            "numeric relation",
        ];
        for t in &input.token_types {
            for (c, (&v, &n)) in t.iter().zip(&self.config.type_vocab_sizes).enumerate() {
                if v as usize >= n {
                    return Err(ToolkitError::Validation(format!(
                        "the table is too large for this model: its {} id {v} is beyond the {n} the model has (fewer rows or columns, or fewer distinct numbers in a column)",
                        NAMES[c]
                    )));
                }
            }
        }
        if !self.config.reset_position_index_per_cell
            && input.ids.len() > self.config.max_position_embeddings
        {
            return Err(ToolkitError::InputTooLong(format!(
                "the question and table take {} tokens; this model has {} positions (pass \"truncation\": true)",
                input.ids.len(),
                self.config.max_position_embeddings
            )));
        }
        Ok(())
    }

    /// transformers' positions: absolute, or (with `reset_position_index_per_cell`) counted
    /// from the first token of each (column, row) segment, capped at the last position.
    fn positions(&self, input: &TapasInput) -> Vec<u32> {
        let n = input.ids.len();
        if !self.config.reset_position_index_per_cell {
            return (0..n as u32).collect();
        }
        let mut first: HashMap<(u32, u32), usize> = HashMap::new();
        for (j, t) in input.token_types.iter().enumerate() {
            first.entry((t[1], t[2])).or_insert(j);
        }
        let cap = self.config.max_position_embeddings.saturating_sub(1);
        input
            .token_types
            .iter()
            .enumerate()
            .map(|(j, t)| (j - first[&(t[1], t[2])]).min(cap) as u32)
            .collect()
    }

    /// Runs a batch of sequences of one length.
    pub fn forward(&self, batch: &[TapasInput]) -> Result<Vec<TapasOutput>, ToolkitError> {
        let b = batch.len();
        let Some(l) = batch.first().map(|x| x.ids.len()) else {
            return Ok(Vec::new());
        };
        if batch
            .iter()
            .any(|x| x.ids.len() != l || x.token_types.len() != l || x.attention.len() != l)
        {
            return Err(ToolkitError::Internal(
                "TAPAS inputs of unequal lengths".into(),
            ));
        }
        for x in batch {
            self.check(x)?;
        }
        let dev = &self.device;
        let ids: Vec<u32> = batch.iter().flat_map(|x| x.ids.iter().copied()).collect();
        let pos: Vec<u32> = batch.iter().flat_map(|x| self.positions(x)).collect();
        let mask: Vec<u32> = batch
            .iter()
            .flat_map(|x| x.attention.iter().copied())
            .collect();
        let mut x = self.word.forward(&Tensor::from_vec(ids, (b, l), dev)?)?;
        x = (x + self
            .position
            .forward(&Tensor::from_vec(pos, (b, l), dev)?)?)?;
        for (c, table) in self.token_types.iter().enumerate() {
            let t: Vec<u32> = batch
                .iter()
                .flat_map(|s| s.token_types.iter().map(move |t| t[c]))
                .collect();
            x = (x + table.forward(&Tensor::from_vec(t, (b, l), dev)?)?)?;
        }
        let mut x = self.norm.forward(&x)?;
        let bias = super::attention_bias(&Tensor::from_vec(mask, (b, l), dev)?, DType::F32)?;
        for layer in &self.layers {
            x = layer.forward(&x, &bias)?;
        }
        let pooled = self.pooler.forward(&first_token(&x)?)?.tanh()?;
        let aggregation: Option<Vec<Vec<f32>>> = match &self.aggregation {
            Some(head) => Some(
                head.forward(&pooled)?
                    .to_dtype(DType::F32)?
                    .to_device(&Device::Cpu)?
                    .to_vec2()?,
            ),
            None => None,
        };
        let hidden: Vec<f32> = x
            .to_dtype(DType::F32)?
            .to_device(&Device::Cpu)?
            .flatten_all()?
            .to_vec1()?;
        let h = self.config.hidden_size;
        Ok(batch
            .iter()
            .enumerate()
            .map(|(i, input)| TapasOutput {
                logits: self.cell_logits(input, &hidden[i * l * h..(i + 1) * l * h]),
                aggregation: aggregation.as_ref().and_then(|a| a.get(i).cloned()),
            })
            .collect())
    }

    /// `compute_token_logits`, `compute_column_logits` and `_single_column_cell_selection_loss`'s
    /// new logits, for one sequence (`hidden`: `[len × hidden]`).
    fn cell_logits(&self, input: &TapasInput, hidden: &[f32]) -> Vec<f32> {
        let h = self.config.hidden_size;
        let (max_rows, max_cols) = (self.config.max_num_rows, self.config.max_num_columns);
        let dot = |row: &[f32], w: &[f32]| row.iter().zip(w).map(|(a, b)| a * b).sum::<f32>();
        let temperature = self.config.temperature as f32;
        let cell_of = |t: &[u32; CHANNELS]| {
            let row = (t[2] as usize).min(max_rows - 1);
            let col = (t[1] as usize).min(max_cols - 1);
            row * max_cols + col
        };
        let cells = max_rows * max_cols;
        let (mut count, mut mask_sum) = (vec![0f32; cells], vec![0f32; cells]);
        let (mut token_sum, mut column_sum) = (vec![0f32; cells], vec![0f32; cells]);
        let mut cell_ids = Vec::with_capacity(input.ids.len());
        for (j, t) in input.token_types.iter().enumerate() {
            let row = &hidden[j * h..(j + 1) * h];
            let cell = cell_of(t);
            cell_ids.push(cell);
            count[cell] += 1.0;
            mask_sum[cell] += input.attention[j] as f32;
            token_sum[cell] += (dot(row, &self.output_weights) + self.output_bias) / temperature;
            column_sum[cell] += dot(row, &self.column_weights) + self.column_bias;
        }
        let mean = |sum: &[f32], c: usize| {
            if count[c] > 0.0 {
                sum[c] / count[c]
            } else {
                0.0
            }
        };
        // column logits: the mean over a column's existing cells of their mean token logit
        let mut column_logits = vec![0f32; max_cols];
        let mut cell_count = vec![0f32; max_cols];
        for c in 0..cells {
            let cell_mask = mean(&mask_sum, c);
            column_logits[c % max_cols] += mean(&column_sum, c) * cell_mask;
            cell_count[c % max_cols] += cell_mask;
        }
        for (col, logit) in column_logits.iter_mut().enumerate() {
            *logit /= cell_count[col] + EPSILON_ZERO_DIVISION;
            if cell_count[col] < 0.5 && col != 0 {
                *logit += CLOSE_ENOUGH_TO_LOG_ZERO;
            }
            if col == 0 && !self.config.allow_empty_column_selection {
                *logit += CLOSE_ENOUGH_TO_LOG_ZERO;
            }
        }
        // torch.argmax: the first maximum
        let mut selected = 0;
        for (col, &v) in column_logits.iter().enumerate() {
            if v > column_logits[selected] {
                selected = col;
            }
        }
        cell_ids
            .iter()
            .map(|&c| {
                let col = c % max_cols;
                let in_column = if col == selected && col != 0 {
                    1.0
                } else {
                    0.0
                };
                mean(&token_sum, c)
                    + CLOSE_ENOUGH_TO_LOG_ZERO * (1.0 - mean(&mask_sum, c) * in_column)
            })
            .collect()
    }
}
