//! `config.json`: the fields every model shares, and the architecture dispatched by `model_type`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::ToolkitError;

/// An activation function named in `config.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Exact GELU (`erf`), transformers' `"gelu"`.
    Gelu,
    /// Tanh approximation of GELU.
    #[serde(alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluNew,
    /// ReLU.
    Relu,
    /// `x · sigmoid(1.702 x)` (CLIP's `quick_gelu`).
    QuickGelu,
}

fn default_gelu() -> Activation {
    Activation::Gelu
}
fn default_ln_eps() -> f64 {
    1e-12
}
fn default_absolute() -> String {
    "absolute".into()
}
fn default_type_vocab() -> usize {
    2
}

/// BERT, RoBERTa, XLM-RoBERTa and CamemBERT share this configuration (`BertConfig`,
/// `RobertaConfig`, `XLMRobertaConfig`).
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden size.
    pub hidden_size: usize,
    /// Number of layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads.
    pub num_attention_heads: usize,
    /// Feed-forward size.
    pub intermediate_size: usize,
    /// Feed-forward activation.
    #[serde(default = "default_gelu")]
    pub hidden_act: Activation,
    /// Size of the position embedding table.
    pub max_position_embeddings: usize,
    /// Number of segment types.
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    /// Layer-norm epsilon.
    #[serde(default = "default_ln_eps")]
    pub layer_norm_eps: f64,
    /// Only `absolute` is supported.
    #[serde(default = "default_absolute")]
    pub position_embedding_type: String,
}

/// `DistilBertConfig`.
#[derive(Debug, Clone, Deserialize)]
pub struct DistilBertConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden size.
    pub dim: usize,
    /// Number of layers.
    pub n_layers: usize,
    /// Number of attention heads.
    pub n_heads: usize,
    /// Feed-forward size.
    pub hidden_dim: usize,
    /// Feed-forward activation.
    #[serde(default = "default_gelu")]
    pub activation: Activation,
    /// Size of the position embedding table.
    pub max_position_embeddings: usize,
}

/// The architecture, by `model_type`.
#[derive(Debug, Clone)]
pub enum ArchConfig {
    /// `bert`, `roberta`, `xlm-roberta`, `camembert`.
    Bert(BertConfig),
    /// `distilbert`.
    DistilBert(DistilBertConfig),
    /// `deberta-v2` (DeBERTa-v2 and -v3), candle-transformers' configuration.
    DebertaV2(Box<candle_transformers::models::debertav2::Config>),
}

impl ArchConfig {
    /// The width of the hidden states.
    pub fn hidden_size(&self) -> usize {
        match self {
            ArchConfig::Bert(c) => c.hidden_size,
            ArchConfig::DistilBert(c) => c.dim,
            ArchConfig::DebertaV2(c) => c.hidden_size,
        }
    }
}

#[derive(Debug, Deserialize)]
struct Common {
    model_type: Option<String>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    id2label: BTreeMap<String, String>,
    problem_type: Option<String>,
    num_labels: Option<usize>,
    pad_token_id: Option<u32>,
}

/// Reads `config.json` as JSON, without interpreting it.
pub fn read_raw(path: &Path) -> Result<serde_json::Value, ToolkitError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ToolkitError::model_load_with(format!("cannot read {}", path.display()), e))?;
    serde_json::from_str(&text)
        .map_err(|e| ToolkitError::model_load(format!("{}: not valid JSON: {e}", path.display())))
}

/// The labels by class index: `id2label`, `LABEL_i` where missing, as many as `num_labels` or
/// the highest index says.
fn label_list(num_labels: Option<usize>, id2label: &BTreeMap<String, String>) -> Vec<String> {
    let n = num_labels.unwrap_or(0).max(
        id2label
            .keys()
            .filter_map(|k| k.parse::<usize>().ok())
            .map(|k| k + 1)
            .max()
            .unwrap_or(0),
    );
    (0..n)
        .map(|i| {
            id2label
                .get(&i.to_string())
                .cloned()
                .unwrap_or(format!("LABEL_{i}"))
        })
        .collect()
}

/// The labels of a parsed `config.json` of any architecture (see [`ModelConfig::labels`]) and
/// its `problem_type`.
pub fn labels(config: &serde_json::Value) -> Result<(Vec<String>, Option<String>), String> {
    let common: Common =
        serde_json::from_value(config.clone()).map_err(|e| format!("invalid config: {e}"))?;
    Ok((
        label_list(common.num_labels, &common.id2label),
        common.problem_type,
    ))
}

/// `architectures` of a parsed `config.json` (empty when absent).
pub fn architectures(config: &serde_json::Value) -> Vec<String> {
    config
        .get("architectures")
        .and_then(serde_json::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// What we read from `config.json`.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// `model_type`.
    pub model_type: String,
    /// `architectures` (used to infer the task).
    pub architectures: Vec<String>,
    /// Labels by class index (`id2label`), `LABEL_i` where missing.
    pub labels: Vec<String>,
    /// `problem_type`, e.g. `multi_label_classification`.
    pub problem_type: Option<String>,
    /// The padding token id.
    pub pad_token_id: u32,
    /// The architecture's own fields.
    pub arch: ArchConfig,
}

impl ModelConfig {
    /// Whether position ids start after the padding index (RoBERTa family).
    pub fn roberta_positions(&self) -> bool {
        matches!(
            self.model_type.as_str(),
            "roberta" | "xlm-roberta" | "camembert"
        )
    }

    /// Reads and parses `config.json`.
    pub fn from_file(path: &Path) -> Result<Self, ToolkitError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ToolkitError::model_load_with(format!("cannot read {}", path.display()), e)
        })?;
        Self::from_json(&text)
            .map_err(|e| ToolkitError::model_load(format!("{}: {e}", path.display())))
    }

    /// Parses the text of `config.json`.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let common: Common =
            serde_json::from_value(value.clone()).map_err(|e| format!("invalid config: {e}"))?;
        let model_type = common.model_type.ok_or("`model_type` is missing")?;
        let family = super::Family::from_model_type(&model_type)?;
        let arch = match family {
            super::Family::Bert
            | super::Family::Roberta
            | super::Family::XlmRoberta
            | super::Family::Camembert => {
                let c: BertConfig = serde_json::from_value(value)
                    .map_err(|e| format!("invalid {model_type} config: {e}"))?;
                if c.position_embedding_type != "absolute" {
                    return Err(format!(
                        "position_embedding_type {:?} is not supported (only \"absolute\")",
                        c.position_embedding_type
                    ));
                }
                if c.num_attention_heads == 0
                    || !c.hidden_size.is_multiple_of(c.num_attention_heads)
                {
                    return Err("hidden_size must be a multiple of num_attention_heads".into());
                }
                ArchConfig::Bert(c)
            }
            super::Family::DistilBert => {
                let c: DistilBertConfig = serde_json::from_value(value)
                    .map_err(|e| format!("invalid distilbert config: {e}"))?;
                if c.n_heads == 0 || !c.dim.is_multiple_of(c.n_heads) {
                    return Err("dim must be a multiple of n_heads".into());
                }
                ArchConfig::DistilBert(c)
            }
            super::Family::DebertaV2 => {
                let c: candle_transformers::models::debertav2::Config =
                    serde_json::from_value(value)
                        .map_err(|e| format!("invalid deberta-v2 config: {e}"))?;
                if c.num_attention_heads == 0
                    || !c.hidden_size.is_multiple_of(c.num_attention_heads)
                {
                    return Err("hidden_size must be a multiple of num_attention_heads".into());
                }
                ArchConfig::DebertaV2(Box::new(c))
            }
            other => {
                return Err(format!(
                    "model_type {:?} is not a text encoder; encoders: {}",
                    other.model_type(),
                    super::Family::ALL
                        .into_iter()
                        .filter(|f| f.is_encoder())
                        .map(super::Family::model_type)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        };
        let labels = label_list(common.num_labels, &common.id2label);
        let default_pad = if model_type == "bert" || model_type == "distilbert" {
            0
        } else {
            1
        };
        Ok(ModelConfig {
            pad_token_id: common.pad_token_id.unwrap_or(default_pad),
            model_type,
            architectures: common.architectures,
            labels,
            problem_type: common.problem_type,
            arch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bert_with_labels() {
        let c = ModelConfig::from_json(
            r#"{"model_type":"bert","architectures":["BertForSequenceClassification"],
                "vocab_size":10,"hidden_size":4,"num_hidden_layers":1,"num_attention_heads":2,
                "intermediate_size":8,"max_position_embeddings":16,
                "id2label":{"0":"neg","1":"pos"}}"#,
        )
        .unwrap();
        assert_eq!(c.labels, ["neg", "pos"]);
        assert!(matches!(c.arch, ArchConfig::Bert(ref b) if b.hidden_act == Activation::Gelu));
        assert!(!c.roberta_positions());
    }

    #[test]
    fn clear_errors() {
        let e = ModelConfig::from_json(r#"{"model_type":"gpt2"}"#).unwrap_err();
        assert!(e.contains("gpt2") && e.contains("distilbert"), "{e}");
        assert!(ModelConfig::from_json("{").unwrap_err().contains("JSON"));
        assert!(ModelConfig::from_json(r#"{"model_type":"bert"}"#)
            .unwrap_err()
            .contains("vocab_size"));
    }
}
