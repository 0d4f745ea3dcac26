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

/// The most tokens one text may be tokenized into before it is cut or refused, until a pipeline
/// sets its own (`HF_MAX_REQUEST_TOKENS`, the same default).
pub const DEFAULT_MAX_TOKENS: usize = 16_384;

/// Bytes of text tokenized per wanted token on the first try at a long text: prose takes 3 to 6.
const FIRST_BYTES_PER_TOKEN: usize = 8;

/// The most bytes of text tokenized per wanted token. Text that averages more (a run of
/// characters without a space, which a WordPiece vocabulary makes a single `[UNK]`) is refused
/// rather than tokenized to its end: this is what bounds a request's memory by the limits and
/// not by the body.
pub const MAX_BYTES_PER_TOKEN: usize = 64;

/// Tokens read past the ones kept from a prefix of a text: a cut can change how the last tokens
/// before it are made (a byte-level BPE's trailing space, a word cut in two), never those
/// further back.
const PREFIX_MARGIN: usize = 16;

/// How far back from a cut to look for the whitespace that makes it a word boundary; further
/// than a WordPiece word may be long (`max_input_chars_per_word`, 100 characters).
const WORD_SEARCH: usize = 1024;

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
    /// The most tokens one text may hold (`HF_MAX_REQUEST_TOKENS`): past them a text is cut
    /// (truncation) or refused, before the rest of it is tokenized.
    max_tokens: usize,
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
            max_tokens: DEFAULT_MAX_TOKENS,
        })
    }

    /// Sets the most tokens one text may hold (`HF_MAX_REQUEST_TOKENS`; at least 1). Only so
    /// much of a longer text is ever tokenized: with truncation the rest cannot reach the
    /// answer, without it the request is refused.
    pub fn with_max_tokens(mut self, max_tokens: usize) -> Self {
        self.max_tokens = max_tokens.max(1);
        self
    }

    /// The most tokens one text may hold.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
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
        let limit = self.max_tokens;
        // the tokens of each text that can reach the answer: a truncated text's first
        // `max_length`, otherwise enough to know it is over the limit
        let cut_at = match opts.truncation {
            Some(_) => opts.max_length.or(self.model_max_length),
            None => None,
        }
        .filter(|&max| max <= limit);
        let need = cut_at.unwrap_or(limit) + 1;
        let (first, second, complete) = self.raw_pair(text, pair, false, need)?;
        if !complete && cut_at.is_none() {
            return Err(too_many_tokens(limit));
        }
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
    ///
    /// Only as much of each text is tokenized as it takes to make its first `need` tokens (see
    /// [`Self::raw_prefix`]); the flag says whether both encodings hold their whole text.
    fn raw_pair(
        &self,
        text: &str,
        pair: Option<&str>,
        char_offsets: bool,
        need: usize,
    ) -> Result<(Encoding, Option<Encoding>, bool), ToolkitError> {
        let (first, mut complete) = self.raw_prefix(text, need, char_offsets)?;
        let second = match pair {
            Some(p) => {
                let (mut e, whole) = self.raw_prefix(p, need, char_offsets)?;
                e.set_type_ids(vec![1; e.len()]);
                complete &= whole;
                Some(e)
            }
            None => None,
        };
        Ok((first, second, complete))
    }

    /// The raw encoding of `text` as far as its first `need` tokens. A text short enough to be
    /// sure to fit is tokenized whole (`true`). A longer one is tokenized from a prefix, cut
    /// where a word ends, that makes more than `need` tokens (`PREFIX_MARGIN` more): those first
    /// `need` are the whole text's first `need` (`false`). A prefix grows fourfold while it
    /// makes too few, up to `MAX_BYTES_PER_TOKEN` bytes a token, past which the text is refused.
    fn raw_prefix(
        &self,
        text: &str,
        need: usize,
        char_offsets: bool,
    ) -> Result<(Encoding, bool), ToolkitError> {
        let encode = |t: &str| {
            if char_offsets {
                self.raw.encode_char_offsets(t, false)
            } else {
                self.raw.encode(t, false)
            }
            .map_err(tokenizer_error)
        };
        let want = need.saturating_add(PREFIX_MARGIN);
        let cap = want.saturating_mul(MAX_BYTES_PER_TOKEN);
        let mut window = want.saturating_mul(FIRST_BYTES_PER_TOKEN);
        loop {
            if text.len() <= window {
                return Ok((encode(text)?, true));
            }
            let mut enc = encode(&text[..word_cut(text, window)])?;
            if enc.len() >= want {
                enc.truncate(need, 0, TruncationDirection::Right);
                drop(enc.take_overflowing());
                return Ok((enc, false));
            }
            if window >= cap {
                return Err(ToolkitError::InputTooLong(format!(
                    "a text of {} bytes makes only {} tokens in its first {window} bytes: text this sparse in tokens (a long run of characters without spaces) is tokenized no further than {MAX_BYTES_PER_TOKEN} bytes per token that could be kept ({need}); shorten it",
                    text.len(),
                    enc.len()
                )));
            }
            window = window.saturating_mul(4).min(cap);
        }
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
    ///
    /// Only what the windows can hold is tokenized: a text with more tokens than the request may
    /// hold (`max_tokens`) is refused before the rest of it is tokenized, and with `first_only`
    /// only the first window's worth of tokens is made.
    pub fn encode_windows(
        &self,
        text: &str,
        pair: Option<&str>,
        w: &WindowOptions,
    ) -> Result<Vec<Encoding>, ToolkitError> {
        let WindowOptions {
            strategy,
            max_length,
            stride,
            max_tokens,
            first_only,
        } = *w;
        let limit = max_tokens.min(self.max_tokens);
        let cut_at = max_length.filter(|&m| first_only && m <= limit);
        let (first, second, complete) =
            self.raw_pair(text, pair, true, cut_at.unwrap_or(limit) + 1)?;
        if !complete && cut_at.is_none() {
            return Err(too_many_tokens(limit));
        }
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
        if !first_only {
            out.extend(overflow);
        }
        Ok(out)
    }
}

/// How [`TextTokenizer::encode_windows`] cuts a text into windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowOptions {
    /// Which text of a pair is cut.
    pub strategy: TruncationStrategy,
    /// The most tokens of a window, special tokens included; `None`: one window, uncut.
    pub max_length: Option<usize>,
    /// Tokens each window repeats from the previous one.
    pub stride: usize,
    /// The most tokens the request may hold (`HF_MAX_REQUEST_TOKENS`).
    pub max_tokens: usize,
    /// Only the first window is wanted (the rest of the text is dropped, as truncation does).
    pub first_only: bool,
}

/// The end of a prefix of `text` of at most `at` bytes, on a character boundary, and where a
/// word ends (before the whitespace that follows it) when one ends within `WORD_SEARCH` bytes.
fn word_cut(text: &str, at: usize) -> usize {
    let floor_char = |mut i: usize| {
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let cut = floor_char(at.min(text.len()));
    let from = floor_char(cut.saturating_sub(WORD_SEARCH));
    let head = &text[from..cut];
    match head.rfind(char::is_whitespace) {
        Some(i) => {
            let end = from + head[..i].trim_end_matches(char::is_whitespace).len();
            if end > 0 {
                end
            } else {
                cut
            }
        }
        None => cut,
    }
}

/// A text holds more tokens than one request may.
fn too_many_tokens(limit: usize) -> ToolkitError {
    ToolkitError::InputTooLong(format!(
        "the input holds more than {limit} tokens, the limit per request (HF_MAX_REQUEST_TOKENS); shorten it, split it, or pass \"parameters\": {{\"truncation\": true}}"
    ))
}

/// The tokens one request may still hold (`HF_MAX_REQUEST_TOKENS`), charged as its texts are
/// tokenized, so a request of many texts stops at the first one past the limit instead of
/// tokenizing them all first.
#[derive(Debug, Clone)]
pub struct TokenBudget {
    limit: usize,
    used: usize,
}

impl TokenBudget {
    /// A budget of `limit` tokens.
    pub fn new(limit: usize) -> Self {
        Self { limit, used: 0 }
    }

    /// Charges `tokens`; past the limit, the request's `InputTooLong`.
    pub fn charge(&mut self, tokens: usize) -> Result<(), ToolkitError> {
        self.used = self.used.saturating_add(tokens);
        if self.used > self.limit {
            return Err(ToolkitError::InputTooLong(format!(
                "the request holds more than {} tokens, the limit per request (HF_MAX_REQUEST_TOKENS); split it into smaller requests",
                self.limit
            )));
        }
        Ok(())
    }

    /// Charges a sequence's tokens and hands it back.
    pub fn take(&mut self, seq: TokenSequence) -> Result<TokenSequence, ToolkitError> {
        self.charge(seq.ids.len())?;
        Ok(seq)
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
