//! Images: decoding request bodies to RGB pixels as Pillow does, Pillow's exact resampling, and
//! transformers' image processors. The layer between the models and the vision pipelines, as
//! tokenization is for text.

pub mod decode;
pub mod processor;
pub mod resample;

pub use decode::{decode_rgb, image_from_json_string, DEFAULT_MAX_PIXELS, IMAGE_MEDIA_TYPES};
pub use processor::{ImageProcessor, PixelValues};
pub use resample::{Filter, Image8};
