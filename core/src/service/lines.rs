//! JSON Lines (`application/jsonlines`), as SageMaker batch transform and asynchronous inference
//! send it: one request object per line, each answered on its own line, in order. The body is
//! read as a stream and answered as a stream: memory holds the lines in flight, not the body.
//! A line that fails gets its error object (`{"code","type","message"}`) in its place and the
//! rest still runs; blank lines are skipped. Lines run concurrently on the inference threads, so
//! the model thread batches them together.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{future, stream, Stream, StreamExt};

use crate::codec::{self, RequestFormat, ResponseFormat};
use crate::context::{CallerGone, Context};
use crate::error::ToolkitError;
use crate::pipeline::{Input, SharedPipeline};
use crate::runtime::Runtime;

/// Splits a body into lines (`\n`, a trailing `\r` dropped), failing once more than `limit`
/// bytes have arrived or a line grows past `max_line` bytes. Each byte is scanned once.
pub fn split_lines<S, E>(
    body: S,
    limit: usize,
    max_line: usize,
) -> impl Stream<Item = Result<Bytes, ToolkitError>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::fmt::Display,
{
    struct State<S> {
        body: S,
        buf: Vec<u8>,
        /// where the unread part of `buf` starts
        start: usize,
        /// how far past `start` is known to hold no newline
        scanned: usize,
        total: usize,
        done: bool,
    }
    let line = |mut bytes: Vec<u8>| {
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        Bytes::from(bytes)
    };
    let state = State {
        body,
        buf: Vec::new(),
        start: 0,
        scanned: 0,
        total: 0,
        done: false,
    };
    stream::unfold(state, move |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            let from = st.start + st.scanned;
            if let Some(n) = st.buf[from..].iter().position(|&b| b == b'\n') {
                let end = from + n;
                let out = line(st.buf[st.start..end].to_vec());
                st.start = end + 1;
                st.scanned = 0;
                return Some((Ok(out), st));
            }
            st.scanned = st.buf.len() - st.start;
            if st.scanned > max_line {
                st.done = true;
                let e = ToolkitError::Validation(format!(
                    "a line is longer than {max_line} bytes; JSON Lines holds one request per line"
                ));
                return Some((Err(e), st));
            }
            match st.body.next().await {
                Some(Ok(chunk)) => {
                    st.total += chunk.len();
                    if st.total > limit {
                        st.done = true;
                        return Some((Err(ToolkitError::PayloadTooLarge { limit }), st));
                    }
                    st.buf.drain(..st.start);
                    st.start = 0;
                    st.buf.extend_from_slice(&chunk);
                }
                Some(Err(e)) => {
                    st.done = true;
                    let e =
                        ToolkitError::Validation(format!("could not read the request body: {e}"));
                    return Some((Err(e), st));
                }
                None => {
                    st.done = true;
                    let rest = st.buf.split_off(st.start);
                    if rest.is_empty() {
                        return None;
                    }
                    return Some((Ok(line(rest)), st));
                }
            }
        }
    })
}

/// How a sequence of answers is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One answer per line.
    Lines,
    /// One JSON array.
    Array,
}

impl Framing {
    /// The framing of a response format: an array for JSON, lines for JSON Lines; other formats
    /// cannot hold a sequence of answers (406).
    pub fn of(format: ResponseFormat) -> Result<Self, ToolkitError> {
        match format {
            ResponseFormat::JsonLines => Ok(Framing::Lines),
            ResponseFormat::Json => Ok(Framing::Array),
            other => Err(ToolkitError::UnsupportedAccept {
                accept: other.content_type().into(),
                reason: " for a response streamed answer by answer".into(),
                supported: "application/jsonlines, application/json".into(),
            }),
        }
    }

    /// Frames a stream of encoded answers.
    pub fn frame<S>(self, answers: S) -> std::pin::Pin<Box<dyn Stream<Item = Bytes> + Send>>
    where
        S: Stream<Item = Vec<u8>> + Send + 'static,
    {
        match self {
            Framing::Array => Box::pin(
                stream::once(future::ready(Bytes::from_static(b"[")))
                    .chain(answers.enumerate().map(|(i, mut a)| {
                        if i > 0 {
                            a.insert(0, b',');
                        }
                        Bytes::from(a)
                    }))
                    .chain(stream::once(future::ready(Bytes::from_static(b"]")))),
            ),
            Framing::Lines => Box::pin(answers.map(|mut a| {
                a.push(b'\n');
                Bytes::from(a)
            })),
        }
    }
}

/// Answers a stream of request lines: each line is decoded as a JSON request, run, and encoded;
/// `framing` lays the answers out. At most `concurrency` lines are in flight.
pub(crate) fn answer_lines<S>(
    pipeline: SharedPipeline,
    runtime: Arc<Runtime>,
    lines: S,
    framing: Framing,
    concurrency: usize,
) -> std::pin::Pin<Box<dyn Stream<Item = Bytes> + Send>>
where
    S: Stream<Item = Result<Bytes, ToolkitError>> + Send + 'static,
{
    let answers = lines
        .filter(|l| future::ready(!matches!(l, Ok(b) if b.iter().all(u8::is_ascii_whitespace))))
        .map(move |line| {
            let (pipeline, runtime) = (Arc::clone(&pipeline), Arc::clone(&runtime));
            async move {
                match line {
                    Ok(line) => answer_line(pipeline, &runtime, line).await,
                    Err(e) => e.body_json(),
                }
            }
        })
        .buffered(concurrency.max(1));
    framing.frame(answers)
}

/// One line: its answer, or its error body.
async fn answer_line(pipeline: SharedPipeline, runtime: &Runtime, line: Bytes) -> Vec<u8> {
    let result = run_patiently(runtime, move |gone| {
        let doc = codec::decode(RequestFormat::Json, &line)?;
        let out = pipeline.run(Input::Json(doc), Context::new(gone))?;
        super::encode::encode(&out, ResponseFormat::Json)
    })
    .await;
    result.unwrap_or_else(|e| e.body_json())
}

/// Runs a job on the runtime, waiting out a full queue (a long job must not lose parts to other
/// clients' bursts) up to the runtime's timeout.
pub(crate) async fn run_patiently<T, F>(runtime: &Runtime, f: F) -> Result<T, ToolkitError>
where
    T: Send + 'static,
    F: Fn(CallerGone) -> Result<T, ToolkitError> + Send + Sync + 'static,
{
    let f = Arc::new(f);
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        let job = Arc::clone(&f);
        match runtime.run(move |gone| job(gone)).await {
            Err(ToolkitError::Overloaded { .. })
                if started.elapsed() < runtime.options().timeout =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&str], limit: usize) -> Vec<Result<String, u16>> {
        let body = stream::iter(
            chunks
                .iter()
                .map(|c| Ok::<_, std::convert::Infallible>(Bytes::from(c.to_string())))
                .collect::<Vec<_>>(),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(
            split_lines(body, limit, 16)
                .map(|l| {
                    l.map(|b| String::from_utf8(b.to_vec()).unwrap())
                        .map_err(|e| e.status().as_u16())
                })
                .collect(),
        )
    }

    #[test]
    fn lines_across_chunks_crlf_and_a_last_line_without_newline() {
        assert_eq!(
            split(&["{\"a\":1}\r\n{\"b\"", ":2}\n\n", "{\"c\":3}"], 1000),
            vec![
                Ok("{\"a\":1}".into()),
                Ok("{\"b\":2}".into()),
                Ok(String::new()),
                Ok("{\"c\":3}".into())
            ]
        );
        assert_eq!(split(&[], 10), vec![]);
    }

    #[test]
    fn a_line_past_its_limit_ends_the_stream() {
        assert_eq!(
            split(
                &[
                    "short\n",
                    "a very long line that never ends",
                    " and goes on"
                ],
                1000
            ),
            vec![Ok("short".into()), Err(400)]
        );
    }

    #[test]
    fn the_limit_ends_the_stream_with_413() {
        assert_eq!(
            split(&["a\nb\n", "cccccccc\n", "d\n"], 8),
            vec![Ok("a".into()), Ok("b".into()), Err(413)]
        );
    }
}
