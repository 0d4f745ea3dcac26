//! Synchronous endpoint routes: `InvokeEndpoint`, the answer returned as it came (optionally
//! checked against the task's response schema).

use axum::body::Body;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use hf_inference_core::{schema, Task};
use serde_json::Value;

use crate::config::Route;
use crate::error::ProxyError;
use crate::proxy::{Call, Proxy, CUSTOM_ATTRIBUTES, INFERENCE_ID, TARGET_VARIANT};
use crate::upstream::map_sdk_error;

/// Calls `endpoint` (the route's variant, else the client's `TargetVariant` header).
pub(crate) async fn invoke(
    p: &Proxy,
    route: &Route,
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
        .invoke_endpoint()
        .endpoint_name(endpoint)
        .body(call.body.to_vec().into())
        .set_content_type(call.content_type().map(str::to_owned))
        .set_accept(call.accept().map(str::to_owned))
        .set_custom_attributes(call.owned(CUSTOM_ATTRIBUTES))
        .set_inference_id(call.owned(INFERENCE_ID))
        .set_target_variant(variant)
        .send()
        .await;
    let out = match sent {
        Ok(out) => out,
        Err(e) => return map_sdk_error(endpoint, e),
    };
    let ct = out
        .content_type()
        .unwrap_or("application/octet-stream")
        .to_owned();
    let attrs = out.custom_attributes().map(str::to_owned);
    let body = out.body.map(|b| b.into_inner()).unwrap_or_default();
    if route.validate_response {
        if let Err(why) = check_response(route.task, &ct, &body) {
            return ProxyError::InvalidResponse(why).into_response();
        }
    }
    let mut r = Response::new(Body::from(body));
    if let Ok(v) = HeaderValue::from_str(&ct) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    if let Some(v) = attrs.and_then(|a| HeaderValue::from_str(&a).ok()) {
        r.headers_mut().insert(CUSTOM_ATTRIBUTES, v);
    }
    r
}

/// Response-schema check of a JSON answer.
fn check_response(task: Task, content_type: &str, body: &[u8]) -> Result<(), String> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let check = |doc: &[u8]| -> Result<(), String> {
        let v: Value = serde_json::from_slice(doc)
            .map_err(|e| format!("the endpoint answered invalid JSON: {e}"))?;
        // a JSON Lines line may be an error object of its own
        if v.get("code").is_some() && v.get("message").is_some() {
            return Ok(());
        }
        schema::validate_response(task, &v).map_err(|e| {
            format!("the endpoint's response does not match the {task} response schema: {e}")
        })
    };
    match essence.as_str() {
        "application/json" => check(body),
        "application/jsonlines" | "application/x-jsonlines" | "application/jsonl" => body
            .split(|&b| b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .try_for_each(check),
        _ => Ok(()),
    }
}
