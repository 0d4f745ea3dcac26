//! Images: decoding request bodies to RGB pixels as Pillow does, Pillow's exact resampling, and
//! transformers' image processors. It sits below the models (an image model takes the
//! preprocessed pixels), as tokenization does for text, and looks at nothing above the errors.

pub mod decode;
pub mod interpolate;
pub mod processor;
pub mod resample;

pub use decode::{decode_rgb, image_from_json_string, DEFAULT_MAX_PIXELS, IMAGE_MEDIA_TYPES};
pub use processor::{ImageProcessor, PixelValues};
pub use resample::{Filter, Image8};
