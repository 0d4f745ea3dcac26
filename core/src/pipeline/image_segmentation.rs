//! `image-segmentation` with transformers 4.51's `ImageSegmentationPipeline` semantics, for
//! semantic segmentation models (SegFormer): each image decoded as Pillow does, preprocessed by
//! the model's image processor, its logits upsampled bilinearly to the image's own size and
//! reduced to a label per pixel (`post_process_semantic_segmentation`), and answered as one
//! `{"score": null, "label", "mask"}` per label present, in label order, the mask a base64 PNG
//! (mode L: 255 where the label is, 0 elsewhere) of the input's size, as the toolkit writes PIL
//! images.

use base64::Engine;
use rayon::prelude::*;
use serde_json::{json, Value};

use super::images::{self, Images};
use super::{Input, Pipeline, PipelineOutput, VisionParts};
use crate::context::Context;
use crate::error::ToolkitError;
use crate::model::segformer::Segformer;
use crate::task::Task;
use crate::types::image_segmentation::ImageSegmentationParameters;
use crate::vision::{self, interpolate, ImageProcessor};

/// A loaded semantic segmentation model.
#[derive(Debug)]
pub struct ImageSegmentationPipeline {
    processor: ImageProcessor,
    model: Segformer,
    labels: Vec<String>,
    /// The architecture's name, for transformers' "Subtask ... is not supported" message.
    architecture: String,
    max_pixels: u64,
}

/// The registry's constructor.
pub(crate) fn build(parts: VisionParts<'_>) -> Result<Box<dyn Pipeline>, ToolkitError> {
    let (labels, _) = crate::model::config::labels(parts.config)
        .map_err(|e| ToolkitError::model_load(format!("config.json: {e}")))?;
    if labels.len() > usize::from(u16::MAX) {
        return Err(ToolkitError::model_load(format!(
            "config.json: {} labels; at most {} are supported",
            labels.len(),
            u16::MAX
        )));
    }
    let processor = ImageProcessor::load(&parts.files.dir)?;
    let model = Segformer::load(parts.files, parts.config, labels.len(), &parts.device)?;
    let architecture = crate::model::config::architectures(parts.config)
        .into_iter()
        .next()
        .unwrap_or_else(|| "SegformerForSemanticSegmentation".into());
    Ok(Box::new(ImageSegmentationPipeline {
        processor,
        model,
        labels,
        architecture,
        max_pixels: parts.opts.max_image_pixels,
    }))
}

/// transformers' `post_process_semantic_segmentation` for one image: the `labels × h × w`
/// logits resized bilinearly (`align_corners=False`) to `out_h × out_w`, then the first label
/// of highest logit at each pixel. The resized logits are never held whole: each output pixel
/// interpolates every label's four neighbours and keeps the best (the same float arithmetic as
/// torch, `(x00·w0 + x01·w1)·h0 + (x10·w0 + x11·w1)·h1`).
pub fn semantic_map(
    logits: &[f32],
    labels: usize,
    (h, w): (usize, usize),
    (out_h, out_w): (usize, usize),
) -> Vec<u16> {
    let rows = interpolate::bilinear_taps(h, out_h);
    let cols = interpolate::bilinear_taps(w, out_w);
    let plane = h * w;
    let mut map = vec![0u16; out_h * out_w];
    if out_w == 0 {
        return map;
    }
    // rows in parallel: a large image with many labels is the most work of the request
    map.par_chunks_mut(out_w)
        .zip(rows.par_iter())
        .for_each(|(line, ry)| {
            let (y0, y1, hy0, hy1) = (ry.index[0], ry.index[1], ry.weight[0], ry.weight[1]);
            for (x, cx) in cols.iter().enumerate() {
                let (x0, x1, wx0, wx1) = (cx.index[0], cx.index[1], cx.weight[0], cx.weight[1]);
                let mut best = (0u16, f32::NEG_INFINITY);
                for l in 0..labels {
                    let p = &logits[l * plane..(l + 1) * plane];
                    let top = p[y0 * w + x0] * wx0 + p[y0 * w + x1] * wx1;
                    let bottom = p[y1 * w + x0] * wx0 + p[y1 * w + x1] * wx1;
                    let v = top * hy0 + bottom * hy1;
                    // torch's argmax: the first of equal maxima; a NaN wins, as it does there
                    if v > best.1 || (v.is_nan() && !best.1.is_nan()) {
                        best = (l as u16, v);
                    }
                }
                line[x] = best.0;
            }
        });
    map
}

/// A mode-L PNG of `map == label` (255 in, 0 out), base64, as the toolkit encodes a PIL image.
fn mask_png_base64(
    map: &[u16],
    label: u16,
    width: usize,
    height: usize,
) -> Result<String, ToolkitError> {
    let pixels: Vec<u8> = map
        .iter()
        .map(|&l| if l == label { 255 } else { 0 })
        .collect();
    let img = image::GrayImage::from_raw(width as u32, height as u32, pixels)
        .ok_or_else(|| ToolkitError::Internal("a mask of the wrong size".into()))?;
    let mut png = Vec::new();
    image::DynamicImage::from(img)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| ToolkitError::Internal(format!("encoding a mask as PNG: {e}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(png))
}

impl ImageSegmentationPipeline {
    fn segment(&self, rgb: &vision::Image8, ctx: &Context) -> Result<Value, ToolkitError> {
        let pixels = self.processor.preprocess(rgb, self.max_pixels)?;
        let (h, w, logits) = self.model.logits(&pixels)?;
        if ctx.is_gone() {
            return Err(crate::context::CallerGone::error());
        }
        let map = semantic_map(&logits, self.labels.len(), (h, w), (rgb.height, rgb.width));
        let mut present = vec![false; self.labels.len()];
        for &l in &map {
            present[usize::from(l)] = true;
        }
        // one mask at a time: memory holds the label map and one mask, whatever the labels
        let mut out = Vec::new();
        for (l, _) in present.iter().enumerate().filter(|(_, &p)| p) {
            out.push(json!({
                "score": null,
                "label": self.labels[l],
                "mask": mask_png_base64(&map, l as u16, rgb.width, rgb.height)?,
            }));
        }
        Ok(Value::Array(out))
    }
}

impl Pipeline for ImageSegmentationPipeline {
    fn task(&self) -> Task {
        Task::ImageSegmentation
    }

    fn run(&self, input: Input, ctx: Context) -> Result<PipelineOutput, ToolkitError> {
        let images: Images<ImageSegmentationParameters> = Images::read(input, self.task())?;
        match images.parameters.subtask.as_deref() {
            None | Some("semantic") => {}
            Some(other) => {
                return Err(ToolkitError::InvalidParameters(format!(
                    "Subtask {other} is not supported for model {}: it does semantic segmentation only (subtask \"semantic\", or none)",
                    self.architecture
                )))
            }
        }
        let results = images.each(self.max_pixels, &ctx, |rgb| self.segment(&rgb, &ctx))?;
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
    fn the_label_map_is_the_argmax_of_the_upsampled_logits() {
        // two labels on a 1x2 map: label 1 rises from left to right
        let logits = [0.0, 0.0, -1.0, 1.0];
        let map = semantic_map(&logits, 2, (1, 2), (1, 4));
        // torch: interpolate([-1, 1], size=4) = [-1, -0.5, 0.5, 1]; label 0 (0.0) wins at
        // the first two pixels, label 1 at the last two
        assert_eq!(map, vec![0, 0, 1, 1]);
        // ties go to the first label
        let even = [0.5, 0.5, 0.5, 0.5];
        assert_eq!(semantic_map(&even, 2, (1, 2), (2, 2)), vec![0; 4]);
    }

    #[test]
    fn masks_are_mode_l_pngs_of_the_image_size() {
        let map = vec![0u16, 1, 1, 0, 1, 1];
        let b64 = mask_png_base64(&map, 1, 3, 2).unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!(img.color(), image::ColorType::L8);
        assert_eq!((img.width(), img.height()), (3, 2));
        assert_eq!(img.to_luma8().into_raw(), vec![0, 255, 255, 0, 255, 255]);
    }
}
