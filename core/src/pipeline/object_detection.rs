//! `object-detection` with transformers 4.51's `ObjectDetectionPipeline` semantics, on YOLOS and
//! DETR (behind [`ObjectDetector`]): each image decoded as Pillow does, preprocessed by the
//! model's image processor (the shortest/longest-edge or max-height/width resize, to multiples of
//! 16 for YOLOS; a single image is padded to its own size, so not at all, unless the processor
//! has a `pad_size`), and post-processed as
//! `post_process_object_detection` does (the same function in YOLOS's and DETR's image
//! processors): per detection token or object query, the softmax over the labels and "no
//! object", the best real label and its probability, kept when above `threshold` (default 0.5),
//! the box turned from centre/size to corners and scaled to the input image's pixels, each
//! coordinate truncated to an integer. Answered in the model's order as
//! `[{"score", "label", "box": {"xmin", "ymin", "xmax", "ymax"}}]`.

use serde_json::{json, Value};

use super::images::{self, Images};
use super::{Input, Pipeline, PipelineOutput, VisionParts};
use crate::context::Context;
use crate::error::ToolkitError;
use crate::model::object_detector::{self, Detections, ObjectDetector};
use crate::task::Task;
use crate::types::object_detection::ObjectDetectionParameters;
use crate::vision::{self, ImageProcessor};

/// A loaded object detector.
#[derive(Debug)]
pub struct ObjectDetectionPipeline {
    processor: ImageProcessor,
    model: Box<dyn ObjectDetector>,
    labels: Vec<String>,
    max_pixels: u64,
}

/// The registry's constructor.
pub(crate) fn build(parts: VisionParts<'_>) -> Result<Box<dyn Pipeline>, ToolkitError> {
    let (labels, _) = crate::model::config::labels(parts.config)
        .map_err(|e| ToolkitError::model_load(format!("config.json: {e}")))?;
    let processor = ImageProcessor::load(&parts.files.dir)?;
    let model = object_detector::load(
        parts.family,
        parts.files,
        parts.config,
        labels.len(),
        &parts.device,
    )?;
    Ok(Box::new(ObjectDetectionPipeline {
        processor,
        model,
        labels,
        max_pixels: parts.opts.max_image_pixels,
    }))
}

/// transformers' `post_process_object_detection` and the pipeline's formatting for one image of
/// `width × height` pixels.
pub fn annotate(
    det: &Detections,
    labels: &[String],
    threshold: f64,
    (width, height): (usize, usize),
) -> Result<Value, ToolkitError> {
    let (w, h) = (width as f32, height as f32);
    let mut out = Vec::new();
    for (logits, b) in det.logits.iter().zip(&det.boxes) {
        if logits.len() != labels.len() + 1 {
            return Err(ToolkitError::Internal(format!(
                "the model gave {} class logits, expected {}",
                logits.len(),
                labels.len() + 1
            )));
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
        let sum: f32 = exps.iter().sum();
        // the best real label (the first of equal maxima), "no object" left out
        let (label, score) = exps[..labels.len()]
            .iter()
            .map(|e| e / sum)
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |best, (i, p)| {
                if p > best.1 {
                    (i, p)
                } else {
                    best
                }
            });
        if !score.is_finite() {
            return Err(ToolkitError::Internal(
                "the model produced non-finite scores".into(),
            ));
        }
        if f64::from(score) <= threshold {
            continue;
        }
        let [cx, cy, bw, bh] = *b;
        // center_to_corners_format, scaled by [w, h, w, h], then torch's .int() (truncation)
        let corner =
            |c: f32, size: f32, sign: f32, scale: f32| ((c + sign * 0.5 * size) * scale) as i64;
        out.push(json!({
            "score": f64::from(score),
            "label": labels[label],
            "box": {
                "xmin": corner(cx, bw, -1.0, w),
                "ymin": corner(cy, bh, -1.0, h),
                "xmax": corner(cx, bw, 1.0, w),
                "ymax": corner(cy, bh, 1.0, h),
            },
        }));
    }
    Ok(Value::Array(out))
}

impl Pipeline for ObjectDetectionPipeline {
    fn task(&self) -> Task {
        Task::ObjectDetection
    }

    fn run(&self, input: Input, ctx: Context) -> Result<PipelineOutput, ToolkitError> {
        let images: Images<ObjectDetectionParameters> = Images::read(input, self.task())?;
        let threshold = images.parameters.threshold.unwrap_or(0.5);
        let results = images.each(self.max_pixels, &ctx, |rgb| {
            let pixels = self.processor.preprocess(&rgb, self.max_pixels)?;
            let (pixels, valid) = self.processor.pad(pixels)?;
            let det = self.model.detect(&pixels, valid)?;
            annotate(&det, &self.labels, threshold, (rgb.width, rgb.height))
        })?;
        Ok(images.answer(results))
    }

    fn warm_up_input(&self) -> Input {
        images::warm_up_png()
    }

    fn raw_media_types(&self) -> &'static [&'static str] {
        vision::IMAGE_MEDIA_TYPES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_become_truncated_corners_in_image_pixels_and_low_scores_are_dropped() {
        let labels = vec!["cat".to_owned(), "dog".to_owned()];
        let det = Detections {
            // token 0: dog is likely; token 1: "no object" dominates
            logits: vec![vec![0.0, 3.0, 0.0], vec![0.0, 0.0, 5.0]],
            boxes: vec![[0.5, 0.5, 0.5, 0.25], [0.1, 0.1, 0.1, 0.1]],
        };
        let v = annotate(&det, &labels, 0.5, (64, 48)).unwrap();
        let a = v.as_array().unwrap();
        assert_eq!(a.len(), 1, "{v}");
        assert_eq!(a[0]["label"], "dog");
        assert_eq!(
            a[0]["box"],
            json!({"xmin": 16, "ymin": 18, "xmax": 48, "ymax": 30})
        );
        // softmax(0, 3, 0)[1]
        let want = 3f64.exp() / (2.0 + 3f64.exp());
        assert!((a[0]["score"].as_f64().unwrap() - want).abs() < 1e-6);
        // a threshold of 0 keeps every token; the comparison is strict
        let all = annotate(&det, &labels, 0.0, (64, 48)).unwrap();
        assert_eq!(all.as_array().unwrap().len(), 2);
        let score = a[0]["score"].as_f64().unwrap();
        let none = annotate(&det, &labels, score, (64, 48)).unwrap();
        assert!(none.as_array().unwrap().is_empty());
    }
}
