//! SentencePiece models (`*.spm`, `spiece.model`) for tokenizers that ship no `tokenizer.json`:
//! the protobuf `ModelProto` is read (pieces, scores, types, the normalizer's precompiled
//! character map) and turned into a `tokenizers` unigram tokenizer that segments as SentencePiece
//! does (the layout transformers' `SpmConverter` produces for fast tokenizers). Used for Marian
//! (`MarianTokenizer`: `source.spm` segments, `vocab.json` numbers the pieces, `</s>` closes the
//! input) and SigLIP (`SiglipTokenizer`: `spiece.model` alone, see `tokenize::siglip`).

use base64::Engine;
use serde_json::{json, Map, Value};

use crate::error::ToolkitError;

/// A piece of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    /// The text (`▁` for spaces).
    pub piece: String,
    /// Log-probability (unigram).
    pub score: f32,
    /// 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    pub kind: u64,
}

/// What we need of a SentencePiece `ModelProto`.
#[derive(Debug, Clone, Default)]
pub struct SpmModel {
    /// The vocabulary, in id order.
    pub pieces: Vec<Piece>,
    /// `trainer_spec.model_type`: 1 unigram, 2 BPE.
    pub model_type: u64,
    /// `normalizer_spec.precompiled_charsmap`.
    pub charsmap: Vec<u8>,
    /// `normalizer_spec.add_dummy_prefix` (default true).
    pub add_dummy_prefix: bool,
}

fn bad(e: &str) -> ToolkitError {
    ToolkitError::model_load(format!("not a SentencePiece model: {e}"))
}

/// A protobuf reader over one message.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ToolkitError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| bad("truncated varint"))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("varint too long"))
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], ToolkitError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| bad("truncated field"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next `(field, value)`; `None` at the end.
    fn field(&mut self) -> Result<Option<(u64, Field<'a>)>, ToolkitError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => Field::Fixed(self.bytes(8)?),
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| bad("length"))?;
                Field::Bytes(self.bytes(n)?)
            }
            5 => Field::Fixed(self.bytes(4)?),
            w => return Err(bad(&format!("wire type {w}"))),
        };
        Ok(Some((key >> 3, value)))
    }
}

enum Field<'a> {
    Varint(u64),
    Fixed(&'a [u8]),
    Bytes(&'a [u8]),
}

impl SpmModel {
    /// Parses a serialized `ModelProto`.
    pub fn parse(buf: &[u8]) -> Result<Self, ToolkitError> {
        let mut m = SpmModel {
            model_type: 1,
            add_dummy_prefix: true,
            ..Default::default()
        };
        let mut r = Reader { buf, pos: 0 };
        while let Some((f, v)) = r.field()? {
            match (f, v) {
                (1, Field::Bytes(b)) => {
                    let mut p = Piece {
                        piece: String::new(),
                        score: 0.0,
                        kind: 1,
                    };
                    let mut pr = Reader { buf: b, pos: 0 };
                    while let Some((pf, pv)) = pr.field()? {
                        match (pf, pv) {
                            (1, Field::Bytes(s)) => {
                                p.piece = String::from_utf8(s.to_vec())
                                    .map_err(|_| bad("piece is not UTF-8"))?
                            }
                            (2, Field::Fixed(x)) if x.len() == 4 => {
                                p.score = f32::from_le_bytes([x[0], x[1], x[2], x[3]])
                            }
                            (3, Field::Varint(t)) => p.kind = t,
                            _ => {}
                        }
                    }
                    m.pieces.push(p);
                }
                (2, Field::Bytes(b)) => {
                    let mut tr = Reader { buf: b, pos: 0 };
                    while let Some((tf, tv)) = tr.field()? {
                        if let (3, Field::Varint(t)) = (tf, tv) {
                            m.model_type = t;
                        }
                    }
                }
                (3, Field::Bytes(b)) => {
                    let mut nr = Reader { buf: b, pos: 0 };
                    while let Some((nf, nv)) = nr.field()? {
                        match (nf, nv) {
                            (2, Field::Bytes(c)) => m.charsmap = c.to_vec(),
                            (3, Field::Varint(v)) => m.add_dummy_prefix = v != 0,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if m.pieces.is_empty() {
            return Err(bad("no pieces"));
        }
        Ok(m)
    }

    /// The `tokenizer.json` of a Marian tokenizer: this (source) model's segmentation, with ids
    /// from `vocab` (`vocab.json`), `eos` appended, `unk` for pieces outside `vocab`, and the
    /// special tokens (`eos`, `unk`, `pad`) and language codes (`>>xx<<`) as added tokens.
    pub fn marian_tokenizer_json(
        &self,
        vocab: &Map<String, Value>,
        eos: &str,
        unk: &str,
        pad: &str,
    ) -> Result<Value, ToolkitError> {
        if self.model_type != 1 {
            return Err(ToolkitError::model_load(
                "only unigram SentencePiece models are supported for Marian",
            ));
        }
        let mut by_id: Vec<Option<&str>> = Vec::new();
        for (piece, id) in vocab {
            let id = id
                .as_u64()
                .and_then(|i| usize::try_from(i).ok())
                .ok_or_else(|| {
                    ToolkitError::model_load(format!(
                        "vocab.json: id of {piece:?} is not an integer"
                    ))
                })?;
            if id >= by_id.len() {
                by_id.resize(id + 1, None);
            }
            by_id[id] = Some(piece.as_str());
        }
        let scores: std::collections::HashMap<&str, f32> = self
            .pieces
            .iter()
            .map(|p| (p.piece.as_str(), p.score))
            .collect();
        let mut model_vocab = Vec::with_capacity(by_id.len());
        for (id, piece) in by_id.iter().enumerate() {
            let piece = piece.ok_or_else(|| {
                ToolkitError::model_load(format!("vocab.json has no entry for id {id}"))
            })?;
            let score = scores.get(piece).copied().unwrap_or(0.0);
            model_vocab.push(json!([piece, score]));
        }
        let id_of = |t: &str| {
            vocab
                .get(t)
                .and_then(Value::as_u64)
                .ok_or_else(|| ToolkitError::model_load(format!("vocab.json has no {t:?}")))
        };
        let (eos_id, unk_id) = (id_of(eos)?, id_of(unk)?);
        let mut added = Vec::new();
        for (piece, special) in [(eos, true), (unk, true), (pad, true)] {
            if let Ok(id) = id_of(piece) {
                added.push(
                    json!({"id": id, "content": piece, "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": false, "special": special}),
                );
            }
        }
        for (piece, id) in vocab {
            if piece.starts_with(">>") && piece.ends_with("<<") && piece.len() > 4 {
                added.push(
                    json!({"id": id, "content": piece, "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": false, "special": false}),
                );
            }
        }
        let mut normalizers = Vec::new();
        if !self.charsmap.is_empty() {
            normalizers.push(json!({
                "type": "Precompiled",
                "precompiled_charsmap": base64::engine::general_purpose::STANDARD.encode(&self.charsmap),
            }));
        }
        normalizers.push(json!({"type": "Strip", "strip_left": false, "strip_right": true}));
        normalizers
            .push(json!({"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": "\u{2581}"}));
        let prepend = if self.add_dummy_prefix {
            "always"
        } else {
            "never"
        };
        let metaspace = json!({"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": prepend, "split": true});
        Ok(json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": {"type": "Sequence", "normalizers": normalizers},
            "pre_tokenizer": metaspace,
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": eos, "type_id": 0}}],
                "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": eos, "type_id": 0}}],
                "special_tokens": {eos: {"id": eos, "ids": [eos_id], "tokens": [eos]}},
            },
            "decoder": metaspace,
            "model": {"type": "Unigram", "unk_id": unk_id, "vocab": model_vocab, "byte_fallback": false},
        }))
    }
}

impl SpmModel {
    /// A `tokenizers` unigram tokenizer that segments as this model's `SentencePieceProcessor`
    /// with `add_dummy_prefix` switched off (as `SiglipTokenizer.get_spm_processor` loads it):
    /// the character map, `▁` read as a space, runs of spaces as one and trailing ones dropped
    /// (`remove_extra_whitespaces`; a leading one is kept: SigLIP's text always follows a
    /// prefix), spaces as `▁` and the pieces' own ids; no special tokens (the caller splits
    /// them off first). Control and unused pieces are in the vocabulary as SentencePiece's are,
    /// but only text that contains their characters could reach them (`<pad>`, `</s>`: SigLIP
    /// strips `<` and `>` from its text first).
    pub fn unigram_no_dummy_prefix_json(&self) -> Result<Value, ToolkitError> {
        if self.model_type != 1 {
            return Err(ToolkitError::model_load(
                "only unigram SentencePiece models are supported (trainer_spec.model_type 1)",
            ));
        }
        let unk_id = self
            .pieces
            .iter()
            .position(|p| p.kind == 2)
            .ok_or_else(|| {
                ToolkitError::model_load("the SentencePiece model has no unknown piece")
            })?;
        let vocab: Vec<Value> = self
            .pieces
            .iter()
            .map(|p| json!([p.piece, p.score]))
            .collect();
        let mut normalizers = Vec::new();
        if !self.charsmap.is_empty() {
            normalizers.push(json!({
                "type": "Precompiled",
                "precompiled_charsmap": base64::engine::general_purpose::STANDARD.encode(&self.charsmap),
            }));
        }
        normalizers
            .push(json!({"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "}));
        normalizers.push(json!({"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}));
        normalizers.push(json!({"type": "Strip", "strip_left": false, "strip_right": true}));
        let metaspace = json!({"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "never", "split": true});
        Ok(json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": [],
            "normalizer": {"type": "Sequence", "normalizers": normalizers},
            "pre_tokenizer": metaspace,
            "post_processor": null,
            "decoder": metaspace,
            "model": {"type": "Unigram", "unk_id": unk_id, "vocab": vocab, "byte_fallback": false},
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made ModelProto: pieces "<unk>" (unknown), "▁a" (-1.5), "b" (-2), a normalizer
    /// spec without a character map and add_dummy_prefix = true, model_type unigram.
    fn proto() -> Vec<u8> {
        fn piece(text: &str, score: f32, kind: u8) -> Vec<u8> {
            let mut p = vec![0x0a, text.len() as u8];
            p.extend(text.as_bytes());
            p.push(0x15);
            p.extend(score.to_le_bytes());
            p.extend([0x18, kind]);
            let mut out = vec![0x0a, p.len() as u8];
            out.extend(p);
            out
        }
        let mut m = piece("<unk>", 0.0, 2);
        m.extend(piece("\u{2581}a", -1.5, 1));
        m.extend(piece("b", -2.0, 1));
        m.extend([0x12, 0x02, 0x18, 0x01]); // trainer_spec { model_type: 1 }
        m.extend([0x1a, 0x02, 0x18, 0x01]); // normalizer_spec { add_dummy_prefix: true }
        m
    }

    #[test]
    fn parses_pieces_scores_and_specs() {
        let m = SpmModel::parse(&proto()).unwrap();
        assert_eq!(m.pieces.len(), 3);
        assert_eq!(
            m.pieces[1],
            Piece {
                piece: "\u{2581}a".into(),
                score: -1.5,
                kind: 1
            }
        );
        assert_eq!((m.model_type, m.add_dummy_prefix), (1, true));
        assert!(SpmModel::parse(&[0x0a, 0x05, 0x01]).is_err(), "truncated");
    }

    #[test]
    fn marian_json_numbers_pieces_by_vocab_and_closes_with_eos() {
        let m = SpmModel::parse(&proto()).unwrap();
        let vocab: Map<String, Value> =
            serde_json::from_str(r#"{"</s>": 0, "<unk>": 1, "▁a": 2, "b": 3, "<pad>": 4}"#)
                .unwrap();
        let j = m
            .marian_tokenizer_json(&vocab, "</s>", "<unk>", "<pad>")
            .unwrap();
        let tok: tokenizers::Tokenizer = j.to_string().parse().unwrap();
        let enc = tok.encode("ab a", true).unwrap();
        assert_eq!(enc.get_ids(), [2, 3, 2, 0]);
        assert_eq!(tok.decode(&[2, 3, 2, 0, 4], true).unwrap(), "ab a");
    }
}
