//! Dynamic batching: one thread owns the model's forward passes, and every request's sequences
//! that arrive while a pass runs are merged into the next one (as text-embeddings-inference does).
//! Concurrent single-sentence requests then cost about one batched pass instead of one pass each.
//!
//! The wait is bounded and adaptive: the next pass waits up to [`Limits::max_wait`] (and at most
//! half the last pass's time) until it holds a request from every client seen sending: those of
//! the last pass, which are about to send again, plus those whose requests came in while it ran.
//! Without that, concurrent clients fall into passes of 1 and 3, or pairs taking turns, instead
//! of 4. With one client (a pass of one request and nothing queued meanwhile), after an idle
//! spell of over four passes (a burst is over), and for a request pushed back by the token cap,
//! nothing waits: a lone client never pays for batching.

use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::ToolkitError;
use crate::model::{Matrix, TokenSequence};

type Reply = Sender<Result<Vec<Matrix>, ToolkitError>>;
/// Runs the model on a merged batch (sorting and chunking included).
pub type Forward = Arc<dyn Fn(&[TokenSequence]) -> Result<Vec<Matrix>, ToolkitError> + Send + Sync>;

struct Pending {
    seqs: Vec<TokenSequence>,
    reply: Reply,
}

/// The default of [`Limits::max_wait`].
pub const DEFAULT_WAIT: Duration = Duration::from_micros(2000);

/// Bounds of a merged pass.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The most tokens of one merged pass (a request larger than it still runs, alone).
    pub max_tokens: usize,
    /// The longest a pass waits for batch-mates (zero: never).
    pub max_wait: Duration,
}

/// The model thread and its inbox.
pub struct Batcher {
    tx: Sender<Pending>,
    /// Requests handed to the model thread so far (tests wait on it instead of sleeping).
    sent: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").finish_non_exhaustive()
    }
}

impl Batcher {
    /// Starts the model thread (named `model`), which runs every pass.
    pub fn new(forward: Forward, limits: Limits) -> Result<Self, ToolkitError> {
        let (tx, rx) = channel::<Pending>();
        std::thread::Builder::new()
            .name("model".into())
            .spawn(move || serve(&rx, &forward, limits))
            .map_err(|e| ToolkitError::Internal(format!("cannot start the model thread: {e}")))?;
        Ok(Self {
            tx,
            sent: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Runs `seqs` in the next pass and waits for their outputs, in order.
    pub fn run(&self, seqs: Vec<TokenSequence>) -> Result<Vec<Matrix>, ToolkitError> {
        let (reply, rx) = channel();
        self.tx
            .send(Pending { seqs, reply })
            .map_err(|_| ToolkitError::Unhealthy("the model thread has stopped".into()))?;
        self.sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        rx.recv().unwrap_or_else(|_| {
            Err(ToolkitError::Unhealthy(
                "the model thread has stopped".into(),
            ))
        })
    }
}

fn tokens(pending: &Pending) -> usize {
    pending.seqs.iter().map(|s| s.ids.len()).sum()
}

fn serve(rx: &Receiver<Pending>, forward: &Forward, limits: Limits) {
    let mut carry: Option<Pending> = None;
    // the size and duration of the last pass: what the next one may wait for, and how long
    let (mut last_requests, mut last_pass) = (1usize, Duration::ZERO);
    let mut last_end = Instant::now();
    loop {
        // a request pushed back by the token cap has waited already: it starts the next pass at once
        let carried = carry.is_some();
        // requests that arrived while the last pass ran (counted below): their clients were busy
        // alongside that pass's
        let mut waiting = 0;
        let first = match carry.take() {
            Some(j) => j,
            None => match rx.try_recv() {
                Ok(j) => {
                    waiting += 1;
                    j
                }
                Err(TryRecvError::Empty) => match rx.recv() {
                    Ok(j) => j,
                    Err(_) => return, // every sender is gone
                },
                Err(TryRecvError::Disconnected) => return,
            },
        };
        let mut total = tokens(&first);
        let mut pendings = vec![first];
        // everything already waiting joins this pass
        while let Ok(j) = rx.try_recv() {
            if total + tokens(&j) > limits.max_tokens {
                carry = Some(j);
                break;
            }
            total += tokens(&j);
            pendings.push(j);
            waiting += 1;
        }
        // How many clients are sending: the last pass's, which are about to send again (their
        // turnaround: the answer, their own work, the next request), and those whose requests
        // came in meanwhile. Waiting for all of them keeps concurrent clients in one pass each
        // time round: otherwise 4 clients fall into passes of 1 and 3, or of 2 and 2 taking
        // turns (each pass streams the whole model's weights: 2 + 2 costs ~1.5x one pass of 4).
        // After an idle spell of over four passes the last pass's clients are stale (a burst is
        // over): nothing to wait for.
        let stale = last_end.elapsed() > last_pass * 4 && waiting == 0;
        let clients = if stale { 1 } else { last_requests + waiting };
        let linger = if clients > pendings.len() && !carried && carry.is_none() {
            limits.max_wait.min(last_pass / 2)
        } else {
            Duration::ZERO
        };
        let deadline = Instant::now() + linger;
        while pendings.len() < clients {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(j) = rx.recv_timeout(left) else { break };
            if total + tokens(&j) > limits.max_tokens {
                carry = Some(j);
                break;
            }
            total += tokens(&j);
            pendings.push(j);
        }
        last_requests = pendings.len();
        let started = Instant::now();
        run_pass(pendings, forward);
        last_end = Instant::now();
        last_pass = last_end - started;
    }
}

fn guarded(forward: &Forward, seqs: &[TokenSequence]) -> Result<Vec<Matrix>, ToolkitError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| forward(seqs)))
        .unwrap_or_else(|_| Err(ToolkitError::Internal("the model panicked".into())))
}

fn run_pass(pendings: Vec<Pending>, forward: &Forward) {
    crate::stats::record_pass(
        pendings.iter().map(|p| p.seqs.len()).sum(),
        pendings.iter().map(tokens).sum(),
    );
    if pendings.len() == 1 {
        for pending in pendings {
            let _ = pending.reply.send(guarded(forward, &pending.seqs));
        }
        return;
    }
    let all: Vec<TokenSequence> = pendings
        .iter()
        .flat_map(|j| j.seqs.iter().cloned())
        .collect();
    match guarded(forward, &all) {
        Ok(mut out) if out.len() == all.len() => {
            for pending in pendings.into_iter().rev() {
                let mine = out.split_off(out.len() - pending.seqs.len());
                let _ = pending.reply.send(Ok(mine));
            }
        }
        // a merged pass failed: run each request alone so each gets its own answer
        _ => {
            for pending in pendings {
                let _ = pending.reply.send(guarded(forward, &pending.seqs));
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
        let batcher = batcher_with(forward, DEFAULT_WAIT);
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
        // explicit synchronisation: release the model once all 8 are in its inbox
        wait_until(|| batcher.sent() >= 8);
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

    /// A forward whose pass takes `ms` and records
    /// the number of sequences of each pass; it counts the passes started and, while a test
    /// holds `hold`, blocks there.
    struct Recording {
        forward: Forward,
        sizes: Arc<Mutex<Vec<usize>>>,
        started: Arc<AtomicUsize>,
        hold: Arc<Mutex<()>>,
    }

    fn recording(ms: u64) -> Recording {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let started = Arc::new(AtomicUsize::new(0));
        let hold = Arc::new(Mutex::new(()));
        let (s2, st2, h2) = (Arc::clone(&sizes), Arc::clone(&started), Arc::clone(&hold));
        let forward: Forward = Arc::new(move |seqs: &[TokenSequence]| {
            st2.fetch_add(1, Ordering::SeqCst);
            drop(h2.lock().unwrap());
            std::thread::sleep(Duration::from_millis(ms));
            s2.lock().unwrap().push(seqs.len());
            Ok(empty_outputs(seqs))
        });
        Recording {
            forward,
            sizes,
            started,
            hold,
        }
    }

    /// Waits (yielding, no deadline: a broken build hangs the test, never a slow machine) until
    /// `done`.
    fn wait_until(done: impl Fn() -> bool) {
        while !done() {
            std::thread::yield_now();
        }
    }

    fn empty_outputs(seqs: &[TokenSequence]) -> Vec<Matrix> {
        seqs.iter()
            .map(|_| Matrix {
                rows: 0,
                cols: 0,
                data: vec![],
            })
            .collect()
    }

    impl Batcher {
        fn sent(&self) -> usize {
            self.sent.load(Ordering::SeqCst)
        }
    }

    fn batcher_with(forward: Forward, max_wait: Duration) -> Arc<Batcher> {
        let limits = Limits {
            max_tokens: 10_000,
            max_wait,
        };
        Arc::new(Batcher::new(forward, limits).unwrap())
    }

    /// One request of 3 tokens, from a thread of its own.
    fn send(b: &Arc<Batcher>) -> std::thread::JoinHandle<Vec<Matrix>> {
        let b = Arc::clone(b);
        std::thread::spawn(move || b.run(vec![seq(3)]).unwrap())
    }

    /// A burst: one pass runs while three requests queue up; they make one merged pass.
    /// Explicit synchronisation: the first pass is held until the three are in the inbox.
    fn merged_burst(b: &Arc<Batcher>, r: &Recording) {
        let held = r.hold.lock().unwrap();
        let (sent, started) = (b.sent(), r.started.load(Ordering::SeqCst));
        let first = send(b);
        wait_until(|| r.started.load(Ordering::SeqCst) > started);
        let queued: Vec<_> = (0..3).map(|_| send(b)).collect();
        wait_until(|| b.sent() >= sent + 4);
        drop(held);
        first.join().unwrap();
        for h in queued {
            h.join().unwrap();
        }
    }

    /// Three requests sent 150 ms apart, after a pass that merged three and took 1.2 s. Generous
    /// bounds (the adaptive wait is about time, so it is tested with times no load trips): with
    /// a wait, the next pass waits up to 600 ms (half the last pass), 300 ms more than the
    /// three need; without one, the second comes 150 ms after the first has been sent.
    fn staggered_after_a_merged_pass(max_wait: Duration) -> Vec<usize> {
        let r = recording(1200);
        let batcher = batcher_with(Arc::clone(&r.forward), max_wait);
        merged_burst(&batcher, &r);
        // the same clients come back one after another
        let again: Vec<_> = (0..3)
            .map(|_| {
                let h = send(&batcher);
                std::thread::sleep(Duration::from_millis(150));
                h
            })
            .collect();
        for h in again {
            h.join().unwrap();
        }
        let sizes = r.sizes.lock().unwrap().clone();
        sizes
    }

    #[test]
    fn after_a_merged_pass_the_next_one_waits_for_its_batch_mates() {
        let sizes = staggered_after_a_merged_pass(Duration::from_secs(10));
        assert_eq!(sizes, [1, 3, 3], "pass sizes");
        // without a wait the stragglers go in separate passes
        let sizes = staggered_after_a_merged_pass(Duration::ZERO);
        assert_eq!(&sizes[..2], [1, 3], "pass sizes");
        assert!(sizes.len() > 3, "pass sizes {sizes:?}");
    }

    #[test]
    fn after_an_idle_spell_a_lone_request_does_not_wait() {
        // Generous bounds: passes of 400 ms, so a pass that waited would wait 200 ms (half the
        // last); an idle spell of 4 s, twice the 1.6 s (four passes) that makes a burst stale;
        // the second request 100 ms after the first, inside the 200 ms a waiting pass would
        // give it, and 100 ms after a pass that starts at once has begun
        let r = recording(400);
        let batcher = batcher_with(Arc::clone(&r.forward), Duration::from_secs(10));
        merged_burst(&batcher, &r);
        std::thread::sleep(Duration::from_secs(4));
        let lone = send(&batcher);
        std::thread::sleep(Duration::from_millis(100));
        let later = send(&batcher);
        lone.join().unwrap();
        later.join().unwrap();
        assert_eq!(*r.sizes.lock().unwrap(), [1, 3, 1, 1]);
    }

    #[test]
    fn two_pairs_of_clients_taking_turns_merge_into_passes_of_four() {
        // two clients start together and two more while their pass runs: the pairs would take
        // turns (passes of 2, each while the other pair turns around) if a pass only waited for
        // as many as the last one had. Generous bounds: passes of 200 ms, so a pass waits up to
        // 100 ms for a client whose turnaround is 1 ms; the second pair starts 100 ms in
        let r = recording(200);
        let batcher = batcher_with(Arc::clone(&r.forward), Duration::from_secs(10));
        let client = |delay: u64| {
            let b = Arc::clone(&batcher);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(delay));
                for _ in 0..8 {
                    b.run(vec![seq(3)]).unwrap();
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        let clients = [client(0), client(0), client(100), client(100)];
        for c in clients {
            c.join().unwrap();
        }
        let sizes = r.sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 32);
        let fours = sizes.iter().filter(|&&n| n == 4).count();
        assert!(fours >= 5, "pass sizes {sizes:?}");
    }

    #[test]
    fn a_failing_merged_pass_is_retried_per_request() {
        let forward: Forward = Arc::new(|seqs: &[TokenSequence]| {
            if seqs.iter().any(|s| s.ids.len() == 13) {
                Err(ToolkitError::InvalidParameters("13 is unlucky".into()))
            } else {
                Ok(empty_outputs(seqs))
            }
        });
        let pendings: Vec<(Pending, Receiver<_>)> = [13, 2]
            .iter()
            .map(|&n| {
                let (reply, rx) = channel();
                (
                    Pending {
                        seqs: vec![seq(n)],
                        reply,
                    },
                    rx,
                )
            })
            .collect();
        let (pendings, rxs): (Vec<_>, Vec<_>) = pendings.into_iter().unzip();
        run_pass(pendings, &forward);
        assert!(rxs[0].recv().unwrap().is_err());
        assert!(rxs[1].recv().unwrap().is_ok());
    }
}
