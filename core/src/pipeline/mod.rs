//! Pipelines: pre-processing, the model call and post-processing of each task, with transformers'
//! semantics, behind one seam: the [`Pipeline`] trait. A request reaches a pipeline as an
//! [`Input`] (the decoded JSON document, or a raw body with its media type: an image, a WAV file,
//! an `.npy` array), so each task decides what it accepts; a [`Context`] carries cancellation
//! and the token sink. [`REGISTRY`] maps each task to its constructor: a new task is a module,
//! its schemas and one registry line.

pub mod feature_extraction;
pub mod fill_mask;
pub mod generation;
pub mod image_classification;
pub mod image_segmentation;
pub mod images;
pub mod object_detection;
pub mod question_answering;
pub mod table_question_answering;
pub mod text_classification;
pub mod token_classification;
pub mod zero_shot_classification;
pub mod zero_shot_image_classification;

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use crate::batcher::{Batcher, Forward};
use crate::context::Context;
use crate::error::ToolkitError;
use crate::model::{self, DeviceChoice, HeadKind, Matrix, ModelConfig, ModelFiles, ModelSource};
use crate::model::{TextModel, TokenSequence};
use crate::schema;
use crate::task::{Task, TaskSpec};
use crate::tokenize::{TextTokenizer, TokenBudget};
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
    /// Where the model runs (`HF_DEVICE`).
    pub device: DeviceChoice,
    /// The most pixels an image may declare (`HF_MAX_IMAGE_PIXELS`), checked before decoding.
    pub max_image_pixels: u64,
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
            device: DeviceChoice::Auto,
            max_image_pixels: crate::vision::DEFAULT_MAX_PIXELS,
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
}

/// A request as it reaches a pipeline.
#[derive(Debug, Clone)]
pub enum Input {
    /// The decoded JSON document (`{"inputs": ..., "parameters": {...}}`; CSV bodies are
    /// decoded to it too).
    Json(Value),
    /// A body the codecs do not decode, with its media type: one of the pipeline's
    /// [`Pipeline::raw_media_types`].
    Raw {
        /// The media type's essence, as the pipeline listed it (`image/png`).
        media_type: &'static str,
        /// The body.
        body: Bytes,
        /// Parameters a host took from outside the body (SageMaker's custom attributes, a
        /// query string), as a JSON object of the task's parameters; `None` when there were
        /// none.
        parameters: Option<serde_json::Map<String, Value>>,
    },
}

impl Input {
    /// The JSON document of a JSON request, validated against `task`'s request schema; a raw
    /// body is refused (415) for tasks that take only JSON.
    pub fn into_json(self, task: Task) -> Result<Value, ToolkitError> {
        match self {
            Input::Json(doc) => {
                schema::validate_request(task, &doc)?;
                Ok(doc)
            }
            Input::Raw { media_type, .. } => Err(ToolkitError::UnsupportedContentType {
                content_type: media_type.to_owned(),
                supported: crate::codec::SUPPORTED_REQUEST.to_owned(),
            }),
        }
    }

    /// The typed request of a JSON request (validated as [`into_json`](Self::into_json) does).
    pub fn into_request<T: serde::de::DeserializeOwned>(
        self,
        task: Task,
    ) -> Result<T, ToolkitError> {
        crate::types::from_value(self.into_json(task)?)
    }
}

/// One task's pipeline: what the service runs for every request.
pub trait Pipeline: Send + Sync + std::fmt::Debug {
    /// The task served.
    fn task(&self) -> Task;

    /// Runs one request.
    fn run(&self, input: Input, ctx: Context) -> Result<PipelineOutput, ToolkitError>;

    /// A small request that exercises the whole pipeline, run once at start-up so the first
    /// real request does not pay for lazy set-up.
    fn warm_up_input(&self) -> Input;

    /// Media types taken as raw bodies ([`Input::Raw`]), besides the JSON (and CSV) every
    /// pipeline reads; none for text tasks.
    fn raw_media_types(&self) -> &'static [&'static str] {
        &[]
    }

    /// `Some` when the pipeline streams tokens into [`Context::tokens`] (generation): how to
    /// turn them into text.
    fn token_text(&self) -> Option<&dyn TokenText> {
        None
    }

    /// Runs a JSON request with nobody to cancel it (tests, a host's own calls).
    fn run_json(&self, request: Value) -> Result<PipelineOutput, ToolkitError> {
        self.run(Input::Json(request), Context::detached())
    }

    /// Runs the warm-up request.
    fn warm_up(&self) -> Result<(), ToolkitError> {
        self.run(self.warm_up_input(), Context::detached())
            .map(|_| ())
    }
}

/// Turns streamed token ids into text (see [`Pipeline::token_text`]).
pub trait TokenText: Sync {
    /// Decodes `ids` as the answer would (special tokens skipped).
    fn decode(&self, ids: &[u32]) -> Result<String, ToolkitError>;
}

/// A loaded pipeline, shared by the threads that run it.
pub type SharedPipeline = Arc<dyn Pipeline>;

/// What an encoder task's constructor gets: the encoder (tokenizer, model and batcher), and the
/// files and configuration to load its head from.
pub struct EncoderParts<'a> {
    /// The model's files.
    pub files: &'a ModelFiles,
    /// The encoder.
    pub encoder: TextEncoder,
}

/// What a generative task's constructor gets.
pub struct GenerativeParts<'a> {
    /// The model's files.
    pub files: &'a ModelFiles,
    /// `config.json`.
    pub config: &'a Value,
    /// The task as requested.
    pub spec: &'a TaskSpec,
    /// The model's family (a decoder or an encoder-decoder).
    pub family: model::Family,
    /// The load options.
    pub opts: &'a LoadOptions,
}

/// What a vision (or table) task's constructor gets.
pub struct VisionParts<'a> {
    /// The model's files.
    pub files: &'a ModelFiles,
    /// `config.json`.
    pub config: &'a Value,
    /// The model's family (its `vision_task` is the task being built).
    pub family: model::Family,
    /// The device chosen for the model's family.
    pub device: candle_core::Device,
    /// The load options.
    pub opts: &'a LoadOptions,
}

/// How a task's pipeline is built.
#[derive(Debug, Clone, Copy)]
pub enum Constructor {
    /// On an encoder model ([`model::Family::is_encoder`]) with the given head.
    Encoder {
        /// What the model's forward pass returns.
        head: HeadKind,
        /// Builds the pipeline.
        build: fn(EncoderParts<'_>) -> Result<Box<dyn Pipeline>, ToolkitError>,
    },
    /// On a generative model (decoder-only or encoder-decoder).
    Generative(fn(GenerativeParts<'_>) -> Result<Box<dyn Pipeline>, ToolkitError>),
    /// On an image model.
    Vision(fn(VisionParts<'_>) -> Result<Box<dyn Pipeline>, ToolkitError>),
    /// On a table question-answering model (TAPAS).
    Table(fn(VisionParts<'_>) -> Result<Box<dyn Pipeline>, ToolkitError>),
}

/// One line of the registry.
#[derive(Debug, Clone, Copy)]
pub struct Registration {
    /// The task.
    pub task: Task,
    /// Its constructor.
    pub constructor: Constructor,
}

/// Every task this build serves, with its constructor.
pub const REGISTRY: &[Registration] = &[
    Registration {
        task: Task::FeatureExtraction,
        constructor: Constructor::Encoder {
            head: HeadKind::HiddenStates,
            build: feature_extraction::build,
        },
    },
    Registration {
        task: Task::TextClassification,
        constructor: Constructor::Encoder {
            head: HeadKind::SequenceClassification,
            build: text_classification::build,
        },
    },
    Registration {
        task: Task::ZeroShotClassification,
        constructor: Constructor::Encoder {
            head: HeadKind::SequenceClassification,
            build: zero_shot_classification::build,
        },
    },
    Registration {
        task: Task::FillMask,
        constructor: Constructor::Encoder {
            head: HeadKind::HiddenStates,
            build: fill_mask::build,
        },
    },
    Registration {
        task: Task::TokenClassification,
        constructor: Constructor::Encoder {
            head: HeadKind::HiddenStates,
            build: token_classification::build,
        },
    },
    Registration {
        task: Task::QuestionAnswering,
        constructor: Constructor::Encoder {
            head: HeadKind::HiddenStates,
            build: question_answering::build,
        },
    },
    Registration {
        task: Task::TableQuestionAnswering,
        constructor: Constructor::Table(table_question_answering::build),
    },
    Registration {
        task: Task::ImageClassification,
        constructor: Constructor::Vision(image_classification::build),
    },
    Registration {
        task: Task::ImageSegmentation,
        constructor: Constructor::Vision(image_segmentation::build),
    },
    Registration {
        task: Task::ObjectDetection,
        constructor: Constructor::Vision(object_detection::build),
    },
    Registration {
        task: Task::ZeroShotImageClassification,
        constructor: Constructor::Vision(zero_shot_image_classification::build),
    },
    Registration {
        task: Task::TextGeneration,
        constructor: Constructor::Generative(generation::build),
    },
    Registration {
        task: Task::Conversational,
        constructor: Constructor::Generative(generation::build),
    },
    Registration {
        task: Task::Text2TextGeneration,
        constructor: Constructor::Generative(generation::build),
    },
    Registration {
        task: Task::Summarization,
        constructor: Constructor::Generative(generation::build),
    },
    Registration {
        task: Task::Translation,
        constructor: Constructor::Generative(generation::build),
    },
];

fn registration(task: Task) -> Result<&'static Registration, ToolkitError> {
    REGISTRY.iter().find(|r| r.task == task).ok_or_else(|| {
        ToolkitError::Config(format!(
            "task {task} is not implemented yet; implemented tasks: {}",
            Task::implemented_list()
        ))
    })
}

/// Resolves the model files, reads the config, decides the task and builds its pipeline.
pub fn load(opts: &LoadOptions) -> Result<Box<dyn Pipeline>, ToolkitError> {
    let files = opts.source.resolve()?;
    let raw = model::config::read_raw(&files.config)?;
    let family = model::Family::of_config(&raw)
        .map_err(|e| ToolkitError::model_load(format!("{}: {e}", files.config.display())))?;
    let spec = match &opts.task {
        Some(t) => t.clone(),
        None => TaskSpec::infer(&model::config::architectures(&raw))?,
    };
    spec.ensure_implemented()?;
    // the conversational task is text-generation on the wire
    schema::ensure_available(match spec.task {
        Task::Conversational => Task::TextGeneration,
        t => t,
    })?;
    // a model of the wrong shape for the task: say what it can serve instead
    let wrong_shape = || {
        ToolkitError::Config(format!(
            "{} is {}: it cannot serve {}; serve it with HF_TASK={}",
            family.model_type(),
            family.shape().describe(),
            spec.task,
            family.serves()
        ))
    };
    match registration(spec.task)?.constructor {
        Constructor::Vision(build) => {
            if family.vision_task() != Some(spec.task) {
                return Err(wrong_shape());
            }
            let device = model::device::select(opts.device, family)?;
            build(VisionParts {
                files: &files,
                config: &raw,
                family,
                device,
                opts,
            })
        }
        Constructor::Table(build) => {
            if family.shape() != model::Shape::Table {
                return Err(wrong_shape());
            }
            let device = model::device::select(opts.device, family)?;
            build(VisionParts {
                files: &files,
                config: &raw,
                family,
                device,
                opts,
            })
        }
        Constructor::Generative(build) => {
            if !matches!(
                family.shape(),
                model::Shape::Decoder | model::Shape::EncoderDecoder
            ) {
                return Err(wrong_shape());
            }
            // the device seam: generators run on the CPU kernels only, so an explicit cuda or
            // neuron is refused here
            model::device::select(opts.device, family)?;
            build(GenerativeParts {
                files: &files,
                config: &raw,
                spec: &spec,
                family,
                opts,
            })
        }
        Constructor::Encoder { head, build } => {
            if !family.is_encoder() {
                return Err(wrong_shape());
            }
            let config = ModelConfig::from_json(&raw.to_string()).map_err(|e| {
                ToolkitError::model_load(format!("{}: {e}", files.config.display()))
            })?;
            let device = model::device::select(opts.device, family)?;
            // the tokenizer (a JSON parse of its vocabulary) loads on a second thread while the
            // weights are read (MiniLM: its ~30-40 ms overlap the weights' ~100 ms)
            let (tokenizer, model) = std::thread::scope(|scope| {
                let tokenizer = scope.spawn(|| TextTokenizer::load(&files, config.pad_token_id));
                let model = model::load(&files, &config, head, &device);
                let tokenizer = tokenizer.join().unwrap_or_else(|_| {
                    Err(ToolkitError::Internal(
                        "loading the tokenizer panicked".into(),
                    ))
                });
                (tokenizer, model)
            });
            let encoder = TextEncoder::new(tokenizer?, model?, config, opts)?;
            build(EncoderParts {
                files: &files,
                encoder,
            })
        }
    }
}

/// Builds the pipeline of `task` over an encoder whose task needs no head weights of its own
/// (feature-extraction, text-classification, zero-shot-classification): tests use it with a
/// stub model.
pub fn from_encoder(task: Task, encoder: TextEncoder) -> Result<Box<dyn Pipeline>, ToolkitError> {
    match task {
        Task::FeatureExtraction => Ok(Box::new(FeatureExtractionPipeline::new(encoder))),
        Task::TextClassification => Ok(Box::new(TextClassificationPipeline::new(encoder)?)),
        Task::ZeroShotClassification => Ok(Box::new(ZeroShotClassificationPipeline::new(encoder)?)),
        Task::FillMask | Task::TokenClassification | Task::QuestionAnswering => {
            Err(ToolkitError::Config(format!(
                "{task} also needs its head's weights: build it with pipeline::load"
            )))
        }
        other => registration(other).and_then(|_| {
            Err(ToolkitError::Config(format!(
                "{other} is not an encoder task: build it with pipeline::load"
            )))
        }),
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
            tokenizer: tokenizer.with_max_tokens(opts.max_request_tokens),
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

    /// A fresh budget of [`Self::max_request_tokens`], charged as a request's texts are
    /// tokenized.
    pub fn budget(&self) -> TokenBudget {
        TokenBudget::new(self.max_request_tokens)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_serves_exactly_the_implemented_tasks_once() {
        for t in Task::ALL {
            let lines = REGISTRY.iter().filter(|r| r.task == t).count();
            assert_eq!(
                lines,
                usize::from(t.is_implemented()),
                "{t}: {lines} registry lines"
            );
        }
    }

    #[test]
    fn a_raw_body_is_refused_by_a_json_task_with_415() {
        let input = Input::Raw {
            media_type: "image/png",
            body: Bytes::from_static(b"\x89PNG"),
            parameters: None,
        };
        let e = input.into_json(Task::TextClassification).unwrap_err();
        assert_eq!(e.status(), 415, "{e}");
        assert!(e.to_string().contains("image/png"), "{e}");
    }
}
