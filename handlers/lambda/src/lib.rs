//! # hf-inference-lambda
//!
//! The Lambda front-end: an HTTP function (API Gateway REST and HTTP APIs, ALB, function URLs,
//! through `lambda_http`) that validates each payload against its task's JSON Schema and
//! proxies it to a SageMaker endpoint with `InvokeEndpoint`, or runs the model in-process.
//!
//! Routes come from configuration only, so a caller can never make the function's role invoke
//! an endpoint it was not given: `SAGEMAKER_ENDPOINT_NAME` + `HF_TASK` serve `POST /invocations`;
//! `HF_ROUTES` (JSON, or a file named by `HF_ROUTES_FILE`) maps `POST /{name}/invocations` to an
//! endpoint (or to the function's own model) and a task. An asynchronous route writes the body to
//! S3, calls `InvokeEndpointAsync` (202), and serves the result from `GET /{name}/results`.
//!
//! Nothing invalid reaches an endpoint: body size, media types, JSON well-formedness and the
//! request schema are checked first (400 listing the schema errors). The endpoint's answer is
//! returned as it came; its errors are mapped: a `ModelError` gives the container's own status
//! and body, throttling 429, a model not ready or a service unavailable 503 with `Retry-After`,
//! a timeout 504, anything else 502 with the AWS request id.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sagemakerruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointError;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint_with_response_stream::InvokeEndpointWithResponseStreamError;
use aws_sdk_sagemakerruntime::operation::RequestId;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use futures_util::StreamExt;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Deserialize;
use serde_json::Value;

use hf_inference_async::storage::{ObjectStore, Stores};
use hf_inference_async::Location;
use hf_inference_core::codec::{self, RequestFormat};
use hf_inference_core::{schema, Answer, InferenceService, Task, TaskSpec, ToolkitError};

/// SageMaker's `InvokeEndpoint` payload limit (and about Lambda's synchronous one).
pub const MAX_BODY: usize = 6 * 1024 * 1024;

const CUSTOM_ATTRIBUTES: &str = "x-amzn-sagemaker-custom-attributes";
const TARGET_VARIANT: &str = "x-amzn-sagemaker-target-variant";
const INFERENCE_ID: &str = "x-amzn-sagemaker-inference-id";

/// Where a route sends its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A SageMaker endpoint (and optionally one of its variants).
    Endpoint {
        /// The endpoint's name.
        name: String,
        /// `TargetVariant`; `None`: SageMaker's weights (a client's header may choose).
        variant: Option<String>,
    },
    /// The model packaged with the function (`HF_MODEL_DIR`), run in-process.
    Local,
    /// An asynchronous SageMaker endpoint: the body is written under `input`, sent with
    /// `InvokeEndpointAsync` (202), and its result read back from `output` or `failure` (the
    /// endpoint's S3OutputPath / S3FailurePath) by `GET .../results`.
    AsyncEndpoint {
        /// The endpoint's name.
        name: String,
        /// Where request bodies are written.
        input: Location,
        /// The endpoint's output prefix.
        output: Location,
        /// The endpoint's failure prefix.
        failure: Location,
    },
}

/// One configured route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The task whose schema requests are validated against.
    pub task: Task,
    /// Where they go.
    pub target: Target,
    /// Also validate successful JSON responses against the response schema (502 if they fail).
    pub validate_response: bool,
}

/// A route as `HF_ROUTES` writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSpec {
    #[serde(default)]
    endpoint: Option<String>,
    task: String,
    #[serde(default)]
    target_variant: Option<String>,
    #[serde(default)]
    local: bool,
    #[serde(default)]
    validate_response: bool,
    #[serde(default)]
    async_input_path: Option<String>,
    #[serde(default)]
    async_output_path: Option<String>,
    #[serde(default)]
    async_failure_path: Option<String>,
}

/// The routing table: `""` is `POST /invocations`, any other name `POST /{name}/invocations`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes(pub BTreeMap<String, Route>);

fn task_of(name: &str) -> Result<Task, String> {
    let spec: TaskSpec = name.parse().map_err(|e: ToolkitError| e.to_string())?;
    schema::ensure_available(spec.task).map_err(|_| {
        format!(
            "task {name:?} has no JSON Schema in this build; tasks with schemas: {}",
            Task::implemented_list()
        )
    })?;
    Ok(spec.task)
}

impl Routes {
    /// Reads the routes: `HF_ROUTES` (JSON) or `HF_ROUTES_FILE`, plus the single route of
    /// `SAGEMAKER_ENDPOINT_NAME` + `HF_TASK` at `POST /invocations`.
    pub fn from_env() -> Result<Self, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let json = match (var("HF_ROUTES"), var("HF_ROUTES_FILE")) {
            (Some(j), _) => Some(j),
            (None, Some(f)) => {
                Some(std::fs::read_to_string(&f).map_err(|e| format!("HF_ROUTES_FILE {f}: {e}"))?)
            }
            (None, None) => None,
        };
        let mut routes = match json {
            Some(j) => Self::parse(&j)?,
            None => Routes::default(),
        };
        if let Some(endpoint) = var("SAGEMAKER_ENDPOINT_NAME") {
            let task = var("HF_TASK").ok_or("SAGEMAKER_ENDPOINT_NAME needs HF_TASK (the task whose schema requests are checked against)")?;
            routes.0.insert(
                String::new(),
                Route {
                    task: task_of(&task)?,
                    target: Target::Endpoint {
                        name: endpoint,
                        variant: var("SAGEMAKER_TARGET_VARIANT"),
                    },
                    validate_response: false,
                },
            );
        }
        if routes.0.is_empty() {
            return Err("no routes: set SAGEMAKER_ENDPOINT_NAME and HF_TASK, or HF_ROUTES".into());
        }
        Ok(routes)
    }

    /// Parses `{"name": {"endpoint": "...", "task": "...", "target_variant"?, "local"?,
    /// "validate_response"?}, ...}`.
    pub fn parse(json: &str) -> Result<Self, String> {
        let specs: BTreeMap<String, RouteSpec> =
            serde_json::from_str(json).map_err(|e| format!("HF_ROUTES is not valid: {e}"))?;
        let mut routes = BTreeMap::new();
        for (name, spec) in specs {
            let valid_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !valid_name {
                return Err(format!(
                    "route name {name:?}: use letters, digits, '-', '_' or '.'"
                ));
            }
            let variant = match spec.target_variant.as_deref().map(str::trim) {
                Some("") => return Err(format!("route {name:?}: target_variant is empty")),
                v => v.map(str::to_owned),
            };
            let paths = (
                spec.async_input_path.as_deref(),
                spec.async_output_path.as_deref(),
                spec.async_failure_path.as_deref(),
            );
            let target = match (spec.local, spec.endpoint) {
                (false, Some(e)) if paths != (None, None, None) => {
                    let (Some(i), Some(o), Some(f)) = paths else {
                        return Err(format!(
                            "route {name:?}: an asynchronous route needs async_input_path, async_output_path and async_failure_path"
                        ));
                    };
                    if variant.is_some() {
                        return Err(format!(
                            "route {name:?}: InvokeEndpointAsync takes no target_variant"
                        ));
                    }
                    let s3 = |what: &str, v: &str| match v.parse::<Location>() {
                        Ok(l @ Location::S3 { .. }) => Ok(l),
                        _ => Err(format!("route {name:?}: {what} must be an s3:// prefix")),
                    };
                    Target::AsyncEndpoint {
                        name: e.trim().to_owned(),
                        input: s3("async_input_path", i)?,
                        output: s3("async_output_path", o)?,
                        failure: s3("async_failure_path", f)?,
                    }
                }
                (true, None) if variant.is_none() => Target::Local,
                (false, Some(e)) if !e.trim().is_empty() => Target::Endpoint {
                    name: e.trim().to_owned(),
                    variant,
                },
                _ => {
                    return Err(format!(
                        "route {name:?}: give either \"endpoint\" or \"local\": true"
                    ))
                }
            };
            routes.insert(
                name,
                Route {
                    task: task_of(&spec.task)?,
                    target,
                    validate_response: spec.validate_response,
                },
            );
        }
        let local: std::collections::HashSet<Task> = routes
            .values()
            .filter(|r| r.target == Target::Local)
            .map(|r| r.task)
            .collect();
        if local.len() > 1 {
            return Err(
                "local routes run the one model packaged with the function: give them one task"
                    .into(),
            );
        }
        Ok(Routes(routes))
    }

    /// Whether any route runs the model in-process.
    pub fn needs_model(&self) -> bool {
        self.0.values().any(|r| r.target == Target::Local)
    }
}

/// The proxy's state.
pub struct Proxy {
    routes: Routes,
    client: Option<aws_sdk_sagemakerruntime::Client>,
    local: Option<InferenceService>,
    store: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// A proxy over `routes`: `client` for endpoint routes, `local` for in-process ones.
    pub fn new(
        routes: Routes,
        client: Option<aws_sdk_sagemakerruntime::Client>,
        local: Option<InferenceService>,
    ) -> Result<Self, String> {
        for (name, r) in &routes.0 {
            match r.target {
                Target::Endpoint { .. } | Target::AsyncEndpoint { .. } if client.is_none() => {
                    return Err(format!("route {name:?} needs a SageMaker client"))
                }
                Target::Local => match &local {
                    None => {
                        return Err(format!(
                            "route {name:?} runs locally but no model is loaded"
                        ))
                    }
                    Some(s) if s.pipeline().task() != r.task => {
                        return Err(format!(
                            "route {name:?} is {} but the local model serves {}",
                            r.task,
                            s.pipeline().task()
                        ))
                    }
                    Some(_) => {}
                },
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
        .route("/results", get(results_default))
        .route("/{route}/results", get(results_named))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "NotFound",
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

/// Tells the client to come back in a few seconds.
fn retry_later(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

/// A response with a JSON body.
fn json(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn error(status: StatusCode, kind: &str, message: String) -> Response {
    let body = serde_json::json!({"code": status.as_u16(), "type": kind, "message": message});
    json(status, body.to_string())
}

fn toolkit_error(e: &ToolkitError) -> Response {
    json(e.status(), e.body_json())
}

/// An endpoint route without a SageMaker client ([`Proxy::new`] refuses to build one).
fn no_client() -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal",
        "no SageMaker client".into(),
    )
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

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The headers passed on must be what SageMaker accepts: refused here (400) rather than
/// dropped or refused there (which would look like an upstream fault).
fn check_headers(h: &HeaderMap) -> Result<(), ToolkitError> {
    let bad = |m: String| Err(ToolkitError::Validation(m));
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
    if header_str(h, CUSTOM_ATTRIBUTES).is_some_and(|v| v.len() > 1024) {
        return bad(format!(
            "{CUSTOM_ATTRIBUTES} is longer than SageMaker's 1024 characters"
        ));
    }
    if let Some(id) = header_str(h, INFERENCE_ID) {
        if id.is_empty() || id.len() > 64 {
            return bad(format!("{INFERENCE_ID} must be 1 to 64 characters"));
        }
    }
    if let Some(v) = header_str(h, TARGET_VARIANT) {
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

/// Checks a request against the route's task before anything is sent on.
fn validate(task: Task, format: RequestFormat, body: &[u8]) -> Result<(), ToolkitError> {
    match format {
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

async fn invoke(p: Arc<Proxy>, name: String, req: Request) -> Response {
    let started = Instant::now();
    let Some(route) = p.routes.0.get(&name).cloned() else {
        return error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no route named {name:?} is configured"),
        );
    };
    if req.method() != http::Method::POST && req.method() != http::Method::PUT {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{}; send the request with POST", req.method()),
        );
    }
    let (parts, body) = req.into_parts();
    // the Lambda invocation's request id (absent outside Lambda)
    let lambda_request_id = parts
        .extensions
        .get::<lambda_http::Context>()
        .map(|c| c.request_id.clone());
    if let Err(e) = check_headers(&parts.headers) {
        return toolkit_error(&e);
    }
    let declared = header_str(&parts.headers, header::CONTENT_LENGTH.as_str())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return toolkit_error(&ToolkitError::PayloadTooLarge { limit: MAX_BODY });
    }
    let content_type = header_str(&parts.headers, header::CONTENT_TYPE.as_str());
    let accept = header_str(&parts.headers, header::ACCEPT.as_str());
    let format = match codec::request_format(content_type)
        .and_then(|f| codec::response_format_for(f, accept).map(|_| f))
    {
        Ok(f) => f,
        Err(e) => return toolkit_error(&e),
    };
    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return toolkit_error(&ToolkitError::PayloadTooLarge { limit: MAX_BODY })
        }
        Err(e) => {
            return toolkit_error(&ToolkitError::Validation(format!(
                "could not read the request body: {e}"
            )))
        }
    };
    if let Err(e) = validate(route.task, format, &bytes) {
        tracing::info!(route = %name, status = 400, "rejected before the endpoint");
        return toolkit_error(&e);
    }
    let response = match &route.target {
        Target::Local => match &p.local {
            Some(service) => match service
                .invoke_body(
                    format,
                    codec::response_format_for(format, accept)
                        .unwrap_or(codec::ResponseFormat::Json),
                    bytes,
                )
                .await
            {
                Ok(Answer::Whole(out)) => {
                    let mut r = Response::new(Body::from(out.body));
                    r.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(out.content_type),
                    );
                    r
                }
                Ok(Answer::Stream {
                    content_type,
                    chunks,
                }) => {
                    let mut r = Response::new(Body::from_stream(
                        chunks.map(Ok::<_, std::convert::Infallible>),
                    ));
                    r.headers_mut()
                        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                    r
                }
                Err(e) => toolkit_error(&e),
            },
            None => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal",
                "the local model is not loaded".into(),
            ),
        },
        Target::AsyncEndpoint {
            name: endpoint,
            input,
            ..
        } => {
            let Some(client) = &p.client else {
                return no_client();
            };
            let id = header_str(&parts.headers, INFERENCE_ID)
                .map(str::to_owned)
                .unwrap_or_else(new_inference_id);
            let at = input.join(&id);
            let ct = content_type.unwrap_or("application/json");
            if let Err(e) = p.store.put(&at, bytes, ct).await {
                tracing::warn!(route = %name, error = %e, "could not store the request");
                return error(
                    StatusCode::BAD_GATEWAY,
                    "UpstreamError",
                    "could not store the request for the asynchronous endpoint; see the function's log".into(),
                );
            }
            let call = client
                .invoke_endpoint_async()
                .endpoint_name(endpoint)
                .input_location(at.to_string())
                .inference_id(&id)
                .set_content_type(content_type.map(str::to_owned))
                .set_accept(accept.map(str::to_owned))
                .set_custom_attributes(
                    header_str(&parts.headers, CUSTOM_ATTRIBUTES).map(str::to_owned),
                );
            match call.send().await {
                Ok(out) => {
                    let body = serde_json::json!({
                        "InferenceId": out.inference_id().unwrap_or(&id),
                        "OutputLocation": out.output_location(),
                        "FailureLocation": out.failure_location(),
                    });
                    json(StatusCode::ACCEPTED, body.to_string())
                }
                Err(e) => map_upstream_error(endpoint, e),
            }
        }
        Target::Endpoint {
            name: endpoint,
            variant,
        } if wants_stream(route.task, accept, &bytes) => {
            let Some(client) = &p.client else {
                return no_client();
            };
            let variant = variant
                .clone()
                .or_else(|| header_str(&parts.headers, TARGET_VARIANT).map(str::to_owned));
            let call = client
                .invoke_endpoint_with_response_stream()
                .endpoint_name(endpoint)
                .body(bytes.to_vec().into())
                .set_content_type(content_type.map(str::to_owned))
                .set_accept(accept.map(str::to_owned))
                .set_custom_attributes(
                    header_str(&parts.headers, CUSTOM_ATTRIBUTES).map(str::to_owned),
                )
                .set_inference_id(header_str(&parts.headers, INFERENCE_ID).map(str::to_owned))
                .set_target_variant(variant);
            match call.send().await {
                Ok(out) => relay_stream(endpoint, out),
                Err(e) => map_sdk_error(endpoint, e),
            }
        }
        Target::Endpoint {
            name: endpoint,
            variant,
        } => {
            let Some(client) = &p.client else {
                return no_client();
            };
            let mut call = client
                .invoke_endpoint()
                .endpoint_name(endpoint)
                .body(bytes.to_vec().into())
                .set_content_type(content_type.map(str::to_owned))
                .set_accept(accept.map(str::to_owned))
                .set_custom_attributes(
                    header_str(&parts.headers, CUSTOM_ATTRIBUTES).map(str::to_owned),
                )
                .set_inference_id(header_str(&parts.headers, INFERENCE_ID).map(str::to_owned));
            let variant = variant
                .clone()
                .or_else(|| header_str(&parts.headers, TARGET_VARIANT).map(str::to_owned));
            call = call.set_target_variant(variant);
            match call.send().await {
                Ok(out) => {
                    let ct = out
                        .content_type()
                        .unwrap_or("application/octet-stream")
                        .to_owned();
                    let attrs = out.custom_attributes().map(str::to_owned);
                    let body = out.body.map(|b| b.into_inner()).unwrap_or_default();
                    if route.validate_response {
                        if let Err(why) = check_response(route.task, &ct, &body) {
                            return error(StatusCode::BAD_GATEWAY, "InvalidResponse", why);
                        }
                    }
                    let mut r = Response::new(Body::from(body));
                    if let Ok(v) = HeaderValue::from_str(&ct) {
                        r.headers_mut().insert(header::CONTENT_TYPE, v);
                    }
                    if let Some(v) = attrs.and_then(|a| HeaderValue::from_str(&a).ok()) {
                        r.headers_mut().insert(CUSTOM_ATTRIBUTES, v);
                    }
                    r
                }
                Err(e) => map_sdk_error(endpoint, e),
            }
        }
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

/// Whether a request asks for a token stream: a generation task with `Accept: text/event-stream`
/// or `"parameters": {"stream": true}` (the container streams then, and so do we).
fn wants_stream(task: Task, accept: Option<&str>, body: &[u8]) -> bool {
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

/// Relays `InvokeEndpointWithResponseStream`'s payload parts as the response body, as they
/// arrive; an error in the middle of the stream ends it with an SSE error event.
fn relay_stream(
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

async fn results_default(
    State(p): State<Arc<Proxy>>,
    query: axum::extract::Query<BTreeMap<String, String>>,
) -> Response {
    results(p, String::new(), query.0).await
}

async fn results_named(
    State(p): State<Arc<Proxy>>,
    Path(route): Path<String>,
    query: axum::extract::Query<BTreeMap<String, String>>,
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
    let Some(Route {
        target: Target::AsyncEndpoint {
            output, failure, ..
        },
        ..
    }) = p.routes.0.get(&name).cloned()
    else {
        return error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no asynchronous route named {name:?} is configured"),
        );
    };
    // Err(key): the location given for `key` is not under the route's prefix
    let parse = |key: &'static str, prefix: &Location| -> Result<Option<Location>, &'static str> {
        match query.get(key) {
            None => Ok(None),
            Some(v) => match v.parse::<Location>() {
                Ok(l) if under(&l, prefix) => Ok(Some(l)),
                _ => Err(key),
            },
        }
    };
    let (out, fail) = match (parse("output", &output), parse("failure", &failure)) {
        (Ok(o), Ok(f)) => (o, f),
        (Err(key), _) | (_, Err(key)) => {
            return error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!("{key} must be a location under this route's {key} prefix, as the 202 answer gave it"),
            )
        }
    };
    if out.is_none() && fail.is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            "give output= (and failure=) as the 202 answer's OutputLocation and FailureLocation"
                .into(),
        );
    }
    for (at, is_failure) in [(out, false), (fail, true)] {
        let Some(at) = at else { continue };
        match p.store.head(&at).await {
            Ok(Some(ct)) => {
                return match p.store.get(&at, MAX_BODY as u64).await {
                    Ok(obj) => {
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
                        r
                    }
                    Err(hf_inference_async::storage::StorageError::TooLarge { .. }) => error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "TooLarge",
                        format!(
                            "the result is larger than a Lambda answer can be; read {at} directly"
                        ),
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not read a result");
                        error(
                            StatusCode::BAD_GATEWAY,
                            "UpstreamError",
                            "could not read the result; see the function's log".into(),
                        )
                    }
                };
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not look for a result");
                return error(
                    StatusCode::BAD_GATEWAY,
                    "UpstreamError",
                    "could not look for the result; see the function's log".into(),
                );
            }
        }
    }
    retry_later(json(StatusCode::ACCEPTED, "{\"status\":\"InProgress\"}"))
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
        SdkError::TimeoutError(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            "Timeout",
            format!("endpoint {endpoint} did not answer in time; retry, or use an asynchronous route for long work"),
        ),
        SdkError::ServiceError(s) => {
            let err = s.into_err();
            let id = err.request_id().map(str::to_owned);
            let rid = id.as_deref().unwrap_or("none");
            let r = match err.code() {
                Some("ModelNotReadyException") => retry_later(error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ModelNotReady",
                    format!("endpoint {endpoint}'s model is not ready yet; retry shortly (request id {rid})"),
                )),
                Some("ServiceUnavailable") => retry_later(error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    format!("SageMaker is unavailable; retry shortly (request id {rid})"),
                )),
                Some("ThrottlingException") => retry_later(error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Throttled",
                    format!("SageMaker throttled the call to {endpoint}; slow down and retry (request id {rid})"),
                )),
                _ => error(
                    StatusCode::BAD_GATEWAY,
                    "UpstreamError",
                    format!(
                        "endpoint {endpoint}: {} (request id {rid})",
                        err.message()
                            .or(err.code())
                            .unwrap_or("SageMaker refused the call")
                    ),
                ),
            };
            with_request_id(r, id.as_deref())
        }
        other => {
            tracing::warn!(
                endpoint,
                error = %aws_sdk_sagemakerruntime::error::DisplayErrorContext(&other),
                "could not call SageMaker"
            );
            error(
                StatusCode::BAD_GATEWAY,
                "UpstreamError",
                format!("could not reach endpoint {endpoint}; see the function's log"),
            )
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
