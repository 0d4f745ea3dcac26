//! Process-wide counters of the engine's work, for the hosts' metrics (`/metrics`, CloudWatch):
//! encoder forward passes and their batch sizes, tokens in and out. Plain atomics, cumulative
//! since start; a host reads a [`snapshot`] and reports the differences.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the batch-size buckets (sequences per forward pass); larger passes count in
/// the last one's overflow.
pub const BATCH_BUCKETS: [u64; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];

static PASSES: AtomicU64 = AtomicU64::new(0);
static INPUT_TOKENS: AtomicU64 = AtomicU64::new(0);
static GENERATED_TOKENS: AtomicU64 = AtomicU64::new(0);
/// Passes per bucket of [`BATCH_BUCKETS`], then those larger than the last bound.
static BUCKETS: [AtomicU64; 10] = [const { AtomicU64::new(0) }; 10];

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Encoder forward passes run.
    pub passes: u64,
    /// Tokens that went into the model: encoder passes and generation prompts.
    pub input_tokens: u64,
    /// Tokens generated.
    pub generated_tokens: u64,
    /// Passes per bucket of [`BATCH_BUCKETS`] (not cumulative), then the larger ones.
    pub batch_buckets: [u64; 10],
}

/// Counts one encoder forward pass of `sequences` sequences holding `tokens` tokens.
pub fn record_pass(sequences: usize, tokens: usize) {
    PASSES.fetch_add(1, Ordering::Relaxed);
    INPUT_TOKENS.fetch_add(tokens as u64, Ordering::Relaxed);
    let i = BATCH_BUCKETS
        .iter()
        .position(|&b| sequences as u64 <= b)
        .unwrap_or(BATCH_BUCKETS.len());
    BUCKETS[i].fetch_add(1, Ordering::Relaxed);
}

/// Counts a generation: its prompt's tokens and those it generated.
pub fn record_generation(prompt_tokens: usize, generated_tokens: usize) {
    INPUT_TOKENS.fetch_add(prompt_tokens as u64, Ordering::Relaxed);
    GENERATED_TOKENS.fetch_add(generated_tokens as u64, Ordering::Relaxed);
}

/// The counters now.
pub fn snapshot() -> Snapshot {
    Snapshot {
        passes: PASSES.load(Ordering::Relaxed),
        input_tokens: INPUT_TOKENS.load(Ordering::Relaxed),
        generated_tokens: GENERATED_TOKENS.load(Ordering::Relaxed),
        batch_buckets: std::array::from_fn(|i| BUCKETS[i].load(Ordering::Relaxed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_counts_in_its_bucket_and_its_tokens() {
        let before = snapshot();
        record_pass(3, 40);
        record_pass(1000, 5);
        record_generation(7, 2);
        let after = snapshot();
        // other tests may count too: at least these
        assert!(after.passes >= before.passes + 2);
        assert!(after.input_tokens >= before.input_tokens + 52);
        assert!(after.generated_tokens >= before.generated_tokens + 2);
        assert!(
            after.batch_buckets[2] > before.batch_buckets[2],
            "3 sequences: bucket <= 4"
        );
        assert!(
            after.batch_buckets[9] > before.batch_buckets[9],
            "1000: past the last bound"
        );
    }
}
