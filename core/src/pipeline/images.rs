//! What the image tasks share: reading a request (a raw image body, or JSON with one image or a
//! list as base64 or data URIs, and the task's parameters), the bound on images per request,
//! decoding, the answer's shape (one result, or a list for a list), and the warm-up image.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Input, PipelineOutput};
use crate::context::{CallerGone, Context};
use crate::error::ToolkitError;
use crate::task::Task;
use crate::types::images::ImagesRequest;
use crate::types::OneOrMany;
use crate::vision::{self, Image8};

/// The most images one JSON request may hold (each is decoded and preprocessed before the model
/// runs them).
pub const MAX_IMAGES: usize = 64;

/// A request's images (still encoded) and parameters.
#[derive(Debug)]
pub struct Images<P> {
    /// The image files.
    pub files: Vec<Bytes>,
    /// Whether `inputs` was a list (the answer is then a list of results).
    pub many: bool,
    /// The parameters (the defaults when none were given).
    pub parameters: P,
}

impl<P: DeserializeOwned + Default> Images<P> {
    /// Reads a request: a raw body (with the parameters a host took from its headers), or a
    /// JSON document validated against `task`'s request schema.
    pub fn read(input: Input, task: Task) -> Result<Self, ToolkitError> {
        match input {
            Input::Raw {
                body, parameters, ..
            } => Ok(Images {
                files: vec![body],
                many: false,
                parameters: match parameters {
                    Some(given) => {
                        // keep the task's parameters: custom attributes may carry other things
                        let names = crate::schema::parameter_names(task);
                        let mut p = given;
                        p.retain(|k, _| names.iter().any(|n| n == k));
                        let doc = serde_json::json!({"inputs": "<raw body>", "parameters": p});
                        crate::schema::validate_request(task, &doc).map_err(|e| {
                            ToolkitError::InvalidParameters(format!(
                                "the parameters given with the image (custom attributes or query string) are not valid: {e}"
                            ))
                        })?;
                        serde_json::from_value(doc["parameters"].clone()).map_err(|e| {
                            ToolkitError::InvalidParameters(format!(
                                "the parameters given with the image are not valid for {task}: {e}"
                            ))
                        })?
                    }
                    None => P::default(),
                },
            }),
            json => {
                let req: ImagesRequest<P> = json.into_request(task)?;
                let (list, many) = match req.inputs {
                    OneOrMany::One(s) => (vec![s], false),
                    OneOrMany::Many(list) => (list, true),
                };
                if list.len() > MAX_IMAGES {
                    return Err(ToolkitError::InputTooLong(format!(
                        "the request holds {} images, more than {MAX_IMAGES}; split it into smaller requests",
                        list.len()
                    )));
                }
                let files = list
                    .iter()
                    .map(|s| vision::image_from_json_string(s).map(Bytes::from))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Images {
                    files,
                    many,
                    parameters: req.parameters.unwrap_or_default(),
                })
            }
        }
    }

    /// Decodes each image (within `max_pixels`) and hands it to `f`, stopping when the caller
    /// has gone; the results in order.
    pub fn each<T>(
        &self,
        max_pixels: u64,
        ctx: &Context,
        mut f: impl FnMut(Image8) -> Result<T, ToolkitError>,
    ) -> Result<Vec<T>, ToolkitError> {
        let mut out = Vec::with_capacity(self.files.len());
        for file in &self.files {
            if ctx.is_gone() {
                return Err(CallerGone::error());
            }
            out.push(f(vision::decode_rgb(file, max_pixels)?)?);
        }
        Ok(out)
    }

    /// The answer: the one result, or the list of them when `inputs` was a list.
    pub fn answer(&self, mut results: Vec<Value>) -> PipelineOutput {
        PipelineOutput::Json(if self.many {
            Value::Array(results)
        } else {
            results.pop().unwrap_or(Value::Null)
        })
    }
}

/// A small grey PNG, the warm-up request of the image tasks (made here, not carried as bytes).
pub fn warm_up_png() -> Input {
    let mut png = Vec::new();
    let img = image::RgbImage::from_pixel(4, 4, image::Rgb([128, 128, 128]));
    let written = image::DynamicImage::from(img)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png);
    if written.is_err() {
        png.clear();
    }
    Input::Raw {
        media_type: "image/png",
        body: Bytes::from(png),
        parameters: None,
    }
}
