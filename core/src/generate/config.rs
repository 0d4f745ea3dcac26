//! The generation configuration: `generation_config.json` (or the generation keys of
//! `config.json`) as defaults, a task's `task_specific_params`, and a request's `parameters` over
//! them, validated as transformers' `GenerationConfig.validate` and the logits processors'
//! constructors do, but with a 400 naming the parameter instead of a crash.

use serde_json::{Map, Value};

use crate::error::ToolkitError;

/// `early_stopping`: `true`, `false` (the heuristic) or `"never"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EarlyStopping {
    /// Stop a beam search when `num_beams` hypotheses are finished.
    True,
    /// Stop when the best running beam cannot beat the worst finished one at its current length.
    #[default]
    Heuristic,
    /// Stop only when no better hypothesis is possible at all.
    Never,
}

/// Decoding settings, with transformers' defaults (`GenerationConfig.__init__`).
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    /// Total length (prompt included for decoder-only models, the decoder start included for
    /// encoder-decoders); 20 means "20 new tokens" unless set explicitly.
    pub max_length: usize,
    /// Whether `max_length` came from the request (transformers' `has_default_max_length`).
    pub max_length_from_request: bool,
    /// New tokens at most; wins over `max_length`.
    pub max_new_tokens: Option<usize>,
    /// Minimum total length before EOS is allowed.
    pub min_length: i64,
    /// Minimum new tokens before EOS is allowed.
    pub min_new_tokens: Option<i64>,
    /// Sampling instead of greedy / beam search.
    pub do_sample: bool,
    /// Beam count.
    pub num_beams: usize,
    /// Beam search stopping rule.
    pub early_stopping: EarlyStopping,
    /// Sampling temperature.
    pub temperature: f64,
    /// Top-k filter (0 = off).
    pub top_k: usize,
    /// Nucleus filter.
    pub top_p: f64,
    /// Typical-p filter.
    pub typical_p: f64,
    /// Min-p filter.
    pub min_p: Option<f64>,
    /// Epsilon sampling cutoff.
    pub epsilon_cutoff: f64,
    /// Eta sampling cutoff.
    pub eta_cutoff: f64,
    /// Repetition penalty (1 = off).
    pub repetition_penalty: f64,
    /// Encoder repetition penalty (1 = off).
    pub encoder_repetition_penalty: f64,
    /// Beam length penalty exponent.
    pub length_penalty: f64,
    /// Forbids repeating n-grams of this size (0 = off).
    pub no_repeat_ngram_size: usize,
    /// Forbids repeating n-grams of the encoder input (0 = off).
    pub encoder_no_repeat_ngram_size: usize,
    /// Token sequences never to generate.
    pub bad_words_ids: Option<Vec<Vec<u32>>>,
    /// Sequences returned per input.
    pub num_return_sequences: usize,
    /// Beginning-of-sequence id.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence ids.
    pub eos_token_id: Option<Vec<u32>>,
    /// Padding id.
    pub pad_token_id: Option<u32>,
    /// First decoder token of encoder-decoders.
    pub decoder_start_token_id: Option<u32>,
    /// Token forced at the first generated position.
    pub forced_bos_token_id: Option<u32>,
    /// Tokens forced at the last position.
    pub forced_eos_token_id: Option<Vec<u32>>,
    /// `(start, factor)` of the exponential decay length penalty.
    pub exponential_decay_length_penalty: Option<(usize, f64)>,
    /// Tokens never generated.
    pub suppress_tokens: Option<Vec<u32>>,
    /// Tokens not generated at the first position.
    pub begin_suppress_tokens: Option<Vec<u32>>,
    /// NaN/inf logits replaced.
    pub remove_invalid_values: bool,
    /// Log-softmax after the processors.
    pub renormalize_logits: bool,
    /// Strings that end generation when the text ends with one.
    pub stop_strings: Vec<String>,
    /// Seed of the sampler (ours: transformers uses torch's global generator).
    pub seed: Option<u64>,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            max_length: 20,
            max_length_from_request: false,
            max_new_tokens: None,
            min_length: 0,
            min_new_tokens: None,
            do_sample: false,
            num_beams: 1,
            early_stopping: EarlyStopping::Heuristic,
            temperature: 1.0,
            top_k: 50,
            top_p: 1.0,
            typical_p: 1.0,
            min_p: None,
            epsilon_cutoff: 0.0,
            eta_cutoff: 0.0,
            repetition_penalty: 1.0,
            encoder_repetition_penalty: 1.0,
            length_penalty: 1.0,
            no_repeat_ngram_size: 0,
            encoder_no_repeat_ngram_size: 0,
            bad_words_ids: None,
            num_return_sequences: 1,
            bos_token_id: None,
            eos_token_id: None,
            pad_token_id: None,
            decoder_start_token_id: None,
            forced_bos_token_id: None,
            forced_eos_token_id: None,
            exponential_decay_length_penalty: None,
            suppress_tokens: None,
            begin_suppress_tokens: None,
            remove_invalid_values: false,
            renormalize_logits: false,
            stop_strings: Vec::new(),
            seed: None,
        }
    }
}

/// `GenerationConfig` attributes that change nothing in the output here (what to return beside
/// the sequences, caching, compilation): accepted and ignored, as transformers does.
const NO_EFFECT: &[&str] = &[
    "use_cache",
    "output_scores",
    "output_logits",
    "output_attentions",
    "output_hidden_states",
    "return_dict_in_generate",
    "return_legacy_cache",
    "cache_implementation",
    "cache_config",
    "compile_config",
    "disable_compile",
    "low_memory",
    "max_time",
    "is_assistant",
    "num_assistant_tokens",
    "num_assistant_tokens_schedule",
    "assistant_confidence_threshold",
    "prompt_lookup_num_tokens",
    "max_matching_ngram_size",
    "dola_layers",
    "token_healing",
    "guidance_scale",
    "transformers_version",
    "_from_model_config",
    "_commit_hash",
    "generation_kwargs",
    "watermarking_config",
];

/// `GenerationConfig` attributes whose decoding modes this server does not offer.
const UNSUPPORTED: &[&str] = &[
    "num_beam_groups",
    "diversity_penalty",
    "penalty_alpha",
    "constraints",
    "force_words_ids",
    "sequence_bias",
    "forced_decoder_ids",
    "assistant_early_exit",
    "assistant_lookbehind",
    "target_lookbehind",
];

/// The most beams, and sequences returned, per input.
pub const MAX_SEQUENCES: usize = 32;

fn bad(name: &str, what: impl std::fmt::Display) -> ToolkitError {
    ToolkitError::InvalidParameters(format!("`{name}` {what}"))
}

fn as_count(name: &str, v: &Value) -> Result<usize, ToolkitError> {
    v.as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| bad(name, format!("must be a non-negative integer, but is {v}")))
}

fn as_int(name: &str, v: &Value) -> Result<i64, ToolkitError> {
    v.as_i64()
        .ok_or_else(|| bad(name, format!("must be an integer, but is {v}")))
}

fn as_float(name: &str, v: &Value) -> Result<f64, ToolkitError> {
    v.as_f64()
        .filter(|f| f.is_finite())
        .ok_or_else(|| bad(name, format!("must be a number, but is {v}")))
}

fn as_bool(name: &str, v: &Value) -> Result<bool, ToolkitError> {
    v.as_bool()
        .ok_or_else(|| bad(name, format!("must be true or false, but is {v}")))
}

fn as_id(name: &str, v: &Value) -> Result<u32, ToolkitError> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            bad(
                name,
                format!("must be a token id (a non-negative integer), but is {v}"),
            )
        })
}

/// An id or a list of ids (`eos_token_id: 2` or `[2, 32000]`).
fn as_ids(name: &str, v: &Value) -> Result<Vec<u32>, ToolkitError> {
    match v {
        Value::Array(items) => items.iter().map(|x| as_id(name, x)).collect(),
        other => Ok(vec![as_id(name, other)?]),
    }
}

fn opt<T>(
    name: &str,
    v: &Value,
    f: impl Fn(&str, &Value) -> Result<T, ToolkitError>,
) -> Result<Option<T>, ToolkitError> {
    if v.is_null() {
        Ok(None)
    } else {
        f(name, v).map(Some)
    }
}

impl GenerationConfig {
    /// Reads `generation_config.json` when the model has one (it replaces the model config's
    /// generation keys entirely, as in transformers), else the generation keys of `config.json`.
    pub fn for_model(
        generation_config: Option<&Value>,
        model_config: &Value,
    ) -> Result<Self, ToolkitError> {
        let mut c = GenerationConfig::default();
        let source = generation_config.unwrap_or(model_config);
        let Some(map) = source.as_object() else {
            return Ok(c);
        };
        let wrap = |e: ToolkitError| {
            ToolkitError::model_load(format!(
                "invalid generation settings in the model's {}: {e}",
                if generation_config.is_some() {
                    "generation_config.json"
                } else {
                    "config.json"
                }
            ))
        };
        for (k, v) in map {
            // config.json holds many other keys; only the generation ones apply
            if generation_config.is_none() && !Self::is_generation_key(k) {
                continue;
            }
            if UNSUPPORTED.contains(&k.as_str()) {
                continue; // defaults of modes we do not run: only a request can ask for them
            }
            c.set(k, v, false).map_err(wrap)?;
        }
        Ok(c)
    }

    fn is_generation_key(k: &str) -> bool {
        matches!(
            k,
            "max_length"
                | "min_length"
                | "do_sample"
                | "early_stopping"
                | "num_beams"
                | "temperature"
                | "top_k"
                | "top_p"
                | "typical_p"
                | "repetition_penalty"
                | "length_penalty"
                | "no_repeat_ngram_size"
                | "encoder_no_repeat_ngram_size"
                | "bad_words_ids"
                | "num_return_sequences"
                | "bos_token_id"
                | "eos_token_id"
                | "pad_token_id"
                | "decoder_start_token_id"
                | "forced_bos_token_id"
                | "forced_eos_token_id"
                | "exponential_decay_length_penalty"
                | "suppress_tokens"
                | "begin_suppress_tokens"
                | "remove_invalid_values"
        )
    }

    /// Applies `parameters` that name generation settings; returns the keys that do not (the
    /// pipeline decides what those are). Values are validated: a wrong type or range is a 400
    /// naming the parameter.
    pub fn update(&mut self, params: &Map<String, Value>) -> Result<Vec<String>, ToolkitError> {
        let mut rest = Vec::new();
        for (k, v) in params {
            if UNSUPPORTED.contains(&k.as_str()) {
                if v.is_null() {
                    continue;
                }
                return Err(ToolkitError::InvalidParameters(format!(
                    "`{k}` selects a decoding mode this server does not offer (group, contrastive or constrained beam search); supported: greedy, sampling, beam search and beam sampling"
                )));
            }
            if !self.set(k, v, true)? {
                rest.push(k.clone());
            }
        }
        self.validate()?;
        Ok(rest)
    }

    /// Sets one key; `false` when it is not a generation setting.
    fn set(&mut self, k: &str, v: &Value, from_request: bool) -> Result<bool, ToolkitError> {
        if NO_EFFECT.contains(&k) {
            return Ok(true);
        }
        match k {
            "max_length" => {
                if let Some(n) = opt(k, v, as_count)? {
                    self.max_length = n;
                    self.max_length_from_request = from_request;
                }
            }
            "max_new_tokens" => {
                self.max_new_tokens = match v {
                    Value::Null => None,
                    _ => {
                        let n = v.as_i64().ok_or_else(|| {
                            bad(k, format!("must be an integer, but is {v}"))
                        })?;
                        if n <= 0 {
                            return Err(bad(k, format!("must be greater than 0, but is {n}.")));
                        }
                        Some(n as usize)
                    }
                }
            }
            "min_length" => self.min_length = opt(k, v, as_int)?.unwrap_or(0),
            "min_new_tokens" => self.min_new_tokens = opt(k, v, as_int)?,
            "do_sample" => self.do_sample = opt(k, v, as_bool)?.unwrap_or(false),
            "num_beams" => {
                let n = opt(k, v, as_count)?.unwrap_or(1);
                if n == 0 {
                    return Err(bad(k, "must be at least 1"));
                }
                self.num_beams = n;
            }
            "early_stopping" => {
                self.early_stopping = match v {
                    Value::Bool(true) => EarlyStopping::True,
                    Value::Bool(false) | Value::Null => EarlyStopping::Heuristic,
                    Value::String(s) if s == "never" => EarlyStopping::Never,
                    other => {
                        return Err(bad(k, format!("must be a boolean or 'never', but is {other}.")))
                    }
                }
            }
            "temperature" => self.temperature = opt(k, v, as_float)?.unwrap_or(1.0),
            "top_k" => {
                self.top_k = match v {
                    Value::Null => 0,
                    _ => v.as_u64().map(|n| n as usize).ok_or_else(|| {
                        bad(k, format!("has to be a strictly positive integer, but is {v}"))
                    })?,
                }
            }
            "top_p" => self.top_p = opt(k, v, as_float)?.unwrap_or(1.0),
            "typical_p" => self.typical_p = opt(k, v, as_float)?.unwrap_or(1.0),
            "min_p" => self.min_p = opt(k, v, as_float)?,
            "epsilon_cutoff" => self.epsilon_cutoff = opt(k, v, as_float)?.unwrap_or(0.0),
            "eta_cutoff" => self.eta_cutoff = opt(k, v, as_float)?.unwrap_or(0.0),
            "repetition_penalty" => {
                self.repetition_penalty = opt(k, v, as_float)?.unwrap_or(1.0)
            }
            "encoder_repetition_penalty" => {
                self.encoder_repetition_penalty = opt(k, v, as_float)?.unwrap_or(1.0)
            }
            "length_penalty" => self.length_penalty = opt(k, v, as_float)?.unwrap_or(1.0),
            "no_repeat_ngram_size" => {
                // negative sizes are ignored by transformers
                self.no_repeat_ngram_size = opt(k, v, as_int)?.unwrap_or(0).max(0) as usize
            }
            "encoder_no_repeat_ngram_size" => {
                self.encoder_no_repeat_ngram_size = opt(k, v, as_int)?.unwrap_or(0).max(0) as usize
            }
            "bad_words_ids" => {
                self.bad_words_ids = match v {
                    Value::Null => None,
                    Value::Array(seqs) if !seqs.is_empty() => Some(
                        seqs.iter()
                            .map(|s| match s {
                                Value::Array(ids) if !ids.is_empty() => ids
                                    .iter()
                                    .map(|x| as_id(k, x))
                                    .collect::<Result<Vec<_>, _>>(),
                                other => Err(bad(
                                    k,
                                    format!("has to be a list of non-empty lists of token ids, but holds {other}"),
                                )),
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                    other => {
                        return Err(bad(k, format!("has to be a non-empty list of lists of token ids, but is {other}.")))
                    }
                }
            }
            "num_return_sequences" => {
                let n = opt(k, v, as_count)?.unwrap_or(1);
                if n == 0 {
                    return Err(bad(k, "must be at least 1"));
                }
                self.num_return_sequences = n;
            }
            "bos_token_id" => self.bos_token_id = opt(k, v, as_id)?,
            "eos_token_id" => self.eos_token_id = opt(k, v, as_ids)?,
            "pad_token_id" => {
                // a negative pad id only warns in transformers; it is never written out here
                self.pad_token_id = match v.as_i64() {
                    Some(n) if n < 0 => None,
                    _ => opt(k, v, as_id)?,
                }
            }
            "decoder_start_token_id" => self.decoder_start_token_id = opt(k, v, as_id)?,
            "forced_bos_token_id" => self.forced_bos_token_id = opt(k, v, as_id)?,
            "forced_eos_token_id" => self.forced_eos_token_id = opt(k, v, as_ids)?,
            "exponential_decay_length_penalty" => {
                self.exponential_decay_length_penalty = match v {
                    Value::Null => None,
                    Value::Array(p) if p.len() == 2 => {
                        Some((as_count(k, &p[0])?, as_float(k, &p[1])?))
                    }
                    other => {
                        return Err(bad(k, format!("must be [start_index, decay_factor], but is {other}")))
                    }
                }
            }
            "suppress_tokens" => self.suppress_tokens = opt(k, v, as_ids)?,
            "begin_suppress_tokens" => self.begin_suppress_tokens = opt(k, v, as_ids)?,
            "remove_invalid_values" => {
                self.remove_invalid_values = opt(k, v, as_bool)?.unwrap_or(false)
            }
            "renormalize_logits" => self.renormalize_logits = opt(k, v, as_bool)?.unwrap_or(false),
            "stop_strings" => {
                self.stop_strings = match v {
                    Value::Null => Vec::new(),
                    Value::String(s) => vec![s.clone()],
                    Value::Array(items) => items
                        .iter()
                        .map(|s| {
                            s.as_str().map(str::to_owned).ok_or_else(|| {
                                bad(k, format!("must be a string or a list of strings, but holds {s}"))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                    other => {
                        return Err(bad(k, format!("must be a string or a list of strings, but is {other}")))
                    }
                };
                if self.stop_strings.iter().any(String::is_empty) {
                    return Err(bad(k, "must not contain an empty string"));
                }
            }
            "seed" => self.seed = opt(k, v, |n, v| {
                v.as_u64().ok_or_else(|| bad(n, format!("must be a non-negative integer, but is {v}")))
            })?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks the combination, as `GenerationConfig.validate` and the processors' constructors do
    /// (their errors, as 400s).
    fn validate(&self) -> Result<(), ToolkitError> {
        // each beam and each returned sequence holds a cache and a row of scores per vocabulary
        // entry: bounded so that no request can exhaust memory
        if self.num_beams > MAX_SEQUENCES {
            return Err(bad(
                "num_beams",
                format!(
                    "is {}; this server runs at most {MAX_SEQUENCES} beams",
                    self.num_beams
                ),
            ));
        }
        if self.num_return_sequences > MAX_SEQUENCES {
            return Err(bad(
                "num_return_sequences",
                format!(
                    "is {}; this server returns at most {MAX_SEQUENCES} sequences per input",
                    self.num_return_sequences
                ),
            ));
        }
        if self.num_beams == 1 && !self.do_sample && self.num_return_sequences != 1 {
            return Err(ToolkitError::InvalidParameters(format!(
                "Greedy methods without beam search do not support `num_return_sequences` different than 1 (got {}).",
                self.num_return_sequences
            )));
        }
        if self.num_beams > 1 && self.num_return_sequences > self.num_beams {
            return Err(ToolkitError::InvalidParameters(format!(
                "`num_return_sequences` ({}) has to be smaller or equal to `num_beams` ({}).",
                self.num_return_sequences, self.num_beams
            )));
        }
        if self.repetition_penalty <= 0.0 {
            return Err(bad(
                "repetition_penalty",
                format!(
                    "has to be a strictly positive float, but is {}",
                    self.repetition_penalty
                ),
            ));
        }
        if self.encoder_repetition_penalty <= 0.0 {
            return Err(bad(
                "encoder_repetition_penalty",
                format!(
                    "has to be a strictly positive float, but is {}",
                    self.encoder_repetition_penalty
                ),
            ));
        }
        if self.do_sample {
            if self.temperature <= 0.0 {
                return Err(ToolkitError::InvalidParameters(format!(
                    "`temperature` (={}) has to be a strictly positive float, otherwise your next token scores will be invalid. If you're looking for greedy decoding strategies, set `do_sample=False`.",
                    self.temperature
                )));
            }
            if self.top_p < 0.0 || self.top_p > 1.0 {
                return Err(bad(
                    "top_p",
                    format!("has to be a float > 0 and < 1, but is {}", self.top_p),
                ));
            }
            if self.typical_p <= 0.0 || self.typical_p > 1.0 {
                return Err(bad(
                    "typical_p",
                    format!("has to be a float > 0 and < 1, but is {}", self.typical_p),
                ));
            }
            if let Some(p) = self.min_p {
                if !(0.0..=1.0).contains(&p) {
                    return Err(bad(
                        "min_p",
                        format!("has to be a float in the [0, 1] interval, but is {p}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The EOS ids (empty when the model has none).
    pub fn eos(&self) -> &[u32] {
        self.eos_token_id.as_deref().unwrap_or(&[])
    }

    /// What finished sequences are padded with: `pad_token_id`, else the first EOS.
    pub fn pad_or_eos(&self) -> Option<u32> {
        self.pad_token_id.or_else(|| self.eos().first().copied())
    }

    /// Resolves the total length for a prompt of `input_len` tokens (`_prepare_generated_length`):
    /// `max_new_tokens` wins; the untouched default of 20 means 20 new tokens (capped by the
    /// model's positions); any other `max_length` is a total.
    pub fn resolve_lengths(
        &mut self,
        input_len: usize,
        max_positions: Option<usize>,
    ) -> Result<(), ToolkitError> {
        if let Some(n) = self.max_new_tokens {
            self.max_length = n.saturating_add(input_len);
        } else if !self.max_length_from_request && self.max_length == 20 {
            let total = 20 + input_len;
            self.max_length = max_positions.map_or(total, |p| total.min(p));
        }
        if let Some(n) = self.min_new_tokens {
            self.min_length = n.saturating_add(input_len as i64);
        }
        if input_len >= self.max_length {
            return Err(ToolkitError::InvalidParameters(format!(
                "Input length of input_ids is {input_len}, but `max_length` is set to {}. This can lead to unexpected behavior. You should consider increasing `max_length` or, better yet, setting `max_new_tokens`.",
                self.max_length
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn generation_config_json_replaces_model_keys() {
        let model = json!({"model_type": "gpt2", "eos_token_id": 5, "num_beams": 4, "n_embd": 32});
        let g =
            GenerationConfig::for_model(Some(&json!({"eos_token_id": [1, 2]})), &model).unwrap();
        assert_eq!(g.eos(), [1, 2]);
        assert_eq!(
            g.num_beams, 1,
            "generation_config.json replaces config.json entirely"
        );
        let g = GenerationConfig::for_model(None, &model).unwrap();
        assert_eq!((g.eos(), g.num_beams), (&[5u32][..], 4));
    }

    #[test]
    fn request_parameters_override_and_leave_the_rest() {
        let mut g = GenerationConfig::default();
        let rest = g
            .update(&params(json!({"max_new_tokens": 5, "num_beams": 3, "return_full_text": false, "use_cache": true})))
            .unwrap();
        assert_eq!(rest, ["return_full_text"]);
        assert_eq!((g.max_new_tokens, g.num_beams), (Some(5), 3));
    }

    #[test]
    fn transformers_errors_are_400s() {
        let cases = [
            (json!({"num_return_sequences": 2}), "Greedy methods"),
            (
                json!({"num_beams": 2, "num_return_sequences": 3}),
                "has to be smaller or equal",
            ),
            (json!({"max_new_tokens": 0}), "greater than 0"),
            (json!({"max_new_tokens": -3}), "greater than 0"),
            (json!({"early_stopping": "sometimes"}), "early_stopping"),
            (
                json!({"do_sample": true, "temperature": 0.0}),
                "strictly positive",
            ),
            (json!({"repetition_penalty": -1.0}), "strictly positive"),
            (json!({"bad_words_ids": [1, 2]}), "bad_words_ids"),
            (json!({"top_k": -1}), "top_k"),
            (json!({"num_beam_groups": 2}), "does not offer"),
            (json!({"max_length": "long"}), "max_length"),
            (json!({"num_beams": 100000}), "at most 32 beams"),
            (
                json!({"do_sample": true, "num_return_sequences": 1000}),
                "at most 32 sequences",
            ),
        ];
        for (p, needle) in cases {
            let e = GenerationConfig::default()
                .update(&params(p.clone()))
                .unwrap_err();
            assert!(
                matches!(e, ToolkitError::InvalidParameters(_)) && e.to_string().contains(needle),
                "{p}: {e}"
            );
        }
    }

    #[test]
    fn lengths_as_transformers_resolves_them() {
        // untouched default: 20 new tokens, capped by positions
        let mut g = GenerationConfig::default();
        g.resolve_lengths(8, Some(256)).unwrap();
        assert_eq!(g.max_length, 28);
        let mut g = GenerationConfig::default();
        g.resolve_lengths(250, Some(256)).unwrap();
        assert_eq!(g.max_length, 256);
        // an explicit max_length is a total
        let mut g = GenerationConfig::default();
        g.update(&params(json!({"max_length": 12}))).unwrap();
        g.resolve_lengths(8, None).unwrap();
        assert_eq!(g.max_length, 12);
        // a model max_length other than 20 is a total too
        let mut g =
            GenerationConfig::for_model(Some(&json!({"max_length": 32})), &json!({})).unwrap();
        g.resolve_lengths(1, None).unwrap();
        assert_eq!(g.max_length, 32);
        // max_new_tokens wins; min_new_tokens counts from the prompt
        let mut g = GenerationConfig::default();
        g.update(&params(
            json!({"max_new_tokens": 3, "max_length": 100, "min_new_tokens": 2}),
        ))
        .unwrap();
        g.resolve_lengths(8, None).unwrap();
        assert_eq!((g.max_length, g.min_length), (11, 10));
        // a prompt as long as max_length is an error
        let mut g = GenerationConfig::default();
        g.update(&params(json!({"max_length": 6}))).unwrap();
        let e = g.resolve_lengths(6, None).unwrap_err();
        assert!(
            e.to_string().contains("Input length of input_ids is 6"),
            "{e}"
        );
    }
}
