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
use crate::error::ToolkitError;
use crate::pipeline::AnyPipeline;
use crate::runtime::Runtime;

/// Splits a body into lines (`\n`, a trailing `\r` dropped), failing once more than `limit`
/// bytes have arrived. Each line is a view of the bytes read, copied once.
pub fn split_lines<S, E>(
    body: S,
    limit: usize,
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
        total: 0,
        done: false,
    };
    stream::unfold(state, move |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            if let Some(n) = st.buf[st.start..].iter().position(|&b| b == b'\n') {
                let end = st.start + n;
                let out = line(st.buf[st.start..end].to_vec());
                st.start = end + 1;
                return Some((Ok(out), st));
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

/// Answers a stream of request lines: each line is decoded as a JSON request, run, and encoded;
/// `format` frames the answers as JSON Lines or as one JSON array. At most `concurrency` lines
/// are in flight.
pub(crate) fn answer_lines<S>(
    pipeline: Arc<AnyPipeline>,
    runtime: Arc<Runtime>,
    lines: S,
    format: ResponseFormat,
    concurrency: usize,
) -> Result<impl Stream<Item = Bytes> + Send + 'static, ToolkitError>
where
    S: Stream<Item = Result<Bytes, ToolkitError>> + Send + 'static,
{
    if !matches!(format, ResponseFormat::JsonLines | ResponseFormat::Json) {
        return Err(ToolkitError::UnsupportedAccept {
            accept: format.content_type().into(),
            reason: " for a JSON Lines request".into(),
            supported: "application/jsonlines, application/json".into(),
        });
    }
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
    let framed: std::pin::Pin<Box<dyn Stream<Item = Bytes> + Send>> = match format {
        ResponseFormat::Json => Box::pin(
            stream::once(future::ready(Bytes::from_static(b"[")))
                .chain(answers.enumerate().map(|(i, mut a)| {
                    if i > 0 {
                        a.insert(0, b',');
                    }
                    Bytes::from(a)
                }))
                .chain(stream::once(future::ready(Bytes::from_static(b"]")))),
        ),
        _ => Box::pin(answers.map(|mut a| {
            a.push(b'\n');
            Bytes::from(a)
        })),
    };
    Ok(framed)
}

/// One line: its answer, or its error body. A full queue is waited out (a long job must not
/// lose lines to other clients' bursts), up to the runtime's timeout.
async fn answer_line(pipeline: Arc<AnyPipeline>, runtime: &Runtime, line: Bytes) -> Vec<u8> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        let (p, l) = (Arc::clone(&pipeline), line.clone());
        let result = runtime
            .run(move || {
                let doc = codec::decode(RequestFormat::Json, &l)?;
                p.run(doc)?.encode(ResponseFormat::Json)
            })
            .await;
        match result {
            Ok(body) => return body,
            Err(ToolkitError::Overloaded { .. })
                if started.elapsed() < runtime.options().timeout =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err(e) => return e.body_json(),
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
            split_lines(body, limit)
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
    fn the_limit_ends_the_stream_with_413() {
        assert_eq!(
            split(&["a\nb\n", "cccccccc\n", "d\n"], 8),
            vec![Ok("a".into()), Ok("b".into()), Err(413)]
        );
    }
}
