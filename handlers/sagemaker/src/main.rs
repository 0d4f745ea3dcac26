//! `serve`: the SageMaker container entry point.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = hf_inference_sagemaker::Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    hf_inference_sagemaker::run(config).await
}
