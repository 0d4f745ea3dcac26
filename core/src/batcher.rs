//! Dynamic batching: one thread owns the model's forward passes, and every request's sequences
//! that arrive while a pass runs are merged into the next one (as text-embeddings-inference does).
//! Concurrent single-sentence requests then cost about one batched pass instead of one pass each;
//! a lone request waits for nothing.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use crate::error::ToolkitError;
use crate::model::{Matrix, TokenSequence};

type Reply = Sender<Result<Vec<Matrix>, ToolkitError>>;
/// Runs the model on a merged batch (sorting and chunking included).
pub type Forward = Arc<dyn Fn(&[TokenSequence]) -> Result<Vec<Matrix>, ToolkitError> + Send + Sync>;

struct Job {
    seqs: Vec<TokenSequence>,
    reply: Reply,
}

/// The model thread and its inbox.
pub struct Batcher {
    tx: Sender<Job>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").finish_non_exhaustive()
    }
}

impl Batcher {
    /// Starts the model thread. `max_tokens` bounds one merged pass (a request larger than it
    /// still runs, alone).
    pub fn new(forward: Forward, max_tokens: usize) -> Result<Self, ToolkitError> {
        Self::with_spawner(forward, max_tokens, |run| {
            std::thread::Builder::new()
                .name("model".into())
                .spawn(run)
                .map(|_| ())
                .map_err(|e| ToolkitError::Internal(format!("cannot start the model thread: {e}")))
        })
    }

    /// As [`new`](Self::new), with the model's loop started by `spawn` (e.g. on a thread of the
    /// model's own pool, see [`crate::model::TextModel::spawn_runner`]).
    pub fn with_spawner(
        forward: Forward,
        max_tokens: usize,
        spawn: impl FnOnce(Box<dyn FnOnce() + Send>) -> Result<(), ToolkitError>,
    ) -> Result<Self, ToolkitError> {
        let (tx, rx) = channel::<Job>();
        spawn(Box::new(move || serve(&rx, &forward, max_tokens)))?;
        Ok(Self { tx })
    }

    /// Runs `seqs` in the next pass and waits for their outputs, in order.
    pub fn run(&self, seqs: Vec<TokenSequence>) -> Result<Vec<Matrix>, ToolkitError> {
        let (reply, rx) = channel();
        self.tx
            .send(Job { seqs, reply })
            .map_err(|_| ToolkitError::Unhealthy("the model thread has stopped".into()))?;
        rx.recv().unwrap_or_else(|_| {
            Err(ToolkitError::Unhealthy(
                "the model thread has stopped".into(),
            ))
        })
    }
}

fn tokens(job: &Job) -> usize {
    job.seqs.iter().map(|s| s.ids.len()).sum()
}

fn serve(rx: &Receiver<Job>, forward: &Forward, max_tokens: usize) {
    let mut carry: Option<Job> = None;
    loop {
        let first = match carry.take() {
            Some(j) => j,
            None => match rx.recv() {
                Ok(j) => j,
                Err(_) => return, // every sender is gone
            },
        };
        let mut total = tokens(&first);
        let mut jobs = vec![first];
        while let Ok(j) = rx.try_recv() {
            if total + tokens(&j) > max_tokens {
                carry = Some(j);
                break;
            }
            total += tokens(&j);
            jobs.push(j);
        }
        run_jobs(jobs, forward);
    }
}

fn guarded(forward: &Forward, seqs: &[TokenSequence]) -> Result<Vec<Matrix>, ToolkitError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| forward(seqs)))
        .unwrap_or_else(|_| Err(ToolkitError::Internal("the model panicked".into())))
}

fn run_jobs(jobs: Vec<Job>, forward: &Forward) {
    if jobs.len() == 1 {
        for job in jobs {
            let _ = job.reply.send(guarded(forward, &job.seqs));
        }
        return;
    }
    let all: Vec<TokenSequence> = jobs.iter().flat_map(|j| j.seqs.iter().cloned()).collect();
    match guarded(forward, &all) {
        Ok(mut out) if out.len() == all.len() => {
            for job in jobs.into_iter().rev() {
                let mine = out.split_off(out.len() - job.seqs.len());
                let _ = job.reply.send(Ok(mine));
            }
        }
        // a merged pass failed: run each request alone so each gets its own answer
        _ => {
            for job in jobs {
                let _ = job.reply.send(guarded(forward, &job.seqs));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Barrier, Mutex};

    fn seq(n: usize) -> TokenSequence {
        TokenSequence {
            ids: vec![1; n],
            type_ids: vec![0; n],
            attention_mask: vec![1; n],
        }
    }

    #[test]
    fn concurrent_requests_share_passes_and_get_their_own_outputs() {
        let passes = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Mutex::new(()));
        let forward: Forward = {
            let passes = Arc::clone(&passes);
            let gate = Arc::clone(&gate);
            Arc::new(move |seqs: &[TokenSequence]| {
                let _held = gate.lock().unwrap();
                passes.fetch_add(1, Ordering::SeqCst);
                Ok(seqs
                    .iter()
                    .map(|s| Matrix {
                        rows: 1,
                        cols: 1,
                        data: vec![s.ids.len() as f32],
                    })
                    .collect())
            })
        };
        let batcher = Arc::new(Batcher::new(forward, 10_000).unwrap());
        // hold the model so that the 8 requests queue up behind the first pass
        let held = gate.lock().unwrap();
        let start = Arc::new(Barrier::new(9));
        let handles: Vec<_> = (1..=8)
            .map(|n| {
                let (b, start) = (Arc::clone(&batcher), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    b.run(vec![seq(n), seq(n + 100)]).unwrap()
                })
            })
            .collect();
        start.wait();
        std::thread::sleep(std::time::Duration::from_millis(100));
        drop(held);
        for (n, h) in (1..=8).zip(handles) {
            let out = h.join().unwrap();
            assert_eq!(
                out.iter().map(|m| m.data[0]).collect::<Vec<_>>(),
                [n as f32, (n + 100) as f32]
            );
        }
        assert!(
            passes.load(Ordering::SeqCst) < 8,
            "no batching: {} passes",
            passes.load(Ordering::SeqCst)
        );
    }

    #[test]
    fn a_failing_merged_pass_is_retried_per_request() {
        let forward: Forward = Arc::new(|seqs: &[TokenSequence]| {
            if seqs.iter().any(|s| s.ids.len() == 13) {
                Err(ToolkitError::InvalidParameters("13 is unlucky".into()))
            } else {
                Ok(seqs
                    .iter()
                    .map(|_| Matrix {
                        rows: 0,
                        cols: 0,
                        data: vec![],
                    })
                    .collect())
            }
        });
        let jobs: Vec<(Job, Receiver<_>)> = [13, 2]
            .iter()
            .map(|&n| {
                let (reply, rx) = channel();
                (
                    Job {
                        seqs: vec![seq(n)],
                        reply,
                    },
                    rx,
                )
            })
            .collect();
        let (jobs, rxs): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
        run_jobs(jobs, &forward);
        assert!(rxs[0].recv().unwrap().is_err());
        assert!(rxs[1].recv().unwrap().is_ok());
    }
}
