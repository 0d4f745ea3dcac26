//! The router (cargo feature `engine`): `/ping`, `/invocations`, `/execution-parameters` and the
//! read-only management API over a loaded [`InferenceService`].

use std::sync::{Arc, OnceLock};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use futures_util::StreamExt;
use hf_inference_core::codec::RequestFormat;
use hf_inference_core::lines::Framing;
use hf_inference_core::{InferenceService, ToolkitError};

use crate::emulation;
use crate::observe::{self, Metrics};
use crate::response::{answer_response, json_response, streamed, ApiError};
use http_body_util::{BodyExt, LengthLimitError, Limited};

/// Oversized bodies up to this size are read and discarded before the 413 is sent.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Largest accepted request body, in bytes (`SAGEMAKER_MAX_PAYLOAD_IN_MB`).
    pub max_payload_bytes: usize,
    /// Largest JSON Lines body, which is streamed rather than held (`usize::MAX`: no limit).
    pub max_stream_bytes: usize,
    /// What `/models` reports as the model's location.
    pub model_url: String,
    /// `/execution-parameters` `MaxConcurrentTransforms` (`SAGEMAKER_MAX_CONCURRENT_TRANSFORMS`);
    /// `None`: the number of request threads.
    pub max_concurrent_transforms: Option<usize>,
    /// `/execution-parameters` `BatchStrategy` (`SAGEMAKER_BATCH_STRATEGY`).
    pub batch_strategy: String,
    /// Also answer SageMaker Runtime's own API paths (local development; see [`emulation`]).
    pub emulate_runtime: bool,
    /// Write one log line per invocation (`HF_LOG_FORMAT=json`; see [`crate::observe`]).
    pub log_requests: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_payload_bytes: 6 * 1024 * 1024,
            max_stream_bytes: 6 * 1024 * 1024,
            model_url: "/opt/ml/model".into(),
            max_concurrent_transforms: None,
            emulate_runtime: false,
            batch_strategy: "MULTI_RECORD".into(),
            log_requests: false,
        }
    }
}

/// The shared state: the service once the model is ready.
#[derive(Debug)]
pub struct AppState {
    service: OnceLock<Arc<InferenceService>>,
    settings: HttpSettings,
    started: String,
    metrics: Metrics,
}

impl AppState {
    /// A state whose model is still loading: `/ping` answers 503 until [`AppState::set_ready`].
    pub fn loading(settings: HttpSettings) -> Arc<Self> {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs().to_string())
            .unwrap_or_default();
        Arc::new(Self {
            service: OnceLock::new(),
            settings,
            started,
            metrics: Metrics::new(),
        })
    }

    /// A state with a ready service.
    pub fn ready(settings: HttpSettings, service: InferenceService) -> Arc<Self> {
        let state = Self::loading(settings);
        state.set_ready(service);
        state
    }

    /// Marks the model loaded; later calls are ignored.
    pub fn set_ready(&self, service: InferenceService) {
        let _ = self.service.set(Arc::new(service));
    }

    /// The service, if ready.
    pub fn service(&self) -> Option<&Arc<InferenceService>> {
        self.service.get()
    }

    /// The HTTP settings.
    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    /// The request metrics of `GET /metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// The router. The same router serves the container and, through `lambda_http`, Lambda.
pub fn router(state: Arc<AppState>) -> Router {
    let observed = axum::middleware::from_fn_with_state(Arc::clone(&state), observe::observe);
    let mut r = Router::new()
        .route("/ping", any(ping))
        .route("/invocations", any(invocations).layer(observed.clone()))
        .route("/metrics", get(observe::metrics))
        .route("/execution-parameters", get(execution_parameters))
        .route("/models", get(models))
        .route("/models/{name}", get(describe_model))
        .route("/openapi.json", get(openapi));
    if state.settings.emulate_runtime {
        r = r
            .route(
                "/endpoints/{name}/invocations",
                axum::routing::post(emulation::invoke).layer(observed.clone()),
            )
            .route(
                "/endpoints/{name}/invocations-response-stream",
                axum::routing::post(emulation::invoke_stream).layer(observed),
            );
    }
    r.fallback(not_found).with_state(state)
}

/// multi-model-server pretty-prints its management and health bodies (2-space indent, trailing
/// newline); clients that compare them keep working.
fn pretty(value: &serde_json::Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(value).unwrap_or_default();
    out.push(b'\n');
    out
}

/// The OpenAPI 3.1 document of this API (an addition: the toolkit has none), generated from the
/// same schemas the requests are validated with: once the model is loaded, narrowed to its task
/// (`/invocations` takes and answers that task's schema); while it loads, every task's.
async fn openapi(State(state): State<Arc<AppState>>) -> Response {
    let Some(service) = state.service() else {
        return json_response(StatusCode::OK, hf_inference_core::schema::OPENAPI);
    };
    let doc = hf_inference_core::schema::openapi_for(service.pipeline().task()).and_then(|doc| {
        serde_json::to_vec(&doc).map_err(|e| ToolkitError::Internal(e.to_string()))
    });
    match doc {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(e) => ApiError(e).into_response(),
    }
}

async fn ping(State(state): State<Arc<AppState>>) -> Response {
    match state.service() {
        Some(_) => json_response(
            StatusCode::OK,
            pretty(&serde_json::json!({"status": "Healthy"})),
        ),
        None => ApiError(ToolkitError::Unhealthy(
            "the model is still loading; /ping answers 200 once it is ready".into(),
        ))
        .into_response(),
    }
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(crate) async fn invocations(
    State(state): State<Arc<AppState>>,
    req: Request,
) -> Result<Response, ApiError> {
    // The toolkit serves any method here; POST (SageMaker) and PUT (MMS) are the useful ones.
    if req.method() != Method::POST && req.method() != Method::PUT {
        return Err(ToolkitError::MethodNotAllowed(format!(
            "{}; send the request with POST (or PUT)",
            req.method()
        ))
        .into());
    }
    let json_lines =
        hf_inference_core::codec::request_format(header_str(req.headers(), header::CONTENT_TYPE))
            .is_ok_and(|f| f == RequestFormat::JsonLines);
    let limit = if json_lines {
        state.settings.max_stream_bytes
    } else {
        state.settings.max_payload_bytes
    };
    let declared =
        header_str(req.headers(), header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        // Refused before buffering. A client still sending its body would see a broken pipe
        // instead of our 413, so read and discard what it sends, up to a bound.
        if declared.is_some_and(|n| n <= DRAIN_LIMIT) {
            let mut body = req.into_body();
            while let Some(Ok(_)) = body.frame().await {}
        }
        return Err(ToolkitError::PayloadTooLarge { limit }.into());
    }
    let service = state.service().cloned().ok_or_else(|| {
        ToolkitError::Unhealthy("the model is still loading; retry when /ping answers 200".into())
    })?;
    let (parts, body) = req.into_parts();
    // negotiate the media types before reading the body
    // the pipeline says which raw media types (images, audio) it takes besides JSON and CSV
    let request_format =
        service.request_format(header_str(&parts.headers, header::CONTENT_TYPE))?;
    let response_format = hf_inference_core::codec::response_format_for(
        request_format,
        header_str(&parts.headers, header::ACCEPT),
    )?;
    if request_format == RequestFormat::JsonLines {
        // streamed in and out: memory holds the lines in flight, not the body
        let framing = Framing::of(response_format)?;
        let lines = hf_inference_core::lines::split_lines(
            body.into_data_stream(),
            limit,
            state.settings.max_payload_bytes,
        );
        // Answers go through an unbounded queue so that reading the request never waits on a
        // client that sends its whole body before it reads the answer (it would deadlock on
        // full socket buffers); a client that reads as it sends keeps the queue short. A client
        // that goes away drops the receiver and stops the work.
        let mut answers = service.invoke_lines(lines, framing);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<bytes::Bytes>();
        tokio::spawn(async move {
            while let Some(chunk) = answers.next().await {
                if tx.send(chunk).is_err() {
                    break;
                }
            }
        });
        let chunks =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|c| (c, rx)) },
            );
        return Ok(streamed(response_format.content_type(), Box::pin(chunks)));
    }
    let bytes = Limited::new(body, limit).collect().await.map_err(|e| {
        if e.downcast_ref::<LengthLimitError>().is_some() {
            ToolkitError::PayloadTooLarge { limit }
        } else {
            ToolkitError::Validation(format!("could not read the request body: {e}"))
        }
    })?;
    // a raw body (an image) takes its parameters from the custom attributes or the query
    let raw_parameters = match request_format {
        RequestFormat::Binary(_) => hf_inference_core::codec::raw_parameters(
            parts
                .headers
                .get(hf_inference_core::codec::CUSTOM_ATTRIBUTES)
                .and_then(|v| v.to_str().ok()),
            parts.uri.query(),
        ),
        _ => None,
    };
    let answer = service
        .invoke_body_with(
            request_format,
            response_format,
            bytes.to_bytes(),
            raw_parameters,
        )
        .await?;
    Ok(answer_response(answer))
}

async fn execution_parameters(State(state): State<Arc<AppState>>) -> Response {
    let workers = state.settings.max_concurrent_transforms.unwrap_or_else(|| {
        state
            .service()
            .map(|s| s.runtime().options().workers)
            .unwrap_or(1)
    });
    // batch transform allows at most 100 MB (0 = unbounded, chunked)
    let mb = if state.settings.max_stream_bytes == usize::MAX {
        0
    } else {
        state
            .settings
            .max_payload_bytes
            .div_ceil(1024 * 1024)
            .clamp(1, 100)
    };
    let body = serde_json::json!({
        "MaxConcurrentTransforms": workers,
        "BatchStrategy": state.settings.batch_strategy,
        "MaxPayloadInMB": mb,
    });
    json_response(StatusCode::OK, body.to_string().into_bytes())
}

fn model_entry(state: &AppState) -> serde_json::Value {
    serde_json::json!({"modelName": "model", "modelUrl": state.settings.model_url})
}

async fn models(State(state): State<Arc<AppState>>) -> Response {
    let body = serde_json::json!({"models": [model_entry(&state)]});
    json_response(StatusCode::OK, pretty(&body))
}

async fn describe_model(
    State(state): State<Arc<AppState>>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    if name != "model" {
        return Err(ToolkitError::NotFound.into());
    }
    // multi-model-server's shape, with our values: one entry per inference thread
    let (ready, workers) = match state.service() {
        Some(s) => (true, s.runtime().options().workers),
        None => (false, 0),
    };
    let worker_list: Vec<serde_json::Value> = (0..workers)
        .map(|i| {
            serde_json::json!({
                "id": format!("inference-{i}"),
                "startTime": state.started,
                "status": if ready { "READY" } else { "LOADING" },
                "gpu": hf_inference_core::model::CUDA_BUILD,
                "memoryUsage": 0,
            })
        })
        .collect();
    let body = serde_json::json!({
        "modelName": "model",
        "modelUrl": state.settings.model_url,
        "runtime": "rust",
        "minWorkers": workers,
        "maxWorkers": workers,
        "batchSize": 1,
        "maxBatchDelay": 0,
        "loadedAtStartup": true,
        "workers": worker_list,
    });
    Ok(json_response(StatusCode::OK, pretty(&body)))
}

async fn not_found() -> ApiError {
    ApiError(ToolkitError::NotFound)
}
