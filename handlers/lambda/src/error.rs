//! The proxy's errors, on the container's wire vocabulary: the same `{"code", "type",
//! "message"}` body and, where the container has a kind for the fault, the same kind
//! (`ResourceNotFoundException`, `InternalServerException`, `ValidationError`, `Timeout`,
//! `ServiceUnavailable`, `PayloadTooLarge`). Faults only a proxy meets (SageMaker throttling,
//! a model not ready, an unreachable or misbehaving endpoint) have kinds of their own.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hf_inference_core::{ErrorBody, ToolkitError};
use hf_inference_http::{json_response, ApiError};

/// Everything the proxy answers with an error of its own (an endpoint's own error answer is
/// relayed as it came instead).
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The request's fault, or ours, as the container says it.
    #[error(transparent)]
    Toolkit(#[from] ToolkitError),
    /// No such route or path (404 `ResourceNotFoundException`, the container's kind).
    #[error("{0}")]
    NotFound(String),
    /// A result location outside the route's prefixes (403).
    #[error("{0}")]
    Forbidden(String),
    /// A result larger than a Lambda answer can be (413 `PayloadTooLarge`).
    #[error("{0}")]
    ResultTooLarge(String),
    /// SageMaker throttled the call (429, retry later).
    #[error("{0}")]
    Throttled(String),
    /// The endpoint's model is not ready yet (503, retry later).
    #[error("{0}")]
    ModelNotReady(String),
    /// SageMaker is unavailable (503 `ServiceUnavailable`, retry later).
    #[error("{0}")]
    ServiceUnavailable(String),
    /// The endpoint did not answer in time (504 `Timeout`).
    #[error("{0}")]
    Timeout(String),
    /// The endpoint or storage could not be reached, or refused the call (502).
    #[error("{0}")]
    Upstream(String),
    /// The endpoint's answer does not match the task's response schema (502).
    #[error("{0}")]
    InvalidResponse(String),
}

impl ProxyError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Toolkit(e) => e.status(),
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::ResultTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::ModelNotReady(_) | Self::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Upstream(_) | Self::InvalidResponse(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// The body's `type`: the container's kind where it has one.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Toolkit(e) => e.kind(),
            Self::NotFound(_) => ToolkitError::NotFound.kind(),
            Self::Forbidden(_) => "AccessDeniedException",
            Self::ResultTooLarge(_) => "PayloadTooLarge",
            Self::Throttled(_) => "Throttled",
            Self::ModelNotReady(_) => "ModelNotReady",
            Self::ServiceUnavailable(_) => "ServiceUnavailable",
            Self::Timeout(_) => "Timeout",
            Self::Upstream(_) => "UpstreamError",
            Self::InvalidResponse(_) => "InvalidResponse",
        }
    }

    /// The wire body.
    pub fn body(&self) -> ErrorBody {
        match self {
            Self::Toolkit(e) => e.body(),
            other => ErrorBody {
                code: other.status().as_u16(),
                kind: other.kind().to_owned(),
                message: other.to_string(),
            },
        }
    }

    /// Whether the client should come back later (`Retry-After`).
    fn retry_later(&self) -> bool {
        matches!(
            self,
            Self::Throttled(_) | Self::ModelNotReady(_) | Self::ServiceUnavailable(_)
        )
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        let retry = self.retry_later();
        let mut r = match self {
            // the container's own response: same body, same logging
            Self::Toolkit(e) => ApiError(e).into_response(),
            other => {
                let body = serde_json::to_vec(&other.body()).unwrap_or_default();
                json_response(other.status(), body)
            }
        };
        if retry {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_the_containers() {
        let e = ProxyError::NotFound("no route named \"x\" is configured".into());
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        assert_eq!(e.body().kind, "ResourceNotFoundException");
        let e = ProxyError::from(ToolkitError::Internal("no SageMaker client".into()));
        assert_eq!(e.body().kind, "InternalServerException");
        assert!(
            !e.body().message.contains("SageMaker"),
            "internals stay in the log"
        );
        let e = ProxyError::Timeout("slow".into());
        assert_eq!(
            e.kind(),
            ToolkitError::Timeout(1).kind(),
            "the same kind as the container's timeout"
        );
        let r = ProxyError::Throttled("slow down".into()).into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "5");
    }
}
