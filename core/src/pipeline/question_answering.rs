//! `question-answering`, as transformers' `QuestionAnsweringPipeline` (4.51) with a fast
//! tokenizer: question and context are tokenized as a pair truncated `only_second` into windows
//! of `max_seq_len` tokens overlapping by `doc_stride`; in each window every token but the
//! context's (and `[CLS]`) is masked, start and end logits are softmaxed, the best spans
//! `start ≤ end < start + max_answer_len` are scored P(start) × P(end), and mapped back to the
//! context's characters (widened to whole words unless `align_to_words` is false). With
//! `handle_impossible_answer`, the smallest `[CLS]` score over the windows is the score of the
//! empty answer. Answers of all windows are ranked together; one answer is an object, several a
//! list.

use serde_json::Value;

use super::{PipelineOutput, TextEncoder};
use crate::error::ToolkitError;
use crate::model::token_head::TokenHead;
use crate::model::TokenSequence;
use crate::task::Task;
use crate::tokenize::{Encoding, TruncationStrategy, WindowOptions};
use crate::types::question_answering::{
    Answer, QuestionAnsweringParameters, QuestionAnsweringRequest, QuestionContext,
};
use crate::types::OneOrMany;

/// The question-answering pipeline.
#[derive(Debug)]
pub struct QuestionAnsweringPipeline {
    encoder: TextEncoder,
    head: TokenHead,
}

/// Resolved parameters.
struct Settings {
    top_k: usize,
    max_answer_len: usize,
    max_seq_len: usize,
    doc_stride: usize,
    handle_impossible: bool,
    align_to_words: bool,
}

/// Moves the toolkit's form without `inputs` (`{"question", "context", "parameters"}`) under
/// `inputs`, as the toolkit's `data.pop("inputs", data)` does.
pub fn normalize_request(mut request: Value) -> Value {
    if let Value::Object(map) = &mut request {
        if !map.contains_key("inputs") {
            let parameters = map.remove("parameters");
            let inputs = Value::Object(std::mem::take(map));
            map.insert("inputs".into(), inputs);
            if let Some(p) = parameters {
                map.insert("parameters".into(), p);
            }
        }
    }
    request
}

impl QuestionAnsweringPipeline {
    /// Wraps an encoder (hidden states) and its `qa_outputs` head.
    pub fn new(encoder: TextEncoder, head: TokenHead) -> Result<Self, ToolkitError> {
        if head.outputs() != 2 {
            return Err(ToolkitError::model_load(format!(
                "qa_outputs has {} outputs; question answering needs 2 (start and end)",
                head.outputs()
            )));
        }
        Ok(Self { encoder, head })
    }

    fn settings(&self, p: &QuestionAnsweringParameters) -> Result<Settings, ToolkitError> {
        if let Some(padding) = &p.padding {
            padding.padding()?;
        }
        let top_k = p.top_k.or(p.topk).unwrap_or(1);
        if top_k < 1 {
            return Err(ToolkitError::InvalidParameters(format!(
                "top_k parameter should be >= 1 (got {top_k})"
            )));
        }
        let max_answer_len = p.max_answer_len.unwrap_or(15);
        if max_answer_len < 1 {
            return Err(ToolkitError::InvalidParameters(format!(
                "max_answer_len parameter should be >= 1 (got {max_answer_len})"
            )));
        }
        let max_seq_len = p.max_seq_len.unwrap_or_else(|| {
            self.encoder
                .tokenizer()
                .model_max_length()
                .map_or(384, |m| m.min(384))
        });
        let doc_stride = p.doc_stride.unwrap_or((max_seq_len / 2).min(128));
        if doc_stride > max_seq_len {
            return Err(ToolkitError::InvalidParameters(format!(
                "`doc_stride` ({doc_stride}) is larger than `max_seq_len` ({max_seq_len})"
            )));
        }
        Ok(Settings {
            top_k,
            max_answer_len,
            // a window never exceeds the position embeddings (transformers fails there)
            max_seq_len: max_seq_len.min(self.encoder.max_positions()),
            doc_stride,
            handle_impossible: p.handle_impossible_answer.unwrap_or(false),
            align_to_words: p.align_to_words.unwrap_or(true),
        })
    }

    /// Runs a request.
    pub fn answer(&self, req: QuestionAnsweringRequest) -> Result<PipelineOutput, ToolkitError> {
        let settings = self.settings(&req.parameters.unwrap_or_default())?;
        let (batched, examples) = examples(req.inputs)?;
        let tok = self.encoder.tokenizer();
        let mut windows: Vec<Vec<Encoding>> = Vec::with_capacity(examples.len());
        let mut budget = self.encoder.budget();
        // transformers keeps every window of the context (`return_overflowing_tokens=True`)
        let cut = WindowOptions {
            strategy: TruncationStrategy::OnlySecond,
            max_length: Some(settings.max_seq_len),
            stride: settings.doc_stride,
            max_tokens: self.encoder.max_request_tokens(),
            first_only: false,
        };
        for (question, context) in &examples {
            let w = tok.encode_windows(question, Some(context), &cut)?;
            budget.charge(w.iter().map(Encoding::len).sum())?;
            windows.push(w);
        }
        let seqs: Vec<TokenSequence> = windows.iter().flatten().map(TokenSequence::from).collect();
        let mut hidden = self.encoder.run(seqs)?.into_iter();
        let mut results = Vec::with_capacity(examples.len());
        for ((_, context), encs) in examples.iter().zip(&windows) {
            let chars: Vec<char> = context.chars().collect();
            let mut answers: Vec<(f32, usize, usize)> = Vec::new();
            let mut min_null = 1_000_000f32;
            for enc in encs {
                let h = hidden
                    .next()
                    .ok_or_else(|| ToolkitError::Internal("missing model output".into()))?;
                let logits = self.head.logits(&h)?;
                let (spans, null) = self.best_spans(enc, &logits, &settings);
                min_null = min_null.min(null);
                for (s, e, score) in spans {
                    let (start, end) = char_span(enc, s, e, settings.align_to_words);
                    answers.push((score, start, end));
                }
            }
            if settings.handle_impossible {
                answers.push((min_null, 0, 0));
            }
            // stable: equal scores keep window order, the empty answer last
            answers.sort_by(|a, b| b.0.total_cmp(&a.0));
            answers.truncate(settings.top_k);
            let answers: Vec<Answer> = answers
                .into_iter()
                .map(|(score, start, end)| Answer {
                    score: f64::from(score),
                    start,
                    end,
                    answer: chars
                        .get(start.min(chars.len())..end.min(chars.len()))
                        .map(|c| c.iter().collect())
                        .unwrap_or_default(),
                })
                .collect();
            let value = if answers.len() == 1 {
                serde_json::to_value(&answers[0])
            } else {
                serde_json::to_value(&answers)
            }
            .map_err(|e| ToolkitError::Internal(format!("cannot encode the output: {e}")))?;
            results.push(value);
        }
        Ok(PipelineOutput::Json(if batched {
            Value::Array(results)
        } else {
            results.pop().unwrap_or(Value::Null)
        }))
    }

    /// transformers' `select_starts_ends` + `decode_spans` for one window: the `top_k` best
    /// (start, end, score) token spans inside the context, and the score of the empty answer.
    fn best_spans(
        &self,
        enc: &Encoding,
        logits: &crate::model::Matrix,
        s: &Settings,
    ) -> (Vec<(usize, usize, f32)>, f32) {
        let n = logits.rows.min(enc.len());
        let cls = self.encoder.tokenizer().cls_id();
        let ids = enc.get_ids();
        let seq = enc.get_sequence_ids();
        let attention = enc.get_attention_mask();
        // tokens an answer may use: the context's, and [CLS] (some models mean "no answer" by it)
        let allowed: Vec<bool> = (0..n)
            .map(|i| {
                (seq.get(i).copied().flatten() == Some(1) || Some(ids[i]) == cls)
                    && attention.get(i).copied().unwrap_or(1) != 0
            })
            .collect();
        let probs = |col: usize| -> Vec<f32> {
            let mut x: Vec<f32> = (0..n)
                .map(|i| {
                    if allowed[i] {
                        logits.row(i)[col]
                    } else {
                        -10000.0
                    }
                })
                .collect();
            crate::kernels::softmax_rows(&mut x, n.max(1));
            x
        };
        let (mut start, mut end) = (probs(0), probs(1));
        if n == 0 {
            return (Vec::new(), 1_000_000.0);
        }
        let null = start[0] * end[0];
        start[0] = 0.0;
        end[0] = 0.0;
        // candidates in the band start ≤ end < start + max_answer_len, both ends usable
        // (transformers' mask test lets index 0 through as well: its score is 0 by then)
        let usable = |i: usize| allowed[i] || i == 0;
        let mut candidates: Vec<(usize, usize, f32)> = Vec::new();
        for i in (0..n).filter(|&i| usable(i) && start[i] > 0.0) {
            for j in (i..n.min(i + s.max_answer_len)).filter(|&j| usable(j)) {
                let score = start[i] * end[j];
                if score > 0.0 {
                    candidates.push((i, j, score));
                }
            }
        }
        // highest first; ties in row-major order, as numpy's argmax picks the first
        candidates.sort_by(|a, b| b.2.total_cmp(&a.2));
        candidates.truncate(s.top_k);
        (candidates, null)
    }
}

/// transformers' `get_indices`: the character span of tokens `s..=e` of the context, widened to
/// the words they are in when `align` (falling back to the token offsets when a token has no
/// word).
fn char_span(enc: &Encoding, s: usize, e: usize, align: bool) -> (usize, usize) {
    let offsets = enc.get_offsets();
    let by_offsets = (
        offsets.get(s).map_or(0, |o| o.0),
        offsets.get(e).map_or(0, |o| o.1),
    );
    if !align {
        return by_offsets;
    }
    let word_chars = |t: usize| {
        let (_, word) = enc.token_to_word(t)?;
        enc.word_to_chars(word, 1)
    };
    match (word_chars(s), word_chars(e)) {
        (Some(a), Some(b)) => (a.0, b.1),
        _ => by_offsets,
    }
}

/// The (question, context) pairs of a request and whether the answer is a list: like
/// transformers, one pair (or a list holding one) answers with a single result, a list of pairs
/// or a pair of equal-length lists with one result per pair.
fn examples(
    inputs: OneOrMany<QuestionContext>,
) -> Result<(bool, Vec<(String, String)>), ToolkitError> {
    fn pair(qc: QuestionContext, at: &str) -> Result<(String, String), ToolkitError> {
        match (qc.question, qc.context) {
            (OneOrMany::One(q), OneOrMany::One(c)) => check(q, c, at),
            _ => Err(ToolkitError::Validation(format!(
                "question and context must be strings{at}: lists of questions and contexts are accepted only in a single `inputs` object"
            ))),
        }
    }
    fn check(q: String, c: String, at: &str) -> Result<(String, String), ToolkitError> {
        for (name, v) in [("question", &q), ("context", &c)] {
            if v.is_empty() {
                return Err(ToolkitError::Validation(format!(
                    "`{name}` cannot be empty{at}"
                )));
            }
        }
        Ok((q, c))
    }
    match inputs {
        OneOrMany::One(qc) => match (qc.question, qc.context) {
            (OneOrMany::One(q), OneOrMany::One(c)) => Ok((false, vec![check(q, c, "")?])),
            (OneOrMany::Many(qs), OneOrMany::Many(cs)) => {
                if qs.len() != cs.len() {
                    return Err(ToolkitError::Validation(format!(
                        "Questions and contexts don't have the same lengths ({} questions, {} contexts); send one context per question",
                        qs.len(),
                        cs.len()
                    )));
                }
                let pairs = qs
                    .into_iter()
                    .zip(cs)
                    .enumerate()
                    .map(|(i, (q, c))| check(q, c, &format!(" (pair {i})")))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((true, pairs))
            }
            _ => Err(ToolkitError::Validation(
                "question and context must both be strings, or both lists of the same length"
                    .into(),
            )),
        },
        OneOrMany::Many(items) => {
            let single = items.len() == 1;
            let pairs = items
                .into_iter()
                .enumerate()
                .map(|(i, qc)| pair(qc, &format!(" (input {i})")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((!single, pairs))
        }
    }
}

/// The registry's constructor.
pub(crate) fn build(
    parts: crate::pipeline::EncoderParts<'_>,
) -> Result<Box<dyn crate::pipeline::Pipeline>, ToolkitError> {
    let head = TokenHead::load(parts.files, parts.encoder.config(), "qa_outputs", 2)?;
    Ok(Box::new(QuestionAnsweringPipeline::new(
        parts.encoder,
        head,
    )?))
}

impl crate::pipeline::Pipeline for QuestionAnsweringPipeline {
    fn task(&self) -> Task {
        Task::QuestionAnswering
    }

    fn run(
        &self,
        input: crate::pipeline::Input,
        _ctx: crate::context::Context,
    ) -> Result<PipelineOutput, ToolkitError> {
        let request = input.into_json(Task::QuestionAnswering)?;
        self.answer(crate::types::from_value(normalize_request(request))?)
    }

    fn warm_up_input(&self) -> crate::pipeline::Input {
        crate::pipeline::Input::Json(
            serde_json::json!({"inputs": {"question": "warm up?", "context": "warm up"}}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_form_without_inputs_moves_under_inputs() {
        let v =
            normalize_request(json!({"question": "q", "context": "c", "parameters": {"top_k": 2}}));
        assert_eq!(
            v,
            json!({"inputs": {"question": "q", "context": "c"}, "parameters": {"top_k": 2}})
        );
        let kept = json!({"inputs": {"question": "q", "context": "c"}});
        assert_eq!(normalize_request(kept.clone()), kept);
    }
}
