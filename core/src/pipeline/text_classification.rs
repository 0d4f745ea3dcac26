//! `text-classification` / `sentiment-analysis`, as transformers' `TextClassificationPipeline`
//! (4.51): the legacy output (no `top_k`) is one `{label, score}` per input, wrapped in a list for
//! a single string; `top_k` (an integer or `null`) gives sorted lists; `return_all_scores` gives
//! every label in model order.

use super::{PipelineOutput, TextEncoder};
use crate::error::ToolkitError;
use crate::task::Task;
use crate::types::text_classification::{
    ClassificationFunction, LabelScore, TextClassificationInputs, TextClassificationOutput,
    TextClassificationParameters, TextClassificationRequest, TextInput, TextPair,
};

/// The text-classification pipeline.
#[derive(Debug)]
pub struct TextClassificationPipeline {
    encoder: TextEncoder,
    default_function: ClassificationFunction,
}

/// What to return per input.
#[derive(Debug, Clone, Copy)]
struct Selection {
    /// `None` = every label.
    top_k: Option<usize>,
    /// transformers' `_legacy` flag: no sorting, a bare object for top 1.
    legacy: bool,
}

impl TextClassificationPipeline {
    /// Wraps an encoder whose model has a sequence-classification head.
    pub fn new(encoder: TextEncoder) -> Result<Self, ToolkitError> {
        let c = encoder.config();
        if c.labels.is_empty() {
            return Err(ToolkitError::model_load(
                "text-classification needs a model with labels (id2label / num_labels in config.json)",
            ));
        }
        // transformers: sigmoid for multi-label or one label, softmax otherwise
        let default_function = if c.problem_type.as_deref() == Some("multi_label_classification")
            || c.labels.len() == 1
        {
            ClassificationFunction::Sigmoid
        } else {
            ClassificationFunction::Softmax
        };
        Ok(Self {
            encoder,
            default_function,
        })
    }

    /// Runs a request.
    pub fn answer(&self, req: TextClassificationRequest) -> Result<PipelineOutput, ToolkitError> {
        // `single_str`: transformers wraps the result of one plain string in a list (legacy).
        let (inputs, params, single_str, many) = match req {
            TextClassificationRequest::Envelope { inputs, parameters } => match inputs {
                TextClassificationInputs::One(t) => {
                    let s = matches!(t, TextInput::Text(_));
                    (vec![t], parameters, s, false)
                }
                TextClassificationInputs::Many(ts) => (ts, parameters, false, true),
            },
            TextClassificationRequest::Bare { pair, parameters } => {
                (vec![TextInput::Pair(pair)], parameters, false, false)
            }
        };
        let params: TextClassificationParameters = params.unwrap_or_default();
        let function = params.function()?.unwrap_or(self.default_function);
        let selection = match (params.top_k, params.return_all_scores) {
            (Some(k), _) => Selection {
                top_k: k,
                legacy: false,
            },
            (None, Some(true)) => Selection {
                top_k: None,
                legacy: true,
            },
            (None, _) => Selection {
                top_k: Some(1),
                legacy: true,
            },
        };
        let opts = params.tokenize_options()?;
        let tok = self.encoder.tokenizer();
        let mut budget = self.encoder.budget();
        let seqs = inputs
            .iter()
            .map(|i| {
                budget.take(match i {
                    TextInput::Text(t) => tok.encode(t, None, &opts)?,
                    TextInput::Pair(TextPair { text, text_pair }) => {
                        tok.encode(text, text_pair.as_deref(), &opts)?
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let logits = self.encoder.run(seqs)?;
        let labels = &self.encoder.config().labels;
        // transformers' legacy top-1 answers one object per input instead of a list
        let best_only = selection.legacy && selection.top_k == Some(1);
        let mut results: Vec<Vec<LabelScore>> = logits
            .iter()
            .map(|m| postprocess(m.row(0), labels, function, selection))
            .collect::<Result<_, _>>()?;
        let output = if many {
            if best_only {
                TextClassificationOutput::List(results.into_iter().flatten().collect())
            } else {
                TextClassificationOutput::Nested(results)
            }
        } else {
            let mut one = results.pop().ok_or_else(|| {
                ToolkitError::Internal("text-classification produced no result".into())
            })?;
            match (best_only, single_str && selection.legacy) {
                (true, true) => TextClassificationOutput::List(one),
                (true, false) => match one.pop() {
                    Some(x) => TextClassificationOutput::One(x),
                    None => TextClassificationOutput::List(one),
                },
                (false, true) => TextClassificationOutput::Nested(vec![one]),
                (false, false) => TextClassificationOutput::List(one),
            }
        };
        let value = serde_json::to_value(&output)
            .map_err(|e| ToolkitError::Internal(format!("cannot encode the output: {e}")))?;
        Ok(PipelineOutput::Json(value))
    }
}

/// Scores as numpy computes them in float32 (`TextClassificationPipeline.postprocess`).
pub(crate) fn scores(logits: &[f32], function: ClassificationFunction) -> Vec<f32> {
    match function {
        ClassificationFunction::Softmax => {
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exp: Vec<f32> = logits.iter().map(|&x| (x - max).exp()).collect();
            let sum: f32 = exp.iter().sum();
            exp.iter().map(|&e| e / sum).collect()
        }
        ClassificationFunction::Sigmoid => {
            logits.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect()
        }
        ClassificationFunction::None => logits.to_vec(),
    }
}

fn postprocess(
    logits: &[f32],
    labels: &[String],
    function: ClassificationFunction,
    sel: Selection,
) -> Result<Vec<LabelScore>, ToolkitError> {
    let scores = scores(logits, function);
    if scores.iter().any(|s| !s.is_finite()) {
        return Err(ToolkitError::Internal(
            "the model produced non-finite scores".into(),
        ));
    }
    let label = |i: usize| {
        labels
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("LABEL_{i}"))
    };
    if sel.legacy && sel.top_k == Some(1) {
        // numpy argmax: the first maximum
        let (best, score) =
            scores
                .iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |acc, (i, &s)| if s > acc.1 { (i, s) } else { acc },
                );
        return Ok(vec![LabelScore {
            label: label(best),
            score: f64::from(score),
        }]);
    }
    let mut all: Vec<LabelScore> = scores
        .iter()
        .enumerate()
        .map(|(i, &s)| LabelScore {
            label: label(i),
            score: f64::from(s),
        })
        .collect();
    if !sel.legacy {
        // Python's sort(reverse=True) is stable: ties keep model order
        all.sort_by(|a, b| b.score.total_cmp(&a.score));
        if let Some(k) = sel.top_k {
            all.truncate(k);
        }
    }
    Ok(all)
}

/// The registry's constructor.
pub(crate) fn build(
    parts: crate::pipeline::EncoderParts<'_>,
) -> Result<Box<dyn crate::pipeline::Pipeline>, ToolkitError> {
    Ok(Box::new(TextClassificationPipeline::new(parts.encoder)?))
}

impl crate::pipeline::Pipeline for TextClassificationPipeline {
    fn task(&self) -> Task {
        Task::TextClassification
    }

    fn run(
        &self,
        input: crate::pipeline::Input,
        _ctx: crate::context::Context,
    ) -> Result<PipelineOutput, ToolkitError> {
        self.answer(input.into_request(Task::TextClassification)?)
    }

    fn warm_up_input(&self) -> crate::pipeline::Input {
        crate::pipeline::Input::Json(serde_json::json!({"inputs": "warm up"}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_json(o: &[LabelScore]) -> serde_json::Value {
        serde_json::to_value(o).unwrap()
    }

    #[test]
    fn softmax_and_sigmoid_in_f32() {
        let s = scores(&[1.0, 2.0, 3.0], ClassificationFunction::Softmax);
        assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((s[2] - 0.665_240_9).abs() < 1e-6);
        let s = scores(&[0.0], ClassificationFunction::Sigmoid);
        assert_eq!(s, [0.5]);
        assert_eq!(scores(&[-1.5], ClassificationFunction::None), [-1.5]);
    }

    #[test]
    fn legacy_top1_is_an_object_and_ties_pick_the_first() {
        let labels = vec!["a".to_owned(), "b".to_owned()];
        let out = postprocess(
            &[0.0, 0.0],
            &labels,
            ClassificationFunction::Softmax,
            Selection {
                top_k: Some(1),
                legacy: true,
            },
        )
        .unwrap();
        assert_eq!(
            to_json(&out),
            serde_json::json!([{"label": "a", "score": 0.5}])
        );
    }

    #[test]
    fn top_k_sorts_and_truncates_legacy_all_keeps_order() {
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let sorted = postprocess(
            &[0.0, 2.0, 1.0],
            &labels,
            ClassificationFunction::None,
            Selection {
                top_k: Some(2),
                legacy: false,
            },
        )
        .unwrap();
        assert_eq!(
            to_json(&sorted),
            serde_json::json!([{"label": "b", "score": 2.0}, {"label": "c", "score": 1.0}])
        );
        let zero = postprocess(
            &[0.0, 2.0, 1.0],
            &labels,
            ClassificationFunction::None,
            Selection {
                top_k: Some(0),
                legacy: false,
            },
        )
        .unwrap();
        assert_eq!(to_json(&zero), serde_json::json!([]));
        let all = postprocess(
            &[0.0, 2.0, 1.0],
            &labels,
            ClassificationFunction::None,
            Selection {
                top_k: None,
                legacy: true,
            },
        )
        .unwrap();
        assert_eq!(to_json(&all)[0]["label"], "a");
    }
}
