//! The JSON form of an image task's request (a raw image body needs none).

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::OneOrMany;

/// `{"inputs": <image or list>, "parameters": {...}}` with a task's parameters `P`, images as
/// base64 or data URIs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(bound = "P: DeserializeOwned")]
pub struct ImagesRequest<P> {
    /// One image or a list.
    pub inputs: OneOrMany<String>,
    /// The pipeline's parameters.
    #[serde(default)]
    pub parameters: Option<P>,
}
