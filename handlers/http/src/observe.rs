//! What `/invocations` tells operators: one log line per request (when asked) and the
//! Prometheus counters and histograms of `GET /metrics`.
//!
//! The log line (target `hf_inference::request`) carries the request's id (the
//! `X-Amzn-SageMaker-Inference-Id` or `X-Amzn-RequestId` header when the request has one, else
//! a number counted by this process), the task, the status,
//! the error type of a failure, the latency and the sizes of the body in and out: never the
//! payload. `/metrics` adds what the engine counts ([`hf_inference_core::stats`]): forward passes
//! and their batch sizes, tokens in and out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::HttpBody as _;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::response::ErrorType;
use crate::server::AppState;

/// The request counters and histograms, one set per router.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    errors: IntCounterVec,
    latency: HistogramVec,
    body_bytes: IntCounterVec,
    in_flight: IntGauge,
    queued: IntGauge,
    batch_size: Histogram,
    passes: prometheus::IntCounter,
    tokens: IntCounterVec,
    next_id: AtomicU64,
    /// Engine figures already added to the counters (they are cumulative in the engine).
    seen: std::sync::Mutex<hf_inference_core::stats::Snapshot>,
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    // names and labels are constants of this file: they are valid
    IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric definition")
}

impl Metrics {
    /// A fresh set, registered in its own registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        let m = Self {
            requests: counter(
                "hf_requests_total",
                "Invocations answered, by task and HTTP status.",
                &["task", "status"],
            ),
            errors: counter(
                "hf_request_errors_total",
                "Invocations that failed, by task and error type.",
                &["task", "type"],
            ),
            latency: HistogramVec::new(
                HistogramOpts::new(
                    "hf_request_duration_seconds",
                    "Time from the request's arrival to its answer's head, by task.",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0, 60.0,
                ]),
                &["task"],
            )
            .expect("a valid metric definition"),
            body_bytes: counter(
                "hf_request_body_bytes_total",
                "Bytes of invocation bodies, in (requests) and out (whole answers).",
                &["direction"],
            ),
            in_flight: IntGauge::new("hf_requests_in_flight", "Invocations being served now.")
                .expect("a valid metric definition"),
            queued: IntGauge::new(
                "hf_queue_depth",
                "Requests waiting for or running on an inference thread.",
            )
            .expect("a valid metric definition"),
            batch_size: Histogram::with_opts(
                HistogramOpts::new(
                    "hf_batch_size",
                    "Sequences per encoder forward pass (concurrent requests merged).",
                )
                .buckets(
                    hf_inference_core::stats::BATCH_BUCKETS
                        .iter()
                        .map(|&b| b as f64)
                        .collect(),
                ),
            )
            .expect("a valid metric definition"),
            passes: prometheus::IntCounter::new(
                "hf_forward_passes_total",
                "Encoder forward passes run.",
            )
            .expect("a valid metric definition"),
            tokens: counter(
                "hf_tokens_total",
                "Tokens through the model: input (encoder passes and prompts) and generated.",
                &["kind"],
            ),
            next_id: AtomicU64::new(1),
            seen: std::sync::Mutex::new(hf_inference_core::stats::Snapshot::default()),
            registry,
        };
        let collectors: [Box<dyn prometheus::core::Collector>; 9] = [
            Box::new(m.requests.clone()),
            Box::new(m.errors.clone()),
            Box::new(m.latency.clone()),
            Box::new(m.body_bytes.clone()),
            Box::new(m.in_flight.clone()),
            Box::new(m.queued.clone()),
            Box::new(m.batch_size.clone()),
            Box::new(m.passes.clone()),
            Box::new(m.tokens.clone()),
        ];
        for c in collectors {
            // each name is registered once, in a fresh registry
            m.registry.register(c).expect("a metric registered once");
        }
        m
    }

    /// The text exposition of every metric, with the engine's figures brought up to date.
    fn render(&self, queued: usize) -> Vec<u8> {
        self.queued.set(i64::try_from(queued).unwrap_or(i64::MAX));
        let now = hf_inference_core::stats::snapshot();
        if let Ok(mut seen) = self.seen.lock() {
            self.passes.inc_by(now.passes.saturating_sub(seen.passes));
            self.tokens
                .with_label_values(&["input"])
                .inc_by(now.input_tokens.saturating_sub(seen.input_tokens));
            self.tokens
                .with_label_values(&["generated"])
                .inc_by(now.generated_tokens.saturating_sub(seen.generated_tokens));
            // the histogram takes observations: replay each new pass at its bucket's bound
            for (i, &bound) in hf_inference_core::stats::BATCH_BUCKETS.iter().enumerate() {
                let new = now.batch_buckets[i].saturating_sub(seen.batch_buckets[i]);
                for _ in 0..new {
                    self.batch_size.observe(bound as f64);
                }
            }
            *seen = now;
        }
        let mut out = Vec::new();
        // writing text into a Vec cannot fail
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// `GET /metrics`: Prometheus' text format.
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let queued = state.service().map_or(0, |s| s.runtime().in_flight());
    let body = state.metrics().render(queued);
    let mut r = Response::new(axum::body::Body::from(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

/// Counts, times and (when asked) logs each invocation.
pub(crate) async fn observe(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let m = state.metrics();
    // SageMaker's inference id (`InvokeEndpoint`'s `InferenceId`), a request id, else ours
    let id = ["x-amzn-sagemaker-inference-id", "x-amzn-requestid"]
        .iter()
        .find_map(|h| req.headers().get(*h).and_then(|v| v.to_str().ok()))
        .map(str::to_owned)
        .unwrap_or_else(|| m.next_id.fetch_add(1, Ordering::Relaxed).to_string());
    let input_bytes = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        // a body whose size is known without a header (in-process callers)
        .or_else(|| req.body().size_hint().exact());
    m.in_flight.inc();
    let resp = next.run(req).await;
    m.in_flight.dec();
    let latency = started.elapsed();
    let task = state.service().map_or("none", |s| s.pipeline().task().id());
    let status = resp.status();
    // a streamed answer's size is unknown when its head is sent
    let output_bytes = resp.body().size_hint().exact();
    let error = resp.extensions().get::<ErrorType>().map(|e| e.0);
    m.requests.with_label_values(&[task, status.as_str()]).inc();
    if let Some(kind) = error {
        m.errors.with_label_values(&[task, kind]).inc();
    } else if status != StatusCode::OK {
        m.errors.with_label_values(&[task, "HttpError"]).inc();
    }
    m.latency
        .with_label_values(&[task])
        .observe(latency.as_secs_f64());
    m.body_bytes
        .with_label_values(&["in"])
        .inc_by(input_bytes.unwrap_or(0));
    m.body_bytes
        .with_label_values(&["out"])
        .inc_by(output_bytes.unwrap_or(0));
    if state.settings().log_requests {
        tracing::info!(
            target: "hf_inference::request",
            id = %id,
            task,
            status = status.as_u16(),
            error_type = error,
            latency_ms = latency.as_secs_f64() * 1000.0,
            input_bytes,
            output_bytes,
            "request"
        );
    }
    resp
}
