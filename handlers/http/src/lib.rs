//! # hf-inference-http
//!
//! The HTTP surface of the toolkit, as the SageMaker container (`serve`) answers it:
//! `GET /ping`, `POST|PUT /invocations`, `GET /execution-parameters` (batch transform) and the
//! read-only part of multi-model-server's management API on the same port
//! (`GET /models`, `GET /models/model`), as the Python toolkit serves them.
//!
//! Differences from the Python toolkit, on purpose: `/ping` is 503 until the model is loaded and
//! warmed (the toolkit says healthy before), errors carry their real status (415, 406, 413, 503…)
//! instead of 400 for everything, and limits are enforced before a body is buffered.
//!
//! Operators get `GET /metrics` (Prometheus) and, when asked, one JSON log line per request
//! ([`observe`]).
//!
//! The router needs a loaded model and sits behind the default `engine` feature; without it the
//! crate holds only the response helpers ([`ApiError`], [`json_response`]) that a proxy shares
//! with the container.

pub mod emulation;
#[cfg(feature = "engine")]
pub mod observe;
mod response;
#[cfg(feature = "engine")]
mod server;

#[cfg(feature = "engine")]
pub use response::answer_response;
pub use response::{json_response, ApiError};
#[cfg(feature = "engine")]
pub use server::{router, AppState, HttpSettings};
