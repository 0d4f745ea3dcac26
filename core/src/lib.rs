//! # hf-inference-core
//!
//! The shared core of a Rust re-implementation of the Hugging Face Inference Toolkit for Amazon
//! SageMaker: the task ids (`HF_TASK`), the JSON Schemas of the wire format, request decoding and
//! response encoding with the Python toolkit's exact output bytes, candle models, transformers'
//! pipelines, and the inference runtime. Front-ends (the SageMaker container, async inference,
//! Lambda) are thin layers over [`InferenceService`].
//!
//! ```no_run
//! use hf_inference_core::{AnyPipeline, LoadOptions, Runtime, RuntimeOptions, InferenceService};
//!
//! # async fn demo() -> Result<(), hf_inference_core::ToolkitError> {
//! let task = "feature-extraction".parse()?;
//! let pipeline = AnyPipeline::load(&LoadOptions::local("/opt/ml/model", Some(task)))?;
//! let service = InferenceService::new(pipeline, Runtime::new(RuntimeOptions::default())?);
//! let out = service
//!     .invoke(Some("application/json"), None, br#"{"inputs": "Hello"}"#.to_vec())
//!     .await?;
//! println!("{}", String::from_utf8_lossy(&out.body));
//! # Ok(()) }
//! ```

pub mod batcher;
pub mod codec;
pub mod error;
pub mod generate;
pub mod hub;
pub mod json;
pub mod kernels;
pub mod lines;
pub mod model;
pub mod pipeline;
pub mod runtime;
pub mod schema;
pub mod sentencepiece;
pub mod task;
pub mod tokenize;
pub mod types;

pub use error::{ErrorBody, ToolkitError};
pub use pipeline::{AnyPipeline, LoadOptions, PipelineOutput};
pub use runtime::{Answer, Encoded, InferenceService, Runtime, RuntimeOptions};
pub use task::{Task, TaskSpec};
