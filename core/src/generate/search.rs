//! Decoding as transformers' `_sample` (greedy and sampling) and vectorised `_beam_search`
//! (beam search and beam sampling), for one input, as a state machine: [`Search::pending`] says
//! which sequences need the model, [`Search::advance`] consumes their logits. A driver (one request
//! alone, or the [`scheduler`](super::scheduler) mixing many) runs the model in between.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::config::{EarlyStopping, GenerationConfig};
use super::logits::{log_softmax, softmax, sorted_desc, Processors};
use super::{KvCache, LanguageModel, StepInput};
use crate::error::ToolkitError;

/// Decides whether a sequence ends with a stop string (needs the tokenizer; built by the pipeline).
pub type StopCheck = Box<dyn Fn(&[u32]) -> bool + Send + Sync>;

/// One sequence being decoded.
#[derive(Debug, Clone)]
struct Row {
    /// transformers' `input_ids` of the row: prompt (or decoder start) and generated tokens.
    ids: Vec<u32>,
    cache: KvCache,
    /// Tokens not yet run through the model.
    feed: Vec<u32>,
    /// What the processors will ban at the next step, when only the argmax of its logits is
    /// needed (see [`StepInput::argmax_only`]).
    banned: Option<Vec<u32>>,
}

#[derive(Debug)]
struct Hypothesis {
    ids: Vec<u32>,
    score: f32,
}

#[derive(Debug)]
enum Mode {
    /// Greedy or sampling: `num_return_sequences` independent rows.
    Sample { finished: Vec<bool> },
    /// Beam search (or beam sampling): running beams and the best finished hypotheses.
    Beam {
        scores: Vec<f32>,
        finished: Vec<Option<Hypothesis>>,
        first: bool,
    },
}

/// The decoding of one input.
pub struct Search {
    cfg: GenerationConfig,
    processors: Processors,
    rows: Vec<Row>,
    mode: Mode,
    prompt_len: usize,
    vocab: usize,
    rng: StdRng,
    stop: Option<StopCheck>,
    done: bool,
    /// Tokens appended by the last step to row 0 (greedy/sampling with one row), for streaming.
    last_new: Option<u32>,
    /// What [`LanguageModel::start`] still has to run on (see [`Search::start`]); `None` once
    /// it has.
    unstarted: Option<Vec<u32>>,
    /// Greedy search whose processors only ban tokens, on a model that can skip the logits
    /// that cannot be the argmax: steps ask for the argmax only.
    argmax_only: bool,
}

impl std::fmt::Debug for Search {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Search")
            .field("rows", &self.rows.len())
            .field("prompt_len", &self.prompt_len)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// What one input asks of the model.
#[derive(Debug, Clone)]
pub struct Prompt {
    /// Prompt ids (decoder-only) or encoder input ids (encoder-decoder).
    pub ids: Vec<u32>,
}

impl Search {
    /// Prepares the decoding of `prompt` with `cfg` (its lengths not yet resolved): resolves
    /// lengths and builds the processors. The model runs nothing yet: [`start`](Self::start)
    /// runs its encoder (encoder-decoder models), on the thread that drives the steps.
    pub fn new(
        model: &dyn LanguageModel,
        mut cfg: GenerationConfig,
        prompt: &Prompt,
        stop: Option<StopCheck>,
    ) -> Result<Self, ToolkitError> {
        let (start_ids, unstarted) = if model.is_encoder_decoder() {
            let start = cfg
                .decoder_start_token_id
                .or(cfg.bos_token_id)
                .ok_or_else(|| {
                    ToolkitError::InvalidParameters(
                        "`decoder_start_token_id` or `bos_token_id` has to be defined for encoder-decoder generation.".into(),
                    )
                })?;
            (vec![start], prompt.ids.clone())
        } else if prompt.ids.is_empty() {
            let bos = cfg.bos_token_id.ok_or_else(|| {
                ToolkitError::InvalidParameters(
                    "`bos_token_id` has to be defined when no `input_ids` are provided.".into(),
                )
            })?;
            (vec![bos], Vec::new())
        } else {
            (prompt.ids.clone(), prompt.ids.clone())
        };
        let prompt_len = start_ids.len();
        cfg.resolve_lengths(prompt_len, model.max_positions())?;
        if cfg.pad_token_id.is_none() {
            cfg.pad_token_id = cfg.eos().first().copied();
        }
        let encoder_ids = model.is_encoder_decoder().then_some(&prompt.ids[..]);
        let processors = Processors::new(&cfg, prompt_len, encoder_ids);
        let row = Row {
            ids: start_ids.clone(),
            cache: KvCache::default(),
            feed: start_ids,
            banned: None,
        };
        let rng = match cfg.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        let (rows, mode) = if cfg.num_beams > 1 {
            // the prompt runs once; the other beams copy its cache after the first step
            (
                vec![row],
                Mode::Beam {
                    scores: Vec::new(),
                    finished: (0..cfg.num_beams).map(|_| None).collect(),
                    first: true,
                },
            )
        } else {
            (
                vec![row],
                Mode::Sample {
                    finished: vec![false; cfg.num_return_sequences],
                },
            )
        };
        // (`only_ban` excludes sampling: its warpers change values)
        let argmax_only = model.screens_argmax() && cfg.num_beams <= 1 && processors.only_ban();
        Ok(Self {
            argmax_only,
            processors,
            rows,
            mode,
            prompt_len,
            vocab: model.vocab_size(),
            rng,
            stop,
            done: false,
            last_new: None,
            unstarted: Some(unstarted),
            cfg,
        })
    }

    /// Runs the model's [`start`](LanguageModel::start) (the encoder of an encoder-decoder
    /// model) once; [`pending`](Self::pending) has nothing to run before it. The
    /// [`scheduler`](super::scheduler) calls it on its own thread between steps, so encoders
    /// never compete with the steps of running searches for the model's threads.
    pub fn start(&mut self, model: &dyn LanguageModel) -> Result<(), ToolkitError> {
        if let Some(ids) = self.unstarted.take() {
            // one row until the first step (beams copy it after that)
            if let Some(row) = self.rows.first_mut() {
                row.cache = model.start(&ids)?;
            }
        }
        Ok(())
    }

    /// Whether [`start`](Self::start) has run.
    pub fn is_started(&self) -> bool {
        self.unstarted.is_none()
    }

    /// Ends the search now (the client is gone); [`finish`](Self::finish) returns what there is.
    pub fn stop(&mut self) {
        self.done = true;
    }

    /// Whether decoding is over.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The resolved configuration.
    pub fn config(&self) -> &GenerationConfig {
        &self.cfg
    }

    /// Length of the prompt as transformers counts it (the decoder start for encoder-decoders).
    pub fn prompt_len(&self) -> usize {
        self.prompt_len
    }

    /// The token the last step appended to the single sequence of a greedy or sampling search.
    pub fn last_token(&self) -> Option<u32> {
        self.last_new
    }

    /// The sequences that need a model step, with their new tokens (none before
    /// [`start`](Self::start)).
    pub fn pending(&mut self) -> Vec<StepInput<'_>> {
        if self.done || !self.is_started() {
            return Vec::new();
        }
        let finished: Option<&Vec<bool>> = match &self.mode {
            Mode::Sample { finished } => Some(finished),
            Mode::Beam { .. } => None,
        };
        let (argmax_only, vocab, processors) = (self.argmax_only, self.vocab, &self.processors);
        self.rows
            .iter_mut()
            .enumerate()
            .filter(|(i, r)| {
                !r.feed.is_empty() && finished.is_none_or(|f| !f.get(*i).copied().unwrap_or(false))
            })
            .map(|(i, r)| {
                if argmax_only {
                    // the tokens the processors will set to -inf: what they do to zeros (they
                    // only ban, so that does not depend on the logits)
                    let mut zeros = vec![0f32; vocab];
                    processors.apply(&mut zeros, &r.ids, i);
                    r.banned = Some(
                        (0u32..)
                            .zip(&zeros)
                            .filter(|(_, z)| **z == f32::NEG_INFINITY)
                            .map(|(t, _)| t)
                            .collect(),
                    );
                }
                StepInput {
                    cache: &mut r.cache,
                    tokens: &r.feed,
                    argmax_only: r.banned.as_deref(),
                }
            })
            .collect()
    }

    /// Consumes the logits of the sequences [`pending`](Self::pending) returned, in that order.
    pub fn advance(&mut self, logits: Vec<Vec<f32>>) -> Result<(), ToolkitError> {
        if logits.iter().any(|l| l.len() != self.vocab) {
            return Err(ToolkitError::Internal("logits of a wrong width".into()));
        }
        for r in &mut self.rows {
            r.feed.clear();
        }
        self.last_new = None;
        match self.mode {
            Mode::Sample { .. } => self.advance_sample(logits),
            Mode::Beam { .. } => self.advance_beam(logits),
        }
    }

    fn advance_sample(&mut self, logits: Vec<Vec<f32>>) -> Result<(), ToolkitError> {
        let Mode::Sample { finished } = &mut self.mode else {
            return Ok(());
        };
        // the prompt ran once: copy it into the other rows of num_return_sequences
        if self.rows.len() < finished.len() {
            let first = self.rows[0].clone();
            while self.rows.len() < finished.len() {
                self.rows.push(first.clone());
            }
        }
        let first_logits = logits.first().cloned();
        let mut logits = logits.into_iter();
        let has_eos = !self.cfg.eos().is_empty();
        let pad = self.cfg.pad_or_eos().unwrap_or(0);
        let n = finished.len();
        let mut all_done = true;
        for (i, row) in self.rows.iter_mut().enumerate().take(n) {
            if finished[i] {
                // transformers keeps decoding finished rows and writes pad into them
                if has_eos {
                    row.ids.push(pad);
                }
                continue;
            }
            let mut scores = match logits.next() {
                Some(l) => l,
                // the copies of the prompt row share its logits
                None => first_logits
                    .clone()
                    .ok_or_else(|| ToolkitError::Internal("missing logits".into()))?,
            };
            self.processors.apply(&mut scores, &row.ids, i);
            let next = if self.processors.samples() {
                sample(&scores, &mut self.rng)
            } else {
                argmax(&scores)
            };
            row.ids.push(next);
            row.feed.push(next);
            if i == 0 {
                self.last_new = Some(next);
            }
            if hits_stop(&self.cfg, self.stop.as_ref(), &row.ids) {
                finished[i] = true;
            } else {
                all_done = false;
            }
        }
        // sequences stop at max_length together (rows already finished keep their pads)
        let Mode::Sample { finished } = &self.mode else {
            return Ok(());
        };
        if all_done || finished.iter().all(|&f| f) {
            self.done = true;
        }
        Ok(())
    }

    fn advance_beam(&mut self, logits: Vec<Vec<f32>>) -> Result<(), ToolkitError> {
        let k = self.cfg.num_beams;
        let v = self.vocab;
        let eos_n = self.cfg.eos().len();
        let keep = (eos_n + 1).max(2) * k;
        let cur_len = self.rows[0].ids.len();
        let Mode::Beam {
            scores: running,
            finished,
            first,
        } = &mut self.mode
        else {
            return Ok(());
        };
        // beam 0 starts at 0, the others at -1e9 (they share beam 0's prompt and logits)
        let logits: Vec<Vec<f32>> = if *first {
            *first = false;
            *running = (0..k).map(|i| if i == 0 { 0.0 } else { -1.0e9 }).collect();
            let l = logits
                .into_iter()
                .next()
                .ok_or_else(|| ToolkitError::Internal("missing logits".into()))?;
            let row = self.rows[0].clone();
            self.rows = vec![row; k];
            vec![l; k]
        } else {
            logits
        };
        if logits.len() != k {
            return Err(ToolkitError::Internal(
                "one logits row per beam expected".into(),
            ));
        }
        // log-probs, processors, plus the running scores
        let mut acc = Vec::with_capacity(k * v);
        for (b, mut l) in logits.into_iter().enumerate() {
            log_softmax(&mut l);
            self.processors.apply(&mut l, &self.rows[b].ids, b);
            acc.extend(l.iter().map(|x| x + running[b]));
        }
        // candidates: top `keep` of the k·v continuations (sampled without replacement when sampling)
        let cands: Vec<usize> = if self.processors.samples() {
            sample_without_replacement(&acc, keep, &mut self.rng)
        } else {
            top_indices(&acc, keep)
        };
        let cand_scores: Vec<f32> = cands.iter().map(|&c| acc[c]).collect();
        let cand_seqs: Vec<(usize, u32)> = cands.iter().map(|&c| (c / v, (c % v) as u32)).collect();
        let hits: Vec<bool> = cand_seqs
            .iter()
            .map(|&(b, t)| {
                let mut ids = self.rows[b].ids.clone();
                ids.push(t);
                hits_stop(&self.cfg, self.stop.as_ref(), &ids)
            })
            .collect();
        // next running beams: the best k candidates that did not finish
        let running_scores: Vec<f32> = cand_scores
            .iter()
            .zip(&hits)
            .map(|(&s, &h)| if h { s - 1.0e9 } else { s })
            .collect();
        let next: Vec<usize> = top_indices(&running_scores, k);
        // finished: candidates ranked < k that hit a stop, length-normalised
        let gen_len = (cur_len + 1 - self.prompt_len) as f64;
        let norm = gen_len.powf(self.cfg.length_penalty) as f32;
        let all_finished = finished.iter().all(Option::is_some);
        let frozen = all_finished && self.cfg.early_stopping == EarlyStopping::True;
        let mut merged: Vec<(f32, Option<Vec<u32>>)> = finished
            .iter_mut()
            .map(|h| match h.take() {
                Some(h) => (h.score, Some(h.ids)),
                None => (-1.0e9, None),
            })
            .collect();
        for (r, (&(b, t), &s)) in cand_seqs.iter().zip(&cand_scores).enumerate() {
            let just = hits[r] && r < k;
            let mut score = s / norm;
            if frozen {
                score -= 1.0e9;
            }
            if !just {
                score -= 1.0e9;
            }
            let ids = just.then(|| {
                let mut ids = self.rows[b].ids.clone();
                ids.push(t);
                ids
            });
            merged.push((score, ids));
        }
        let order = top_indices(&merged.iter().map(|m| m.0).collect::<Vec<_>>(), k);
        let mut merged: Vec<Option<(f32, Option<Vec<u32>>)>> =
            merged.into_iter().map(Some).collect();
        for (slot, &i) in finished.iter_mut().zip(&order) {
            *slot = merged[i]
                .take()
                .and_then(|(score, ids)| ids.map(|ids| Hypothesis { ids, score }));
        }
        // continue the chosen beams: a parent's cache moves to its first child, copies to others
        let mut caches: Vec<Option<KvCache>> = self
            .rows
            .iter_mut()
            .map(|r| Some(std::mem::take(&mut r.cache)))
            .collect();
        let mut uses = vec![0usize; k];
        for &c in &next {
            uses[cand_seqs[c].0] += 1;
        }
        let mut new_rows = Vec::with_capacity(k);
        let mut new_running = Vec::with_capacity(k);
        for &c in &next {
            let (b, t) = cand_seqs[c];
            uses[b] -= 1;
            let cache = if uses[b] == 0 {
                caches[b].take().unwrap_or_default()
            } else {
                caches[b].clone().unwrap_or_default()
            };
            let mut ids = self.rows[b].ids.clone();
            ids.push(t);
            new_rows.push(Row {
                ids,
                cache,
                feed: vec![t],
                banned: None,
            });
            new_running.push(running_scores[c]);
        }
        self.rows = new_rows;
        *running = new_running;
        // keep going? (transformers' _beam_search_has_unfinished_sequences, one input)
        let cur_len = cur_len + 1;
        let best_len =
            if self.cfg.early_stopping == EarlyStopping::Never && self.cfg.length_penalty > 0.0 {
                self.cfg.max_length - self.prompt_len
            } else {
                cur_len - self.prompt_len
            };
        let best_possible = running[0] / (best_len as f64).powf(self.cfg.length_penalty) as f32;
        let worst = if finished.iter().all(Option::is_some) {
            finished
                .iter()
                .flatten()
                .map(|h| h.score)
                .fold(f32::INFINITY, f32::min)
        } else {
            -1.0e9
        };
        let improvement_possible = best_possible > worst;
        let open = !(finished.iter().all(Option::is_some)
            && self.cfg.early_stopping == EarlyStopping::True);
        let valid = !hits.iter().all(|&h| h);
        if !(improvement_possible && open && valid) {
            self.done = true;
        }
        Ok(())
    }

    /// The generated sequences (full `input_ids` rows, as transformers returns them, padded to a
    /// common width), best first for beam search.
    pub fn finish(self) -> Vec<Vec<u32>> {
        match self.mode {
            Mode::Sample { .. } => {
                let width = self.rows.iter().map(|r| r.ids.len()).max().unwrap_or(0);
                let pad = self.cfg.pad_or_eos().unwrap_or(0);
                self.rows
                    .into_iter()
                    .map(|mut r| {
                        r.ids.resize(width, pad);
                        r.ids
                    })
                    .collect()
            }
            Mode::Beam { finished, .. } => {
                let n = self.cfg.num_return_sequences;
                let mut out: Vec<Vec<u32>> = finished
                    .into_iter()
                    .take(n)
                    .map(|h| h.map(|h| h.ids).unwrap_or_default())
                    .collect();
                // transformers pads beam outputs with `pad_token_id or eos`: a pad id of 0 is
                // falsy there, so EOS is used
                let fill = match self.cfg.pad_token_id {
                    Some(p) if p != 0 => p,
                    _ => self.cfg.eos().first().copied().unwrap_or(0),
                };
                let width = out.iter().map(Vec::len).max().unwrap_or(0);
                for o in &mut out {
                    o.resize(width, fill);
                }
                out
            }
        }
    }
}

/// Runs one search to the end on `model`, calling `on_token` with each new token of a single
/// greedy/sampled sequence (for streaming); `on_token` returning `false` stops early.
pub fn run(
    model: &dyn LanguageModel,
    search: &mut Search,
    mut on_token: impl FnMut(u32) -> bool,
) -> Result<(), ToolkitError> {
    search.start(model)?;
    while !search.is_done() {
        let logits = {
            let mut pending = search.pending();
            if pending.is_empty() {
                return Err(ToolkitError::Internal(
                    "a search with nothing to run".into(),
                ));
            }
            model.step(&mut pending)?
        };
        search.advance(logits)?;
        if let Some(t) = search.last_token() {
            if !on_token(t) {
                break;
            }
        }
    }
    Ok(())
}

/// Whether a sequence is done: max length, an EOS last, or a stop string.
fn hits_stop(cfg: &GenerationConfig, stop: Option<&StopCheck>, ids: &[u32]) -> bool {
    ids.len() >= cfg.max_length
        || ids.last().is_some_and(|t| cfg.eos().contains(t))
        || stop.is_some_and(|s| s(ids))
}

pub(crate) use crate::kernels::argmax;

/// The `n` largest entries, descending (ties by index).
fn top_indices(x: &[f32], n: usize) -> Vec<usize> {
    let n = n.min(x.len());
    if n == 0 {
        return Vec::new();
    }
    let mut idx: Vec<usize> = (0..x.len()).collect();
    let cmp = |a: &usize, b: &usize| x[*b].total_cmp(&x[*a]).then(a.cmp(b));
    if n < idx.len() {
        idx.select_nth_unstable_by(n - 1, cmp);
        idx.truncate(n);
    }
    idx.sort_by(cmp);
    idx
}

/// One draw from softmax(`scores`).
fn sample(scores: &[f32], rng: &mut StdRng) -> u32 {
    let probs = softmax(scores);
    draw(&probs, rng).unwrap_or_else(|| argmax(scores) as usize) as u32
}

fn draw(probs: &[f32], rng: &mut StdRng) -> Option<usize> {
    let total: f32 = probs.iter().sum();
    if total.is_nan() || total <= 0.0 {
        return None;
    }
    let mut u = rng.random::<f32>() * total;
    let mut last = None;
    for (i, &p) in probs.iter().enumerate() {
        if p > 0.0 {
            last = Some(i);
            if u < p {
                return Some(i);
            }
            u -= p;
        }
    }
    last
}

/// `n` draws without replacement from softmax(`scores`) (torch.multinomial).
fn sample_without_replacement(scores: &[f32], n: usize, rng: &mut StdRng) -> Vec<usize> {
    let mut probs = softmax(scores);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n.min(scores.len()) {
        match draw(&probs, rng) {
            Some(i) => {
                out.push(i);
                probs[i] = 0.0;
            }
            None => break,
        }
    }
    // not enough positive probabilities: fill with the best remaining, as zeros come last
    if out.len() < n {
        for i in sorted_desc(scores) {
            if out.len() >= n {
                break;
            }
            if !out.contains(&i) {
                out.push(i);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{LayerKv, StepInput};
    use serde_json::json;

    /// A bigram "model": the next-token logits depend on the last token only, from a table.
    struct Bigram {
        table: Vec<Vec<f32>>,
    }

    impl LanguageModel for Bigram {
        fn vocab_size(&self) -> usize {
            self.table.len()
        }
        fn max_positions(&self) -> Option<usize> {
            None
        }
        fn is_encoder_decoder(&self) -> bool {
            false
        }
        fn start(&self, _ids: &[u32]) -> Result<KvCache, ToolkitError> {
            Ok(KvCache {
                layers: vec![LayerKv::default()],
                len: 0,
                cross: None,
            })
        }
        fn step(&self, batch: &mut [StepInput<'_>]) -> Result<Vec<Vec<f32>>, ToolkitError> {
            Ok(batch
                .iter_mut()
                .map(|s| {
                    s.cache.len += s.tokens.len();
                    self.table[*s.tokens.last().unwrap() as usize].clone()
                })
                .collect())
        }
    }

    fn cfg(v: serde_json::Value) -> GenerationConfig {
        let mut c = GenerationConfig::default();
        c.update(v.as_object().unwrap()).unwrap();
        c
    }

    fn model() -> Bigram {
        // 0 = eos; 1 -> 2 (strong) or 3; 2 -> 3; 3 -> 0 (eos) or 1
        let l = |p: [f32; 4]| p.iter().map(|x| x.ln()).collect::<Vec<f32>>();
        Bigram {
            table: vec![
                l([0.25, 0.25, 0.25, 0.25]),
                l([0.05, 0.05, 0.5, 0.4]),
                l([0.1, 0.1, 0.1, 0.7]),
                l([0.6, 0.3, 0.05, 0.05]),
            ],
        }
    }

    fn generate(c: GenerationConfig, prompt: &[u32]) -> Vec<Vec<u32>> {
        let m = model();
        let mut s = Search::new(
            &m,
            c,
            &Prompt {
                ids: prompt.to_vec(),
            },
            None,
        )
        .unwrap();
        run(&m, &mut s, |_| true).unwrap();
        s.finish()
    }

    #[test]
    fn greedy_follows_the_argmax_until_eos() {
        let out = generate(cfg(json!({"eos_token_id": 0, "max_new_tokens": 10})), &[1]);
        assert_eq!(out, [vec![1, 2, 3, 0]]);
    }

    #[test]
    fn max_new_tokens_bounds_greedy() {
        let out = generate(cfg(json!({"eos_token_id": 0, "max_new_tokens": 2})), &[1]);
        assert_eq!(out, [vec![1, 2, 3]]);
    }

    #[test]
    fn beam_search_prefers_the_likelier_whole_sequence() {
        // greedy takes 1->2->3->0 (0.5·0.7·0.6 = 0.21); beams also see 1->3->0 (0.4·0.6 = 0.24),
        // shorter and likelier: with length_penalty 0 (raw sums) it wins
        let out = generate(
            cfg(
                json!({"eos_token_id": 0, "max_new_tokens": 10, "num_beams": 2, "num_return_sequences": 2, "length_penalty": 0.0}),
            ),
            &[1],
        );
        assert_eq!(out[0], [1, 3, 0, 0], "padded with eos (pad id 0 is falsy)");
        assert_eq!(out[1], [1, 2, 3, 0]);
    }

    #[test]
    fn seeded_sampling_is_reproducible() {
        let c = cfg(
            json!({"eos_token_id": 0, "max_new_tokens": 8, "do_sample": true, "seed": 7, "num_return_sequences": 3}),
        );
        let a = generate(c.clone(), &[1]);
        let b = generate(c, &[1]);
        assert_eq!(a, b);
        assert_eq!(a.len(), 3);
    }
}
