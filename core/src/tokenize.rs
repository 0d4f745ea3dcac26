//! Tokenization with transformers' call semantics (`tokenizer(text, text_pair, truncation=...,
//! max_length=..., padding=..., add_special_tokens=...)`), on top of the `tokenizers` crate and the
//! model's `tokenizer.json`.
//!
//! Truncation is decided per request, so the shared tokenizer has its own truncation and padding
//! switched off; we truncate the raw encodings (leaving room for the special tokens, as
//! `TokenizerImpl::post_process` does) and then add the special tokens.

pub mod siglip;
pub mod tapas;
pub mod tapas_numeric;

use std::path::Path;

use std::str::FromStr;
use tokenizers::utils::truncation::{truncate_encodings, TruncationDirection, TruncationParams};
use tokenizers::{Decoder, Tokenizer};

pub use tokenizers::Encoding;

pub use tokenizers::utils::truncation::TruncationStrategy;

use crate::error::ToolkitError;
use crate::model::{ModelFiles, TokenSequence};

/// A Marian tokenizer (`source.spm` + `vocab.json`, no `tokenizer.json`), built as a fast one.
fn marian_tokenizer(
    dir: &std::path::Path,
    cfg: &serde_json::Value,
) -> Result<Tokenizer, ToolkitError> {
    let read = |name: &str| {
        std::fs::read(dir.join(name)).map_err(|e| {
            ToolkitError::model_load_with(
                format!(
                    "{} has no readable {name} (a MarianTokenizer needs source.spm and vocab.json)",
                    dir.display()
                ),
                e,
            )
        })
    };
    let spm = crate::sentencepiece::SpmModel::parse(&read("source.spm")?)?;
    let vocab: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&read("vocab.json")?).map_err(|e| {
            ToolkitError::model_load(format!("vocab.json is not a JSON object: {e}"))
        })?;
    let token = |key: &str, default: &str| {
        cfg.get(key)
            .and_then(|v| {
                v.as_str()
                    .or_else(|| v.get("content").and_then(serde_json::Value::as_str))
            })
            .unwrap_or(default)
            .to_owned()
    };
    let json = spm.marian_tokenizer_json(
        &vocab,
        &token("eos_token", "</s>"),
        &token("unk_token", "<unk>"),
        &token("pad_token", "<pad>"),
    )?;
    Tokenizer::from_str(&json.to_string())
        .map_err(|e| ToolkitError::model_load(format!("cannot build the Marian tokenizer: {e}")))
}

/// transformers' `VERY_LARGE_INTEGER` and friends: a `model_max_length` above this means "none".
const NO_LIMIT: f64 = 1e12;

/// How to pad a single input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding {
    /// No padding (`false`, `"do_not_pad"`, and `true`/`"longest"` for one input).
    #[default]
    None,
    /// Pad to `max_length` (or the model's maximum).
    MaxLength,
}

/// Per-request tokenizer arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenizeOptions {
    /// `None` = no truncation.
    pub truncation: Option<TruncationStrategy>,
    /// `max_length`; `None` = the tokenizer's `model_max_length`.
    pub max_length: Option<usize>,
    /// Padding.
    pub padding: Padding,
    /// Add `[CLS]`/`[SEP]` (or `<s>`/`</s>`).
    pub add_special_tokens: bool,
}

impl Default for TokenizeOptions {
    fn default() -> Self {
        Self {
            truncation: None,
            max_length: None,
            padding: Padding::None,
            add_special_tokens: true,
        }
    }
}

/// A model's tokenizer.
pub struct TextTokenizer {
    inner: Tokenizer,
    model_max_length: Option<usize>,
    pad_id: u32,
    /// A copy without post-processor: raw encodings, before truncation and special tokens.
    raw: Tokenizer,
    mask_token: Option<String>,
    unk_id: Option<u32>,
    cls_id: Option<u32>,
    subword_prefix: bool,
    clean_up_spaces: bool,
    /// Decoded text is stripped (`MarianTokenizer.convert_tokens_to_string`).
    strip_decoded: bool,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("model_max_length", &self.model_max_length)
            .field("pad_id", &self.pad_id)
            .finish_non_exhaustive()
    }
}

fn tokenizer_error(e: impl std::fmt::Display) -> ToolkitError {
    ToolkitError::InvalidParameters(format!("tokenization failed: {e}"))
}

impl TextTokenizer {
    /// Loads `tokenizer.json` (required) and `model_max_length` from `tokenizer_config.json`.
    pub fn load(files: &ModelFiles, pad_id: u32) -> Result<Self, ToolkitError> {
        let cfg = match &files.tokenizer_config {
            Some(p) => read_tokenizer_config(p)?,
            None => serde_json::Value::Null,
        };
        let marian = files.tokenizer.is_none()
            && cfg
                .get("tokenizer_class")
                .and_then(serde_json::Value::as_str)
                == Some("MarianTokenizer");
        let mut inner = match files.tokenizer.as_deref() {
            Some(path) => Tokenizer::from_file(path).map_err(|e| {
                ToolkitError::model_load(format!("cannot load {}: {e}", path.display()))
            })?,
            None if marian => marian_tokenizer(&files.dir, &cfg)?,
            None => {
                return Err(ToolkitError::model_load(format!(
                    "{} has no tokenizer.json; save a fast tokenizer with `AutoTokenizer.from_pretrained(..., use_fast=True).save_pretrained(dir)`",
                    files.dir.display()
                )))
            }
        };
        inner.with_padding(None);
        inner.with_truncation(None).map_err(|e| {
            ToolkitError::model_load(format!("cannot configure the tokenizer: {e}"))
        })?;
        let model_max_length = cfg
            .get("model_max_length")
            .and_then(serde_json::Value::as_f64)
            .and_then(|m| (m > 0.0 && m < NO_LIMIT).then_some(m as usize));
        // "mask_token": "[MASK]" or {"content": "<mask>", ...}
        let mask_token = cfg.get("mask_token").and_then(|m| {
            m.as_str()
                .or_else(|| m.get("content").and_then(serde_json::Value::as_str))
                .map(str::to_owned)
        });
        let special_id = |key: &str| {
            cfg.get(key)
                .and_then(|m| {
                    m.as_str()
                        .or_else(|| m.get("content").and_then(serde_json::Value::as_str))
                })
                .and_then(|t| inner.token_to_id(t))
        };
        let (unk_id, cls_id) = (special_id("unk_token"), special_id("cls_token"));
        // transformers' `getattr(tokenizer._tokenizer.model, "continuing_subword_prefix", None)`
        // being truthy: WordPiece's "##" (BPE usually has none)
        let subword_prefix = serde_json::to_value(inner.get_model())
            .ok()
            .and_then(|m| {
                m.get("continuing_subword_prefix")
                    .and_then(serde_json::Value::as_str)
                    .map(|p| !p.is_empty())
            })
            .unwrap_or(false);
        let clean_up_spaces = cfg
            .get("clean_up_tokenization_spaces")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        Ok(Self {
            raw: {
                let mut raw = inner.clone();
                raw.with_post_processor(None::<tokenizers::PostProcessorWrapper>);
                raw
            },
            inner,
            model_max_length,
            pad_id,
            mask_token,
            unk_id,
            cls_id,
            subword_prefix,
            clean_up_spaces,
            strip_decoded: marian,
        })
    }

    /// The mask token (`tokenizer_config.json` `mask_token`) and its id, if the model has one.
    pub fn mask(&self) -> Option<(&str, u32)> {
        let t = self.mask_token.as_deref()?;
        Some((t, self.inner.token_to_id(t)?))
    }

    /// The id of a vocabulary entry.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The padding id.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// The id of `unk_token` (`tokenizer_config.json`), if the tokenizer has one.
    pub fn unk_id(&self) -> Option<u32> {
        self.unk_id
    }

    /// The id of `cls_token` (`tokenizer_config.json`), if the tokenizer has one.
    pub fn cls_id(&self) -> Option<u32> {
        self.cls_id
    }

    /// Whether the vocabulary marks word continuations (WordPiece's `##`): then a token is a
    /// sub-word when its text differs in length from its span of the input, as transformers
    /// decides; otherwise transformers falls back to looking for a space before the token.
    pub fn has_subword_prefix(&self) -> bool {
        self.subword_prefix
    }

    /// The vocabulary entry of an id (`convert_ids_to_tokens`), `None` when out of range.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Joins tokens into text with the tokenizer's decoder, as transformers'
    /// `convert_tokens_to_string` does (space-joined when there is no decoder).
    pub fn tokens_to_string(&self, tokens: Vec<String>) -> Result<String, ToolkitError> {
        match self.inner.get_decoder() {
            Some(d) => d.decode(tokens).map_err(tokenizer_error),
            None => Ok(tokens.join(" ")),
        }
    }

    /// Decodes ids as transformers' `tokenizer.decode(ids, skip_special_tokens=...)` does,
    /// including its `clean_up_tokenization_spaces` step when the tokenizer asks for it.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, ToolkitError> {
        let text = self
            .inner
            .decode(ids, skip_special_tokens)
            .map_err(tokenizer_error)?;
        Ok(if self.clean_up_spaces {
            clean_up_tokenization(&text)
        } else {
            text
        })
    }

    /// Decodes ids with an explicit `clean_up_tokenization_spaces` (the generation pipelines
    /// always pass one).
    pub fn decode_with(
        &self,
        ids: &[u32],
        skip_special_tokens: bool,
        clean_up: bool,
    ) -> Result<String, ToolkitError> {
        let mut text = self
            .inner
            .decode(ids, skip_special_tokens)
            .map_err(tokenizer_error)?;
        if self.strip_decoded {
            text = text.trim().to_owned();
        }
        Ok(if clean_up {
            clean_up_tokenization(&text)
        } else {
            text
        })
    }

    /// `model_max_length` from `tokenizer_config.json`, if it sets a real limit.
    pub fn model_max_length(&self) -> Option<usize> {
        self.model_max_length
    }

    /// Tokenizes one text (and optional pair) as transformers' `tokenizer(...)` call would.
    pub fn encode(
        &self,
        text: &str,
        pair: Option<&str>,
        opts: &TokenizeOptions,
    ) -> Result<TokenSequence, ToolkitError> {
        let (first, second) = self.raw_pair(text, pair, false)?;
        let (first, second) = match opts.truncation {
            None => (first, second),
            Some(strategy) => {
                if strategy == TruncationStrategy::OnlySecond && second.is_none() {
                    return Err(ToolkitError::InvalidParameters(
                        "truncation \"only_second\" needs a text pair; use true or \"longest_first\" for a single text".into(),
                    ));
                }
                match opts.max_length.or(self.model_max_length) {
                    None => (first, second),
                    Some(max) => {
                        let added = if opts.add_special_tokens {
                            self.added_tokens(second.is_some())
                        } else {
                            0
                        };
                        let params = TruncationParams {
                            direction: TruncationDirection::Right,
                            max_length: max.checked_sub(added).ok_or_else(|| {
                                ToolkitError::InvalidParameters(format!(
                                    "max_length {max} is shorter than the {added} special tokens the model adds"
                                ))
                            })?,
                            strategy,
                            stride: 0,
                        };
                        truncate_encodings(first, second, &params).map_err(tokenizer_error)?
                    }
                }
            }
        };
        let enc: Encoding = self
            .inner
            .post_process(first, second, opts.add_special_tokens)
            .map_err(tokenizer_error)?;
        let mut seq = TokenSequence::from(&enc);
        if opts.padding == Padding::MaxLength {
            if let Some(target) = opts.max_length.or(self.model_max_length) {
                let n = seq.ids.len();
                if n < target {
                    seq.ids.resize(target, self.pad_id);
                    seq.type_ids.resize(target, 0);
                    seq.attention_mask.resize(target, 0);
                }
            }
        }
        Ok(seq)
    }
}

impl TextTokenizer {
    /// The encodings of a text and its pair as the tokenizer's model makes them, before
    /// truncation and special tokens: no post-processor has run yet (it trims byte-level
    /// offsets and must do so once, after truncation), and the pair is segment 1 as
    /// `tokenizers` makes it (so overflow windows cut from it keep that segment).
    fn raw_pair(
        &self,
        text: &str,
        pair: Option<&str>,
        char_offsets: bool,
    ) -> Result<(Encoding, Option<Encoding>), ToolkitError> {
        let encode = |t: &str| {
            if char_offsets {
                self.raw.encode_char_offsets(t, false)
            } else {
                self.raw.encode(t, false)
            }
            .map_err(tokenizer_error)
        };
        let first = encode(text)?;
        let second = pair
            .map(|p| {
                encode(p).map(|mut e| {
                    e.set_type_ids(vec![1; e.len()]);
                    e
                })
            })
            .transpose()?;
        Ok((first, second))
    }

    /// The special tokens the post-processor adds to one text or a pair.
    fn added_tokens(&self, is_pair: bool) -> usize {
        self.inner
            .get_post_processor()
            .map(|p| tokenizers::PostProcessor::added_tokens(p, is_pair))
            .unwrap_or(0)
    }

    /// Tokenizes `text` (and `pair`) into windows of at most `max_length` tokens, special tokens
    /// included, each overlapping the previous one by `stride` tokens of the truncated sequence:
    /// transformers' `tokenizer(text, pair, truncation=strategy, max_length=..., stride=...,
    /// return_overflowing_tokens=True, return_offsets_mapping=True)`, first window first. Offsets
    /// are in characters, as the Python bindings report them. `max_length: None` keeps one window.
    pub fn encode_windows(
        &self,
        text: &str,
        pair: Option<&str>,
        strategy: TruncationStrategy,
        max_length: Option<usize>,
        stride: usize,
        max_tokens: usize,
    ) -> Result<Vec<Encoding>, ToolkitError> {
        let (first, second) = self.raw_pair(text, pair, true)?;
        let (first, second) = match max_length {
            None => (first, second),
            Some(max) => {
                let added = self.added_tokens(second.is_some());
                let budget = max.checked_sub(added).filter(|&b| b > 0).ok_or_else(|| {
                    ToolkitError::InvalidParameters(format!(
                        "a window of {max} tokens leaves no room next to the {added} special tokens the model adds; raise the maximum length"
                    ))
                })?;
                let (n1, n2) = (first.len(), second.as_ref().map_or(0, Encoding::len));
                if n1 + n2 > budget {
                    // the sequence that gets cut, and the length it is cut to
                    let cut = match (strategy, second.is_some()) {
                        (TruncationStrategy::OnlySecond, true) => Some(("second", n2)),
                        (TruncationStrategy::OnlyFirst, _) | (_, false) => Some(("first", n1)),
                        _ => None,
                    };
                    if let Some((which, len)) = cut {
                        let to_remove = n1 + n2 - budget;
                        let kept = len.checked_sub(to_remove).filter(|&k| k > 0).ok_or_else(|| {
                            ToolkitError::InvalidParameters(format!(
                                "the {which} text cannot be cut short enough: the other one takes {} of the {max} tokens of a window; shorten it or raise the maximum length",
                                n1 + n2 - len + added
                            ))
                        })?;
                        if stride >= kept {
                            return Err(ToolkitError::InvalidParameters(format!(
                                "the stride ({stride} tokens) must be shorter than the {kept} tokens of text that fit in a window of {max}; lower the stride or raise the maximum length"
                            )));
                        }
                        // every window is built at once: with a stride they repeat tokens, so
                        // bound them before they exist (without one they are the text itself)
                        let windows = 1 + (len - kept).div_ceil(kept - stride);
                        if stride > 0 && windows.saturating_mul(max) > max_tokens {
                            return Err(ToolkitError::InputTooLong(format!(
                                "this text would be split into {windows} windows of up to {max} tokens (stride {stride}), more than the {max_tokens} tokens one request may hold (HF_MAX_REQUEST_TOKENS); lower the stride, shorten the text or split the request"
                            )));
                        }
                    }
                }
                let params = TruncationParams {
                    direction: TruncationDirection::Right,
                    max_length: budget,
                    strategy,
                    stride,
                };
                // `Encoding::truncate` asserts `stride < max_len`: checked above for the
                // strategies used with a stride; a panic is still turned into an error.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    truncate_encodings(first, second, &params)
                }))
                .map_err(|_| {
                    ToolkitError::InvalidParameters(format!(
                        "the stride ({stride}) is too long for a window of {max} tokens; lower it"
                    ))
                })?
                .map_err(tokenizer_error)?
            }
        };
        let mut enc = self
            .inner
            .post_process(first, second, true)
            .map_err(tokenizer_error)?;
        let overflow = enc.take_overflowing();
        let mut out = Vec::with_capacity(1 + overflow.len());
        out.push(enc);
        out.extend(overflow);
        Ok(out)
    }
}

impl From<&Encoding> for TokenSequence {
    fn from(e: &Encoding) -> Self {
        TokenSequence {
            ids: e.get_ids().to_vec(),
            type_ids: e.get_type_ids().to_vec(),
            attention_mask: e.get_attention_mask().to_vec(),
        }
    }
}

fn read_tokenizer_config(path: &Path) -> Result<serde_json::Value, ToolkitError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ToolkitError::model_load_with(format!("cannot read {}", path.display()), e))?;
    serde_json::from_str(&text)
        .map_err(|e| ToolkitError::model_load_with(format!("invalid {}", path.display()), e))
}

/// transformers' `PreTrainedTokenizerBase.clean_up_tokenization`.
fn clean_up_tokenization(s: &str) -> String {
    s.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}
