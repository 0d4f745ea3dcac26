//! Success and error notifications with SageMaker asynchronous inference's message shape
//! (`eventSource: aws:sagemaker`, `eventName: InferenceResult`, `invocationStatus` Completed or
//! Failed), published to an SNS topic (an `arn:aws:sns:...`) or appended as one JSON line to a
//! local file (a path or `file://...`) for local runs.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::OnceCell;

/// Where notifications go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic {
    /// An SNS topic ARN.
    Sns(String),
    /// A local file, one JSON message per line.
    File(PathBuf),
}

impl std::str::FromStr for Topic {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.starts_with("arn:") {
            if !s.contains(":sns:") {
                return Err(format!("{s:?} is not an SNS topic ARN"));
            }
            return Ok(Topic::Sns(s.to_owned()));
        }
        if s.is_empty() {
            return Err("an empty topic".into());
        }
        Ok(Topic::File(PathBuf::from(
            s.strip_prefix("file://").unwrap_or(s),
        )))
    }
}

/// `requestParameters`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequestParameters {
    /// The input's content type.
    pub content_type: String,
    /// The endpoint (here: the handler's name).
    pub endpoint_name: String,
    /// The input.
    pub input_location: String,
}

/// `responseParameters`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResponseParameters {
    /// The output's content type.
    pub content_type: String,
    /// The output (on success).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_location: Option<String>,
    /// The error body (on failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_location: Option<String>,
}

/// One notification.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// `AWS_REGION`.
    pub aws_region: String,
    /// When the result was written (ISO 8601, UTC, milliseconds).
    pub event_time: String,
    /// When the job was received.
    pub received_time: String,
    /// `Completed` or `Failed`.
    pub invocation_status: String,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// The request.
    pub request_parameters: RequestParameters,
    /// The response.
    pub response_parameters: ResponseParameters,
    /// The job's id.
    pub inference_id: String,
    /// `1.0`.
    pub event_version: String,
    /// `aws:sagemaker`.
    pub event_source: String,
    /// `InferenceResult`.
    pub event_name: String,
}

/// A time as `2026-11-26T03:04:05.678Z`.
pub fn iso8601(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // days since 1970-01-01 to a civil date (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Publishes notifications to the configured topics.
#[derive(Debug, Default)]
pub struct Notifier {
    success: Option<Topic>,
    error: Option<Topic>,
    sns: OnceCell<aws_sdk_sns::Client>,
}

impl Notifier {
    /// Topics for successes and failures (either may be absent: nothing is sent then).
    pub fn new(success: Option<Topic>, error: Option<Topic>) -> Self {
        Self {
            success,
            error,
            sns: OnceCell::new(),
        }
    }

    /// Sends `n` to the topic for its status.
    pub async fn publish(&self, n: &Notification) -> Result<(), String> {
        let topic = if n.invocation_status == "Completed" {
            &self.success
        } else {
            &self.error
        };
        let Some(topic) = topic else {
            return Ok(());
        };
        let message = serde_json::to_string(n).map_err(|e| e.to_string())?;
        match topic {
            Topic::File(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    tokio::fs::create_dir_all(dir)
                        .await
                        .map_err(|e| format!("{}: {e}", dir.display()))?;
                }
                let mut f = tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                // tokio hands writes to a blocking thread: flush before reporting success
                f.write_all(format!("{message}\n").as_bytes())
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                f.flush()
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))
            }
            Topic::Sns(arn) => {
                let client = self
                    .sns
                    .get_or_init(|| async {
                        let shared =
                            aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                        aws_sdk_sns::Client::new(&shared)
                    })
                    .await;
                client
                    .publish()
                    .topic_arn(arn)
                    .message(message)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        format!("SNS {arn}: {}", aws_sdk_sns::error::DisplayErrorContext(&e))
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_times_and_parses_topics() {
        let t = UNIX_EPOCH + Duration::from_millis(1_643_150_760_608);
        assert_eq!(iso8601(t), "2022-01-25T22:46:00.608Z");
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(iso8601(t), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            "arn:aws:sns:us-east-1:123456789012:done".parse::<Topic>(),
            Ok(Topic::Sns("arn:aws:sns:us-east-1:123456789012:done".into()))
        );
        assert!("arn:aws:sqs:us-east-1:1:q".parse::<Topic>().is_err());
        assert_eq!(
            "file:///tmp/n.jsonl".parse::<Topic>(),
            Ok(Topic::File("/tmp/n.jsonl".into()))
        );
    }
}
