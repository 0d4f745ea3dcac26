//! The seam between generative models and decoding: a [`LanguageModel`] runs new tokens of
//! several sequences at once, each with its own [`KvCache`], and returns next-token logits.
//! Models implement it; the generation layer ([`crate::generate`]) only ever asks it for logits.

use std::sync::Arc;

use crate::error::ToolkitError;

/// Keys and values of one attention layer, one row per position (`[len, kv_heads · head_dim]`).
#[derive(Debug, Clone, Default)]
pub struct LayerKv {
    /// Keys.
    pub k: Vec<f32>,
    /// Values.
    pub v: Vec<f32>,
}

/// What an encoder-decoder model keeps of the encoder's output for its decoder: the
/// cross-attention keys and values of every layer (shared by all beams of an input).
#[derive(Debug, Default)]
pub struct CrossState {
    /// Per decoder layer.
    pub layers: Vec<LayerKv>,
    /// Encoder positions.
    pub len: usize,
}

/// The decoding state of one sequence: its self-attention cache and, for encoder-decoder models,
/// the encoded input.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    /// Per layer.
    pub layers: Vec<LayerKv>,
    /// Positions already in the cache.
    pub len: usize,
    /// The encoder's output, for encoder-decoder models.
    pub cross: Option<Arc<CrossState>>,
}

impl KvCache {
    /// Bytes held by this sequence's own cache (not the shared encoder state).
    pub fn bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|l| (l.k.capacity() + l.v.capacity()) * 4)
            .sum()
    }
}

/// One sequence of a model step: its cache and the tokens to append.
#[derive(Debug)]
pub struct StepInput<'a> {
    /// The sequence's cache, extended by the step.
    pub cache: &'a mut KvCache,
    /// New tokens (the whole prompt first, then one token a step).
    pub tokens: &'a [u32],
    /// `Some(banned)` when the caller only takes the argmax of the logits once `banned` are
    /// −∞ (greedy search whose processors only ban tokens): the model may then return the exact
    /// logits of just the tokens that can be that argmax, −∞ for the others
    /// ([`crate::kernels::head::LmHead`]). `None`: the full logits.
    pub argmax_only: Option<&'a [u32]>,
}

/// Each sequence's [`StepInput::argmax_only`], for [`crate::kernels::head::LmHead::logits`].
pub(crate) fn argmax_only<'a>(batch: &'a [StepInput<'_>]) -> Vec<Option<&'a [u32]>> {
    batch.iter().map(|s| s.argmax_only).collect()
}

/// A model that produces next-token logits.
pub trait LanguageModel: Send + Sync {
    /// Vocabulary size (length of the logits).
    fn vocab_size(&self) -> usize;

    /// The most positions a sequence may have (prompt and generated tokens), if bounded.
    fn max_positions(&self) -> Option<usize>;

    /// The most positions the model can compute at all (learned position tables); rotary models
    /// run past `max_positions` (as transformers lets them) and have none.
    fn position_limit(&self) -> Option<usize> {
        self.max_positions()
    }

    /// Whether the model is an encoder-decoder (generation starts from a decoder start token).
    fn is_encoder_decoder(&self) -> bool;

    /// A fresh decoding state for `input_ids`: for encoder-decoder models, runs the encoder;
    /// decoder-only models start empty (the prompt is their first step).
    fn start(&self, input_ids: &[u32]) -> Result<KvCache, ToolkitError>;

    /// Appends `tokens` to every sequence and returns each sequence's next-token logits (of its
    /// last new token). Rows are independent: a sequence's logits never depend on the others.
    fn step(&self, batch: &mut [StepInput<'_>]) -> Result<Vec<Vec<f32>>, ToolkitError>;

    /// Whether [`StepInput::argmax_only`] saves work (the model's head has a screen).
    fn screens_argmax(&self) -> bool {
        false
    }
}

/// A shared model.
pub type SharedModel = Arc<dyn LanguageModel>;

/// Where each sequence's new rows are in a step's stacked rows: `(first row, rows, cached
/// positions before the step)`.
pub(crate) type Span = (usize, usize, usize);

/// Causal attention of each sequence's new `queries` (`[t, heads·hd]`) over its cache of layer
/// `li`, which already holds this step's keys and values; `window` bounds how far back a query
/// sees (sliding-window models), `biases[i]` is added to sequence `i`'s scores (T5's position
/// bias, `[heads, t, first + t]`). The sequences attend in parallel; returns their context rows,
/// stacked in span order.
pub(crate) fn attend_caches(
    batch: &[StepInput<'_>],
    spans: &[Span],
    li: usize,
    queries: &[Vec<f32>],
    shape: crate::kernels::decode::AttnShape,
    window: Option<usize>,
    biases: Option<&[Vec<f32>]>,
) -> Vec<f32> {
    use crate::kernels::decode::{cached_attention, gather, per_sequence, Visibility};
    let rows: usize = spans.iter().map(|s| s.1).sum();
    let parts = per_sequence(batch.len(), |i| {
        let (_, t, first) = spans[i];
        let kv = &batch[i].cache.layers[li];
        cached_attention(
            &queries[i],
            &kv.k,
            &kv.v,
            (t, first + t),
            shape,
            Visibility::Causal { first, window },
            biases.map(|b| &b[i][..]),
        )
    });
    gather(parts, rows * shape.heads * shape.head_dim)
}

/// A model whose calls run with a team of threads of its own ([`crate::kernels::team`]). A
/// decoding step is dozens of small parallel sections (one per matrix product) with short
/// serial work between them; the team's helpers spin for the length of a call, so each section
/// starts without waking a sleeping thread, and the call runs on the caller's thread (the
/// engine's), without a hand-off.
pub struct OnTeam<M> {
    model: M,
    team: crate::kernels::team::Team,
}

impl<M> std::fmt::Debug for OnTeam<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnTeam")
            .field("threads", &self.team.threads())
            .finish_non_exhaustive()
    }
}

impl<M: LanguageModel> OnTeam<M> {
    /// Wraps `model` with a team of one thread per core.
    pub fn new(model: M) -> Result<Self, ToolkitError> {
        let team = crate::kernels::team::Team::new("generation").map_err(|e| {
            ToolkitError::Internal(format!("cannot start the generation threads: {e}"))
        })?;
        Ok(Self { model, team })
    }
}

impl<M: LanguageModel> LanguageModel for OnTeam<M> {
    fn vocab_size(&self) -> usize {
        self.model.vocab_size()
    }

    fn max_positions(&self) -> Option<usize> {
        self.model.max_positions()
    }

    fn position_limit(&self) -> Option<usize> {
        self.model.position_limit()
    }

    fn is_encoder_decoder(&self) -> bool {
        self.model.is_encoder_decoder()
    }

    fn start(&self, input_ids: &[u32]) -> Result<KvCache, ToolkitError> {
        self.team.run(|| self.model.start(input_ids))
    }

    fn step(&self, batch: &mut [StepInput<'_>]) -> Result<Vec<Vec<f32>>, ToolkitError> {
        self.team.run(|| self.model.step(batch))
    }

    fn screens_argmax(&self) -> bool {
        self.model.screens_argmax()
    }
}
