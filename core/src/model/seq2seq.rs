//! The parts T5 and BART/Marian share: the encoder's keys/values for every decoder layer, and a
//! decoder step's attention (self-attention appending to each sequence's cache, cross-attention
//! over its encoder state) for the rows of several sequences at once.

use std::sync::Arc;

use crate::error::ToolkitError;
use crate::kernels::decode::{cached_attention, gather, per_sequence, AttnShape, Visibility};
use crate::kernels::PackedLinear;
use crate::model::lm::{attend_caches, CrossState, KvCache, LayerKv, Span, StepInput};

/// A fresh decoder cache over the encoder output `x` (`[s, d]`): each decoder layer's
/// cross-attention keys and values (`kv` projects to `[k | v]`, `inner` wide each).
pub(crate) fn encoder_state(kv: &[&PackedLinear], x: &[f32], s: usize, inner: usize) -> KvCache {
    let layers = kv
        .iter()
        .map(|proj| {
            let out = proj.forward(x, s);
            let mut l = LayerKv {
                k: Vec::with_capacity(s * inner),
                v: Vec::with_capacity(s * inner),
            };
            for row in out.chunks_exact(2 * inner) {
                l.k.extend_from_slice(&row[..inner]);
                l.v.extend_from_slice(&row[inner..]);
            }
            l
        })
        .collect();
    KvCache {
        layers: (0..kv.len()).map(|_| LayerKv::default()).collect(),
        len: 0,
        cross: Some(Arc::new(CrossState { layers, len: s })),
    }
}

/// The new tokens of every sequence, embedded by `embed(tokens, first position)` and stacked, with
/// their spans.
pub(crate) fn stack(
    batch: &[StepInput<'_>],
    mut embed: impl FnMut(&[u32], usize) -> Result<Vec<f32>, ToolkitError>,
) -> Result<(Vec<f32>, Vec<Span>, usize), ToolkitError> {
    let mut x = Vec::new();
    let mut spans = Vec::with_capacity(batch.len());
    let mut rows = 0;
    for s in batch {
        if s.tokens.is_empty() || s.cache.cross.is_none() {
            return Err(ToolkitError::Internal(
                "a decoder step without input".into(),
            ));
        }
        x.extend(embed(s.tokens, s.cache.len)?);
        spans.push((rows, s.tokens.len(), s.cache.len));
        rows += s.tokens.len();
    }
    Ok((x, spans, rows))
}

/// Causal self-attention of layer `li`: `qkv` holds each row's `[q | k | v]` (`inner` wide each);
/// keys and values are appended to each sequence's cache; `biases[i]`, when given, is sequence
/// `i`'s position bias (`[heads, t, first + t]`). Returns the context rows.
pub(crate) fn self_attention(
    qkv: &[f32],
    batch: &mut [StepInput<'_>],
    spans: &[Span],
    li: usize,
    shape: AttnShape,
    biases: Option<&[Vec<f32>]>,
) -> Vec<f32> {
    let inner = shape.heads * shape.head_dim;
    // append the new keys and values to each cache and gather each sequence's queries...
    let mut queries = Vec::with_capacity(batch.len());
    for (s, &(r0, t, _)) in batch.iter_mut().zip(spans) {
        let kv = &mut s.cache.layers[li];
        let mut q = Vec::with_capacity(t * inner);
        for row in qkv[r0 * 3 * inner..(r0 + t) * 3 * inner].chunks_exact(3 * inner) {
            q.extend_from_slice(&row[..inner]);
            kv.k.extend_from_slice(&row[inner..2 * inner]);
            kv.v.extend_from_slice(&row[2 * inner..]);
        }
        queries.push(q);
    }
    // ...then attend
    attend_caches(batch, spans, li, &queries, shape, None, biases)
}

/// Cross-attention of layer `li` of the rows' queries `q` over each sequence's encoder state.
pub(crate) fn cross_attention(
    q: &[f32],
    batch: &[StepInput<'_>],
    spans: &[Span],
    li: usize,
    shape: AttnShape,
) -> Result<Vec<f32>, ToolkitError> {
    let inner = shape.heads * shape.head_dim;
    let crosses = batch
        .iter()
        .map(|s| {
            s.cache
                .cross
                .as_ref()
                .ok_or_else(|| ToolkitError::Internal("no encoder state".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let parts = per_sequence(batch.len(), |i| {
        let (r0, t, _) = spans[i];
        let cross = crosses[i];
        let kv = &cross.layers[li];
        cached_attention(
            &q[r0 * inner..(r0 + t) * inner],
            &kv.k,
            &kv.v,
            (t, cross.len),
            shape,
            Visibility::All,
            None,
        )
    });
    Ok(gather(parts, q.len()))
}

/// Ends a step: counts the new positions in each cache and returns the last row of each
/// sequence (`[sequences, d]`).
pub(crate) fn finish_step(
    batch: &mut [StepInput<'_>],
    spans: &[Span],
    x: &[f32],
    d: usize,
) -> Vec<f32> {
    let mut last = Vec::with_capacity(spans.len() * d);
    for (s, &(r0, t, _)) in batch.iter_mut().zip(spans) {
        s.cache.len += t;
        last.extend_from_slice(&x[(r0 + t - 1) * d..(r0 + t) * d]);
    }
    last
}
