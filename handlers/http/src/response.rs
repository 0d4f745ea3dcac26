//! Responses every host sends the same way: the JSON error body of a [`ToolkitError`], JSON
//! answers, and (with the `engine` feature) a service's `Answer`, whole or streamed.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
#[cfg(feature = "engine")]
use futures_util::StreamExt;
#[cfg(feature = "engine")]
use hf_inference_core::Answer;
use hf_inference_core::ToolkitError;

/// The error type of a failed request's response (`ToolkitError::kind`), for the request log
/// line and the error counters (read by `observe`, an `engine` module: without it the field is
/// only written).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "engine"), allow(dead_code))]
pub(crate) struct ErrorType(pub(crate) &'static str);

/// A [`ToolkitError`] as an HTTP response with the JSON error body.
#[derive(Debug)]
pub struct ApiError(pub ToolkitError);

impl From<ToolkitError> for ApiError {
    fn from(e: ToolkitError) -> Self {
        Self(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if status.is_server_error() {
            let mut chain = self.0.to_string();
            let mut source = std::error::Error::source(&self.0);
            while let Some(s) = source {
                chain.push_str(": ");
                chain.push_str(&s.to_string());
                source = s.source();
            }
            tracing::error!(status = status.as_u16(), error = %chain, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %self.0, "request rejected");
        }
        let mut r = json_response(status, self.0.body_json());
        r.extensions_mut().insert(ErrorType(self.0.kind()));
        r
    }
}

/// A response with a JSON body (`Content-Type: application/json`).
pub fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A service's answer as a response: a whole body with its content type, or a stream of chunks.
#[cfg(feature = "engine")]
pub fn answer_response(answer: Answer) -> Response {
    match answer {
        Answer::Whole(out) => {
            let mut r = Response::new(Body::from(out.body));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(out.content_type),
            );
            r
        }
        Answer::Stream {
            content_type,
            chunks,
        } => streamed(content_type, chunks),
    }
}

/// A streamed body of `content_type`, sent chunk by chunk as they come.
#[cfg(feature = "engine")]
pub(crate) fn streamed(
    content_type: &'static str,
    chunks: hf_inference_core::AnswerStream,
) -> Response {
    let mut r = Response::new(Body::from_stream(
        chunks.map(Ok::<_, std::convert::Infallible>),
    ));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
