//! Streamed endpoint routes: a generation request that asks for a token stream goes through
//! `InvokeEndpointWithResponseStream`, and its payload parts are relayed as they arrive.

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use hf_inference_core::Task;

use crate::proxy::{Call, Proxy, CUSTOM_ATTRIBUTES, INFERENCE_ID, TARGET_VARIANT};
use crate::upstream::map_sdk_error;

/// Whether a request asks for a token stream: a generation task with `Accept: text/event-stream`
/// or `"parameters": {"stream": true}` (the container streams then, and so do we).
pub(crate) fn wants_stream(task: Task, accept: Option<&str>, body: &[u8]) -> bool {
    let generative = matches!(
        task,
        Task::TextGeneration
            | Task::Conversational
            | Task::Text2TextGeneration
            | Task::Summarization
            | Task::Translation
    );
    generative
        && (accept.is_some_and(|a| {
            a.split(',')
                .any(|r| r.split(';').next().map(str::trim) == Some("text/event-stream"))
        }) || serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| {
            v.get("parameters")
                .and_then(|p| p.get("stream"))
                .and_then(serde_json::Value::as_bool)
                == Some(true)
        }))
}

/// Calls `endpoint` with the response stream.
pub(crate) async fn invoke(
    p: &Proxy,
    endpoint: &str,
    variant: Option<&str>,
    call: Call,
) -> Response {
    let client = match p.client() {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let variant = variant
        .map(str::to_owned)
        .or_else(|| call.owned(TARGET_VARIANT));
    let sent = client
        .invoke_endpoint_with_response_stream()
        .endpoint_name(endpoint)
        .body(call.body.to_vec().into())
        .set_content_type(call.content_type().map(str::to_owned))
        .set_accept(call.accept().map(str::to_owned))
        .set_custom_attributes(call.owned(CUSTOM_ATTRIBUTES))
        .set_inference_id(call.owned(INFERENCE_ID))
        .set_target_variant(variant)
        .send()
        .await;
    match sent {
        Ok(out) => relay(endpoint, out),
        Err(e) => map_sdk_error(endpoint, e),
    }
}

/// Relays `InvokeEndpointWithResponseStream`'s payload parts as the response body, as they
/// arrive; an error in the middle of the stream ends it with an SSE error event.
fn relay(
    endpoint: &str,
    out: aws_sdk_sagemakerruntime::operation::invoke_endpoint_with_response_stream::InvokeEndpointWithResponseStreamOutput,
) -> Response {
    use aws_sdk_sagemakerruntime::types::ResponseStream;
    let ct = out.content_type().unwrap_or("text/event-stream").to_owned();
    let endpoint = endpoint.to_owned();
    let chunks = futures_util::stream::unfold(Some(out.body), move |rx| {
        let endpoint = endpoint.clone();
        async move {
            let mut rx = rx?;
            loop {
                match rx.recv().await {
                    Ok(Some(ResponseStream::PayloadPart(part))) => {
                        let bytes = part.bytes.map(|b| b.into_inner()).unwrap_or_default();
                        if !bytes.is_empty() {
                            return Some((
                                Ok::<_, std::convert::Infallible>(bytes::Bytes::from(bytes)),
                                Some(rx),
                            ));
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => return None,
                    Err(e) => {
                        tracing::warn!(endpoint = %endpoint, error = %aws_sdk_sagemakerruntime::error::DisplayErrorContext(&e), "the response stream failed");
                        let event = serde_json::json!({
                            "error": format!("the response stream from endpoint {endpoint} failed; see the function's log"),
                            "error_type": "UpstreamError",
                        });
                        return Some((Ok(bytes::Bytes::from(format!("data:{event}\n\n"))), None));
                    }
                }
            }
        }
    });
    let mut r = Response::new(Body::from_stream(chunks));
    if let Ok(v) = HeaderValue::from_str(&ct) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}
