//! Bare forward pass (tokenize + model through to host f32 hidden states, no server) on
//! all-MiniLM-L6-v2, timed as `../shared/reference/compute/forward_bench.py` times ONNX Runtime and
//! torch: single sentences cycling through bench.py's 16 sentences (20 warm-up, 200 timed) and the
//! 32-sentence batch (3 warm-up, 30 timed); median = middle of the sorted list, p90 by linear
//! interpolation.
//!
//!     HF_BENCH_MODEL_DIR=$(bash infra/fetch-minilm.sh) cargo bench -p hf-inference-core --bench forward
//!
//! Run by forward_bench.py as `--external-cmd '... --json'`, it reads the `FB_*` parameters from
//! the environment and prints one JSON row for its table (see infra/bench-engine.sh).

use std::time::Instant;

use hf_inference_core::model::{self, HeadKind, ModelConfig, ModelSource};
use hf_inference_core::tokenize::{TextTokenizer, TokenizeOptions};

const SENTENCES: [&str; 16] = [
    "This is an example sentence.",
    "Each sentence is converted to a vector.",
    "The quick brown fox jumps over the lazy dog.",
    "I love this movie, it is the best film this year.",
    "Paris is the capital and most populous city of France.",
    "Amazon SageMaker is a fully managed machine learning service.",
    "The weather today is sunny with a light breeze.",
    "My name is Sylvain and I work at Hugging Face in Brooklyn.",
    "How many stars does the transformers repository have?",
    "Once upon a time there was a little model on a small server.",
    "Please send me the invoice for last month.",
    "The train to Munich leaves at half past eight.",
    "She plays the violin in the city orchestra.",
    "Our new phone has a bigger battery and a better camera.",
    "The museum is closed on Mondays and public holidays.",
    "Can you recommend a good book about machine learning?",
];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (median, p90, min) of milliseconds.
fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    let rank = (n - 1) as f64 * 0.9;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    let p90 = v[lo] + (v[hi] - v[lo]) * (rank - lo as f64);
    (median, p90, v[0])
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let Some(dir) =
        std::env::var_os("FB_MODEL_DIR").or_else(|| std::env::var_os("HF_BENCH_MODEL_DIR"))
    else {
        eprintln!(
            "set HF_BENCH_MODEL_DIR to a model directory, e.g. $(bash infra/fetch-minilm.sh)"
        );
        return;
    };
    let sentences: Vec<String> = std::env::var("FB_SENTENCES")
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_else(|| SENTENCES.iter().map(|s| (*s).to_owned()).collect());
    let (single_n, single_warm) = (
        env_usize("FB_SINGLE_N", 200),
        env_usize("FB_SINGLE_WARMUP", 20),
    );
    let (batch, reps, batch_warm) = (
        env_usize("FB_BATCH", 32),
        env_usize("FB_BATCH_REPS", 30),
        env_usize("FB_BATCH_WARMUP", 3),
    );
    let files = ModelSource::LocalDir(dir.into())
        .resolve()
        .expect("model files");
    let config = ModelConfig::from_file(&files.config).expect("config");
    let tok = TextTokenizer::load(&files, config.pad_token_id).expect("tokenizer");
    let m = model::load(
        &files,
        &config,
        HeadKind::HiddenStates,
        &candle_core::Device::Cpu,
    )
    .expect("model");
    let opts = TokenizeOptions {
        truncation: Some(hf_inference_core::tokenize::TruncationStrategy::LongestFirst),
        max_length: Some(env_usize("FB_MAX_LENGTH", 512)),
        ..TokenizeOptions::default()
    };
    let run = |texts: &[&String]| {
        let seqs: Vec<_> = texts
            .iter()
            .map(|s| tok.encode(s, None, &opts).expect("tokenize"))
            .collect();
        m.forward(&seqs).expect("forward")
    };
    let n = sentences.len();
    for i in 0..single_warm {
        run(&[&sentences[i % n]]);
    }
    // FB_GAP_US: an idle gap before each single call, as between a server's requests (the
    // pool's threads go to sleep in it); 0 = back to back, as forward_bench.py times ORT
    let gap = std::time::Duration::from_micros(env_usize("FB_GAP_US", 0) as u64);
    let single: Vec<f64> = (0..single_n)
        .map(|i| {
            if !gap.is_zero() {
                std::thread::sleep(gap);
            }
            let t = Instant::now();
            run(&[&sentences[i % n]]);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let texts: Vec<&String> = (0..batch).map(|i| &sentences[i % n]).collect();
    for _ in 0..batch_warm {
        run(&texts);
    }
    let batched: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            run(&texts);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let (s_med, s_p90, s_min) = stats(single);
    let (b_med, _, b_min) = stats(batched);
    let per_s = batch as f64 * 1e3 / b_med;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    if json {
        println!(
            "{}",
            serde_json::json!({
                "id": "ours", "label": "hf-inference-rs CPU kernels (f32, padding-free)", "threads": threads,
                "single": {"n": single_n, "median_ms": s_med, "p90_ms": s_p90, "min_ms": s_min},
                "batch": {"batch_size": batch, "reps": reps, "median_ms": b_med, "min_ms": b_min, "sentences_per_s": per_s},
            })
        );
    } else {
        println!("| runtime | single sentence (median / p90) | batch of {batch} |");
        println!("| --- | --- | --- |");
        println!("| hf-inference-rs (our CPU kernels) | {s_med:.2} / {s_p90:.2} ms | {b_med:.1} ms, {per_s:.0} sentences/s |");
    }
}
