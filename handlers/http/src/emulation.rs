//! A stand-in for SageMaker Runtime's REST API in front of this container, for local development
//! only (`HF_EMULATE_SAGEMAKER_RUNTIME=1`): `POST /endpoints/{name}/invocations` and
//! `POST /endpoints/{name}/invocations-response-stream` answer as `InvokeEndpoint` and
//! `InvokeEndpointWithResponseStream` would with this container behind the endpoint (any name):
//! the container's errors become `ModelError` (424 with `OriginalStatusCode` and
//! `OriginalMessage`), and a streamed body is framed as AWS event-stream `PayloadPart` messages.
//! Point an AWS SDK (e.g. the Lambda front-end under `cargo lambda watch`) at it with
//! `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=http://localhost:8080`.

#[cfg(feature = "engine")]
pub(crate) use endpoints::{invoke, invoke_stream};

/// The emulated operations over the container's own `/invocations` (cargo feature `engine`).
#[cfg(feature = "engine")]
mod endpoints {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::extract::{Path, Request, State};
    use axum::http::{header, HeaderValue, StatusCode};
    use axum::response::{IntoResponse, Response};
    use futures_util::StreamExt;
    use http_body_util::BodyExt;

    use crate::AppState;

    /// The container's answer to a request rebuilt for `/invocations` with `accept`.
    async fn container(
        state: Arc<AppState>,
        req: Request,
        accept: Option<HeaderValue>,
    ) -> Response {
        let (parts, body) = req.into_parts();
        let mut fwd = Request::new(body);
        *fwd.method_mut() = http::Method::POST;
        *fwd.uri_mut() = http::Uri::from_static("/invocations");
        for h in [header::CONTENT_TYPE, header::CONTENT_LENGTH] {
            if let Some(v) = parts.headers.get(&h) {
                fwd.headers_mut().insert(h, v.clone());
            }
        }
        if let Some(a) = accept {
            fwd.headers_mut().insert(header::ACCEPT, a);
        }
        match crate::server::invocations(State(state), fwd).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        }
    }

    /// SageMaker's `ModelError`: the container answered with an error status.
    async fn model_error(name: &str, resp: Response) -> Response {
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let original = String::from_utf8_lossy(&body).into_owned();
        let json = serde_json::json!({
            "Message": format!("Received client error ({status}) from primary with message \"{original}\". See the container's log."),
            "OriginalStatusCode": status,
            "OriginalMessage": original,
            "LogStreamArn": format!("arn:aws:logs:local:000000000000:log-group:/aws/sagemaker/Endpoints/{name}"),
        });
        let mut r = (StatusCode::FAILED_DEPENDENCY, json.to_string()).into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert("x-amzn-errortype", HeaderValue::from_static("ModelError"));
        h.insert(
            "x-amzn-requestid",
            HeaderValue::from_static("local-emulation"),
        );
        r
    }

    /// `InvokeEndpoint`.
    pub(crate) async fn invoke(
        State(state): State<Arc<AppState>>,
        Path(name): Path<String>,
        req: Request,
    ) -> Response {
        let accept = req.headers().get(header::ACCEPT).cloned();
        let resp = container(state, req, accept).await;
        if !resp.status().is_success() {
            return model_error(&name, resp).await;
        }
        let mut resp = resp;
        resp.headers_mut().insert(
            "x-amzn-invoked-production-variant",
            HeaderValue::from_static("AllTraffic"),
        );
        resp
    }

    /// `InvokeEndpointWithResponseStream`.
    pub(crate) async fn invoke_stream(
        State(state): State<Arc<AppState>>,
        Path(name): Path<String>,
        req: Request,
    ) -> Response {
        let accept = req.headers().get("x-amzn-sagemaker-accept").cloned();
        let resp = container(state, req, accept).await;
        if !resp.status().is_success() {
            return model_error(&name, resp).await;
        }
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or(HeaderValue::from_static("application/json"));
        let frames = resp
            .into_body()
            .into_data_stream()
            .filter_map(|chunk| async move {
                match chunk {
                    Ok(bytes) if !bytes.is_empty() => Some(Ok::<_, std::convert::Infallible>(
                        bytes::Bytes::from(super::payload_part(&bytes)),
                    )),
                    _ => None,
                }
            });
        let mut r = Response::new(Body::from_stream(frames));
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/vnd.amazon.eventstream"),
        );
        h.insert("x-amzn-sagemaker-content-type", ct);
        h.insert(
            "x-amzn-invoked-production-variant",
            HeaderValue::from_static("AllTraffic"),
        );
        r
    }
}

/// One AWS event-stream message (`PayloadPart`, the bytes as its payload): the prelude (total
/// and header lengths, big-endian, and their CRC-32), string headers, the payload and the CRC-32
/// of everything before it.
pub fn payload_part(payload: &[u8]) -> Vec<u8> {
    let mut headers = Vec::new();
    for (name, value) in [
        (":message-type", "event"),
        (":event-type", "PayloadPart"),
        (":content-type", "application/octet-stream"),
    ] {
        headers.push(name.len() as u8);
        headers.extend_from_slice(name.as_bytes());
        headers.push(7); // string
        headers.extend_from_slice(&(value.len() as u16).to_be_bytes());
        headers.extend_from_slice(value.as_bytes());
    }
    let total = 12 + headers.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&headers);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}
