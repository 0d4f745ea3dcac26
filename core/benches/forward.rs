//! Bare forward pass (tokenize + model, no server) on all-MiniLM-L6-v2, as
//! `../shared/reference/compute/forward_bench.py` measures ONNX Runtime and torch: single sentences
//! cycling through bench.py's 16 sentences, and the 32-sentence batch.
//!
//!     HF_BENCH_MODEL_DIR=$(bash infra/fetch-minilm.sh) cargo bench -p hf-inference-core --bench forward

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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let Some(dir) = std::env::var_os("HF_BENCH_MODEL_DIR") else {
        eprintln!(
            "set HF_BENCH_MODEL_DIR to a model directory, e.g. $(bash infra/fetch-minilm.sh)"
        );
        return;
    };
    let files = ModelSource::LocalDir(dir.into())
        .resolve()
        .expect("model files");
    let config = ModelConfig::from_file(&files.config).expect("config");
    let tok = TextTokenizer::load(&files, config.pad_token_id).expect("tokenizer");
    let m = model::load(&files, &config, HeadKind::HiddenStates, &model::device()).expect("model");
    let opts = TokenizeOptions::default();
    let encode = |s: &str| tok.encode(s, None, &opts).expect("tokenize");
    let single = |i: usize| {
        let seq = encode(SENTENCES[i % 16]);
        m.forward(&[seq]).expect("forward")
    };
    for i in 0..20 {
        single(i);
    }
    let rounds: usize = std::env::var("HF_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let times: Vec<f64> = (0..rounds)
        .map(|i| {
            let t = Instant::now();
            single(i);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let batch = |_: usize| {
        let seqs: Vec<_> = (0..32).map(|i| encode(SENTENCES[i % 16])).collect();
        m.forward(&seqs).expect("forward")
    };
    for i in 0..3 {
        batch(i);
    }
    let btimes: Vec<f64> = (0..30)
        .map(|i| {
            let t = Instant::now();
            batch(i);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let (s, b) = (median(times), median(btimes));
    println!("| runtime | single sentence (median) | batch of 32 |");
    println!("| --- | --- | --- |");
    println!(
        "| hf-inference-rs (our CPU kernels) | {s:.2} ms | {b:.1} ms, {:.0} sentences/s |",
        32.0 * 1e3 / b
    );
}
