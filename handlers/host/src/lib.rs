//! # hf-inference-host
//!
//! What every host of the toolkit shares, read once for all front-ends (`serve`,
//! `async-handler`, `lambda-proxy`), which depend on this crate and never on one another:
//!
//! - `ModelArgs`: where the model comes from (`HF_MODEL_DIR`, `SAGEMAKER_BASE_DIR`,
//!   `HF_MODEL_ID` and the Hub's revision, token, endpoint, cache and offline switch) and its task;
//! - `LimitsArgs`: the per-request limits (`HF_MAX_REQUEST_TOKENS`, `HF_MAX_BATCH_SIZE`,
//!   `HF_BATCH_WAIT_US`, `HF_MAX_NEW_TOKENS`);
//! - `RuntimeArgs`: the inference threads, queue and timeout (`SAGEMAKER_MODEL_SERVER_WORKERS`,
//!   `HF_QUEUE_CAPACITY`, `SAGEMAKER_MODEL_SERVER_TIMEOUT`), with each front-end's own defaults;
//! - `load_service`: load and warm up the model, then start the runtime;
//! - `threads`: the compute threads (`HF_NUM_THREADS`, default the cgroup's CPU quota);
//! - [`logging`]: text or JSON logs filtered by `RUST_LOG`;
//! - [`Location`] and, with the `storage` feature, `storage`: local files and S3.
//!
//! Each `*Args` is a `clap::Args` that a binary flattens into its own `Parser`, so every variable
//! means the same thing in every front-end that reads it. The model part links the inference
//! engine and sits behind the `engine` feature; a proxy-only Lambda build leaves it out.
//!
//! ```no_run
//! # #[cfg(feature = "engine")]
//! # fn demo() -> Result<(), hf_inference_core::ToolkitError> {
//! use clap::Parser;
//! use hf_inference_host::{LimitsArgs, ModelArgs, RuntimeArgs, RuntimeDefaults};
//!
//! #[derive(Parser)]
//! struct Config {
//!     #[command(flatten)]
//!     model: ModelArgs,
//!     #[command(flatten)]
//!     limits: LimitsArgs,
//!     #[command(flatten)]
//!     runtime: RuntimeArgs,
//! }
//!
//! let config = Config::parse();
//! let load = config.model.load_options(&config.limits)?;
//! let defaults = RuntimeDefaults { workers: 4, queue_capacity: 64, timeout_secs: 60 };
//! let runtime = config.runtime.options(defaults);
//! let service = hf_inference_host::load_service(&load, runtime)?;
//! # drop(service);
//! # Ok(()) }
//! ```

pub mod location;
pub mod logging;
#[cfg(feature = "engine")]
mod model;
#[cfg(feature = "storage")]
pub mod storage;
#[cfg(feature = "engine")]
pub mod threads;

pub use location::{Location, LocationError};
pub use logging::{init_logging, LogFormat, LoggingError};
#[cfg(feature = "engine")]
pub use model::{load_service, LimitsArgs, ModelArgs, RuntimeArgs, RuntimeDefaults};
#[cfg(feature = "engine")]
pub use threads::configure_threads;
