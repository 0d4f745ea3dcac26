//! transformers' `TapasTokenizer` (4.51, `models/tapas/tokenization_tapas.py`), which ships as a
//! slow tokenizer only (`vocab.txt` and its own table logic): text is cut around the special
//! tokens, each piece whose text has no letter or digit (or is `n/a`, `?`, `nan`) becomes
//! `[EMPTY]`, and the rest goes through BERT's basic tokenizer and WordPiece (here the
//! `tokenizers` crate's `BertNormalizer`, `BertPreTokenizer` and `WordPiece` on the same
//! vocabulary). A table is flattened row by row after the question
//! (`[CLS] question [SEP] header cells... row cells...`), with seven token type ids per token:
//! segment (0 question, 1 table), column (1-based, 0 outside the table), row (0 header, 1-based
//! data rows), previous answer (0 here; the pipeline sets it for `sequential`), column rank and
//! inverse rank of the cell's number or date within its column, and the cell's numeric relation
//! to the numbers and dates of the question (bits: 1 equal, 2 the question's is less, 4
//! greater). `drop_rows_to_fit` keeps the most rows, then the most tokens per cell (whole words
//! only), that fit in the window.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use tokenizers::Tokenizer;

use super::tapas_numeric::{self as numeric, NumericValue};
use crate::error::ToolkitError;
pub use crate::model::tapas::CHANNELS;

/// A table: column names and cells, row-major (every row as long as `columns`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The header.
    pub columns: Vec<String>,
    /// The data rows.
    pub rows: Vec<Vec<String>>,
}

/// One encoded question over a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEncoding {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Seven token type ids per token (see [`CHANNELS`]).
    pub token_types: Vec<[u32; CHANNELS]>,
}

/// `truncation`: `drop_rows_to_fit` or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// `true` / `"drop_rows_to_fit"`.
    DropRowsToFit,
    /// `false` / `"do_not_truncate"`.
    None,
}

/// A token of a cell or question: its id and whether it continues a word (`##`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    id: u32,
    inner: bool,
}

/// The tokenizer.
pub struct TapasTokenizer {
    wordpiece: Tokenizer,
    /// Special tokens as they are cut out of texts, with their ids.
    specials: Vec<(String, u32)>,
    cls: u32,
    sep: u32,
    pad: u32,
    empty: u32,
    model_max_length: usize,
    max_row_id: usize,
    max_column_id: usize,
    cell_trim_length: Option<usize>,
    strip_column_names: bool,
    min_question_length: Option<usize>,
    max_question_length: Option<usize>,
}

impl std::fmt::Debug for TapasTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapasTokenizer")
            .field("model_max_length", &self.model_max_length)
            .finish_non_exhaustive()
    }
}

fn load_error(dir: &Path, what: impl std::fmt::Display) -> ToolkitError {
    ToolkitError::model_load(format!("{}: {what}", dir.display()))
}

impl TapasTokenizer {
    /// Loads `vocab.txt` and `tokenizer_config.json` from a model directory.
    pub fn load(dir: &Path) -> Result<Self, ToolkitError> {
        let vocab_text = std::fs::read_to_string(dir.join("vocab.txt")).map_err(|e| {
            ToolkitError::model_load_with(
                format!(
                    "{} has no readable vocab.txt (TapasTokenizer needs it)",
                    dir.display()
                ),
                e,
            )
        })?;
        let cfg: serde_json::Value =
            match std::fs::read_to_string(dir.join("tokenizer_config.json")) {
                Ok(text) => serde_json::from_str(&text)
                    .map_err(|e| load_error(dir, format!("invalid tokenizer_config.json: {e}")))?,
                Err(_) => serde_json::Value::Object(Default::default()),
            };
        Self::from_parts(dir, &vocab_text, &cfg)
    }

    fn from_parts(
        dir: &Path,
        vocab_text: &str,
        cfg: &serde_json::Value,
    ) -> Result<Self, ToolkitError> {
        let mut vocab: HashMap<String, u32> = HashMap::new();
        // load_vocab: one token a line, a later duplicate taking the id
        for (i, line) in vocab_text.split_inclusive('\n').enumerate() {
            let token = line.strip_suffix('\n').unwrap_or(line);
            vocab.insert(token.to_owned(), i as u32);
        }
        let size = vocab_text.split_inclusive('\n').count() as u32;
        let text = |key: &str, default: &str| {
            cfg.get(key)
                .and_then(|v| {
                    v.as_str()
                        .or_else(|| v.get("content").and_then(serde_json::Value::as_str))
                })
                .unwrap_or(default)
                .to_owned()
        };
        let uint = |key: &str| cfg.get(key).and_then(serde_json::Value::as_u64);
        if cfg
            .get("do_lower_case")
            .and_then(serde_json::Value::as_bool)
            == Some(false)
        {
            return Err(load_error(
                dir,
                "TapasTokenizer with do_lower_case false is not supported",
            ));
        }
        let unk = text("unk_token", "[UNK]");
        // added tokens not in the vocabulary take the next ids (tokenizer_config.json's
        // added_tokens_decoder says which)
        let mut added: HashMap<String, u32> = HashMap::new();
        if let Some(map) = cfg
            .get("added_tokens_decoder")
            .and_then(serde_json::Value::as_object)
        {
            for (id, tok) in map {
                if let (Ok(id), Some(content)) = (
                    id.parse::<u32>(),
                    tok.get("content").and_then(serde_json::Value::as_str),
                ) {
                    added.insert(content.to_owned(), id);
                }
            }
        }
        let mut next = size;
        let mut id_of = |token: &str| -> u32 {
            if let Some(&id) = added.get(token).or_else(|| vocab.get(token)) {
                return id;
            }
            let id = next;
            next += 1;
            id
        };
        let names = [
            unk.clone(),
            text("sep_token", "[SEP]"),
            text("pad_token", "[PAD]"),
            text("cls_token", "[CLS]"),
            text("mask_token", "[MASK]"),
            text("empty_token", "[EMPTY]"),
        ];
        let ids: Vec<u32> = names.iter().map(|n| id_of(n)).collect();
        let mut specials: Vec<(String, u32)> = names.iter().cloned().zip(ids.clone()).collect();
        // longest first, so that a special token that contains another wins
        specials.sort_by_key(|(s, _)| std::cmp::Reverse(s.chars().count()));
        let model_max_length = match cfg
            .get("model_max_length")
            .and_then(serde_json::Value::as_f64)
        {
            Some(m) if (1.0..1e12).contains(&m) => m as usize,
            _ => 512,
        };
        let vocab_json: serde_json::Map<String, serde_json::Value> = vocab
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(*v)))
            .collect();
        let json = serde_json::json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": [],
            "normalizer": {
                "type": "BertNormalizer",
                "clean_text": true,
                "handle_chinese_chars": cfg.get("tokenize_chinese_chars").and_then(serde_json::Value::as_bool).unwrap_or(true),
                "strip_accents": cfg.get("strip_accents").cloned().unwrap_or(serde_json::Value::Null),
                "lowercase": true
            },
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": null,
            "decoder": null,
            "model": {
                "type": "WordPiece",
                "unk_token": unk,
                "continuing_subword_prefix": "##",
                "max_input_chars_per_word": 100,
                "vocab": vocab_json
            }
        });
        let wordpiece = Tokenizer::from_str(&json.to_string())
            .map_err(|e| load_error(dir, format!("cannot build the WordPiece tokenizer: {e}")))?;
        let opt = |key: &str| uint(key).map(|v| v as usize);
        Ok(Self {
            wordpiece,
            specials,
            sep: ids[1],
            pad: ids[2],
            cls: ids[3],
            empty: ids[5],
            model_max_length,
            max_row_id: opt("max_row_id").unwrap_or(model_max_length),
            max_column_id: opt("max_column_id").unwrap_or(model_max_length),
            cell_trim_length: cfg
                .get("cell_trim_length")
                .and_then(serde_json::Value::as_i64)
                .and_then(|v| usize::try_from(v).ok()),
            strip_column_names: cfg
                .get("strip_column_names")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
            min_question_length: opt("min_question_length"),
            max_question_length: opt("max_question_length"),
        })
    }

    /// `model_max_length`: the window `drop_rows_to_fit` fits the table into.
    pub fn model_max_length(&self) -> usize {
        self.model_max_length
    }

    /// The `[PAD]` id.
    pub fn pad_id(&self) -> u32 {
        self.pad
    }

    /// transformers' `tokenize`: special tokens cut out, then each piece as `_tokenize` does.
    fn tokenize(&self, text: &str) -> Result<Vec<Piece>, ToolkitError> {
        let mut out = Vec::new();
        let mut rest = text;
        loop {
            // the leftmost special token
            let found = self
                .specials
                .iter()
                .filter_map(|(s, id)| rest.find(s.as_str()).map(|at| (at, s.len(), *id)))
                .min_by_key(|(at, len, _)| (*at, std::cmp::Reverse(*len)));
            let (piece, special, after) = match found {
                Some((at, len, id)) => (&rest[..at], Some(id), &rest[at + len..]),
                None => (rest, None, ""),
            };
            if !piece.is_empty() {
                self.tokenize_piece(piece, &mut out)?;
            }
            match special {
                Some(id) => out.push(Piece { id, inner: false }),
                None => break,
            }
            rest = after;
        }
        Ok(out)
    }

    /// transformers' `TapasTokenizer._tokenize`.
    fn tokenize_piece(&self, text: &str, out: &mut Vec<Piece>) -> Result<(), ToolkitError> {
        if is_empty_text(text) {
            out.push(Piece {
                id: self.empty,
                inner: false,
            });
            return Ok(());
        }
        let enc = self
            .wordpiece
            .encode(text, false)
            .map_err(|e| ToolkitError::Internal(format!("tokenization failed: {e}")))?;
        out.extend(
            enc.get_ids()
                .iter()
                .zip(enc.get_tokens())
                .map(|(&id, t)| Piece {
                    id,
                    inner: t.starts_with("##"),
                }),
        );
        Ok(())
    }

    /// Checks the table's shape against the tokenizer's limits (`max_row_id`, `max_column_id`).
    fn check_shape(&self, table: &Table, truncation: Truncation) -> Result<usize, ToolkitError> {
        if table.columns.len() >= self.max_column_id {
            return Err(ToolkitError::Validation(format!(
                "the table has {} columns; this model takes fewer than {}",
                table.columns.len(),
                self.max_column_id
            )));
        }
        let rows = table.rows.len();
        if rows >= self.max_row_id {
            if truncation == Truncation::DropRowsToFit {
                return Ok(self.max_row_id - 1);
            }
            return Err(ToolkitError::Validation(format!(
                "the table has {rows} rows; this model takes fewer than {} (send fewer rows, or pass \"truncation\": true to drop the rows that do not fit)",
                self.max_row_id
            )));
        }
        Ok(rows)
    }

    /// Encodes each question over the table, as `tokenizer(table, queries, truncation=...,
    /// max_length=...)` does (unpadded; `max_length` defaults to `model_max_length`).
    pub fn encode(
        &self,
        table: &Table,
        queries: &[String],
        truncation: Truncation,
        max_length: Option<usize>,
    ) -> Result<Vec<TableEncoding>, ToolkitError> {
        let all_rows = self.check_shape(table, truncation)?;
        let num_columns = table.columns.len();
        // the tokenized table: the header row, then the data rows
        let mut cells: Vec<Vec<Vec<Piece>>> = Vec::with_capacity(table.rows.len() + 1);
        cells.push(
            table
                .columns
                .iter()
                .map(|c| self.tokenize(if self.strip_column_names { "" } else { c }))
                .collect::<Result<_, _>>()?,
        );
        for row in &table.rows {
            cells.push(
                row.iter()
                    .map(|c| self.tokenize(c))
                    .collect::<Result<_, _>>()?,
            );
        }
        let max_cell_tokens = cells
            .iter()
            .flat_map(|r| r.iter().map(Vec::len))
            .max()
            .unwrap_or(0);
        // numbers and dates of the whole table, consolidated per column
        let column_values: Vec<Vec<Option<NumericValue>>> = (0..num_columns)
            .map(|c| {
                let texts: Vec<&str> = table
                    .rows
                    .iter()
                    .map(|r| r.get(c).map_or("", String::as_str))
                    .collect();
                numeric::consolidate_column(&texts)
            })
            .collect();
        let ranks = column_ranks(&column_values);
        let mut out = Vec::with_capacity(queries.len());
        for query in queries {
            let mut q_tokens = self.tokenize(query)?;
            let mut query = query.as_str();
            let too_long = self.max_question_length.is_some_and(|m| q_tokens.len() > m);
            let too_short = self.min_question_length.is_some_and(|m| q_tokens.len() < m);
            if too_long || too_short {
                q_tokens.clear();
                query = "";
            }
            let (num_rows, num_tokens) = match truncation {
                Truncation::None => (all_rows, max_cell_tokens),
                Truncation::DropRowsToFit => self.fit(
                    &cells,
                    q_tokens.len(),
                    all_rows,
                    num_columns,
                    max_length.unwrap_or(self.model_max_length),
                    max_cell_tokens,
                ),
            };
            let relations = question_relations(query, &column_values);
            let mut ids = Vec::new();
            let mut types = Vec::new();
            ids.push(self.cls);
            ids.extend(q_tokens.iter().map(|p| p.id));
            ids.push(self.sep);
            types.resize(ids.len(), [0u32; CHANNELS]);
            for_each_value(
                &cells,
                num_columns,
                num_rows,
                num_tokens,
                |row, col, piece| {
                    let (rank, inv) = if row > 0 { ranks[col][row - 1] } else { (0, 0) };
                    let relation = if row > 0 { relations[col][row - 1] } else { 0 };
                    ids.push(piece.id);
                    types.push([1, col as u32 + 1, row as u32, 0, rank, inv, relation]);
                },
            );
            if let Some(m) = max_length {
                if ids.len() > m {
                    return Err(ToolkitError::InputTooLong(format!(
                        "the question and the table's header take {} tokens, more than the {m} allowed",
                        ids.len()
                    )));
                }
            }
            out.push(TableEncoding {
                ids,
                token_types: types,
            });
        }
        Ok(out)
    }

    /// `_get_truncated_table_rows` with `drop_rows_to_fit`: the rows and tokens per cell kept.
    /// transformers recounts the table for every candidate; here each row's tokens are counted
    /// once by where their word starts, and a dropped row's counts are taken off.
    fn fit(
        &self,
        cells: &[Vec<Vec<Piece>>],
        question_tokens: usize,
        mut num_rows: usize,
        num_columns: usize,
        max_length: usize,
        max_cell_tokens: usize,
    ) -> (usize, usize) {
        let budget = max_length as i64 - (question_tokens as i64 + 2);
        let max_tokens = match self.cell_trim_length {
            Some(t) if max_cell_tokens > t => t,
            _ => max_cell_tokens,
        };
        // per row: how many tokens belong to a word starting at each index
        let histogram = |row: &Vec<Vec<Piece>>| {
            let mut h = vec![0i64; max_cell_tokens + 1];
            for cell in row.iter().take(num_columns) {
                for i in 0..cell.len() {
                    h[word_begin(cell, i).max(0) as usize] += 1;
                }
            }
            h
        };
        let rows: Vec<Vec<i64>> = cells.iter().take(num_rows + 1).map(histogram).collect();
        let mut totals = vec![0i64; max_cell_tokens + 1];
        for h in &rows {
            for (t, x) in totals.iter_mut().zip(h) {
                *t += x;
            }
        }
        loop {
            // _get_max_num_tokens: the cost of n + 1 tokens a cell is every token whose word
            // starts before n + 1
            let mut num_tokens = 0usize;
            let mut cost = 0i64;
            for n in 0..=max_tokens {
                num_tokens = n;
                cost += totals.get(n).copied().unwrap_or(0);
                if cost > budget {
                    break;
                }
            }
            let fits =
                !(num_tokens < max_tokens && (self.cell_trim_length.is_some() || num_tokens == 0));
            if fits {
                return (num_rows, num_tokens.max(1));
            }
            if num_rows <= 1 {
                return (0, 1);
            }
            if let Some(h) = rows.get(num_rows) {
                for (t, x) in totals.iter_mut().zip(h) {
                    *t -= x;
                }
            }
            num_rows -= 1;
        }
    }
}

/// Where the word of piece `i` starts: the last piece at or before it that does not continue a
/// word (-1 when every piece before continues one).
fn word_begin(cell: &[Piece], i: usize) -> i64 {
    let mut begin = i as i64;
    while begin >= 0 && cell[begin as usize].inner {
        begin -= 1;
    }
    begin
}

/// transformers' `format_text(text) == EMPTY_TEXT`: no letter or digit left once punctuation is
/// removed, or `n/a`, `?`, `nan`.
fn is_empty_text(text: &str) -> bool {
    let t = text.to_lowercase();
    let t = t.trim();
    matches!(t, "n/a" | "?" | "nan") || !t.chars().any(char::is_alphanumeric)
}

/// `_get_table_values`: every kept token, row by row, with its row (0: header) and column, of
/// the first `num_rows` data rows; a cell keeps the tokens of the words that start before
/// `num_tokens`.
fn for_each_value(
    cells: &[Vec<Vec<Piece>>],
    num_columns: usize,
    num_rows: usize,
    num_tokens: usize,
    mut f: impl FnMut(usize, usize, Piece),
) {
    for (row, row_cells) in cells.iter().enumerate().take(num_rows + 1) {
        for (col, cell) in row_cells.iter().enumerate().take(num_columns) {
            for (i, piece) in cell.iter().enumerate() {
                if word_begin(cell, i) < num_tokens as i64 {
                    f(row, col, *piece);
                }
            }
        }
    }
}

/// `_get_numeric_column_ranks`: per column and data row, the (rank, inverse rank) of the cell's
/// value among the column's distinct values (0, 0 without one).
fn column_ranks(columns: &[Vec<Option<NumericValue>>]) -> Vec<Vec<(u32, u32)>> {
    columns
        .iter()
        .map(|values| {
            let mut out = vec![(0, 0); values.len()];
            let present: Vec<&NumericValue> = values.iter().flatten().collect();
            if present.is_empty() {
                return out;
            }
            let Some(fields) = numeric::sort_key_fields(present.iter().copied()) else {
                return out;
            };
            let mut keys: Vec<numeric::SortKey> = present
                .iter()
                .map(|v| numeric::sort_key(v, fields))
                .collect();
            keys.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            keys.dedup();
            for (row, v) in values.iter().enumerate() {
                if let Some(v) = v {
                    let k = numeric::sort_key(v, fields);
                    if let Some(rank) = keys.iter().position(|x| *x == k) {
                        out[row] = (rank as u32 + 1, (keys.len() - rank) as u32);
                    }
                }
            }
            out
        })
        .collect()
}

/// `_get_numeric_relations`: per column and data row, the set of relations (bits) between the
/// question's values and the cell's.
fn question_relations(query: &str, columns: &[Vec<Option<NumericValue>>]) -> Vec<Vec<u32>> {
    let spans = numeric::parse_text(&numeric::normalize_for_match(query));
    columns
        .iter()
        .map(|values| {
            let mut out = vec![0u32; values.len()];
            let present: Vec<&NumericValue> = values.iter().flatten().collect();
            if present.is_empty() {
                return out;
            }
            for q in spans.iter().flat_map(|s| &s.values) {
                let Some(fields) =
                    numeric::sort_key_fields(present.iter().copied().chain(std::iter::once(q)))
                else {
                    continue;
                };
                let qk = numeric::sort_key(q, fields);
                for (row, v) in values.iter().enumerate() {
                    if let Some(v) = v {
                        out[row] |= numeric::relation_bit(&qk, &numeric::sort_key(v, fields));
                    }
                }
            }
            out
        })
        .collect()
}
