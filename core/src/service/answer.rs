//! What a host sends back: a whole body, or a stream of chunks.

/// A stream of response bytes.
pub type AnswerStream = std::pin::Pin<Box<dyn futures_util::Stream<Item = bytes::Bytes> + Send>>;

/// A successful answer: whole, or streamed as it is produced.
pub enum Answer {
    /// The whole body.
    Whole(Encoded),
    /// The body as a stream.
    Stream {
        /// The `Content-Type`.
        content_type: &'static str,
        /// The body's chunks.
        chunks: AnswerStream,
    },
}

impl Answer {
    /// The whole body, the stream read to its end.
    pub async fn collect(self) -> Encoded {
        use futures_util::StreamExt;
        match self {
            Answer::Whole(e) => e,
            Answer::Stream {
                content_type,
                mut chunks,
            } => {
                let mut body = Vec::new();
                while let Some(c) = chunks.next().await {
                    body.extend_from_slice(&c);
                }
                Encoded { content_type, body }
            }
        }
    }
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Whole(e) => f.debug_tuple("Whole").field(e).finish(),
            Answer::Stream { content_type, .. } => f
                .debug_struct("Stream")
                .field("content_type", content_type)
                .finish_non_exhaustive(),
        }
    }
}

/// A successful response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}
