//! # hf-inference-sagemaker
//!
//! The SageMaker inference container: SageMaker runs `docker run <image> serve`, then probes
//! `GET /ping` and sends `POST /invocations` on port 8080. Configuration comes from the Python
//! toolkit's environment variables (`--help` lists them); the model is read from
//! `$SAGEMAKER_BASE_DIR/model` (default `/opt/ml/model`) or `HF_MODEL_DIR`.
//!
//! The port is bound first and `/ping` answers 503 while the model loads and warms up, then 200.
//! SIGTERM (SageMaker's scale-in) stops accepting connections and lets in-flight requests finish.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use hf_inference_core::hub::{HubModel, HubOptions, Secret};
use hf_inference_core::model::ModelSource;
use hf_inference_core::{
    load_pipeline, InferenceService, LoadOptions, Runtime, RuntimeOptions, TaskSpec, ToolkitError,
};
use hf_inference_http::{router, AppState, HttpSettings};

/// The container's configuration: every option also reads the environment variable the Python
/// toolkit uses.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "serve",
    version,
    about = "Hugging Face inference for SageMaker: GET /ping, POST /invocations"
)]
pub struct Config {
    /// SageMaker starts the container with the argument `serve`; it is accepted and ignored.
    #[arg(value_parser = ["serve"], hide = true)]
    pub command: Option<String>,

    /// Where the model comes from and which task it serves.
    #[command(flatten)]
    pub model: ModelArgs,

    /// Download the model (HF_MODEL_ID) into the cache, print its directory and exit: bakes a
    /// model into an image at build time.
    #[arg(long)]
    pub download_only: bool,

    /// The port to listen on (0 picks a free one; the chosen address is printed).
    #[arg(long, env = "SAGEMAKER_BIND_TO_PORT", default_value_t = 8080)]
    pub port: u16,

    /// The address to listen on.
    #[arg(long, env = "HF_BIND_ADDRESS", default_value = "0.0.0.0")]
    pub bind: std::net::IpAddr,

    /// Largest request body in MiB; larger requests get 413 before they are read. 0 (batch
    /// transform's "unbounded, chunked") lifts the limit for JSON Lines, which is streamed, and
    /// caps other bodies at 1 GiB (asynchronous inference's largest payload).
    #[arg(long, env = "SAGEMAKER_MAX_PAYLOAD_IN_MB", default_value_t = 6)]
    pub max_payload_mb: usize,

    /// Seconds one request (one line of a JSON Lines body, one part of a long input list) may
    /// wait and run before it gets 504. Default 60, or 600 under batch transform.
    #[arg(long, env = "SAGEMAKER_MODEL_SERVER_TIMEOUT")]
    pub timeout: Option<u64>,

    /// Set to true by SageMaker batch transform: the timeout defaults to 600 s.
    #[arg(long, env = "SAGEMAKER_BATCH", default_value_t = false, action = clap::ArgAction::Set)]
    pub batch: bool,

    /// Batch transform's MaxConcurrentTransforms, echoed by /execution-parameters (default: the
    /// request threads).
    #[arg(long, env = "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS")]
    pub max_concurrent_transforms: Option<usize>,

    /// Batch transform's BatchStrategy, echoed by /execution-parameters.
    #[arg(long, env = "SAGEMAKER_BATCH_STRATEGY", default_value = "MULTI_RECORD")]
    pub batch_strategy: String,

    /// Request threads: each decodes, tokenizes and encodes one request at a time, while one
    /// model thread runs the forward passes, merging the sequences of concurrent requests.
    #[arg(long, env = "SAGEMAKER_MODEL_SERVER_WORKERS", default_value_t = 4)]
    pub workers: usize,

    /// Requests that may wait for an inference thread; more get 503 at once.
    #[arg(long, env = "HF_QUEUE_CAPACITY", default_value_t = 64)]
    pub queue_capacity: usize,

    /// The most tokens one request may carry, all inputs together; more get 400.
    #[arg(long, env = "HF_MAX_REQUEST_TOKENS", default_value_t = 16_384)]
    pub max_request_tokens: usize,

    /// The most sequences run through the model in one forward pass (generation: at most four
    /// times as many sequences share one decoding step).
    #[arg(long, env = "HF_MAX_BATCH_SIZE", default_value_t = 32)]
    pub max_batch_size: usize,

    /// Encoders: the longest a forward pass waits for concurrent requests to join it, in
    /// microseconds (only while several clients are sending; 0: never wait).
    #[arg(long, env = "HF_BATCH_WAIT_US", default_value_t = 2000)]
    pub batch_wait_us: u64,

    /// Generation: the most new tokens one sequence may ask for (max_new_tokens, or max_length
    /// minus the prompt); more get 400.
    #[arg(long, env = "HF_MAX_NEW_TOKENS", default_value_t = 2048)]
    pub max_new_tokens: usize,

    /// Local development: also answer SageMaker Runtime's API (`POST /endpoints/{name}/invocations`
    /// and `.../invocations-response-stream`), so that an AWS SDK pointed here with
    /// `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME` (e.g. the Lambda front-end) reaches this container.
    #[arg(long, env = "HF_EMULATE_SAGEMAKER_RUNTIME", default_value_t = false, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub emulate_sagemaker_runtime: bool,
}

/// Where the model comes from and which task it serves: the toolkit's model variables, shared
/// by every host that loads a model (`serve`, the async handler).
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// The pipeline task (text-classification, sentiment-analysis, feature-extraction, ...).
    /// Unset: inferred from config.json `architectures`.
    #[arg(long, env = "HF_TASK")]
    pub task: Option<String>,

    /// The model directory. Default: $SAGEMAKER_BASE_DIR/model.
    #[arg(long, env = "HF_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,

    /// SageMaker's base directory; the model is read from its `model` subdirectory.
    #[arg(long, env = "SAGEMAKER_BASE_DIR", default_value = "/opt/ml")]
    pub base_dir: PathBuf,

    /// A Hugging Face Hub model id (`org/name`) to download at start-up when no model directory
    /// is given (HF_MODEL_DIR). The server listens meanwhile; /ping is 503 until the model is ready.
    #[arg(long, env = "HF_MODEL_ID")]
    pub model_id: Option<String>,

    /// The Hub revision: a branch, tag or commit.
    #[arg(long, env = "HF_MODEL_REVISION", default_value = "main")]
    pub model_revision: String,

    /// A Hub token for private and gated models (sent to the Hub only; never logged).
    #[arg(long, env = "HF_API_TOKEN", hide_env_values = true, value_parser = secret)]
    pub api_token: Option<Secret>,

    /// Read when HF_API_TOKEN is unset, as huggingface_hub does.
    #[arg(long, env = "HF_TOKEN", hide_env_values = true, value_parser = secret)]
    pub hf_token: Option<Secret>,

    /// The Hub endpoint.
    #[arg(long, env = "HF_ENDPOINT", default_value = HubOptions::DEFAULT_ENDPOINT)]
    pub hf_endpoint: String,

    /// The Hugging Face home; the cache is $HF_HOME/hub (default ~/.cache/huggingface/hub).
    #[arg(long, env = "HF_HOME")]
    pub hf_home: Option<PathBuf>,

    /// The Hub cache directory (overrides $HF_HOME/hub).
    #[arg(long, env = "HF_HUB_CACHE")]
    pub hf_hub_cache: Option<PathBuf>,

    /// Use only the cache, never the network (1/true/yes).
    #[arg(long, env = "HF_HUB_OFFLINE", default_value_t = false, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub hub_offline: bool,
}

impl ModelArgs {
    /// The model directory in use.
    pub fn model_dir(&self) -> PathBuf {
        self.model_dir
            .clone()
            .unwrap_or_else(|| self.base_dir.join("model"))
    }

    /// Where the model comes from: HF_MODEL_DIR, else HF_MODEL_ID, else $SAGEMAKER_BASE_DIR/model.
    pub fn source(&self) -> ModelSource {
        match (&self.model_dir, &self.model_id) {
            (None, Some(id)) if !id.trim().is_empty() => ModelSource::Hub(HubModel {
                id: id.trim().to_owned(),
                revision: self.model_revision.clone(),
                options: HubOptions {
                    endpoint: self.hf_endpoint.clone(),
                    token: self.api_token.clone().or_else(|| self.hf_token.clone()),
                    cache_dir: HubOptions::default_cache_dir(
                        self.hf_hub_cache.clone(),
                        self.hf_home.clone(),
                    ),
                    offline: self.hub_offline,
                    retries: 5,
                },
            }),
            _ => ModelSource::LocalDir(self.model_dir()),
        }
    }

    /// The task (checked to be served by this build) and the model source, with default limits.
    pub fn load_options(&self) -> Result<LoadOptions, ToolkitError> {
        let task = match &self.task {
            Some(t) if !t.trim().is_empty() => {
                let spec: TaskSpec = t.parse()?;
                spec.ensure_implemented()?;
                Some(spec)
            }
            _ => None,
        };
        let mut opts = LoadOptions::local(self.model_dir(), task);
        opts.source = self.source();
        Ok(opts)
    }
}

fn secret(s: &str) -> Result<Secret, String> {
    Ok(Secret::new(s))
}

impl Config {
    /// Checks the configuration and builds the load options; fails fast with a clear message.
    pub fn load_options(&self) -> Result<LoadOptions, ToolkitError> {
        if !matches!(
            self.batch_strategy.as_str(),
            "MULTI_RECORD" | "SINGLE_RECORD"
        ) {
            return Err(ToolkitError::Config(format!(
                "SAGEMAKER_BATCH_STRATEGY {:?} is not MULTI_RECORD or SINGLE_RECORD",
                self.batch_strategy
            )));
        }
        let mut opts = self.model.load_options()?;
        opts.max_request_tokens = self.max_request_tokens.max(1);
        opts.max_batch_size = self.max_batch_size.max(1);
        opts.max_new_tokens = self.max_new_tokens.max(1);
        opts.batch_wait = std::time::Duration::from_micros(self.batch_wait_us);
        Ok(opts)
    }

    /// The timeout in force: SAGEMAKER_MODEL_SERVER_TIMEOUT, else 60 s (600 s in batch transform).
    pub fn timeout(&self) -> u64 {
        self.timeout.unwrap_or(if self.batch { 600 } else { 60 })
    }

    /// The HTTP limits and the batch-transform parameters.
    pub fn http_settings(&self, model_url: String) -> HttpSettings {
        const GIB: usize = 1 << 30;
        let (max_payload_bytes, max_stream_bytes) = match self.max_payload_mb {
            0 => (GIB, usize::MAX),
            mb => {
                let b = mb.saturating_mul(1024 * 1024);
                (b, b)
            }
        };
        HttpSettings {
            max_payload_bytes,
            max_stream_bytes,
            model_url,
            max_concurrent_transforms: self.max_concurrent_transforms.filter(|&n| n > 0),
            batch_strategy: self.batch_strategy.clone(),
            emulate_runtime: self.emulate_sagemaker_runtime,
        }
    }

    fn runtime_options(&self) -> RuntimeOptions {
        RuntimeOptions {
            workers: self.workers.max(1),
            queue_capacity: self.queue_capacity.max(1),
            timeout: Duration::from_secs(self.timeout().max(1)),
        }
    }
}

/// Runs the container until SIGTERM/SIGINT. Returns an error when the configuration or the model
/// is unusable (the process then exits non-zero, which SageMaker reports as a failed start).
pub async fn run(config: Config) -> anyhow::Result<()> {
    if config.download_only {
        let ModelSource::Hub(model) = config.model.source() else {
            anyhow::bail!("--download-only needs HF_MODEL_ID (and no HF_MODEL_DIR)");
        };
        let dir = tokio::task::spawn_blocking(move || model.fetch()).await??;
        println!("{}", dir.display());
        return Ok(());
    }
    let load = config.load_options()?;
    let settings = config.http_settings(match &load.source {
        ModelSource::Hub(h) => format!("{}/{}@{}", h.options.endpoint, h.id, h.revision),
        ModelSource::LocalDir(d) => d.display().to_string(),
    });
    let state = AppState::loading(settings);
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(config.bind, config.port)).await?;
    let addr = listener.local_addr()?;
    // tests and operators read this line to find the port
    println!("listening on {addr}");
    tracing::info!(%addr, model_dir = %config.model.model_dir().display(), "listening; loading the model");

    let (failed_tx, mut failed_rx) = tokio::sync::oneshot::channel::<ToolkitError>();
    let loader_state = state.clone();
    let runtime_options = config.runtime_options();
    std::thread::Builder::new()
        .name("model-loader".into())
        .spawn(move || {
            let started = std::time::Instant::now();
            let result = load_pipeline(&load).and_then(|p| {
                p.warm_up()?;
                Ok(p)
            });
            match result.and_then(|p| Ok(InferenceService::new(p, Runtime::new(runtime_options)?)))
            {
                Ok(service) => {
                    tracing::info!(
                        task = service.pipeline().task().id(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "model loaded and warmed up; /ping is healthy"
                    );
                    loader_state.set_ready(service);
                }
                Err(e) => {
                    let _ = failed_tx.send(e);
                }
            }
        })?;

    let shutdown = async move {
        tokio::select! {
            _ = shutdown_signal() => Ok(()),
            Ok(e) = &mut failed_rx => Err(e),
        }
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // what is written goes out at once: a streamed token's small SSE event is not held back by
    // Nagle's algorithm until the client acknowledges the previous one
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
    });
    let server = axum::serve(listener, router(state)).with_graceful_shutdown(async move {
        let _ = stop_rx.await;
    });
    let server = tokio::spawn(async move { server.await });
    let outcome = shutdown.await;
    let _ = stop_tx.send(());
    match outcome {
        Ok(()) => {
            tracing::info!("shutting down: draining in-flight requests");
            server.await??;
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, "the model could not be loaded");
            Err(anyhow::anyhow!("the model could not be loaded: {e}"))
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_toolkit() {
        let c = Config::try_parse_from(["serve", "serve"]).unwrap();
        assert_eq!(c.port, 8080);
        assert_eq!(c.model.model_dir(), PathBuf::from("/opt/ml/model"));
        assert_eq!(c.max_payload_mb, 6);
        assert_eq!(c.timeout(), 60);
    }

    #[test]
    fn batch_transform_settings() {
        let c = Config::try_parse_from([
            "serve",
            "--batch",
            "true",
            "--max-payload-mb",
            "0",
            "--max-concurrent-transforms",
            "3",
            "--batch-strategy",
            "SINGLE_RECORD",
        ])
        .unwrap();
        assert_eq!(c.timeout(), 600);
        assert!(c.load_options().is_ok());
        let s = c.http_settings("m".into());
        assert_eq!(s.max_stream_bytes, usize::MAX);
        assert_eq!(s.max_payload_bytes, 1 << 30);
        assert_eq!(s.max_concurrent_transforms, Some(3));
        assert_eq!(s.batch_strategy, "SINGLE_RECORD");
        let c = Config::try_parse_from(["serve", "--batch", "true", "--timeout", "90"]).unwrap();
        assert_eq!(c.timeout(), 90);
        let s = c.http_settings("m".into());
        assert_eq!(
            (s.max_payload_bytes, s.max_stream_bytes),
            (6 << 20, 6 << 20)
        );
        let c = Config::try_parse_from(["serve", "--batch-strategy", "ALL"]).unwrap();
        assert!(c.load_options().is_err());
    }

    #[test]
    fn model_dir_and_task_checks() {
        let c =
            Config::try_parse_from(["serve", "--base-dir", "/x", "--task", "sentiment-analysis"])
                .unwrap();
        assert_eq!(c.model.model_dir(), PathBuf::from("/x/model"));
        assert!(c.load_options().is_ok());
        let c = Config::try_parse_from(["serve", "--task", "image-segmentation"]).unwrap();
        let e = c.load_options().unwrap_err().to_string();
        assert!(
            e.contains("image-segmentation") && e.contains("not implemented"),
            "{e}"
        );
        let c = Config::try_parse_from(["serve", "--task", "nope"]).unwrap();
        assert!(c
            .load_options()
            .unwrap_err()
            .to_string()
            .contains("unknown task"));
        let c =
            Config::try_parse_from(["serve", "--model-id", "org/model", "--api-token", "hf_abc"])
                .unwrap();
        assert!(
            matches!(c.model.source(), ModelSource::Hub(ref h) if h.id == "org/model" && h.revision == "main")
        );
        assert!(
            !format!("{c:?}").contains("hf_abc"),
            "the token must not appear in Debug output"
        );
        let c = Config::try_parse_from(["serve", "--model-id", "org/model", "--model-dir", "/m"])
            .unwrap();
        assert_eq!(c.model.source(), ModelSource::LocalDir("/m".into()));
        let c = Config::try_parse_from(["serve", "--hub-offline", "1"]).unwrap();
        assert!(c.model.hub_offline);
        assert!(Config::try_parse_from(["serve", "train"]).is_err());
    }
}
