//! SageMaker Runtime: the client, and its errors as an HTTP client of this function should see
//! them.

use std::time::Duration;

use aws_sdk_sagemakerruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointError;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint_with_response_stream::InvokeEndpointWithResponseStreamError;
use aws_sdk_sagemakerruntime::operation::RequestId;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::error::ProxyError;

/// An error of a SageMaker Runtime call that may carry the container's own answer.
pub trait ContainerError {
    /// The container's status and body, when the container answered with an error.
    fn container_answer(&self) -> Option<(Option<i32>, Option<&str>)>;
}

impl ContainerError for InvokeEndpointError {
    fn container_answer(&self) -> Option<(Option<i32>, Option<&str>)> {
        match self {
            InvokeEndpointError::ModelError(m) => {
                Some((m.original_status_code(), m.original_message()))
            }
            _ => None,
        }
    }
}

impl ContainerError for InvokeEndpointWithResponseStreamError {
    fn container_answer(&self) -> Option<(Option<i32>, Option<&str>)> {
        match self {
            InvokeEndpointWithResponseStreamError::ModelError(m) => {
                Some((m.original_status_code(), m.original_message()))
            }
            _ => None,
        }
    }
}

/// SageMaker's errors on `InvokeEndpoint` (and its streaming variant), as an HTTP client of this
/// function should see them: a `ModelError` is the container's own answer; the rest as
/// [`map_upstream_error`].
pub fn map_sdk_error<E, R>(endpoint: &str, e: SdkError<E, R>) -> Response
where
    E: ContainerError + ProvideErrorMetadata + RequestId + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(s) = &e {
        if let Some((code, message)) = s.err().container_answer() {
            let status = code
                .and_then(|c| u16::try_from(c).ok())
                .and_then(|c| StatusCode::from_u16(c).ok())
                .filter(|c| c.is_client_error() || c.is_server_error())
                .unwrap_or(StatusCode::BAD_GATEWAY);
            let body = message.unwrap_or_default().to_owned();
            let ct = if serde_json::from_str::<Value>(&body).is_ok() {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            let mut r = (status, body).into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            return with_request_id(r, s.err().request_id());
        }
    }
    map_upstream_error(endpoint, e)
}

fn with_request_id(mut r: Response, id: Option<&str>) -> Response {
    if let Some(v) = id.and_then(|id| HeaderValue::from_str(id).ok()) {
        r.headers_mut().insert("x-amzn-requestid", v);
    }
    r
}

/// Any SageMaker Runtime error but the container's own: throttling 429, a model not ready or
/// the service unavailable 503 with `Retry-After`, a timeout 504, anything else 502 naming the
/// request id (transport details go to the log, not to the caller).
pub fn map_upstream_error<E, R>(endpoint: &str, e: SdkError<E, R>) -> Response
where
    E: ProvideErrorMetadata + RequestId + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e {
        SdkError::TimeoutError(_) => ProxyError::Timeout(format!(
            "endpoint {endpoint} did not answer in time; retry, or use an asynchronous route for long work"
        ))
        .into_response(),
        SdkError::ServiceError(s) => {
            let err = s.into_err();
            let id = err.request_id().map(str::to_owned);
            let rid = id.as_deref().unwrap_or("none");
            let error = match err.code() {
                Some("ModelNotReadyException") => ProxyError::ModelNotReady(format!(
                    "endpoint {endpoint}'s model is not ready yet; retry shortly (request id {rid})"
                )),
                Some("ServiceUnavailable") => ProxyError::ServiceUnavailable(format!(
                    "SageMaker is unavailable; retry shortly (request id {rid})"
                )),
                Some("ThrottlingException") => ProxyError::Throttled(format!(
                    "SageMaker throttled the call to {endpoint}; slow down and retry (request id {rid})"
                )),
                _ => ProxyError::Upstream(format!(
                    "endpoint {endpoint}: {} (request id {rid})",
                    err.message()
                        .or(err.code())
                        .unwrap_or("SageMaker refused the call")
                )),
            };
            with_request_id(error.into_response(), id.as_deref())
        }
        other => {
            tracing::warn!(
                endpoint,
                error = %aws_sdk_sagemakerruntime::error::DisplayErrorContext(&other),
                "could not call SageMaker"
            );
            ProxyError::Upstream(format!(
                "could not reach endpoint {endpoint}; see the function's log"
            ))
            .into_response()
        }
    }
}

/// A client from the standard AWS configuration (`AWS_ENDPOINT_URL` /
/// `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME` point it at a stand-in), with a per-call timeout.
pub async fn client_from_env(timeout: Duration) -> aws_sdk_sagemakerruntime::Client {
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let config = aws_sdk_sagemakerruntime::config::Builder::from(&shared)
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(timeout)
                .build(),
        )
        .build();
    aws_sdk_sagemakerruntime::Client::from_conf(config)
}
