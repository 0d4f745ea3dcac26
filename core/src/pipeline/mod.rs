//! Pipelines: pre-processing, the model call and post-processing of each task, with transformers'
//! semantics. Tasks are a closed set, dispatched through [`AnyPipeline`].

pub mod feature_extraction;
pub mod fill_mask;
pub mod generation;
pub mod question_answering;
pub mod text_classification;
pub mod token_classification;
pub mod zero_shot_classification;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use crate::batcher::{Batcher, Forward};
use crate::codec::{self, ResponseFormat};
use crate::error::ToolkitError;
use crate::model::token_head::TokenHead;
use crate::model::{self, HeadKind, Matrix, ModelConfig, ModelSource, TextModel, TokenSequence};
use crate::schema;
use crate::task::{Task, TaskSpec};
use crate::tokenize::TextTokenizer;
pub use feature_extraction::FeatureExtractionPipeline;
pub use fill_mask::FillMaskPipeline;
pub use generation::GenerationPipeline;
pub use question_answering::QuestionAnsweringPipeline;
pub use text_classification::TextClassificationPipeline;
pub use token_classification::TokenClassificationPipeline;
pub use zero_shot_classification::ZeroShotClassificationPipeline;

/// How to load a pipeline.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Where the model is.
    pub source: ModelSource,
    /// The task (`HF_TASK`); `None` infers it from `config.json`.
    pub task: Option<TaskSpec>,
    /// The most tokens one request may carry (all inputs together), bounding memory and time.
    pub max_request_tokens: usize,
    /// The most sequences run through the model in one forward pass.
    pub max_batch_size: usize,
    /// The most new tokens a generation may ask for (`HF_MAX_NEW_TOKENS`).
    pub max_new_tokens: usize,
    /// The longest an encoder's forward pass waits for batch-mates (`HF_BATCH_WAIT_US`), and
    /// only while requests are arriving concurrently (see [`crate::batcher`]).
    pub batch_wait: std::time::Duration,
}

impl LoadOptions {
    /// Options for a local model directory with default limits.
    pub fn local(dir: impl Into<PathBuf>, task: Option<TaskSpec>) -> Self {
        Self {
            source: ModelSource::LocalDir(dir.into()),
            task,
            max_request_tokens: 16_384,
            max_batch_size: 32,
            max_new_tokens: 2048,
            batch_wait: crate::batcher::DEFAULT_WAIT,
        }
    }
}

/// The result of a pipeline, before encoding.
#[derive(Debug, Clone, PartialEq)]
pub enum PipelineOutput {
    /// Token embeddings, one `[tokens × hidden]` matrix per input; `batched` when the request
    /// held a list (the toolkit then nests one level deeper).
    Embeddings {
        /// Whether `inputs` was a list.
        batched: bool,
        /// One matrix per input.
        items: Vec<Matrix>,
    },
    /// Any other JSON result.
    Json(Value),
}

impl PipelineOutput {
    /// The output as a JSON value (floats widened from f32, as the toolkit prints them).
    pub fn to_value(&self) -> Value {
        match self {
            PipelineOutput::Json(v) => v.clone(),
            PipelineOutput::Embeddings { batched, items } => {
                let one = |m: &Matrix| {
                    Value::Array(vec![Value::Array(
                        (0..m.rows)
                            .map(|r| {
                                Value::Array(
                                    m.row(r)
                                        .iter()
                                        .map(|&x| Value::from(f64::from(x)))
                                        .collect(),
                                )
                            })
                            .collect(),
                    )])
                };
                if *batched {
                    Value::Array(items.iter().map(one).collect())
                } else {
                    items.first().map(one).unwrap_or(Value::Array(vec![]))
                }
            }
        }
    }

    /// Encodes the output in the negotiated format.
    pub fn encode(&self, format: ResponseFormat) -> Result<Vec<u8>, ToolkitError> {
        match (self, format) {
            (PipelineOutput::Embeddings { batched, items }, ResponseFormat::Json) => {
                Ok(write_embeddings_json(*batched, items))
            }
            (_, ResponseFormat::Json) => crate::json::to_vec(&self.to_value())
                .map_err(|e| ToolkitError::Internal(format!("JSON encoding failed: {e}"))),
            (_, ResponseFormat::Csv) => codec::encode_csv(&self.to_value()),
            (_, ResponseFormat::Npy) => codec::encode_npy(&self.to_value()),
            (_, ResponseFormat::EventStream) => Err(ToolkitError::UnsupportedAccept {
                accept: "text/event-stream".into(),
                reason: " for this response (only a generation streams tokens)".into(),
                supported: "application/json".into(),
            }),
            (_, ResponseFormat::JsonLines) => {
                // one line per element of a list result (one per input), else one line
                let value = self.to_value();
                let items = match value {
                    serde_json::Value::Array(items) => items,
                    other => vec![other],
                };
                let mut out = Vec::new();
                for item in &items {
                    out.extend(crate::json::to_vec(item).map_err(|e| {
                        ToolkitError::Internal(format!("JSON encoding failed: {e}"))
                    })?);
                    out.push(b'\n');
                }
                Ok(out)
            }
        }
    }
}

impl PipelineOutput {
    /// The output of a batched request, one encoded JSON answer per input (what a JSON array
    /// response would hold).
    pub fn encode_items(&self) -> Result<Vec<Vec<u8>>, ToolkitError> {
        match self {
            PipelineOutput::Embeddings { items, .. } => Ok(items
                .iter()
                .map(|m| write_embeddings_json(false, std::slice::from_ref(m)))
                .collect()),
            PipelineOutput::Json(serde_json::Value::Array(items)) => items
                .iter()
                .map(|v| {
                    crate::json::to_vec(v)
                        .map_err(|e| ToolkitError::Internal(format!("JSON encoding failed: {e}")))
                })
                .collect(),
            PipelineOutput::Json(_) => Err(ToolkitError::Internal(
                "a batched request did not answer with a list".into(),
            )),
        }
    }
}

/// Answers of at least this many floats are written by several threads. A float takes ~22 ns
/// (`cargo bench --bench json`), so the batch of 32's ~200k floats are ~4.5 ms on one thread;
/// a sentence's ~5k floats (~0.1 ms) are not worth starting a thread.
const PARALLEL_FLOATS: usize = 16 * 1024;

/// Writes token embeddings straight into the output buffer (the batch-32 reply of a 384-wide
/// model is megabytes of floats: no intermediate JSON tree), on several threads when the
/// answer is large.
fn write_embeddings_json(batched: bool, items: &[Matrix]) -> Vec<u8> {
    let floats: usize = items.iter().map(|m| m.data.len()).sum();
    let threads = if floats >= PARALLEL_FLOATS {
        std::thread::available_parallelism().map_or(1, usize::from)
    } else {
        1
    };
    let write_row = |out: &mut Vec<u8>, row: &[f32]| {
        out.push(b'[');
        for (i, &x) in row.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            crate::json::write_py_float(out, f64::from(x));
        }
        out.push(b']');
    };
    let write_matrix = |out: &mut Vec<u8>, m: &Matrix, threads: usize| {
        out.extend_from_slice(b"[[");
        write_joined(
            out,
            m.rows,
            |_| m.cols,
            |o, r| write_row(o, m.row(r)),
            threads,
        );
        out.extend_from_slice(b"]]");
    };
    let mut out = Vec::with_capacity(floats * 21 + 16);
    match items {
        [] if !batched => out.extend_from_slice(b"[]"),
        [m, ..] if !batched => write_matrix(&mut out, m, threads),
        // a list: the threads share out the sequences
        _ => {
            out.push(b'[');
            write_joined(
                &mut out,
                items.len(),
                |i| items[i].data.len(),
                |o, i| write_matrix(o, &items[i], 1),
                threads,
            );
            out.push(b']');
        }
    }
    out
}

/// Writes units `0..n` separated by commas into `out`: in order, by `threads` threads each
/// writing a contiguous run of units of about equal `weight` (floats) into a buffer of its own.
fn write_joined(
    out: &mut Vec<u8>,
    n: usize,
    weight: impl Fn(usize) -> usize + Sync,
    write: impl Fn(&mut Vec<u8>, usize) + Sync,
    threads: usize,
) {
    let write_run = |out: &mut Vec<u8>, units: std::ops::Range<usize>| {
        let first = units.start;
        for u in units {
            if u > first {
                out.push(b',');
            }
            write(out, u);
        }
    };
    if threads < 2 || n < 2 {
        write_run(out, 0..n);
        return;
    }
    // cut where the running weight passes each thread's share (every run holds a unit at least)
    let total: usize = (0..n).map(&weight).sum();
    let mut cuts = vec![0];
    let mut acc = 0;
    for u in 0..n - 1 {
        acc += weight(u);
        if cuts.len() < threads && acc * threads >= total * cuts.len() {
            cuts.push(u + 1);
        }
    }
    cuts.push(n);
    let capacity = |a: usize, b: usize| (a..b).map(&weight).sum::<usize>() * 21 + b - a;
    let rest: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let others: Vec<_> = cuts[1..]
            .windows(2)
            .map(|w| {
                let (a, b) = (w[0], w[1]);
                scope.spawn(move || {
                    let mut own = Vec::with_capacity(capacity(a, b));
                    write_run(&mut own, a..b);
                    own
                })
            })
            .collect();
        // the first run on this thread, while the others write theirs
        write_run(out, 0..cuts[1]);
        others
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    for run in rest {
        out.push(b',');
        out.extend_from_slice(&run);
    }
}

/// A tokenizer and an encoder model: what every text pipeline here shares. The model runs on
/// its own thread behind a [`Batcher`], which merges concurrent requests into shared passes.
pub struct TextEncoder {
    tokenizer: TextTokenizer,
    max_positions: usize,
    batcher: Batcher,
    config: ModelConfig,
    max_request_tokens: usize,
}

impl std::fmt::Debug for TextEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextEncoder")
            .field("model_type", &self.config.model_type)
            .field("tokenizer", &self.tokenizer)
            .finish_non_exhaustive()
    }
}

impl TextEncoder {
    /// Assembles an encoder from its parts (tests use a stub model).
    pub fn new(
        tokenizer: TextTokenizer,
        model: Box<dyn TextModel>,
        config: ModelConfig,
        opts: &LoadOptions,
    ) -> Result<Self, ToolkitError> {
        let max_positions = model.max_positions();
        let model: Arc<dyn TextModel> = Arc::from(model);
        let max_batch_size = opts.max_batch_size.max(1);
        let forward: Forward = Arc::new(move |seqs: &[TokenSequence]| {
            sorted_forward(model.as_ref(), seqs, max_batch_size)
        });
        let limits = crate::batcher::Limits {
            max_tokens: opts.max_request_tokens.max(1),
            max_wait: opts.batch_wait,
        };
        let batcher = Batcher::new(forward, limits)?;
        Ok(Self {
            tokenizer,
            max_positions,
            batcher,
            config,
            max_request_tokens: opts.max_request_tokens,
        })
    }

    /// The model's configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// The longest sequence the model accepts, special tokens included.
    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// The most tokens one request may hold (`HF_MAX_REQUEST_TOKENS`).
    pub fn max_request_tokens(&self) -> usize {
        self.max_request_tokens
    }

    /// Checks lengths and the request budget, then runs the model on every sequence, batching
    /// sequences of similar length together. Returns one matrix per sequence, in order.
    pub fn run(&self, seqs: Vec<TokenSequence>) -> Result<Vec<Matrix>, ToolkitError> {
        let max = self.max_positions;
        if let Some((i, s)) = seqs.iter().enumerate().find(|(_, s)| s.ids.len() > max) {
            let which = if seqs.len() > 1 {
                format!("input {i}")
            } else {
                "the input".to_owned()
            };
            return Err(ToolkitError::InputTooLong(format!(
                "{which} is {} tokens long but the model accepts at most {max}; shorten it or pass \"parameters\": {{\"truncation\": true}}",
                s.ids.len()
            )));
        }
        let total: usize = seqs.iter().map(|s| s.ids.len()).sum();
        if total > self.max_request_tokens {
            return Err(ToolkitError::InputTooLong(format!(
                "the request holds {total} tokens, more than the limit of {} per request (HF_MAX_REQUEST_TOKENS); split it into smaller requests",
                self.max_request_tokens
            )));
        }
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        self.batcher.run(seqs)
    }
}

/// Runs the model on `seqs` in chunks of at most `max_batch` sequences of similar length (longest
/// first, so a padded implementation pads little); outputs in input order.
fn sorted_forward(
    model: &dyn TextModel,
    seqs: &[TokenSequence],
    max_batch: usize,
) -> Result<Vec<Matrix>, ToolkitError> {
    let mut order: Vec<usize> = (0..seqs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(seqs[i].ids.len()));
    let mut out: Vec<Option<Matrix>> = vec![None; seqs.len()];
    for chunk in order.chunks(max_batch) {
        let batch: Vec<TokenSequence> = chunk.iter().map(|&i| seqs[i].clone()).collect();
        let results = model.forward(&batch)?;
        if results.len() != chunk.len() {
            return Err(ToolkitError::Internal(
                "the model returned a wrong batch size".into(),
            ));
        }
        for (&i, m) in chunk.iter().zip(results) {
            out[i] = Some(m);
        }
    }
    out.into_iter()
        .map(|m| m.ok_or_else(|| ToolkitError::Internal("missing model output".into())))
        .collect()
}

/// A loaded pipeline for one task.
#[derive(Debug)]
pub enum AnyPipeline {
    /// `feature-extraction`.
    FeatureExtraction(FeatureExtractionPipeline),
    /// `text-classification` / `sentiment-analysis`.
    TextClassification(TextClassificationPipeline),
    /// `zero-shot-classification`.
    ZeroShotClassification(ZeroShotClassificationPipeline),
    /// `fill-mask`.
    FillMask(FillMaskPipeline),
    /// `token-classification` / `ner`.
    TokenClassification(TokenClassificationPipeline),
    /// `question-answering`.
    QuestionAnswering(QuestionAnsweringPipeline),
    /// `text-generation` (and chat), `text2text-generation`, `summarization`, `translation`.
    Generation(GenerationPipeline),
}

impl AnyPipeline {
    /// Resolves the model files, reads the config, decides the task and builds the pipeline.
    pub fn load(opts: &LoadOptions) -> Result<Self, ToolkitError> {
        let files = opts.source.resolve()?;
        let raw = model::config::read_raw(&files.config)?;
        let model_type = raw.get("model_type").and_then(Value::as_str).unwrap_or("");
        if generation::is_generative(model_type) {
            let architectures: Vec<String> = raw
                .get("architectures")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let spec = match &opts.task {
                Some(t) => t.clone(),
                None => TaskSpec::infer(&architectures)?,
            };
            spec.ensure_implemented()?;
            schema::ensure_available(match spec.task {
                Task::Conversational => Task::TextGeneration,
                t => t,
            })?;
            return Ok(Self::Generation(GenerationPipeline::load(
                &files, &raw, &spec, opts,
            )?));
        }
        let config = ModelConfig::from_json(&raw.to_string())
            .map_err(|e| ToolkitError::model_load(format!("{}: {e}", files.config.display())))?;
        let spec = match &opts.task {
            Some(t) => t.clone(),
            None => TaskSpec::infer(&config.architectures)?,
        };
        spec.ensure_implemented()?;
        schema::ensure_available(spec.task)?;
        let head = match spec.task {
            Task::TextClassification | Task::ZeroShotClassification => {
                HeadKind::SequenceClassification
            }
            _ => HeadKind::HiddenStates,
        };
        // the tokenizer (a JSON parse of its vocabulary) loads on a second thread while the
        // weights are read (MiniLM: its ~30-40 ms overlap the weights' ~100 ms)
        let (tokenizer, model) = std::thread::scope(|scope| {
            let tokenizer = scope.spawn(|| TextTokenizer::load(&files, config.pad_token_id));
            let model = model::load(&files, &config, head, &model::device());
            let tokenizer = tokenizer.join().unwrap_or_else(|_| {
                Err(ToolkitError::Internal(
                    "loading the tokenizer panicked".into(),
                ))
            });
            (tokenizer, model)
        });
        let (tokenizer, model) = (tokenizer?, model?);
        match spec.task {
            Task::FillMask => {
                let head = model::mlm::MlmHead::load(&files, &config)?;
                let encoder = TextEncoder::new(tokenizer, model, config, opts)?;
                Ok(Self::FillMask(FillMaskPipeline::new(encoder, head)?))
            }
            Task::TokenClassification => {
                let head = TokenHead::load(&files, &config, "classifier", config.labels.len())?;
                let encoder = TextEncoder::new(tokenizer, model, config, opts)?;
                Ok(Self::TokenClassification(TokenClassificationPipeline::new(
                    encoder, head,
                )?))
            }
            Task::QuestionAnswering => {
                let head = TokenHead::load(&files, &config, "qa_outputs", 2)?;
                let encoder = TextEncoder::new(tokenizer, model, config, opts)?;
                Ok(Self::QuestionAnswering(QuestionAnsweringPipeline::new(
                    encoder, head,
                )?))
            }
            task => Self::from_encoder(task, TextEncoder::new(tokenizer, model, config, opts)?),
        }
    }

    /// Builds the pipeline of `task` over an encoder.
    pub fn from_encoder(task: Task, encoder: TextEncoder) -> Result<Self, ToolkitError> {
        match task {
            Task::FeatureExtraction => Ok(Self::FeatureExtraction(FeatureExtractionPipeline::new(
                encoder,
            ))),
            Task::TextClassification => Ok(Self::TextClassification(
                TextClassificationPipeline::new(encoder)?,
            )),
            Task::FillMask | Task::TokenClassification | Task::QuestionAnswering => {
                Err(ToolkitError::Config(format!(
                    "{task} also needs its head's weights: build it with AnyPipeline::load"
                )))
            }
            Task::ZeroShotClassification => Ok(Self::ZeroShotClassification(
                ZeroShotClassificationPipeline::new(encoder)?,
            )),
            other => Err(ToolkitError::Config(format!(
                "task {other} is not implemented yet; implemented tasks: {}",
                Task::implemented_list()
            ))),
        }
    }

    /// The task.
    pub fn task(&self) -> Task {
        match self {
            Self::FeatureExtraction(_) => Task::FeatureExtraction,
            Self::TextClassification(_) => Task::TextClassification,
            Self::ZeroShotClassification(_) => Task::ZeroShotClassification,
            Self::FillMask(_) => Task::FillMask,
            Self::TokenClassification(_) => Task::TokenClassification,
            Self::QuestionAnswering(_) => Task::QuestionAnswering,
            Self::Generation(p) => p.task(),
        }
    }

    /// Validates a decoded request against the task's schema and runs it.
    pub fn run(&self, request: Value) -> Result<PipelineOutput, ToolkitError> {
        schema::validate_request(self.task(), &request)?;
        match self {
            Self::FeatureExtraction(p) => p.run(crate::types::from_value(request)?),
            Self::TextClassification(p) => p.run(crate::types::from_value(request)?),
            Self::ZeroShotClassification(p) => p.run(crate::types::from_value(request)?),
            Self::FillMask(p) => p.run(crate::types::from_value(request)?),
            Self::TokenClassification(p) => p.run(crate::types::from_value(request)?),
            Self::QuestionAnswering(p) => p.run(crate::types::from_value(
                question_answering::normalize_request(request),
            )?),
            Self::Generation(p) => p.run(request),
        }
    }

    /// Runs one small request so that the first real one does not pay for lazy set-up.
    pub fn warm_up(&self) -> Result<(), ToolkitError> {
        let request = match self {
            Self::ZeroShotClassification(_) => {
                serde_json::json!({"inputs": "warm up", "parameters": {"candidate_labels": ["a", "b"]}})
            }
            Self::FillMask(p) => {
                serde_json::json!({"inputs": format!("warm {} up", p.mask_token())})
            }
            Self::QuestionAnswering(_) => {
                serde_json::json!({"inputs": {"question": "warm up?", "context": "warm up"}})
            }
            Self::Generation(_) => {
                serde_json::json!({"inputs": "warm up", "parameters": {"max_new_tokens": 1}})
            }
            _ => serde_json::json!({"inputs": "warm up"}),
        };
        self.run(request).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: usize, cols: usize, seed: u32) -> Matrix {
        let data = (0..rows * cols)
            .map(|i| {
                let r = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed);
                (r % 20_000) as f32 / 7_000.0 - 1.4
            })
            .collect();
        Matrix { rows, cols, data }
    }

    /// The same answer through serde_json values (an independent layout of the nesting).
    fn via_values(batched: bool, items: &[Matrix]) -> Vec<u8> {
        let nested = |m: &Matrix| {
            serde_json::json!([(0..m.rows)
                .map(|r| m.row(r).iter().map(|&x| f64::from(x)).collect::<Vec<_>>())
                .collect::<Vec<_>>()])
        };
        let value = if batched {
            serde_json::Value::Array(items.iter().map(nested).collect())
        } else {
            items.first().map_or(serde_json::json!([]), nested)
        };
        crate::json::to_vec(&value).unwrap()
    }

    #[test]
    fn large_answers_written_by_several_threads_equal_the_plain_layout() {
        // a batch over the parallel threshold, of uneven lengths, and one long sequence
        let batch: Vec<Matrix> = (0..32)
            .map(|i| matrix(3 + (i * 7) % 40, 384, i as u32))
            .collect();
        assert!(batch.iter().map(|m| m.data.len()).sum::<usize>() >= PARALLEL_FLOATS);
        assert_eq!(
            write_embeddings_json(true, &batch),
            via_values(true, &batch)
        );
        let long = [matrix(300, 384, 9)];
        assert!(long[0].data.len() >= PARALLEL_FLOATS);
        assert_eq!(
            write_embeddings_json(false, &long),
            via_values(false, &long)
        );
        // and below the threshold
        let short = [matrix(12, 384, 5)];
        assert_eq!(
            write_embeddings_json(false, &short),
            via_values(false, &short)
        );
        assert_eq!(
            write_embeddings_json(true, &short),
            via_values(true, &short)
        );
        assert_eq!(write_embeddings_json(true, &[]), b"[]");
    }

    #[test]
    fn joined_runs_keep_every_unit_once_in_order_for_any_thread_count() {
        let weights = [5usize, 1, 1, 9, 2, 2, 2, 30, 1];
        for n in 0..=weights.len() {
            let want: Vec<String> = (0..n).map(|u| u.to_string()).collect();
            for threads in 1..=12 {
                let mut out = b"<".to_vec();
                write_joined(
                    &mut out,
                    n,
                    |u| weights[u],
                    |o, u| o.extend_from_slice(u.to_string().as_bytes()),
                    threads,
                );
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    format!("<{}", want.join(",")),
                    "{n} units on {threads} threads"
                );
            }
        }
    }
}
