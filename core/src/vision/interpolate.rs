//! PyTorch's `nn.functional.interpolate` on float maps, as transformers' vision models call it:
//! `mode="bilinear"` and `mode="bicubic"`, `align_corners=False`, to an explicit output size,
//! without antialiasing. Both are separable, so each is given as the taps of one axis (which
//! input samples an output sample reads, with what weights), from which a model builds an
//! interpolation matrix (one matmul per axis, on any device) or reads the taps directly.

/// The taps of one output sample: input indices and weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Taps {
    /// Input indices (clamped into the input).
    pub index: Vec<usize>,
    /// Their weights.
    pub weight: Vec<f32>,
}

/// torch's `area_pixel_compute_source_index` for `align_corners=False` with a size given:
/// `scale = in / out` (as float), `src = scale * (dst + 0.5) - 0.5`, clamped at 0 for linear
/// modes, not for cubic.
fn source_index(in_size: usize, out_size: usize, dst: usize, cubic: bool) -> f32 {
    let scale = in_size as f32 / out_size as f32;
    let src = scale * (dst as f32 + 0.5) - 0.5;
    if !cubic && src < 0.0 {
        0.0
    } else {
        src
    }
}

/// Bilinear taps (`mode="bilinear"`, `align_corners=False`) of every output sample along an
/// axis of `in_size` samples resized to `out_size`; empty when either size is zero.
pub fn bilinear_taps(in_size: usize, out_size: usize) -> Vec<Taps> {
    if in_size == 0 {
        return Vec::new();
    }
    (0..out_size)
        .map(|dst| {
            let src = source_index(in_size, out_size, dst, false);
            // torch's guard_index_and_lambda
            let lo = (src.floor() as usize).min(in_size - 1);
            let lambda = (src - lo as f32).clamp(0.0, 1.0);
            let hi = if lo < in_size - 1 { lo + 1 } else { lo };
            Taps {
                index: vec![lo, hi],
                weight: vec![1.0 - lambda, lambda],
            }
        })
        .collect()
}

/// The cubic convolution kernel torch uses (`A = -0.75`), weights of the four samples around
/// a fractional position `t`.
fn cubic_weights(t: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let near = |x: f32| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let far = |x: f32| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

/// Bicubic taps (`mode="bicubic"`, `align_corners=False`): four samples each, indices clamped
/// at the borders as torch reads them; empty when either size is zero.
pub fn bicubic_taps(in_size: usize, out_size: usize) -> Vec<Taps> {
    if in_size == 0 {
        return Vec::new();
    }
    let last = in_size as i64 - 1;
    (0..out_size)
        .map(|dst| {
            let src = source_index(in_size, out_size, dst, true);
            let base = src.floor();
            let t = src - base;
            let base = base as i64;
            Taps {
                index: (-1..=2)
                    .map(|o| (base + o).clamp(0, last) as usize)
                    .collect(),
                weight: cubic_weights(t).to_vec(),
            }
        })
        .collect()
}

/// The `out × in` row-major matrix of `taps` (weights of repeated indices summed), so that
/// `matrix · column` interpolates a column.
pub fn matrix(taps: &[Taps], in_size: usize) -> Vec<f32> {
    let mut m = vec![0f32; taps.len() * in_size];
    for (row, t) in taps.iter().enumerate() {
        for (&i, &w) in t.index.iter().zip(&t.weight) {
            m[row * in_size + i] += w;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(taps: &[Taps], x: &[f32]) -> Vec<f32> {
        taps.iter()
            .map(|t| t.index.iter().zip(&t.weight).map(|(&i, &w)| x[i] * w).sum())
            .collect()
    }

    #[test]
    fn bilinear_matches_torch() {
        // torch.nn.functional.interpolate(torch.tensor([[[0., 1., 2., 3.]]]), size=8,
        //     mode="linear", align_corners=False)
        let x = [0.0, 1.0, 2.0, 3.0];
        let got = apply(&bilinear_taps(4, 8), &x);
        let want = [0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0];
        assert_eq!(got, want);
        // downscale 4 -> 2 reads the middle of each pair
        assert_eq!(apply(&bilinear_taps(4, 2), &x), vec![0.5, 2.5]);
        // same size is the identity
        assert_eq!(apply(&bilinear_taps(4, 4), &x), x.to_vec());
        assert!(bilinear_taps(0, 3).is_empty());
    }

    #[test]
    fn bicubic_matches_torch() {
        // torch.nn.functional.interpolate(torch.arange(4.).view(1, 1, 1, 4) ** 2, size=(1, 6),
        //     mode="bicubic", align_corners=False)
        let x = [0.0, 1.0, 4.0, 9.0];
        let got = apply(&bicubic_taps(4, 6), &x);
        let want = [
            -0.086_805_58,
            0.218_75,
            1.430_555,
            3.152_777_7,
            6.781_25,
            9.434_028,
        ];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "{got:?} vs {want:?}");
        }
        // the weights of a tap sum to one, and same size is the identity
        for t in bicubic_taps(5, 13) {
            assert!((t.weight.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        let same = apply(&bicubic_taps(4, 4), &x);
        for (g, w) in same.iter().zip(x) {
            assert!((g - w).abs() < 1e-6);
        }
    }

    #[test]
    fn the_matrix_sums_repeated_indices() {
        let taps = bicubic_taps(2, 3);
        let m = matrix(&taps, 2);
        for row in m.chunks(2) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
    }
}
