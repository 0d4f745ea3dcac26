//! Image bodies to RGB pixels, as the toolkit gets them from Pillow: `Image.open` sniffs the
//! format from the bytes (whatever the `Content-Type` says), transformers' `load_image` applies
//! the EXIF orientation (`ImageOps.exif_transpose`) and converts to RGB (`convert("RGB")`: alpha
//! dropped, palettes and greyscale expanded). The pixel count is checked from the header, before
//! any pixel is decoded, so a small file that declares a huge image costs nothing.
//!
//! JPEG pixels come from libjpeg-turbo's decoder (through `mozjpeg`, whose decoder is
//! libjpeg-turbo's), as Pillow's do: the pure-Rust decoders differ from it by ±1-3 in a few
//! percent of the samples (their IDCT, upsampling and colour conversion round differently),
//! which moves a classifier's scores past 1e-4. Other formats decode exactly with `image`.

use std::io::Cursor;

use base64::Engine as _;
use image::{ImageDecoder, ImageReader};

use super::resample::Image8;
use crate::error::ToolkitError;

/// Pillow's own decompression-bomb limit (`Image.MAX_IMAGE_PIXELS`), the default of
/// `HF_MAX_IMAGE_PIXELS`.
pub const DEFAULT_MAX_PIXELS: u64 = 89_478_485;

/// The raw media types an image pipeline takes (defined with the codecs, so that a build without
/// the engine knows them too: [`crate::task::Task::raw_media_types`]).
pub use crate::codec::IMAGE_MEDIA_TYPES;

/// Decodes an image file into RGB pixels, refusing images over `max_pixels` before decoding.
pub fn decode_rgb(bytes: &[u8], max_pixels: u64) -> Result<Image8, ToolkitError> {
    if bytes.is_empty() {
        return Err(ToolkitError::Validation(
            "the image is empty; send the bytes of a PNG, JPEG, GIF, BMP, TIFF or WebP file".into(),
        ));
    }
    let bad = |e: &dyn std::fmt::Display| {
        ToolkitError::Validation(format!(
            "the body is not an image this server can read ({e}); send a PNG, JPEG, GIF, BMP, TIFF or WebP file"
        ))
    };
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(&e))?;
    let format = reader.format();
    if format.is_none() {
        return Err(bad(&"unknown format"));
    }
    let mut limits = image::Limits::default();
    // the decoder's own buffers are bounded too: 16 bytes a pixel covers 16-bit RGBA
    limits.max_alloc = Some(max_pixels.saturating_mul(16).max(1 << 20));
    let mut reader = reader;
    reader.limits(limits);
    let too_large = |w: u64, h: u64| {
        ToolkitError::InputTooLong(format!(
            "the image is {w}x{h} = {} pixels, more than the limit of {max_pixels} (HF_MAX_IMAGE_PIXELS); send a smaller image",
            w * h
        ))
    };
    let mut decoder = reader.into_decoder().map_err(|e| match e {
        // a decoder that sizes its buffers from the header refuses first
        image::ImageError::Limits(_) => ToolkitError::InputTooLong(format!(
            "the image is larger than the limit of {max_pixels} pixels (HF_MAX_IMAGE_PIXELS); send a smaller image"
        )),
        e => bad(&e),
    })?;
    let (w, h) = decoder.dimensions();
    let pixels = u64::from(w) * u64::from(h);
    if pixels == 0 {
        return Err(ToolkitError::Validation(format!(
            "the image is {w}x{h} pixels; send an image with at least one pixel"
        )));
    }
    if pixels > max_pixels {
        return Err(too_large(u64::from(w), u64::from(h)));
    }
    let orientation = decoder.orientation().map_err(|e| bad(&e))?;
    let rgb = if format == Some(image::ImageFormat::Jpeg) {
        drop(decoder);
        let (width, height) = (w as usize, h as usize);
        let data = decode_jpeg(bytes, width, height)?;
        image::RgbImage::from_raw(w, h, data)
            .ok_or_else(|| bad(&"the JPEG decoder returned a short image"))?
    } else {
        to_rgb8(&image::DynamicImage::from_decoder(decoder).map_err(|e| bad(&e))?)
    };
    let mut img = image::DynamicImage::ImageRgb8(rgb);
    img.apply_orientation(orientation);
    let rgb = img.into_rgb8();
    Ok(Image8 {
        width: rgb.width() as usize,
        height: rgb.height() as usize,
        channels: 3,
        data: rgb.into_raw(),
    })
}

/// A JPEG's RGB pixels as libjpeg-turbo decodes them with Pillow's settings (accurate integer
/// IDCT, fancy upsampling); CMYK and YCCK files converted as Pillow converts CMYK to RGB
/// (Adobe files store inverted CMYK). libjpeg reports fatal errors by unwinding, caught here.
fn decode_jpeg(bytes: &[u8], width: usize, height: usize) -> Result<Vec<u8>, ToolkitError> {
    let bad = |why: String| {
        ToolkitError::Validation(format!(
            "the body is not a JPEG this server can read ({why}); send a PNG, JPEG, GIF, BMP, TIFF or WebP file"
        ))
    };
    let run = || -> std::io::Result<Vec<u8>> {
        let d = mozjpeg::Decompress::with_markers(&[mozjpeg::Marker::APP(14)]).from_mem(bytes)?;
        if d.size() != (width, height) {
            return Err(std::io::Error::other("the header's size changed"));
        }
        let adobe = d
            .markers()
            .any(|m| m.marker == mozjpeg::Marker::APP(14) && m.data.starts_with(b"Adobe"));
        match d.color_space() {
            mozjpeg::ColorSpace::JCS_CMYK | mozjpeg::ColorSpace::JCS_YCCK => {
                let mut s = d.to_colorspace(mozjpeg::ColorSpace::JCS_CMYK)?;
                let cmyk = s.read_scanlines::<u8>()?;
                s.finish()?;
                Ok(cmyk_to_rgb(&cmyk, adobe))
            }
            _ => {
                let mut s = d.rgb()?;
                let rgb = s.read_scanlines::<u8>()?;
                s.finish()?;
                Ok(rgb)
            }
        }
    };
    match std::panic::catch_unwind(run) {
        Ok(Ok(px)) if px.len() == width * height * 3 => Ok(px),
        Ok(Ok(_)) => Err(bad("the decoder returned a short image".into())),
        Ok(Err(e)) => Err(bad(e.to_string())),
        Err(panic) => Err(bad(panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "corrupt data".into()))),
    }
}

/// Pillow's CMYK → RGB (`cmyk2rgb`): each channel `nk − nk·c/255` with `nk = 255 − k`, rounded as
/// its `MULDIV255`; Adobe JPEGs hold inverted values, which Pillow reads back first.
fn cmyk_to_rgb(cmyk: &[u8], inverted: bool) -> Vec<u8> {
    let muldiv255 = |a: i32, b: i32| {
        let t = a * b + 128;
        ((t >> 8) + t) >> 8
    };
    let mut out = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let v = |i: usize| {
            let x = i32::from(px[i]);
            if inverted {
                255 - x
            } else {
                x
            }
        };
        let nk = 255 - v(3);
        for c in 0..3 {
            out.push((nk - muldiv255(v(c), nk)).clamp(0, 255) as u8);
        }
    }
    out
}

/// `convert("RGB")` as Pillow does it for the modes a decoder gives: alpha dropped (not blended),
/// greyscale replicated. 16-bit images follow Pillow's readers: 16-bit greyscale opens as `I;16`,
/// whose conversion to RGB clips each value to 255; 16-bit colour opens as 8-bit keeping each
/// sample's high byte.
fn to_rgb8(img: &image::DynamicImage) -> image::RgbImage {
    use image::DynamicImage as D;
    let (w, h) = (img.width(), img.height());
    let from = |f: &dyn Fn(u32, u32) -> [u8; 3]| {
        image::RgbImage::from_fn(w, h, |x, y| image::Rgb(f(x, y)))
    };
    match img {
        D::ImageLuma16(g) => from(&|x, y| {
            let v = g.get_pixel(x, y)[0].min(255) as u8;
            [v, v, v]
        }),
        D::ImageLumaA16(g) => from(&|x, y| {
            let v = (g.get_pixel(x, y)[0] >> 8) as u8;
            [v, v, v]
        }),
        D::ImageRgb16(c) => from(&|x, y| c.get_pixel(x, y).0.map(|v| (v >> 8) as u8)),
        D::ImageRgba16(c) => from(&|x, y| {
            let [r, g, b, _] = c.get_pixel(x, y).0;
            [r, g, b].map(|v| (v >> 8) as u8)
        }),
        other => other.to_rgb8(),
    }
}

/// The bytes of an image given in JSON: base64, or a `data:image/...;base64,` URI. Anything else
/// (a URL, a file path) is refused: this server never fetches or opens what a request names.
pub fn image_from_json_string(s: &str) -> Result<Vec<u8>, ToolkitError> {
    let payload = if let Some(rest) = s.strip_prefix("data:") {
        match rest.split_once(',') {
            Some((header, data)) if header.ends_with(";base64") => data,
            _ => {
                return Err(ToolkitError::Validation(
                    "a data URI image must be base64: data:image/png;base64,<data>".into(),
                ))
            }
        }
    } else {
        s
    };
    // line breaks are allowed, as Python's decoder allows them; copied only when there are some
    let cleaned: std::borrow::Cow<'_, str> = if payload.bytes().any(|b| b.is_ascii_whitespace()) {
        payload
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect::<String>()
            .into()
    } else {
        payload.into()
    };
    base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .map_err(|_| {
            let shown: String = s.chars().take(40).collect();
            ToolkitError::Validation(format!(
                "\"inputs\" must be an image as base64 or a data:image/...;base64, URI (URLs and file paths are not fetched); got {shown:?}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32, color: image::ColorType) -> Vec<u8> {
        let mut out = Vec::new();
        let img: image::DynamicImage = match color {
            image::ColorType::Rgba8 => image::RgbaImage::from_fn(w, h, |x, y| {
                image::Rgba([(x * 40) as u8, (y * 40) as u8, 7, 100])
            })
            .into(),
            image::ColorType::L8 => {
                image::GrayImage::from_fn(w, h, |x, y| image::Luma([(x * 10 + y) as u8])).into()
            }
            _ => image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 3])).into(),
        };
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn rgba_and_grey_become_rgb_as_pillow_converts_them() {
        let rgba = decode_rgb(&png(3, 2, image::ColorType::Rgba8), DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!((rgba.width, rgba.height, rgba.channels), (3, 2, 3));
        // alpha dropped, not blended
        assert_eq!(&rgba.data[3..6], &[40, 0, 7]);
        let grey = decode_rgb(&png(2, 2, image::ColorType::L8), DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!(&grey.data[3..6], &[10, 10, 10]);
    }

    #[test]
    fn sixteen_bit_images_convert_as_pillow_reads_them() {
        // greyscale: Pillow's I;16 clips to 255 on conversion; colour keeps the high byte
        let grey =
            image::ImageBuffer::<image::Luma<u16>, _>::from_raw(3, 1, vec![7, 300, 65535]).unwrap();
        let rgb = to_rgb8(&image::DynamicImage::ImageLuma16(grey));
        assert_eq!(rgb.into_raw(), vec![7, 7, 7, 255, 255, 255, 255, 255, 255]);
        let colour =
            image::ImageBuffer::<image::Rgb<u16>, _>::from_raw(1, 1, vec![300, 40000, 65281])
                .unwrap();
        let rgb = to_rgb8(&image::DynamicImage::ImageRgb16(colour));
        assert_eq!(rgb.into_raw(), vec![1, 156, 255]);
    }

    #[test]
    fn bad_bytes_empty_bodies_and_bombs_are_client_errors() {
        for body in [
            &b""[..],
            b"\x89PNG\r\n\x1a\n garbage",
            b"not an image at all",
        ] {
            let e = decode_rgb(body, DEFAULT_MAX_PIXELS).unwrap_err();
            assert_eq!(e.status(), 400, "{e}");
        }
        // a real PNG over the pixel limit is refused from its header
        let e = decode_rgb(&png(40, 30, image::ColorType::Rgb8), 1000).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains("HF_MAX_IMAGE_PIXELS"), "{e}");
    }

    #[test]
    fn a_png_that_declares_a_huge_size_is_refused_before_decoding() {
        // the IHDR of a 100000 x 100000 RGB PNG, with a valid CRC, and no pixel data
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend(100_000u32.to_be_bytes());
        ihdr.extend(100_000u32.to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]);
        let crc = crc32(&ihdr);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(13u32.to_be_bytes());
        png.extend(&ihdr);
        png.extend(crc.to_be_bytes());
        // a few bytes of pixel data and the end: the file is 80 bytes
        for (kind, data) in [
            (&b"IDAT"[..], &[0x78u8, 0x9c, 0x03, 0x00][..]),
            (b"IEND", &[]),
        ] {
            let mut chunk = kind.to_vec();
            chunk.extend(data);
            png.extend((data.len() as u32).to_be_bytes());
            png.extend(&chunk);
            png.extend(crc32(&chunk).to_be_bytes());
        }
        let e = decode_rgb(&png, DEFAULT_MAX_PIXELS).unwrap_err();
        assert_eq!(e.status(), 400, "{e}");
        assert!(e.to_string().contains("HF_MAX_IMAGE_PIXELS"), "{e}");
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn json_images_are_base64_or_data_uris_never_paths_or_urls() {
        let bytes = png(1, 1, image::ColorType::Rgb8);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        assert_eq!(image_from_json_string(&b64).unwrap(), bytes);
        let uri = format!("data:image/png;base64,{b64}");
        assert_eq!(image_from_json_string(&uri).unwrap(), bytes);
        for s in ["/etc/passwd", "https://example.com/cat.png", "not base64!"] {
            let e = image_from_json_string(s).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.to_string().contains("not fetched"), "{e}");
        }
    }
}
