//! `table-question-answering`: transformers' `TableQuestionAnsweringPipeline`
//! (`pipelines/table_question_answering.py`) with a TAPAS model.

use serde::{Deserialize, Serialize};

use super::{PaddingArg, TruncationArg};

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
