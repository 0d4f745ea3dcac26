//! ViT image classification (`ViTForImageClassification`) on candle-transformers' ViT: patch
//! embeddings with a CLS token, pre-norm encoder layers, the final layer norm, and the classifier
//! on the CLS token.

use candle_core::{DType, Device, Tensor};
use serde_json::Value;

use super::loader::{var_builder, ModelFiles};
use crate::error::ToolkitError;
use crate::vision::PixelValues;

/// A loaded image classifier.
pub struct VitClassifier {
    model: candle_transformers::models::vit::Model,
    image_size: usize,
    labels: usize,
    device: Device,
}

impl std::fmt::Debug for VitClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VitClassifier")
            .field("image_size", &self.image_size)
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

/// transformers' `ViTConfig` defaults for the fields a checkpoint may leave out.
pub(crate) fn with_defaults(config: &Value) -> Value {
    let mut c = serde_json::json!({
        "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
        "intermediate_size": 3072, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
        "image_size": 224, "patch_size": 16, "num_channels": 3, "qkv_bias": true
    });
    if let (Some(out), Some(given)) = (c.as_object_mut(), config.as_object()) {
        for (k, v) in given {
            if out.contains_key(k) && !v.is_null() {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    c
}

impl VitClassifier {
    /// Loads the model of `config` (`config.json`) with `labels` classes.
    pub fn load(
        files: &ModelFiles,
        config: &Value,
        labels: usize,
        device: &Device,
    ) -> Result<Self, ToolkitError> {
        let cfg: candle_transformers::models::vit::Config =
            serde_json::from_value(with_defaults(config)).map_err(|e| {
                ToolkitError::model_load(format!("invalid vit config in config.json: {e}"))
            })?;
        if cfg.num_attention_heads == 0 || !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads)
        {
            return Err(ToolkitError::model_load(
                "config.json: hidden_size must be a multiple of num_attention_heads",
            ));
        }
        if cfg.patch_size == 0 || !cfg.image_size.is_multiple_of(cfg.patch_size) {
            return Err(ToolkitError::model_load(
                "config.json: image_size must be a multiple of patch_size",
            ));
        }
        if labels == 0 {
            return Err(ToolkitError::model_load(
                "config.json has no labels (id2label or num_labels): not an image classifier",
            ));
        }
        let vb = var_builder(files, DType::F32, device)?;
        let image_size = cfg.image_size;
        let model = candle_transformers::models::vit::Model::new(&cfg, labels, vb)?;
        Ok(Self {
            model,
            image_size,
            labels,
            device: device.clone(),
        })
    }
}

impl super::image_classifier::ImageClassifier for VitClassifier {
    fn input_size(&self) -> Option<(usize, usize)> {
        Some((self.image_size, self.image_size))
    }

    fn logits(&self, images: &[PixelValues]) -> Result<Vec<Vec<f32>>, ToolkitError> {
        let s = self.image_size;
        if let Some(p) = images.iter().find(|p| (p.height, p.width) != (s, s)) {
            return Err(ToolkitError::Internal(format!(
                "a preprocessed image is {}x{} but the model takes {s}x{s}",
                p.width, p.height
            )));
        }
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let mut data = Vec::with_capacity(images.len() * 3 * s * s);
        for p in images {
            data.extend_from_slice(&p.data);
        }
        let x = Tensor::from_vec(data, (images.len(), 3, s, s), &self.device)?;
        let out = self.model.forward(&x)?.to_device(&Device::Cpu)?;
        let flat: Vec<f32> = out.flatten_all()?.to_vec1()?;
        Ok(flat.chunks(self.labels).map(<[f32]>::to_vec).collect())
    }
}
