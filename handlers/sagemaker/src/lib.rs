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

use clap::Parser;
use hf_inference_core::{LoadOptions, RuntimeOptions, ToolkitError};
use hf_inference_host::{LimitsArgs, LogFormat, ModelArgs, RuntimeArgs, RuntimeDefaults};
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

    /// The per-request limits.
    #[command(flatten)]
    pub limits: LimitsArgs,

    /// Inference threads, queue and timeout (default 4 threads, 64 queued, 60 s; 600 s under
    /// batch transform).
    #[command(flatten)]
    pub runtime: RuntimeArgs,

    /// Local development: also answer SageMaker Runtime's API (`POST /endpoints/{name}/invocations`
    /// and `.../invocations-response-stream`), so that an AWS SDK pointed here with
    /// `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME` (e.g. the Lambda front-end) reaches this container.
    #[arg(long, env = "HF_EMULATE_SAGEMAKER_RUNTIME", default_value_t = false, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub emulate_sagemaker_runtime: bool,

    /// Log lines as `text` or `json` (one object per line, and then one line per request: id,
    /// task, status, latency, body sizes, never the payload). Default: `json` on SageMaker
    /// (the process started with the argument `serve`, as SageMaker starts a container),
    /// `text` otherwise.
    #[arg(long, env = "HF_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormatArg>,
}

/// `HF_LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormatArg {
    /// Plain text.
    Text,
    /// One JSON object per line, with a line per request.
    Json,
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
        self.model.load_options(&self.limits)
    }

    /// The timeout in force: SAGEMAKER_MODEL_SERVER_TIMEOUT, else 60 s (600 s in batch transform).
    pub fn timeout(&self) -> u64 {
        self.runtime
            .timeout_secs(self.runtime_defaults().timeout_secs)
    }

    /// The container's runtime defaults: 4 threads, 64 queued, 60 s (600 s in batch transform).
    fn runtime_defaults(&self) -> RuntimeDefaults {
        RuntimeDefaults {
            workers: 4,
            queue_capacity: 64,
            timeout_secs: if self.batch { 600 } else { 60 },
        }
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
            log_requests: self.log_format() == LogFormat::Json,
        }
    }

    /// The log format in force: `HF_LOG_FORMAT`, else JSON when started as SageMaker starts
    /// a container (`docker run <image> serve`), else text.
    pub fn log_format(&self) -> LogFormat {
        match self.log_format {
            Some(LogFormatArg::Json) => LogFormat::Json,
            Some(LogFormatArg::Text) => LogFormat::Text,
            None if self.command.is_some() => LogFormat::Json,
            None => LogFormat::Text,
        }
    }

    /// The runtime options in force.
    pub fn runtime_options(&self) -> RuntimeOptions {
        self.runtime.options(self.runtime_defaults())
    }
}

/// Runs the container until SIGTERM/SIGINT. Returns an error when the configuration or the model
/// is unusable (the process then exits non-zero, which SageMaker reports as a failed start).
pub async fn run(config: Config) -> anyhow::Result<()> {
    if config.download_only {
        let model = config.model.clone();
        let dir = tokio::task::spawn_blocking(move || model.download()).await??;
        println!("{}", dir.display());
        return Ok(());
    }
    let load: LoadOptions = config.load_options()?;
    let settings = config.http_settings(config.model.location());
    let state = AppState::loading(settings);
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(config.bind, config.port)).await?;
    let addr = listener.local_addr()?;
    // tests and operators read this line to find the port
    println!("listening on {addr}");
    tracing::info!(%addr, model_dir = %config.model.model_dir().display(), "listening; loading the model");

    let (failed_tx, mut failed_rx) = tokio::sync::oneshot::channel::<ToolkitError>();
    let loader_state = state.clone();
    let runtime_options = config.runtime_options();
    hf_inference_host::configure_threads(config.runtime.num_threads);
    std::thread::Builder::new()
        .name("model-loader".into())
        .spawn(move || {
            let started = std::time::Instant::now();
            match hf_inference_host::load_service(&load, runtime_options) {
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
    use hf_inference_core::model::ModelSource;
    use std::path::PathBuf;

    #[test]
    fn defaults_follow_the_toolkit() {
        let c = Config::try_parse_from(["serve", "serve"]).unwrap();
        assert_eq!(c.port, 8080);
        assert_eq!(c.model.model_dir(), PathBuf::from("/opt/ml/model"));
        assert_eq!(c.max_payload_mb, 6);
        assert_eq!(c.timeout(), 60);
    }

    #[test]
    fn logs_are_json_on_sagemaker_or_when_asked() {
        let sagemaker = Config::try_parse_from(["serve", "serve"]).unwrap();
        assert_eq!(sagemaker.log_format(), LogFormat::Json);
        assert!(sagemaker.http_settings("m".into()).log_requests);
        let local = Config::try_parse_from(["serve"]).unwrap();
        assert_eq!(local.log_format(), LogFormat::Text);
        assert!(!local.http_settings("m".into()).log_requests);
        let asked = Config::try_parse_from(["serve", "--log-format", "json"]).unwrap();
        assert_eq!(asked.log_format(), LogFormat::Json);
        let text = Config::try_parse_from(["serve", "serve", "--log-format", "text"]).unwrap();
        assert_eq!(text.log_format(), LogFormat::Text);
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
        let c = Config::try_parse_from(["serve", "--task", "audio-classification"]).unwrap();
        let e = c.load_options().unwrap_err().to_string();
        assert!(
            e.contains("audio-classification") && e.contains("not implemented"),
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
