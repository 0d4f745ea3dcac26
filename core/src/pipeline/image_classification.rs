//! `image-classification` with transformers 4.51's `ImageClassificationPipeline` semantics: each
//! image decoded as Pillow does, preprocessed by the model's image processor, classified, and
//! answered as `[{"label", "score"}, ...]` best first (`top_k`, default 5, clipped to the labels;
//! `function_to_apply`, by default softmax, or sigmoid for multi-label and one-label models).
//! Images come as raw bodies (`image/png`, `image/jpeg`, ...) or in JSON as base64 or data URIs.

use serde_json::{json, Value};

use super::text_classification::scores;
use super::{Input, Pipeline, PipelineOutput, VisionParts};
use crate::context::Context;
use crate::error::ToolkitError;
use crate::model::vit::VitClassifier;
use crate::task::Task;
use crate::types::image_classification::ImageClassificationRequest;
use crate::types::text_classification::ClassificationFunction;
use crate::types::OneOrMany;
use crate::vision::{self, ImageProcessor};

/// The most images one JSON request may hold (each is decoded and preprocessed before the model
/// runs them together).
pub const MAX_IMAGES: usize = 64;

/// A loaded image classifier.
#[derive(Debug)]
pub struct ImageClassificationPipeline {
    processor: ImageProcessor,
    model: VitClassifier,
    labels: Vec<String>,
    default_function: ClassificationFunction,
    max_pixels: u64,
}

/// The registry's constructor.
pub(crate) fn build(parts: VisionParts<'_>) -> Result<Box<dyn Pipeline>, ToolkitError> {
    let (labels, problem_type) = crate::model::config::labels(parts.config)
        .map_err(|e| ToolkitError::model_load(format!("config.json: {e}")))?;
    let processor = ImageProcessor::load(&parts.files.dir)?;
    let model = VitClassifier::load(parts.files, parts.config, labels.len(), &parts.device)?;
    // every image must reach the model at its input size: a checkpoint whose processor does not
    // resize (or crop) to it is refused here, not on every request
    let side = model.image_size();
    if processor.output_size() != Some((side, side)) {
        return Err(ToolkitError::model_load(format!(
            "preprocessor_config.json does not resize or crop images to the model's {side}x{side} (config.json image_size)"
        )));
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
    /// Classifies decoded images; one answer list per image.
    fn classify(
        &self,
        images: &[&[u8]],
        top_k: Option<usize>,
        function: Option<ClassificationFunction>,
        ctx: &Context,
    ) -> Result<Vec<Value>, ToolkitError> {
        let mut pixels = Vec::with_capacity(images.len());
        for bytes in images {
            if ctx.is_gone() {
                return Err(crate::context::CallerGone::error());
            }
            let rgb = vision::decode_rgb(bytes, self.max_pixels)?;
            pixels.push(self.processor.preprocess(&rgb, self.max_pixels)?);
        }
        let logits = self.model.logits(&pixels)?;
        let function = function.unwrap_or(self.default_function);
        let k = top_k.unwrap_or(5).min(self.labels.len());
        logits
            .iter()
            .map(|l| {
                let s = scores(l, function);
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
            })
            .collect()
    }
}

impl Pipeline for ImageClassificationPipeline {
    fn task(&self) -> Task {
        Task::ImageClassification
    }

    fn run(&self, input: Input, ctx: Context) -> Result<PipelineOutput, ToolkitError> {
        match input {
            Input::Raw { body, .. } => {
                let mut out = self.classify(&[&body], None, None, &ctx)?;
                Ok(PipelineOutput::Json(out.pop().unwrap_or(Value::Null)))
            }
            json_input => {
                let req: ImageClassificationRequest = json_input.into_request(self.task())?;
                let params = req.parameters.unwrap_or_default();
                let function = ClassificationFunction::parse(params.function_to_apply.as_deref())?;
                let (images, many) = match req.inputs {
                    OneOrMany::One(s) => (vec![s], false),
                    OneOrMany::Many(list) => (list, true),
                };
                if images.len() > MAX_IMAGES {
                    return Err(ToolkitError::InputTooLong(format!(
                        "the request holds {} images, more than {MAX_IMAGES}; split it into smaller requests",
                        images.len()
                    )));
                }
                let bytes = images
                    .iter()
                    .map(|s| vision::image_from_json_string(s))
                    .collect::<Result<Vec<_>, _>>()?;
                let views: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
                let mut out = self.classify(&views, params.top_k, function, &ctx)?;
                Ok(PipelineOutput::Json(if many {
                    Value::Array(out)
                } else {
                    out.pop().unwrap_or(Value::Null)
                }))
            }
        }
    }

    fn warm_up_input(&self) -> Input {
        // a small grey PNG, made here rather than carried as bytes
        let mut png = Vec::new();
        let img = image::RgbImage::from_pixel(4, 4, image::Rgb([128, 128, 128]));
        let written = image::DynamicImage::from(img)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png);
        if written.is_err() {
            png.clear();
        }
        Input::Raw {
            media_type: "image/png",
            body: bytes::Bytes::from(png),
        }
    }

    fn raw_media_types(&self) -> &'static [&'static str] {
        vision::IMAGE_MEDIA_TYPES
    }
}
