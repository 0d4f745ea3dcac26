//! `zero-shot-image-classification` with transformers 4.51's
//! `ZeroShotImageClassificationPipeline` semantics, on CLIP and SigLIP: each candidate label put
//! into the hypothesis template (default `"This is a photo of {}."`) and tokenized (SigLIP's
//! padded to 64 tokens and truncated there, as the pipeline asks for a `siglip` model), each
//! image decoded and preprocessed by the model's image processor, `logits_per_image` turned
//! into a softmax over the labels (CLIP) or each label's sigmoid (SigLIP), answered as
//! `[{"score", "label"}]` best first (ties keep the labels' order). Labels come in JSON
//! `parameters`, or with a raw image body from the custom attributes or the query string, which
//! the toolkit cannot do.

use serde_json::{json, Value};

use super::images::{self, Images};
use super::{Input, Pipeline, PipelineOutput, VisionParts};
use crate::context::Context;
use crate::error::ToolkitError;
use crate::model::clip::Clip;
use crate::model::siglip::Siglip;
use crate::task::Task;
use crate::tokenize::siglip::SiglipTokenizer;
use crate::tokenize::{TextTokenizer, TokenizeOptions};
use crate::types::zero_shot_image_classification::ZeroShotImageClassificationParameters;
use crate::types::OneOrMany;
use crate::vision::{self, ImageProcessor};

/// transformers' default hypothesis template.
pub const DEFAULT_TEMPLATE: &str = "This is a photo of {}.";

/// The most candidate labels one request may hold.
pub const MAX_LABELS: usize = 1024;

/// The length transformers' pipeline pads and truncates SigLIP's texts to (`padding="max_length",
/// max_length=64, truncation=True` for every `model_type` containing "siglip").
pub const SIGLIP_TEXT_LENGTH: usize = 64;

/// The model and its tokenizer.
#[derive(Debug)]
enum Network {
    /// CLIP: a fast tokenizer, softmax over the labels.
    Clip(Box<Clip>, Box<TextTokenizer>),
    /// SigLIP: `SiglipTokenizer`, a sigmoid per label.
    Siglip(Box<Siglip>, Box<SiglipTokenizer>),
}

/// A loaded zero-shot image classifier.
#[derive(Debug)]
pub struct ZeroShotImageClassificationPipeline {
    processor: ImageProcessor,
    network: Network,
    max_pixels: u64,
    max_tokens: usize,
}

/// The SigLIP network of a `siglip` checkpoint, with its slow `SiglipTokenizer` (transformers
/// has no fast one, so a `tokenizer.json` beside `spiece.model` is not read).
fn siglip(parts: &VisionParts<'_>) -> Result<Network, ToolkitError> {
    let model = Siglip::load(parts.files, parts.config, &parts.device)?;
    if model.max_positions() < SIGLIP_TEXT_LENGTH {
        return Err(ToolkitError::model_load(format!(
            "config.json: text_config.max_position_embeddings is {}, but the pipeline pads SigLIP's texts to {SIGLIP_TEXT_LENGTH} tokens",
            model.max_positions()
        )));
    }
    Ok(Network::Siglip(
        Box::new(model),
        Box::new(SiglipTokenizer::load(parts.files)?),
    ))
}

/// The registry's constructor.
pub(crate) fn build(parts: VisionParts<'_>) -> Result<Box<dyn Pipeline>, ToolkitError> {
    let processor = ImageProcessor::load(&parts.files.dir)?;
    let network = match parts.config.get("model_type").and_then(Value::as_str) {
        Some("siglip") => siglip(&parts)?,
        _ => {
            let model = Clip::load(parts.files, parts.config, &parts.device)?;
            let pad = parts
                .config
                .pointer("/text_config/pad_token_id")
                .and_then(Value::as_u64)
                .unwrap_or(1) as u32;
            Network::Clip(
                Box::new(model),
                Box::new(
                    TextTokenizer::load(parts.files, pad)?
                        .with_max_tokens(parts.opts.max_request_tokens),
                ),
            )
        }
    };
    let side = match &network {
        Network::Clip(m, _) => m.image_size(),
        Network::Siglip(m, _) => m.image_size(),
    };
    if processor.output_size() != Some((side, side)) {
        return Err(ToolkitError::model_load(format!(
            "preprocessor_config.json does not resize or crop images to the model's {side}x{side} (vision_config.image_size)"
        )));
    }
    Ok(Box::new(ZeroShotImageClassificationPipeline {
        processor,
        network,
        max_pixels: parts.opts.max_image_pixels,
        max_tokens: parts.opts.max_request_tokens,
    }))
}

/// Python's `template.format(label)` for the templates a hypothesis uses: `{}` and `{0}` are
/// the label, `{{` and `}}` braces; any other field is an error, as `str.format` raises.
pub fn format_hypothesis(template: &str, label: &str) -> Result<String, ToolkitError> {
    let bad = |what: &str| {
        ToolkitError::InvalidParameters(format!(
            "hypothesis_template {template:?} {what}; put {{}} where the label goes"
        ))
    };
    let mut out = String::with_capacity(template.len() + label.len());
    let mut chars = template.chars().peekable();
    let mut fields = 0;
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut field = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => field.push(c),
                        None => return Err(bad("has an unclosed {")),
                    }
                }
                let index = if field.is_empty() {
                    fields += 1;
                    fields - 1
                } else if field == "0" {
                    0
                } else {
                    return Err(bad(&format!("names the field {{{field}}}")));
                };
                if index > 0 {
                    return Err(bad("has more than one {} field"));
                }
                out.push_str(label);
            }
            '}' => return Err(bad("has a single }")),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The candidate labels of a request: a list, or one string split on commas.
fn labels_of(params: &ZeroShotImageClassificationParameters) -> Result<Vec<String>, ToolkitError> {
    let labels: Vec<String> = match &params.candidate_labels {
        None => {
            return Err(ToolkitError::InvalidParameters(
                "candidate_labels is required: in JSON as \"parameters\": {\"candidate_labels\": [\"cat\", \"dog\"]}, or with a raw image as the custom attribute (or query parameter) candidate_labels=cat,dog".into(),
            ))
        }
        Some(OneOrMany::Many(list)) => list.clone(),
        Some(OneOrMany::One(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    if labels.is_empty() {
        return Err(ToolkitError::InvalidParameters(
            "candidate_labels is empty: give at least one label".into(),
        ));
    }
    if labels.len() > MAX_LABELS {
        return Err(ToolkitError::InputTooLong(format!(
            "{} candidate labels, more than {MAX_LABELS}; split the request",
            labels.len()
        )));
    }
    Ok(labels)
}

/// The softmax of a row of logits.
fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// `torch.sigmoid` of each logit.
fn sigmoid(logits: &[f32]) -> Vec<f32> {
    logits.iter().map(|&l| 1.0 / (1.0 + (-l).exp())).collect()
}

/// The hypotheses' token ids, and their attention masks where the model takes them.
type Tokenized = (Vec<Vec<u32>>, Option<Vec<Vec<u32>>>);

impl ZeroShotImageClassificationPipeline {
    /// The most tokens one hypothesis may have.
    fn max_positions(&self) -> usize {
        match &self.network {
            Network::Clip(m, _) => m.max_positions(),
            Network::Siglip(..) => SIGLIP_TEXT_LENGTH,
        }
    }

    /// Tokenizes each hypothesis (and, for SigLIP with `model_input_names` naming it, its
    /// attention mask), bounded by the request's token budget.
    fn tokenize(&self, texts: &[String]) -> Result<Tokenized, ToolkitError> {
        let mut ids = Vec::with_capacity(texts.len());
        let mut masks = Vec::with_capacity(texts.len());
        let mut total = 0usize;
        for text in texts {
            // a token is at least one character, less the specials: characters first
            if text.chars().count() > self.max_positions() * 64 {
                return Err(ToolkitError::InputTooLong(format!(
                    "a candidate label with its template is {} characters; the model reads at most {} tokens",
                    text.chars().count(),
                    self.max_positions()
                )));
            }
            let (seq, mask) = match &self.network {
                Network::Clip(_, tok) => (
                    tok.encode(text, None, &TokenizeOptions::default())?.ids,
                    None,
                ),
                Network::Siglip(_, tok) => {
                    let e = tok.encode(text, Some(SIGLIP_TEXT_LENGTH))?;
                    (e.ids, Some(e.attention_mask))
                }
            };
            total += seq.len();
            if total > self.max_tokens {
                let how = match self.network {
                    Network::Clip(..) => "send fewer or shorter labels",
                    Network::Siglip(..) => {
                        "SigLIP pads every label to 64 tokens: send fewer labels"
                    }
                };
                return Err(ToolkitError::InputTooLong(format!(
                    "the candidate labels come to more than {} tokens (HF_MAX_REQUEST_TOKENS); {how}",
                    self.max_tokens
                )));
            }
            ids.push(seq);
            masks.extend(mask);
        }
        let masks = match &self.network {
            Network::Siglip(_, tok) if tok.uses_attention_mask() => Some(masks),
            _ => None,
        };
        Ok((ids, masks))
    }
}

impl Pipeline for ZeroShotImageClassificationPipeline {
    fn task(&self) -> Task {
        Task::ZeroShotImageClassification
    }

    fn run(&self, input: Input, ctx: Context) -> Result<PipelineOutput, ToolkitError> {
        let images: Images<ZeroShotImageClassificationParameters> =
            Images::read(input, self.task())?;
        let labels = labels_of(&images.parameters)?;
        let template = images
            .parameters
            .hypothesis_template
            .as_deref()
            .unwrap_or(DEFAULT_TEMPLATE);
        let hypotheses = labels
            .iter()
            .map(|label| format_hypothesis(template, label))
            .collect::<Result<Vec<_>, _>>()?;
        // tokens are bounded before the model runs
        let (texts, masks) = self.tokenize(&hypotheses)?;
        let pixels = images.each(self.max_pixels, &ctx, |rgb| {
            self.processor.preprocess(&rgb, self.max_pixels)
        })?;
        let logits = match &self.network {
            Network::Clip(m, _) => m.logits_per_image(&pixels, &texts)?,
            Network::Siglip(m, _) => m.logits_per_image(&pixels, &texts, masks.as_deref())?,
        };
        let results = logits
            .iter()
            .map(|row| {
                let scores = match self.network {
                    Network::Clip(..) => softmax(row),
                    Network::Siglip(..) => sigmoid(row),
                };
                if scores.iter().any(|s| !s.is_finite()) {
                    return Err(ToolkitError::Internal(
                        "the model produced non-finite scores".into(),
                    ));
                }
                let mut ranked: Vec<(usize, f32)> = scores.into_iter().enumerate().collect();
                // sorted(key=-score) is stable: ties keep the labels' order
                ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
                Ok(Value::Array(
                    ranked
                        .into_iter()
                        .map(|(i, s)| json!({"score": f64::from(s), "label": labels[i]}))
                        .collect(),
                ))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(images.answer(results))
    }

    fn warm_up_input(&self) -> Input {
        match images::warm_up_png() {
            Input::Raw {
                media_type, body, ..
            } => {
                let mut p = serde_json::Map::new();
                p.insert("candidate_labels".into(), json!(["a", "b"]));
                Input::Raw {
                    media_type,
                    body,
                    parameters: Some(p),
                }
            }
            other => other,
        }
    }

    fn raw_media_types(&self) -> &'static [&'static str] {
        vision::IMAGE_MEDIA_TYPES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_format_as_python_does() {
        assert_eq!(
            format_hypothesis(DEFAULT_TEMPLATE, "cat").unwrap(),
            "This is a photo of cat."
        );
        assert_eq!(
            format_hypothesis("a {0} {{x}}", "dog").unwrap(),
            "a dog {x}"
        );
        assert_eq!(format_hypothesis("no field", "dog").unwrap(), "no field");
        for bad in ["{foo}", "{} and {}", "{", "}", "{1}"] {
            let e = format_hypothesis(bad, "dog").unwrap_err();
            assert_eq!(e.status(), 400, "{bad}: {e}");
        }
    }

    #[test]
    fn labels_are_required_and_a_string_is_split_on_commas() {
        let p = |v: Value| -> ZeroShotImageClassificationParameters {
            serde_json::from_value(v).unwrap()
        };
        assert_eq!(labels_of(&p(json!({}))).unwrap_err().status(), 400);
        assert_eq!(
            labels_of(&p(json!({"candidate_labels": []})))
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            labels_of(&p(json!({"candidate_labels": "cat, dog,,car"}))).unwrap(),
            vec!["cat", "dog", "car"]
        );
        assert_eq!(
            labels_of(&p(json!({"candidate_labels": ["a,b", "c"]}))).unwrap(),
            vec!["a,b", "c"]
        );
    }
}
