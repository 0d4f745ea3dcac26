//! `image-segmentation` with transformers 4.51's `ImageSegmentationPipeline` semantics: each
//! image decoded as Pillow does, preprocessed by the model's image processor, run through a
//! [`Segmenter`] (SegFormer, MaskFormer) and post-processed as the model's image processor does
//! it for the subtask asked (by default the first of panoptic, instance, semantic that the
//! processor has):
//!
//! - semantic (`post_process_semantic_segmentation`): per-pixel label scores (SegFormer's logits;
//!   MaskFormer's `softmax(classes)[:-1]` weighted sigmoid masks summed over the queries)
//!   resized bilinearly to the image's size, a label per pixel; one `{"score": null, "label",
//!   "mask"}` per label present, in label order;
//! - panoptic (MaskFormer's `post_process_panoptic_segmentation` and `compute_segments`): the
//!   queries whose best class is a label scoring above `threshold`, their sigmoid masks resized
//!   to the image and weighted by that score, each pixel to the best query; a query is a
//!   segment when it owns pixels and owns more than `overlap_mask_area_threshold` of the pixels
//!   where its weighted mask reaches `mask_threshold` (the pipeline passes no
//!   `label_ids_to_fuse`: nothing is fused); segments in query order;
//! - instance (`post_process_instance_segmentation`): the top `queries` (query, label) scores, in
//!   the order torch's unsorted `topk` leaves them, each scored by its class probability times
//!   its mask's mean probability over the pixels of positive logit, its mask those pixels resized
//!   (nearest) to the image; those of score at least `threshold` with a pixel, painted in turn
//!   (a later one overwrites an earlier one's pixels).
//!
//! Each mask is a base64 PNG (mode L: 255 in, 0 out) of the input's size, as the toolkit writes
//! PIL images; panoptic and instance scores are rounded to 6 decimals as transformers does.

use base64::Engine;
use rayon::prelude::*;
use serde_json::{json, Value};

use super::images::{self, Images};
use super::{Input, Pipeline, PipelineOutput, VisionParts};
use crate::context::Context;
use crate::error::ToolkitError;
use crate::model::segmenter::{self, MaskQueries, Segmentation, Segmenter};
use crate::task::Task;
use crate::types::image_segmentation::ImageSegmentationParameters;
use crate::vision::{self, interpolate, ImageProcessor};

/// A loaded segmentation model.
#[derive(Debug)]
pub struct ImageSegmentationPipeline {
    processor: ImageProcessor,
    model: Box<dyn Segmenter>,
    labels: Vec<String>,
    /// The architecture's name, for transformers' "Subtask ... is not supported" message.
    architecture: String,
    max_pixels: u64,
}

/// The registry's constructor.
pub(crate) fn build(parts: VisionParts<'_>) -> Result<Box<dyn Pipeline>, ToolkitError> {
    let (labels, _) = crate::model::config::labels(parts.config)
        .map_err(|e| ToolkitError::model_load(format!("config.json: {e}")))?;
    if labels.len() > usize::from(u16::MAX) - 1 {
        return Err(ToolkitError::model_load(format!(
            "config.json: {} labels; at most {} are supported",
            labels.len(),
            u16::MAX - 1
        )));
    }
    let processor = ImageProcessor::load(&parts.files.dir)?;
    let model = segmenter::load(
        parts.family,
        parts.files,
        parts.config,
        labels.len(),
        &parts.device,
    )?;
    let architecture = crate::model::config::architectures(parts.config)
        .into_iter()
        .next()
        .unwrap_or_else(|| parts.family.model_type().to_owned());
    Ok(Box::new(ImageSegmentationPipeline {
        processor,
        model,
        labels,
        architecture,
        max_pixels: parts.opts.max_image_pixels,
    }))
}

/// transformers' `post_process_semantic_segmentation` for one image: the `labels × h × w`
/// scores resized bilinearly (`align_corners=False`) to `out_h × out_w`, then the first label
/// of highest score at each pixel. The resized scores are never held whole: each output pixel
/// interpolates every label's four neighbours and keeps the best (the same float arithmetic as
/// torch, `(x00·w0 + x01·w1)·h0 + (x10·w0 + x11·w1)·h1`).
pub fn semantic_map(
    logits: &[f32],
    labels: usize,
    (h, w): (usize, usize),
    (out_h, out_w): (usize, usize),
) -> Vec<u16> {
    let planes: Vec<&[f32]> = (0..labels)
        .map(|l| &logits[l * h * w..(l + 1) * h * w])
        .collect();
    best_of_resized(&planes, None, (h, w), (out_h, out_w))
        .into_iter()
        .map(|(l, _)| l)
        .collect()
}

/// At each pixel of the `out_h × out_w` image, the first plane of highest bilinearly resized
/// value (each plane's value times its `weights` entry, when given), and that value.
fn best_of_resized(
    planes: &[&[f32]],
    weights: Option<&[f32]>,
    (h, w): (usize, usize),
    (out_h, out_w): (usize, usize),
) -> Vec<(u16, f32)> {
    let rows = interpolate::bilinear_taps(h, out_h);
    let cols = interpolate::bilinear_taps(w, out_w);
    let mut map = vec![(0u16, 0f32); out_h * out_w];
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
                for (l, p) in planes.iter().enumerate() {
                    let top = p[y0 * w + x0] * wx0 + p[y0 * w + x1] * wx1;
                    let bottom = p[y1 * w + x0] * wx0 + p[y1 * w + x1] * wx1;
                    let mut v = top * hy0 + bottom * hy1;
                    if let Some(ws) = weights {
                        v *= ws[l];
                    }
                    // torch's argmax: the first of equal maxima; a NaN wins, as it does there
                    if v > best.1 || (v.is_nan() && !best.1.is_nan()) {
                        best = (l as u16, v);
                    }
                }
                line[x] = best;
            }
        });
    map
}

/// The bilinearly resized plane (torch's `interpolate(mode="bilinear", align_corners=False)`).
fn resize_plane(p: &[f32], (h, w): (usize, usize), (out_h, out_w): (usize, usize)) -> Vec<f32> {
    let rows = interpolate::bilinear_taps(h, out_h);
    let cols = interpolate::bilinear_taps(w, out_w);
    let mut out = Vec::with_capacity(out_h * out_w);
    for ry in &rows {
        let (y0, y1, hy0, hy1) = (ry.index[0], ry.index[1], ry.weight[0], ry.weight[1]);
        for cx in &cols {
            let (x0, x1, wx0, wx1) = (cx.index[0], cx.index[1], cx.weight[0], cx.weight[1]);
            let top = p[y0 * w + x0] * wx0 + p[y0 * w + x1] * wx1;
            let bottom = p[y1 * w + x0] * wx0 + p[y1 * w + x1] * wx1;
            out.push(top * hy0 + bottom * hy1);
        }
    }
    out
}

/// torch's `interpolate(mode="nearest")` source indices along an axis.
fn nearest_index(inp: usize, out: usize) -> Vec<usize> {
    let scale = inp as f32 / out as f32;
    (0..out)
        .map(|i| ((i as f32 * scale).floor() as usize).min(inp.saturating_sub(1)))
        .collect()
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Softmax of each query's class logits.
fn class_probabilities(q: &MaskQueries) -> Vec<Vec<f32>> {
    q.class_logits
        .chunks(q.labels + 1)
        .map(|row| {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exps: Vec<f32> = row.iter().map(|&v| (v - max).exp()).collect();
            let sum: f32 = exps.iter().sum();
            exps.iter().map(|e| e / sum).collect()
        })
        .collect()
}

/// Python's `round(x, 6)` of a float32 score.
fn round6(x: f32) -> f64 {
    (f64::from(x) * 1e6).round() / 1e6
}

/// A segment: its label, score (none for semantic ones) and pixels (the image's size).
struct Segment {
    label: usize,
    score: Option<f64>,
    mask: Vec<u8>,
}

/// MaskFormer's semantic map: `Σ_q softmax(classes_q)[l] · sigmoid(mask_q)`, resized and
/// reduced as SegFormer's logits are.
fn mask_queries_semantic(q: &MaskQueries, target: (usize, usize)) -> Vec<u16> {
    let probs = class_probabilities(q);
    let plane = q.height * q.width;
    let mut scores = vec![0f32; q.labels * plane];
    for (qi, p) in probs.iter().enumerate() {
        let mask = &q.masks[qi * plane..(qi + 1) * plane];
        for l in 0..q.labels {
            let c = p[l];
            let out = &mut scores[l * plane..(l + 1) * plane];
            for (o, &m) in out.iter_mut().zip(mask) {
                *o += c * sigmoid(m);
            }
        }
    }
    semantic_map(&scores, q.labels, (q.height, q.width), target)
}

/// The post-processing thresholds.
#[derive(Debug, Clone, Copy)]
struct Thresholds {
    threshold: f64,
    mask: f64,
    overlap: f64,
}

/// `post_process_panoptic_segmentation` (and `compute_segments`) for one image.
fn panoptic(q: &MaskQueries, t: Thresholds, (out_h, out_w): (usize, usize)) -> Vec<Segment> {
    let plane = q.height * q.width;
    // remove_low_and_no_objects: the best class (torch's max: the first of equal maxima)
    let kept: Vec<(usize, usize, f32)> = class_probabilities(q)
        .iter()
        .enumerate()
        .filter_map(|(qi, p)| {
            let (label, score) =
                p.iter()
                    .copied()
                    .enumerate()
                    .fold(
                        (0, f32::NEG_INFINITY),
                        |b, (l, v)| if v > b.1 { (l, v) } else { b },
                    );
            (label != q.labels && score > t.threshold as f32).then_some((qi, label, score))
        })
        .collect();
    if kept.is_empty() {
        return Vec::new();
    }
    let probs: Vec<Vec<f32>> = kept
        .iter()
        .map(|&(qi, _, _)| {
            q.masks[qi * plane..(qi + 1) * plane]
                .iter()
                .map(|&m| sigmoid(m))
                .collect()
        })
        .collect();
    let planes: Vec<&[f32]> = probs.iter().map(Vec::as_slice).collect();
    let weights: Vec<f32> = kept.iter().map(|k| k.2).collect();
    let best = best_of_resized(&planes, Some(&weights), (q.height, q.width), (out_h, out_w));
    // each query's pixels, and its pixels whose weighted probability reaches mask_threshold
    let mut area = vec![0usize; kept.len()];
    for &(k, _) in &best {
        area[usize::from(k)] += 1;
    }
    let mut segments = Vec::new();
    for (k, &(_, label, score)) in kept.iter().enumerate() {
        let resized = resize_plane(&probs[k], (q.height, q.width), (out_h, out_w));
        let original = resized
            .iter()
            .filter(|&&v| v * score >= t.mask as f32)
            .count();
        if area[k] == 0 || original == 0 {
            continue;
        }
        let ratio = area[k] as f32 / original as f32;
        if f64::from(ratio) <= t.overlap {
            continue;
        }
        segments.push(Segment {
            label,
            score: Some(round6(score)),
            mask: best
                .iter()
                .map(|&(b, _)| if usize::from(b) == k { 255 } else { 0 })
                .collect(),
        });
    }
    segments
}

/// The order libstdc++'s `std::nth_element(first, first + k - 1, last, greater)` leaves
/// `(value, index)` pairs in, which is the order of torch's CPU `topk(k, sorted=False)` when
/// `k · 64 > n` (its `nth_element` path). Past introselect's depth limit (a heap select there)
/// the first `k` are sorted instead, a documented difference that only ties and adversarial
/// inputs reach.
fn nth_element_order(v: &mut [(f32, usize)], k: usize) {
    let greater = |a: &(f32, usize), b: &(f32, usize)| (a.0.is_nan() && !b.0.is_nan()) || a.0 > b.0;
    let n = v.len();
    if n == 0 || k == 0 || k > n {
        return;
    }
    let nth = k - 1;
    let (mut first, mut last) = (0usize, n);
    let mut depth = 2 * (usize::BITS - 1 - n.leading_zeros()) as usize;
    while last - first > 3 {
        if depth == 0 {
            v[first..last].sort_by(|a, b| {
                if greater(a, b) {
                    std::cmp::Ordering::Less
                } else if greater(b, a) {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            });
            return;
        }
        depth -= 1;
        // __unguarded_partition_pivot: the median of (first + 1, mid, last − 1) to first
        let mid = first + (last - first) / 2;
        let (a, b, c) = (first + 1, mid, last - 1);
        let median = if greater(&v[a], &v[b]) {
            if greater(&v[b], &v[c]) {
                b
            } else if greater(&v[a], &v[c]) {
                c
            } else {
                a
            }
        } else if greater(&v[a], &v[c]) {
            a
        } else if greater(&v[b], &v[c]) {
            c
        } else {
            b
        };
        v.swap(first, median);
        // __unguarded_partition(first + 1, last, pivot = first)
        let (mut lo, mut hi) = (first + 1, last);
        let cut = loop {
            while greater(&v[lo], &v[first]) {
                lo += 1;
            }
            hi -= 1;
            while greater(&v[first], &v[hi]) {
                hi -= 1;
            }
            if lo >= hi {
                break lo;
            }
            v.swap(lo, hi);
            lo += 1;
        };
        if cut <= nth {
            first = cut;
        } else {
            last = cut;
        }
    }
    // __insertion_sort(first, last)
    for i in first + 1..last {
        let val = v[i];
        if greater(&val, &v[first]) {
            v.copy_within(first..i, first + 1);
            v[first] = val;
        } else {
            let mut j = i;
            while greater(&val, &v[j - 1]) {
                v[j] = v[j - 1];
                j -= 1;
            }
            v[j] = val;
        }
    }
}

/// `post_process_instance_segmentation` for one image.
fn instance(q: &MaskQueries, t: Thresholds, (out_h, out_w): (usize, usize)) -> Vec<Segment> {
    let plane = q.height * q.width;
    let probs = class_probabilities(q);
    let mut flat: Vec<(f32, usize)> = probs
        .iter()
        .flat_map(|p| p[..q.labels].iter().copied())
        .enumerate()
        .map(|(i, v)| (v, i))
        .collect();
    let k = q.queries.min(flat.len());
    if k * 64 <= flat.len() {
        // torch's partial_sort path: sorted, largest first
        flat.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
    } else {
        nth_element_order(&mut flat, k);
    }
    let rows = nearest_index(q.height, out_h);
    let cols = nearest_index(q.width, out_w);
    let mut map = vec![-1i32; out_h * out_w];
    let mut segments = Vec::new();
    for &(class_score, idx) in &flat[..k] {
        let (query, label) = (idx / q.labels, idx % q.labels);
        let logits = &q.masks[query * plane..(query + 1) * plane];
        let (mut sum, mut count) = (0f32, 0f32);
        for &m in logits {
            if m > 0.0 {
                sum += sigmoid(m);
                count += 1.0;
            }
        }
        let score = class_score * (sum / (count + 1e-6));
        if f64::from(score) < t.threshold {
            continue;
        }
        let id = segments.len() as i32;
        let mut any = false;
        for (y, &ry) in rows.iter().enumerate() {
            for (x, &cx) in cols.iter().enumerate() {
                if logits[ry * q.width + cx] > 0.0 {
                    map[y * out_w + x] = id;
                    any = true;
                }
            }
        }
        if !any {
            continue;
        }
        segments.push(Segment {
            label,
            score: Some(round6(score)),
            mask: Vec::new(),
        });
    }
    for (id, s) in segments.iter_mut().enumerate() {
        s.mask = map
            .iter()
            .map(|&m| if m == id as i32 { 255 } else { 0 })
            .collect();
    }
    segments
}

/// A mode-L PNG of `pixels`, base64, as the toolkit encodes a PIL image.
fn png_base64(pixels: Vec<u8>, width: usize, height: usize) -> Result<String, ToolkitError> {
    let img = image::GrayImage::from_raw(width as u32, height as u32, pixels)
        .ok_or_else(|| ToolkitError::Internal("a mask of the wrong size".into()))?;
    let mut png = Vec::new();
    image::DynamicImage::from(img)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| ToolkitError::Internal(format!("encoding a mask as PNG: {e}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(png))
}

/// A mode-L PNG of `map == label` (255 in, 0 out), base64.
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
    png_base64(pixels, width, height)
}

/// One `{"score": null, "label", "mask"}` per label present in a semantic map, in label order;
/// one mask at a time, so memory holds the label map and one mask, whatever the labels.
fn semantic_answer(
    map: &[u16],
    labels: &[String],
    (width, height): (usize, usize),
) -> Result<Value, ToolkitError> {
    let mut present = vec![false; labels.len()];
    for &l in map {
        present[usize::from(l)] = true;
    }
    let mut out = Vec::new();
    for (l, _) in present.iter().enumerate().filter(|(_, &p)| p) {
        out.push(json!({
            "score": null,
            "label": labels[l],
            "mask": mask_png_base64(map, l as u16, width, height)?,
        }));
    }
    Ok(Value::Array(out))
}

impl ImageSegmentationPipeline {
    fn segment(
        &self,
        rgb: &vision::Image8,
        subtask: &str,
        t: Thresholds,
        ctx: &Context,
    ) -> Result<Value, ToolkitError> {
        let pixels = self.processor.preprocess(rgb, self.max_pixels)?;
        let out = self.model.segment(&pixels)?;
        if ctx.is_gone() {
            return Err(crate::context::CallerGone::error());
        }
        let target = (rgb.height, rgb.width);
        let size = (rgb.width, rgb.height);
        let segments = match (&out, subtask) {
            (
                Segmentation::Semantic {
                    labels,
                    height,
                    width,
                    logits,
                },
                _,
            ) => {
                let map = semantic_map(logits, *labels, (*height, *width), target);
                return semantic_answer(&map, &self.labels, size);
            }
            (Segmentation::MaskQueries(q), "semantic") => {
                let map = mask_queries_semantic(q, target);
                return semantic_answer(&map, &self.labels, size);
            }
            (Segmentation::MaskQueries(q), "instance") => instance(q, t, target),
            (Segmentation::MaskQueries(q), _) => panoptic(q, t, target),
        };
        let mut out = Vec::with_capacity(segments.len());
        for s in segments {
            out.push(json!({
                "score": s.score,
                "label": self.labels.get(s.label).ok_or_else(|| ToolkitError::Internal("a label past id2label".into()))?,
                "mask": png_base64(s.mask, rgb.width, rgb.height)?,
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
        let supported = self.model.subtasks();
        let p = &images.parameters;
        let subtask = match p.subtask.as_deref() {
            None => supported[0],
            Some(s) => supported.iter().copied().find(|&x| x == s).ok_or_else(|| {
                ToolkitError::InvalidParameters(format!(
                    "Subtask {s} is not supported for model {}: it supports {} (or none: {})",
                    self.architecture,
                    supported.join(", "),
                    supported[0]
                ))
            })?,
        };
        let t = Thresholds {
            threshold: p.threshold.unwrap_or(0.9),
            mask: p.mask_threshold.unwrap_or(0.5),
            overlap: p.overlap_mask_area_threshold.unwrap_or(0.5),
        };
        let results = images.each(self.max_pixels, &ctx, |rgb| {
            self.segment(&rgb, subtask, t, &ctx)
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
    fn unsorted_top_k_leaves_torchs_order() {
        // torch 2.6 on the CPU: x.topk(k, sorted=False).indices
        let order = |x: &[f32], k: usize| {
            let mut v: Vec<(f32, usize)> = x.iter().copied().zip(0..).collect();
            nth_element_order(&mut v, k);
            v[..k].iter().map(|p| p.1).collect::<Vec<_>>()
        };
        let ten = [0.1, 0.9, 0.3, 0.7, 0.5, 0.2, 0.8, 0.4, 0.6, 0.05];
        assert_eq!(order(&ten, 4), vec![6, 1, 3, 8]);
        let x = [
            0.0043, 0.1056, 0.2858, 0.027, 0.4716, 0.0601, 0.7719, 0.7437, 0.5944, 0.8879, 0.451,
            0.7995, 0.1498, 0.4015, 0.0542, 0.4594, 0.1756, 0.9492, 0.8473, 0.8749, 0.6483, 0.2148,
            0.9493, 0.0121,
        ];
        assert_eq!(order(&x, 6), vec![9, 22, 17, 19, 18, 11]);
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
