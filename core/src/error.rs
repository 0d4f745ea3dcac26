//! The one error type of the toolkit, its HTTP status and its wire body.
//!
//! The Python toolkit answers HTTP 400 for *every* handler failure (`handler_service.py::handle`
//! wraps all exceptions in `PredictionException(str(e), 400)`), including its own bugs and a model
//! that failed to load. We keep the wire body (`{"code", "type", "message"}`, as multi-model-server's
//! `ErrorResponse.java`) so that clients parsing it keep working, but pick the status by who is at
//! fault; see [`ToolkitError::status`].

use http::StatusCode;
use serde::Serialize;

/// Everything that can go wrong between the bytes of a request and the bytes of its response.
#[derive(Debug, thiserror::Error)]
pub enum ToolkitError {
    // ---- client faults -------------------------------------------------------------------------
    /// The request body could not be decoded or does not match the task's request schema.
    #[error("{0}")]
    Validation(String),
    /// The request is well-formed but a parameter value is not usable (e.g. a negative `top_k`).
    #[error("{0}")]
    InvalidParameters(String),
    /// The input is valid JSON but cannot be processed by the model (e.g. longer than the model's
    /// maximum sequence length without `truncation`).
    #[error("{0}")]
    InputTooLong(String),
    /// The body is larger than the configured limit.
    #[error("request body is larger than the limit of {limit} bytes (SAGEMAKER_MAX_PAYLOAD_IN_MB); send smaller requests or raise the limit")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request `Content-Type` is not one we decode.
    #[error("Content type {content_type} is not supported; send one of: {supported}")]
    UnsupportedContentType {
        /// What the client sent (`None` when the header is missing).
        content_type: String,
        /// The accepted media types, comma separated.
        supported: String,
    },
    /// The `Accept` header names nothing we can produce for this response.
    #[error("Accept {accept} is not supported{reason}; ask for one of: {supported}")]
    UnsupportedAccept {
        /// What the client sent.
        accept: String,
        /// Why, when the type is known but not possible for this response (may be empty).
        reason: String,
        /// The media types we can produce, comma separated.
        supported: String,
    },
    /// The path does not exist.
    #[error("Requested resource is not found, please refer to API document.")]
    NotFound,
    /// The method is not allowed on an existing path.
    #[error("method {0} is not allowed on this path")]
    MethodNotAllowed(String),

    // ---- server state --------------------------------------------------------------------------
    /// The model is not loaded yet (or failed to load); try again later.
    #[error("{0}")]
    Unhealthy(String),
    /// Too many requests are queued; try again later.
    #[error(
        "the inference queue is full ({capacity} requests waiting); retry later or add instances"
    )]
    Overloaded {
        /// The queue capacity.
        capacity: usize,
    },
    /// The request waited or ran longer than `SAGEMAKER_MODEL_SERVER_TIMEOUT`.
    #[error("inference did not finish within {0} seconds (SAGEMAKER_MODEL_SERVER_TIMEOUT)")]
    Timeout(u64),

    // ---- server faults -------------------------------------------------------------------------
    /// The model files could not be found, read or understood.
    #[error("{message}")]
    ModelLoad {
        /// What failed, naming the file.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The startup configuration is not usable (unknown task, unsupported architecture, ...).
    #[error("{0}")]
    Config(String),
    /// A failure inside the model computation.
    #[error("inference failed: {0}")]
    Inference(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else that is our fault.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The wire body of every error: `{"code": <status>, "type": "<kind>", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// The HTTP status code, repeated in the body as multi-model-server does.
    pub code: u16,
    /// A stable machine-readable kind, e.g. `ValidationError`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What was wrong and how to fix it.
    pub message: String,
}

impl ToolkitError {
    /// A model-loading error without an underlying source.
    pub fn model_load(message: impl Into<String>) -> Self {
        Self::ModelLoad {
            message: message.into(),
            source: None,
        }
    }

    /// A model-loading error that keeps its source.
    pub fn model_load_with(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::ModelLoad {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// The HTTP status of this error.
    ///
    /// Parity choice: the Python toolkit uses 400 for everything. We keep 400 for bad input
    /// (so the common case is unchanged) and differ where the toolkit's answer is wrong:
    /// 413 for a too-large body (the toolkit also uses 413 there), 415/406 for unsupported media
    /// types (toolkit: 400), 404/405 for routing, 503 while the model is not ready or the queue is
    /// full (toolkit: /ping lies and requests block), 504 for a timeout, and 500 only for faults
    /// that are ours (toolkit: 400). The README's compatibility table lists each.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::InvalidParameters(_) | Self::InputTooLong(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedContentType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::UnsupportedAccept { .. } => StatusCode::NOT_ACCEPTABLE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unhealthy(_) | Self::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::ModelLoad { .. } | Self::Config(_) | Self::Inference(_) | Self::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The stable kind string of the body's `type` field.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Validation(_) => "ValidationError",
            Self::InvalidParameters(_) => "InvalidParameters",
            Self::InputTooLong(_) => "InputTooLong",
            Self::PayloadTooLarge { .. } => "PayloadTooLarge",
            Self::UnsupportedContentType { .. } => "UnsupportedContentType",
            Self::UnsupportedAccept { .. } => "UnsupportedAccept",
            // multi-model-server's name, kept for clients that match on it
            Self::NotFound => "ResourceNotFoundException",
            Self::MethodNotAllowed(_) => "MethodNotAllowed",
            Self::Unhealthy(_) => "ServiceUnavailable",
            Self::Overloaded { .. } => "Overloaded",
            Self::Timeout(_) => "Timeout",
            Self::ModelLoad { .. } => "ModelLoadError",
            Self::Config(_) => "ConfigError",
            Self::Inference(_) => "InferenceError",
            Self::Internal(_) => "InternalServerException",
        }
    }

    /// The body sent to the client. Server faults do not leak internals (paths, source chains):
    /// those go to the log.
    pub fn body(&self) -> ErrorBody {
        let status = self.status();
        let message = if status.is_server_error() && !matches!(self, Self::Timeout(_)) {
            match self {
                Self::Inference(_) => "inference failed; see the server log".to_owned(),
                Self::Internal(_) => "internal error; see the server log".to_owned(),
                _ => self.to_string(),
            }
        } else {
            self.to_string()
        };
        ErrorBody {
            code: status.as_u16(),
            kind: self.kind().to_owned(),
            message,
        }
    }

    /// The body as JSON bytes.
    pub fn body_json(&self) -> Vec<u8> {
        // Serializing a struct of strings and an integer cannot fail.
        serde_json::to_vec(&self.body()).unwrap_or_default()
    }
}

#[cfg(feature = "engine")]
impl From<candle_core::Error> for ToolkitError {
    fn from(e: candle_core::Error) -> Self {
        Self::Inference(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_faults_are_4xx_and_server_faults_5xx() {
        let client = [
            ToolkitError::Validation("x".into()),
            ToolkitError::InvalidParameters("x".into()),
            ToolkitError::InputTooLong("x".into()),
            ToolkitError::PayloadTooLarge { limit: 1 },
            ToolkitError::UnsupportedContentType {
                content_type: "a".into(),
                supported: "b".into(),
            },
            ToolkitError::UnsupportedAccept {
                accept: "a".into(),
                reason: String::new(),
                supported: "b".into(),
            },
            ToolkitError::NotFound,
        ];
        for e in client {
            assert!(e.status().is_client_error(), "{e:?}");
        }
        let server = [
            ToolkitError::Overloaded { capacity: 1 },
            ToolkitError::Unhealthy("loading".into()),
            ToolkitError::model_load("bad"),
            ToolkitError::Internal("secret /path".into()),
        ];
        for e in server {
            assert!(e.status().is_server_error(), "{e:?}");
        }
    }

    #[test]
    fn body_has_code_type_message_and_hides_internals() {
        let b = ToolkitError::Validation("`inputs` must be a string".into()).body();
        assert_eq!(b.code, 400);
        assert_eq!(b.kind, "ValidationError");
        assert_eq!(b.message, "`inputs` must be a string");
        let v: serde_json::Value =
            serde_json::from_slice(&ToolkitError::Internal("/secret/path".into()).body_json())
                .unwrap();
        assert_eq!(v["code"], 500);
        assert!(!v["message"].as_str().unwrap().contains("/secret"));
    }
}
