//! Continuous batching: one engine thread owns the model and runs the next step of every active
//! search together, so concurrent requests share each forward pass (their rows are independent:
//! a sequence's logits never depend on its batch-mates). A search joins at the next step after it
//! is submitted and leaves as soon as it is done.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use super::search::Search;
use super::LanguageModel;
use crate::context::CallerGone;
pub use crate::context::TokenSink;
use crate::error::ToolkitError;

struct Submission {
    search: Search,
    sink: Option<TokenSink>,
    /// Raised when the request's caller is gone.
    gone: CallerGone,
    reply: Sender<Result<Search, ToolkitError>>,
}

impl Submission {
    fn caller_gone(&self) -> bool {
        self.gone.is_gone()
    }
}

/// The engine: submit searches, get them back finished.
#[derive(Debug, Clone)]
pub struct Scheduler {
    tx: Sender<Submission>,
}

impl Scheduler {
    /// Starts the engine thread over `model`; at most `max_rows` sequences run in one step (the
    /// others wait for the next).
    pub fn start(model: Arc<dyn LanguageModel>, max_rows: usize) -> Result<Self, ToolkitError> {
        let (tx, rx) = mpsc::channel::<Submission>();
        std::thread::Builder::new()
            .name("generation".into())
            .spawn(move || engine(model.as_ref(), &rx, max_rows.max(1)))
            .map_err(|e| {
                ToolkitError::Internal(format!("cannot start the generation thread: {e}"))
            })?;
        Ok(Self { tx })
    }

    /// Runs `search` to the end (sharing steps with concurrent searches; its encoder, if any,
    /// runs on the engine's thread), calling `sink` with each new token when given. The search
    /// is dropped at the next step once `gone` is raised.
    pub fn run(
        &self,
        search: Search,
        sink: Option<TokenSink>,
        gone: CallerGone,
    ) -> Result<Search, ToolkitError> {
        let (reply, rx) = mpsc::channel();
        self.tx
            .send(Submission {
                search,
                sink,
                gone,
                reply,
            })
            .map_err(|_| ToolkitError::Unhealthy("the generation thread has stopped".into()))?;
        rx.recv()
            .map_err(|_| ToolkitError::Internal("the generation thread dropped a request".into()))?
    }
}

fn engine(model: &dyn LanguageModel, rx: &Receiver<Submission>, max_rows: usize) {
    let mut active: Vec<Submission> = Vec::new();
    loop {
        // wait for work when idle; otherwise take whatever arrived since the last step
        if active.is_empty() {
            match rx.recv() {
                Ok(sub) => active.push(sub),
                Err(_) => return, // every sender is gone
            }
        }
        // start (encode) the new searches; those that arrive while encoders run are taken and
        // started too (up to a step's worth), so requests sent together share their first step
        // instead of trailing one another by a step to the end
        loop {
            active.extend(rx.try_iter());
            // searches whose caller is gone (timed out, disconnected) stop here, whatever their
            // mode
            hand_back(&mut active, Submission::caller_gone, |_| {
                Err(CallerGone::error())
            });
            if start_new(model, &mut active) == 0 || active.len() >= max_rows {
                break;
            }
        }
        if active.is_empty() {
            continue;
        }
        step_all(model, &mut active, max_rows);
        hand_back(&mut active, |j| j.search.is_done(), Ok);
    }
}

/// Runs the encoder of every search that has just joined (a failure answers its request alone), so
/// they join this step; returns how many it started. Here, on the engine's thread, an encoder
/// runs between two steps: run from the request's thread, it would compete with the steps for
/// the model's threads, and the pool can leave it waiting behind step after step (a request
/// held for dozens of steps while the others decode).
fn start_new(model: &dyn LanguageModel, active: &mut Vec<Submission>) -> usize {
    let mut started = 0;
    let mut failed = Vec::new();
    for (i, sub) in active.iter_mut().enumerate() {
        if !sub.search.is_started() {
            started += 1;
            if let Err(e) = sub.search.start(model) {
                failed.push((i, e));
            }
        }
    }
    fail(active, failed);
    started
}

/// Answers the searches at the `failed` indices of `active` with their errors and drops them.
fn fail(active: &mut Vec<Submission>, mut failed: Vec<(usize, ToolkitError)>) {
    // highest index first, so that each removal leaves the other failed indices in place
    failed.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (i, e) in failed {
        let sub = active.swap_remove(i);
        let _ = sub.reply.send(Err(e));
    }
}

/// Takes the searches `pick` selects out of `active` and answers each with `answer(its search)`.
fn hand_back(
    active: &mut Vec<Submission>,
    pick: impl Fn(&Submission) -> bool,
    answer: impl Fn(Search) -> Result<Search, ToolkitError>,
) {
    let mut i = 0;
    while i < active.len() {
        if pick(&active[i]) {
            let sub = active.swap_remove(i);
            let _ = sub.reply.send(answer(sub.search));
        } else {
            i += 1;
        }
    }
}

/// One model step for as many active searches as fit in `max_rows` (in arrival order), then
/// each search consumes its logits. A failing step is retried search by search, so one bad
/// request fails alone.
fn step_all(model: &dyn LanguageModel, active: &mut Vec<Submission>, max_rows: usize) {
    let mut chosen = Vec::new();
    let mut rows = 0;
    for (i, sub) in active.iter_mut().enumerate() {
        let n = sub.search.pending().len();
        if !chosen.is_empty() && rows + n > max_rows {
            break;
        }
        rows += n;
        chosen.push(i);
    }
    tracing::debug!(rows, searches = chosen.len(), "generation step");
    let result = {
        let mut inputs = Vec::with_capacity(rows);
        let mut counts = Vec::with_capacity(chosen.len());
        for (i, sub) in active.iter_mut().enumerate() {
            if chosen.contains(&i) {
                let p = sub.search.pending();
                counts.push(p.len());
                inputs.extend(p);
            }
        }
        model.step(&mut inputs).map(|l| (l, counts))
    };
    let mut failed = Vec::new();
    match result {
        Ok((logits, counts)) => {
            let mut logits = logits.into_iter();
            for (&i, n) in chosen.iter().zip(counts) {
                let part: Vec<Vec<f32>> = logits.by_ref().take(n).collect();
                if let Err(e) = advance(&mut active[i], part) {
                    failed.push((i, e));
                }
            }
        }
        Err(_) if chosen.len() > 1 => {
            // find the culprit: run each alone
            for &i in &chosen {
                let sub = &mut active[i];
                let r = {
                    let mut p = sub.search.pending();
                    model.step(&mut p)
                };
                if let Err(e) = r.and_then(|l| advance(sub, l)) {
                    failed.push((i, e));
                }
            }
        }
        Err(e) => {
            if let Some(&i) = chosen.first() {
                failed.push((i, e));
            }
        }
    }
    fail(active, failed);
}

fn advance(sub: &mut Submission, logits: Vec<Vec<f32>>) -> Result<(), ToolkitError> {
    sub.search.advance(logits)?;
    if let (Some(sink), Some(t)) = (sub.sink.as_mut(), sub.search.last_token()) {
        if !sink(t) {
            sub.search.stop();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::config::GenerationConfig;
    use crate::generate::search::Prompt;
    use crate::generate::{KvCache, LayerKv, StepInput};
    use std::sync::Mutex;
    use std::time::Duration;

    /// Next-token logits from the last token and the position (a deterministic "model"), slow
    /// enough that concurrent searches overlap; records how many rows each step ran and the
    /// thread of each start, which takes `start_ms`. A prompt starting with 5 fails its start.
    #[derive(Default)]
    struct Slow {
        rows: Mutex<Vec<usize>>,
        starts: Mutex<Vec<String>>,
        start_ms: u64,
    }

    impl LanguageModel for Slow {
        fn vocab_size(&self) -> usize {
            7
        }
        fn max_positions(&self) -> Option<usize> {
            None
        }
        fn is_encoder_decoder(&self) -> bool {
            false
        }
        fn start(&self, ids: &[u32]) -> Result<KvCache, ToolkitError> {
            let thread = std::thread::current().name().unwrap_or("").to_string();
            self.starts.lock().unwrap().push(thread);
            std::thread::sleep(Duration::from_millis(self.start_ms));
            if ids.first() == Some(&5) {
                return Err(ToolkitError::Validation("prompt 5 fails".into()));
            }
            Ok(KvCache {
                layers: vec![LayerKv::default()],
                len: 0,
                cross: None,
            })
        }
        fn step(&self, batch: &mut [StepInput<'_>]) -> Result<Vec<Vec<f32>>, ToolkitError> {
            std::thread::sleep(Duration::from_millis(3));
            self.rows.lock().unwrap().push(batch.len());
            Ok(batch
                .iter_mut()
                .map(|s| {
                    s.cache.len += s.tokens.len();
                    let last = *s.tokens.last().unwrap() as usize;
                    let pos = s.cache.len;
                    (0..7)
                        .map(|v| ((v * 31 + last * 17 + pos * 7) % 11) as f32)
                        .collect()
                })
                .collect())
        }
    }

    fn search(model: &Slow, prompt: u32, beams: usize) -> Search {
        let mut cfg = GenerationConfig::default();
        cfg.update(
            serde_json::json!({"max_new_tokens": 12, "num_beams": beams, "eos_token_id": 6})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        Search::new(
            model,
            cfg,
            &Prompt {
                ids: vec![prompt, 1],
            },
            None,
        )
        .unwrap()
    }

    #[test]
    fn concurrent_searches_share_steps_and_match_their_results_alone() {
        // the four are sent at once; each start takes 500 ms on the engine thread, so the
        // others are queued long before the first one's steps end (a generous bound: no hook
        // tells when a search is queued)
        let model = Arc::new(Slow {
            start_ms: 500,
            ..Slow::default()
        });
        let alone: Vec<Vec<Vec<u32>>> = (0..4)
            .map(|i| {
                let mut s = search(&model, i, 1 + (i as usize % 2));
                crate::generate::search::run(model.as_ref(), &mut s, |_| true).unwrap();
                s.finish()
            })
            .collect();
        model.rows.lock().unwrap().clear();
        let sched = Scheduler::start(model.clone(), 64).unwrap();
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let sched = sched.clone();
                let s = search(&model, i, 1 + (i as usize % 2));
                std::thread::spawn(move || sched.run(s, None, CallerGone::new()).unwrap().finish())
            })
            .collect();
        let together: Vec<Vec<Vec<u32>>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(together, alone);
        let rows = model.rows.lock().unwrap();
        assert!(
            rows.iter().any(|&n| n > 2),
            "steps should mix searches: {rows:?}"
        );
    }

    #[test]
    fn encoders_run_on_the_engine_thread_and_a_failing_one_fails_alone() {
        let model = Arc::new(Slow::default());
        let alone: Vec<Vec<Vec<u32>>> = [0, 1]
            .into_iter()
            .map(|p| {
                let mut s = search(&model, p, 1);
                crate::generate::search::run(model.as_ref(), &mut s, |_| true).unwrap();
                s.finish()
            })
            .collect();
        model.starts.lock().unwrap().clear();
        let sched = Scheduler::start(model.clone(), 64).unwrap();
        let handles: Vec<_> = [0, 5, 1]
            .into_iter()
            .map(|p| {
                let sched = sched.clone();
                let s = search(&model, p, 1);
                std::thread::spawn(move || {
                    sched.run(s, None, CallerGone::new()).map(Search::finish)
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(
            matches!(&results[1], Err(ToolkitError::Validation(m)) if m == "prompt 5 fails"),
            "{:?}",
            results[1]
        );
        assert_eq!(results[0].as_ref().unwrap(), &alone[0]);
        assert_eq!(results[2].as_ref().unwrap(), &alone[1]);
        let starts = model.starts.lock().unwrap();
        assert_eq!(*starts, ["generation"; 3]);
    }

    #[test]
    fn searches_sent_while_an_encoder_runs_share_its_first_step() {
        // the second and third search arrive while the first one's start runs: sent 10 ms
        // apart into a 3 s start, a bound no loaded machine trips (no hook tells when a search
        // is queued)
        let model = Arc::new(Slow {
            start_ms: 3000,
            ..Slow::default()
        });
        let sched = Scheduler::start(model.clone(), 64).unwrap();
        let handles: Vec<_> = (0..3)
            .map(|p| {
                let sched = sched.clone();
                let s = search(&model, p, 1);
                std::thread::sleep(Duration::from_millis(10));
                std::thread::spawn(move || sched.run(s, None, CallerGone::new()).unwrap())
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let rows = model.rows.lock().unwrap();
        assert_eq!(rows.first(), Some(&3), "steps: {rows:?}");
    }

    #[test]
    fn a_sink_returning_false_stops_the_search() {
        let model = Arc::new(Slow::default());
        let sched = Scheduler::start(model.clone(), 64).unwrap();
        let mut seen = 0;
        let out = sched
            .run(
                search(&model, 0, 1),
                Some(Box::new(move |_| {
                    seen += 1;
                    seen < 3
                })),
                CallerGone::new(),
            )
            .unwrap()
            .finish();
        assert_eq!(out[0].len(), 2 + 3, "prompt and three tokens");
    }

    #[test]
    fn a_beam_search_whose_caller_timed_out_stops() {
        // 100 000 new tokens of 3 ms steps would take five minutes; the caller gives up after
        // 50 ms. Generous bounds, no timing luck: the search must stop within 120 s (it does
        // within a few steps; only a search that ignores its caller takes the five minutes)
        let model = Arc::new(Slow::default());
        let sched = Scheduler::start(model.clone(), 64).unwrap();
        let runtime = crate::runtime::Runtime::new(crate::runtime::RuntimeOptions {
            workers: 1,
            queue_capacity: 4,
            timeout: Duration::from_millis(50),
        })
        .unwrap();
        let mut cfg = GenerationConfig::default();
        cfg.update(
            serde_json::json!({"max_new_tokens": 100_000, "min_new_tokens": 100_000, "num_beams": 2})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        let s = Search::new(model.as_ref(), cfg, &Prompt { ids: vec![3, 1] }, None).unwrap();
        let (done_tx, done_rx) = mpsc::channel();
        let result = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(runtime.run(move |gone| {
                let r = sched.run(s, None, gone).map(|_| ());
                let _ = done_tx.send(r.is_err());
                r
            }));
        assert!(
            matches!(result, Err(ToolkitError::Timeout(_))),
            "{result:?}"
        );
        // the search is dropped at a step after the timeout, long before its 100 000 tokens
        let stopped = done_rx.recv_timeout(Duration::from_secs(120)).unwrap();
        assert!(stopped, "the search ran to its end");
        assert!(model.rows.lock().unwrap().len() < 40_000, "steps ran on");
    }
}
