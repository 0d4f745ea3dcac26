//! Decoding-step timings of a generative model on the CPU kernels: one step for 1, 2, 4 and 8
//! sequences at once (after a 16-token prompt each), and the prompt step itself. Decoders and
//! T5 (whose prompt goes to the encoder, and whose "prompt step" is then 16 decoder tokens).
//! Each step is timed twice: with the full logits, and as a greedy step (argmax only, which a
//! float32 head answers from its bfloat16 screen, see `kernels::head`).
//!
//!     HF_BENCH_GEN_MODEL_DIR=~/.cache/hf-toolkit-reference/bench-models/qwen2-0.5b-bf16 \
//!         cargo bench -p hf-inference-core --bench decode

use std::time::Instant;

use hf_inference_core::generate::{LanguageModel, OnTeam, StepInput};
use hf_inference_core::model::causal::CausalLm;
use hf_inference_core::model::t5::T5;

fn main() {
    let Some(dir) = std::env::var_os("HF_BENCH_GEN_MODEL_DIR") else {
        eprintln!("set HF_BENCH_GEN_MODEL_DIR to a decoder model directory (e.g. infra/bench/make_generation_models.py's qwen2-0.5b-bf16)");
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("config.json")).expect("config.json"),
    )
    .expect("config");
    let files = hf_inference_core::model::ModelSource::LocalDir(dir)
        .resolve()
        .expect("model files");
    let vb = hf_inference_core::model::loader::open_weights(&files).expect("weights");
    // the engine's wrapping: every call inside the model's own thread pool
    let model: Box<dyn LanguageModel> = match config["model_type"].as_str() {
        Some("t5" | "mt5") => {
            Box::new(OnTeam::new(T5::load(&config, &vb).expect("model")).expect("pool"))
        }
        _ => Box::new(OnTeam::new(CausalLm::load(&config, &vb).expect("model")).expect("pool")),
    };
    let prompt: Vec<u32> = (100..116).collect();
    // steps timed per batch size (the median is reported): HF_BENCH_STEPS, 8 by default
    let steps: usize = std::env::var("HF_BENCH_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    // "greedy step": every sequence asks for the argmax only (the head's screen, when it has
    // one); the two kinds of step alternate
    println!(
        "| sequences | prompt step (ms) | decoding step (ms) | ms per sequence | greedy step (ms) |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for &n in &[1usize, 2, 4, 8] {
        let mut caches: Vec<_> = (0..n)
            .map(|_| model.start(&prompt).expect("start"))
            .collect();
        let t = Instant::now();
        {
            let mut batch: Vec<StepInput<'_>> = caches
                .iter_mut()
                .map(|c| StepInput {
                    cache: c,
                    tokens: &prompt,
                    argmax_only: None,
                })
                .collect();
            model.step(&mut batch).expect("prompt");
        }
        let prefill = t.elapsed().as_secs_f64() * 1e3;
        let (mut times, mut greedy_times) = (Vec::new(), Vec::new());
        let token = [7u32];
        for i in 0..2 * steps {
            let greedy = i % 2 == 1;
            let t = Instant::now();
            let mut batch: Vec<StepInput<'_>> = caches
                .iter_mut()
                .map(|c| StepInput {
                    cache: c,
                    tokens: &token,
                    argmax_only: greedy.then_some(&[][..]),
                })
                .collect();
            model.step(&mut batch).expect("step");
            let ms = t.elapsed().as_secs_f64() * 1e3;
            if greedy {
                greedy_times.push(ms);
            } else {
                times.push(ms);
            }
        }
        let median = |mut t: Vec<f64>| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        };
        let (step, greedy) = (median(times), median(greedy_times));
        println!(
            "| {n} | {prefill:.1} | {step:.1} | {:.1} | {greedy:.1} |",
            step / n as f64
        );
    }
}
