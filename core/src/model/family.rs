//! The model families this build runs: one typed list, keyed by `config.json`'s `model_type`,
//! that every load path reads (the encoder configuration, the task check, the device choice and
//! the construction of generative models).

use std::sync::Arc;

use serde_json::Value;

use super::lm::{LanguageModel, OnTeam};
use super::ModelFiles;
use crate::error::ToolkitError;

/// A model family, by `model_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// `bert`.
    Bert,
    /// `roberta`.
    Roberta,
    /// `xlm-roberta`.
    XlmRoberta,
    /// `camembert` (RoBERTa's network).
    Camembert,
    /// `distilbert`.
    DistilBert,
    /// `deberta-v2` (DeBERTa-v2 and -v3).
    DebertaV2,
    /// `gpt2`.
    Gpt2,
    /// `llama`.
    Llama,
    /// `mistral`.
    Mistral,
    /// `qwen2`.
    Qwen2,
    /// `phi3`.
    Phi3,
    /// `gemma`.
    Gemma,
    /// `t5`.
    T5,
    /// `mt5`.
    Mt5,
    /// `bart`.
    Bart,
    /// `marian`.
    Marian,
    /// `vit` (ViT image classifiers).
    Vit,
    /// `deit` (DeiT image classifiers, with or without the distillation head).
    Deit,
    /// `dinov2` (DINOv2 image classifiers).
    Dinov2,
    /// `beit` (BEiT image classifiers).
    Beit,
    /// `swin` (Swin Transformer image classifiers).
    Swin,
    /// `segformer` (semantic segmentation).
    Segformer,
    /// `maskformer` (semantic, instance and panoptic segmentation).
    MaskFormer,
    /// `yolos` (object detection).
    Yolos,
    /// `detr` (object detection, on transformers' ResNet backbone).
    Detr,
    /// `clip` (zero-shot image classification).
    Clip,
    /// `siglip` (zero-shot image classification, sigmoid scores).
    Siglip,
    /// `convnext` (image classification).
    ConvNext,
    /// `convnextv2` (image classification).
    ConvNextV2,
    /// `resnet` (transformers' ResNet, image classification).
    ResNet,
    /// `mobilenet_v1` (image classification).
    MobileNetV1,
    /// `mobilenet_v2` (image classification).
    MobileNetV2,
    /// `tapas` (table question answering).
    Tapas,
}

/// How a family's network is shaped, which decides what it can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// An encoder (hidden states or a classification head).
    Encoder,
    /// A decoder-only language model.
    Decoder,
    /// An encoder-decoder language model.
    EncoderDecoder,
    /// An image model.
    Vision,
    /// A table question-answering model.
    Table,
}

impl Shape {
    /// The shape in words, for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Shape::Encoder => "a text encoder",
            Shape::Decoder => "a decoder-only language model",
            Shape::EncoderDecoder => "an encoder-decoder language model",
            Shape::Vision => "an image model",
            Shape::Table => "a table question-answering model",
        }
    }

    /// The tasks a model of this shape serves, for error messages.
    pub fn serves(self) -> &'static str {
        match self {
            Shape::Encoder => "feature-extraction, text-classification, zero-shot-classification, token-classification, question-answering or fill-mask",
            Shape::Decoder => "text-generation",
            Shape::EncoderDecoder => "text2text-generation, summarization or translation",
            Shape::Vision => "image-classification, image-segmentation, object-detection or zero-shot-image-classification, as the model's architecture allows",
            Shape::Table => "table-question-answering",
        }
    }
}

impl Family {
    /// Every family, in the order error messages list them.
    pub const ALL: [Family; 33] = [
        Family::Bert,
        Family::Roberta,
        Family::XlmRoberta,
        Family::Camembert,
        Family::DistilBert,
        Family::DebertaV2,
        Family::Gpt2,
        Family::Llama,
        Family::Mistral,
        Family::Qwen2,
        Family::Phi3,
        Family::Gemma,
        Family::T5,
        Family::Mt5,
        Family::Bart,
        Family::Marian,
        Family::Vit,
        Family::Deit,
        Family::Dinov2,
        Family::Beit,
        Family::Swin,
        Family::Segformer,
        Family::MaskFormer,
        Family::Yolos,
        Family::Detr,
        Family::Clip,
        Family::Siglip,
        Family::ConvNext,
        Family::ConvNextV2,
        Family::ResNet,
        Family::MobileNetV1,
        Family::MobileNetV2,
        Family::Tapas,
    ];

    /// `config.json`'s `model_type`.
    pub fn model_type(self) -> &'static str {
        match self {
            Family::Bert => "bert",
            Family::Roberta => "roberta",
            Family::XlmRoberta => "xlm-roberta",
            Family::Camembert => "camembert",
            Family::DistilBert => "distilbert",
            Family::DebertaV2 => "deberta-v2",
            Family::Gpt2 => "gpt2",
            Family::Llama => "llama",
            Family::Mistral => "mistral",
            Family::Qwen2 => "qwen2",
            Family::Phi3 => "phi3",
            Family::Gemma => "gemma",
            Family::T5 => "t5",
            Family::Mt5 => "mt5",
            Family::Bart => "bart",
            Family::Marian => "marian",
            Family::Vit => "vit",
            Family::Deit => "deit",
            Family::Dinov2 => "dinov2",
            Family::Beit => "beit",
            Family::Swin => "swin",
            Family::Segformer => "segformer",
            Family::MaskFormer => "maskformer",
            Family::Yolos => "yolos",
            Family::Detr => "detr",
            Family::Clip => "clip",
            Family::Siglip => "siglip",
            Family::ConvNext => "convnext",
            Family::ConvNextV2 => "convnextv2",
            Family::ResNet => "resnet",
            Family::MobileNetV1 => "mobilenet_v1",
            Family::MobileNetV2 => "mobilenet_v2",
            Family::Tapas => "tapas",
        }
    }

    /// The family of a `model_type`.
    pub fn from_model_type(model_type: &str) -> Result<Family, String> {
        Family::ALL
            .into_iter()
            .find(|f| f.model_type() == model_type)
            .ok_or_else(|| {
                format!(
                    "model_type {model_type:?} is not supported yet; supported: {}",
                    Family::supported_list()
                )
            })
    }

    /// The family of a parsed `config.json`.
    pub fn of_config(config: &Value) -> Result<Family, String> {
        match config.get("model_type").and_then(Value::as_str) {
            Some(t) => Family::from_model_type(t),
            None => Err("`model_type` is missing".into()),
        }
    }

    /// The supported `model_type`s, comma separated.
    pub fn supported_list() -> String {
        Family::ALL.map(Family::model_type).join(", ")
    }

    /// The network's shape.
    pub fn shape(self) -> Shape {
        match self {
            Family::Bert
            | Family::Roberta
            | Family::XlmRoberta
            | Family::Camembert
            | Family::DistilBert
            | Family::DebertaV2 => Shape::Encoder,
            Family::Gpt2
            | Family::Llama
            | Family::Mistral
            | Family::Qwen2
            | Family::Phi3
            | Family::Gemma => Shape::Decoder,
            Family::T5 | Family::Mt5 | Family::Bart | Family::Marian => Shape::EncoderDecoder,
            Family::Vit
            | Family::Deit
            | Family::Dinov2
            | Family::Beit
            | Family::Swin
            | Family::Segformer
            | Family::MaskFormer
            | Family::Yolos
            | Family::Detr
            | Family::Clip
            | Family::Siglip
            | Family::ConvNext
            | Family::ConvNextV2
            | Family::ResNet
            | Family::MobileNetV1
            | Family::MobileNetV2 => Shape::Vision,
            Family::Tapas => Shape::Table,
        }
    }

    /// The task an image model's network serves (its head decides it); `None` for text models.
    pub fn vision_task(self) -> Option<crate::task::Task> {
        use crate::task::Task;
        match self {
            Family::Vit
            | Family::Deit
            | Family::Dinov2
            | Family::Beit
            | Family::Swin
            | Family::ConvNext
            | Family::ConvNextV2
            | Family::ResNet
            | Family::MobileNetV1
            | Family::MobileNetV2 => Some(Task::ImageClassification),
            Family::Segformer | Family::MaskFormer => Some(Task::ImageSegmentation),
            Family::Yolos | Family::Detr => Some(Task::ObjectDetection),
            Family::Clip | Family::Siglip => Some(Task::ZeroShotImageClassification),
            _ => None,
        }
    }

    /// What a model of this family can serve, for error messages.
    pub fn serves(self) -> &'static str {
        match self.vision_task() {
            Some(t) => t.id(),
            None => self.shape().serves(),
        }
    }

    /// Whether the family is an encoder (not a generator).
    pub fn is_encoder(self) -> bool {
        self.shape() == Shape::Encoder
    }

    /// Whether the family's implementations run on a CUDA device. Encoders, image models and
    /// TAPAS have candle's implementations; the generators run on our CPU kernels only.
    pub fn runs_on_cuda(self) -> bool {
        matches!(self.shape(), Shape::Encoder | Shape::Vision | Shape::Table)
    }

    /// Loads a generative family's model (float32, on the CPU kernels) with a team of threads of
    /// its own.
    pub fn load_language_model(
        self,
        files: &ModelFiles,
        config: &Value,
    ) -> Result<Arc<dyn LanguageModel>, ToolkitError> {
        let vb =
            super::loader::var_builder(files, candle_core::DType::F32, &candle_core::Device::Cpu)?;
        match self {
            Family::T5 | Family::Mt5 => {
                Ok(Arc::new(OnTeam::new(super::t5::T5::load(config, &vb)?)?))
            }
            Family::Bart | Family::Marian => Ok(Arc::new(OnTeam::new(super::bart::Bart::load(
                config, &vb,
            )?)?)),
            Family::Gpt2
            | Family::Llama
            | Family::Mistral
            | Family::Qwen2
            | Family::Phi3
            | Family::Gemma => Ok(Arc::new(OnTeam::new(super::causal::CausalLm::load(
                config, &vb,
            )?)?)),
            other => Err(ToolkitError::Config(format!(
                "{} is {}, not a language model",
                other.model_type(),
                other.shape().describe()
            ))),
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.model_type())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_type_maps_back_to_its_family() {
        for f in Family::ALL {
            assert_eq!(Family::from_model_type(f.model_type()), Ok(f));
        }
        let e = Family::from_model_type("gpt_neox").unwrap_err();
        assert!(
            e.contains("not supported yet") && e.contains("marian"),
            "{e}"
        );
        assert_eq!(
            Family::of_config(&serde_json::json!({})).unwrap_err(),
            "`model_type` is missing"
        );
    }
}
