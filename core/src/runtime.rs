//! Running inference off the async runtime: a fixed set of OS threads fed through a bounded
//! queue. candle calls block for milliseconds to seconds, so they never run on tokio's workers
//! (which must keep answering `/ping`); a full queue is an immediate 503 instead of unbounded
//! memory, and a request that waits or runs too long is a 504.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::codec::{self, RequestFormat, ResponseFormat};
use crate::error::ToolkitError;
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
        let job: Job = Box::new(move || {
            // the client gave up (timeout, disconnect): skip the work
            if !done_tx.is_closed() {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                    .unwrap_or_else(|_| Err(ToolkitError::Internal("inference panicked".into())));
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
    /// come as a stream, framed as JSON Lines or as one JSON array (`format`). Fails up front
    /// only for a format that cannot frame lines.
    pub fn invoke_lines<S>(
        &self,
        lines: S,
        format: ResponseFormat,
    ) -> Result<impl futures_util::Stream<Item = bytes::Bytes> + Send + 'static, ToolkitError>
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, ToolkitError>> + Send + 'static,
    {
        crate::lines::answer_lines(
            Arc::clone(&self.pipeline),
            Arc::clone(&self.runtime),
            lines,
            format,
            self.runtime.options().workers * 2,
        )
    }

    /// One invocation whose media types are already negotiated (hosts that check the headers
    /// before reading the body). A JSON Lines body is answered line by line into one buffer.
    pub async fn invoke_negotiated(
        &self,
        request_format: RequestFormat,
        response_format: ResponseFormat,
        body: impl AsRef<[u8]> + Send + 'static,
    ) -> Result<Encoded, ToolkitError> {
        if request_format == RequestFormat::JsonLines {
            use futures_util::StreamExt;
            let bytes = bytes::Bytes::copy_from_slice(body.as_ref());
            let lines = crate::lines::split_lines(
                futures_util::stream::iter([Ok::<_, std::convert::Infallible>(bytes)]),
                usize::MAX,
            );
            let mut out = Vec::new();
            let mut answers = Box::pin(self.invoke_lines(lines, response_format)?);
            while let Some(chunk) = answers.next().await {
                out.extend_from_slice(&chunk);
            }
            return Ok(Encoded {
                content_type: response_format.content_type(),
                body: out,
            });
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
    fn panics_become_errors() {
        let r = Runtime::new(RuntimeOptions::default()).unwrap();
        let out: Result<(), _> = rt().block_on(r.run(|| panic!("boom")));
        assert_eq!(out.unwrap_err().status(), 500);
    }
}
