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
    /// MaskFormer's and Mask2Former's `{"shortest_edge", "longest_edge"}` with `size_divisor`:
    /// the shorter edge to `shortest` (the longer truncated), unless the longer then exceeds
    /// `longest` (then the longer to `longest`, the shorter truncated), each side then rounded
    /// up to a multiple of `divisor` (transformers' `get_maskformer_resize_output_image_size`).
    ShortestLongestDivisible {
        /// `shortest_edge`.
        shortest: usize,
        /// `longest_edge`.
        longest: usize,
        /// `size_divisor` (0: none).
        divisor: usize,
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

/// The transformers image processor class a `preprocessor_config.json` is read as, where its
/// defaults or its resize rule differ from `ViTImageProcessor`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProcessorKind {
    /// `ViTImageProcessor` and the classes that read as it does.
    Vit,
    /// `ConvNextImageProcessor` (ConvNeXt, ConvNeXt V2 and ResNet checkpoints): `crop_pct`.
    ConvNext,
    /// `MobileNetV1ImageProcessor`, `MobileNetV2ImageProcessor`: a shortest-edge resize and a
    /// centre crop by default.
    MobileNet,
    /// `CLIPImageProcessor`: as MobileNet's, 224 by default.
    Clip,
    /// `SiglipImageProcessor`: ViT's plain resize to 224x224, bicubic by default.
    Siglip,
    /// `YolosImageProcessor`: sides rounded down to multiples of 16.
    Yolos,
    /// `MaskFormerImageProcessor` / `Mask2FormerImageProcessor`: shortest and longest edges,
    /// sides rounded up to `size_divisor`.
    MaskFormer,
}

impl ProcessorKind {
    /// As `AutoImageProcessor` picks the class: `image_processor_type`, else
    /// `feature_extractor_type` with `FeatureExtractor` read as `ImageProcessor`, else the
    /// model's `model_type` (`config.json`); a fast class reads as its slow one.
    fn of(cfg: &Value, model_type: Option<&str>) -> Self {
        let named = match cfg.get("image_processor_type").and_then(Value::as_str) {
            Some(t) => Some(t.to_owned()),
            None => cfg
                .get("feature_extractor_type")
                .and_then(Value::as_str)
                .map(|t| t.replace("FeatureExtractor", "ImageProcessor")),
        };
        match named {
            Some(name) => match name.strip_suffix("Fast").unwrap_or(&name) {
                "ConvNextImageProcessor" => Self::ConvNext,
                "MobileNetV1ImageProcessor" | "MobileNetV2ImageProcessor" => Self::MobileNet,
                "CLIPImageProcessor" => Self::Clip,
                "SiglipImageProcessor" => Self::Siglip,
                "YolosImageProcessor" => Self::Yolos,
                "MaskFormerImageProcessor" | "Mask2FormerImageProcessor" => Self::MaskFormer,
                _ => Self::Vit,
            },
            None => match model_type {
                Some("convnext" | "convnextv2" | "resnet") => Self::ConvNext,
                Some("mobilenet_v1" | "mobilenet_v2") => Self::MobileNet,
                Some("clip") => Self::Clip,
                Some("siglip") => Self::Siglip,
                Some("yolos") => Self::Yolos,
                Some("maskformer" | "mask2former") => Self::MaskFormer,
                _ => Self::Vit,
            },
        }
    }

    /// `size` when the configuration leaves it out.
    fn default_size(self) -> Size {
        match self {
            Self::ConvNext => Size::ShortestEdge(384),
            Self::MobileNet => Size::ShortestEdge(256),
            Self::Clip => Size::ShortestEdge(224),
            Self::MaskFormer => Size::ShortestLongestDivisible {
                shortest: 800,
                longest: 1333,
                divisor: 32,
            },
            Self::Vit | Self::Siglip | Self::Yolos => Size::Exact {
                height: 224,
                width: 224,
            },
        }
    }

    /// Whether a bare number as `size` is the shortest edge (`get_size_dict(size,
    /// default_to_square=False)`) rather than a square.
    fn number_is_shortest_edge(self) -> bool {
        matches!(self, Self::ConvNext | Self::MobileNet | Self::Clip)
    }

    /// `do_center_crop`'s default (with a 224x224 `crop_size`).
    fn crops_by_default(self) -> bool {
        matches!(self, Self::MobileNet | Self::Clip)
    }

    /// `resample`'s default: bicubic for CLIP's and SigLIP's processors, bilinear for the others.
    fn default_filter(self) -> Filter {
        match self {
            Self::Clip | Self::Siglip => Filter::Bicubic,
            Self::Vit | Self::ConvNext | Self::MobileNet | Self::Yolos | Self::MaskFormer => {
                Filter::Bilinear
            }
        }
    }
}

/// `ConvNextImageProcessor.resize`: below 384 the shorter edge goes to
/// `int(shortest_edge / crop_pct)` (the aspect ratio kept) and the centre `shortest_edge` square is
/// cropped; from 384 up the image is resized to that square, not cropped. Returns the resize and
/// the crop as `(height, width)`.
pub(crate) fn convnext_resize(
    shortest_edge: usize,
    crop_pct: f64,
) -> Result<(Size, Option<(usize, usize)>), ToolkitError> {
    if shortest_edge >= 384 {
        return Ok((
            Size::Exact {
                height: shortest_edge,
                width: shortest_edge,
            },
            None,
        ));
    }
    // Python: int(shortest_edge / crop_pct), a float64 quotient truncated
    let edge = shortest_edge as f64 / crop_pct;
    if crop_pct.is_nan() || crop_pct <= 0.0 || !edge.is_finite() || edge < 1.0 {
        return Err(ToolkitError::model_load(format!(
            "preprocessor_config.json: crop_pct {crop_pct} resizes the shorter edge to {edge} pixels"
        )));
    }
    Ok((
        Size::ShortestEdge(edge as usize),
        Some((shortest_edge, shortest_edge)),
    ))
}

impl ImageProcessor {
    /// Reads `preprocessor_config.json` (the defaults of the transformers class it names: ViT's
    /// unless it names another; DETR's and YOLOS's read as `detection` does).
    pub fn from_config(cfg: &Value) -> Result<Self, ToolkitError> {
        Self::from_config_of(cfg, None)
    }

    /// Reads `preprocessor_config.json` of a model whose `config.json` has `model_type` (which
    /// picks the class when the file names none).
    pub fn from_config_of(cfg: &Value, model_type: Option<&str>) -> Result<Self, ToolkitError> {
        let kind = ProcessorKind::of(cfg, model_type);
        let flag = |k: &str, default: bool| cfg.get(k).and_then(Value::as_bool).unwrap_or(default);
        if let Some(multiple_of) = detection_processor(cfg) {
            return Self::detection(cfg, multiple_of);
        }
        if kind == ProcessorKind::MaskFormer {
            return Self::maskformer(cfg);
        }
        let size = match cfg.get("size").filter(|v| !v.is_null()) {
            Some(v) => match (size_of(v, "size")?, v.as_u64()) {
                (_, Some(n)) if kind.number_is_shortest_edge() => Size::ShortestEdge(n as usize),
                // YOLOS rounds its sides down to multiples of 16 (its get_size_with_aspect_ratio's
                // mod_size); DETR does not
                (
                    Size::ShortestLongest {
                        shortest, longest, ..
                    },
                    _,
                ) if kind == ProcessorKind::Yolos => Size::ShortestLongest {
                    shortest,
                    longest,
                    multiple_of: 16,
                },
                (other, _) => other,
            },
            None => kind.default_size(),
        };
        let (resize, center_crop) = if kind == ProcessorKind::ConvNext {
            // ConvNextImageProcessor has no do_center_crop: its resize crops (or not)
            if flag("do_resize", true) {
                let Size::ShortestEdge(edge) = size else {
                    return Err(ToolkitError::model_load(format!(
                        "preprocessor_config.json: ConvNextImageProcessor's size must be {{\"shortest_edge\": n}}, got {}",
                        cfg.get("size").unwrap_or(&Value::Null)
                    )));
                };
                let crop_pct = match cfg.get("crop_pct").filter(|v| !v.is_null()) {
                    None => 224.0 / 256.0,
                    Some(v) => v.as_f64().ok_or_else(|| {
                        ToolkitError::model_load(format!(
                            "preprocessor_config.json: crop_pct must be a number, got {v}"
                        ))
                    })?,
                };
                let (resize, crop) = convnext_resize(edge, crop_pct)?;
                (Some(resize), crop)
            } else {
                (None, None)
            }
        } else {
            let resize = flag("do_resize", true).then_some(size);
            let center_crop = if flag("do_center_crop", kind.crops_by_default()) {
                let crop_size = match cfg.get("crop_size").filter(|v| !v.is_null()) {
                    Some(v) => size_of(v, "crop_size")?,
                    None if kind.crops_by_default() => Size::Exact {
                        height: 224,
                        width: 224,
                    },
                    None => size_of(&Value::Null, "crop_size")?,
                };
                match crop_size {
                    Size::Exact { height, width } => Some((height, width)),
                    Size::ShortestEdge(s) => Some((s, s)),
                    Size::ShortestLongest { .. }
                    | Size::MaxHeightWidth { .. }
                    | Size::ShortestLongestDivisible { .. } => {
                        return Err(ToolkitError::model_load(
                            "preprocessor_config.json: crop_size must be a height and width",
                        ))
                    }
                }
            } else {
                None
            };
            (resize, center_crop)
        };
        let filter = match cfg.get("resample").and_then(Value::as_i64) {
            Some(n) => Filter::from_pil(n)?,
            None => kind.default_filter(),
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
            Size::ShortestLongestDivisible { .. } => false,
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

    /// `MaskFormerImageProcessor` (and Mask2Former's): `size` `{"shortest_edge", "longest_edge"}`
    /// (800 and 1333 unless given; a bare number with `max_size`, as older files have it),
    /// `size_divisor` (32), bilinear, ImageNet's mean and std, no crop. It pads a batch to its
    /// largest image, and the pipeline's batches are of one image: no padding.
    fn maskformer(cfg: &Value) -> Result<Self, ToolkitError> {
        let flag = |k: &str, default: bool| cfg.get(k).and_then(Value::as_bool).unwrap_or(default);
        let dim = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).map(|n| n as usize);
        let divisor = cfg
            .get("size_divisor")
            .and_then(Value::as_u64)
            .unwrap_or(32) as usize;
        let size = cfg.get("size").filter(|v| !v.is_null());
        let (shortest, longest) = match size {
            None => (800, 1333),
            Some(v) => match (v.as_u64(), dim(v, "shortest_edge"), dim(v, "longest_edge")) {
                (Some(n), _, _) => (
                    n as usize,
                    cfg.get("max_size").and_then(Value::as_u64).unwrap_or(1333) as usize,
                ),
                (None, Some(s), Some(l)) => (s, l),
                _ => {
                    return Err(ToolkitError::model_load(format!(
                        "preprocessor_config.json: size {v} is not a size MaskFormer's image processor resizes to here (shortest_edge and longest_edge)"
                    )))
                }
            },
        };
        if shortest == 0 || longest <= shortest {
            return Err(ToolkitError::model_load(format!(
                "preprocessor_config.json: shortest_edge {shortest} and longest_edge {longest}: the longest edge must exceed the shortest, which must not be zero"
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
        Ok(Self {
            resize: flag("do_resize", true).then_some(Size::ShortestLongestDivisible {
                shortest,
                longest,
                divisor,
            }),
            filter,
            center_crop: None,
            rescale,
            normalize,
            pad: None,
        })
    }

    /// Reads `preprocessor_config.json` from a model directory (and `config.json`'s
    /// `model_type`, which picks the processor class when that file names none).
    pub fn load(dir: &Path) -> Result<Self, ToolkitError> {
        let path = dir.join("preprocessor_config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ToolkitError::model_load_with(format!("cannot read {}", path.display()), e)
        })?;
        let cfg: Value = serde_json::from_str(&text).map_err(|e| {
            ToolkitError::model_load(format!("{}: not valid JSON: {e}", path.display()))
        })?;
        let model_type = std::fs::read_to_string(dir.join("config.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|c| {
                c.get("model_type")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
        Self::from_config_of(&cfg, model_type.as_deref())
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
            Size::ShortestLongestDivisible {
                shortest,
                longest,
                divisor,
            } => {
                // transformers' get_resize_output_image_size (default_to_square=False, max_size):
                // Python int() of float64 quotients
                let (short, long) = if width <= height {
                    (width, height)
                } else {
                    (height, width)
                };
                let mut new_short = shortest;
                let mut new_long = (shortest as f64 * long as f64 / short.max(1) as f64) as usize;
                if new_long > longest {
                    new_short = (longest as f64 * new_short as f64 / new_long as f64) as usize;
                    new_long = longest;
                }
                let (mut w, mut h) = if width <= height {
                    (new_short, new_long)
                } else {
                    (new_long, new_short)
                };
                if divisor > 0 {
                    w = w.div_ceil(divisor) * divisor;
                    h = h.div_ceil(divisor) * divisor;
                }
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
    fn maskformer_rounds_its_sides_up_to_the_size_divisor() {
        let p = ImageProcessor::from_config(&serde_json::json!({
            "image_processor_type": "MaskFormerImageProcessor",
            "size": {"shortest_edge": 32, "longest_edge": 64},
            "size_divisor": 32,
        }))
        .unwrap();
        // 48 -> 32, 64 -> int(32 * 64 / 48) = 42, rounded up to 64
        assert_eq!(p.resized_size(64, 48), Some((64, 32)));
        // 40 -> 32 makes 90 -> 72 > 64: the long side to 64, the short int(64 * 32 / 72) = 28
        assert_eq!(p.resized_size(40, 90), Some((32, 64)));
        assert_eq!(p.pad, None);
        // its defaults: 800/1333, divisor 32, ImageNet's mean
        let d = ImageProcessor::from_config_of(&serde_json::json!({}), Some("maskformer")).unwrap();
        assert_eq!(d.resized_size(640, 480), Some((1088, 800)));
        assert_eq!(d.normalize.unwrap().0, [0.485, 0.456, 0.406]);
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

    #[test]
    fn convnext_crops_below_384_by_crop_pct_and_warps_from_384() {
        // sizes and pixels from transformers 4.51.3's ConvNextImageProcessor
        let convnext = |size: Value, crop_pct: Value| {
            ImageProcessor::from_config(&serde_json::json!({
                "image_processor_type": "ConvNextImageProcessor",
                "size": size, "crop_pct": crop_pct
            }))
            .unwrap()
        };
        // 224 / 0.875 = 256: 640x480 -> 341x256, then the centre 224 square
        let p = convnext(
            serde_json::json!({"shortest_edge": 224}),
            serde_json::json!(0.875),
        );
        assert_eq!(p.resized_size(640, 480), Some((341, 256)));
        assert_eq!(p.center_crop, Some((224, 224)));
        assert_eq!(p.output_size(), Some((224, 224)));
        // int(32 / 0.875) = int(36.57...) = 36; int(32 / 0.9) = 35: 3x200 -> 35x2333
        let p = convnext(
            serde_json::json!({"shortest_edge": 32}),
            serde_json::json!(0.875),
        );
        assert_eq!(p.resized_size(64, 48), Some((48, 36)));
        let p = convnext(
            serde_json::json!({"shortest_edge": 32}),
            serde_json::json!(0.9),
        );
        assert_eq!(p.resized_size(3, 200), Some((35, 2333)));
        assert_eq!(p.center_crop, Some((32, 32)));
        // crop_pct left out (or null) is 224 / 256
        let p = convnext(serde_json::json!({"shortest_edge": 224}), Value::Null);
        assert_eq!(p.resized_size(500, 375), Some((341, 256)));
        // from 384 up: a plain resize to the square, no crop
        let p = convnext(
            serde_json::json!({"shortest_edge": 384}),
            serde_json::json!(0.875),
        );
        assert_eq!(
            p.resize,
            Some(Size::Exact {
                height: 384,
                width: 384
            })
        );
        assert_eq!((p.center_crop, p.output_size()), (None, Some((384, 384))));
        // microsoft/resnet-50's file: a feature extractor type and a bare number as the size
        let p = ImageProcessor::from_config(&serde_json::json!({
            "feature_extractor_type": "ConvNextFeatureExtractor", "size": 224, "crop_pct": 0.875,
            "resample": 3, "do_center_crop": false
        }))
        .unwrap();
        assert_eq!(p.resize, Some(Size::ShortestEdge(256)));
        assert_eq!(
            (p.center_crop, p.filter),
            (Some((224, 224)), Filter::Bicubic)
        );
        // a height and width is not a size ConvNextImageProcessor takes; nor a zero crop_pct
        for (size, pct) in [
            (
                serde_json::json!({"height": 32, "width": 32}),
                serde_json::json!(0.875),
            ),
            (
                serde_json::json!({"shortest_edge": 32}),
                serde_json::json!(0),
            ),
        ] {
            let e = ImageProcessor::from_config(&serde_json::json!({
                "image_processor_type": "ConvNextImageProcessor", "size": size, "crop_pct": pct
            }))
            .unwrap_err();
            assert_eq!(e.status(), 500, "{e}");
        }
        // pixels: a 10x7 image, short side to int(4 / 0.5) = 8 (11x8, bicubic), the centre 4x4,
        // ImageNet's mean and std
        let p = ImageProcessor::from_config(&serde_json::json!({
            "image_processor_type": "ConvNextImageProcessor", "size": {"shortest_edge": 4},
            "crop_pct": 0.5, "resample": 3,
            "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]
        }))
        .unwrap();
        assert_eq!(p.resized_size(10, 7), Some((11, 8)));
        let mut data = Vec::new();
        for y in 0..7usize {
            for x in 0..10usize {
                for c in 0..3usize {
                    data.push(((x * 37 + y * 11 + c * 53) % 256) as u8);
                }
            }
        }
        let img = Image8 {
            width: 10,
            height: 7,
            channels: 3,
            data,
        };
        let px = p.preprocess(&img, 1000).unwrap();
        assert_eq!((px.width, px.height), (4, 4));
        let red_row0 = [
            -0.097_183_026_373_386_38,
            0.485_058_695_077_896_1,
            1.067_300_319_671_630_9,
            1.855_038_881_301_879_9,
        ];
        let blue_row3 = [
            -0.863_267_958_164_215_1,
            -1.647_581_696_510_315,
            -0.654_117_524_623_870_8,
            -0.113_812_558_352_947_24,
        ];
        for (got, want) in px.data[0..4].iter().zip(red_row0) {
            assert!((f64::from(*got) - want).abs() < 1e-6, "{got} vs {want}");
        }
        for (got, want) in px.data[32 + 12..32 + 16].iter().zip(blue_row3) {
            assert!((f64::from(*got) - want).abs() < 1e-6, "{got} vs {want}");
        }
    }

    #[test]
    fn mobilenet_defaults_and_the_model_type_fallback() {
        // no class named: config.json's model_type picks MobileNetV2ImageProcessor, whose bare
        // number is a shortest edge and which crops by default (AutoImageProcessor does the same)
        let cfg = serde_json::json!({"size": 40, "crop_size": 32});
        let p = ImageProcessor::from_config_of(&cfg, Some("mobilenet_v2")).unwrap();
        assert_eq!(p.resize, Some(Size::ShortestEdge(40)));
        assert_eq!(p.center_crop, Some((32, 32)));
        assert_eq!(p.resized_size(64, 48), Some((53, 40)));
        // read as ViT's: a square resize, no crop
        let p = ImageProcessor::from_config(&cfg).unwrap();
        assert_eq!(
            (p.resize, p.center_crop),
            (
                Some(Size::Exact {
                    height: 40,
                    width: 40
                }),
                None
            )
        );
        // MobileNetV2ImageProcessor's own defaults: shortest edge 256, a 224 crop
        let p = ImageProcessor::from_config(
            &serde_json::json!({"image_processor_type": "MobileNetV2ImageProcessor"}),
        )
        .unwrap();
        assert_eq!(
            (p.resize, p.center_crop),
            (Some(Size::ShortestEdge(256)), Some((224, 224)))
        );
    }

    #[test]
    fn siglip_defaults_are_a_bicubic_224_square_without_crop() {
        // SiglipImageProcessor(): size 224x224, BICUBIC, no centre crop; CLIP's is bicubic too
        for cfg in [
            serde_json::json!({"image_processor_type": "SiglipImageProcessor"}),
            serde_json::json!({}),
        ] {
            let p = ImageProcessor::from_config_of(&cfg, Some("siglip")).unwrap();
            assert_eq!(
                (p.resize, p.center_crop, p.filter),
                (
                    Some(Size::Exact {
                        height: 224,
                        width: 224
                    }),
                    None,
                    Filter::Bicubic
                )
            );
        }
        let p = ImageProcessor::from_config(&serde_json::json!({"resample": 2})).unwrap();
        assert_eq!(p.filter, Filter::Bilinear);
        let p = ImageProcessor::from_config_of(&serde_json::json!({}), Some("clip")).unwrap();
        assert_eq!(p.filter, Filter::Bicubic);
        let p = ImageProcessor::from_config(&serde_json::json!({})).unwrap();
        assert_eq!(p.filter, Filter::Bilinear);
    }
}
