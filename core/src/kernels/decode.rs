//! Kernels of the generative models: RMS norm, gated activations, rotary embeddings and attention
//! of new tokens over a key/value cache. Like the encoder kernels, plain Rust compiled for
//! AVX2+FMA when the CPU has them, each unit-tested against candle's ops.

use super::{dot8, has_avx2_fma, softmax_rows};

dispatched! {
/// `x ← x / sqrt(mean(x²) + eps) · w` over rows of width `weight.len()`, as transformers'
/// `LlamaRMSNorm` / `T5LayerNorm`; with `add_one` the scale is `1 + w` (`GemmaRMSNorm`).
pub fn rms_norm(x: &mut [f32], weight: &[f32], eps: f32, add_one: bool) -> () {
    let h = weight.len();
    for row in x.chunks_exact_mut(h) {
        let ms = dot8(row, row) / h as f32;
        let inv = 1.0 / (ms + eps).sqrt();
        if add_one {
            for (v, &w) in row.iter_mut().zip(weight) {
                *v = *v * inv * (1.0 + w);
            }
        } else {
            for (v, &w) in row.iter_mut().zip(weight) {
                *v = w * (*v * inv);
            }
        }
    }
}
}

/// The activation of a feed-forward block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// `x·σ(x)` (`silu`, `swish`).
    Silu,
    /// Exact GELU (`gelu`).
    GeluErf,
    /// Tanh-approximated GELU (`gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`).
    GeluTanh,
    /// `relu`.
    Relu,
}

impl Act {
    /// Parses a transformers `hidden_act` / `activation_function` name.
    pub fn parse(name: &str) -> Option<Act> {
        Some(match name {
            "silu" | "swish" => Act::Silu,
            "gelu" => Act::GeluErf,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" | "gelu_python_tanh" => Act::GeluTanh,
            "relu" => Act::Relu,
            _ => return None,
        })
    }

    /// Applies the activation in place.
    pub fn apply(self, x: &mut [f32]) {
        match self {
            Act::Silu => silu(x),
            Act::GeluErf => super::gelu_erf(x),
            Act::GeluTanh => super::gelu_tanh(x),
            Act::Relu => super::relu(x),
        }
    }
}

dispatched! {
/// `x·σ(x)` in place.
pub fn silu(x: &mut [f32]) -> () {
    for v in x {
        *v /= 1.0 + (-*v).exp();
    }
}
}

/// Gated feed-forward input: rows of `[gate | up]` (width `2i`) become `act(gate)·up` (width `i`).
pub fn gated(x: &[f32], i: usize, act: Act) -> Vec<f32> {
    let rows = x.len() / (2 * i);
    let mut out = Vec::with_capacity(rows * i);
    for row in x.chunks_exact(2 * i) {
        out.extend_from_slice(&row[..i]);
    }
    act.apply(&mut out);
    for (o, row) in out.chunks_exact_mut(i).zip(x.chunks_exact(2 * i)) {
        for (a, &u) in o.iter_mut().zip(&row[i..]) {
            *a *= u;
        }
    }
    out
}

/// Rotary position embeddings (`rotate_half` layout, as Llama in transformers).
#[derive(Debug, Clone)]
pub struct Rope {
    /// Inverse frequencies, one per pair of dimensions (`dim / 2`).
    inv_freq: Vec<f32>,
    /// Dimensions rotated at the start of each head (all of them unless partial).
    dim: usize,
    /// Scale of cos and sin (`attention_factor` of some scalings; 1 otherwise).
    scale: f32,
}

impl Rope {
    /// `inv_freq[i] = 1 / base^(2i/dim)`, computed in f32 as torch does.
    pub fn new(dim: usize, base: f32) -> Self {
        let inv_freq = (0..dim / 2)
            .map(|i| 1.0 / base.powf((2 * i) as f32 / dim as f32))
            .collect();
        Self {
            inv_freq,
            dim,
            scale: 1.0,
        }
    }

    /// Rope with given inverse frequencies (scaled variants).
    pub fn with_inv_freq(inv_freq: Vec<f32>, scale: f32) -> Self {
        let dim = inv_freq.len() * 2;
        Self {
            inv_freq,
            dim,
            scale,
        }
    }

    /// The inverse frequencies.
    pub fn inv_freq(&self) -> &[f32] {
        &self.inv_freq
    }

    /// Rotates every head of `x` (`[heads · hd]`, one token) for position `pos`.
    pub fn apply(&self, x: &mut [f32], hd: usize, pos: usize) {
        let half = self.dim / 2;
        let p = pos as f32;
        let (cos, sin): (Vec<f32>, Vec<f32>) = self
            .inv_freq
            .iter()
            .map(|&f| {
                let a = p * f;
                (a.cos() * self.scale, a.sin() * self.scale)
            })
            .unzip();
        for head in x.chunks_exact_mut(hd) {
            for i in 0..half {
                let (a, b) = (head[i], head[i + half]);
                head[i] = a * cos[i] - b * sin[i];
                head[i + half] = b * cos[i] + a * sin[i];
            }
        }
    }
}

/// Shapes of one attention call.
#[derive(Debug, Clone, Copy)]
pub struct AttnShape {
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention when fewer than `heads`).
    pub kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Factor applied to the scores.
    pub scale: f32,
}

/// How queries see keys.
#[derive(Debug, Clone, Copy)]
pub enum Visibility {
    /// Every key (encoders, cross-attention).
    All,
    /// Keys up to the query's own position; `first` is the position of the first query, and
    /// `window` limits how far back a query looks (Mistral's sliding window).
    Causal {
        /// Absolute position of query 0 (the keys are positions `0..`).
        first: usize,
        /// Sliding window, if any.
        window: Option<usize>,
    },
}

dispatched! {
/// Attention of `t` queries over `l` cached keys/values (`(t, l)`).
///
/// `q`: `[t, heads·hd]`; `k`, `v`: `[l, kv_heads·hd]`; `bias(head, i, j)`, when given, is added to
/// the scores (T5's relative position bias); returns the context `[t, heads·hd]`.
pub fn cached_attention(q: &[f32], k: &[f32], v: &[f32], dims: (usize, usize), shape: AttnShape, vis: Visibility, bias: Option<&[f32]>) -> Vec<f32> {
    let (t, l) = dims;
    let AttnShape { heads, kv_heads, head_dim: hd, scale } = shape;
    let (qw, kw) = (heads * hd, kv_heads * hd);
    let group = heads / kv_heads.max(1);
    let mut ctx = vec![0f32; t * qw];
    let mut scores = vec![0f32; l];
    for head in 0..heads {
        let kvh = head / group.max(1);
        for i in 0..t {
            let (lo, hi) = match vis {
                Visibility::All => (0, l),
                Visibility::Causal { first, window } => {
                    let pos = first + i;
                    let hi = (pos + 1).min(l);
                    let lo = window.map_or(0, |w| (pos + 1).saturating_sub(w));
                    (lo, hi)
                }
            };
            let qrow = &q[i * qw + head * hd..i * qw + head * hd + hd];
            let row = &mut scores[..hi - lo];
            for (j, s) in (lo..hi).zip(row.iter_mut()) {
                let krow = &k[j * kw + kvh * hd..j * kw + kvh * hd + hd];
                *s = dot8(qrow, krow) * scale;
                if let Some(b) = bias {
                    *s += b[(head * t + i) * l + j];
                }
            }
            softmax_rows(row, hi - lo);
            let out = &mut ctx[i * qw + head * hd..i * qw + head * hd + hd];
            for (j, &p) in (lo..hi).zip(row.iter()) {
                let vrow = &v[j * kw + kvh * hd..j * kw + kvh * hd + hd];
                for (o, &x) in out.iter_mut().zip(vrow) {
                    *o += p * x;
                }
            }
        }
    }
    ctx
}
}

/// `f(i)` for each of `n` sequences, in parallel when there are several (a step's attention
/// is per sequence; run one after another, the other threads would wait).
pub fn per_sequence<F>(n: usize, f: F) -> Vec<Vec<f32>>
where
    F: Fn(usize) -> Vec<f32> + Sync + Send,
{
    super::team::map(n, f)
}

/// The per-sequence parts, stacked (`len` values in all).
pub fn gather(parts: Vec<Vec<f32>>, len: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    for p in parts {
        out.extend(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::tests::{max_diff, random};
    use candle_core::{Device, Tensor, D};

    fn vec_of(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn rms_norm_matches_candle() {
        let (rows, h) = (5, 96);
        let x = random(rows * h, 1);
        let w = random(h, 2);
        let dev = Device::Cpu;
        let xt = Tensor::from_vec(x.clone(), (rows, h), &dev).unwrap();
        let wt = Tensor::from_vec(w.clone(), h, &dev).unwrap();
        let theirs = vec_of(&candle_nn::ops::rms_norm(&xt, &wt, 1e-6).unwrap());
        let mut ours = x.clone();
        rms_norm(&mut ours, &w, 1e-6, false);
        assert!(
            max_diff(&ours, &theirs) < 1e-5,
            "{}",
            max_diff(&ours, &theirs)
        );
        // Gemma: (1 + w)
        let w1: Vec<f32> = w.iter().map(|v| v + 1.0).collect();
        let theirs = vec_of(
            &candle_nn::ops::rms_norm(&xt, &Tensor::from_vec(w1, h, &dev).unwrap(), 1e-6).unwrap(),
        );
        let mut ours = x;
        rms_norm(&mut ours, &w, 1e-6, true);
        assert!(max_diff(&ours, &theirs) < 1e-5);
    }

    #[test]
    fn silu_and_gated_match_candle() {
        let x = random(2 * 2 * 40, 3);
        let dev = Device::Cpu;
        let xt = Tensor::from_vec(x.clone(), (2, 80), &dev).unwrap();
        let gate = xt.narrow(1, 0, 40).unwrap();
        let up = xt.narrow(1, 40, 40).unwrap();
        let theirs = vec_of(&(candle_nn::ops::silu(&gate).unwrap() * up).unwrap());
        assert!(max_diff(&gated(&x, 40, Act::Silu), &theirs) < 1e-6);
    }

    #[test]
    fn rope_matches_candle() {
        let (heads, hd, pos) = (3, 16, 7);
        let x = random(heads * hd, 4);
        let rope = Rope::new(hd, 10_000.0);
        let mut ours = x.clone();
        rope.apply(&mut ours, hd, pos);
        let dev = Device::Cpu;
        let angles: Vec<f32> = rope.inv_freq().iter().map(|f| pos as f32 * f).collect();
        let cos = Tensor::from_vec(
            angles.iter().map(|a| a.cos()).collect::<Vec<_>>(),
            (1, hd / 2),
            &dev,
        )
        .unwrap();
        let sin = Tensor::from_vec(
            angles.iter().map(|a| a.sin()).collect::<Vec<_>>(),
            (1, hd / 2),
            &dev,
        )
        .unwrap();
        let xt = Tensor::from_vec(x, (1, heads, 1, hd), &dev).unwrap();
        let theirs = vec_of(&candle_nn::rotary_emb::rope(&xt, &cos, &sin).unwrap());
        assert!(
            max_diff(&ours, &theirs) < 1e-6,
            "{}",
            max_diff(&ours, &theirs)
        );
    }

    /// Reference attention with candle: grouped heads repeated, causal mask, softmax.
    fn reference(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        t: usize,
        l: usize,
        s: AttnShape,
        first: usize,
    ) -> Vec<f32> {
        let dev = Device::Cpu;
        let hd = s.head_dim;
        let q = Tensor::from_vec(q.to_vec(), (t, s.heads, hd), &dev)
            .unwrap()
            .transpose(0, 1)
            .unwrap();
        let rep = |x: &[f32]| {
            let x = Tensor::from_vec(x.to_vec(), (l, s.kv_heads, 1, hd), &dev).unwrap();
            x.repeat((1, 1, s.heads / s.kv_heads, 1))
                .unwrap()
                .reshape((l, s.heads, hd))
                .unwrap()
                .transpose(0, 1)
                .unwrap()
                .contiguous()
                .unwrap()
        };
        let (k, v) = (rep(k), rep(v));
        let scores = (q.contiguous().unwrap().matmul(&k.t().unwrap()).unwrap()
            * f64::from(s.scale))
        .unwrap();
        let mask: Vec<f32> = (0..t)
            .flat_map(|i| {
                (0..l).map(move |j| {
                    if j <= first + i {
                        0.0
                    } else {
                        f32::NEG_INFINITY
                    }
                })
            })
            .collect();
        let mask = Tensor::from_vec(mask, (1, t, l), &dev).unwrap();
        let p = candle_nn::ops::softmax(&scores.broadcast_add(&mask).unwrap(), D::Minus1).unwrap();
        vec_of(
            &p.matmul(&v)
                .unwrap()
                .transpose(0, 1)
                .unwrap()
                .contiguous()
                .unwrap(),
        )
    }

    #[test]
    fn cached_attention_matches_candle() {
        let shape = AttnShape {
            heads: 4,
            kv_heads: 2,
            head_dim: 8,
            scale: 8f32.powf(-0.5),
        };
        for &(t, l) in &[(1, 1), (1, 9), (5, 5), (3, 11)] {
            let q = random(t * 32, 5);
            let k = random(l * 16, 6);
            let v = random(l * 16, 7);
            let first = l - t;
            let ours = cached_attention(
                &q,
                &k,
                &v,
                (t, l),
                shape,
                Visibility::Causal {
                    first,
                    window: None,
                },
                None,
            );
            let theirs = reference(&q, &k, &v, t, l, shape, first);
            assert!(
                max_diff(&ours, &theirs) < 1e-5,
                "t={t} l={l}: {}",
                max_diff(&ours, &theirs)
            );
        }
    }

    #[test]
    fn sliding_window_hides_old_keys() {
        let shape = AttnShape {
            heads: 1,
            kv_heads: 1,
            head_dim: 2,
            scale: 1.0,
        };
        // one query at position 3 over 4 keys; values are the key index
        let k = vec![0.0; 8];
        let v: Vec<f32> = (0..4).flat_map(|j| [j as f32, 0.0]).collect();
        let all = cached_attention(
            &[1.0, 1.0],
            &k,
            &v,
            (1, 4),
            shape,
            Visibility::Causal {
                first: 3,
                window: None,
            },
            None,
        );
        let win = cached_attention(
            &[1.0, 1.0],
            &k,
            &v,
            (1, 4),
            shape,
            Visibility::Causal {
                first: 3,
                window: Some(2),
            },
            None,
        );
        assert!((all[0] - 1.5).abs() < 1e-6, "{all:?}");
        assert!((win[0] - 2.5).abs() < 1e-6, "{win:?}");
    }
}
