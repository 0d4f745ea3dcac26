//! Image resizing exactly as Pillow's `Image.resize` computes it for 8-bit images
//! (`libImaging/Resample.c`): separable convolution with the filter's support widened by the
//! scale when downscaling (antialiasing), coefficients normalised per output pixel and turned
//! into 22-bit fixed point, a horizontal pass over the rows the vertical pass needs, then the
//! vertical pass (or, as Pillow 13 does when the height shrinks by more than twice as many
//! pixels as the width, the vertical pass first), each rounding and clipping to 8 bits. transformers' image processors resize
//! through Pillow, so this is what the toolkit's answers were computed from.

use crate::error::ToolkitError;

/// A resampling filter, numbered as Pillow numbers them (`resample` in
/// `preprocessor_config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// `Image.NEAREST` (0).
    Nearest,
    /// `Image.LANCZOS` (1).
    Lanczos,
    /// `Image.BILINEAR` (2).
    Bilinear,
    /// `Image.BICUBIC` (3).
    Bicubic,
    /// `Image.BOX` (4).
    Box,
    /// `Image.HAMMING` (5).
    Hamming,
}

impl Filter {
    /// The filter of Pillow's number.
    pub fn from_pil(n: i64) -> Result<Self, ToolkitError> {
        Ok(match n {
            0 => Filter::Nearest,
            1 => Filter::Lanczos,
            2 => Filter::Bilinear,
            3 => Filter::Bicubic,
            4 => Filter::Box,
            5 => Filter::Hamming,
            other => {
                return Err(ToolkitError::model_load(format!(
                    "preprocessor_config.json: resample {other} is not a Pillow filter (0-5)"
                )))
            }
        })
    }

    fn support(self) -> f64 {
        match self {
            Filter::Nearest | Filter::Box => 0.5,
            Filter::Bilinear | Filter::Hamming => 1.0,
            Filter::Bicubic => 2.0,
            Filter::Lanczos => 3.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        match self {
            Filter::Nearest | Filter::Box => {
                if x > -0.5 && x <= 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Filter::Bilinear => {
                let x = x.abs();
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Filter::Hamming => {
                let x = x.abs();
                if x == 0.0 {
                    1.0
                } else if x >= 1.0 {
                    0.0
                } else {
                    let x = x * std::f64::consts::PI;
                    x.sin() / x * (0.54 + 0.46 * x.cos())
                }
            }
            Filter::Bicubic => {
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Filter::Lanczos => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Per output pixel: the first input pixel, how many, and their fixed-point weights.
struct Coeffs {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
}

/// How many fixed-point weights resizing one axis from `in_size` to `out_size` computes (Pillow's
/// table: a window per output pixel, as wide as the filter's support times the scale): callers
/// bound it before resizing images of extreme aspect ratios.
pub fn weight_count(in_size: usize, out_size: usize, filter: Filter) -> usize {
    if out_size == 0 || filter == Filter::Nearest {
        return 0;
    }
    let scale = (in_size as f64 / out_size as f64).max(1.0);
    let ksize = (filter.support() * scale).ceil() as usize * 2 + 1;
    out_size.saturating_mul(ksize)
}

fn coefficients(in_size: usize, out_size: usize, filter: Filter) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // Pillow truncates toward zero after adding 0.5, then clamps
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin).min(ksize);
        let mut ww = 0.0;
        for (x, w) in k.iter_mut().enumerate().take(n) {
            *w = filter.weight((x as f64 + xmin as f64 - center + 0.5) * ss);
            ww += *w;
        }
        let row = &mut weights[xx * ksize..(xx + 1) * ksize];
        for (x, slot) in row.iter_mut().enumerate().take(n) {
            let w = if ww != 0.0 { k[x] / ww } else { k[x] };
            let f = w * f64::from(1u32 << PRECISION_BITS);
            *slot = if w < 0.0 {
                (-0.5 + f) as i32
            } else {
                (0.5 + f) as i32
            };
        }
        bounds.push((xmin, n));
    }
    Coeffs {
        ksize,
        bounds,
        weights,
    }
}

fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// An 8-bit image with `channels` interleaved channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image8 {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Channels per pixel.
    pub channels: usize,
    /// Row-major pixels.
    pub data: Vec<u8>,
}

/// Resizes `img` to `width × height` with `filter`, as Pillow's `Image.resize(size, filter)`
/// does (no `box`, no `reducing_gap`).
pub fn resize(img: &Image8, width: usize, height: usize, filter: Filter) -> Image8 {
    if (img.width, img.height) == (width, height) || img.width == 0 || img.height == 0 {
        return img.clone();
    }
    if filter == Filter::Nearest {
        return nearest(img, width, height);
    }
    let need_h = width != img.width;
    let need_v = height != img.height;
    let horiz = coefficients(img.width, width, filter);
    let vert = coefficients(img.height, height, filter);
    // Pillow 13 runs the vertical pass first when the height shrinks by more than twice as
    // many pixels as the width (`ImagingResampleInner`'s horizontal_first); the 8-bit rounding
    // between the passes makes the order visible
    let (dw, dh) = (
        img.width as i64 - width as i64,
        img.height as i64 - height as i64,
    );
    if dh > 0 && dh > dw * 2 {
        let temp = vertical_pass(img, &vert, height, 0);
        return if need_h {
            horizontal_pass(&temp, &horiz, width, 0..height)
        } else {
            temp
        };
    }
    // the rows the vertical pass reads
    let first = vert.bounds.first().map_or(0, |b| b.0);
    let last = vert.bounds.last().map_or(0, |b| b.0 + b.1);
    let temp = if need_h {
        let rows = if need_v { first..last } else { 0..img.height };
        horizontal_pass(img, &horiz, width, rows)
    } else {
        img.clone()
    };
    if !need_v {
        return temp;
    }
    // rows of `temp` start at `first` when the horizontal pass ran
    let offset = if need_h { first } else { 0 };
    vertical_pass(&temp, &vert, height, offset)
}

/// Pillow's horizontal pass over `rows` of `img`, to `width` columns.
fn horizontal_pass(
    img: &Image8,
    horiz: &Coeffs,
    width: usize,
    rows: std::ops::Range<usize>,
) -> Image8 {
    let c = img.channels;
    let mut out = vec![0u8; rows.len() * width * c];
    for (oy, y) in rows.clone().enumerate() {
        let src = &img.data[y * img.width * c..(y + 1) * img.width * c];
        let dst = &mut out[oy * width * c..(oy + 1) * width * c];
        for xx in 0..width {
            let (xmin, n) = horiz.bounds[xx];
            let k = &horiz.weights[xx * horiz.ksize..xx * horiz.ksize + n];
            for ch in 0..c {
                let mut ss: i64 = 1 << (PRECISION_BITS - 1);
                for (x, &w) in k.iter().enumerate() {
                    ss += i64::from(src[(xmin + x) * c + ch]) * i64::from(w);
                }
                dst[xx * c + ch] = clip8(ss);
            }
        }
    }
    Image8 {
        width,
        height: rows.len(),
        channels: c,
        data: out,
    }
}

/// Pillow's vertical pass of `img` to `height` rows; `img`'s rows start at source row `offset`.
fn vertical_pass(img: &Image8, vert: &Coeffs, height: usize, offset: usize) -> Image8 {
    let c = img.channels;
    let width = img.width;
    let mut out = vec![0u8; width * height * c];
    for yy in 0..height {
        let (ymin, n) = vert.bounds[yy];
        let k = &vert.weights[yy * vert.ksize..yy * vert.ksize + n];
        let dst = &mut out[yy * width * c..(yy + 1) * width * c];
        for (i, d) in dst.iter_mut().enumerate() {
            let mut ss: i64 = 1 << (PRECISION_BITS - 1);
            for (y, &w) in k.iter().enumerate() {
                ss += i64::from(img.data[(ymin + y - offset) * width * c + i]) * i64::from(w);
            }
            *d = clip8(ss);
        }
    }
    Image8 {
        width,
        height,
        channels: c,
        data: out,
    }
}

/// Pillow's nearest-neighbour resize: the source pixel under each output pixel's centre.
fn nearest(img: &Image8, width: usize, height: usize) -> Image8 {
    let c = img.channels;
    let mut out = vec![0u8; width * height * c];
    let sx = img.width as f64 / width as f64;
    let sy = img.height as f64 / height as f64;
    for yy in 0..height {
        let y = (((yy as f64 + 0.5) * sy) as usize).min(img.height - 1);
        for xx in 0..width {
            let x = (((xx as f64 + 0.5) * sx) as usize).min(img.width - 1);
            let s = (y * img.width + x) * c;
            out[(yy * width + xx) * c..(yy * width + xx + 1) * c]
                .copy_from_slice(&img.data[s..s + c]);
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

    fn gradient(w: usize, h: usize) -> Image8 {
        let data = (0..w * h * 3)
            .map(|i| ((i * 37 + (i / 3) * 11) % 256) as u8)
            .collect();
        Image8 {
            width: w,
            height: h,
            channels: 3,
            data,
        }
    }

    #[test]
    fn same_size_is_a_copy_and_a_flat_image_stays_flat() {
        let g = gradient(7, 5);
        assert_eq!(resize(&g, 7, 5, Filter::Bilinear), g);
        let flat = Image8 {
            width: 9,
            height: 6,
            channels: 3,
            data: vec![200; 9 * 6 * 3],
        };
        for f in [
            Filter::Bilinear,
            Filter::Bicubic,
            Filter::Lanczos,
            Filter::Box,
        ] {
            for (w, h) in [(4, 3), (20, 13), (9, 2), (1, 1)] {
                let r = resize(&flat, w, h, f);
                assert_eq!((r.width, r.height), (w, h));
                assert!(r.data.iter().all(|&v| v == 200), "{f:?} {w}x{h}");
            }
        }
    }

    #[test]
    fn halving_with_bilinear_averages_pairs_as_pillow_does() {
        // a 4x1 row halved: Pillow's bilinear with support 2 gives weights 1/8, 3/8, 3/8, 1/8
        // around each output centre (clamped at the edges and renormalised)
        let img = Image8 {
            width: 4,
            height: 1,
            channels: 1,
            data: vec![0, 100, 200, 40],
        };
        let r = resize(&img, 2, 1, Filter::Bilinear);
        // out0: centre 1.0, inputs 0..3 weights (0.75, 0.75, 0.25)/1.75 -> 0*.4286+100*.4286+200*.1429
        // out1: centre 3.0, inputs 1..4 weights (0.25, 0.75, 0.75)/1.75
        let want0: f64 = (0.0 * 0.75 + 100.0 * 0.75 + 200.0 * 0.25) / 1.75;
        let want1: f64 = (100.0 * 0.25 + 200.0 * 0.75 + 40.0 * 0.75) / 1.75;
        assert_eq!(r.data, vec![want0.round() as u8, want1.round() as u8]);
    }

    #[test]
    fn a_height_shrinking_much_more_than_the_width_is_resampled_vertically_first() {
        // Pillow 13: Image.fromarray(gradient 12x20).resize((10, 8), Image.BICUBIC); the height
        // loses 12 pixels, more than twice the width's 2, so its vertical pass runs first (the
        // horizontal-first order differs from it in 48 of the 240 values)
        let r = resize(&gradient(12, 20), 10, 8, Filter::Bicubic);
        let want: Vec<u8> = vec![
            98, 134, 79, 143, 106, 149, 143, 104, 145, 145, 99, 143, 110, 131, 120, 135, 101, 134,
            105, 144, 107, 109, 144, 105, 109, 146, 100, 165, 109, 133, 135, 91, 126, 127, 134,
            143, 116, 132, 130, 104, 130, 116, 131, 151, 122, 91, 136, 93, 147, 128, 135, 144, 117,
            133, 144, 105, 131, 122, 135, 152, 104, 121, 135, 125, 151, 111, 124, 139, 111, 122,
            129, 108, 164, 119, 165, 136, 106, 124, 141, 126, 152, 128, 125, 140, 112, 123, 129,
            130, 167, 127, 115, 144, 95, 155, 117, 154, 147, 116, 151, 141, 108, 151, 124, 157,
            130, 124, 118, 144, 108, 156, 118, 102, 148, 117, 119, 142, 112, 174, 124, 89, 147, 98,
            140, 128, 113, 147, 123, 92, 134, 113, 154, 118, 101, 144, 128, 111, 147, 100, 127,
            129, 114, 107, 124, 93, 157, 113, 156, 125, 103, 119, 104, 138, 131, 113, 153, 114, 95,
            138, 108, 148, 128, 128, 113, 135, 95, 145, 107, 136, 144, 114, 154, 136, 96, 139, 116,
            149, 128, 120, 113, 140, 134, 146, 118, 151, 121, 132, 134, 119, 113, 141, 123, 162,
            142, 95, 135, 119, 132, 145, 116, 152, 122, 104, 135, 120, 139, 142, 124, 107, 144, 96,
            158, 107, 150, 122, 118, 158, 125, 98, 146, 125, 168, 128, 92, 126, 137, 135, 156, 110,
            145, 123, 119, 129, 126, 99, 165, 126, 169, 140, 92, 124,
        ];
        assert_eq!(r.data, want);
    }
}
