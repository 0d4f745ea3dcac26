//! Logits processors and sampling warpers, in the order and with the arithmetic of transformers'
//! `_get_logits_processor` (`generation/logits_process.py`, 4.51). Each works on one row of f32
//! scores and the row's ids so far (the prompt and generated tokens for decoder-only models, the
//! decoder start and generated tokens for encoder-decoders).

use std::collections::HashSet;

use super::config::GenerationConfig;

/// The processors of one generation, built once from its resolved configuration.
#[derive(Debug, Clone)]
pub struct Processors {
    repetition_penalty: Option<f32>,
    encoder_repetition: Option<(f32, Vec<u32>)>,
    no_repeat_ngram: usize,
    encoder_no_repeat: Option<(usize, Vec<u32>)>,
    bad_words: Vec<Vec<u32>>,
    eos: Vec<u32>,
    min_length: i64,
    min_new_tokens: Option<i64>,
    prompt_len: usize,
    forced_bos: Option<u32>,
    forced_eos: Option<Vec<u32>>,
    max_length: usize,
    remove_invalid: bool,
    decay: Option<(usize, f32)>,
    suppress: Vec<u32>,
    begin_suppress: Vec<u32>,
    begin_index: usize,
    warpers: Option<Warpers>,
    renormalize: bool,
}

/// Sampling warpers (only when `do_sample`).
#[derive(Debug, Clone)]
struct Warpers {
    temperature: Option<f32>,
    top_k: Option<usize>,
    top_p: Option<f32>,
    min_p: Option<f32>,
    typical_p: Option<f32>,
    epsilon: Option<f32>,
    eta: Option<f32>,
    min_keep: usize,
}

impl Processors {
    /// Builds the processors of `cfg` (lengths already resolved) for a prompt of `prompt_len`
    /// ids (the decoder start for encoder-decoders); `encoder_ids` feed the `encoder_*` ones.
    pub fn new(cfg: &GenerationConfig, prompt_len: usize, encoder_ids: Option<&[u32]>) -> Self {
        let eos = cfg.eos().to_vec();
        let min_keep = if cfg.num_beams > 1 { eos.len() + 1 } else { 1 };
        let warpers = cfg.do_sample.then(|| Warpers {
            temperature: (cfg.temperature != 1.0).then_some(cfg.temperature as f32),
            top_k: (cfg.top_k != 0).then_some(cfg.top_k.max(min_keep)),
            top_p: (cfg.top_p < 1.0).then_some(cfg.top_p as f32),
            min_p: cfg.min_p.map(|p| p as f32),
            typical_p: (cfg.typical_p < 1.0).then_some(cfg.typical_p as f32),
            epsilon: (cfg.epsilon_cutoff > 0.0 && cfg.epsilon_cutoff < 1.0)
                .then_some(cfg.epsilon_cutoff as f32),
            eta: (cfg.eta_cutoff > 0.0 && cfg.eta_cutoff < 1.0).then_some(cfg.eta_cutoff as f32),
            min_keep,
        });
        let bad_words = cfg
            .bad_words_ids
            .iter()
            .flatten()
            .filter(|seq| !(seq.len() == 1 && eos.contains(&seq[0])))
            .cloned()
            .collect();
        Self {
            repetition_penalty: (cfg.repetition_penalty != 1.0)
                .then_some(cfg.repetition_penalty as f32),
            encoder_repetition: match (cfg.encoder_repetition_penalty != 1.0, encoder_ids) {
                (true, Some(ids)) => Some((cfg.encoder_repetition_penalty as f32, ids.to_vec())),
                _ => None,
            },
            no_repeat_ngram: cfg.no_repeat_ngram_size,
            encoder_no_repeat: match (cfg.encoder_no_repeat_ngram_size, encoder_ids) {
                (n, Some(ids)) if n > 0 => Some((n, ids.to_vec())),
                _ => None,
            },
            bad_words,
            min_length: cfg.min_length,
            min_new_tokens: cfg.min_new_tokens.filter(|&n| n > 0),
            prompt_len,
            forced_bos: cfg.forced_bos_token_id,
            forced_eos: cfg.forced_eos_token_id.clone(),
            max_length: cfg.max_length,
            remove_invalid: cfg.remove_invalid_values,
            decay: cfg
                .exponential_decay_length_penalty
                .map(|(s, f)| (s.saturating_add(prompt_len), f as f32)),
            suppress: cfg.suppress_tokens.clone().unwrap_or_default(),
            begin_suppress: cfg.begin_suppress_tokens.clone().unwrap_or_default(),
            begin_index: if prompt_len <= 1 && cfg.forced_bos_token_id.is_some() {
                prompt_len + 1
            } else {
                prompt_len
            },
            warpers,
            renormalize: cfg.renormalize_logits,
            eos,
        }
    }

    /// Whether every processor only sets tokens to −∞ (or forces some), independently of the
    /// logits' values: then the argmax of the processed logits only needs the logits that can
    /// be the largest among the tokens not banned.
    pub fn only_ban(&self) -> bool {
        self.repetition_penalty.is_none()
            && self.encoder_repetition.is_none()
            && !self.remove_invalid
            && self.decay.is_none()
            && self.warpers.is_none()
            && !self.renormalize
    }

    /// Whether sampling warpers apply.
    pub fn samples(&self) -> bool {
        self.warpers.is_some()
    }

    /// Applies every processor (and the warpers when sampling) to row `row` of the input's rows
    /// (beams, or the copies of `num_return_sequences`).
    pub fn apply(&self, scores: &mut [f32], ids: &[u32], row: usize) {
        let cur_len = ids.len();
        let v = scores.len();
        if let Some(p) = self.repetition_penalty {
            penalize(scores, ids, p);
        }
        if let Some((p, enc)) = &self.encoder_repetition {
            // EncoderRepetitionPenaltyLogitsProcessor: penalty 1/p, the other way round. It
            // gathers with the encoder ids of the unexpanded batch, so in transformers only the
            // first row of an input (beam 0) is ever penalised: kept for parity.
            if row == 0 {
                penalize(scores, enc, 1.0 / p);
            }
        }
        if self.no_repeat_ngram > 0 {
            for t in banned_ngram_tokens(ids, ids, self.no_repeat_ngram) {
                set(scores, t, f32::NEG_INFINITY);
            }
        }
        if let Some((n, enc)) = &self.encoder_no_repeat {
            // the ngrams of the encoder input, keyed by the last n-1 decoder tokens
            if cur_len + 1 >= *n {
                let key = &ids[cur_len + 1 - n..];
                for w in enc.windows(*n) {
                    if &w[..n - 1] == key {
                        set(scores, w[n - 1], f32::NEG_INFINITY);
                    }
                }
            }
        }
        for seq in &self.bad_words {
            let (prefix, last) = seq.split_at(seq.len() - 1);
            if prefix.len() < cur_len && ids.ends_with(prefix) {
                set(scores, last[0], f32::NEG_INFINITY);
            }
        }
        if (cur_len as i64) < self.min_length {
            for &e in &self.eos {
                set(scores, e, f32::NEG_INFINITY);
            }
        }
        if let Some(n) = self.min_new_tokens {
            if (cur_len as i64 - self.prompt_len as i64) < n {
                for &e in &self.eos {
                    set(scores, e, f32::NEG_INFINITY);
                }
            }
        }
        if let Some(bos) = self.forced_bos {
            if cur_len == 1 {
                force(scores, &[bos]);
            }
        }
        if let Some(eos) = &self.forced_eos {
            if cur_len + 1 == self.max_length {
                force(scores, eos);
            }
        }
        if self.remove_invalid {
            for s in scores.iter_mut() {
                if s.is_nan() {
                    *s = 0.0;
                } else if *s == f32::INFINITY {
                    *s = f32::MAX;
                } else if *s == f32::NEG_INFINITY {
                    *s = f32::MIN;
                }
            }
        }
        if let Some((start, factor)) = self.decay {
            if cur_len > start {
                let k = factor.powi((cur_len - start) as i32) - 1.0;
                for &e in &self.eos {
                    if let Some(s) = scores.get_mut(e as usize) {
                        *s += s.abs() * k;
                    }
                }
            }
        }
        for &t in &self.suppress {
            set(scores, t, f32::NEG_INFINITY);
        }
        if cur_len == self.begin_index {
            for &t in &self.begin_suppress {
                set(scores, t, f32::NEG_INFINITY);
            }
        }
        if let Some(w) = &self.warpers {
            w.apply(scores);
        }
        if self.renormalize {
            log_softmax(scores);
        }
        debug_assert_eq!(scores.len(), v);
    }
}

fn set(scores: &mut [f32], t: u32, value: f32) {
    if let Some(s) = scores.get_mut(t as usize) {
        *s = value;
    }
}

/// Everything -inf except `keep` (0).
fn force(scores: &mut [f32], keep: &[u32]) {
    scores.fill(f32::NEG_INFINITY);
    for &t in keep {
        set(scores, t, 0.0);
    }
}

/// `RepetitionPenaltyLogitsProcessor`: each id present once, `s < 0 ? s·p : s/p`.
fn penalize(scores: &mut [f32], ids: &[u32], p: f32) {
    let seen: HashSet<u32> = ids.iter().copied().collect();
    for t in seen {
        if let Some(s) = scores.get_mut(t as usize) {
            *s = if *s < 0.0 { *s * p } else { *s / p };
        }
    }
}

/// Tokens that would repeat an n-gram of `source` after the last `n - 1` ids of `ids`.
fn banned_ngram_tokens(ids: &[u32], source: &[u32], n: usize) -> Vec<u32> {
    let cur_len = ids.len();
    if cur_len + 1 < n {
        return Vec::new();
    }
    let key = &ids[cur_len + 1 - n..];
    source
        .windows(n)
        .filter(|w| &w[..n - 1] == key)
        .map(|w| w[n - 1])
        .collect()
}

/// `log_softmax` in place (f32, max-shifted as torch).
pub fn log_softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return;
    }
    let sum: f32 = x.iter().map(|v| (v - max).exp()).sum();
    let lse = max + sum.ln();
    for v in x.iter_mut() {
        *v -= lse;
    }
}

/// Softmax into a new vector.
pub fn softmax(x: &[f32]) -> Vec<f32> {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut out: Vec<f32> = x.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = out.iter().sum();
    for v in &mut out {
        *v /= sum;
    }
    out
}

/// Indices sorted by score, descending; equal scores by index.
pub fn sorted_desc(x: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[b].total_cmp(&x[a]).then(a.cmp(&b)));
    idx
}

impl Warpers {
    fn apply(&self, s: &mut [f32]) {
        let v = s.len();
        let keep = self.min_keep;
        if let Some(t) = self.temperature {
            for x in s.iter_mut() {
                *x /= t;
            }
        }
        if let Some(k) = self.top_k {
            // remove scores below the k-th largest (ties with it survive)
            let k = k.min(v);
            if k > 0 {
                let mut sorted: Vec<f32> = s.to_vec();
                sorted.sort_by(|a, b| b.total_cmp(a));
                let kth = sorted[k - 1];
                for x in s.iter_mut() {
                    if *x < kth {
                        *x = f32::NEG_INFINITY;
                    }
                }
            }
        }
        if let Some(p) = self.top_p {
            // ascending sort, cumulative probability, drop the low tail (keep the top `keep`)
            let mut idx = sorted_desc(s);
            idx.reverse();
            let sorted: Vec<f32> = idx.iter().map(|&i| s[i]).collect();
            let probs = softmax(&sorted);
            let mut cum = 0.0f32;
            let mut remove = vec![false; v];
            for (j, pr) in probs.iter().enumerate() {
                cum += pr;
                remove[j] = cum <= 1.0 - p && j < v.saturating_sub(keep);
            }
            for (j, &i) in idx.iter().enumerate() {
                if remove[j] {
                    s[i] = f32::NEG_INFINITY;
                }
            }
        }
        if let Some(mp) = self.min_p {
            let probs = softmax(s);
            let top = probs.iter().copied().fold(0.0f32, f32::max);
            let protect: HashSet<usize> = sorted_desc(s).into_iter().take(keep).collect();
            for (i, x) in s.iter_mut().enumerate() {
                if probs[i] < mp * top && !protect.contains(&i) {
                    *x = f32::NEG_INFINITY;
                }
            }
        }
        if let Some(mass) = self.typical_p {
            let mut lp = s.to_vec();
            log_softmax(&mut lp);
            let ent: f32 = -lp
                .iter()
                .filter(|x| x.is_finite())
                .map(|x| x * x.exp())
                .sum::<f32>();
            let shifted: Vec<f32> = lp.iter().map(|x| (-x - ent).abs()).collect();
            let mut idx: Vec<usize> = (0..v).collect();
            idx.sort_by(|&a, &b| shifted[a].total_cmp(&shifted[b]).then(a.cmp(&b)));
            let sorted_logits: Vec<f32> = idx.iter().map(|&i| s[i]).collect();
            let probs = softmax(&sorted_logits);
            let mut cum = 0.0f32;
            let mut count = 0usize;
            for pr in &probs {
                cum += pr;
                if cum < mass {
                    count += 1;
                }
            }
            let last = count.min(v - 1);
            let limit = shifted[idx[last]];
            for (j, &i) in idx.iter().enumerate() {
                if j >= keep && shifted[i] > limit {
                    s[i] = f32::NEG_INFINITY;
                }
            }
        }
        if let Some(eps) = self.epsilon {
            let probs = softmax(s);
            let kth = kth_largest(s, keep);
            for (i, x) in s.iter_mut().enumerate() {
                if probs[i] < eps && *x < kth {
                    *x = f32::NEG_INFINITY;
                }
            }
        }
        if let Some(e) = self.eta {
            let probs = softmax(s);
            let h: f32 = -probs
                .iter()
                .filter(|&&p| p > 0.0)
                .map(|p| p * p.ln())
                .sum::<f32>();
            let eta = e.min(e.sqrt() * (-h).exp());
            let kth = kth_largest(s, keep);
            for (i, x) in s.iter_mut().enumerate() {
                if probs[i] < eta && *x < kth {
                    *x = f32::NEG_INFINITY;
                }
            }
        }
    }
}

fn kth_largest(s: &[f32], k: usize) -> f32 {
    let mut sorted = s.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    sorted[k.clamp(1, s.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::config::GenerationConfig;
    use serde_json::json;

    fn cfg(v: serde_json::Value) -> GenerationConfig {
        let mut c = GenerationConfig::default();
        c.update(v.as_object().unwrap()).unwrap();
        c
    }

    #[test]
    fn only_banning_processors_are_told_apart_from_those_that_change_values() {
        let only_ban = |v: serde_json::Value| Processors::new(&cfg(v), 1, Some(&[5, 6])).only_ban();
        assert!(only_ban(json!({})));
        assert!(only_ban(json!({
            "min_new_tokens": 3, "min_length": 4, "no_repeat_ngram_size": 2,
            "encoder_no_repeat_ngram_size": 2, "bad_words_ids": [[3], [4, 5]],
            "forced_bos_token_id": 1, "forced_eos_token_id": 2, "eos_token_id": 2,
            "suppress_tokens": [7], "begin_suppress_tokens": [8]
        })));
        for v in [
            json!({"repetition_penalty": 1.2}),
            json!({"encoder_repetition_penalty": 1.2}),
            json!({"remove_invalid_values": true}),
            json!({"exponential_decay_length_penalty": [2, 1.5], "eos_token_id": 2}),
            json!({"renormalize_logits": true}),
            json!({"do_sample": true}),
        ] {
            assert!(!only_ban(v.clone()), "{v}");
        }
    }

    #[test]
    fn repetition_penalty_divides_positive_and_multiplies_negative() {
        let p = Processors::new(&cfg(json!({"repetition_penalty": 2.0})), 1, None);
        let mut s = vec![1.0, -1.0, 4.0];
        p.apply(&mut s, &[0, 1, 1], 0);
        assert_eq!(s, [0.5, -2.0, 4.0]);
    }

    #[test]
    fn no_repeat_ngram_bans_the_continuation() {
        let p = Processors::new(&cfg(json!({"no_repeat_ngram_size": 2})), 1, None);
        let mut s = vec![0.0; 5];
        // bigram (1, 3) seen; last token is 1 -> 3 banned
        p.apply(&mut s, &[1, 3, 2, 1], 0);
        assert_eq!(s[3], f32::NEG_INFINITY);
        assert!(s.iter().enumerate().all(|(i, &x)| i == 3 || x == 0.0));
    }

    #[test]
    fn bad_words_single_and_sequences_but_never_eos() {
        let p = Processors::new(
            &cfg(json!({"bad_words_ids": [[2], [0, 4], [1]], "eos_token_id": 1})),
            1,
            None,
        );
        let mut s = vec![0.0; 5];
        p.apply(&mut s, &[3, 0], 0);
        assert_eq!(s, [0.0, 0.0, f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY]);
    }

    #[test]
    fn min_length_and_forced_tokens() {
        let mut c = cfg(
            json!({"min_length": 3, "eos_token_id": 1, "forced_eos_token_id": 2, "forced_bos_token_id": 0}),
        );
        c.max_length = 5;
        let p = Processors::new(&c, 1, None);
        let mut s = vec![0.5; 4];
        p.apply(&mut s, &[9], 0); // cur_len 1: forced bos
        assert_eq!(
            s,
            [0.0, f32::NEG_INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY]
        );
        let mut s = vec![0.5; 4];
        p.apply(&mut s, &[9, 0], 0); // cur_len 2 < min_length: no eos
        assert_eq!(s[1], f32::NEG_INFINITY);
        let mut s = vec![0.5; 4];
        p.apply(&mut s, &[9, 0, 3, 3], 0); // cur_len 4 == max_length - 1: forced eos
        assert_eq!(
            s,
            [f32::NEG_INFINITY, f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY]
        );
    }

    #[test]
    fn top_k_keeps_ties_and_top_p_keeps_the_nucleus() {
        let p = Processors::new(&cfg(json!({"do_sample": true, "top_k": 2})), 1, None);
        let mut s = vec![1.0, 3.0, 2.0, 2.0, 0.0];
        p.apply(&mut s, &[0], 0);
        assert_eq!(s, [f32::NEG_INFINITY, 3.0, 2.0, 2.0, f32::NEG_INFINITY]);
        let p = Processors::new(
            &cfg(json!({"do_sample": true, "top_k": 0, "top_p": 0.5})),
            1,
            None,
        );
        // probabilities ~ [0.64, 0.24, 0.09, 0.03]: the top token alone reaches 0.5
        let mut s = vec![3.0, 2.0, 1.0, 0.0];
        p.apply(&mut s, &[0], 0);
        assert_eq!(s[0], 3.0);
        assert!(s[1..].iter().all(|x| *x == f32::NEG_INFINITY), "{s:?}");
    }

    #[test]
    fn temperature_scales_before_filters() {
        let p = Processors::new(
            &cfg(json!({"do_sample": true, "temperature": 0.5, "top_k": 0})),
            1,
            None,
        );
        let mut s = vec![1.0, 2.0];
        p.apply(&mut s, &[0], 0);
        assert_eq!(s, [2.0, 4.0]);
    }
}
