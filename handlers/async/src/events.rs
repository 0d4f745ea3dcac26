//! The Lambda events the handler takes, typed with `aws_lambda_events`: S3 `ObjectCreated`
//! notifications, SQS messages (a job, or an S3 notification forwarded to the queue; answered
//! with `batchItemFailures`) and a direct invocation with a job.

use aws_lambda_events::event::s3::S3Entity;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde::Deserialize;
use serde_json::Value;

use crate::storage::StorageError;
use crate::{Handler, JobError, JobRequest, Location, Outcome, RunOptions};

/// Why an event could not be handled; the invocation fails (and Lambda may retry it).
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Neither S3 nor SQS records, nor a job.
    #[error("unrecognised event: expected S3 or SQS records, or a job with InputLocation")]
    Unrecognised,
    /// Records or a job that do not have the shape of their kind.
    #[error("not {kind}: {source}")]
    Malformed {
        /// What the event looked like.
        kind: &'static str,
        /// Why it did not parse.
        #[source]
        source: serde_json::Error,
    },
    /// A direct invocation's job is not usable.
    #[error(transparent)]
    Job(#[from] JobError),
    /// Storage or notifications failed: worth retrying.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The answer could not be encoded.
    #[error("could not encode the answer: {0}")]
    Encode(#[source] serde_json::Error),
}

/// Enough of any event to tell its kind.
#[derive(Debug, Deserialize)]
struct Probe {
    #[serde(rename = "Records", default)]
    records: Option<Vec<ProbeRecord>>,
    #[serde(rename = "InputLocation", default)]
    input_location: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProbeRecord {
    #[serde(default)]
    event_source: Option<String>,
}

/// An S3 notification as far as jobs need it: `aws_lambda_events`' own `S3EventRecord` also
/// requires `eventTime`, `userIdentity` and `requestParameters`, which notifications written by
/// hand or relayed by other tools leave out; the `s3` part is the crate's type. Records are read
/// one by one, so one malformed record is skipped instead of failing (and retrying) the rest.
#[derive(Debug, Deserialize)]
struct S3Notification {
    #[serde(rename = "Records")]
    records: Vec<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct S3Record {
    #[serde(default)]
    event_name: Option<String>,
    s3: S3Entity,
}

/// An SQS message body that is S3's test event, sent when a notification is configured.
#[derive(Debug, Deserialize)]
struct S3TestEvent {
    #[serde(rename = "Event")]
    event: String,
}

fn malformed(kind: &'static str) -> impl FnOnce(serde_json::Error) -> EventError {
    move |source| EventError::Malformed { kind, source }
}

impl Handler {
    /// Handles a Lambda event: S3 notifications, SQS messages (jobs or forwarded S3
    /// notifications; answered with `batchItemFailures`) or a job object.
    pub async fn handle_event(
        &self,
        event: Value,
        deadline: Option<std::time::Instant>,
    ) -> Result<Value, EventError> {
        let opts = RunOptions {
            renotify: true,
            deadline,
        };
        let probe: Probe = serde_json::from_value(event.clone()).map_err(malformed("an event"))?;
        if let Some(records) = probe.records {
            let sqs = records
                .iter()
                .any(|r| r.event_source.as_deref() == Some("aws:sqs"));
            if sqs {
                let event: SqsEvent =
                    serde_json::from_value(event).map_err(malformed("an SQS event"))?;
                let answer = self.handle_sqs(event, opts).await;
                return serde_json::to_value(answer).map_err(EventError::Encode);
            }
            let event: S3Notification =
                serde_json::from_value(event).map_err(malformed("an S3 event"))?;
            let outcomes = self.handle_s3_records(&event.records, opts).await?;
            return Ok(serde_json::json!({ "outcomes": outcomes }));
        }
        if probe.input_location.is_some() {
            let req: JobRequest = serde_json::from_value(event).map_err(malformed("a job"))?;
            let job = self.job(req)?;
            let outcome = self.run_with(&job, opts).await?;
            return serde_json::to_value(outcome).map_err(EventError::Encode);
        }
        Err(EventError::Unrecognised)
    }

    /// Every message of an SQS batch; those worth retrying are reported back.
    async fn handle_sqs(&self, event: SqsEvent, opts: RunOptions) -> SqsBatchResponse {
        let mut answer = SqsBatchResponse::default();
        for message in event.records {
            let id = message.message_id.unwrap_or_default();
            let body = message.body.unwrap_or_default();
            if let Err(e) = self.handle_message(&body, opts).await {
                tracing::warn!(message_id = %id, error = %e, "will be retried");
                answer.add_failure(id);
            }
        }
        answer
    }

    /// One SQS message body. `Err` only when the message should be redelivered.
    async fn handle_message(&self, body: &str, opts: RunOptions) -> Result<(), StorageError> {
        let value: Value = match serde_json::from_str(body) {
            Ok(v) => v,
            Err(e) => {
                // a body that is not JSON can never succeed: dropped, not retried
                tracing::error!(error = %e, "an SQS message that is not JSON; dropped");
                return Ok(());
            }
        };
        if let Ok(s3) = serde_json::from_value::<S3Notification>(value.clone()) {
            return self.handle_s3_records(&s3.records, opts).await.map(|_| ());
        }
        if serde_json::from_value::<S3TestEvent>(value.clone())
            .is_ok_and(|t| t.event == "s3:TestEvent")
        {
            return Ok(());
        }
        let job = match serde_json::from_value::<JobRequest>(value)
            .map_err(|e| e.to_string())
            .and_then(|r| self.job(r).map_err(|e| e.to_string()))
        {
            Ok(job) => job,
            Err(e) => {
                tracing::error!(error = %e, "an SQS message that is not a job; dropped");
                return Ok(());
            }
        };
        self.run_with(&job, opts).await.map(|_| ())
    }

    async fn handle_s3_records(
        &self,
        records: &[Value],
        opts: RunOptions,
    ) -> Result<Vec<Outcome>, StorageError> {
        let mut outcomes = Vec::new();
        for r in records {
            let r: S3Record = match S3Record::deserialize(r) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "an S3 record without an object; skipped");
                    continue;
                }
            };
            let created = r
                .event_name
                .as_deref()
                .is_some_and(|n| n.starts_with("ObjectCreated"));
            let bucket = r.s3.bucket.name.as_deref();
            let key = r.s3.object.key.as_deref();
            let (true, Some(bucket), Some(key)) = (created, bucket, key) else {
                continue;
            };
            // keys arrive form-encoded: '+' for a space, %XX for the rest
            let key = key.replace('+', " ");
            let key = percent_encoding::percent_decode_str(&key)
                .decode_utf8_lossy()
                .into_owned();
            if key.ends_with('/') || key.ends_with(".out") {
                // a folder marker, or one of our own results written under the trigger prefix
                tracing::info!(%key, "not an input; skipped");
                continue;
            }
            let input = format!("s3://{bucket}/{key}");
            // the id carries the object's ETag: the same name uploaded again is a new job, and
            // two inputs of the same name in different folders do not share a result unless
            // they are the same bytes
            let etag: String =
                r.s3.object
                    .e_tag
                    .as_deref()
                    .unwrap_or("")
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .take(8)
                    .collect();
            let stem = input.parse::<Location>().ok().and_then(|l| l.stem());
            let req = JobRequest {
                inference_id: stem.map(|s| {
                    if etag.is_empty() {
                        s
                    } else {
                        format!("{s}-{etag}")
                    }
                }),
                input_location: input,
                content_type: None,
                accept: None,
                custom_attributes: None,
                output_location: None,
                failure_location: None,
            };
            let job = match self.job(req) {
                Ok(job) => job,
                Err(e) => {
                    tracing::error!(%key, error = %e, "not a job; skipped");
                    continue;
                }
            };
            outcomes.push(self.run_with(&job, opts).await?);
        }
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_events_have_their_types() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        let s3: S3Notification = serde_json::from_str(&read("s3-put.json")).unwrap();
        let record = S3Record::deserialize(&s3.records[0]).unwrap();
        assert_eq!(record.s3.bucket.name.as_deref(), Some("hf-async-demo"));
        // a record that is not an object notification does not spoil its batch
        let mixed: S3Notification = serde_json::from_value(
            serde_json::json!({"Records": [{"eventName": "x"}, s3.records[0]]}),
        )
        .unwrap();
        assert_eq!(mixed.records.len(), 2);
        assert!(S3Record::deserialize(&mixed.records[0]).is_err());
        // the complete record parses as the crate's own S3 event too
        let full: aws_lambda_events::event::s3::S3Event =
            serde_json::from_str(&read("s3-put.json")).unwrap();
        assert_eq!(full.records.len(), 1);
        let sqs: SqsEvent = serde_json::from_str(&read("sqs-job.json")).unwrap();
        let body = sqs.records[0].body.as_deref().unwrap_or_default();
        assert!(serde_json::from_str::<JobRequest>(body).is_ok());
        let job: JobRequest = serde_json::from_str(&read("job.json")).unwrap();
        assert!(job.input_location.starts_with("s3://"));
    }
}
