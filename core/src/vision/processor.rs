//! transformers' image processors (`ViTImageProcessor` and its kin, the slow, Pillow-based ones
//! that `pipeline()` loads in transformers 4.51): resize, center crop, rescale, normalize, as read
//! from `preprocessor_config.json`, in that order and with the same arithmetic (the resize in
//! 8 bits through Pillow, rescaling in float64 then float32, normalization in float32).

use std::path::Path;

use serde_json::Value;

use super::resample::{resize, Filter, Image8};
use crate::error::ToolkitError;

/// How the image is resized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// To exactly `height × width`.
    Exact {
        /// Height.
        height: usize,
        /// Width.
        width: usize,
    },
    /// The shorter edge to this length, keeping the aspect ratio (the longer edge truncated, as
    /// transformers' `get_resize_output_image_size` computes it).
    ShortestEdge(usize),
    /// DETR's and YOLOS's `{"shortest_edge", "longest_edge"}`: the shorter edge to `shortest`
    /// unless that makes the longer one exceed `longest` (then the longer one to about
    /// `longest`), keeping the aspect ratio, each side then rounded down to a multiple of
    /// `multiple_of` (16 for YOLOS, 1 for DETR), as transformers' `get_size_with_aspect_ratio`.
    ShortestLongest {
        /// `shortest_edge`.
        shortest: usize,
        /// `longest_edge`.
        longest: usize,
        /// The multiple each side is rounded down to.
        multiple_of: usize,
    },
    /// DETR's and YOLOS's `{"max_height", "max_width"}`: scaled by the smaller of
    /// `max_height / height` and `max_width / width`, keeping the aspect ratio, each side
    /// truncated (transformers' `get_image_size_for_max_height_width`).
    MaxHeightWidth {
        /// `max_height`.
        max_height: usize,
        /// `max_width`.
        max_width: usize,
    },
}

/// An image processor's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageProcessor {
    /// `do_resize` with `size` (`None`: no resize).
    pub resize: Option<Size>,
    /// `resample`.
    pub filter: Filter,
    /// `do_center_crop` with `crop_size` (`height`, `width`).
    pub center_crop: Option<(usize, usize)>,
    /// `do_rescale` with `rescale_factor`.
    pub rescale: Option<f64>,
    /// `do_normalize` with `image_mean` and `image_std`.
    pub normalize: Option<([f32; 3], [f32; 3])>,
    /// DETR's and YOLOS's `do_pad` with a `pad_size` (`height`, `width`): every image padded with
    /// zeros at its bottom and right to that size. Without a `pad_size` they pad the images of a
    /// batch to the largest, and the pipelines' batches are of one image: no padding.
    pub pad: Option<(usize, usize)>,
}

/// A preprocessed image: `[3, height, width]` float32, channels first.
#[derive(Debug, Clone, PartialEq)]
pub struct PixelValues {
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
    /// `3 · height · width` values, channel-major.
    pub data: Vec<f32>,
}

fn size_of(v: &Value, what: &str) -> Result<Size, ToolkitError> {
    let dim = |k: &str| v.get(k).and_then(Value::as_u64).map(|n| n as usize);
    let zero = [
        dim("height"),
        dim("width"),
        dim("shortest_edge"),
        v.as_u64().map(|n| n as usize),
    ]
    .contains(&Some(0));
    if zero {
        return Err(ToolkitError::model_load(format!(
            "preprocessor_config.json: {what} {v} has a zero side"
        )));
    }
    if let (Some(shortest), Some(longest)) = (dim("shortest_edge"), dim("longest_edge")) {
        if longest == 0 {
            return Err(ToolkitError::model_load(format!(
                "preprocessor_config.json: {what} {v} has a zero side"
            )));
        }
        return Ok(Size::ShortestLongest {
            shortest,
            longest,
            multiple_of: 1,
        });
    }
    match (dim("height"), dim("width"), dim("shortest_edge"), v.as_u64()) {
        (Some(height), Some(width), _, _) => Ok(Size::Exact { height, width }),
        (_, _, Some(s), _) => Ok(Size::ShortestEdge(s)),
        (_, _, _, Some(n)) => Ok(Size::Exact {
            height: n as usize,
            width: n as usize,
        }),
        _ => Err(ToolkitError::model_load(format!(
            "preprocessor_config.json: {what} {v} is not a size this server reads (height and width, shortest_edge, or a number)"
        ))),
    }
}

fn triple(v: Option<&Value>, default: [f32; 3], what: &str) -> Result<[f32; 3], ToolkitError> {
    let Some(v) = v else {
        return Ok(default);
    };
    if let Some(x) = v.as_f64() {
        return Ok([x as f32; 3]);
    }
    let a: Vec<f32> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_f64)
                .map(|x| x as f32)
                .collect()
        })
        .unwrap_or_default();
    match a.as_slice() {
        [r, g, b] => Ok([*r, *g, *b]),
        _ => Err(ToolkitError::model_load(format!(
            "preprocessor_config.json: {what} must be three numbers, got {v}"
        ))),
    }
}

impl ImageProcessor {
    /// Reads `preprocessor_config.json` (transformers' defaults for what it leaves out: ViT's,
    /// or DETR's and YOLOS's for their image processors).
    pub fn from_config(cfg: &Value) -> Result<Self, ToolkitError> {
        let flag = |k: &str, default: bool| cfg.get(k).and_then(Value::as_bool).unwrap_or(default);
        if let Some(multiple_of) = detection_processor(cfg) {
            return Self::detection(cfg, multiple_of);
        }
        let resize = if flag("do_resize", true) {
            Some(match cfg.get("size") {
                Some(v) => size_of(v, "size")?,
                None => Size::Exact {
                    height: 224,
                    width: 224,
                },
            })
        } else {
            None
        };
        let filter = match cfg.get("resample").and_then(Value::as_i64) {
            Some(n) => Filter::from_pil(n)?,
            None => Filter::Bilinear,
        };
        let center_crop = if flag("do_center_crop", false) {
            match size_of(cfg.get("crop_size").unwrap_or(&Value::Null), "crop_size")? {
                Size::Exact { height, width } => Some((height, width)),
                Size::ShortestEdge(s) => Some((s, s)),
                Size::ShortestLongest { .. } | Size::MaxHeightWidth { .. } => {
                    return Err(ToolkitError::model_load(
                        "preprocessor_config.json: crop_size must be a height and width",
                    ))
                }
            }
        } else {
            None
        };
        let rescale = flag("do_rescale", true).then(|| {
            cfg.get("rescale_factor")
                .and_then(Value::as_f64)
                .unwrap_or(1.0 / 255.0)
        });
        let normalize = if flag("do_normalize", true) {
            Some((
                triple(cfg.get("image_mean"), [0.5; 3], "image_mean")?,
                triple(cfg.get("image_std"), [0.5; 3], "image_std")?,
            ))
        } else {
            None
        };
        Ok(Self {
            resize,
            filter,
            center_crop,
            rescale,
            normalize,
            pad: None,
        })
    }

    /// `DetrImageProcessor` / `YolosImageProcessor` (whose sides are rounded down to
    /// `multiple_of`): their own defaults (`size` {"shortest_edge": 800, "longest_edge": 1333},
    /// ImageNet's mean and std, bilinear), a bare number as `size` read with `max_size` (1333
    /// unless given) as their `__init__` reads older checkpoints' files, no center crop, and
    /// `pad_size`.
    fn detection(cfg: &Value, multiple_of: usize) -> Result<Self, ToolkitError> {
        let flag = |k: &str, default: bool| cfg.get(k).and_then(Value::as_bool).unwrap_or(default);
        let dim = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).map(|n| n as usize);
        let size = cfg.get("size").filter(|v| !v.is_null());
        let bad = |v: &Value| {
            ToolkitError::model_load(format!(
                "preprocessor_config.json: size {v} is not a size DETR's and YOLOS's image processors resize to (shortest_edge and longest_edge, max_height and max_width, or height and width)"
            ))
        };
        let resize = match size {
            None => Size::ShortestLongest {
                shortest: 800,
                longest: 1333,
                multiple_of,
            },
            Some(v) if v.is_number() => Size::ShortestLongest {
                shortest: v.as_u64().ok_or_else(|| bad(v))? as usize,
                longest: cfg.get("max_size").and_then(Value::as_u64).unwrap_or(1333) as usize,
                multiple_of,
            },
            Some(v) => match (
                (dim(v, "shortest_edge"), dim(v, "longest_edge")),
                (dim(v, "max_height"), dim(v, "max_width")),
                (dim(v, "height"), dim(v, "width")),
            ) {
                ((Some(shortest), Some(longest)), _, _) => Size::ShortestLongest {
                    shortest,
                    longest,
                    multiple_of,
                },
                (_, (Some(max_height), Some(max_width)), _) => Size::MaxHeightWidth {
                    max_height,
                    max_width,
                },
                (_, _, (Some(height), Some(width))) => Size::Exact { height, width },
                _ => return Err(bad(v)),
            },
        };
        let zero = match resize {
            Size::ShortestLongest {
                shortest, longest, ..
            } => shortest == 0 || longest == 0,
            Size::MaxHeightWidth {
                max_height,
                max_width,
            } => max_height == 0 || max_width == 0,
            Size::Exact { height, width } => height == 0 || width == 0,
            Size::ShortestEdge(s) => s == 0,
        };
        if zero {
            return Err(ToolkitError::model_load(format!(
                "preprocessor_config.json: size {} has a zero side",
                size.unwrap_or(&Value::Null)
            )));
        }
        let filter = match cfg.get("resample").and_then(Value::as_i64) {
            Some(n) => Filter::from_pil(n)?,
            None => Filter::Bilinear,
        };
        let rescale = flag("do_rescale", true).then(|| {
            cfg.get("rescale_factor")
                .and_then(Value::as_f64)
                .unwrap_or(1.0 / 255.0)
        });
        let normalize = if flag("do_normalize", true) {
            Some((
                triple(cfg.get("image_mean"), [0.485, 0.456, 0.406], "image_mean")?,
                triple(cfg.get("image_std"), [0.229, 0.224, 0.225], "image_std")?,
            ))
        } else {
            None
        };
        let pad = match cfg.get("pad_size").filter(|v| !v.is_null()) {
            Some(v) if flag("do_pad", true) => match (dim(v, "height"), dim(v, "width")) {
                (Some(h), Some(w)) => Some((h, w)),
                _ => {
                    return Err(ToolkitError::model_load(format!(
                        "preprocessor_config.json: pad_size {v} must be a height and width"
                    )))
                }
            },
            _ => None,
        };
        Ok(Self {
            resize: flag("do_resize", true).then_some(resize),
            filter,
            center_crop: None,
            rescale,
            normalize,
            pad,
        })
    }

    /// Reads `preprocessor_config.json` from a model directory.
    pub fn load(dir: &Path) -> Result<Self, ToolkitError> {
        let path = dir.join("preprocessor_config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ToolkitError::model_load_with(format!("cannot read {}", path.display()), e)
        })?;
        let cfg: Value = serde_json::from_str(&text).map_err(|e| {
            ToolkitError::model_load(format!("{}: not valid JSON: {e}", path.display()))
        })?;
        Self::from_config(&cfg)
    }

    /// The size of an image after resizing.
    fn resized_size(&self, width: usize, height: usize) -> Option<(usize, usize)> {
        match self.resize? {
            Size::Exact { height, width } => Some((width, height)),
            Size::ShortestEdge(s) => {
                let (short, long) = if width <= height {
                    (width, height)
                } else {
                    (height, width)
                };
                let new_long = (s as f64 * long as f64 / short.max(1) as f64) as usize;
                Some(if width <= height {
                    (s, new_long)
                } else {
                    (new_long, s)
                })
            }
            Size::ShortestLongest {
                shortest,
                longest,
                multiple_of,
            } => {
                let (h, w) = shortest_longest(height, width, shortest, longest, multiple_of);
                Some((w, h))
            }
            Size::MaxHeightWidth {
                max_height,
                max_width,
            } => {
                // Python floats: min(max_height / height, max_width / width), int() truncates
                let (h, w) = (height as f64, width as f64);
                let scale = (max_height as f64 / h).min(max_width as f64 / w);
                Some(((w * scale) as usize, (h * scale) as usize))
            }
        }
    }

    /// The `(width, height)` of every preprocessed image, when it does not depend on the input
    /// (an exact resize, or a center crop): what a model with a fixed input size needs.
    pub fn output_size(&self) -> Option<(usize, usize)> {
        match (self.center_crop, self.resize) {
            (Some((h, w)), _) => Some((w, h)),
            (None, Some(Size::Exact { height, width })) => Some((width, height)),
            _ => None,
        }
    }

    /// Preprocesses one RGB image. The work it implies is bounded before it is done: an image
    /// whose resized size (a shortest-edge resize keeps the aspect ratio) or resampling tables
    /// would exceed `max_pixels` is refused.
    pub fn preprocess(&self, img: &Image8, max_pixels: u64) -> Result<PixelValues, ToolkitError> {
        let too_large = |what: &str| {
            ToolkitError::InputTooLong(format!(
                "the {}x{} image {what} more than {max_pixels} pixels (HF_MAX_IMAGE_PIXELS); send an image of a less extreme shape",
                img.width, img.height
            ))
        };
        let resized = self.resized_size(img.width, img.height);
        if let Some((w, h)) = resized {
            if w == 0 || h == 0 {
                return Err(ToolkitError::Validation(format!(
                    "the {}x{} image would be resized to {w}x{h} pixels by the model's image processor; send an image of a less extreme shape",
                    img.width, img.height
                )));
            }
            if (w as u64).saturating_mul(h as u64) > max_pixels {
                return Err(too_large("would be resized to"));
            }
            let weights = super::resample::weight_count(img.width, w, self.filter)
                .saturating_add(super::resample::weight_count(img.height, h, self.filter));
            if weights as u64 > max_pixels {
                return Err(too_large("would need resampling tables of"));
            }
        }
        let img = match resized {
            Some((w, h)) => resize(img, w, h, self.filter),
            None => img.clone(),
        };
        let img = match self.center_crop {
            Some((h, w)) => center_crop(&img, w, h),
            None => img,
        };
        let (width, height) = (img.width, img.height);
        let plane = width * height;
        let mut data = vec![0f32; 3 * plane];
        for (i, px) in img.data.chunks_exact(3).enumerate() {
            for (c, &v) in px.iter().enumerate() {
                let mut x = match self.rescale {
                    // numpy: uint8 → float64, times the factor, then float32
                    Some(f) => (f64::from(v) * f) as f32,
                    None => f32::from(v),
                };
                if let Some((mean, std)) = &self.normalize {
                    x = (x - mean[c]) / std[c];
                }
                data[c * plane + i] = x;
            }
        }
        Ok(PixelValues {
            height,
            width,
            data,
        })
    }
}

impl ImageProcessor {
    /// DETR's and YOLOS's padding of a preprocessed image: with a `pad_size`, zeros at its bottom
    /// and right up to that size (an image larger than it is refused, as numpy's `pad` refuses a
    /// negative width). Returns the image the model sees and the `(height, width)` of its
    /// top-left region that is the picture (DETR's `pixel_mask`); without a `pad_size` the image
    /// is its own batch's largest and stays as it is.
    pub fn pad(&self, image: PixelValues) -> Result<(PixelValues, (usize, usize)), ToolkitError> {
        let valid = (image.height, image.width);
        let Some((height, width)) = self.pad else {
            return Ok((image, valid));
        };
        if image.height > height || image.width > width {
            return Err(ToolkitError::Validation(format!(
                "the image is {}x{} after resizing, larger than the model's pad_size {width}x{height}",
                image.width, image.height
            )));
        }
        let mut data = vec![0f32; 3 * height * width];
        for c in 0..3 {
            for y in 0..image.height {
                let src = (c * image.height + y) * image.width;
                let dst = (c * height + y) * width;
                data[dst..dst + image.width].copy_from_slice(&image.data[src..src + image.width]);
            }
        }
        Ok((
            PixelValues {
                height,
                width,
                data,
            },
            valid,
        ))
    }
}

/// Whether `preprocessor_config.json` is DETR's or YOLOS's image processor (or an older
/// checkpoint's feature extractor of theirs), and then the multiple their resize rounds sides
/// down to (16 for YOLOS, 1 for DETR).
fn detection_processor(cfg: &Value) -> Option<usize> {
    let name = match cfg.get("image_processor_type").and_then(Value::as_str) {
        Some(t) => t.strip_suffix("Fast").unwrap_or(t).to_owned(),
        None => cfg
            .get("feature_extractor_type")
            .and_then(Value::as_str)?
            .replace("FeatureExtractor", "ImageProcessor"),
    };
    match name.as_str() {
        "DetrImageProcessor" => Some(1),
        "YolosImageProcessor" => Some(16),
        _ => None,
    }
}

/// transformers' `get_size_with_aspect_ratio` (DETR's, and YOLOS's with `mod_size`): the
/// `(height, width)` an image is resized to, in the same float64 arithmetic (Python's `round`
/// rounds half to even, `int` truncates).
fn shortest_longest(
    height: usize,
    width: usize,
    shortest: usize,
    longest: usize,
    multiple_of: usize,
) -> (usize, usize) {
    let (h, w) = (height as f64, width as f64);
    let (min_o, max_o) = (h.min(w), h.max(w));
    let mut size = shortest;
    let mut raw = None;
    if max_o / min_o * shortest as f64 > longest as f64 {
        let r = longest as f64 * min_o / max_o;
        size = r.round_ties_even() as usize;
        raw = Some(r);
    }
    let scaled = |num: f64, den: f64| match raw {
        Some(r) => (r * num / den) as usize,
        None => (size as f64 * num / den) as usize,
    };
    let (oh, ow) = if width < height {
        (scaled(h, w), size)
    } else if (height <= width && height == size) || (width <= height && width == size) {
        (height, width)
    } else {
        (size, scaled(w, h))
    };
    let m = multiple_of.max(1);
    (oh - oh % m, ow - ow % m)
}

/// transformers' `center_crop`: the centre `width × height` window (`top = (h - crop_h) // 2`),
/// padded with zeros where the image is smaller.
fn center_crop(img: &Image8, width: usize, height: usize) -> Image8 {
    let c = img.channels;
    let top = (img.height as i64 - height as i64).div_euclid(2);
    let left = (img.width as i64 - width as i64).div_euclid(2);
    let mut out = vec![0u8; width * height * c];
    for y in 0..height {
        let sy = y as i64 + top;
        if sy < 0 || sy >= img.height as i64 {
            continue;
        }
        for x in 0..width {
            let sx = x as i64 + left;
            if sx < 0 || sx >= img.width as i64 {
                continue;
            }
            let s = (sy as usize * img.width + sx as usize) * c;
            out[(y * width + x) * c..(y * width + x + 1) * c].copy_from_slice(&img.data[s..s + c]);
        }
    }
    Image8 {
        width,
        height,
        channels: c,
        data: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vit_settings_rescale_then_normalize_channels_first() {
        let p = ImageProcessor::from_config(&serde_json::json!({
            "do_resize": true, "size": {"height": 2, "width": 2}, "resample": 2,
            "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
            "rescale_factor": 0.00392156862745098
        }))
        .unwrap();
        let img = Image8 {
            width: 2,
            height: 2,
            channels: 3,
            data: vec![0, 255, 51, 255, 0, 51, 0, 0, 0, 255, 255, 255],
        };
        let px = p.preprocess(&img, 1000).unwrap();
        assert_eq!((px.width, px.height), (2, 2));
        // red plane: 0, 255, 0, 255 -> -1, 1, -1, 1
        assert_eq!(&px.data[0..4], &[-1.0, 1.0, -1.0, 1.0]);
        // blue plane holds 51 -> 0.2 -> -0.6
        assert!((px.data[8] + 0.6).abs() < 1e-6, "{}", px.data[8]);
    }

    #[test]
    fn shortest_edge_keeps_the_aspect_ratio_and_crops_the_centre() {
        let p = ImageProcessor::from_config(&serde_json::json!({
            "size": {"shortest_edge": 4}, "do_center_crop": true,
            "crop_size": {"height": 4, "width": 4}, "do_normalize": false, "do_rescale": false
        }))
        .unwrap();
        assert_eq!(p.resized_size(10, 5), Some((8, 4)));
        assert_eq!(p.resized_size(5, 10), Some((4, 8)));
        let img = Image8 {
            width: 10,
            height: 5,
            channels: 3,
            data: vec![9; 150],
        };
        let px = p.preprocess(&img, 1000).unwrap();
        assert_eq!((px.width, px.height, px.data.len()), (4, 4, 48));
        assert!(px.data.iter().all(|&v| v == 9.0));
        assert_eq!(p.output_size(), Some((4, 4)));
    }

    #[test]
    fn shortest_and_longest_edges_follow_detr_and_yolos() {
        // YOLOS's processor: a 64x48 image -> 42x32 -> multiples of 16: 32x32
        let yolos = ImageProcessor::from_config(&serde_json::json!({
            "image_processor_type": "YolosImageProcessor",
            "size": {"shortest_edge": 32, "longest_edge": 64}
        }))
        .unwrap();
        assert_eq!(yolos.resized_size(64, 48), Some((32, 32)));
        // DETR's: no rounding to 16
        let detr = ImageProcessor::from_config(&serde_json::json!({
            "size": {"shortest_edge": 800, "longest_edge": 1333}
        }))
        .unwrap();
        assert_eq!(detr.resized_size(640, 480), Some((1066, 800)));
        // the longest edge caps a long image: 2000x500 -> raw 333.25 -> 333 high, 1333 wide
        assert_eq!(detr.resized_size(2000, 500), Some((1333, 333)));
        assert_eq!(detr.resized_size(800, 800), Some((800, 800)));
        // an image that would shrink to nothing is refused, not resized
        let thin = Image8 {
            width: 1000,
            height: 10,
            channels: 3,
            data: vec![0; 30_000],
        };
        let e = yolos.preprocess(&thin, 1_000_000).unwrap_err();
        assert_eq!(e.status(), 400, "{e}");
    }

    #[test]
    fn detr_and_yolos_processors_read_their_own_sizes_and_pad() {
        // sizes from transformers 4.51.3's DetrImageProcessor on a 64x48 image
        let detr = |cfg: serde_json::Value| {
            let mut cfg = cfg;
            cfg["image_processor_type"] = "DetrImageProcessor".into();
            ImageProcessor::from_config(&cfg).unwrap()
        };
        // an older checkpoint's bare size: the longest edge is max_size, 1333 unless given
        let p = detr(serde_json::json!({"size": 800}));
        assert_eq!(p.resized_size(64, 48), Some((1066, 800)));
        let p = detr(serde_json::json!({"size": 800, "max_size": 1000}));
        assert_eq!(p.resized_size(64, 48), Some((1000, 750)));
        // no size: 800 / 1333; ImageNet's mean and std; no crop, no pad
        let p = detr(serde_json::json!({}));
        assert_eq!(p.resized_size(64, 48), Some((1066, 800)));
        assert_eq!(
            p.normalize,
            Some(([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]))
        );
        assert_eq!((p.center_crop, p.pad), (None, None));
        // facebook/detr-resnet-50's file: a feature extractor
        let p = ImageProcessor::from_config(&serde_json::json!({
            "feature_extractor_type": "DetrFeatureExtractor", "size": 800, "max_size": 1333
        }))
        .unwrap();
        assert_eq!(p.resized_size(64, 48), Some((1066, 800)));
        // YOLOS's older files too, to multiples of 16
        let p = ImageProcessor::from_config(&serde_json::json!({
            "feature_extractor_type": "YolosFeatureExtractor", "size": 512, "max_size": 864
        }))
        .unwrap();
        assert_eq!(p.resized_size(64, 48), Some((672, 512)));
        // the fine-tuning guide's max height and width, and its pad_size
        let p = detr(serde_json::json!({
            "size": {"max_height": 40, "max_width": 40}, "pad_size": {"height": 40, "width": 48}
        }));
        assert_eq!(p.resized_size(64, 48), Some((40, 30)));
        assert_eq!(p.resized_size(10, 100), Some((4, 40)));
        assert_eq!(p.pad, Some((40, 48)));
        let img = Image8 {
            width: 64,
            height: 48,
            channels: 3,
            data: vec![255; 64 * 48 * 3],
        };
        let px = p.preprocess(&img, 1_000_000).unwrap();
        let (padded, valid) = p.pad(px).unwrap();
        assert_eq!((padded.width, padded.height, valid), (48, 40, (30, 40)));
        // white, normalized, inside; zeros on the padding (bottom rows, right columns)
        let red = (1.0 - 0.485) / 0.229;
        let at = |c: usize, y: usize, x: usize| padded.data[(c * 40 + y) * 48 + x];
        assert!((at(0, 29, 39) - red).abs() < 1e-5);
        assert_eq!((at(0, 30, 0), at(0, 0, 40), at(2, 39, 47)), (0.0, 0.0, 0.0));
        // an image past the pad_size (no resize) is refused, as numpy's pad refuses it
        let p =
            detr(serde_json::json!({"do_resize": false, "pad_size": {"height": 40, "width": 48}}));
        let px = p.preprocess(&img, 1_000_000).unwrap();
        assert_eq!(p.pad(px).unwrap_err().status(), 400);
        // without a pad_size, or with do_pad false, nothing is padded
        let p = detr(serde_json::json!({"do_pad": false, "pad_size": {"height": 40, "width": 48}}));
        assert_eq!(p.pad, None);
        // sizes these processors cannot resize to are load errors
        for size in [
            serde_json::json!({"shortest_edge": 32}),
            serde_json::json!({"max_height": 0, "max_width": 4}),
        ] {
            let e = ImageProcessor::from_config(
                &serde_json::json!({"image_processor_type": "DetrImageProcessor", "size": size}),
            )
            .unwrap_err();
            assert_eq!(e.status(), 500, "{e}");
        }
    }

    #[test]
    fn extreme_shapes_are_refused_before_their_buffers_are_made() {
        // a shortest-edge resize of a 1-pixel-high image keeps its aspect ratio: refused
        let p = ImageProcessor::from_config(&serde_json::json!({"size": {"shortest_edge": 224}}))
            .unwrap();
        let thin = Image8 {
            width: 100_000,
            height: 1,
            channels: 3,
            data: vec![0; 300_000],
        };
        let e = p.preprocess(&thin, 1_000_000).unwrap_err();
        assert_eq!(e.status(), 400, "{e}");
        // an exact resize of a very wide image: its resampling tables are bounded too
        let p =
            ImageProcessor::from_config(&serde_json::json!({"size": {"height": 4, "width": 4}}))
                .unwrap();
        let e = p.preprocess(&thin, 100_000).unwrap_err();
        assert!(e.to_string().contains("resampling tables"), "{e}");
        assert!(p.preprocess(&thin, 10_000_000).is_ok());
        // a zero size in the configuration is a load error
        for size in [
            serde_json::json!({"height": 0, "width": 4}),
            serde_json::json!(0),
        ] {
            let e = ImageProcessor::from_config(&serde_json::json!({"size": size})).unwrap_err();
            assert_eq!(e.status(), 500, "{e}");
        }
    }
}
