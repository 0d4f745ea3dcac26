//! transformers' slow `SiglipTokenizer` (`models/siglip/tokenization_siglip.py`, 4.51), for
//! checkpoints that ship only `spiece.model` (google/siglip-*): no fast tokenizer exists for it.
//!
//! Its steps, each reproduced here:
//! 1. `tokenize`: `"▁" + text` with every `▁` of the text made a space;
//! 2. `PreTrainedTokenizer.tokenize`: with `do_lower_case`, every character lowered one at a time
//!    (Python's `str.lower` on single characters, so no final sigma) except inside special
//!    tokens; the text split on the added tokens (`</s>`, `<unk>`, ...), each eating the
//!    whitespace beside it as its `lstrip`/`rstrip` say;
//! 3. `_tokenize` on each other part: `canonicalize_text` (ASCII punctuation removed, runs of
//!    Unicode whitespace made one space, stripped), then the SentencePiece model without its
//!    dummy prefix on `unk_token + text`, the unknown token's own pieces dropped: in effect a
//!    leading `▁` kept as one `▁` and the rest segmented as SentencePiece does;
//! 4. a lone leading `▁` dropped when a special token follows it;
//! 5. truncation to `max_length - 1`, then `</s>` appended unless the ids already end with it;
//!    padding with `pad_token` (`</s>` by default) to `max_length`.

use std::str::FromStr;

use serde_json::Value;
use tokenizers::Tokenizer;

use crate::error::ToolkitError;
use crate::model::ModelFiles;
use crate::sentencepiece::SpmModel;

/// An added token: its text, id and whether it eats the whitespace on its left and right.
#[derive(Debug, Clone)]
struct Added {
    content: String,
    id: u32,
    lstrip: bool,
    rstrip: bool,
}

/// A loaded `SiglipTokenizer`.
pub struct SiglipTokenizer {
    /// The SentencePiece model, without dummy prefix and special tokens.
    pieces: Tokenizer,
    /// Added tokens, longest first (the split prefers the longest match at a position).
    added: Vec<Added>,
    /// `all_special_tokens`: kept as they are by the lower-casing.
    special: Vec<String>,
    eos_id: u32,
    pad_id: u32,
    lower_case: bool,
    /// Whether `model_input_names` holds `attention_mask` (google's checkpoints: no).
    attention_mask: bool,
}

impl std::fmt::Debug for SiglipTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiglipTokenizer")
            .field("eos_id", &self.eos_id)
            .field("pad_id", &self.pad_id)
            .field("attention_mask", &self.attention_mask)
            .finish_non_exhaustive()
    }
}

/// Ids of one text, padded, and its attention mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiglipEncoding {
    /// Token ids.
    pub ids: Vec<u32>,
    /// 1 for a token, 0 for padding.
    pub attention_mask: Vec<u32>,
}

/// Python's `str.isspace` (Rust's `White_Space` plus the separators U+001C..U+001F).
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `canonicalize_text`: ASCII punctuation (`string.punctuation`) removed, runs of whitespace made
/// one space, the ends stripped.
fn canonicalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars().filter(|c| !c.is_ascii_punctuation()) {
        if py_space(c) {
            space = true;
        } else {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    out
}

/// The text of a `tokenizer_config.json` token entry: `"</s>"` or `{"content": "</s>", ...}`.
fn token_text(v: &Value) -> Option<&str> {
    v.as_str()
        .or_else(|| v.get("content").and_then(Value::as_str))
}

impl SiglipTokenizer {
    /// Loads `spiece.model` and `tokenizer_config.json` (special tokens, `do_lower_case`,
    /// `model_input_names`, `added_tokens_decoder`), with `SiglipTokenizer.__init__`'s defaults.
    pub fn load(files: &ModelFiles) -> Result<Self, ToolkitError> {
        let cfg: Value = match &files.tokenizer_config {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    ToolkitError::model_load_with(format!("cannot read {}", p.display()), e)
                })?;
                serde_json::from_str(&text).map_err(|e| {
                    ToolkitError::model_load_with(format!("invalid {}", p.display()), e)
                })?
            }
            None => Value::Null,
        };
        // transformers has no fast SiglipTokenizer: AutoTokenizer reads spiece.model whether or
        // not a tokenizer.json is there; another class would tokenize otherwise
        if let Some(class) = cfg.get("tokenizer_class").and_then(Value::as_str) {
            if class != "SiglipTokenizer" {
                return Err(ToolkitError::model_load(format!(
                    "tokenizer_config.json names {class}; a SigLIP model is served with SiglipTokenizer (spiece.model) only"
                )));
            }
        }
        let path = files.dir.join("spiece.model");
        let bytes = std::fs::read(&path).map_err(|e| {
            ToolkitError::model_load_with(
                format!(
                    "{} has no readable spiece.model (a SiglipTokenizer needs it)",
                    files.dir.display()
                ),
                e,
            )
        })?;
        let spm = SpmModel::parse(&bytes)?;
        let json = spm.unigram_no_dummy_prefix_json()?;
        let pieces = Tokenizer::from_str(&json.to_string()).map_err(|e| {
            ToolkitError::model_load(format!("cannot build the SigLIP tokenizer: {e}"))
        })?;
        let piece_id = |t: &str| {
            spm.pieces
                .iter()
                .position(|p| p.piece == t)
                .map(|i| i as u32)
        };
        // added_tokens_decoder: {"1": {"content": "</s>", "lstrip": true, ...}}
        let mut added: Vec<Added> = Vec::new();
        if let Some(dec) = cfg.get("added_tokens_decoder").and_then(Value::as_object) {
            for (id, t) in dec {
                let (Ok(id), Some(content)) = (id.parse::<u32>(), token_text(t)) else {
                    return Err(ToolkitError::model_load(format!(
                        "tokenizer_config.json: added_tokens_decoder entry {id:?} has no integer id or content"
                    )));
                };
                let flag = |k: &str| t.get(k).and_then(Value::as_bool).unwrap_or(false);
                added.push(Added {
                    content: content.to_owned(),
                    id,
                    lstrip: flag("lstrip"),
                    rstrip: flag("rstrip"),
                });
            }
        }
        let named = |key: &str, default: &str| -> String {
            cfg.get(key)
                .and_then(token_text)
                .unwrap_or(default)
                .to_owned()
        };
        let (eos, unk, pad) = (
            named("eos_token", "</s>"),
            named("unk_token", "<unk>"),
            named("pad_token", "</s>"),
        );
        let mut special = vec![eos.clone(), unk, pad.clone()];
        if let Some(extra) = cfg
            .get("additional_special_tokens")
            .and_then(Value::as_array)
        {
            special.extend(extra.iter().filter_map(token_text).map(str::to_owned));
        }
        // SiglipTokenizer.__init__ adds eos, unk and pad with lstrip and rstrip
        for t in &special {
            if !added.iter().any(|a| &a.content == t) {
                let id = piece_id(t).ok_or_else(|| {
                    ToolkitError::model_load(format!(
                        "spiece.model has no piece {t:?} for a special token of tokenizer_config.json"
                    ))
                })?;
                added.push(Added {
                    content: t.clone(),
                    id,
                    lstrip: true,
                    rstrip: true,
                });
            }
        }
        added.retain(|a| !a.content.is_empty());
        added.sort_by_key(|a| std::cmp::Reverse(a.content.len()));
        let id_of = |t: &str| added.iter().find(|a| a.content == t).map(|a| a.id);
        let (eos_id, pad_id) = match (id_of(&eos), id_of(&pad)) {
            (Some(e), Some(p)) => (e, p),
            _ => {
                return Err(ToolkitError::model_load(
                    "tokenizer_config.json: eos_token or pad_token has no id",
                ))
            }
        };
        let attention_mask = match cfg.get("model_input_names").and_then(Value::as_array) {
            Some(names) => names.iter().any(|n| n.as_str() == Some("attention_mask")),
            None => true,
        };
        Ok(Self {
            pieces,
            added,
            special,
            eos_id,
            pad_id,
            lower_case: cfg
                .get("do_lower_case")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            attention_mask,
        })
    }

    /// Whether the model is given the attention mask (`model_input_names`).
    pub fn uses_attention_mask(&self) -> bool {
        self.attention_mask
    }

    /// The special token starting at `s`, if any (the longest).
    fn added_at(&self, s: &str) -> Option<&Added> {
        self.added.iter().find(|a| s.starts_with(&a.content))
    }

    /// Step 2's lower-casing: each character lowered alone, special tokens kept.
    fn lower(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if let Some(t) = self
                .special
                .iter()
                .find(|t| !t.is_empty() && rest.starts_with(t.as_str()))
            {
                out.push_str(t);
                rest = &rest[t.len()..];
            } else {
                // `.+?` does not match a line break, which lowers to itself anyway
                out.extend(c.to_lowercase());
                rest = &rest[c.len_utf8()..];
            }
        }
        out
    }

    /// The ids of `text` without the closing `</s>`: steps 1 to 4.
    fn pieces_of(&self, text: &str) -> Result<Vec<u32>, ToolkitError> {
        let mut t = String::with_capacity(text.len() + 3);
        t.push('\u{2581}');
        t.push_str(&text.replace('\u{2581}', " "));
        if self.lower_case {
            t = self.lower(&t);
        }
        // split on the added tokens: (text, None) or (content, Some(token))
        let mut parts: Vec<(String, Option<&Added>)> = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < t.len() {
            if let Some(a) = self.added_at(&t[i..]) {
                if start < i {
                    parts.push((t[start..i].to_owned(), None));
                }
                parts.push((a.content.clone(), Some(a)));
                i += a.content.len();
                start = i;
            } else {
                i += t[i..].chars().next().map_or(1, char::len_utf8);
            }
        }
        if start < t.len() {
            parts.push((t[start..].to_owned(), None));
        }
        for k in 0..parts.len() {
            if let Some(a) = parts[k].1 {
                let (lstrip, rstrip) = (a.lstrip, a.rstrip);
                if rstrip && k + 1 < parts.len() {
                    parts[k + 1].0 = parts[k + 1].0.trim_start_matches(py_space).to_owned();
                }
                if lstrip && k > 0 {
                    parts[k - 1].0 = parts[k - 1].0.trim_end_matches(py_space).to_owned();
                }
            }
        }
        // (id, is a lone "▁", is special)
        let mut tokens: Vec<(u32, bool, bool)> = Vec::new();
        for (text, added) in &parts {
            if text.is_empty() {
                continue;
            }
            if let Some(a) = added {
                tokens.push((a.id, false, true));
                continue;
            }
            let canonical = canonicalize(text);
            let enc = self.pieces.encode(canonical.as_str(), false).map_err(|e| {
                ToolkitError::InvalidParameters(format!("tokenization failed: {e}"))
            })?;
            for (id, tok) in enc.get_ids().iter().zip(enc.get_tokens()) {
                tokens.push((*id, tok == "\u{2581}", false));
            }
        }
        if tokens.len() > 1 && tokens[0].1 && tokens[1].2 {
            tokens.remove(0);
        }
        Ok(tokens.into_iter().map(|(id, _, _)| id).collect())
    }

    /// `tokenizer(text, padding="max_length", max_length=max_length, truncation=True)`, as the
    /// zero-shot image pipeline calls it for SigLIP (`max_length` 64). `None`: no truncation
    /// and no padding (`tokenizer(text)`).
    pub fn encode(
        &self,
        text: &str,
        max_length: Option<usize>,
    ) -> Result<SiglipEncoding, ToolkitError> {
        let mut ids = self.pieces_of(text)?;
        if let Some(max) = max_length {
            if max == 0 {
                return Err(ToolkitError::InvalidParameters(
                    "max_length must leave room for </s>".into(),
                ));
            }
            ids.truncate(max - 1);
        }
        if ids.last() != Some(&self.eos_id) {
            ids.push(self.eos_id);
        }
        let mut attention_mask = vec![1; ids.len()];
        if let Some(max) = max_length {
            ids.resize(max.max(ids.len()), self.pad_id);
            attention_mask.resize(ids.len(), 0);
        }
        Ok(SiglipEncoding {
            ids,
            attention_mask,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalization_is_big_vision_s() {
        assert_eq!(
            canonicalize("  Hello,   World!!\t\u{3000}x\u{1c}y  "),
            "Hello World x y"
        );
        assert_eq!(canonicalize("“quoted” ¿qué?"), "“quoted” ¿qué");
        assert_eq!(canonicalize("!!!"), "");
        assert_eq!(canonicalize("\u{2581} a"), "\u{2581} a");
    }
}
