//! `serve`: the SageMaker container entry point.

use clap::Parser;
use hf_inference_host::{init_logging, LogFormat};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = hf_inference_sagemaker::Config::parse();
    init_logging(LogFormat::Text)?;
    hf_inference_sagemaker::run(config).await
}
