//! `token-classification` (alias `ner`), as transformers' `TokenClassificationPipeline` (4.51):
//! softmax over the labels of every token; special tokens skipped; sub-words found through the
//! tokenizer's offsets (a token whose text is longer than its span of the input, for WordPiece's
//! `##`; otherwise no space before it); then the aggregation: `none` (one result per token),
//! `simple` (adjacent tokens of one entity type grouped, `B-` starting a new group), `first` /
//! `average` / `max` (each word takes one label first). Texts longer than the window are
//! truncated, or with `stride` split into overlapping windows whose entities are merged (the
//! longer, then the more confident, of two overlapping entities wins).

use super::{PipelineOutput, TextEncoder};
use crate::error::ToolkitError;
use crate::model::token_head::TokenHead;
use crate::model::{Matrix, TokenSequence};
use crate::task::Task;
use crate::tokenize::{Encoding, TruncationStrategy, WindowOptions};
use crate::types::token_classification::{
    EntityGroup, TokenClassificationParameters, TokenClassificationRequest, TokenPrediction,
};
use crate::types::OneOrMany;

/// transformers' `AggregationStrategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    /// One result per token.
    None,
    /// Adjacent tokens with the same entity type grouped.
    Simple,
    /// Words take their first token's label.
    First,
    /// Words take the label of their tokens' average scores.
    Average,
    /// Words take the label of their most confident token.
    Max,
}

impl Aggregation {
    /// Parses a strategy name, in any case (Python looks it up by `.upper()`).
    pub fn parse(name: &str) -> Result<Self, ToolkitError> {
        match name.to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "simple" => Ok(Self::Simple),
            "first" => Ok(Self::First),
            "average" => Ok(Self::Average),
            "max" => Ok(Self::Max),
            _ => Err(ToolkitError::InvalidParameters(format!(
                "aggregation_strategy {name:?} is not one of \"none\", \"simple\", \"first\", \"average\", \"max\""
            ))),
        }
    }
}

/// The token-classification pipeline.
#[derive(Debug)]
pub struct TokenClassificationPipeline {
    encoder: TextEncoder,
    head: TokenHead,
}

/// A token before aggregation (transformers' "pre-entity").
struct PreEntity {
    word: String,
    scores: Vec<f32>,
    start: usize,
    end: usize,
    index: usize,
    is_subword: bool,
}

/// A token or an entity group on its way out.
#[derive(Debug, Clone)]
struct Entity {
    /// `entity` (a full label) for tokens and words, `entity_group` once grouped.
    label: String,
    score: f32,
    /// Only tokens (aggregation `none`/`simple` before grouping) have one.
    index: Option<usize>,
    word: String,
    start: usize,
    end: usize,
    grouped: bool,
}

fn argmax(xs: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best
}

fn mean(xs: impl Iterator<Item = f32>) -> f32 {
    let (mut sum, mut n) = (0f64, 0usize);
    for x in xs.filter(|x| !x.is_nan()) {
        sum += f64::from(x);
        n += 1;
    }
    if n == 0 {
        f32::NAN
    } else {
        (sum / n as f64) as f32
    }
}

/// transformers' `get_tag`: (`B` or `I`, entity type).
fn tag(label: &str) -> (bool, &str) {
    if let Some(t) = label.strip_prefix("B-") {
        (true, t)
    } else if let Some(t) = label.strip_prefix("I-") {
        (false, t)
    } else {
        (false, label)
    }
}

impl TokenClassificationPipeline {
    /// Wraps an encoder (hidden states) and its `classifier` head.
    pub fn new(encoder: TextEncoder, head: TokenHead) -> Result<Self, ToolkitError> {
        let labels = encoder.config().labels.len();
        if labels != head.outputs() {
            return Err(ToolkitError::model_load(format!(
                "config.json has {labels} labels (id2label) but the classifier has {} outputs",
                head.outputs()
            )));
        }
        Ok(Self { encoder, head })
    }

    fn labels(&self) -> &[String] {
        &self.encoder.config().labels
    }

    /// The window (special tokens included) texts are truncated or split to: the tokenizer's
    /// `model_max_length`, never more than the position embeddings allow.
    fn window(&self) -> usize {
        let max = self.encoder.max_positions();
        self.encoder
            .tokenizer()
            .model_max_length()
            .map_or(max, |m| m.min(max))
    }

    /// Resolves the strategy as transformers' `_sanitize_parameters` does: the deprecated flags
    /// win over `aggregation_strategy`; returns it and whether `none` was asked for explicitly.
    fn strategy(p: &TokenClassificationParameters) -> Result<(Aggregation, bool), ToolkitError> {
        if p.grouped_entities.is_some() || p.ignore_subwords.is_some() {
            let grouped = p.grouped_entities.unwrap_or(false);
            let ignore = p.ignore_subwords.unwrap_or(false);
            let a = match (grouped, ignore) {
                (true, true) => Aggregation::First,
                (true, false) => Aggregation::Simple,
                _ => Aggregation::None,
            };
            return Ok((a, a == Aggregation::None));
        }
        match &p.aggregation_strategy {
            Some(name) => {
                let a = Aggregation::parse(name)?;
                Ok((a, a == Aggregation::None))
            }
            None => Ok((Aggregation::None, false)),
        }
    }

    /// Runs a request.
    pub fn answer(&self, req: TokenClassificationRequest) -> Result<PipelineOutput, ToolkitError> {
        let params = req.parameters.unwrap_or_default();
        let (strategy, explicit_none) = Self::strategy(&params)?;
        let ignore = params
            .ignore_labels
            .clone()
            .unwrap_or_else(|| vec!["O".to_owned()]);
        let window = self.window();
        if let Some(stride) = params.stride {
            if stride >= window {
                return Err(ToolkitError::InvalidParameters(format!(
                    "stride ({stride}) must be less than the model's window of {window} tokens (less the special tokens the tokenizer adds)"
                )));
            }
            if explicit_none {
                return Err(ToolkitError::InvalidParameters(
                    "stride splits long texts into overlapping windows and merges their entities, which aggregation_strategy \"none\" cannot do; use \"simple\", \"first\", \"average\" or \"max\"".into(),
                ));
            }
        }
        let (batched, texts) = match req.inputs {
            OneOrMany::One(t) => (false, vec![t]),
            OneOrMany::Many(ts) if ts.is_empty() => {
                return Err(ToolkitError::Validation(
                    "At least one input is required: send a text or a non-empty list of texts"
                        .into(),
                ))
            }
            OneOrMany::Many(ts) => (true, ts),
        };
        let tok = self.encoder.tokenizer();
        let mut windows: Vec<Vec<Encoding>> = Vec::with_capacity(texts.len());
        let mut budget = self.encoder.budget();
        // without a stride transformers truncates (one window); with one it keeps them all
        let cut = WindowOptions {
            strategy: TruncationStrategy::LongestFirst,
            max_length: Some(window),
            stride: params.stride.unwrap_or(0),
            max_tokens: self.encoder.max_request_tokens(),
            first_only: params.stride.is_none(),
        };
        for t in &texts {
            let w = tok.encode_windows(t, None, &cut)?;
            budget.charge(w.iter().map(Encoding::len).sum())?;
            windows.push(w);
        }
        let seqs: Vec<TokenSequence> = windows.iter().flatten().map(TokenSequence::from).collect();
        let mut hidden = self.encoder.run(seqs)?.into_iter();
        let mut results = Vec::with_capacity(texts.len());
        for (text, encs) in texts.iter().zip(&windows) {
            let chars: Vec<char> = text.chars().collect();
            let mut entities = Vec::new();
            for enc in encs {
                let h = hidden
                    .next()
                    .ok_or_else(|| ToolkitError::Internal("missing model output".into()))?;
                let logits = self.head.logits(&h)?;
                let pre = self.pre_entities(&chars, enc, logits)?;
                let found = self.aggregate(pre, strategy)?;
                entities.extend(found.into_iter().filter(|e| !ignore.contains(&e.label)));
            }
            if encs.len() > 1 {
                entities = merge_overlapping(entities);
            }
            results.push(to_json(&entities)?);
        }
        Ok(PipelineOutput::Json(if batched {
            serde_json::Value::Array(results)
        } else {
            results.pop().unwrap_or(serde_json::Value::Null)
        }))
    }

    /// transformers' `gather_pre_entities`.
    fn pre_entities(
        &self,
        chars: &[char],
        enc: &Encoding,
        mut logits: Matrix,
    ) -> Result<Vec<PreEntity>, ToolkitError> {
        let tok = self.encoder.tokenizer();
        let n = logits.cols;
        crate::kernels::softmax_rows(&mut logits.data, n);
        let special = enc.get_special_tokens_mask();
        let offsets = enc.get_offsets();
        let ids = enc.get_ids();
        let mut out = Vec::new();
        for (idx, &id) in ids.iter().enumerate().take(logits.rows) {
            if special.get(idx).copied().unwrap_or(0) != 0 {
                continue;
            }
            let (start, end) = offsets.get(idx).copied().unwrap_or((0, 0));
            let span: String = chars
                .get(start.min(chars.len())..end.min(chars.len()))
                .map(|c| c.iter().collect())
                .unwrap_or_default();
            let mut word = tok.id_to_token(id).unwrap_or_default();
            let mut is_subword = if tok.has_subword_prefix() {
                word.chars().count() != span.chars().count()
            } else {
                // `start > 0 and " " not in sentence[start - 1 : start + 1]`
                start > 0 && chars.get(start - 1) != Some(&' ') && chars.get(start) != Some(&' ')
            };
            if Some(id) == tok.unk_id() {
                word = span;
                is_subword = false;
            }
            out.push(PreEntity {
                word,
                scores: logits.row(idx).to_vec(),
                start,
                end,
                index: idx,
                is_subword,
            });
        }
        Ok(out)
    }

    fn label(&self, i: usize) -> String {
        self.labels()
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("LABEL_{i}"))
    }

    /// transformers' `aggregate`.
    fn aggregate(
        &self,
        pre: Vec<PreEntity>,
        strategy: Aggregation,
    ) -> Result<Vec<Entity>, ToolkitError> {
        let entities: Vec<Entity> = match strategy {
            Aggregation::None | Aggregation::Simple => pre
                .into_iter()
                .map(|p| {
                    let i = argmax(&p.scores);
                    Entity {
                        label: self.label(i),
                        score: p.scores[i],
                        index: Some(p.index),
                        word: p.word,
                        start: p.start,
                        end: p.end,
                        grouped: false,
                    }
                })
                .collect(),
            _ => {
                let mut words = Vec::new();
                let mut group: Vec<PreEntity> = Vec::new();
                for p in pre {
                    if !group.is_empty() && !p.is_subword {
                        words.push(self.aggregate_word(std::mem::take(&mut group), strategy)?);
                    }
                    group.push(p);
                }
                if !group.is_empty() {
                    words.push(self.aggregate_word(group, strategy)?);
                }
                words
            }
        };
        if strategy == Aggregation::None {
            return Ok(entities);
        }
        self.group_entities(entities)
    }

    /// transformers' `aggregate_word`: one label for the tokens of a word.
    fn aggregate_word(
        &self,
        tokens: Vec<PreEntity>,
        strategy: Aggregation,
    ) -> Result<Entity, ToolkitError> {
        let (start, end) = match (tokens.first(), tokens.last()) {
            (Some(f), Some(l)) => (f.start, l.end),
            _ => return Err(ToolkitError::Internal("an empty word".into())),
        };
        let (i, score) = match strategy {
            Aggregation::First => {
                let s = &tokens[0].scores;
                let i = argmax(s);
                (i, s[i])
            }
            Aggregation::Max => {
                let mut best = 0;
                let mut best_max = f32::NEG_INFINITY;
                for (t, p) in tokens.iter().enumerate() {
                    let m = p.scores[argmax(&p.scores)];
                    if m > best_max || t == 0 {
                        best = t;
                        best_max = m;
                    }
                }
                let s = &tokens[best].scores;
                let i = argmax(s);
                (i, s[i])
            }
            _ => {
                let n = tokens[0].scores.len();
                let avg: Vec<f32> = (0..n)
                    .map(|j| mean(tokens.iter().map(|t| t.scores[j])))
                    .collect();
                let i = argmax(&avg);
                (i, avg[i])
            }
        };
        let word = self
            .encoder
            .tokenizer()
            .tokens_to_string(tokens.into_iter().map(|t| t.word).collect())?;
        Ok(Entity {
            label: self.label(i),
            score,
            index: None,
            word,
            start,
            end,
            grouped: false,
        })
    }

    /// transformers' `group_entities`: adjacent entities of one type, a `B-` starting anew.
    fn group_entities(&self, entities: Vec<Entity>) -> Result<Vec<Entity>, ToolkitError> {
        let mut groups = Vec::new();
        let mut current: Vec<Entity> = Vec::new();
        for e in entities {
            if let Some(last) = current.last() {
                let (begin, t) = tag(&e.label);
                let (_, last_t) = tag(&last.label);
                if t != last_t || begin {
                    groups.push(self.group(std::mem::take(&mut current))?);
                }
            }
            current.push(e);
        }
        if !current.is_empty() {
            groups.push(self.group(current)?);
        }
        Ok(groups)
    }

    /// transformers' `group_sub_entities`.
    fn group(&self, entities: Vec<Entity>) -> Result<Entity, ToolkitError> {
        let (label, start, end) = match (entities.first(), entities.last()) {
            (Some(f), Some(l)) => (
                f.label
                    .split_once('-')
                    .map_or(f.label.as_str(), |(_, t)| t)
                    .to_owned(),
                f.start,
                l.end,
            ),
            _ => return Err(ToolkitError::Internal("an empty entity group".into())),
        };
        let score = mean(entities.iter().map(|e| e.score));
        let word = self
            .encoder
            .tokenizer()
            .tokens_to_string(entities.into_iter().map(|e| e.word).collect())?;
        Ok(Entity {
            label,
            score,
            index: None,
            word,
            start,
            end,
            grouped: true,
        })
    }
}

/// transformers' `aggregate_overlapping_entities`: sorted by start; of two overlapping entities
/// the longer wins, then the more confident.
fn merge_overlapping(mut entities: Vec<Entity>) -> Vec<Entity> {
    if entities.is_empty() {
        return entities;
    }
    entities.sort_by_key(|e| e.start);
    let mut out = Vec::new();
    let mut prev = entities[0].clone();
    for e in entities {
        if prev.start <= e.start && e.start < prev.end {
            let (len, prev_len) = (e.end - e.start, prev.end - prev.start);
            if len > prev_len || (len == prev_len && e.score > prev.score) {
                prev = e;
            }
        } else {
            out.push(std::mem::replace(&mut prev, e));
        }
    }
    out.push(prev);
    out
}

fn to_json(entities: &[Entity]) -> Result<serde_json::Value, ToolkitError> {
    let values = entities
        .iter()
        .map(|e| match (e.grouped, e.index) {
            (false, Some(index)) => serde_json::to_value(TokenPrediction {
                entity: e.label.clone(),
                score: f64::from(e.score),
                index,
                word: e.word.clone(),
                start: e.start,
                end: e.end,
            }),
            _ => serde_json::to_value(EntityGroup {
                entity_group: e.label.clone(),
                score: f64::from(e.score),
                word: e.word.clone(),
                start: e.start,
                end: e.end,
            }),
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ToolkitError::Internal(format!("cannot encode the output: {e}")))?;
    Ok(serde_json::Value::Array(values))
}

/// The registry's constructor.
pub(crate) fn build(
    parts: crate::pipeline::EncoderParts<'_>,
) -> Result<Box<dyn crate::pipeline::Pipeline>, ToolkitError> {
    let config = parts.encoder.config();
    let head = TokenHead::load(parts.files, config, "classifier", config.labels.len())?;
    Ok(Box::new(TokenClassificationPipeline::new(
        parts.encoder,
        head,
    )?))
}

impl crate::pipeline::Pipeline for TokenClassificationPipeline {
    fn task(&self) -> Task {
        Task::TokenClassification
    }

    fn run(
        &self,
        input: crate::pipeline::Input,
        _ctx: crate::context::Context,
    ) -> Result<PipelineOutput, ToolkitError> {
        self.answer(input.into_request(Task::TokenClassification)?)
    }

    fn warm_up_input(&self) -> crate::pipeline::Input {
        crate::pipeline::Input::Json(serde_json::json!({"inputs": "warm up"}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ent(start: usize, end: usize, score: f32) -> Entity {
        Entity {
            label: "PER".into(),
            score,
            index: None,
            word: String::new(),
            start,
            end,
            grouped: true,
        }
    }

    #[test]
    fn overlapping_entities_keep_the_longer_then_the_more_confident() {
        let merged = merge_overlapping(vec![
            ent(10, 14, 0.9),
            ent(0, 4, 0.5),
            ent(2, 8, 0.1),
            ent(10, 14, 0.95),
            ent(20, 22, 0.3),
        ]);
        let spans: Vec<(usize, usize, f32)> =
            merged.iter().map(|e| (e.start, e.end, e.score)).collect();
        assert_eq!(spans, vec![(2, 8, 0.1), (10, 14, 0.95), (20, 22, 0.3)]);
    }

    #[test]
    fn tags_and_strategies() {
        assert_eq!(tag("B-PER"), (true, "PER"));
        assert_eq!(tag("I-LOC"), (false, "LOC"));
        assert_eq!(tag("O"), (false, "O"));
        assert_eq!(Aggregation::parse("SIMPLE").unwrap(), Aggregation::Simple);
        let e = Aggregation::parse("bogus").unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
        assert!(e.to_string().contains("\"first\""), "{e}");
        assert_eq!(argmax(&[0.1, 0.3, 0.3]), 1);
    }
}
