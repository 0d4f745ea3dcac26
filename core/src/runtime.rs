//! Running inference off the async runtime: a fixed set of OS threads fed through a bounded
//! queue. candle calls block for milliseconds to seconds, so they never run on tokio's workers
//! (which must keep answering `/ping`); a full queue is an immediate 503 instead of unbounded
//! memory, and a request that waits or runs too long is a 504. This is the executor: it knows
//! nothing of pipelines or codecs (the service above it does).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::context::CallerGone;
use crate::error::ToolkitError;

/// A unit of work queued for an inference thread.
type WorkItem = Box<dyn FnOnce() + Send + 'static>;

/// Sizes of the runtime.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeOptions {
    /// Request threads (`SAGEMAKER_MODEL_SERVER_WORKERS`), each running one request's decoding,
    /// tokenization and encoding at a time; the forward passes of concurrent requests are merged
    /// on the model thread (see the batcher).
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
    tx: SyncSender<WorkItem>,
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
        let (tx, rx) = sync_channel::<WorkItem>(options.queue_capacity);
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
    /// executor. `f` gets the request's [`CallerGone`] flag, raised when this call ends whichever
    /// way (answered, timed out, its future dropped because the client went away): long work
    /// polls it and stops.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ToolkitError>
    where
        T: Send + 'static,
        F: FnOnce(CallerGone) -> Result<T, ToolkitError> + Send + 'static,
    {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let queued = Arc::clone(&self.queued);
        let flag = CallerGone::new();
        // raised when this call ends, whichever way (answered, timed out, dropped)
        let _gone = flag.guard();
        let job: WorkItem = Box::new(move || {
            // the client gave up (timeout, disconnect): skip the work
            if !done_tx.is_closed() {
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || f(flag)))
                        .unwrap_or_else(|_| {
                            Err(ToolkitError::Internal("inference panicked".into()))
                        });
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
        let job: WorkItem = Box::new(move || {
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

fn worker(rx: &Mutex<Receiver<WorkItem>>) {
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
        let name = rt().block_on(r.run(|_| Ok(std::thread::current().name().map(str::to_owned))));
        let name = name.unwrap().unwrap();
        assert!(name.starts_with("inference-"), "{name}");
    }

    #[test]
    fn a_job_whose_caller_timed_out_sees_it() {
        // No timing luck: the job polls its flag until the caller's 100 ms timeout raises it
        // (the 120 s caps only keep a broken build from hanging; a loaded machine never needs
        // them)
        let r = Runtime::new(RuntimeOptions {
            workers: 1,
            queue_capacity: 4,
            timeout: Duration::from_millis(100),
        })
        .unwrap();
        let (seen_tx, seen_rx) = std::sync::mpsc::channel();
        let result = rt().block_on(r.run(move |flag| {
            let t = std::time::Instant::now();
            while !flag.is_gone() && t.elapsed() < Duration::from_secs(120) {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = seen_tx.send(flag.is_gone());
            Ok(())
        }));
        assert!(
            matches!(result, Err(ToolkitError::Timeout(_))),
            "{result:?}"
        );
        let seen = seen_rx.recv_timeout(Duration::from_secs(120)).unwrap();
        assert!(seen, "the job never saw its caller go");
    }

    #[test]
    fn full_queue_is_overloaded_and_slow_jobs_time_out() {
        // Explicit ordering, no sleeps: the blocker says when the worker holds it, then the
        // second job fills the one queue slot and the third (polled after it by `join!`) finds
        // it full; the gate opens only after both time out, whatever the machine's load
        let r = Runtime::new(RuntimeOptions {
            workers: 1,
            queue_capacity: 1,
            timeout: Duration::from_millis(200),
        })
        .unwrap();
        let rt = rt();
        rt.block_on(async {
            let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
            let (held_tx, held_rx) = tokio::sync::oneshot::channel::<()>();
            // occupies the worker until the gate opens
            let blocker = r.run(move |_| {
                let _ = held_tx.send(());
                let _ = gate_rx.recv_timeout(Duration::from_secs(120));
                Ok(())
            });
            let rest = async {
                held_rx.await.expect("the blocker runs");
                let queued = r.run(|_| Ok(()));
                let third = r.run(|_| Ok(()));
                tokio::join!(queued, third)
            };
            let (b, (q, t)) = tokio::join!(blocker, rest);
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
        let out: Result<(), _> = rt().block_on(r.run(|_| panic!("boom")));
        assert_eq!(out.unwrap_err().status(), 500);
    }
}
