//! The service: a loaded pipeline behind the executor, bytes in and bytes out. It negotiates
//! the media types, decodes bodies into the pipeline's `Input`, runs the pipeline on the
//! executor with a `Context`, and encodes its output (JSON, CSV, `.npy`, JSON Lines,
//! Server-Sent Events).

mod answer;
#[cfg(feature = "engine")]
pub mod encode;
#[cfg(feature = "engine")]
pub mod events;
#[cfg(feature = "engine")]
mod inference;
#[cfg(feature = "engine")]
pub mod lines;

pub use answer::{Answer, AnswerStream, Encoded};
#[cfg(feature = "engine")]
pub use inference::{InferenceService, MICRO_BATCH};
