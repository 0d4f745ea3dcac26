//! The request and response types, one module per task (re-exported at the crate root). They say
//! the shape; the bounds and conditions are the schemas' ([`crate::validate_request`]). Every
//! request serialises to a body its schema accepts when its values are in bounds, and every answer
//! of the server deserialises into its response type (tested over the recorded goldens).

use serde::{Deserialize, Deserializer, Serialize};

/// One value or a list of them (`"inputs": "a"` or `"inputs": ["a", "b"]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// A single value.
    One(T),
    /// A list.
    Many(Vec<T>),
}

/// A boolean or a strategy name (`truncation`, `padding`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BoolOrStrategy {
    /// `true` or `false`.
    Bool(bool),
    /// A transformers strategy (`"longest_first"`, `"max_length"`, ...).
    Strategy(String),
}

/// A field where `null` and absent mean different things: `None` absent, `Some(None)` null.
fn absent_or_null<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// One label and its score (the classification tasks' answers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelScore {
    /// The label (the model's `id2label`).
    pub label: String,
    /// Its score.
    pub score: f64,
}

/// One answer per input: a list for one input, a list of lists for a list of inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PerInput<T> {
    /// The answer to one input.
    One(Vec<T>),
    /// One answer per input.
    Many(Vec<Vec<T>>),
}

/// `feature-extraction`: transformers' `FeatureExtractionPipeline`.
pub mod feature_extraction {
    use super::{BoolOrStrategy, OneOrMany};
    use serde::{Deserialize, Serialize};

    /// `{"inputs": ..., "parameters": ...}`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct FeatureExtractionRequest {
        /// A text or a list of texts.
        pub inputs: OneOrMany<String>,
        /// The parameters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub parameters: Option<FeatureExtractionParameters>,
    }

    /// The pipeline's parameters.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct FeatureExtractionParameters {
        /// Truncation: a boolean or a strategy.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub truncation: Option<BoolOrStrategy>,
        /// The tokenizer's arguments.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tokenize_kwargs: Option<TokenizeKwargs>,
    }

    /// `tokenize_kwargs`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct TokenizeKwargs {
        /// Truncation: a boolean or a strategy.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub truncation: Option<BoolOrStrategy>,
        /// The length to truncate to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_length: Option<u64>,
        /// Padding: a boolean or a strategy.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub padding: Option<BoolOrStrategy>,
        /// Whether to add the special tokens.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub add_special_tokens: Option<bool>,
    }

    /// Token embeddings, `[1][tokens][hidden]` for a text, one of those per text for a list.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum FeatureExtractionResponse {
        /// A text's embeddings.
        One(Vec<Vec<Vec<f64>>>),
        /// One per text of a list.
        Many(Vec<Vec<Vec<Vec<f64>>>>),
    }
}

/// `text-classification` / `sentiment-analysis`: transformers' `TextClassificationPipeline`.
pub mod text_classification {
    use super::{absent_or_null, BoolOrStrategy, LabelScore};
    use serde::{Deserialize, Serialize};

    /// A text, or a text and its pair classified together.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum TextInput {
        /// A text.
        Text(String),
        /// `{"text", "text_pair"}`.
        Pair(TextPair),
    }

    /// `{"text": ..., "text_pair": ...}`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct TextPair {
        /// The text.
        pub text: String,
        /// Its pair.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub text_pair: Option<String>,
    }

    /// What `inputs` holds.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum TextClassificationInputs {
        /// A list of texts or pairs (first: a two-element list is not a pair).
        Many(Vec<TextInput>),
        /// One text or pair.
        One(TextInput),
    }

    /// A request: the usual envelope, or the toolkit's bare `{"text", "text_pair"}` body.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum TextClassificationRequest {
        /// `{"inputs": ..., "parameters": ...}`.
        Envelope {
            /// The inputs.
            inputs: TextClassificationInputs,
            /// The parameters.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            parameters: Option<TextClassificationParameters>,
        },
        /// `{"text": ..., "text_pair": ..., "parameters": ...}`.
        Bare {
            /// The pair.
            #[serde(flatten)]
            pair: TextPair,
            /// The parameters.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            parameters: Option<TextClassificationParameters>,
        },
    }

    /// The pipeline's parameters.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct TextClassificationParameters {
        /// `Some(Some(k))` the k best labels, `Some(None)` (`null`) every label, `None` (absent)
        /// the best label (transformers' legacy output).
        #[serde(
            default,
            deserialize_with = "absent_or_null",
            skip_serializing_if = "Option::is_none"
        )]
        pub top_k: Option<Option<u64>>,
        /// `softmax`, `sigmoid` or `none` (any case).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub function_to_apply: Option<String>,
        /// Deprecated: every label's score.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub return_all_scores: Option<bool>,
        /// Truncation: a boolean or a strategy.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub truncation: Option<BoolOrStrategy>,
        /// The length to truncate to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_length: Option<u64>,
        /// Padding: a boolean or a strategy.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub padding: Option<BoolOrStrategy>,
        /// Whether to add the special tokens.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub add_special_tokens: Option<bool>,
    }

    /// The answer, shaped as transformers shapes it.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum TextClassificationResponse {
        /// One object (a bare pair without `top_k`).
        One(LabelScore),
        /// A list (a text; or one per text of a list without `top_k`).
        List(Vec<LabelScore>),
        /// One list per text.
        Nested(Vec<Vec<LabelScore>>),
    }
}

/// `token-classification` / `ner`: transformers' `TokenClassificationPipeline`.
pub mod token_classification {
    use super::OneOrMany;
    use serde::{Deserialize, Serialize};

    /// `{"inputs": ..., "parameters": ...}`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct TokenClassificationRequest {
        /// A text or a list of texts.
        pub inputs: OneOrMany<String>,
        /// The parameters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub parameters: Option<TokenClassificationParameters>,
    }

    /// The pipeline's parameters.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct TokenClassificationParameters {
        /// `none`, `simple`, `first`, `average` or `max` (any case).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub aggregation_strategy: Option<String>,
        /// Labels left out (default `["O"]`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ignore_labels: Option<Vec<String>>,
        /// Window overlap, in tokens, for texts longer than the model's window.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub stride: Option<u64>,
        /// Deprecated: `simple` aggregation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub grouped_entities: Option<bool>,
        /// Deprecated: `first` aggregation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ignore_subwords: Option<bool>,
    }

    /// A token (no aggregation) or an entity group.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum Entity {
        /// One token.
        Token {
            /// Its label.
            entity: String,
            /// Its score.
            score: f64,
            /// Its position among the tokens.
            index: u64,
            /// The vocabulary entry (`##ing`).
            word: String,
            /// Character offset of its start.
            start: u64,
            /// Character offset of its end.
            end: u64,
        },
        /// Tokens grouped into an entity.
        Group {
            /// The label without `B-`/`I-`.
            entity_group: String,
            /// Its score.
            score: f64,
            /// The text of the group.
            word: String,
            /// Character offset of its start.
            start: u64,
            /// Character offset of its end.
            end: u64,
        },
    }

    /// One list of entities per text.
    pub type TokenClassificationResponse = super::PerInput<Entity>;
}

/// `question-answering`: transformers' `QuestionAnsweringPipeline`.
pub mod question_answering {
    use super::{BoolOrStrategy, OneOrMany};
    use serde::{Deserialize, Serialize};

    /// A question and its context (either may be a list, of the same length).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct QuestionContext {
        /// The question.
        pub question: OneOrMany<String>,
        /// The context.
        pub context: OneOrMany<String>,
    }

    /// A request: the envelope, or the toolkit's form without `inputs`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum QuestionAnsweringRequest {
        /// `{"inputs": {"question", "context"} | [...], "parameters": ...}`.
        Envelope {
            /// A pair or a list of pairs.
            inputs: OneOrMany<QuestionContext>,
            /// The parameters.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            parameters: Option<QuestionAnsweringParameters>,
        },
        /// `{"question": ..., "context": ..., "parameters": ...}`.
        Bare {
            /// The pair.
            #[serde(flatten)]
            pair: QuestionContext,
            /// The parameters.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            parameters: Option<QuestionAnsweringParameters>,
        },
    }

    /// The pipeline's parameters.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct QuestionAnsweringParameters {
        /// Answers per question.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub top_k: Option<u64>,
        /// Deprecated name of `top_k`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub topk: Option<u64>,
        /// Overlap of the context's windows, in tokens.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub doc_stride: Option<u64>,
        /// Longest answer, in tokens.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_answer_len: Option<u64>,
        /// Window length, in tokens.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_seq_len: Option<u64>,
        /// Accepted (changes nothing with a fast tokenizer).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_question_len: Option<u64>,
        /// Also rank the empty answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub handle_impossible_answer: Option<bool>,
        /// Widen answers to whole words.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub align_to_words: Option<bool>,
        /// Accepted (changes nothing).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub padding: Option<BoolOrStrategy>,
    }

    /// One answer.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Answer {
        /// Its probability.
        pub score: f64,
        /// Character offset of its start in the context.
        pub start: u64,
        /// Character offset of its end.
        pub end: u64,
        /// The answer's text.
        pub answer: String,
    }

    /// One answer, or a list (`top_k` > 1); for several questions, one of those each.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum QuestionAnsweringResponse {
        /// One answer.
        One(Answer),
        /// Several answers, or one result per question.
        Many(Vec<QuestionAnsweringResult>),
    }

    /// One question's result inside a list.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum QuestionAnsweringResult {
        /// One answer.
        One(Answer),
        /// Its `top_k` answers.
        Many(Vec<Answer>),
    }
}

/// `table-question-answering`: transformers' `TableQuestionAnsweringPipeline` (TAPAS).
pub mod table_question_answering {
    use super::{BoolOrStrategy, OneOrMany};
    use serde::de::{MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::fmt;

    /// A table: column names with their cells, top to bottom, in the order of the columns (the
    /// order is the model's column order, so it is kept as written).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Table(pub Vec<(String, Vec<String>)>);

    impl Serialize for Table {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for (name, cells) in &self.0 {
                map.serialize_entry(name, cells)?;
            }
            map.end()
        }
    }

    impl<'de> Deserialize<'de> for Table {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Columns;
            impl<'de> Visitor<'de> for Columns {
                type Value = Table;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an object of columns, each a list of string cells")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Table, A::Error> {
                    let mut columns = Vec::new();
                    while let Some((name, cells)) = map.next_entry::<String, Vec<String>>()? {
                        columns.push((name, cells));
                    }
                    Ok(Table(columns))
                }
            }
            d.deserialize_map(Columns)
        }
    }

    /// One or more questions about one table.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct TableQuery {
        /// A question, or a list of questions about the same table.
        pub query: OneOrMany<String>,
        /// The table.
        pub table: Table,
    }

    /// A request: the envelope, or the toolkit's form without `inputs`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum TableQuestionAnsweringRequest {
        /// `{"inputs": {"query", "table"} | [...], "parameters": ...}`.
        Envelope {
            /// One table with its questions, or a list of them.
            inputs: OneOrMany<TableQuery>,
            /// The parameters.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            parameters: Option<TableQuestionAnsweringParameters>,
        },
        /// `{"query": ..., "table": ..., "parameters": ...}`.
        Bare {
            /// The questions and the table.
            #[serde(flatten)]
            item: TableQuery,
            /// The parameters.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            parameters: Option<TableQuestionAnsweringParameters>,
        },
    }

    /// The pipeline's parameters.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct TableQuestionAnsweringParameters {
        /// Answer the questions one after another, each seeing the previous answer's cells.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub sequential: Option<bool>,
        /// `true`/`"longest"`, `"max_length"`, `false`/`"do_not_pad"`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub padding: Option<BoolOrStrategy>,
        /// `true`/`"drop_rows_to_fit"`, `false`/`"do_not_truncate"`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub truncation: Option<BoolOrStrategy>,
    }

    /// One answer.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct TableAnswer {
        /// The cells joined by `", "`, after `"<AGGREGATOR> > "` when an operator applies.
        pub answer: String,
        /// `[row, column]` of each selected cell (0-based, the header excluded).
        pub coordinates: Vec<(u64, u64)>,
        /// The selected cells' texts.
        pub cells: Vec<String>,
        /// The aggregation operator, for models with an aggregation head.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub aggregator: Option<String>,
    }

    /// One answer for one question; a list for several questions or tables.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum TableQuestionAnsweringResponse {
        /// One answer.
        One(TableAnswer),
        /// One result per question, or per table.
        Many(Vec<TableQuestionAnsweringResult>),
    }

    /// One entry of a list of results.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum TableQuestionAnsweringResult {
        /// One answer.
        One(TableAnswer),
        /// A table's answers, one per question.
        Many(Vec<TableAnswer>),
    }
}

/// `fill-mask`: transformers' `FillMaskPipeline`.
pub mod fill_mask {
    use super::OneOrMany;
    use serde::{Deserialize, Serialize};

    /// `{"inputs": ..., "parameters": ...}`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct FillMaskRequest {
        /// A text with the model's mask token, or a list of them.
        pub inputs: OneOrMany<String>,
        /// The parameters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub parameters: Option<FillMaskParameters>,
    }

    /// The pipeline's parameters.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct FillMaskParameters {
        /// Predictions per mask (default 5).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub top_k: Option<u64>,
        /// Only score these words.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub targets: Option<OneOrMany<String>>,
    }

    /// One prediction.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct FillMaskPrediction {
        /// Its probability.
        pub score: f64,
        /// The token id.
        pub token: u64,
        /// The token's text.
        pub token_str: String,
        /// The input with the mask filled in.
        pub sequence: String,
    }

    /// Predictions; a list per mask for several masks; one of those per text for a list.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum FillMaskResponse {
        /// One text with one mask.
        One(Vec<FillMaskPrediction>),
        /// One list per mask, or per text.
        Nested(Vec<Vec<FillMaskPrediction>>),
        /// Per text, one list per mask.
        Deep(Vec<Vec<Vec<FillMaskPrediction>>>),
    }
}

/// `zero-shot-classification`: transformers' `ZeroShotClassificationPipeline`.
pub mod zero_shot_classification {
    use super::OneOrMany;
    use serde::{Deserialize, Serialize};

    /// `{"inputs": ..., "parameters": {"candidate_labels": ...}}`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ZeroShotClassificationRequest {
        /// A text or a list of texts.
        pub inputs: OneOrMany<String>,
        /// The parameters (`candidate_labels` is required by the pipeline).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub parameters: Option<ZeroShotClassificationParameters>,
    }

    /// The pipeline's parameters.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ZeroShotClassificationParameters {
        /// The labels: a list or one comma-separated string.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub candidate_labels: Option<OneOrMany<String>>,
        /// The hypothesis, with `{}` for the label.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub hypothesis_template: Option<String>,
        /// Score each label on its own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub multi_label: Option<bool>,
    }

    /// One text's labels, sorted by score.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ZeroShotResult {
        /// The text.
        pub sequence: String,
        /// The labels, best first.
        pub labels: Vec<String>,
        /// Their scores.
        pub scores: Vec<f64>,
    }

    /// One result, or one per text.
    pub type ZeroShotClassificationResponse = super::OneOrMany<ZeroShotResult>;
}

/// The JSON form of the image tasks' requests (a raw image body needs none of this).
pub mod images {
    use super::OneOrMany;
    use serde::{Deserialize, Serialize};

    /// `{"inputs": <image or list>, "parameters": {...}}`: images as base64 or
    /// `data:image/...;base64,` URIs.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[serde(bound(deserialize = "P: Deserialize<'de>"))]
    pub struct ImagesRequest<P> {
        /// One image or a list.
        pub inputs: OneOrMany<String>,
        /// The task's parameters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub parameters: Option<P>,
    }
}

/// `image-classification`: transformers' `ImageClassificationPipeline`.
pub mod image_classification {
    use serde::{Deserialize, Serialize};

    /// A JSON request.
    pub type ImageClassificationRequest =
        super::images::ImagesRequest<ImageClassificationParameters>;

    /// The pipeline's parameters.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ImageClassificationParameters {
        /// How many labels (default 5).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub top_k: Option<u64>,
        /// `softmax`, `sigmoid` or `none`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub function_to_apply: Option<String>,
        /// Accepted (nothing is fetched).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub timeout: Option<f64>,
    }

    /// Labels with scores, best first; one list per image for a list.
    pub type ImageClassificationResponse = super::PerInput<super::LabelScore>;
}

/// `image-segmentation`: transformers' `ImageSegmentationPipeline`.
pub mod image_segmentation {
    use serde::{Deserialize, Serialize};

    /// A JSON request.
    pub type ImageSegmentationRequest = super::images::ImagesRequest<ImageSegmentationParameters>;

    /// The pipeline's parameters.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ImageSegmentationParameters {
        /// `semantic`, `instance` or `panoptic`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub subtask: Option<String>,
        /// Segments scoring above this are kept.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub threshold: Option<f64>,
        /// Binarisation threshold of the masks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mask_threshold: Option<f64>,
        /// Overlap below which a segment is dropped.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub overlap_mask_area_threshold: Option<f64>,
        /// Accepted (nothing is fetched).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub timeout: Option<f64>,
    }

    /// One segment.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Segment {
        /// Its score (`None`, null on the wire, for semantic segmentation).
        pub score: Option<f64>,
        /// Its label.
        pub label: String,
        /// A PNG mask (mode L, 255 inside) as base64.
        pub mask: String,
    }

    /// Segments; one list per image for a list.
    pub type ImageSegmentationResponse = super::PerInput<Segment>;
}

/// `object-detection`: transformers' `ObjectDetectionPipeline`.
pub mod object_detection {
    use serde::{Deserialize, Serialize};

    /// A JSON request.
    pub type ObjectDetectionRequest = super::images::ImagesRequest<ObjectDetectionParameters>;

    /// The pipeline's parameters.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ObjectDetectionParameters {
        /// Detections scoring above this are returned (default 0.5).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub threshold: Option<f64>,
        /// Accepted (nothing is fetched).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub timeout: Option<f64>,
    }

    /// A box in the input image's pixels.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct BoundingBox {
        /// Left.
        pub xmin: i64,
        /// Top.
        pub ymin: i64,
        /// Right.
        pub xmax: i64,
        /// Bottom.
        pub ymax: i64,
    }

    /// One detection.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Detection {
        /// The label's probability.
        pub score: f64,
        /// The label.
        pub label: String,
        /// Where.
        #[serde(rename = "box")]
        pub bbox: BoundingBox,
    }

    /// Detections in the model's order; one list per image for a list.
    pub type ObjectDetectionResponse = super::PerInput<Detection>;
}

/// `zero-shot-image-classification`: transformers' `ZeroShotImageClassificationPipeline`.
pub mod zero_shot_image_classification {
    use super::OneOrMany;
    use serde::{Deserialize, Serialize};

    /// A JSON request.
    pub type ZeroShotImageClassificationRequest =
        super::images::ImagesRequest<ZeroShotImageClassificationParameters>;

    /// The pipeline's parameters.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ZeroShotImageClassificationParameters {
        /// The labels: a list or one comma-separated string.
        pub candidate_labels: OneOrMany<String>,
        /// The text scored for each label, with `{}` for the label.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub hypothesis_template: Option<String>,
        /// Accepted (nothing is fetched).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub timeout: Option<f64>,
    }

    /// Every label with its score, best first; one list per image for a list.
    pub type ZeroShotImageClassificationResponse = super::PerInput<super::LabelScore>;
}

/// The generation tasks: `text-generation` (with chats), `text2text-generation`,
/// `summarization`, `translation`; transformers' `generate` parameters.
pub mod text_generation {
    use super::{BoolOrStrategy, OneOrMany};
    use serde::{Deserialize, Serialize};
    use serde_json::{Map, Value};

    /// One chat message.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Message {
        /// `system`, `user`, `assistant`, ...
        pub role: String,
        /// The text.
        pub content: String,
        /// Anything else the model's chat template reads.
        #[serde(flatten)]
        pub other: Map<String, Value>,
    }

    /// What `inputs` holds.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum TextGenerationInputs {
        /// A prompt.
        Prompt(String),
        /// A chat.
        Chat(Vec<Message>),
        /// A list of prompts.
        Prompts(Vec<String>),
        /// A list of chats.
        Chats(Vec<Vec<Message>>),
    }

    /// A `text-generation` request: the envelope, or the old conversational body.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum TextGenerationRequest {
        /// `{"inputs": ..., "parameters": ...}`.
        Envelope {
            /// The prompt(s) or chat(s).
            inputs: TextGenerationInputs,
            /// The parameters.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            parameters: Option<GenerationParameters>,
        },
        /// `{"text", "past_user_inputs", "generated_responses"}`: read as a chat.
        Conversation {
            /// The new user message.
            text: String,
            /// The earlier user messages.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            past_user_inputs: Option<Vec<String>>,
            /// The earlier answers.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            generated_responses: Option<Vec<String>>,
            /// The parameters.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            parameters: Option<GenerationParameters>,
        },
    }

    impl TextGenerationRequest {
        /// A request for one prompt, without parameters.
        pub fn prompt(text: impl Into<String>) -> Self {
            TextGenerationRequest::Envelope {
                inputs: TextGenerationInputs::Prompt(text.into()),
                parameters: None,
            }
        }

        /// The same request with these parameters.
        pub fn with_parameters(self, p: GenerationParameters) -> Self {
            match self {
                TextGenerationRequest::Envelope { inputs, .. } => TextGenerationRequest::Envelope {
                    inputs,
                    parameters: Some(p),
                },
                TextGenerationRequest::Conversation {
                    text,
                    past_user_inputs,
                    generated_responses,
                    ..
                } => TextGenerationRequest::Conversation {
                    text,
                    past_user_inputs,
                    generated_responses,
                    parameters: Some(p),
                },
            }
        }
    }

    /// A `text2text-generation`, `summarization` or `translation` request.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Text2TextGenerationRequest {
        /// A text or a list of texts.
        pub inputs: OneOrMany<String>,
        /// The parameters (`src_lang` and `tgt_lang` among `other`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub parameters: Option<GenerationParameters>,
    }

    /// `summarization`'s request.
    pub type SummarizationRequest = Text2TextGenerationRequest;
    /// `translation`'s request.
    pub type TranslationRequest = Text2TextGenerationRequest;

    /// `generate`'s parameters and the pipelines': the usual ones typed, every other one the
    /// schema allows in `other` (`no_repeat_ngram_size`, `bad_words_ids`, `return_full_text`,
    /// `src_lang`, ...).
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct GenerationParameters {
        /// New tokens at most.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_new_tokens: Option<u64>,
        /// Total length at most (prompt included, unless 20: transformers' default).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_length: Option<u64>,
        /// New tokens at least.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub min_new_tokens: Option<i64>,
        /// Sample instead of greedy or beam search.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub do_sample: Option<bool>,
        /// Beams (1 to 32).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub num_beams: Option<u64>,
        /// Sequences returned per input (1 to 32).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub num_return_sequences: Option<u64>,
        /// Sampling temperature.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub temperature: Option<f64>,
        /// Sample among the k likeliest tokens.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub top_k: Option<u64>,
        /// Nucleus sampling.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub top_p: Option<f64>,
        /// Penalty on repeated tokens.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub repetition_penalty: Option<f64>,
        /// The random seed (the same seed and request give the same text).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub seed: Option<u64>,
        /// Stop when the text ends with one of these.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub stop_strings: Option<OneOrMany<String>>,
        /// Stream the tokens as Server-Sent Events.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub stream: Option<bool>,
        /// Truncation of the prompt.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub truncation: Option<BoolOrStrategy>,
        /// Every other parameter.
        #[serde(flatten)]
        pub other: Map<String, Value>,
    }

    /// One generated sequence.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum GeneratedRecord {
        /// The text (prompt included unless `return_full_text` is false), or the conversation
        /// with the new assistant message.
        Text {
            /// The text or the conversation.
            generated_text: GeneratedText,
        },
        /// `return_tensors`: the token ids.
        TokenIds {
            /// The ids.
            generated_token_ids: Vec<i64>,
        },
    }

    /// A text or a conversation.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum GeneratedText {
        /// The text.
        Text(String),
        /// The chat with the new assistant message.
        Chat(Vec<Message>),
    }

    /// One record per sequence; a list of those per prompt for a list of prompts.
    pub type TextGenerationResponse = Vec<OneOrMany<GeneratedRecord>>;

    /// One sequence of `text2text-generation`, `summarization` or `translation`: the text under
    /// the task's key (`generated_text`, `summary_text`, `translation_text`), or its token ids
    /// (`*_token_ids`).
    pub type Text2TextRecord = serde_json::Map<String, Value>;

    /// One record per sequence; a list of those per input when inputs have several.
    pub type Text2TextGenerationResponse = Vec<OneOrMany<Text2TextRecord>>;
    /// `summarization`'s response (`summary_text`).
    pub type SummarizationResponse = Text2TextGenerationResponse;
    /// `translation`'s response (`translation_text`).
    pub type TranslationResponse = Text2TextGenerationResponse;
}
