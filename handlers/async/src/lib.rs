//! # hf-inference-async
//!
//! A serverless asynchronous-inference handler: it runs the core pipeline in-process on jobs,
//! following SageMaker asynchronous inference's conventions. A job names an input object, its
//! content type and the accepted response type, an inference id, and output and failure
//! locations; the handler reads the input, runs the task, and writes the response to
//! `<output>/<inference-id>.out`, or the error body to `<failure>/<inference-id>-error.out`, then
//! publishes a success or error notification in SageMaker's message shape.
//!
//! Jobs come from S3 `ObjectCreated` events (the input object; results under the configured
//! output prefix), from SQS messages (a job object, or an S3 event forwarded to SQS), from a
//! direct invocation (a job object), or from the command line over a folder or prefix.
//!
//! Redelivery is idempotent: a job whose output or failure object exists is skipped. An input
//! that cannot succeed (missing, too large, not decodable, rejected by the task) ends in the
//! failure location and is never retried; only storage and notification outages are (SQS: the
//! message is reported in `batchItemFailures`; other events: the invocation fails).

pub mod events;
pub mod notify;

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use events::EventError;
use hf_inference_core::{InferenceService, ToolkitError};
pub use hf_inference_host::storage;
pub use hf_inference_host::{Location, LocationError};
use notify::{Notification, Notifier, RequestParameters, ResponseParameters, Topic};
use storage::{ObjectStore, StorageError};

/// The handler's settings (every one also an environment variable).
#[derive(Debug, Clone, clap::Args)]
pub struct AsyncArgs {
    /// Where results are written: `<output>/<inference-id>.out` (`s3://bucket/prefix/` or a
    /// folder). Needed for S3 events, folder runs and jobs without `OutputLocation`.
    #[arg(long, env = "HF_ASYNC_OUTPUT_PATH")]
    pub output: Option<Location>,

    /// Where error bodies are written: `<failure>/<inference-id>-error.out` (default: the output
    /// path).
    #[arg(long, env = "HF_ASYNC_FAILURE_PATH")]
    pub failure: Option<Location>,

    /// The input's content type when neither the job nor the object says (S3 metadata, or the
    /// file extension: .json, .jsonl, .csv, and for image tasks .png, .jpg/.jpeg, .gif, .bmp,
    /// .tif/.tiff, .webp).
    #[arg(
        long,
        env = "HF_ASYNC_CONTENT_TYPE",
        default_value = "application/json"
    )]
    pub content_type: String,

    /// The response type when the job does not say (default: JSON, or JSON Lines for a JSON
    /// Lines input).
    #[arg(long, env = "HF_ASYNC_ACCEPT")]
    pub accept: Option<String>,

    /// The largest input read, in MiB (SageMaker async allows 1 GB).
    #[arg(long, env = "HF_ASYNC_MAX_INPUT_MB", default_value_t = 1024)]
    pub max_input_mb: u64,

    /// Where success notifications go: an SNS topic ARN or a local file (one JSON per line).
    #[arg(long, env = "HF_ASYNC_SUCCESS_TOPIC")]
    pub success_topic: Option<Topic>,

    /// Where error notifications go: an SNS topic ARN or a local file.
    #[arg(long, env = "HF_ASYNC_ERROR_TOPIC")]
    pub error_topic: Option<Topic>,

    /// The `endpointName` of notifications (default: the Lambda function's name).
    #[arg(long, env = "HF_ASYNC_ENDPOINT_NAME")]
    pub endpoint_name: Option<String>,
}

/// One unit of work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Job {
    /// The inference id.
    pub inference_id: String,
    /// The request body.
    #[serde(serialize_with = "as_string")]
    pub input_location: Location,
    /// Its content type; `None`: from the object, else the default.
    pub content_type: Option<String>,
    /// The response type; `None`: the input's own format (JSON, or JSON Lines).
    pub accept: Option<String>,
    /// `InvokeEndpointAsync`'s `CustomAttributes`: parameters for a raw body (an image),
    /// `candidate_labels=cat,dog;top_k=2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_attributes: Option<String>,
    /// Where the response goes.
    #[serde(serialize_with = "as_string")]
    pub output_location: Location,
    /// Where the error body goes.
    #[serde(serialize_with = "as_string")]
    pub failure_location: Location,
}

fn as_string<S: serde::Serializer>(l: &Location, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&l.to_string())
}

/// A job as a message or a direct invocation gives it, with `InvokeEndpointAsync`'s names.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobRequest {
    /// The input object.
    pub input_location: String,
    /// The inference id (default: the input's file name without extension).
    #[serde(default)]
    pub inference_id: Option<String>,
    /// The input's content type.
    #[serde(default)]
    pub content_type: Option<String>,
    /// The response type.
    #[serde(default)]
    pub accept: Option<String>,
    /// The custom attributes (parameters for a raw image body).
    #[serde(default)]
    pub custom_attributes: Option<String>,
    /// The output object (default: `<HF_ASYNC_OUTPUT_PATH>/<id>.out`).
    #[serde(default)]
    pub output_location: Option<String>,
    /// The failure object (default: `<HF_ASYNC_FAILURE_PATH>/<id>-error.out`).
    #[serde(default)]
    pub failure_location: Option<String>,
}

/// Why a request is not a job (it is dropped, not retried: it can never succeed).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A location that does not parse.
    #[error(transparent)]
    Location(#[from] LocationError),
    /// No inference id given and none to take from the input's name.
    #[error("{0} has no file name to take an inference id from")]
    NoFileName(Location),
    /// No output location in the job and none configured.
    #[error("no OutputLocation in the job and no HF_ASYNC_OUTPUT_PATH configured")]
    NoOutput,
}

/// What became of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status")]
pub enum Outcome {
    /// The response was written.
    Completed {
        /// The job.
        inference_id: String,
        /// Where.
        location: String,
    },
    /// The error body was written.
    Failed {
        /// The job.
        inference_id: String,
        /// Where.
        location: String,
        /// Why.
        reason: String,
    },
    /// Already done (redelivery).
    Skipped {
        /// The job.
        inference_id: String,
        /// The existing result.
        location: String,
    },
}

/// How a job is run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Send the notification again when the job turns out to be done already (event
    /// redelivery: the first notification may be what failed).
    pub renotify: bool,
    /// Give up (and record the failure) at this instant: a Lambda function's deadline less a
    /// margin, so that an input too slow to finish fails once instead of being retried forever.
    pub deadline: Option<std::time::Instant>,
}

/// The handler: the service, storage, notifications and settings.
pub struct Handler {
    service: InferenceService,
    store: Arc<dyn ObjectStore>,
    notifier: Notifier,
    args: AsyncArgs,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("args", &self.args)
            .finish_non_exhaustive()
    }
}

/// An inference id safe as a file name: the characters SageMaker allows, others replaced.
fn clean_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

impl Handler {
    /// Assembles a handler.
    pub fn new(service: InferenceService, store: Arc<dyn ObjectStore>, args: AsyncArgs) -> Self {
        let notifier = Notifier::new(args.success_topic.clone(), args.error_topic.clone());
        Self {
            service,
            store,
            notifier,
            args,
        }
    }

    /// The job for an input, filling in what the request leaves out from the settings.
    pub fn job(&self, req: JobRequest) -> Result<Job, JobError> {
        let input: Location = req.input_location.parse()?;
        let id = match req.inference_id.filter(|i| !i.trim().is_empty()) {
            Some(id) => clean_id(id.trim()),
            None => match input.stem() {
                Some(s) => clean_id(&s),
                None => return Err(JobError::NoFileName(input)),
            },
        };
        let output_prefix = || self.args.output.clone().ok_or(JobError::NoOutput);
        let output_location = match req.output_location {
            Some(o) => o.parse()?,
            None => output_prefix()?.join(&format!("{id}.out")),
        };
        let failure_location = match req.failure_location {
            Some(f) => f.parse()?,
            None => match &self.args.failure {
                Some(f) => f.join(&format!("{id}-error.out")),
                None => output_prefix()?.join(&format!("{id}-error.out")),
            },
        };
        Ok(Job {
            inference_id: id,
            input_location: input,
            content_type: req.content_type,
            accept: req.accept.or_else(|| self.args.accept.clone()),
            custom_attributes: req.custom_attributes,
            output_location,
            failure_location,
        })
    }

    /// Runs one job. `Err` only for outages worth retrying (storage, notifications); a job
    /// that cannot succeed ends as [`Outcome::Failed`].
    pub async fn run(&self, job: &Job) -> Result<Outcome, StorageError> {
        self.run_with(job, RunOptions::default()).await
    }

    /// Runs one job with options (see [`RunOptions`]).
    pub async fn run_with(&self, job: &Job, opts: RunOptions) -> Result<Outcome, StorageError> {
        let received = SystemTime::now();
        if let Some(done) = self.already_done(job, opts.renotify, received).await? {
            return Ok(done);
        }
        let limit = self.args.max_input_mb.saturating_mul(1024 * 1024);
        let (content_type, result) = match self.store.get(&job.input_location, limit).await {
            Ok(object) => {
                // S3 says binary/octet-stream for uploads that gave no type: that is no answer
                let stored = object
                    .content_type
                    .filter(|c| !c.trim().is_empty() && !c.contains("octet-stream"));
                let ct = job
                    .content_type
                    .clone()
                    .or(stored)
                    .or_else(|| {
                        job.input_location
                            .file_name()
                            .and_then(storage::content_type_of)
                            .map(str::to_owned)
                    })
                    .unwrap_or_else(|| self.args.content_type.clone());
                let call = self.service.invoke_bytes_with(
                    Some(&ct),
                    job.accept.as_deref(),
                    object.body,
                    job.custom_attributes.as_deref(),
                );
                let result = match opts.deadline {
                    Some(deadline) => tokio::time::timeout_at(deadline.into(), call)
                        .await
                        .unwrap_or_else(|_| {
                            Err(ToolkitError::Validation(
                                "the job did not finish within the function's time limit; give it a longer timeout, split the input, or run it on an asynchronous endpoint (the container)".into(),
                            ))
                        }),
                    None => call.await,
                };
                (ct, result)
            }
            Err(StorageError::NotFound(what)) => (
                job.content_type.clone().unwrap_or_default(),
                Err(ToolkitError::Validation(format!(
                    "the input {what} does not exist; upload it before sending the job"
                ))),
            ),
            Err(StorageError::TooLarge { .. }) => (
                job.content_type.clone().unwrap_or_default(),
                Err(ToolkitError::PayloadTooLarge {
                    limit: usize::try_from(limit).unwrap_or(usize::MAX),
                }),
            ),
            Err(e) => return Err(e),
        };
        let request = RequestParameters {
            content_type,
            endpoint_name: self.endpoint_name(),
            input_location: job.input_location.to_string(),
        };
        let (outcome, notification) = match result {
            Ok(out) => {
                self.store
                    .put(
                        &job.output_location,
                        Bytes::from(out.body),
                        out.content_type,
                    )
                    .await?;
                let location = job.output_location.to_string();
                let n = self.notification(
                    job,
                    received,
                    request,
                    None,
                    ResponseParameters {
                        content_type: out.content_type.to_owned(),
                        output_location: Some(location.clone()),
                        failure_location: None,
                    },
                );
                let o = Outcome::Completed {
                    inference_id: job.inference_id.clone(),
                    location,
                };
                (o, n)
            }
            Err(e) => {
                self.store
                    .put(
                        &job.failure_location,
                        Bytes::from(e.body_json()),
                        "application/json",
                    )
                    .await?;
                let location = job.failure_location.to_string();
                let reason = format!("ClientError: {}", e.body().message);
                let n = self.notification(
                    job,
                    received,
                    request,
                    Some(reason.clone()),
                    ResponseParameters {
                        content_type: "application/json".into(),
                        output_location: None,
                        failure_location: Some(location.clone()),
                    },
                );
                let o = Outcome::Failed {
                    inference_id: job.inference_id.clone(),
                    location,
                    reason,
                };
                (o, n)
            }
        };
        tracing::info!(inference_id = %job.inference_id, outcome = ?outcome, "job done");
        self.notifier
            .publish(&notification)
            .await
            .map_err(StorageError::Unavailable)?;
        Ok(outcome)
    }

    /// A job whose output or failure object exists is not run again. With `renotify` (a
    /// redelivered event) its notification is sent again: the first one may be what failed.
    async fn already_done(
        &self,
        job: &Job,
        renotify: bool,
        received: SystemTime,
    ) -> Result<Option<Outcome>, StorageError> {
        let request = |content_type: String| RequestParameters {
            content_type,
            endpoint_name: self.endpoint_name(),
            input_location: job.input_location.to_string(),
        };
        let input_type = job.content_type.clone().unwrap_or_default();
        let (location, notification) =
            if let Some(ct) = self.store.head(&job.output_location).await? {
                let location = job.output_location.to_string();
                let n = self.notification(
                    job,
                    received,
                    request(input_type),
                    None,
                    ResponseParameters {
                        content_type: ct.unwrap_or_else(|| "application/json".into()),
                        output_location: Some(location.clone()),
                        failure_location: None,
                    },
                );
                (location, n)
            } else if self.store.head(&job.failure_location).await?.is_some() {
                let location = job.failure_location.to_string();
                let reason = match self.store.get(&job.failure_location, 1 << 20).await {
                    Ok(o) => serde_json::from_slice::<Value>(&o.body)
                        .ok()
                        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                        .unwrap_or_default(),
                    Err(_) => String::new(),
                };
                let n = self.notification(
                    job,
                    received,
                    request(input_type),
                    Some(format!("ClientError: {reason}")),
                    ResponseParameters {
                        content_type: "application/json".into(),
                        output_location: None,
                        failure_location: Some(location.clone()),
                    },
                );
                (location, n)
            } else {
                return Ok(None);
            };
        tracing::info!(inference_id = %job.inference_id, %location, "already done; skipped");
        if renotify {
            self.notifier
                .publish(&notification)
                .await
                .map_err(StorageError::Unavailable)?;
        }
        Ok(Some(Outcome::Skipped {
            inference_id: job.inference_id.clone(),
            location,
        }))
    }

    fn endpoint_name(&self) -> String {
        self.args
            .endpoint_name
            .clone()
            .or_else(|| std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok())
            .unwrap_or_else(|| "hf-inference-async".into())
    }

    fn notification(
        &self,
        job: &Job,
        received: SystemTime,
        request: RequestParameters,
        failure_reason: Option<String>,
        response: ResponseParameters,
    ) -> Notification {
        Notification {
            aws_region: std::env::var("AWS_REGION").unwrap_or_default(),
            event_time: notify::iso8601(SystemTime::now()),
            received_time: notify::iso8601(received),
            invocation_status: if failure_reason.is_some() {
                "Failed".into()
            } else {
                "Completed".into()
            },
            failure_reason,
            request_parameters: request,
            response_parameters: response,
            inference_id: job.inference_id.clone(),
            event_version: "1.0".into(),
            event_source: "aws:sagemaker".into(),
            event_name: "InferenceResult".into(),
        }
    }

    /// Runs every object directly under `input` (a folder or an S3 prefix) as a job.
    pub async fn run_prefix(&self, input: &Location) -> Result<Vec<Outcome>, StorageError> {
        let mut outcomes = Vec::new();
        for object in self.store.list(input).await? {
            let req = JobRequest {
                input_location: object.to_string(),
                inference_id: None,
                content_type: None,
                accept: None,
                custom_attributes: None,
                output_location: None,
                failure_location: None,
            };
            match self.job(req) {
                Ok(job) => outcomes.push(self.run(&job).await?),
                Err(e) => tracing::error!(input = %object, error = %e, "not a job; skipped"),
            }
        }
        Ok(outcomes)
    }
}
