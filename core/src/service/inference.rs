//! [`InferenceService`]: a pipeline on the executor, bytes in and bytes out.

use std::sync::Arc;

use serde_json::Value;

use super::lines::{self, Framing};
use super::{encode, events, Answer, AnswerStream, Encoded};
use crate::codec::{self, RequestFormat, ResponseFormat};
use crate::context::Context;
use crate::error::ToolkitError;
use crate::pipeline::{Input, Pipeline, SharedPipeline};
use crate::runtime::Runtime;

/// A loaded pipeline behind the runtime: bytes in, bytes out.
#[derive(Debug)]
pub struct InferenceService {
    pipeline: SharedPipeline,
    runtime: Arc<Runtime>,
}

/// The most inputs of one request run at once: a longer `inputs` list is run in parts of this
/// size and answered part by part.
pub const MICRO_BATCH: usize = 64;

enum Decoded {
    Whole(Vec<u8>),
    Parts(Vec<Vec<u8>>, std::collections::VecDeque<Value>),
}

/// Splits a request whose `inputs` list is longer than [`MICRO_BATCH`] into requests of at most
/// that many inputs (the last one at least two long, so that no part is a one-element list,
/// which some pipelines answer unwrapped); gives the request back otherwise.
fn split_inputs(mut doc: Value, allowed: bool) -> Result<std::collections::VecDeque<Value>, Value> {
    let long = allowed
        && doc
            .get("inputs")
            .and_then(Value::as_array)
            .is_some_and(|a| a.len() > MICRO_BATCH);
    if !long {
        return Err(doc);
    }
    let Some(Value::Array(inputs)) = doc.as_object_mut().and_then(|o| o.remove("inputs")) else {
        return Err(doc);
    };
    // parts of MICRO_BATCH, the last one taking a lone remainder; each part gets a Vec of its
    // own size (splitting the list in place would leave every part the capacity of the rest)
    let n = inputs.len();
    let mut sizes = vec![MICRO_BATCH; n / MICRO_BATCH];
    match n % MICRO_BATCH {
        0 => {}
        1 => {
            if let Some(last) = sizes.last_mut() {
                *last += 1;
            }
        }
        r => sizes.push(r),
    }
    let mut items = inputs.into_iter();
    let mut parts = std::collections::VecDeque::with_capacity(sizes.len());
    for size in sizes {
        let mut part = doc.clone();
        if let Some(o) = part.as_object_mut() {
            o.insert("inputs".into(), items.by_ref().take(size).collect());
        }
        parts.push_back(part);
    }
    Ok(parts)
}

impl InferenceService {
    /// Whether a request to a pipeline that streams tokens says
    /// `"parameters": {"stream": true}`.
    fn asks_to_stream(&self, request_format: RequestFormat, body: &[u8]) -> bool {
        self.pipeline.token_text().is_some()
            && request_format == RequestFormat::Json
            && serde_json::from_slice::<Value>(body).is_ok_and(|v| {
                v.get("parameters")
                    .and_then(|p| p.get("stream"))
                    .and_then(Value::as_bool)
                    == Some(true)
            })
    }

    /// Streams a generation as Server-Sent Events (see [`super::events`]). A request
    /// that fails before its first token gets its error status; later errors are an event.
    pub async fn invoke_events(
        &self,
        request_format: RequestFormat,
        body: bytes::Bytes,
    ) -> Result<Answer, ToolkitError> {
        use self::events::{GenEvent, SseEncoder};
        if self.pipeline.token_text().is_none() {
            return Err(ToolkitError::UnsupportedAccept {
                accept: "text/event-stream".into(),
                reason: format!(
                    " for {} (only generation streams tokens)",
                    self.pipeline.task()
                ),
                supported: "application/json, text/csv, application/jsonlines".into(),
            });
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<GenEvent>();
        let pipeline = Arc::clone(&self.pipeline);
        let gone = crate::context::CallerGone::new();
        let flag = gone.clone();
        self.runtime.submit(move || {
            let sink_tx = tx.clone();
            let result = decode_input(request_format, body, None).and_then(|input| {
                let ctx = Context::new(flag)
                    .with_tokens(Box::new(move |t| sink_tx.send(GenEvent::Token(t)).is_ok()));
                pipeline.run(input, ctx)
            });
            let _ = tx.send(GenEvent::Done(result));
        })?;
        // raised when the stream is dropped (the client went away): the generation stops
        let guard = gone.guard();
        let first = rx.recv().await.ok_or_else(|| {
            ToolkitError::Internal("the generation ended without a result".into())
        })?;
        let pipeline = Arc::clone(&self.pipeline);
        let mut encoder = SseEncoder::new();
        let (first_chunk, finished) = match first {
            GenEvent::Done(Err(e)) => return Err(e),
            GenEvent::Done(Ok(out)) => (Some(encoder.done(Ok(out))), true),
            GenEvent::Token(t) => (
                pipeline
                    .token_text()
                    .and_then(|text| encoder.token(text, t)),
                false,
            ),
        };
        let state = (rx, encoder, pipeline, finished, guard);
        let rest = futures_util::stream::unfold(
            state,
            |(mut rx, mut enc, pipeline, finished, guard)| async move {
                if finished {
                    return None;
                }
                let text = pipeline.token_text()?;
                loop {
                    match rx.recv().await {
                        Some(GenEvent::Token(t)) => {
                            if let Some(chunk) = enc.token(text, t) {
                                return Some((chunk, (rx, enc, pipeline, false, guard)));
                            }
                        }
                        Some(GenEvent::Done(result)) => {
                            let chunk = enc.done(result);
                            return Some((chunk, (rx, enc, pipeline, true, guard)));
                        }
                        None => return None,
                    }
                }
            },
        );
        use futures_util::StreamExt;
        let chunks = futures_util::stream::iter(first_chunk).chain(rest);
        Ok(Answer::Stream {
            content_type: ResponseFormat::EventStream.content_type(),
            chunks: Box::pin(chunks),
        })
    }
}

/// Decodes a buffered body into a pipeline's input.
fn decode_input(
    format: RequestFormat,
    body: bytes::Bytes,
    parameters: Option<serde_json::Map<String, Value>>,
) -> Result<Input, ToolkitError> {
    match format {
        RequestFormat::Binary(media_type) => Ok(Input::Raw {
            media_type,
            body,
            parameters,
        }),
        other => codec::decode(other, &body).map(Input::Json),
    }
}

impl InferenceService {
    /// Wraps a pipeline.
    pub fn new(pipeline: impl Into<SharedPipeline>, runtime: Runtime) -> Self {
        Self {
            pipeline: pipeline.into(),
            runtime: Arc::new(runtime),
        }
    }

    /// The pipeline.
    pub fn pipeline(&self) -> &dyn Pipeline {
        self.pipeline.as_ref()
    }

    /// Which decoder a `Content-Type` header selects for this pipeline (the media types it
    /// takes raw included); hosts call it before reading the body.
    pub fn request_format(
        &self,
        content_type: Option<&str>,
    ) -> Result<RequestFormat, ToolkitError> {
        codec::request_format_for(content_type, self.pipeline.raw_media_types())
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// One invocation: negotiates the media types (cheap, here), then decodes, runs and encodes
    /// on an inference thread.
    pub async fn invoke(
        &self,
        content_type: Option<&str>,
        accept: Option<&str>,
        body: impl AsRef<[u8]> + Send + 'static,
    ) -> Result<Encoded, ToolkitError> {
        let request_format = self.request_format(content_type)?;
        let response_format = codec::response_format_for(request_format, accept)?;
        self.invoke_negotiated(request_format, response_format, body)
            .await
    }

    /// Answers a JSON Lines body given as a stream of lines (see [`super::lines`]): the answers
    /// come as a stream, laid out as `framing` says.
    pub fn invoke_lines<S>(&self, lines: S, framing: Framing) -> AnswerStream
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, ToolkitError>> + Send + 'static,
    {
        lines::answer_lines(
            Arc::clone(&self.pipeline),
            Arc::clone(&self.runtime),
            lines,
            framing,
            self.runtime.options().workers * 2,
        )
    }

    /// One invocation of a buffered body, answered whole or, for long work, as a stream:
    /// a JSON Lines body (or several JSON documents in an `application/json` body, as batch
    /// transform's `SplitType=Line` sends them) line by line; a JSON request whose `inputs` list
    /// is longer than [`MICRO_BATCH`] in parts of that size, each answered as soon as it is done
    /// (the first part before anything is sent, so a bad request still gets its status; a later
    /// part that fails gets an error object for each of its inputs).
    pub async fn invoke_body(
        &self,
        request_format: RequestFormat,
        response_format: ResponseFormat,
        body: bytes::Bytes,
    ) -> Result<Answer, ToolkitError> {
        self.invoke_body_with(request_format, response_format, body, None)
            .await
    }

    /// [`invoke_body`](Self::invoke_body) with the parameters of a raw body (an image) that the
    /// host took from outside it ([`codec::raw_parameters`]); ignored for JSON and CSV bodies.
    pub async fn invoke_body_with(
        &self,
        request_format: RequestFormat,
        response_format: ResponseFormat,
        body: bytes::Bytes,
        raw_parameters: Option<serde_json::Map<String, Value>>,
    ) -> Result<Answer, ToolkitError> {
        let lines_of = |body: bytes::Bytes, framing| {
            let lines = lines::split_lines(
                futures_util::stream::iter([Ok::<_, std::convert::Infallible>(body)]),
                usize::MAX,
                usize::MAX,
            );
            self.invoke_lines(lines, framing)
        };
        if request_format == RequestFormat::JsonLines {
            let framing = Framing::of(response_format)?;
            return Ok(Answer::Stream {
                content_type: response_format.content_type(),
                chunks: lines_of(body, framing),
            });
        }
        if response_format == ResponseFormat::EventStream
            || self.asks_to_stream(request_format, &body)
        {
            return self.invoke_events(request_format, body).await;
        }
        let pipeline = Arc::clone(&self.pipeline);
        let streamable = matches!(
            response_format,
            ResponseFormat::Json | ResponseFormat::JsonLines
        ) && pipeline.task().batches_inputs();
        let b = body.clone();
        let first = self
            .runtime
            .run(move |gone| {
                let doc = match decode_input(request_format, b, raw_parameters)? {
                    Input::Json(doc) => doc,
                    raw => {
                        let out = pipeline.run(raw, Context::new(gone))?;
                        return Ok(Decoded::Whole(encode::encode(&out, response_format)?));
                    }
                };
                match split_inputs(doc, streamable) {
                    Ok(mut parts) => {
                        let first = parts.pop_front().unwrap_or(Value::Null);
                        let out = pipeline.run(Input::Json(first), Context::new(gone))?;
                        Ok(Decoded::Parts(encode::encode_items(&out)?, parts))
                    }
                    Err(doc) => {
                        let out = pipeline.run(Input::Json(doc), Context::new(gone))?;
                        Ok(Decoded::Whole(encode::encode(&out, response_format)?))
                    }
                }
            })
            .await;
        match first {
            Ok(Decoded::Whole(body)) => Ok(Answer::Whole(Encoded {
                content_type: response_format.content_type(),
                body,
            })),
            Ok(Decoded::Parts(items, rest)) => {
                let framing = Framing::of(response_format)?;
                Ok(Answer::Stream {
                    content_type: response_format.content_type(),
                    chunks: framing.frame(self.answer_parts(items, rest)),
                })
            }
            Err(ToolkitError::Validation(m)) if request_format == RequestFormat::Json => {
                let b = body.clone();
                let ranges = tokio::task::spawn_blocking(move || codec::documents(&b))
                    .await
                    .ok()
                    .flatten();
                let Some(ranges) = ranges else {
                    return Err(ToolkitError::Validation(m));
                };
                // one answer per document, one per line, as batch transform assembles them
                let format = match response_format {
                    ResponseFormat::JsonLines => ResponseFormat::JsonLines,
                    ResponseFormat::Json => ResponseFormat::Json,
                    other => {
                        return Err(ToolkitError::UnsupportedAccept {
                            accept: other.content_type().into(),
                            reason: " for a body of several JSON documents (answered one per line)"
                                .into(),
                            supported: "application/json, application/jsonlines".into(),
                        })
                    }
                };
                let docs = ranges
                    .into_iter()
                    .map(move |r| Ok::<_, ToolkitError>(body.slice(r)));
                Ok(Answer::Stream {
                    content_type: format.content_type(),
                    chunks: self.invoke_lines(futures_util::stream::iter(docs), Framing::Lines),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The encoded answers of the first part, then of each further part as it is run.
    fn answer_parts(
        &self,
        first: Vec<Vec<u8>>,
        rest: std::collections::VecDeque<Value>,
    ) -> impl futures_util::Stream<Item = Vec<u8>> + Send + 'static {
        use futures_util::StreamExt;
        let (pipeline, runtime) = (Arc::clone(&self.pipeline), Arc::clone(&self.runtime));
        let concurrency = runtime.options().workers.max(1);
        let later = futures_util::stream::iter(rest)
            .map(move |part| {
                let (pipeline, runtime) = (Arc::clone(&pipeline), Arc::clone(&runtime));
                async move {
                    let n = part
                        .get("inputs")
                        .and_then(Value::as_array)
                        .map_or(1, Vec::len);
                    let part = Arc::new(part);
                    let result = lines::run_patiently(&runtime, move |gone| {
                        let out =
                            pipeline.run(Input::Json(Value::clone(&part)), Context::new(gone))?;
                        encode::encode_items(&out)
                    })
                    .await;
                    match result {
                        Ok(items) if items.len() == n => items,
                        Ok(_) => vec![
                            ToolkitError::Internal(
                                "a part was answered with the wrong length".into()
                            )
                            .body_json();
                            n
                        ],
                        Err(e) => vec![e.body_json(); n],
                    }
                }
            })
            .buffered(concurrency)
            .flat_map(futures_util::stream::iter);
        futures_util::stream::iter(first).chain(later)
    }

    /// One invocation of a body already in memory, negotiated from its headers and answered
    /// into one buffer (the body is not copied).
    pub async fn invoke_bytes(
        &self,
        content_type: Option<&str>,
        accept: Option<&str>,
        body: bytes::Bytes,
    ) -> Result<Encoded, ToolkitError> {
        self.invoke_bytes_with(content_type, accept, body, None)
            .await
    }

    /// [`invoke_bytes`](Self::invoke_bytes) with custom attributes, which give a raw body's
    /// parameters ([`codec::raw_parameters`]).
    pub async fn invoke_bytes_with(
        &self,
        content_type: Option<&str>,
        accept: Option<&str>,
        body: bytes::Bytes,
        custom_attributes: Option<&str>,
    ) -> Result<Encoded, ToolkitError> {
        let request_format = self.request_format(content_type)?;
        let response_format = codec::response_format_for(request_format, accept)?;
        let raw_parameters = match request_format {
            RequestFormat::Binary(_) => codec::raw_parameters(custom_attributes, None),
            _ => None,
        };
        let answer = self
            .invoke_body_with(request_format, response_format, body, raw_parameters)
            .await?;
        Ok(answer.collect().await)
    }

    /// One invocation whose media types are already negotiated (hosts that check the headers
    /// before reading the body), answered into one buffer.
    pub async fn invoke_negotiated(
        &self,
        request_format: RequestFormat,
        response_format: ResponseFormat,
        body: impl AsRef<[u8]> + Send + 'static,
    ) -> Result<Encoded, ToolkitError> {
        if request_format != RequestFormat::Csv {
            let body = bytes::Bytes::copy_from_slice(body.as_ref());
            let answer = self
                .invoke_body(request_format, response_format, body)
                .await?;
            return Ok(answer.collect().await);
        }
        let pipeline = Arc::clone(&self.pipeline);
        self.runtime
            .run(move |gone| {
                let doc = codec::decode(request_format, body.as_ref())?;
                let output = pipeline.run(Input::Json(doc), Context::new(gone))?;
                let body = encode::encode(&output, response_format)?;
                Ok(Encoded {
                    content_type: response_format.content_type(),
                    body,
                })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_input_lists_split_into_parts_of_their_own_size() {
        let sizes = |n: usize| {
            let doc = serde_json::json!({"inputs": vec!["x"; n], "parameters": {"top_k": 1}});
            match split_inputs(doc, true) {
                Err(_) => vec![n],
                Ok(parts) => parts
                    .iter()
                    .map(|p| {
                        assert_eq!(p["parameters"]["top_k"], 1);
                        let a = p["inputs"].as_array().unwrap();
                        assert!(a.capacity() <= a.len() + MICRO_BATCH, "{}", a.capacity());
                        a.len()
                    })
                    .collect(),
            }
        };
        assert_eq!(sizes(64), vec![64]);
        assert_eq!(sizes(65), vec![65]);
        assert_eq!(sizes(129), vec![64, 65]);
        assert_eq!(sizes(130), vec![64, 64, 2]);
        assert_eq!(sizes(1000).iter().sum::<usize>(), 1000);
        assert!(split_inputs(serde_json::json!({"inputs": vec!["x"; 500]}), false).is_err());
    }

    /// A pipeline that takes PNG bodies raw and answers with what reached it.
    #[derive(Debug)]
    struct RawEcho;

    impl Pipeline for RawEcho {
        fn task(&self) -> crate::task::Task {
            crate::task::Task::ImageClassification
        }

        fn run(
            &self,
            input: Input,
            _ctx: Context,
        ) -> Result<crate::pipeline::PipelineOutput, ToolkitError> {
            Ok(crate::pipeline::PipelineOutput::Json(match input {
                Input::Raw {
                    media_type, body, ..
                } => {
                    serde_json::json!({"media_type": media_type, "bytes": body.len()})
                }
                Input::Json(doc) => serde_json::json!({"json": doc}),
            }))
        }

        fn warm_up_input(&self) -> Input {
            Input::Json(serde_json::json!({}))
        }

        fn raw_media_types(&self) -> &'static [&'static str] {
            &["image/png", "image/jpeg"]
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn raw_bodies_reach_a_pipeline_that_takes_their_media_type() {
        let service = InferenceService::new(
            std::sync::Arc::new(RawEcho) as SharedPipeline,
            Runtime::new(crate::runtime::RuntimeOptions::default()).unwrap(),
        );
        let png = b"\x89PNG\r\n\x1a\n....".to_vec();
        let out = block_on(service.invoke(Some("Image/PNG"), None, png.clone())).unwrap();
        let v: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"media_type": "image/png", "bytes": png.len()})
        );
        // JSON still reaches it decoded
        let out =
            block_on(service.invoke(Some("application/json"), None, b"{\"inputs\": 1}".to_vec()))
                .unwrap();
        let v: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(v["json"]["inputs"], 1);
        // a type it does not take is a 415 that lists the ones it does
        let e = block_on(service.invoke(Some("audio/wav"), None, vec![0u8; 4])).unwrap_err();
        assert_eq!(e.status(), 415);
        let m = e.to_string();
        assert!(
            m.contains("audio/wav") && m.contains("image/png, image/jpeg"),
            "{m}"
        );
    }
}
