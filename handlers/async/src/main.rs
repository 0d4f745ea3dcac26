//! `async-handler`: the asynchronous-inference handler as an AWS Lambda function (`lambda`, the
//! default inside Lambda) or from the command line over a folder or S3 prefix (`run`) or one
//! object (`job`). `--help` lists every option and its environment variable.

#![recursion_limit = "256"]

use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use hf_inference_async::storage::Stores;
use hf_inference_async::{AsyncArgs, Handler, JobRequest, Location};
use hf_inference_host::{
    init_logging, load_service, LimitsArgs, LogFormat, ModelArgs, RuntimeArgs, RuntimeDefaults,
};

/// jemalloc, whose background thread gives freed memory back to the system within about half a
/// second (`dirty_decay_ms`), so RSS returns near its idle level after a burst of large requests
/// (glibc's malloc keeps what it grew to). Measured in docs/operations.md.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read from this symbol once when it starts.
#[allow(unsafe_code, non_upper_case_globals)] // an exported symbol (jemalloc's `malloc_conf`)
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] = b"background_thread:true,dirty_decay_ms:500,muzzy_decay_ms:0\0";

/// Jobs are long and few: two threads, and an hour before a request times out.
const RUNTIME_DEFAULTS: RuntimeDefaults = RuntimeDefaults {
    workers: 2,
    queue_capacity: 64,
    timeout_secs: 3600,
};

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
    limits: LimitsArgs,

    #[command(flatten)]
    runtime: RuntimeArgs,

    #[command(flatten)]
    jobs: AsyncArgs,
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
        /// Parameters for a raw image body, as `InvokeEndpointAsync`'s CustomAttributes
        /// (`candidate_labels=cat,dog`).
        #[arg(long)]
        custom_attributes: Option<String>,
    },
}

/// The instant to give up on an event: 15 s before Lambda's deadline, so that a job too slow
/// to finish fails once (in its failure location) instead of being retried forever.
fn give_up_at(deadline_ms: u64) -> std::time::Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let left = deadline_ms.saturating_sub(now_ms);
    std::time::Instant::now() + Duration::from_millis(left.saturating_sub(15_000))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging(LogFormat::Json)?;
    let mut cli = Cli::parse();
    let command = match cli.command.take() {
        Some(c) => c,
        None if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() => Command::Lambda,
        None => anyhow::bail!("give a command (lambda, run or job); see --help"),
    };
    let load = cli.model.load_options(&cli.limits)?;
    let runtime = cli.runtime.options(RUNTIME_DEFAULTS);
    hf_inference_host::configure_threads(cli.runtime.num_threads);
    let service = tokio::task::spawn_blocking(move || load_service(&load, runtime)).await??;
    let handler = Arc::new(Handler::new(service, Arc::new(Stores::default()), cli.jobs));
    match command {
        Command::Lambda => {
            let service = lambda_runtime::service_fn(
                move |event: lambda_runtime::LambdaEvent<serde_json::Value>| {
                    let handler = Arc::clone(&handler);
                    async move {
                        let deadline = give_up_at(event.context.deadline);
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
            custom_attributes,
        } => {
            let job = handler.job(JobRequest {
                input_location: input.to_string(),
                inference_id,
                content_type: None,
                accept: None,
                custom_attributes,
                output_location: None,
                failure_location: None,
            })?;
            println!("{}", serde_json::to_string(&handler.run(&job).await?)?);
            Ok(())
        }
    }
}
