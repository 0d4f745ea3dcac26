//! `image-classification` with transformers 4.51's `ImageClassificationPipeline` semantics: each
//! image decoded as Pillow does, preprocessed by the model's image processor, classified, and
//! answered as `[{"label", "score"}, ...]` best first (`top_k`, default 5, clipped to the labels;
//! `function_to_apply`, by default softmax, or sigmoid for multi-label and one-label models).
//! Images come as raw bodies (`image/png`, `image/jpeg`, ...) or in JSON as base64 or data URIs.

use serde_json::{json, Value};

use super::images::{self, Images};
use super::text_classification::scores;
use super::{Input, Pipeline, PipelineOutput, VisionParts};
use crate::context::Context;
use crate::error::ToolkitError;
use crate::model::image_classifier::{self, ImageClassifier};
use crate::task::Task;
use crate::types::image_classification::ImageClassificationParameters;
use crate::types::text_classification::ClassificationFunction;
use crate::vision::{self, ImageProcessor};

pub use super::images::MAX_IMAGES;

/// A loaded image classifier.
#[derive(Debug)]
pub struct ImageClassificationPipeline {
    processor: ImageProcessor,
    model: Box<dyn ImageClassifier>,
    labels: Vec<String>,
    default_function: ClassificationFunction,
    max_pixels: u64,
}

/// The registry's constructor.
pub(crate) fn build(parts: VisionParts<'_>) -> Result<Box<dyn Pipeline>, ToolkitError> {
    let (labels, problem_type) = crate::model::config::labels(parts.config)
        .map_err(|e| ToolkitError::model_load(format!("config.json: {e}")))?;
    let processor = ImageProcessor::load(&parts.files.dir)?;
    let model = image_classifier::load(
        parts.family,
        parts.files,
        parts.config,
        labels.len(),
        &parts.device,
    )?;
    // every image must reach a model of fixed input size at that size: a checkpoint whose
    // processor does not resize (or crop) to it is refused here, not on every request
    if let Some((h, w)) = model.input_size() {
        if processor.output_size() != Some((w, h)) {
            return Err(ToolkitError::model_load(format!(
                "preprocessor_config.json does not resize or crop images to the model's {w}x{h} (config.json image_size)"
            )));
        }
    }
    let default_function =
        if problem_type.as_deref() == Some("multi_label_classification") || labels.len() == 1 {
            ClassificationFunction::Sigmoid
        } else {
            ClassificationFunction::Softmax
        };
    Ok(Box::new(ImageClassificationPipeline {
        processor,
        model,
        labels,
        default_function,
        max_pixels: parts.opts.max_image_pixels,
    }))
}

impl ImageClassificationPipeline {
    /// Ranks the labels of one image's logits.
    fn rank(
        &self,
        logits: &[f32],
        k: usize,
        function: ClassificationFunction,
    ) -> Result<Value, ToolkitError> {
        let s = scores(logits, function);
        if s.iter().any(|x| !x.is_finite()) {
            return Err(ToolkitError::Internal(
                "the model produced non-finite scores".into(),
            ));
        }
        let mut ranked: Vec<(usize, f32)> = s.into_iter().enumerate().collect();
        // Python's sort(reverse=True) is stable: ties keep label order
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked.truncate(k);
        Ok(Value::Array(
            ranked
                .into_iter()
                .map(|(i, s)| json!({"label": self.labels[i], "score": f64::from(s)}))
                .collect(),
        ))
    }
}

impl Pipeline for ImageClassificationPipeline {
    fn task(&self) -> Task {
        Task::ImageClassification
    }

    fn run(&self, input: Input, ctx: Context) -> Result<PipelineOutput, ToolkitError> {
        let images: Images<ImageClassificationParameters> = Images::read(input, self.task())?;
        let params = &images.parameters;
        let function = ClassificationFunction::parse(params.function_to_apply.as_deref())?
            .unwrap_or(self.default_function);
        let k = params.top_k.unwrap_or(5).min(self.labels.len());
        let pixels = images.each(self.max_pixels, &ctx, |rgb| {
            self.processor.preprocess(&rgb, self.max_pixels)
        })?;
        let logits = self.model.logits(&pixels)?;
        let results = logits
            .iter()
            .map(|l| self.rank(l, k, function))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(images.answer(results))
    }

    fn warm_up_input(&self) -> Input {
        images::warm_up_png()
    }

    fn raw_media_types(&self) -> &'static [&'static str] {
        vision::IMAGE_MEDIA_TYPES
    }
}
