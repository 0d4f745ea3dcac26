//! What a pipeline run carries besides its input: whether its caller is still there, and where
//! streamed tokens go. A [`Context`] is passed to every run explicitly, so a pipeline run outside
//! the executor (a test, a warm-up, another host) behaves exactly as one inside it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::ToolkitError;

/// Says whether the caller of a request is gone (its timeout passed or its client
/// disconnected): long work (a generation) polls it and stops rather than run to the end for
/// nobody. Clones share one flag.
#[derive(Debug, Clone, Default)]
pub struct CallerGone(Arc<AtomicBool>);

impl CallerGone {
    /// A flag that is not raised yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the caller is gone.
    pub fn is_gone(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Says that the caller is gone (every clone sees it).
    pub fn raise(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// A guard that raises the flag when dropped: held by whatever waits for the answer, so that
    /// the work learns when nobody does any more, whichever way the waiting ends.
    pub fn guard(&self) -> RaiseOnDrop {
        RaiseOnDrop(self.clone())
    }

    /// The error such work stops with (no one reads it: the caller is gone).
    pub fn error() -> ToolkitError {
        ToolkitError::Internal("the caller of this request is gone".into())
    }
}

/// Raises its [`CallerGone`] flag when dropped (see [`CallerGone::guard`]).
#[derive(Debug)]
pub struct RaiseOnDrop(CallerGone);

impl Drop for RaiseOnDrop {
    fn drop(&mut self) {
        self.0.raise();
    }
}

/// Called with each new token of a streamed generation; `false` stops it (client gone).
pub type TokenSink = Box<dyn FnMut(u32) -> bool + Send>;

/// The context of one pipeline run.
#[derive(Default)]
pub struct Context {
    /// Raised when nobody waits for the answer any more.
    pub gone: CallerGone,
    /// Where a pipeline that streams tokens sends each new one (`None`: answer whole).
    pub tokens: Option<TokenSink>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("gone", &self.gone.is_gone())
            .field("streams", &self.tokens.is_some())
            .finish()
    }
}

impl Context {
    /// A run whose caller is `gone` when the flag says so, answered whole.
    pub fn new(gone: CallerGone) -> Self {
        Self { gone, tokens: None }
    }

    /// A run with nobody to cancel it (warm-up, tests, a host's own calls).
    pub fn detached() -> Self {
        Self::default()
    }

    /// The same run, streaming its tokens into `sink`.
    pub fn with_tokens(self, sink: TokenSink) -> Self {
        Self {
            tokens: Some(sink),
            ..self
        }
    }

    /// Whether the caller is gone.
    pub fn is_gone(&self) -> bool {
        self.gone.is_gone()
    }
}
