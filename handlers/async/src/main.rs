//! `async-handler`: the asynchronous-inference handler as an AWS Lambda function (`lambda`, the
//! default inside Lambda) or from the command line over a folder or S3 prefix (`run`) or one
//! object (`job`). `--help` lists every option and its environment variable.

#![recursion_limit = "256"]

use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use hf_inference_async::{AsyncArgs, Handler, JobRequest, Location};
use hf_inference_core::{load_pipeline, InferenceService, Runtime, RuntimeOptions};
use hf_inference_sagemaker::ModelArgs;

#[derive(Debug, Parser)]
#[command(
    name = "async-handler",
    version,
    about = "Asynchronous inference jobs with SageMaker async's conventions: S3/SQS events on Lambda, or a folder"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    model: ModelArgs,

    #[command(flatten)]
    jobs: AsyncArgs,

    /// Threads running jobs' requests.
    #[arg(long, env = "SAGEMAKER_MODEL_SERVER_WORKERS", default_value_t = 2)]
    workers: usize,

    /// Seconds one request (a line of JSON Lines, a part of a long list) may run.
    #[arg(long, env = "SAGEMAKER_MODEL_SERVER_TIMEOUT", default_value_t = 3600)]
    timeout: u64,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the Lambda runtime API (the default when AWS_LAMBDA_RUNTIME_API is set).
    Lambda,
    /// Run every object directly under a folder or S3 prefix; print one outcome per line.
    Run {
        /// The folder or prefix (`s3://bucket/in/`, `file:///data/in`, `./in`).
        input: Location,
    },
    /// Run one object; print its outcome.
    Job {
        /// The input object.
        input: Location,
        /// The inference id (default: the file name without extension).
        #[arg(long)]
        inference_id: Option<String>,
    },
}

fn load(cli: &Cli) -> anyhow::Result<Handler> {
    let opts = cli.model.load_options()?;
    let pipeline = load_pipeline(&opts)?;
    pipeline.warm_up()?;
    let runtime = Runtime::new(RuntimeOptions {
        workers: cli.workers.max(1),
        queue_capacity: 64,
        timeout: Duration::from_secs(cli.timeout.max(1)),
    })?;
    Ok(Handler::new(
        InferenceService::new(pipeline, runtime),
        Arc::new(hf_inference_async::storage::Stores::default()),
        cli.jobs.clone(),
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut cli = Cli::parse();
    let command = match cli.command.take() {
        Some(c) => c,
        None if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() => Command::Lambda,
        None => anyhow::bail!("give a command (lambda, run or job); see --help"),
    };
    let handler = Arc::new(load(&cli)?);
    match command {
        Command::Lambda => {
            let service = lambda_runtime::service_fn(
                move |event: lambda_runtime::LambdaEvent<serde_json::Value>| {
                    let handler = Arc::clone(&handler);
                    async move {
                        // stop 15 s before Lambda does, so a job too slow to finish fails once
                        // (in its failure location) instead of being retried forever
                        let now_ms = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_millis() as u64);
                        let left = event.context.deadline.saturating_sub(now_ms);
                        let deadline = std::time::Instant::now()
                            + Duration::from_millis(left.saturating_sub(15_000));
                        handler
                            .handle_event(event.payload, Some(deadline))
                            .await
                            .map_err(lambda_runtime::Error::from)
                    }
                },
            );
            lambda_runtime::run(service)
                .await
                .map_err(|e| anyhow::anyhow!("the Lambda runtime stopped: {e}"))
        }
        Command::Run { input } => {
            for outcome in handler.run_prefix(&input).await? {
                println!("{}", serde_json::to_string(&outcome)?);
            }
            Ok(())
        }
        Command::Job {
            input,
            inference_id,
        } => {
            let job = handler
                .job(JobRequest {
                    input_location: input.to_string(),
                    inference_id,
                    content_type: None,
                    accept: None,
                    output_location: None,
                    failure_location: None,
                })
                .map_err(anyhow::Error::msg)?;
            println!("{}", serde_json::to_string(&handler.run(&job).await?)?);
            Ok(())
        }
    }
}
