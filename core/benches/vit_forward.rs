//! Bare forward pass of a ViT image classifier on our CPU kernels (`KernelVit`): preprocessed
//! 224x224 pixel values in, logits out, no decode, no preprocessing, no server. Batch 1 latency
//! (median of RUNS calls) and batch-16 throughput (median of ROUNDS calls of 16 images). Prints
//! one JSON line, with the logits of the first batch-1 image so a caller can check them against
//! torch on the same input.
//!
//!     cargo bench -p hf-inference-core --bench vit_forward -- MODEL_DIR [RUNS] [ROUNDS]
//!
//! The pixel values are a deterministic pattern in [-1, 1] that Python rebuilds bit for bit:
//! image `k`, value `i` = `((i·7919 + k·104729) mod 2001) / 1000 − 1` in f32.
//! `infra/bench-vit-engine.sh` runs it beside ONNX Runtime and torch.

use std::path::PathBuf;
use std::time::Instant;

use hf_inference_core::model::image_classifier::ImageClassifier;
use hf_inference_core::model::kernel_vit::KernelVit;
use hf_inference_core::model::ModelSource;
use hf_inference_core::vision::PixelValues;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Image `k` of the bench: the pattern of the module documentation.
fn image(k: usize, size: usize) -> PixelValues {
    let data = (0..3 * size * size)
        .map(|i| ((i * 7919 + k * 104_729) % 2001) as f32 / 1000.0 - 1.0)
        .collect();
    PixelValues {
        height: size,
        width: size,
        data,
    }
}

fn main() {
    // cargo bench passes --bench; positional arguments are ours
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: vit_forward MODEL_DIR [RUNS] [ROUNDS]");
        return;
    };
    let runs: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(20);
    let rounds: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(5);
    let batch = 16;

    let t = Instant::now();
    let files = ModelSource::LocalDir(PathBuf::from(dir))
        .resolve()
        .expect("the model directory");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files.config).expect("config.json"))
            .expect("config.json is JSON");
    let labels = config["id2label"]
        .as_object()
        .map(serde_json::Map::len)
        .or_else(|| config["num_labels"].as_u64().map(|n| n as usize))
        .expect("id2label in config.json");
    let model = KernelVit::load(&files, &config, labels).expect("loads");
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let (size, _) = model.input_size().expect("a fixed input size");

    let one = vec![image(0, size)];
    let many: Vec<PixelValues> = (0..batch).map(|k| image(k, size)).collect();

    let mut logits0 = Vec::new();
    let mut single = Vec::with_capacity(runs);
    for i in 0..runs + 3 {
        let t = Instant::now();
        let out = model.logits(&one).expect("runs");
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if i >= 3 {
            single.push(ms);
        }
        logits0 = std::hint::black_box(out).swap_remove(0);
    }
    let mut batched = Vec::with_capacity(rounds);
    for i in 0..rounds + 1 {
        let t = Instant::now();
        let out = model.logits(&many).expect("runs");
        let ms = t.elapsed().as_secs_f64() * 1e3;
        assert_eq!(out.len(), batch);
        std::hint::black_box(out);
        if i >= 1 {
            batched.push(ms);
        }
    }
    let batch_ms = median(batched);
    println!(
        "{}",
        serde_json::json!({
            "engine": "ours (KernelVit)",
            "image_size": size,
            "labels": labels,
            "load_ms": load_ms,
            "runs": runs,
            "rounds": rounds,
            "batch1_ms": median(single),
            "batch": batch,
            "batch_ms": batch_ms,
            "batch_images_per_s": batch as f64 * 1e3 / batch_ms,
            "logits0": logits0,
        })
    );
}
