//! The generative pipelines: `text-generation` (and chat, the toolkit's `conversational`),
//! `text2text-generation`, `summarization` and `translation`, with transformers 4.51's
//! `TextGenerationPipeline` / `Text2TextGenerationPipeline` semantics: parameters split between
//! the pipeline and `generate`, prompt prefixes, chat templates, prompt stripping by decoded
//! length, return types and output nesting.

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::context::{CallerGone, Context, TokenSink};
use crate::error::ToolkitError;
use crate::generate::chat::ChatTemplate;
use crate::generate::config::GenerationConfig;
use crate::generate::scheduler::Scheduler;
use crate::generate::search::{Prompt, Search, StopCheck};
use crate::generate::LanguageModel;
use crate::model::loader::ModelFiles;
use crate::model::Family;
use crate::pipeline::{GenerativeParts, Input, LoadOptions, Pipeline, PipelineOutput, TokenText};
use crate::task::{Task, TaskSpec};
use crate::tokenize::{TextTokenizer, TokenizeOptions, TruncationStrategy};
use crate::types::TruncationArg;

/// The registry's constructor of every generative task.
pub(crate) fn build(parts: GenerativeParts<'_>) -> Result<Box<dyn Pipeline>, ToolkitError> {
    Ok(Box::new(GenerationPipeline::load(
        parts.files,
        parts.config,
        parts.family,
        parts.spec,
        parts.opts,
    )?))
}

impl Pipeline for GenerationPipeline {
    fn task(&self) -> Task {
        self.task
    }

    fn run(&self, input: Input, ctx: Context) -> Result<PipelineOutput, ToolkitError> {
        let request = input.into_json(self.task)?;
        self.run_request(request, ctx)
    }

    fn warm_up_input(&self) -> Input {
        Input::Json(json!({"inputs": "warm up", "parameters": {"max_new_tokens": 1}}))
    }

    fn token_text(&self) -> Option<&dyn TokenText> {
        Some(self)
    }
}

impl TokenText for GenerationPipeline {
    fn decode(&self, ids: &[u32]) -> Result<String, ToolkitError> {
        GenerationPipeline::decode(self, ids)
    }
}

/// Caps of a generative server.
#[derive(Debug, Clone, Copy)]
pub struct GenerationLimits {
    /// The most new tokens one sequence may ask for (`HF_MAX_NEW_TOKENS`).
    pub max_new_tokens: usize,
    /// The most prompt tokens (all inputs of a request together; `HF_MAX_REQUEST_TOKENS`).
    pub max_input_tokens: usize,
}

/// A loaded generative pipeline.
pub struct GenerationPipeline {
    task: Task,
    model: Arc<dyn LanguageModel>,
    scheduler: Scheduler,
    tokenizer: Arc<TextTokenizer>,
    base: GenerationConfig,
    prefix: Option<String>,
    chat: Option<ChatTemplate>,
    limits: GenerationLimits,
    /// `(source, target)` languages of a `translation_xx_to_yy` task.
    languages: Option<(String, String)>,
}

impl std::fmt::Debug for GenerationPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerationPipeline")
            .field("task", &self.task)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn read_json(path: &Path) -> Result<Value, ToolkitError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ToolkitError::model_load_with(format!("cannot read {}", path.display()), e))?;
    serde_json::from_str(&text)
        .map_err(|e| ToolkitError::model_load(format!("{} is not valid JSON: {e}", path.display())))
}

/// How a parameter value reads as a Python truth value (`if return_tensors:`).
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// What a text-generation record returns (`ReturnType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReturnType {
    Tensors,
    NewText,
    FullText,
}

/// One prompt of a request, ready to generate.
struct PreparedPrompt {
    ids: Vec<u32>,
    /// Ids of the prompt as decoded for stripping (`None` when generation starts from BOS).
    prompt_ids: Option<Vec<u32>>,
    /// The original input: a string, or the chat messages.
    original: Value,
    continue_final: bool,
}

/// Pipeline parameters (those `generate` does not see).
struct Options {
    return_type: ReturnType,
    clean_up: bool,
    truncation: Option<TruncationStrategy>,
    tokenizer_max_length: Option<usize>,
    add_special_tokens: Option<bool>,
    prefix: Option<String>,
    continue_final_message: Option<bool>,
    stop_strings: Vec<String>,
}

impl GenerationPipeline {
    /// Loads the model, tokenizer and generation settings of `files` for `spec`.
    pub fn load(
        files: &ModelFiles,
        config: &Value,
        family: Family,
        spec: &TaskSpec,
        opts: &LoadOptions,
    ) -> Result<Self, ToolkitError> {
        // generators run on the CPU kernels (the device seam refused an impossible HF_DEVICE)
        let model_type = family.model_type();
        let model = family.load_language_model(files, config)?;
        let task = match spec.task {
            Task::Conversational => Task::TextGeneration,
            t => t,
        };
        match (task, model.is_encoder_decoder()) {
            (Task::TextGeneration, true) => {
                return Err(ToolkitError::Config(format!(
                    "{model_type} is an encoder-decoder model: serve it with HF_TASK=text2text-generation, summarization or translation"
                )))
            }
            (Task::Text2TextGeneration | Task::Summarization | Task::Translation, false) => {
                return Err(ToolkitError::Config(format!(
                    "{model_type} is a decoder-only model: serve it with HF_TASK=text-generation"
                )))
            }
            _ => {}
        }
        let gen_json = files
            .dir
            .join("generation_config.json")
            .is_file()
            .then(|| read_json(&files.dir.join("generation_config.json")))
            .transpose()?;
        let mut base = GenerationConfig::for_model(gen_json.as_ref(), config)?;
        // the pipeline's task key in task_specific_params: "translation" picks the first
        // translation_* entry, as transformers' pipeline() does
        let tsp = config
            .get("task_specific_params")
            .and_then(Value::as_object);
        let mut languages = spec.languages.clone();
        let key = match (task, tsp) {
            (Task::Translation, Some(t)) if spec.languages.is_none() => t
                .keys()
                .find(|k| k.starts_with("translation"))
                .cloned()
                .unwrap_or_else(|| "translation".into()),
            _ => spec.requested.clone(),
        };
        if languages.is_none() {
            if let Ok(TaskSpec {
                languages: Some(l), ..
            }) = key.parse::<TaskSpec>()
            {
                languages = Some(l);
            }
        }
        let mut prefix = config
            .get("prefix")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(params) = tsp.and_then(|t| t.get(&key)).and_then(Value::as_object) {
            let mut params = params.clone();
            if let Some(p) = params.remove("prefix") {
                prefix = p.as_str().map(str::to_owned);
            }
            base.update(&params).map_err(|e| {
                ToolkitError::model_load(format!(
                    "invalid task_specific_params[{key:?}] in config.json: {e}"
                ))
            })?;
            base.max_length_from_request = false;
        }
        let tokenizer_config = match &files.tokenizer_config {
            Some(p) => read_json(p)?,
            None => Value::Null,
        };
        let tokenizer = TextTokenizer::load(files, base.pad_token_id.unwrap_or(0))?
            .with_max_tokens(opts.max_request_tokens);
        if base.pad_token_id.is_none() {
            base.pad_token_id = tokenizer_config
                .get("pad_token")
                .and_then(|v| {
                    v.as_str()
                        .or_else(|| v.get("content").and_then(Value::as_str))
                })
                .and_then(|t| tokenizer.token_to_id(t));
        }
        let chat = ChatTemplate::from_tokenizer_config(&tokenizer_config)?;
        let scheduler = Scheduler::start(Arc::clone(&model), opts.max_batch_size.max(1) * 4)?;
        Ok(Self {
            task,
            model,
            scheduler,
            tokenizer: Arc::new(tokenizer),
            base,
            prefix,
            chat,
            limits: GenerationLimits {
                max_new_tokens: opts.max_new_tokens.max(1),
                max_input_tokens: opts.max_request_tokens.max(1),
            },
            languages,
        })
    }

    /// The task served.
    pub fn task(&self) -> Task {
        self.task
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// Whether the model has a chat template.
    pub fn has_chat_template(&self) -> bool {
        self.chat.is_some()
    }

    /// The `(source, target)` languages of a translation task.
    pub fn languages(&self) -> Option<&(String, String)> {
        self.languages.as_ref()
    }

    fn name(&self) -> &'static str {
        match self.task {
            Task::Summarization => "summary",
            Task::Translation => "translation",
            _ => "generated",
        }
    }

    /// Splits `parameters` into pipeline options and a generation configuration.
    fn parameters(
        &self,
        params: Option<&Value>,
    ) -> Result<(Options, GenerationConfig), ToolkitError> {
        let empty = Map::new();
        let params = match params {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(ToolkitError::Validation(format!(
                    "\"parameters\" must be an object, not {other}"
                )))
            }
        };
        let decoder_only = self.task == Task::TextGeneration;
        let mut gen = Map::new();
        let mut o = Options {
            return_type: if decoder_only {
                ReturnType::FullText
            } else {
                ReturnType::NewText
            },
            clean_up: decoder_only,
            truncation: None,
            tokenizer_max_length: None,
            add_special_tokens: None,
            prefix: None,
            continue_final_message: None,
            stop_strings: Vec::new(),
        };
        let (mut return_full_text, mut return_tensors, mut return_text) = (None, None, None);
        for (k, v) in params {
            match k.as_str() {
                "return_full_text" if decoder_only => return_full_text = Some(v.clone()),
                "return_tensors" => return_tensors = Some(v.clone()),
                "return_text" => return_text = Some(v.clone()),
                "return_type" => {
                    o.return_type = match v.as_u64() {
                        Some(0) => ReturnType::Tensors,
                        Some(1) => ReturnType::NewText,
                        Some(2) if decoder_only => ReturnType::FullText,
                        _ => {
                            return Err(ToolkitError::InvalidParameters(format!(
                                "`return_type` must be 0 (tensors) or 1 (text){}, not {v}",
                                if decoder_only {
                                    " or 2 (full text)"
                                } else {
                                    ""
                                }
                            )))
                        }
                    }
                }
                "clean_up_tokenization_spaces" => o.clean_up = truthy(v),
                "truncation" => {
                    let arg: TruncationArg = serde_json::from_value(v.clone()).map_err(|_| {
                        ToolkitError::InvalidParameters(format!(
                            "`truncation` must be a boolean or a strategy name, not {v}"
                        ))
                    })?;
                    o.truncation = arg.strategy()?;
                }
                "add_special_tokens" if decoder_only => o.add_special_tokens = Some(truthy(v)),
                "padding" if decoder_only => {}
                "prefix" if decoder_only => o.prefix = v.as_str().map(str::to_owned),
                "handle_long_generation" if decoder_only => {
                    if !v.is_null() {
                        return Err(ToolkitError::InvalidParameters(format!(
                            "{v} is not a valid value for `handle_long_generation` parameter expected [None, 'hole']; 'hole' is not supported by this server"
                        )));
                    }
                }
                "continue_final_message" if decoder_only => {
                    o.continue_final_message = if v.is_null() { None } else { Some(truthy(v)) }
                }
                "src_lang" | "tgt_lang" if self.task == Task::Translation => {}
                "stop_sequence" => {
                    if let Some(s) = v.as_str() {
                        let ids = self
                            .tokenizer
                            .encode(
                                s,
                                None,
                                &TokenizeOptions {
                                    add_special_tokens: false,
                                    ..Default::default()
                                },
                            )?
                            .ids;
                        // text-generation: every id of the stop sequence ends generation;
                        // text2text: only the first
                        let ids: Vec<u32> = if decoder_only {
                            ids
                        } else {
                            ids.into_iter().take(1).collect()
                        };
                        gen.insert("eos_token_id".into(), json!(ids));
                    }
                }
                "stop" => {
                    o.stop_strings = match v {
                        Value::String(s) => vec![s.clone()],
                        Value::Array(a) => a
                            .iter()
                            .map(|s| {
                                s.as_str().map(str::to_owned).ok_or_else(|| {
                                    ToolkitError::InvalidParameters(
                                        "`stop` must be a string or a list of strings".into(),
                                    )
                                })
                            })
                            .collect::<Result<_, _>>()?,
                        Value::Null => Vec::new(),
                        _ => {
                            return Err(ToolkitError::InvalidParameters(
                                "`stop` must be a string or a list of strings".into(),
                            ))
                        }
                    }
                }
                "max_length" if decoder_only => {
                    // goes to the tokenizer as well as to generate
                    o.tokenizer_max_length = v.as_u64().map(|n| n as usize);
                    gen.insert(k.clone(), v.clone());
                }
                // ours: streaming is decided by the front-end; details are not returned here
                "stream" | "details" | "decoder_input_details" => {}
                _ => {
                    gen.insert(k.clone(), v.clone());
                }
            }
        }
        if decoder_only {
            match (&return_full_text, &return_tensors, &return_text) {
                (Some(_), _, Some(_)) => {
                    return Err(ToolkitError::InvalidParameters(
                        "`return_text` is mutually exclusive with `return_full_text`".into(),
                    ))
                }
                (Some(_), Some(_), _) => {
                    return Err(ToolkitError::InvalidParameters(
                        "`return_full_text` is mutually exclusive with `return_tensors`".into(),
                    ))
                }
                (Some(f), None, None) => {
                    o.return_type = if truthy(f) {
                        ReturnType::FullText
                    } else {
                        ReturnType::NewText
                    }
                }
                (None, Some(_), Some(_)) => {
                    return Err(ToolkitError::InvalidParameters(
                        "`return_text` is mutually exclusive with `return_tensors`".into(),
                    ))
                }
                // transformers checks only that return_tensors is present
                (None, Some(_), None) => o.return_type = ReturnType::Tensors,
                _ => {}
            }
        } else if let Some(t) = &return_tensors {
            o.return_type = if truthy(t) {
                ReturnType::Tensors
            } else {
                ReturnType::NewText
            };
        }
        let mut cfg = self.base.clone();
        let unused = cfg.update(&gen)?;
        if !unused.is_empty() {
            let list: Vec<String> = unused.iter().map(|k| format!("'{k}'")).collect();
            return Err(ToolkitError::InvalidParameters(format!(
                "The following `model_kwargs` are not used by the model: [{}] (note: typos in the generate arguments will also show up in this list)",
                list.join(", ")
            )));
        }
        if !o.stop_strings.is_empty() {
            cfg.stop_strings.extend(o.stop_strings.iter().cloned());
        }
        Ok((o, cfg))
    }

    /// Runs a validated request; with a token sink in `ctx`, each new token of a
    /// single-sequence generation is passed to it as it is produced (and `false` from it stops
    /// the generation). Generation stops once `ctx`'s caller is gone.
    pub fn run_request(
        &self,
        request: Value,
        ctx: Context,
    ) -> Result<PipelineOutput, ToolkitError> {
        let (inputs, params) = match request {
            Value::Object(mut m) => {
                let params = m.remove("parameters");
                match m.remove("inputs") {
                    Some(i) => (i, params),
                    None => (legacy_conversation(Value::Object(m))?, params),
                }
            }
            other => (other, None),
        };
        let (opts, cfg) = self.parameters(params.as_ref())?;
        let Context { gone, tokens } = ctx;
        let mut sink = tokens;
        if self.task == Task::TextGeneration {
            self.run_text_generation(inputs, &opts, &cfg, &mut sink, &gone)
        } else {
            self.run_text2text(inputs, &opts, &cfg, &mut sink, &gone)
        }
    }

    fn run_text_generation(
        &self,
        inputs: Value,
        opts: &Options,
        cfg: &GenerationConfig,
        sink: &mut Option<TokenSink>,
        gone: &CallerGone,
    ) -> Result<PipelineOutput, ToolkitError> {
        // a string; a chat (list of messages); a list of chats; or a list of strings
        let (items, batched): (Vec<Value>, bool) = match inputs {
            Value::String(_) => (vec![inputs], false),
            Value::Array(list) => match list.first() {
                None => {
                    return Err(ToolkitError::Validation(
                        "\"inputs\" is an empty list; send a string, a list of strings or a list of chat messages".into(),
                    ))
                }
                Some(Value::Object(_)) => (vec![Value::Array(list)], false),
                Some(_) => (list, true),
            },
            other => {
                return Err(ToolkitError::Validation(format!(
                    "\"inputs\" must be a string, a list of strings or a list of chat messages, not {other}"
                )))
            }
        };
        let mut jobs = Vec::with_capacity(items.len());
        let mut total = 0;
        for item in items {
            let job = self.prepare_prompt(item, opts)?;
            total += job.ids.len();
            // checked prompt by prompt: a request of many prompts stops at the first past it
            if total > self.limits.max_input_tokens {
                return Err(ToolkitError::InputTooLong(format!(
                    "the request holds more than {} prompt tokens, the limit per request (HF_MAX_REQUEST_TOKENS)",
                    self.limits.max_input_tokens
                )));
            }
            jobs.push(job);
        }
        let prefix_len = match opts.prefix.as_ref().or(self.prefix.as_ref()) {
            Some(p) if !p.is_empty() => {
                let add = opts.add_special_tokens.unwrap_or(false);
                self.tokenizer
                    .encode(
                        p,
                        None,
                        &TokenizeOptions {
                            add_special_tokens: add,
                            ..Default::default()
                        },
                    )?
                    .ids
                    .len()
            }
            _ => 0,
        };
        let mut cfg = cfg.clone();
        if prefix_len > 0 {
            // _forward: lengths given without max_new_tokens grow by the prefix
            if cfg.max_new_tokens.is_none() {
                cfg.max_length += prefix_len;
                cfg.max_length_from_request = true;
            }
            if cfg.min_new_tokens.is_none() && cfg.min_length > 0 {
                cfg.min_length += prefix_len as i64;
            }
        }
        let streaming = sink.is_some() && jobs.len() == 1;
        let mut out = Vec::with_capacity(jobs.len());
        for job in jobs {
            let seqs = self.generate(
                &job.ids,
                cfg.clone(),
                if streaming { sink.take() } else { None },
                gone,
            )?;
            let records = seqs
                .iter()
                .map(|seq| self.text_record(seq, &job, opts))
                .collect::<Result<Vec<_>, _>>()?;
            out.push(Value::Array(records));
        }
        Ok(PipelineOutput::Json(if batched {
            Value::Array(out)
        } else {
            out.pop().unwrap_or(Value::Array(vec![]))
        }))
    }

    /// Tokenizes one text-generation input (a prompt string or a chat).
    fn prepare_prompt(&self, item: Value, opts: &Options) -> Result<PreparedPrompt, ToolkitError> {
        let tok_opts = |add: bool| TokenizeOptions {
            truncation: opts.truncation.or(opts
                .tokenizer_max_length
                .map(|_| TruncationStrategy::LongestFirst)),
            max_length: opts.tokenizer_max_length,
            add_special_tokens: add,
            ..Default::default()
        };
        match item {
            Value::String(text) => {
                let prefix = opts
                    .prefix
                    .as_ref()
                    .or(self.prefix.as_ref())
                    .cloned()
                    .unwrap_or_default();
                let ids = self
                    .tokenizer
                    .encode(
                        &format!("{prefix}{text}"),
                        None,
                        &tok_opts(opts.add_special_tokens.unwrap_or(true)),
                    )?
                    .ids;
                let prompt_ids = (!ids.is_empty()).then(|| ids.clone());
                Ok(PreparedPrompt {
                    ids,
                    prompt_ids,
                    original: Value::String(text),
                    continue_final: false,
                })
            }
            Value::Array(messages) => {
                for m in &messages {
                    let ok = m
                        .as_object()
                        .is_some_and(|o| o.contains_key("role") && o.contains_key("content"));
                    if !ok {
                        return Err(ToolkitError::Validation(
                            "When passing chat dicts as input, each dict must have a 'role' and 'content' key.".into(),
                        ));
                    }
                }
                let chat = self.chat.as_ref().ok_or_else(|| {
                    ToolkitError::InvalidParameters(
                        "Cannot use chat template functions because tokenizer.chat_template is not set and no template argument was passed! This model has no chat template in its tokenizer_config.json: send plain text prompts, or use a chat model.".into(),
                    )
                })?;
                let last_is_assistant = messages
                    .last()
                    .and_then(|m| m.get("role"))
                    .and_then(Value::as_str)
                    == Some("assistant");
                let cfm = opts.continue_final_message.unwrap_or(last_is_assistant);
                let messages = Value::Array(messages);
                let text = chat.render(&messages, !cfm, cfm)?;
                let ids = self.tokenizer.encode(&text, None, &tok_opts(false))?.ids;
                let prompt_ids = (!ids.is_empty()).then(|| ids.clone());
                Ok(PreparedPrompt {
                    ids,
                    prompt_ids,
                    original: messages,
                    continue_final: cfm,
                })
            }
            other => Err(ToolkitError::Validation(format!(
                "each input must be a string or a list of chat messages, not {other}"
            ))),
        }
    }

    /// Generates for one prompt; returns the sequences (as transformers' `generate` would).
    fn generate(
        &self,
        ids: &[u32],
        cfg: GenerationConfig,
        sink: Option<TokenSink>,
        gone: &CallerGone,
    ) -> Result<Vec<Vec<u32>>, ToolkitError> {
        // a list of prompts whose caller is gone (timed out, disconnected) stops before the
        // next one's prefill (the scheduler drops a running search at its next step)
        if gone.is_gone() {
            return Err(CallerGone::error());
        }
        let stop = self.stop_check(&cfg);
        let search = Search::new(
            self.model.as_ref(),
            cfg,
            &Prompt { ids: ids.to_vec() },
            stop,
        )?;
        let resolved = search.config();
        let new = resolved.max_length.saturating_sub(search.prompt_len());
        if new > self.limits.max_new_tokens {
            return Err(ToolkitError::InvalidParameters(format!(
                "this request would generate up to {new} new tokens, more than the limit of {} (HF_MAX_NEW_TOKENS); ask for fewer with max_new_tokens",
                self.limits.max_new_tokens
            )));
        }
        if let Some(p) = self.model.position_limit() {
            if !self.model.is_encoder_decoder() && resolved.max_length > p {
                return Err(ToolkitError::InputTooLong(format!(
                    "the prompt ({} tokens) and up to {new} new tokens exceed the model's {p} positions; shorten the prompt or lower max_new_tokens",
                    search.prompt_len()
                )));
            }
        }
        let prompt_len = search.prompt_len();
        let seqs = self.scheduler.run(search, sink, gone.clone())?.finish();
        // a decoder-only model's sequences start with the prompt
        let skip = if self.model.is_encoder_decoder() {
            0
        } else {
            prompt_len
        };
        crate::stats::record_generation(
            prompt_len,
            seqs.iter().map(|s| s.len().saturating_sub(skip)).sum(),
        );
        Ok(seqs)
    }

    /// A stop-string check over the tokenizer (`StopStringCriteria`: the sequence's text ends
    /// with a stop string that ends inside its last token).
    fn stop_check(&self, cfg: &GenerationConfig) -> Option<StopCheck> {
        if cfg.stop_strings.is_empty() {
            return None;
        }
        let stops = cfg.stop_strings.clone();
        let window = stops.iter().map(|s| s.chars().count()).max().unwrap_or(1);
        let tok = Arc::clone(&self.tokenizer);
        Some(Box::new(move |ids: &[u32]| {
            if ids.is_empty() {
                return false;
            }
            let from = ids.len().saturating_sub(window + 1);
            let (Ok(full), Ok(before)) = (
                tok.decode_with(&ids[from..], false, false),
                tok.decode_with(&ids[from..ids.len() - 1], false, false),
            ) else {
                return false;
            };
            let start = before.len().min(full.len());
            stops.iter().any(|s| {
                (start..=full.len())
                    .filter(|&end| full.is_char_boundary(end) && end > start)
                    .any(|end| full[..end].ends_with(s.as_str()))
            })
        }))
    }

    fn text_record(
        &self,
        seq: &[u32],
        job: &PreparedPrompt,
        opts: &Options,
    ) -> Result<Value, ToolkitError> {
        if opts.return_type == ReturnType::Tensors {
            return Ok(json!({ "generated_token_ids": seq }));
        }
        let text = self.tokenizer.decode_with(seq, true, opts.clean_up)?;
        let prompt_chars = match &job.prompt_ids {
            Some(p) => self
                .tokenizer
                .decode_with(p, true, opts.clean_up)?
                .chars()
                .count(),
            None => 0,
        };
        let new_text: String = text.chars().skip(prompt_chars).collect();
        let generated = match (opts.return_type, &job.original) {
            (ReturnType::FullText, Value::String(prompt)) => {
                Value::String(format!("{prompt}{new_text}"))
            }
            (ReturnType::FullText, Value::Array(messages)) => {
                let mut messages = messages.clone();
                if job.continue_final {
                    if let Some(Value::Object(last)) = messages.last_mut() {
                        let content = last
                            .get("content")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned();
                        last.insert("content".into(), Value::String(content + &new_text));
                    }
                } else {
                    messages.push(json!({"role": "assistant", "content": new_text}));
                }
                Value::Array(messages)
            }
            _ => Value::String(new_text),
        };
        Ok(json!({ "generated_text": generated }))
    }

    fn run_text2text(
        &self,
        inputs: Value,
        opts: &Options,
        cfg: &GenerationConfig,
        sink: &mut Option<TokenSink>,
        gone: &CallerGone,
    ) -> Result<PipelineOutput, ToolkitError> {
        let (texts, batched) = match inputs {
            Value::String(s) => (vec![s], false),
            Value::Array(items) => {
                let texts = items
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s),
                        other => Err(ToolkitError::Validation(format!(
                            "each input must be a string, not {other}"
                        ))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (texts, true)
            }
            other => {
                return Err(ToolkitError::Validation(format!(
                    "\"inputs\" must be a string or a list of strings, not {other}"
                )))
            }
        };
        let prefix = self.prefix.clone().unwrap_or_default();
        let tok_opts = TokenizeOptions {
            truncation: opts.truncation,
            ..Default::default()
        };
        let mut encoded = Vec::with_capacity(texts.len());
        let mut total = 0;
        for t in &texts {
            let ids = self
                .tokenizer
                .encode(&format!("{prefix}{t}"), None, &tok_opts)?
                .ids;
            total += ids.len();
            if total > self.limits.max_input_tokens {
                return Err(ToolkitError::InputTooLong(format!(
                    "the request holds more than {} input tokens, the limit per request (HF_MAX_REQUEST_TOKENS)",
                    self.limits.max_input_tokens
                )));
            }
            encoded.push(ids);
        }
        let streaming = sink.is_some() && encoded.len() == 1;
        let name = self.name();
        let mut results = Vec::with_capacity(encoded.len());
        for ids in &encoded {
            let seqs = self.generate(
                ids,
                cfg.clone(),
                if streaming { sink.take() } else { None },
                gone,
            )?;
            let records = seqs
                .iter()
                .map(|seq| {
                    Ok(if opts.return_type == ReturnType::Tensors {
                        json!({ format!("{name}_token_ids"): seq })
                    } else {
                        json!({ format!("{name}_text"): self.tokenizer.decode_with(seq, true, opts.clean_up)? })
                    })
                })
                .collect::<Result<Vec<Value>, ToolkitError>>()?;
            results.push(records);
        }
        // a list of strings each answered once is flattened, as the pipeline's __call__ does
        let out = if !batched {
            Value::Array(results.pop().unwrap_or_default())
        } else if results.iter().all(|r| r.len() == 1) {
            Value::Array(results.into_iter().flatten().collect())
        } else {
            Value::Array(results.into_iter().map(Value::Array).collect())
        };
        Ok(PipelineOutput::Json(out))
    }

    /// Decodes tokens for streaming: the text of `ids` (skipping special tokens).
    pub fn decode(&self, ids: &[u32]) -> Result<String, ToolkitError> {
        self.tokenizer.decode_with(ids, true, false)
    }
}

/// The conversational pipeline's old input (`{"text", "past_user_inputs",
/// "generated_responses"}`) as chat messages; anything else is returned as it is.
fn legacy_conversation(body: Value) -> Result<Value, ToolkitError> {
    let Some(text) = body.get("text").and_then(Value::as_str) else {
        return Ok(body);
    };
    if body.get("past_user_inputs").is_none() && body.get("generated_responses").is_none() {
        return Ok(body);
    }
    let strings = |k: &str| -> Vec<String> {
        body.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (users, bots) = (strings("past_user_inputs"), strings("generated_responses"));
    let mut messages = Vec::new();
    for (i, u) in users.iter().enumerate() {
        messages.push(json!({"role": "user", "content": u}));
        if let Some(b) = bots.get(i) {
            messages.push(json!({"role": "assistant", "content": b}));
        }
    }
    messages.push(json!({"role": "user", "content": text}));
    Ok(Value::Array(messages))
}
