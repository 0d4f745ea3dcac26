//! `table-question-answering`, as transformers' `TableQuestionAnsweringPipeline` (4.51) runs a
//! TAPAS model: the table (`{"column": ["cell", ...], ...}`) and each query are encoded by
//! `TapasTokenizer` (rows dropped to fit the window by default), the queries of a request padded
//! to the longest, run as one batch (or one after another with `sequential`, each seeing which
//! cells the previous one selected through the previous-answer token type), and each cell whose
//! tokens' mean selection probability exceeds 0.5 is in the answer; models with an aggregation
//! head prefix it with the operator (`"SUM > 3, 4"`) unless it is the "no aggregation" one.
//!
//! One table and one query answer with an object; several queries (or several `{table, query}`
//! objects) with a list, as transformers does.

use serde_json::{Map, Value};

use super::{Input, Pipeline, PipelineOutput, VisionParts};
use crate::context::Context;
use crate::error::ToolkitError;
use crate::model::tapas::{Tapas, TapasInput, TapasOutput};
use crate::task::Task;
use crate::tokenize::tapas::{Table, TableEncoding, TapasTokenizer, Truncation, CHANNELS};
use crate::types::table_question_answering::{
    normalize_request, TableAnswer, TableQuery, TableQuestionAnsweringParameters,
    TableQuestionAnsweringRequest,
};
use crate::types::{OneOrMany, PaddingArg, TruncationArg};

/// The pipeline.
#[derive(Debug)]
pub struct TableQuestionAnsweringPipeline {
    tokenizer: TapasTokenizer,
    model: Tapas,
    /// Aggregation operator names by index, when the model aggregates.
    aggregation_labels: Option<Vec<String>>,
    no_aggregation: Option<usize>,
    max_request_tokens: usize,
}

impl std::fmt::Debug for Tapas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tapas").finish_non_exhaustive()
    }
}

/// How the queries of one table are padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pad {
    Longest,
    MaxLength,
    None,
}

/// One `{table, query}` of a request.
struct Item {
    table: Table,
    queries: Vec<String>,
}

/// transformers' `preprocess` checks and pandas' `DataFrame(dict)`: columns of equal length,
/// strings only, at least one row and one column.
fn parse_table(obj: &Map<String, Value>, at: &str) -> Result<Table, ToolkitError> {
    let mut columns = Vec::with_capacity(obj.len());
    let mut cells: Vec<Vec<String>> = Vec::with_capacity(obj.len());
    for (name, col) in obj {
        let Some(list) = col.as_array() else {
            return Err(ToolkitError::Validation(format!(
                "column {name:?}{at} must be a list of cells (strings)"
            )));
        };
        let col_cells = list
            .iter()
            .enumerate()
            .map(|(i, c)| {
                c.as_str().map(str::to_owned).ok_or_else(|| {
                    ToolkitError::Validation(format!(
                        "cell {i} of column {name:?}{at} is {c}: every cell must be a string (send numbers and dates as text, e.g. \"36542\")"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        columns.push(name.clone());
        cells.push(col_cells);
    }
    let rows = cells.first().map_or(0, Vec::len);
    if let Some((i, c)) = cells.iter().enumerate().find(|(_, c)| c.len() != rows) {
        return Err(ToolkitError::Validation(format!(
            "the table's columns differ in length ({:?} has {rows} cells, {:?} has {}): every column needs one cell per row",
            columns[0],
            columns[i],
            c.len()
        )));
    }
    if columns.is_empty() || rows == 0 {
        return Err(ToolkitError::Validation(format!(
            "the table{at} is empty: send at least one column with at least one cell"
        )));
    }
    let rows = (0..rows)
        .map(|r| cells.iter().map(|c| c[r].clone()).collect())
        .collect();
    Ok(Table { columns, rows })
}

fn parse_item(item: TableQuery, at: &str) -> Result<Item, ToolkitError> {
    let table = parse_table(&item.table, at)?;
    let queries = match item.query {
        OneOrMany::One(q) if q.is_empty() => {
            return Err(ToolkitError::Validation(format!(
                "`query`{at} is empty: ask a question"
            )))
        }
        OneOrMany::One(q) => vec![q],
        OneOrMany::Many(qs) if qs.is_empty() => {
            return Err(ToolkitError::Validation(format!(
                "`query`{at} is an empty list: send a question or a list of questions"
            )))
        }
        OneOrMany::Many(qs) => qs,
    };
    Ok(Item { table, queries })
}

fn logistic(x: f32) -> f32 {
    // convert_logits_to_predictions clips at -88.7 so that exp does not overflow
    1.0 / (1.0 + (-x.max(-88.7)).exp())
}

/// The mean probability of every table cell (`(column, row)`, 0-based) over its tokens.
fn cell_probabilities(
    input: &TapasInput,
    out: &TapasOutput,
) -> std::collections::BTreeMap<(usize, usize), f64> {
    let mut sums: std::collections::BTreeMap<(usize, usize), (f64, usize)> = Default::default();
    for (j, t) in input.token_types.iter().enumerate() {
        if t[0] == 1 && t[1] >= 1 && t[2] >= 1 {
            let p = f64::from(logistic(out.logits[j])) * f64::from(input.attention[j]);
            let e = sums
                .entry((t[1] as usize - 1, t[2] as usize - 1))
                .or_default();
            e.0 += p;
            e.1 += 1;
        }
    }
    sums.into_iter()
        .map(|(k, (s, n))| (k, s / n as f64))
        .collect()
}

impl TableQuestionAnsweringPipeline {
    /// Wraps a tokenizer and a model.
    pub fn new(
        tokenizer: TapasTokenizer,
        model: Tapas,
        max_request_tokens: usize,
    ) -> Result<Self, ToolkitError> {
        let c = model.tapas_config();
        let aggregation_labels = match &c.aggregation_labels {
            Some(map) if !map.is_empty() && c.num_aggregation_labels > 0 => Some(
                (0..c.num_aggregation_labels)
                    .map(|i| {
                        map.get(&i.to_string()).cloned().ok_or_else(|| {
                            ToolkitError::model_load(format!(
                                "config.json: aggregation_labels has no label {i} (num_aggregation_labels is {})",
                                c.num_aggregation_labels
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            _ => None,
        };
        Ok(Self {
            no_aggregation: c.no_aggregation_label_index,
            aggregation_labels,
            tokenizer,
            model,
            max_request_tokens,
        })
    }

    fn settings(
        p: &TableQuestionAnsweringParameters,
    ) -> Result<(bool, Pad, Truncation), ToolkitError> {
        let pad = match &p.padding {
            None | Some(PaddingArg::Bool(true)) => Pad::Longest,
            Some(PaddingArg::Bool(false)) => Pad::None,
            Some(PaddingArg::Strategy(s)) => match s.as_str() {
                "longest" => Pad::Longest,
                "max_length" => Pad::MaxLength,
                "do_not_pad" => Pad::None,
                other => {
                    return Err(ToolkitError::InvalidParameters(format!(
                        "padding {other:?} is not one of true, false, \"longest\", \"max_length\", \"do_not_pad\""
                    )))
                }
            },
        };
        let truncation = match &p.truncation {
            None | Some(TruncationArg::Bool(true)) => Truncation::DropRowsToFit,
            Some(TruncationArg::Bool(false)) => Truncation::None,
            Some(TruncationArg::Strategy(s)) => match s.as_str() {
                "drop_rows_to_fit" => Truncation::DropRowsToFit,
                "do_not_truncate" => Truncation::None,
                other => {
                    return Err(ToolkitError::InvalidParameters(format!(
                        "truncation {other:?} is not one of true, false, \"drop_rows_to_fit\", \"do_not_truncate\" (TAPAS truncates by dropping rows)"
                    )))
                }
            },
        };
        Ok((p.sequential.unwrap_or(false), pad, truncation))
    }

    /// Runs a validated request document.
    pub fn answer(&self, doc: Value) -> Result<PipelineOutput, ToolkitError> {
        let request: TableQuestionAnsweringRequest =
            crate::types::from_value(normalize_request(doc))?;
        let (sequential, pad, truncation) =
            Self::settings(&request.parameters.unwrap_or_default())?;
        let items = match request.inputs {
            OneOrMany::Many(list) if list.is_empty() => {
                return Err(ToolkitError::Validation(
                    "`inputs` is an empty list: send {\"query\": ..., \"table\": {...}}".into(),
                ))
            }
            OneOrMany::Many(list) => list
                .into_iter()
                .enumerate()
                .map(|(i, v)| parse_item(v, &format!(" (input {i})")))
                .collect::<Result<Vec<_>, _>>()?,
            OneOrMany::One(item) => vec![parse_item(item, "")?],
        };
        // tokenize everything first: the request's token budget is checked before the model runs
        let mut encoded = Vec::with_capacity(items.len());
        let mut total = 0usize;
        for item in &items {
            let cells: usize = item.table.rows.len() * item.table.columns.len();
            if cells > self.max_request_tokens {
                return Err(ToolkitError::InputTooLong(format!(
                    "the table has {cells} cells, more than the limit of {} tokens per request (HF_MAX_REQUEST_TOKENS); send a smaller table",
                    self.max_request_tokens
                )));
            }
            let encs = self
                .tokenizer
                .encode(&item.table, &item.queries, truncation, None)?;
            let window = self.tokenizer.model_max_length();
            if truncation == Truncation::None {
                if let Some(e) = encs.iter().find(|e| e.ids.len() > window) {
                    return Err(ToolkitError::InputTooLong(format!(
                        "the question and table take {} tokens, more than the model's {window}; send a smaller table or pass \"truncation\": true (drops the rows that do not fit)",
                        e.ids.len()
                    )));
                }
            }
            total += encs.iter().map(|e| e.ids.len()).sum::<usize>();
            if total > self.max_request_tokens {
                return Err(ToolkitError::InputTooLong(format!(
                    "the request holds {total} tokens, more than the limit of {} per request (HF_MAX_REQUEST_TOKENS); send fewer questions or a smaller table",
                    self.max_request_tokens
                )));
            }
            encoded.push(encs);
        }
        let mut results = Vec::with_capacity(items.len());
        for (item, encs) in items.iter().zip(encoded) {
            let inputs = self.pad(encs, pad);
            let outputs = if sequential {
                self.sequential(inputs.clone())?
            } else {
                self.batch(&inputs)?
            };
            let mut answers: Vec<Value> = Vec::with_capacity(outputs.len());
            for (input, out) in inputs.iter().zip(&outputs) {
                if let Some(a) = self.format(item, input, out)? {
                    answers.push(a);
                }
            }
            results.push(if answers.len() == 1 {
                answers.pop().unwrap_or(Value::Null)
            } else {
                Value::Array(answers)
            });
        }
        Ok(PipelineOutput::Json(if results.len() == 1 {
            results.pop().unwrap_or(Value::Null)
        } else {
            Value::Array(results)
        }))
    }

    /// Pads the encodings of one table as the tokenizer's `pad` does (on the right, pad ids and
    /// zero token types).
    fn pad(&self, encs: Vec<TableEncoding>, pad: Pad) -> Vec<TapasInput> {
        let target = match pad {
            Pad::Longest => encs.iter().map(|e| e.ids.len()).max().unwrap_or(0),
            Pad::MaxLength => self.tokenizer.model_max_length(),
            Pad::None => 0,
        };
        encs.into_iter()
            .map(|e| {
                let n = e.ids.len();
                let extra = target.saturating_sub(n);
                let mut ids = e.ids;
                ids.resize(n + extra, self.tokenizer.pad_id());
                let mut token_types = e.token_types;
                token_types.resize(n + extra, [0; CHANNELS]);
                let mut attention = vec![1u32; n];
                attention.resize(n + extra, 0);
                TapasInput {
                    ids,
                    token_types,
                    attention,
                }
            })
            .collect()
    }

    /// `batch_inference`: one forward pass (sequences of unequal lengths, unpadded, run in groups
    /// of one length).
    fn batch(&self, inputs: &[TapasInput]) -> Result<Vec<TapasOutput>, ToolkitError> {
        let same = inputs.windows(2).all(|w| w[0].ids.len() == w[1].ids.len());
        if same {
            return self.model.forward(inputs);
        }
        inputs
            .iter()
            .map(|x| {
                self.model
                    .forward(std::slice::from_ref(x))?
                    .pop()
                    .ok_or_else(|| ToolkitError::Internal("missing model output".into()))
            })
            .collect()
    }

    /// `sequential_inference`: one query at a time, the previous-answer channel of each set from
    /// the cells the previous query selected (mean probability above 0.5).
    fn sequential(&self, mut inputs: Vec<TapasInput>) -> Result<Vec<TapasOutput>, ToolkitError> {
        let mut outputs: Vec<TapasOutput> = Vec::with_capacity(inputs.len());
        let mut previous: Option<std::collections::BTreeMap<(usize, usize), f64>> = None;
        for input in &mut inputs {
            if let Some(prev) = &previous {
                for t in &mut input.token_types {
                    let selected = t[0] == 1
                        && t[1] >= 1
                        && t[2] >= 1
                        && prev
                            .get(&(t[1] as usize - 1, t[2] as usize - 1))
                            .is_some_and(|&p| p > 0.5);
                    t[3] = u32::from(selected);
                }
            }
            let out = self
                .model
                .forward(std::slice::from_ref(input))?
                .pop()
                .ok_or_else(|| ToolkitError::Internal("missing model output".into()))?;
            previous = Some(cell_probabilities(input, &out));
            outputs.push(out);
        }
        Ok(outputs)
    }

    /// `convert_logits_to_predictions` and `postprocess` for one query: `None` when the
    /// sequence holds no table token (transformers skips it).
    fn format(
        &self,
        item: &Item,
        input: &TapasInput,
        out: &TapasOutput,
    ) -> Result<Option<Value>, ToolkitError> {
        let max_width = input.token_types.iter().map(|t| t[1]).max().unwrap_or(0) as usize;
        let max_height = input.token_types.iter().map(|t| t[2]).max().unwrap_or(0) as usize;
        if max_width == 0 && max_height == 0 {
            return Ok(None);
        }
        let probs = cell_probabilities(input, out);
        let mut coordinates: Vec<[usize; 2]> = probs
            .iter()
            .filter(|(&(col, row), &p)| col < max_width && row < max_height && p > 0.5)
            .map(|(&(col, row), _)| [row, col])
            .collect();
        coordinates.sort_unstable();
        let cells: Vec<String> = coordinates
            .iter()
            .map(|&[r, c]| {
                item.table
                    .rows
                    .get(r)
                    .and_then(|row| row.get(c))
                    .cloned()
                    .ok_or_else(|| {
                        ToolkitError::Internal("a selected cell outside the table".into())
                    })
            })
            .collect::<Result<_, _>>()?;
        let mut answer = cells.join(", ");
        let mut aggregator = None;
        if let (Some(labels), Some(logits)) = (&self.aggregation_labels, &out.aggregation) {
            // torch's argmax: the first maximum
            let mut best = 0;
            for (i, &v) in logits.iter().enumerate() {
                if v > logits[best] {
                    best = i;
                }
            }
            let label = labels.get(best).cloned().unwrap_or_default();
            if self.no_aggregation != Some(best) {
                answer = format!("{label} > {answer}");
            }
            aggregator = (!label.is_empty()).then_some(label);
        }
        let value = TableAnswer {
            answer,
            coordinates,
            cells,
            aggregator,
        };
        serde_json::to_value(&value)
            .map(Some)
            .map_err(|e| ToolkitError::Internal(format!("cannot encode the answer: {e}")))
    }
}

/// The registry's constructor.
pub(crate) fn build(parts: VisionParts<'_>) -> Result<Box<dyn Pipeline>, ToolkitError> {
    let tokenizer = TapasTokenizer::load(&parts.files.dir)?;
    let model = Tapas::from_files(parts.files, parts.config, &parts.device)?;
    Ok(Box::new(TableQuestionAnsweringPipeline::new(
        tokenizer,
        model,
        parts.opts.max_request_tokens,
    )?))
}

impl Pipeline for TableQuestionAnsweringPipeline {
    fn task(&self) -> Task {
        Task::TableQuestionAnswering
    }

    fn run(&self, input: Input, _ctx: Context) -> Result<PipelineOutput, ToolkitError> {
        let doc = input.into_json(Task::TableQuestionAnswering)?;
        self.answer(doc)
    }

    fn warm_up_input(&self) -> Input {
        let mut table = Map::new();
        table.insert("a".into(), serde_json::json!(["1", "2"]));
        Input::Json(serde_json::json!({"inputs": {"query": "warm up?", "table": table}}))
    }
}
