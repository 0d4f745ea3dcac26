//! Logging set-up: one subscriber for the process, text (a terminal, a container's log driver)
//! or JSON (CloudWatch Logs), filtered by `RUST_LOG` (default `info`), written to stderr so that
//! stdout stays free for what a command prints.

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Plain text without colours, with timestamps.
    Text,
    /// One JSON object per line, with timestamps.
    Json,
    /// One JSON object per line without timestamps: Lambda's log stream adds its own.
    LambdaJson,
}

/// The subscriber could not be installed (one is already installed, or `RUST_LOG` is invalid).
#[derive(Debug, thiserror::Error)]
#[error("could not set up logging: {0}")]
pub struct LoggingError(String);

/// Installs the process's log subscriber; call once, first thing in `main`.
pub fn init_logging(format: LogFormat) -> Result<(), LoggingError> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
        LogFormat::LambdaJson => builder.json().without_time().try_init(),
    };
    installed.map_err(|e| LoggingError(e.to_string()))
}
