//! Running inference off the async runtime: a fixed set of OS threads fed through a bounded
//! queue. candle calls block for milliseconds to seconds, so they never run on tokio's workers
//! (which must keep answering `/ping`); a full queue is an immediate 503 instead of unbounded
//! memory, and a request that waits or runs too long is a 504.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::codec::{self, RequestFormat, ResponseFormat};
use crate::error::ToolkitError;
use crate::lines::Framing;
use crate::pipeline::AnyPipeline;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Sizes of the runtime.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeOptions {
    /// Request threads (`SAGEMAKER_MODEL_SERVER_WORKERS`), each running one request's decoding,
    /// tokenization and encoding at a time; the forward passes of concurrent requests are merged
    /// on the model thread ([`crate::batcher`]).
    pub workers: usize,
    /// Requests that may wait for a worker before new ones get 503.
    pub queue_capacity: usize,
    /// Longest wait + run time of one request (`SAGEMAKER_MODEL_SERVER_TIMEOUT`).
    pub timeout: Duration,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            workers: 4,
            queue_capacity: 64,
            timeout: Duration::from_secs(60),
        }
    }
}

/// The inference threads and their queue.
#[derive(Debug)]
pub struct Runtime {
    tx: SyncSender<Job>,
    options: RuntimeOptions,
    queued: Arc<AtomicUsize>,
}

impl Runtime {
    /// Starts the worker threads.
    pub fn new(options: RuntimeOptions) -> Result<Self, ToolkitError> {
        let options = RuntimeOptions {
            workers: options.workers.max(1),
            queue_capacity: options.queue_capacity.max(1),
            ..options
        };
        let (tx, rx) = sync_channel::<Job>(options.queue_capacity);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..options.workers {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("inference-{i}"))
                .spawn(move || worker(&rx))
                .map_err(|e| {
                    ToolkitError::Internal(format!("cannot start an inference thread: {e}"))
                })?;
        }
        Ok(Self {
            tx,
            options,
            queued: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The options in force.
    pub fn options(&self) -> RuntimeOptions {
        self.options
    }

    /// Requests waiting or running now.
    pub fn in_flight(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Runs `f` on an inference thread and waits for its result without blocking the caller's
    /// executor.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ToolkitError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, ToolkitError> + Send + 'static,
    {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let queued = Arc::clone(&self.queued);
        // raised when this call ends, whichever way: a job still running then has no one to
        // answer (timeout, client gone), and long work polls it (see [`client_gone`])
        let gone = RaiseOnDrop(Arc::new(AtomicBool::new(false)));
        let flag = CallerGone(Arc::clone(&gone.0));
        let job: Job = Box::new(move || {
            // the client gave up (timeout, disconnect): skip the work
            if !done_tx.is_closed() {
                CALLER_GONE.with(|c| *c.borrow_mut() = Some(flag));
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                    .unwrap_or_else(|_| Err(ToolkitError::Internal("inference panicked".into())));
                CALLER_GONE.with(|c| *c.borrow_mut() = None);
                let _ = done_tx.send(result);
            }
            queued.fetch_sub(1, Ordering::Relaxed);
        });
        self.queued.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                return Err(ToolkitError::Overloaded {
                    capacity: self.options.queue_capacity,
                });
            }
            Err(TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                return Err(ToolkitError::Unhealthy(
                    "the inference threads have stopped".into(),
                ));
            }
        }
        match tokio::time::timeout(self.options.timeout, done_rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ToolkitError::Internal(
                "an inference thread dropped a request".into(),
            )),
            Err(_) => Err(ToolkitError::Timeout(self.options.timeout.as_secs())),
        }
    }
}

impl Runtime {
    /// Queues `f` on an inference thread without waiting for it (it reports through its own
    /// channel); a full queue is a 503 as for [`run`](Self::run).
    pub fn submit<F>(&self, f: F) -> Result<(), ToolkitError>
    where
        F: FnOnce() + Send + 'static,
    {
        let queued = Arc::clone(&self.queued);
        let job: Job = Box::new(move || {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
                tracing::error!("a streamed inference panicked");
            }
            queued.fetch_sub(1, Ordering::Relaxed);
        });
        self.queued.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                Err(ToolkitError::Overloaded {
                    capacity: self.options.queue_capacity,
                })
            }
            Err(TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                Err(ToolkitError::Unhealthy(
                    "the inference threads have stopped".into(),
                ))
            }
        }
    }
}

thread_local! {
    /// The flag of the request the current inference thread runs (see [`Runtime::run`]).
    static CALLER_GONE: std::cell::RefCell<Option<CallerGone>> =
        const { std::cell::RefCell::new(None) };
}

/// Sets its flag when dropped.
struct RaiseOnDrop(Arc<AtomicBool>);

impl Drop for RaiseOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Says whether the caller of a request is gone (its timeout passed or its client
/// disconnected): long work (a generation) polls it and stops rather than run to the end for
/// nobody.
#[derive(Debug, Clone)]
pub struct CallerGone(Arc<AtomicBool>);

impl CallerGone {
    /// Whether the caller is gone.
    pub fn is_gone(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// The error such work stops with (no one reads it: the caller is gone).
    pub fn error() -> ToolkitError {
        ToolkitError::Internal("the caller of this request is gone".into())
    }
}

/// The [`CallerGone`] flag of the request running on this thread; `None` outside
/// [`Runtime::run`].
pub fn client_gone() -> Option<CallerGone> {
    CALLER_GONE.with(|c| c.borrow().clone())
}

fn worker(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return, // every sender is gone: shutting down
        }
    }
}

/// A loaded pipeline behind the runtime: bytes in, bytes out.
#[derive(Debug)]
pub struct InferenceService {
    pipeline: Arc<AnyPipeline>,
    runtime: Arc<Runtime>,
}

/// The most inputs of one request run at once: a longer `inputs` list is run in parts of this
/// size and answered part by part.
pub const MICRO_BATCH: usize = 64;

/// A stream of response bytes.
pub type AnswerStream = std::pin::Pin<Box<dyn futures_util::Stream<Item = bytes::Bytes> + Send>>;

/// A successful answer: whole, or streamed as it is produced.
pub enum Answer {
    /// The whole body.
    Whole(Encoded),
    /// The body as a stream.
    Stream {
        /// The `Content-Type`.
        content_type: &'static str,
        /// The body's chunks.
        chunks: AnswerStream,
    },
}

impl Answer {
    /// The whole body, the stream read to its end.
    pub async fn collect(self) -> Encoded {
        use futures_util::StreamExt;
        match self {
            Answer::Whole(e) => e,
            Answer::Stream {
                content_type,
                mut chunks,
            } => {
                let mut body = Vec::new();
                while let Some(c) = chunks.next().await {
                    body.extend_from_slice(&c);
                }
                Encoded { content_type, body }
            }
        }
    }
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Whole(e) => f.debug_tuple("Whole").field(e).finish(),
            Answer::Stream { content_type, .. } => f
                .debug_struct("Stream")
                .field("content_type", content_type)
                .finish_non_exhaustive(),
        }
    }
}

enum Decoded {
    Whole(Vec<u8>),
    Parts(Vec<Vec<u8>>, std::collections::VecDeque<Value>),
}

/// Splits a request whose `inputs` list is longer than [`MICRO_BATCH`] into requests of at most
/// that many inputs (the last one at least two long, so that no part is a one-element list,
/// which some pipelines answer unwrapped); gives the request back otherwise.
fn split_inputs(mut doc: Value, allowed: bool) -> Result<std::collections::VecDeque<Value>, Value> {
    let long = allowed
        && doc
            .get("inputs")
            .and_then(Value::as_array)
            .is_some_and(|a| a.len() > MICRO_BATCH);
    if !long {
        return Err(doc);
    }
    let Some(Value::Array(inputs)) = doc.as_object_mut().and_then(|o| o.remove("inputs")) else {
        return Err(doc);
    };
    // parts of MICRO_BATCH, the last one taking a lone remainder; each part gets a Vec of its
    // own size (splitting the list in place would leave every part the capacity of the rest)
    let n = inputs.len();
    let mut sizes = vec![MICRO_BATCH; n / MICRO_BATCH];
    match n % MICRO_BATCH {
        0 => {}
        1 => {
            if let Some(last) = sizes.last_mut() {
                *last += 1;
            }
        }
        r => sizes.push(r),
    }
    let mut items = inputs.into_iter();
    let mut parts = std::collections::VecDeque::with_capacity(sizes.len());
    for size in sizes {
        let mut part = doc.clone();
        if let Some(o) = part.as_object_mut() {
            o.insert("inputs".into(), items.by_ref().take(size).collect());
        }
        parts.push_back(part);
    }
    Ok(parts)
}

impl InferenceService {
    /// Whether a generation request says `"parameters": {"stream": true}`.
    fn asks_to_stream(&self, body: &[u8]) -> bool {
        matches!(*self.pipeline, AnyPipeline::Generation(_))
            && serde_json::from_slice::<Value>(body).is_ok_and(|v| {
                v.get("parameters")
                    .and_then(|p| p.get("stream"))
                    .and_then(Value::as_bool)
                    == Some(true)
            })
    }

    /// Streams a generation as Server-Sent Events (see [`crate::generate::events`]). A request
    /// that fails before its first token gets its error status; later errors are an event.
    pub async fn invoke_events(
        &self,
        request_format: RequestFormat,
        body: bytes::Bytes,
    ) -> Result<Answer, ToolkitError> {
        use crate::generate::events::{GenEvent, SseEncoder};
        if !matches!(*self.pipeline, AnyPipeline::Generation(_)) {
            return Err(ToolkitError::UnsupportedAccept {
                accept: "text/event-stream".into(),
                reason: format!(
                    " for {} (only generation streams tokens)",
                    self.pipeline.task()
                ),
                supported: "application/json, text/csv, application/jsonlines".into(),
            });
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<GenEvent>();
        let pipeline = Arc::clone(&self.pipeline);
        self.runtime.submit(move || {
            let sink_tx = tx.clone();
            let result = codec::decode(request_format, &body).and_then(|doc| match &*pipeline {
                AnyPipeline::Generation(p) => {
                    crate::schema::validate_request(p.task(), &doc)?;
                    p.run_streaming(
                        doc,
                        Some(Box::new(move |t| sink_tx.send(GenEvent::Token(t)).is_ok())),
                    )
                }
                _ => Err(ToolkitError::Internal("not a generation pipeline".into())),
            });
            let _ = tx.send(GenEvent::Done(result));
        })?;
        let first = rx.recv().await.ok_or_else(|| {
            ToolkitError::Internal("the generation ended without a result".into())
        })?;
        let pipeline = Arc::clone(&self.pipeline);
        let AnyPipeline::Generation(gen) = &*pipeline else {
            return Err(ToolkitError::Internal("not a generation pipeline".into()));
        };
        let mut encoder = SseEncoder::new();
        let (first_chunk, finished) = match first {
            GenEvent::Done(Err(e)) => return Err(e),
            GenEvent::Done(Ok(out)) => (Some(encoder.done(Ok(out))), true),
            GenEvent::Token(t) => (encoder.token(gen, t), false),
        };
        let state = (rx, encoder, pipeline, finished);
        let rest = futures_util::stream::unfold(
            state,
            |(mut rx, mut enc, pipeline, finished)| async move {
                if finished {
                    return None;
                }
                loop {
                    let AnyPipeline::Generation(gen) = &*pipeline else {
                        return None;
                    };
                    match rx.recv().await {
                        Some(GenEvent::Token(t)) => {
                            if let Some(chunk) = enc.token(gen, t) {
                                return Some((chunk, (rx, enc, pipeline, false)));
                            }
                        }
                        Some(GenEvent::Done(result)) => {
                            let chunk = enc.done(result);
                            return Some((chunk, (rx, enc, pipeline, true)));
                        }
                        None => return None,
                    }
                }
            },
        );
        use futures_util::StreamExt;
        let chunks = futures_util::stream::iter(first_chunk).chain(rest);
        Ok(Answer::Stream {
            content_type: ResponseFormat::EventStream.content_type(),
            chunks: Box::pin(chunks),
        })
    }
}

/// A successful response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl InferenceService {
    /// Wraps a pipeline.
    pub fn new(pipeline: AnyPipeline, runtime: Runtime) -> Self {
        Self {
            pipeline: Arc::new(pipeline),
            runtime: Arc::new(runtime),
        }
    }

    /// The pipeline.
    pub fn pipeline(&self) -> &AnyPipeline {
        &self.pipeline
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// One invocation: negotiates the media types (cheap, here), then decodes, runs and encodes
    /// on an inference thread.
    pub async fn invoke(
        &self,
        content_type: Option<&str>,
        accept: Option<&str>,
        body: impl AsRef<[u8]> + Send + 'static,
    ) -> Result<Encoded, ToolkitError> {
        let request_format = codec::request_format(content_type)?;
        let response_format = codec::response_format_for(request_format, accept)?;
        self.invoke_negotiated(request_format, response_format, body)
            .await
    }

    /// Answers a JSON Lines body given as a stream of lines (see [`crate::lines`]): the answers
    /// come as a stream, laid out as `framing` says.
    pub fn invoke_lines<S>(&self, lines: S, framing: Framing) -> AnswerStream
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, ToolkitError>> + Send + 'static,
    {
        crate::lines::answer_lines(
            Arc::clone(&self.pipeline),
            Arc::clone(&self.runtime),
            lines,
            framing,
            self.runtime.options().workers * 2,
        )
    }

    /// One invocation of a buffered body, answered whole or, for long work, as a stream:
    /// a JSON Lines body (or several JSON documents in an `application/json` body, as batch
    /// transform's `SplitType=Line` sends them) line by line; a JSON request whose `inputs` list
    /// is longer than [`MICRO_BATCH`] in parts of that size, each answered as soon as it is done
    /// (the first part before anything is sent, so a bad request still gets its status; a later
    /// part that fails gets an error object for each of its inputs).
    pub async fn invoke_body(
        &self,
        request_format: RequestFormat,
        response_format: ResponseFormat,
        body: bytes::Bytes,
    ) -> Result<Answer, ToolkitError> {
        let lines_of = |body: bytes::Bytes, framing| {
            let lines = crate::lines::split_lines(
                futures_util::stream::iter([Ok::<_, std::convert::Infallible>(body)]),
                usize::MAX,
                usize::MAX,
            );
            self.invoke_lines(lines, framing)
        };
        if request_format == RequestFormat::JsonLines {
            let framing = Framing::of(response_format)?;
            return Ok(Answer::Stream {
                content_type: response_format.content_type(),
                chunks: lines_of(body, framing),
            });
        }
        if response_format == ResponseFormat::EventStream || self.asks_to_stream(&body) {
            return self.invoke_events(request_format, body).await;
        }
        let pipeline = Arc::clone(&self.pipeline);
        let streamable = matches!(
            response_format,
            ResponseFormat::Json | ResponseFormat::JsonLines
        ) && pipeline.task().batches_inputs();
        let b = body.clone();
        let first = self
            .runtime
            .run(move || {
                let doc = codec::decode(request_format, &b)?;
                match split_inputs(doc, streamable) {
                    Ok(mut parts) => {
                        let first = parts.pop_front().unwrap_or(Value::Null);
                        let items = pipeline.run(first)?.encode_items()?;
                        Ok(Decoded::Parts(items, parts))
                    }
                    Err(doc) => Ok(Decoded::Whole(pipeline.run(doc)?.encode(response_format)?)),
                }
            })
            .await;
        match first {
            Ok(Decoded::Whole(body)) => Ok(Answer::Whole(Encoded {
                content_type: response_format.content_type(),
                body,
            })),
            Ok(Decoded::Parts(items, rest)) => {
                let framing = Framing::of(response_format)?;
                Ok(Answer::Stream {
                    content_type: response_format.content_type(),
                    chunks: framing.frame(self.answer_parts(items, rest)),
                })
            }
            Err(ToolkitError::Validation(m)) if request_format == RequestFormat::Json => {
                let b = body.clone();
                let ranges = tokio::task::spawn_blocking(move || codec::documents(&b))
                    .await
                    .ok()
                    .flatten();
                let Some(ranges) = ranges else {
                    return Err(ToolkitError::Validation(m));
                };
                // one answer per document, one per line, as batch transform assembles them
                let format = match response_format {
                    ResponseFormat::JsonLines => ResponseFormat::JsonLines,
                    ResponseFormat::Json => ResponseFormat::Json,
                    other => {
                        return Err(ToolkitError::UnsupportedAccept {
                            accept: other.content_type().into(),
                            reason: " for a body of several JSON documents (answered one per line)"
                                .into(),
                            supported: "application/json, application/jsonlines".into(),
                        })
                    }
                };
                let docs = ranges
                    .into_iter()
                    .map(move |r| Ok::<_, ToolkitError>(body.slice(r)));
                Ok(Answer::Stream {
                    content_type: format.content_type(),
                    chunks: self.invoke_lines(futures_util::stream::iter(docs), Framing::Lines),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The encoded answers of the first part, then of each further part as it is run.
    fn answer_parts(
        &self,
        first: Vec<Vec<u8>>,
        rest: std::collections::VecDeque<Value>,
    ) -> impl futures_util::Stream<Item = Vec<u8>> + Send + 'static {
        use futures_util::StreamExt;
        let (pipeline, runtime) = (Arc::clone(&self.pipeline), Arc::clone(&self.runtime));
        let concurrency = runtime.options().workers.max(1);
        let later = futures_util::stream::iter(rest)
            .map(move |part| {
                let (pipeline, runtime) = (Arc::clone(&pipeline), Arc::clone(&runtime));
                async move {
                    let n = part
                        .get("inputs")
                        .and_then(Value::as_array)
                        .map_or(1, Vec::len);
                    let part = Arc::new(part);
                    let result = crate::lines::run_patiently(&runtime, move || {
                        pipeline.run(Value::clone(&part))?.encode_items()
                    })
                    .await;
                    match result {
                        Ok(items) if items.len() == n => items,
                        Ok(_) => vec![
                            ToolkitError::Internal(
                                "a part was answered with the wrong length".into()
                            )
                            .body_json();
                            n
                        ],
                        Err(e) => vec![e.body_json(); n],
                    }
                }
            })
            .buffered(concurrency)
            .flat_map(futures_util::stream::iter);
        futures_util::stream::iter(first).chain(later)
    }

    /// One invocation of a body already in memory, negotiated from its headers and answered
    /// into one buffer (the body is not copied).
    pub async fn invoke_bytes(
        &self,
        content_type: Option<&str>,
        accept: Option<&str>,
        body: bytes::Bytes,
    ) -> Result<Encoded, ToolkitError> {
        let request_format = codec::request_format(content_type)?;
        let response_format = codec::response_format_for(request_format, accept)?;
        let answer = self
            .invoke_body(request_format, response_format, body)
            .await?;
        Ok(answer.collect().await)
    }

    /// One invocation whose media types are already negotiated (hosts that check the headers
    /// before reading the body), answered into one buffer.
    pub async fn invoke_negotiated(
        &self,
        request_format: RequestFormat,
        response_format: ResponseFormat,
        body: impl AsRef<[u8]> + Send + 'static,
    ) -> Result<Encoded, ToolkitError> {
        if request_format != RequestFormat::Csv {
            let body = bytes::Bytes::copy_from_slice(body.as_ref());
            let answer = self
                .invoke_body(request_format, response_format, body)
                .await?;
            return Ok(answer.collect().await);
        }
        let pipeline = Arc::clone(&self.pipeline);
        self.runtime
            .run(move || {
                let doc = codec::decode(request_format, body.as_ref())?;
                let output = pipeline.run(doc)?;
                let body = output.encode(response_format)?;
                Ok(Encoded {
                    content_type: response_format.content_type(),
                    body,
                })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn runs_jobs_off_thread() {
        let r = Runtime::new(RuntimeOptions::default()).unwrap();
        let name = rt().block_on(r.run(|| Ok(std::thread::current().name().map(str::to_owned))));
        let name = name.unwrap().unwrap();
        assert!(name.starts_with("inference-"), "{name}");
    }

    #[test]
    fn a_job_whose_caller_timed_out_sees_it() {
        let r = Runtime::new(RuntimeOptions {
            workers: 1,
            queue_capacity: 4,
            timeout: Duration::from_millis(100),
        })
        .unwrap();
        let (seen_tx, seen_rx) = std::sync::mpsc::channel();
        let result = rt().block_on(r.run(move || {
            let flag = client_gone().expect("a flag inside a request");
            let t = std::time::Instant::now();
            while !flag.is_gone() && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = seen_tx.send(flag.is_gone());
            Ok(())
        }));
        assert!(
            matches!(result, Err(ToolkitError::Timeout(_))),
            "{result:?}"
        );
        // the job stops polling soon after the 100 ms timeout, not after its 10 s
        let seen = seen_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(seen, "the job never saw its caller go");
        assert!(client_gone().is_none(), "no flag outside a request");
    }

    #[test]
    fn full_queue_is_overloaded_and_slow_jobs_time_out() {
        let r = Runtime::new(RuntimeOptions {
            workers: 1,
            queue_capacity: 1,
            timeout: Duration::from_millis(200),
        })
        .unwrap();
        let rt = rt();
        rt.block_on(async {
            let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
            // occupies the worker until the gate opens
            let blocker = r.run(move || {
                let _ = gate_rx.recv_timeout(Duration::from_secs(5));
                Ok(())
            });
            let queued = async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                r.run(|| Ok(())).await
            };
            let third = r.run(|| Ok(()));
            let (b, q, t) = tokio::join!(blocker, queued, async {
                // let the first two get queued first
                tokio::time::sleep(Duration::from_millis(60)).await;
                third.await
            });
            // the blocker and the queued job time out; the third found the queue full
            assert!(matches!(t, Err(ToolkitError::Overloaded { .. })), "{t:?}");
            assert!(matches!(b, Err(ToolkitError::Timeout(_))), "{b:?}");
            assert!(matches!(q, Err(ToolkitError::Timeout(_))), "{q:?}");
            let _ = gate_tx.send(());
        });
    }

    #[test]
    fn long_input_lists_split_into_parts_of_their_own_size() {
        let sizes = |n: usize| {
            let doc = serde_json::json!({"inputs": vec!["x"; n], "parameters": {"top_k": 1}});
            match split_inputs(doc, true) {
                Err(_) => vec![n],
                Ok(parts) => parts
                    .iter()
                    .map(|p| {
                        assert_eq!(p["parameters"]["top_k"], 1);
                        let a = p["inputs"].as_array().unwrap();
                        assert!(a.capacity() <= a.len() + MICRO_BATCH, "{}", a.capacity());
                        a.len()
                    })
                    .collect(),
            }
        };
        assert_eq!(sizes(64), vec![64]);
        assert_eq!(sizes(65), vec![65]);
        assert_eq!(sizes(129), vec![64, 65]);
        assert_eq!(sizes(130), vec![64, 64, 2]);
        assert_eq!(sizes(1000).iter().sum::<usize>(), 1000);
        assert!(split_inputs(serde_json::json!({"inputs": vec!["x"; 500]}), false).is_err());
    }

    #[test]
    fn panics_become_errors() {
        let r = Runtime::new(RuntimeOptions::default()).unwrap();
        let out: Result<(), _> = rt().block_on(r.run(|| panic!("boom")));
        assert_eq!(out.unwrap_err().status(), 500);
    }
}
