//! Image decode and preprocessing timings: an image file decoded to RGB as Pillow does, then
//! preprocessed by a model's image processor (`preprocessor_config.json`), as the image
//! pipelines do before the model runs. Prints one JSON line with the medians.
//!
//!     cargo bench -p hf-inference-core --bench preprocess -- IMAGE MODEL_DIR [RUNS]
//!
//! `infra/bench-preprocess.sh` runs it beside Pillow and transformers' image processor.

use std::time::Instant;

use hf_inference_core::vision::{decode_rgb, ImageProcessor, DEFAULT_MAX_PIXELS};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // cargo bench passes --bench; positional arguments are ours
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let (Some(image), Some(model)) = (args.first(), args.get(1)) else {
        eprintln!("usage: preprocess IMAGE MODEL_DIR [RUNS]");
        return;
    };
    let runs: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(30);
    let bytes = std::fs::read(image).expect("the image file");
    let processor = ImageProcessor::load(std::path::Path::new(model)).expect("the processor");
    let (mut decode, mut prep, mut total) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs + 3 {
        let t0 = Instant::now();
        let rgb = decode_rgb(&bytes, DEFAULT_MAX_PIXELS).expect("decodes");
        let t1 = Instant::now();
        let px = processor
            .preprocess(&rgb, DEFAULT_MAX_PIXELS)
            .expect("preprocesses");
        let t2 = Instant::now();
        std::hint::black_box(&px);
        if i >= 3 {
            decode.push((t1 - t0).as_secs_f64() * 1e3);
            prep.push((t2 - t1).as_secs_f64() * 1e3);
            total.push((t2 - t0).as_secs_f64() * 1e3);
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "runs": runs,
            "decode_ms": median(decode),
            "preprocess_ms": median(prep),
            "total_ms": median(total),
        })
    );
}
