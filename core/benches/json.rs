//! Micro-benchmark of the float printer every JSON answer goes through: Python's `repr` of
//! f32 values widened to f64 (a feature-extraction answer is thousands of them; the batch of 32
//! of all-MiniLM-L6-v2 is ~200k). Next to it, zmij's own shortest-digit printing, which it wraps.
//!
//!     cargo bench -p hf-inference-core --bench json

use std::time::Instant;

fn main() {
    let n = 4608; // a 12-token sentence of a 384-wide model
    let values: Vec<f32> = (0..n)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) % 100_000) as f32 / 37_000.0 - 1.3)
        .collect();
    let best_ns = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut best = f64::MAX;
        for _ in 0..300 {
            let mut out = Vec::with_capacity(n * 21);
            let t = Instant::now();
            f(&mut out);
            best = best.min(t.elapsed().as_secs_f64() * 1e9);
            std::hint::black_box(&out);
        }
        best / n as f64
    };
    let ours = best_ns(&|out| {
        for &x in &values {
            hf_inference_core::json::write_py_float(out, f64::from(x));
            out.push(b',');
        }
    });
    let digits = best_ns(&|out| {
        let mut b = zmij::Buffer::new();
        for &x in &values {
            out.extend_from_slice(b.format_finite(f64::from(x)).as_bytes());
            out.push(b',');
        }
    });
    println!("| printer | ns per float (best of 300 runs of {n}) |");
    println!("| --- | ---: |");
    println!("| write_py_float (Python repr layout) | {ours:.1} |");
    println!("| zmij shortest digits alone | {digits:.1} |");
}
