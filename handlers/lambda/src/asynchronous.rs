//! Asynchronous endpoint routes: the body is stored under the route's input prefix and sent with
//! `InvokeEndpointAsync` (202 with the output and failure locations); `GET .../results` reads
//! the answer back once the endpoint has written it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hf_inference_core::ToolkitError;
use hf_inference_host::storage::StorageError;
use hf_inference_host::Location;
use hf_inference_http::json_response;
use serde_json::Value;

use crate::config::{Route, Target};
use crate::error::ProxyError;
use crate::proxy::{Call, Proxy, CUSTOM_ATTRIBUTES, INFERENCE_ID};
use crate::upstream::map_upstream_error;
use crate::MAX_BODY;

/// Stores the body as `<input>/<inference id>` and queues it on `endpoint`.
pub(crate) async fn invoke(
    p: &Proxy,
    route: &str,
    endpoint: &str,
    input: &Location,
    call: Call,
) -> Response {
    let client = match p.client() {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let id = call.owned(INFERENCE_ID).unwrap_or_else(new_inference_id);
    let at = input.join(&id);
    let ct = call.content_type().unwrap_or("application/json");
    if let Err(e) = p.store.put(&at, call.body.clone(), ct).await {
        tracing::warn!(route, error = %e, "could not store the request");
        return ProxyError::Upstream(
            "could not store the request for the asynchronous endpoint; see the function's log"
                .into(),
        )
        .into_response();
    }
    let sent = client
        .invoke_endpoint_async()
        .endpoint_name(endpoint)
        .input_location(at.to_string())
        .inference_id(&id)
        .set_content_type(call.content_type().map(str::to_owned))
        .set_accept(call.accept().map(str::to_owned))
        .set_custom_attributes(call.owned(CUSTOM_ATTRIBUTES))
        .send()
        .await;
    match sent {
        Ok(out) => {
            let body = serde_json::json!({
                "InferenceId": out.inference_id().unwrap_or(&id),
                "OutputLocation": out.output_location(),
                "FailureLocation": out.failure_location(),
            });
            json_response(StatusCode::ACCEPTED, body.to_string())
        }
        Err(e) => map_upstream_error(endpoint, e),
    }
}

/// A fresh inference id (32 hex digits; SageMaker allows 64 characters).
fn new_inference_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut id = String::new();
    for _ in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        id.push_str(&format!("{:016x}", h.finish()));
    }
    id
}

pub(crate) async fn results_default(
    State(p): State<Arc<Proxy>>,
    query: Query<BTreeMap<String, String>>,
) -> Response {
    results(p, String::new(), query.0).await
}

pub(crate) async fn results_named(
    State(p): State<Arc<Proxy>>,
    Path(route): Path<String>,
    query: Query<BTreeMap<String, String>>,
) -> Response {
    results(p, route, query.0).await
}

/// Whether `at` lies under `prefix` (same bucket, key below the prefix's).
fn under(at: &Location, prefix: &Location) -> bool {
    match (at, prefix) {
        (Location::S3 { bucket, key }, Location::S3 { bucket: b, key: k }) => {
            bucket == b && key.starts_with(k.as_str()) && !key.contains("..")
        }
        _ => false,
    }
}

/// `GET .../results?output=<OutputLocation>&failure=<FailureLocation>`: the answer once it is
/// there (200, or the error's own status), 202 while it is not. Only locations under the
/// route's configured prefixes are read.
async fn results(p: Arc<Proxy>, name: String, query: BTreeMap<String, String>) -> Response {
    match find_result(&p, &name, &query).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn find_result(
    p: &Proxy,
    name: &str,
    query: &BTreeMap<String, String>,
) -> Result<Response, ProxyError> {
    let Some(Route {
        target: Target::AsyncEndpoint {
            output, failure, ..
        },
        ..
    }) = p.routes.0.get(name)
    else {
        return Err(ProxyError::NotFound(format!(
            "no asynchronous route named {name:?} is configured"
        )));
    };
    let parse = |key: &'static str, prefix: &Location| -> Result<Option<Location>, ProxyError> {
        match query.get(key) {
            None => Ok(None),
            Some(v) => match v.parse::<Location>() {
                Ok(l) if under(&l, prefix) => Ok(Some(l)),
                _ => Err(ProxyError::Forbidden(format!(
                    "{key} must be a location under this route's {key} prefix, as the 202 answer gave it"
                ))),
            },
        }
    };
    let (out, fail) = (parse("output", output)?, parse("failure", failure)?);
    if out.is_none() && fail.is_none() {
        return Err(ToolkitError::Validation(
            "give output= (and failure=) as the 202 answer's OutputLocation and FailureLocation"
                .into(),
        )
        .into());
    }
    for (at, is_failure) in [(out, false), (fail, true)] {
        let Some(at) = at else { continue };
        let head = p.store.head(&at).await.map_err(|e| {
            tracing::warn!(error = %e, "could not look for a result");
            ProxyError::Upstream("could not look for the result; see the function's log".into())
        })?;
        let Some(ct) = head else { continue };
        let obj = p
            .store
            .get(&at, MAX_BODY as u64)
            .await
            .map_err(|e| match e {
                StorageError::TooLarge { .. } => ProxyError::ResultTooLarge(format!(
                    "the result is larger than a Lambda answer can be; read {at} directly"
                )),
                e => {
                    tracing::warn!(error = %e, "could not read a result");
                    ProxyError::Upstream("could not read the result; see the function's log".into())
                }
            })?;
        let status = if is_failure {
            serde_json::from_slice::<Value>(&obj.body)
                .ok()
                .and_then(|v| v.get("code").and_then(Value::as_u64))
                .and_then(|c| u16::try_from(c).ok())
                .and_then(|c| StatusCode::from_u16(c).ok())
                .filter(|c| c.is_client_error() || c.is_server_error())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        } else {
            StatusCode::OK
        };
        let mut r = (status, obj.body).into_response();
        let ct = ct.unwrap_or_else(|| "application/json".into());
        if let Ok(v) = HeaderValue::from_str(&ct) {
            r.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        return Ok(r);
    }
    let mut r = json_response(StatusCode::ACCEPTED, "{\"status\":\"InProgress\"}");
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    Ok(r)
}
