//! Text generation: the seam between generative models and decoding, and decoding itself with
//! transformers' `generate` semantics (`transformers/generation/utils.py`, 4.51).
//!
//! A [`LanguageModel`] ([`crate::model::lm`]) runs new tokens of several sequences at once, each with its own
//! [`KvCache`]; decoding ([`search`]) only ever asks for the next-token logits of sequences.
//! Beams are sequences whose caches are copied when a beam is continued twice, and concurrent
//! requests are sequences of one shared step (see [`scheduler`]).

pub mod chat;
pub mod config;
pub mod logits;
pub mod scheduler;
pub mod search;

pub use crate::model::lm::{
    CrossState, KvCache, LanguageModel, LayerKv, OnTeam, SharedModel, StepInput,
};
