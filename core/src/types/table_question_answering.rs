//! `table-question-answering`: transformers' `TableQuestionAnsweringPipeline`
//! (`pipelines/table_question_answering.py`) with a TAPAS model.

use serde::{Deserialize, Serialize};

use super::{OneOrMany, PaddingArg, TruncationArg};

/// `{"inputs": {"query": ..., "table": {...}}, "parameters": {...}}`, or a list of such objects
/// under `inputs`. The toolkit's form without `inputs` (`{"query": ..., "table": ...}`) is moved
/// under `inputs` before this type is read ([`normalize_request`]).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TableQuestionAnsweringRequest {
    /// One table with its questions, or a list of them.
    pub inputs: OneOrMany<TableQuery>,
    /// Parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<TableQuestionAnsweringParameters>,
}

/// A question (or several) about one table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TableQuery {
    /// The question(s).
    pub query: OneOrMany<String>,
    /// Column name to the column's cells (in the request's order); the pipeline checks that
    /// every cell is a string and every column as long as the first.
    pub table: serde_json::Map<String, serde_json::Value>,
}

/// Moves the toolkit's form without `inputs` under `inputs`, as its `data.pop("inputs", data)`
/// does.
pub fn normalize_request(mut request: serde_json::Value) -> serde_json::Value {
    if let serde_json::Value::Object(map) = &mut request {
        if !map.contains_key("inputs") {
            let parameters = map.remove("parameters");
            let inputs = serde_json::Value::Object(std::mem::take(map));
            map.insert("inputs".into(), inputs);
            if let Some(p) = parameters {
                map.insert("parameters".into(), p);
            }
        }
    }
    request
}

/// The pipeline's parameters (`null` means the default).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TableQuestionAnsweringParameters {
    /// Run the queries one after another, each seeing the cells the previous one selected
    /// (SQA-style conversations); default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential: Option<bool>,
    /// `true`/`"longest"` (default) pads the queries to the longest, `"max_length"` to the
    /// model's window, `false`/`"do_not_pad"` not at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding: Option<PaddingArg>,
    /// `true`/`"drop_rows_to_fit"` (default) drops the last rows (and trims cells) until the
    /// table fits the window; `false`/`"do_not_truncate"` refuses a table that does not fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncation: Option<TruncationArg>,
}

/// One answer, as transformers formats it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct TableAnswer {
    /// The cells joined by `", "`, after `"<AGGREGATOR> > "` unless the operator is the model's
    /// "no aggregation" one.
    pub answer: String,
    /// `[row, column]` of each selected cell, sorted.
    pub coordinates: Vec<[usize; 2]>,
    /// The selected cells' texts.
    pub cells: Vec<String>,
    /// The aggregation operator, for models with an aggregation head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregator: Option<String>,
}
