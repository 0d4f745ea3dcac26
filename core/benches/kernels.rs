//! Micro-benchmarks of the CPU kernels against the candle ops they replace, on the shapes of
//! all-MiniLM-L6-v2 (hidden 384, FFN 1536): one sentence (12 tokens) and the batch of 32 (544).
//!
//!     cargo bench -p hf-inference-core --bench kernels

use std::time::Instant;

use candle_core::{Device, Module, Tensor};
use hf_inference_core::kernels::{self, PackedLinear};

fn data(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 1000) as f32 / 1000.0 - 0.5
        })
        .collect()
}

/// Median microseconds of `reps` calls after a few warm-up calls.
fn time<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    for _ in 0..3 {
        f();
    }
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    let dev = Device::Cpu;
    println!("| kernel | shape | ours (µs) | candle (µs) | speed-up |");
    println!("| --- | --- | ---: | ---: | ---: |");
    for &(m, k, n) in &[
        (12, 384, 1152),
        (12, 384, 1536),
        (12, 1536, 384),
        (544, 384, 1152),
        (544, 1536, 384),
    ] {
        let (x, w, b) = (data(m * k, 1), data(n * k, 2), data(n, 3));
        let ours = PackedLinear::new(&w, Some(&b), n, k);
        let lin = candle_nn::Linear::new(
            Tensor::from_vec(w, (n, k), &dev).expect("weight"),
            Some(Tensor::from_vec(b, n, &dev).expect("bias")),
        );
        let xt = Tensor::from_vec(x.clone(), (m, k), &dev).expect("input");
        let reps = if m > 100 { 20 } else { 200 };
        let a = time(reps, || {
            std::hint::black_box(ours.forward(&x, m));
        });
        let c = time(reps, || {
            std::hint::black_box(lin.forward(&xt).expect("candle linear"));
        });
        println!(
            "| linear | {m}x{k} · {k}x{n} | {a:.1} | {c:.1} | {:.2}x |",
            c / a
        );
    }
    let (rows, h) = (544, 384);
    let (x, g, b) = (data(rows * h, 4), data(h, 5), data(h, 6));
    let ln = candle_nn::LayerNorm::new(
        Tensor::new(g.as_slice(), &dev).expect("g"),
        Tensor::new(b.as_slice(), &dev).expect("b"),
        1e-12,
    );
    let xt = Tensor::from_vec(x.clone(), (rows, h), &dev).expect("x");
    let a = time(50, || {
        let mut y = x.clone();
        kernels::add_layer_norm(&mut y, None, &g, &b, 1e-12);
        std::hint::black_box(y);
    });
    let c = time(50, || {
        std::hint::black_box(ln.forward(&xt).expect("ln"));
    });
    println!(
        "| layer norm | {rows}x{h} | {a:.1} | {c:.1} | {:.2}x |",
        c / a
    );
    let x = data(544 * 1536, 7);
    let xt = Tensor::from_vec(x.clone(), x.len(), &dev).expect("x");
    let a = time(50, || {
        let mut y = x.clone();
        kernels::gelu_erf(&mut y);
        std::hint::black_box(y);
    });
    let c = time(50, || {
        std::hint::black_box(xt.gelu_erf().expect("gelu"));
    });
    println!(
        "| GELU (erf) | 544x1536 | {a:.1} | {c:.1} | {:.2}x |",
        c / a
    );
    let (s, heads) = (17, 12);
    let qkv = data(s * 3 * h, 8);
    let mask = vec![1u32; s];
    let a = time(200, || {
        std::hint::black_box(kernels::attention(&qkv, s, h, heads, &mask));
    });
    println!("| attention | 1 sequence, {s} tokens, {heads} heads | {a:.1} | | |");

    // decoding shapes (Qwen2-0.5B's MLP: 896 -> 2x4864): weights as f32 and as exact bf16
    println!();
    println!("| linear, decoding | shape | f32 weights (µs) | bf16 weights (µs) | bf16 speed-up |");
    println!("| --- | --- | ---: | ---: | ---: |");
    for &(m, k, n) in &[
        (1, 896, 9728),
        (4, 896, 9728),
        (17, 896, 9728),
        (1, 4864, 896),
        // the lm_head of a 150k vocabulary: weights far larger than the caches
        (1, 896, 151_936),
        (4, 896, 151_936),
    ] {
        let w = data(n * k, 11);
        let w16: Vec<f32> = w
            .iter()
            .map(|v| f32::from_bits(v.to_bits() & 0xFFFF_0000))
            .collect();
        let x = data(m * k, 12);
        let (a32, a16) = (
            PackedLinear::new(&w, None, n, k),
            PackedLinear::new(&w16, None, n, k),
        );
        assert!(a16.is_bf16() && !a32.is_bf16());
        let reps = if n > 100_000 { 10 } else { 100 };
        let t32 = time(reps, || {
            std::hint::black_box(a32.forward(&x, m));
        });
        let t16 = time(reps, || {
            std::hint::black_box(a16.forward(&x, m));
        });
        println!(
            "| linear | {m}x{k} · {k}x{n} | {t32:.1} | {t16:.1} | {:.2}x |",
            t32 / t16
        );
    }
}
