//! # hf-inference-core
//!
//! The shared core of a Rust re-implementation of the Hugging Face Inference Toolkit for Amazon
//! SageMaker: the task ids (`HF_TASK`), the JSON Schemas of the wire format, request decoding and
//! response encoding with the Python toolkit's exact output bytes, candle models, transformers'
//! pipelines, and the inference runtime. Front-ends (the SageMaker container, async inference,
//! Lambda) are thin layers over [`InferenceService`].
//!
//! ```no_run
//! use hf_inference_core::{load_pipeline, LoadOptions, Runtime, RuntimeOptions, InferenceService};
//!
//! # async fn demo() -> Result<(), hf_inference_core::ToolkitError> {
//! let task = "feature-extraction".parse()?;
//! let pipeline = load_pipeline(&LoadOptions::local("/opt/ml/model", Some(task)))?;
//! pipeline.warm_up()?;
//! let service = InferenceService::new(pipeline, Runtime::new(RuntimeOptions::default())?);
//! let out = service
//!     .invoke(Some("application/json"), None, br#"{"inputs": "Hello"}"#.to_vec())
//!     .await?;
//! println!("{}", String::from_utf8_lossy(&out.body));
//! # Ok(()) }
//! ```

//!
//! Modules form layers that only look down: errors and the run [`context`]; the wire's
//! [`task`]s, [`schema`]s and [`codec`]s; the [`hub`] client; and, behind the default `engine`
//! feature: `kernels`; `vision` (image decoding and preprocessing); `model`s (with the
//! model-family registry and the device seam); tokenization; `generate` (decoding and its
//! engine); the `batcher`; `pipeline`s (the `Pipeline` seam and its registry); the executor
//! (`runtime`); the [`service`] (negotiation, codecs, JSON Lines, SSE).

#[cfg(feature = "engine")]
pub mod batcher;
pub mod codec;
pub mod context;
pub mod error;
#[cfg(feature = "engine")]
pub mod generate;
pub mod hub;
pub mod json;
#[cfg(feature = "engine")]
pub mod kernels;
#[cfg(feature = "engine")]
pub mod model;
#[cfg(feature = "engine")]
pub mod pipeline;
#[cfg(feature = "engine")]
pub mod runtime;
pub mod schema;
#[cfg(feature = "engine")]
pub mod sentencepiece;
pub mod service;
pub mod stats;
pub mod task;
#[cfg(feature = "engine")]
pub mod tokenize;
#[cfg(feature = "engine")]
pub mod types;
#[cfg(feature = "engine")]
pub mod vision;

pub use context::{CallerGone, Context};
pub use error::{ErrorBody, ToolkitError};
#[cfg(feature = "engine")]
pub use pipeline::{
    load as load_pipeline, Input, LoadOptions, Pipeline, PipelineOutput, SharedPipeline,
};
#[cfg(feature = "engine")]
pub use runtime::{Runtime, RuntimeOptions};
#[cfg(feature = "engine")]
pub use service::{lines, InferenceService};
pub use service::{Answer, AnswerStream, Encoded};
pub use task::{Task, TaskSpec};
