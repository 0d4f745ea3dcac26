//! The proxy's state and router, and what every invocation goes through before its route's
//! target takes it: the route, the method, SageMaker's header rules, the body's size, media types
//! and request schema.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use bytes::Bytes;
use hf_inference_core::codec::{self, RequestFormat};
use hf_inference_core::{schema, Task, ToolkitError};
use hf_inference_host::storage::{ObjectStore, Stores};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::config::{ConfigError, Route, Routes, Target};
use crate::error::ProxyError;
use crate::{asynchronous, stream, sync, MAX_BODY};

pub(crate) const CUSTOM_ATTRIBUTES: &str = "x-amzn-sagemaker-custom-attributes";
pub(crate) const TARGET_VARIANT: &str = "x-amzn-sagemaker-target-variant";
pub(crate) const INFERENCE_ID: &str = "x-amzn-sagemaker-inference-id";

/// The model the in-process routes run.
#[cfg(feature = "local")]
pub type LocalModel = hf_inference_core::InferenceService;

/// The model the in-process routes run: none in a build without the `local` feature.
#[cfg(not(feature = "local"))]
#[derive(Debug)]
pub enum LocalModel {}

/// The proxy's state.
pub struct Proxy {
    pub(crate) routes: Routes,
    pub(crate) client: Option<aws_sdk_sagemakerruntime::Client>,
    pub(crate) local: Option<LocalModel>,
    pub(crate) store: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

/// Checks that the local model serves the route's task.
#[cfg(feature = "local")]
fn check_local(name: &str, route: &Route, local: Option<&LocalModel>) -> Result<(), ConfigError> {
    match local {
        None => Err(ConfigError::Routes(format!(
            "route {name:?} runs locally but no model is loaded"
        ))),
        Some(s) if s.pipeline().task() != route.task => Err(ConfigError::Routes(format!(
            "route {name:?} is {} but the local model serves {}",
            route.task,
            s.pipeline().task()
        ))),
        Some(_) => Ok(()),
    }
}

#[cfg(not(feature = "local"))]
fn check_local(name: &str, _route: &Route, local: Option<&LocalModel>) -> Result<(), ConfigError> {
    match local {
        None => Err(ConfigError::Routes(format!(
            "route {name:?} runs locally, but this build has no in-process routes (cargo feature `local`)"
        ))),
        Some(never) => match *never {},
    }
}

impl Proxy {
    /// A proxy over `routes`: `client` for endpoint routes, `local` for in-process ones.
    pub fn new(
        routes: Routes,
        client: Option<aws_sdk_sagemakerruntime::Client>,
        local: Option<LocalModel>,
    ) -> Result<Self, ConfigError> {
        for (name, r) in &routes.0 {
            match r.target {
                Target::Endpoint { .. } | Target::AsyncEndpoint { .. } if client.is_none() => {
                    return Err(ConfigError::Routes(format!(
                        "route {name:?} needs a SageMaker client"
                    )))
                }
                Target::Local => check_local(name, r, local.as_ref())?,
                _ => {}
            }
        }
        Ok(Self {
            routes,
            client,
            local,
            store: Arc::new(Stores::default()),
        })
    }

    /// Uses `store` for the asynchronous routes' S3 objects (default: S3 from the environment).
    pub fn with_store(mut self, store: Arc<dyn ObjectStore>) -> Self {
        self.store = store;
        self
    }

    /// The SageMaker client of an endpoint route ([`Proxy::new`] refuses a proxy without one).
    pub(crate) fn client(&self) -> Result<&aws_sdk_sagemakerruntime::Client, ProxyError> {
        self.client
            .as_ref()
            .ok_or_else(|| ToolkitError::Internal("no SageMaker client".into()).into())
    }
}

/// The function's HTTP surface.
pub fn router(proxy: Arc<Proxy>) -> Router {
    Router::new()
        .route(
            "/ping",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    "{\"status\":\"Healthy\"}",
                )
            }),
        )
        .route("/invocations", any(invoke_default))
        .route("/{route}/invocations", any(invoke_named))
        .route("/results", get(asynchronous::results_default))
        .route("/{route}/results", get(asynchronous::results_named))
        .fallback(|| async {
            ProxyError::NotFound(
                "no such path: send POST /invocations or POST /{route}/invocations".into(),
            )
        })
        .with_state(proxy)
}

/// Removes an API Gateway HTTP API's named stage from the path (`/prod/invocations` →
/// `/invocations`): such stages put their name in `rawPath`, which `lambda_http` keeps when
/// `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH` is set (for REST APIs). `$default` adds nothing.
pub fn strip_http_api_stage<B>(mut req: http::Request<B>) -> http::Request<B> {
    let stage = match req
        .extensions()
        .get::<lambda_http::request::RequestContext>()
    {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => ctx.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage.filter(|s| s != "$default" && !s.is_empty()) else {
        return req;
    };
    let prefix = format!("/{stage}");
    let path = req.uri().path();
    let rest = match path.strip_prefix(&prefix) {
        Some("") => "/".to_owned(),
        Some(r) if r.starts_with('/') => r.to_owned(),
        _ => return req,
    };
    let pq = match req.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest,
    };
    let mut parts = req.uri().clone().into_parts();
    if let Ok(v) = pq.parse() {
        parts.path_and_query = Some(v);
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// A request that passed every check, ready for its route's target.
#[derive(Debug)]
pub(crate) struct Call {
    /// The client's headers.
    pub(crate) headers: HeaderMap,
    /// The body's format (what an in-process route decodes).
    #[cfg_attr(not(feature = "local"), allow(dead_code))]
    pub(crate) format: RequestFormat,
    /// The body.
    pub(crate) body: Bytes,
}

impl Call {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn content_type(&self) -> Option<&str> {
        self.header(header::CONTENT_TYPE.as_str())
    }

    pub(crate) fn accept(&self) -> Option<&str> {
        self.header(header::ACCEPT.as_str())
    }

    pub(crate) fn owned(&self, name: &str) -> Option<String> {
        self.header(name).map(str::to_owned)
    }
}

async fn invoke_default(State(p): State<Arc<Proxy>>, req: Request) -> Response {
    invoke(p, String::new(), req).await
}

async fn invoke_named(
    State(p): State<Arc<Proxy>>,
    Path(route): Path<String>,
    req: Request,
) -> Response {
    invoke(p, route, req).await
}

/// One invocation: checked, sent to its route's target, logged.
async fn invoke(p: Arc<Proxy>, name: String, req: Request) -> Response {
    let started = Instant::now();
    // the Lambda invocation's request id (absent outside Lambda)
    let lambda_request_id = req
        .extensions()
        .get::<lambda_http::Context>()
        .map(|c| c.request_id.clone());
    let (route, call) = match prepare(&p, &name, req).await {
        Ok(ready) => ready,
        Err(e) => return e.into_response(),
    };
    let response = match &route.target {
        Target::Local => local(&p, call).await,
        Target::AsyncEndpoint {
            name: endpoint,
            input,
            ..
        } => asynchronous::invoke(&p, &name, endpoint, input, call).await,
        Target::Endpoint {
            name: endpoint,
            variant,
        } if stream::wants_stream(route.task, call.accept(), &call.body) => {
            stream::invoke(&p, endpoint, variant.as_deref(), call).await
        }
        Target::Endpoint {
            name: endpoint,
            variant,
        } => sync::invoke(&p, &route, endpoint, variant.as_deref(), call).await,
    };
    let target = match &route.target {
        Target::Endpoint { name, .. } | Target::AsyncEndpoint { name, .. } => name.as_str(),
        Target::Local => "(in-process)",
    };
    tracing::info!(
        request_id = lambda_request_id.as_deref().unwrap_or("-"),
        upstream_request_id = response
            .headers()
            .get("x-amzn-requestid")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-"),
        route = %name,
        endpoint = target,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_millis() as u64,
        "invocation"
    );
    response
}

#[cfg(feature = "local")]
async fn local(p: &Proxy, call: Call) -> Response {
    crate::local::invoke(p.local.as_ref(), call).await
}

#[cfg(not(feature = "local"))]
async fn local(p: &Proxy, _call: Call) -> Response {
    match &p.local {
        Some(never) => match *never {},
        // Proxy::new refuses local routes in this build
        None => ProxyError::from(ToolkitError::Internal(
            "this build has no in-process routes".into(),
        ))
        .into_response(),
    }
}

/// The route, and the request once it passed every check that needs no endpoint.
async fn prepare(p: &Proxy, name: &str, req: Request) -> Result<(Route, Call), ProxyError> {
    let route =
        p.routes.0.get(name).cloned().ok_or_else(|| {
            ProxyError::NotFound(format!("no route named {name:?} is configured"))
        })?;
    if req.method() != http::Method::POST && req.method() != http::Method::PUT {
        return Err(ToolkitError::MethodNotAllowed(format!(
            "{}; send the request with POST",
            req.method()
        ))
        .into());
    }
    let (parts, body) = req.into_parts();
    check_headers(&parts.headers)?;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return Err(ToolkitError::PayloadTooLarge { limit: MAX_BODY }.into());
    }
    let header = |n: header::HeaderName| parts.headers.get(n).and_then(|v| v.to_str().ok());
    // JSON, CSV, JSON Lines, and the raw media types the task takes (an image task's files)
    let format =
        codec::request_format_for(header(header::CONTENT_TYPE), route.task.raw_media_types())?;
    codec::response_format_for(format, header(header::ACCEPT))?;
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(ToolkitError::PayloadTooLarge { limit: MAX_BODY }.into())
        }
        Err(e) => {
            return Err(
                ToolkitError::Validation(format!("could not read the request body: {e}")).into(),
            )
        }
    };
    if let Err(e) = validate(route.task, format, &body) {
        tracing::info!(route = %name, status = 400, "rejected before the endpoint");
        return Err(e.into());
    }
    Ok((
        route,
        Call {
            headers: parts.headers,
            format,
            body,
        },
    ))
}

/// The headers passed on must be what SageMaker accepts: refused here (400) rather than
/// dropped or refused there (which would look like an upstream fault).
fn check_headers(h: &HeaderMap) -> Result<(), ToolkitError> {
    let bad = |m: String| Err(ToolkitError::Validation(m));
    let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    for name in [
        CUSTOM_ATTRIBUTES,
        INFERENCE_ID,
        TARGET_VARIANT,
        header::CONTENT_TYPE.as_str(),
        header::ACCEPT.as_str(),
    ] {
        if h.get(name).is_some_and(|v| v.to_str().is_err()) {
            return bad(format!("the {name} header must be visible ASCII"));
        }
    }
    if get(CUSTOM_ATTRIBUTES).is_some_and(|v| v.len() > 1024) {
        return bad(format!(
            "{CUSTOM_ATTRIBUTES} is longer than SageMaker's 1024 characters"
        ));
    }
    if let Some(id) = get(INFERENCE_ID) {
        if id.is_empty() || id.len() > 64 {
            return bad(format!("{INFERENCE_ID} must be 1 to 64 characters"));
        }
    }
    if let Some(v) = get(TARGET_VARIANT) {
        let ok = !v.is_empty()
            && v.len() <= 63
            && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !v.starts_with('-');
        if !ok {
            return bad(format!(
                "{TARGET_VARIANT} must be a production variant name: letters, digits and '-', at most 63"
            ));
        }
    }
    Ok(())
}

/// Checks a request against the route's task before anything is sent on. A raw body (an image
/// file, of a media type the task takes) has no schema: it is sent on as it came, and the model
/// reading it is what judges it.
fn validate(task: Task, format: RequestFormat, body: &[u8]) -> Result<(), ToolkitError> {
    match format {
        RequestFormat::Binary(_) => Ok(()),
        RequestFormat::JsonLines => {
            let mut requests = 0;
            for (i, line) in body.split(|&b| b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                requests += 1;
                let doc = codec::decode(RequestFormat::Json, line)
                    .map_err(|e| ToolkitError::Validation(format!("line {}: {e}", i + 1)))?;
                schema::validate_request(task, &doc)
                    .map_err(|e| ToolkitError::Validation(format!("line {}: {e}", i + 1)))?;
            }
            if requests == 0 {
                return Err(ToolkitError::Validation(
                    "the JSON Lines body holds no request; send one JSON object per line".into(),
                ));
            }
            Ok(())
        }
        f => schema::validate_request(task, &codec::decode(f, body)?),
    }
}
