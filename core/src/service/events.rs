//! Token streaming as Server-Sent Events, in the shape text-generation-inference's
//! `/generate_stream` uses (so SageMaker's `InvokeEndpointWithResponseStream` and TGI clients can
//! relay and read them): one `data:` event per token,
//! `{"index", "token": {"id", "text", "special"}, "generated_text": null, "details": null}`, the last
//! one carrying the whole new text, `details` and the pipeline's usual JSON answer as `output`.
//! An error after the stream started is an event `{"error", "error_type"}`.

use bytes::Bytes;
use serde_json::{json, Value};

use crate::error::ToolkitError;
use crate::pipeline::{PipelineOutput, TokenText};

/// What the generation thread reports.
#[derive(Debug)]
pub enum GenEvent {
    /// A new token of the (single) generated sequence.
    Token(u32),
    /// The end: the pipeline's answer, or its error.
    Done(Result<PipelineOutput, ToolkitError>),
}

/// Turns tokens into SSE events, decoding text incrementally (a token that ends inside a UTF-8
/// character gives its text with the token that completes it).
#[derive(Debug, Default)]
pub struct SseEncoder {
    ids: Vec<u32>,
    /// Characters of the decoded new text already sent.
    sent_chars: usize,
    text: String,
    /// The last token, held back until we know whether it is the final one.
    pending: Option<(u32, String, bool)>,
    index: usize,
}

fn event(v: &Value) -> Bytes {
    let mut out = b"data:".to_vec();
    out.extend(serde_json::to_vec(v).unwrap_or_default());
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

impl SseEncoder {
    /// A new encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes a token; returns the event of the token before it, if any.
    pub fn token(&mut self, pipeline: &dyn TokenText, id: u32) -> Option<Bytes> {
        self.ids.push(id);
        let decoded = pipeline.decode(&self.ids).unwrap_or_default();
        // an incomplete character decodes to U+FFFD at the end: wait for the next token
        let text = if decoded.ends_with('\u{FFFD}') && !self.ids.is_empty() {
            String::new()
        } else {
            let new: String = decoded.chars().skip(self.sent_chars).collect();
            self.sent_chars = decoded.chars().count();
            new
        };
        self.text.push_str(&text);
        let special = pipeline
            .decode(&[id])
            .map(|t| t.is_empty())
            .unwrap_or(false);
        let prev = self.pending.replace((id, text, special));
        prev.map(|p| self.token_event(p, None))
    }

    fn token_event(
        &mut self,
        (id, text, special): (u32, String, bool),
        last: Option<&Value>,
    ) -> Bytes {
        self.index += 1;
        let mut v = json!({
            "index": self.index,
            "token": {"id": id, "text": text, "logprob": null, "special": special},
            "generated_text": null,
            "details": null,
        });
        if let Some(output) = last {
            v["generated_text"] = Value::String(self.text.clone());
            v["details"] = json!({"generated_tokens": self.ids.len()});
            v["output"] = output.clone();
        }
        event(&v)
    }

    /// The final event(s): the held-back token with the full text and the pipeline's answer, or
    /// an error event.
    pub fn done(&mut self, result: Result<PipelineOutput, ToolkitError>) -> Bytes {
        match result {
            Ok(output) => {
                let value = output.to_value();
                match self.pending.take() {
                    Some(p) => self.token_event(p, Some(&value)),
                    None => event(&json!({
                        "index": self.index,
                        "token": null,
                        "generated_text": self.text,
                        "details": {"generated_tokens": self.ids.len()},
                        "output": value,
                    })),
                }
            }
            Err(e) => {
                let body = e.body();
                event(&json!({"error": body.message, "error_type": body.kind}))
            }
        }
    }
}
