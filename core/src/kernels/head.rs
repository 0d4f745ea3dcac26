//! A language model's output layer, with an exact shortcut for greedy decoding.
//!
//! A decoding step of a small float32 model is bound by memory bandwidth, and the output layer
//! is a large share of the bytes it streams (t5-small: the 32k × 512 head is 66 of 153 MB). A
//! greedy step only needs the largest logit. So the head keeps a bfloat16 copy of its weights
//! (the screen, half the bytes) and, for a row that only needs the argmax, computes approximate
//! logits `a_j` with it and a rigorous bound `B_j` on how far each can be from the float32 logit
//! the full product would compute (`|x|₂ · |w_j − bf16(w_j)|₂` by Cauchy–Schwarz, plus the
//! rounding of both sums and of the bias). Every token whose `a_j + B_j` falls below
//! `max_i (a_i − B_i)` is provably not the argmax; the float32 logits of the rest (usually one
//! or two 16-column panels) are computed exactly as the full product computes them, the others
//! are −∞. The argmax, and so the greedy output, is the same bit for bit; the step reads the
//! screen (33 MB for t5-small) and a few panels instead of the whole head.

use super::{PackedLinear, Panels, Rows, NR};

/// Tokens the caller bans before taking the argmax (see [`LmHead::logits`]).
pub type Banned<'a> = &'a [u32];

/// The bfloat16 copy of a float32 head and each output's error bound per unit of `|x|₂`.
#[derive(Debug)]
struct Screen {
    linear: PackedLinear,
    /// `|w_j − ŵ_j|₂ + γ_k (|w_j|₂ + |ŵ_j|₂)`, rounded up.
    err: Vec<f32>,
}

/// The output layer of a language model (see the module's documentation).
#[derive(Debug)]
pub struct LmHead {
    linear: PackedLinear,
    screen: Option<Screen>,
}

/// Heads narrower than this are computed in full (the screen saves little).
const SCREEN_MIN_OUTPUTS: usize = 512;

impl LmHead {
    /// The head `linear`; a float32 head of a vocabulary-sized output gets a screen.
    pub fn new(linear: PackedLinear) -> Self {
        let screen = match &linear.panels {
            Panels::F32(panels) if linear.n >= SCREEN_MIN_OUTPUTS => {
                Some(screen_of(&linear, panels))
            }
            _ => None,
        };
        Self { linear, screen }
    }

    /// The full layer.
    pub fn linear(&self) -> &PackedLinear {
        &self.linear
    }

    /// Whether greedy rows take the shortcut.
    pub fn screens(&self) -> bool {
        self.screen.is_some()
    }

    /// The logits of the `m` rows of `x` (`[m, k]`), one vector of `n` per row. Row `r` is in
    /// full when `argmax_only[r]` is `None`; with `Some(banned)` the caller only takes its
    /// argmax once `banned` are −∞, and the row may hold the exact logits of just the tokens
    /// that can be that argmax (−∞ elsewhere). The argmax is the same either way.
    pub fn logits(&self, x: &[f32], m: usize, argmax_only: &[Option<Banned<'_>>]) -> Vec<Vec<f32>> {
        let n = self.linear.n;
        let k = self.linear.k;
        let screened: Vec<usize> = match &self.screen {
            Some(_) => (0..m)
                .filter(|&r| argmax_only.get(r).is_some_and(Option::is_some))
                .collect(),
            None => Vec::new(),
        };
        let (Some(screen), false) = (&self.screen, screened.is_empty()) else {
            return split(self.linear.forward(x, m), n);
        };
        // the rows `rows` of `x`, stacked
        let stack = |rows: &[usize]| -> Vec<f32> {
            rows.iter()
                .flat_map(|&r| x[r * k..(r + 1) * k].iter().copied())
                .collect()
        };
        // rows that need their full logits get them from one pass over the full weights
        let full_rows: Vec<usize> = (0..m).filter(|r| !screened.contains(r)).collect();
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); m];
        if !full_rows.is_empty() {
            let full = self.linear.forward(&stack(&full_rows), full_rows.len());
            for (&r, row) in full_rows.iter().zip(split(full, n)) {
                out[r] = row;
            }
        }
        let approx = screen.linear.forward(&stack(&screened), screened.len());
        for (i, &r) in screened.iter().enumerate() {
            let xr = &x[r * k..(r + 1) * k];
            let banned = argmax_only.get(r).copied().flatten().unwrap_or(&[]);
            out[r] = self
                .exact_candidates(xr, &approx[i * n..(i + 1) * n], &screen.err, banned)
                .unwrap_or_else(|| self.linear.forward(xr, 1));
        }
        out
    }

    /// The row `x` with −∞ except the exact logits of every panel holding a token that can be
    /// the argmax outside `banned`; `None` when the screen cannot decide (values that are not
    /// finite, or candidates in too many panels), and the row is computed in full instead.
    fn exact_candidates(
        &self,
        x: &[f32],
        approx: &[f32],
        err: &[f32],
        banned: &[u32],
    ) -> Option<Vec<f32>> {
        let n = self.linear.n;
        let norm = x
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt();
        if !norm.is_finite() || !approx.iter().all(|a| a.is_finite()) {
            return None;
        }
        // banned tokens leave the race
        let mut approx = approx.to_vec();
        for &t in banned {
            if let Some(a) = approx.get_mut(t as usize) {
                *a = f32::NEG_INFINITY;
            }
        }
        // The bound of output j on |computed exact logit − computed approximate logit|:
        // |x|₂·err_j (1% more for the float32 arithmetic of the bound itself), plus the
        // rounding of the bias addition to both sums and of the comparisons below (a few u
        // of |a_j| + B_j each; 8u is taken). err_j holds γ_k·|w_j|₂, which alone is k·u times
        // the largest |a_j| could be, so these terms are far inside the margin anyway.
        let norm = (norm * 1.01) as f32;
        let u4 = 4.0 * f32::EPSILON;
        let bound = |j: usize, a: f32| {
            let b = norm * err[j];
            b + u4 * (a.abs() + b) + f32::MIN_POSITIVE
        };
        // one pass: the floor max(a_j − B_j) rises as it goes, and a token whose a_j + B_j is
        // below the floor at any point is below the final floor
        let mut floor = f32::NEG_INFINITY;
        let mut candidates: Vec<usize> = Vec::new();
        for (j, &a) in approx.iter().enumerate() {
            if a == f32::NEG_INFINITY {
                continue;
            }
            let b = bound(j, a);
            if a - b > floor {
                floor = a - b;
                candidates.retain(|&c| approx[c] + bound(c, approx[c]) >= floor);
            }
            if a + b >= floor {
                candidates.push(j);
            }
        }
        let mut row = vec![f32::NEG_INFINITY; n];
        // (no candidate: every token is banned, and the caller's row is all −∞ whatever the
        // logits)
        let mut panels: Vec<usize> = candidates.iter().map(|j| j / NR).collect();
        panels.dedup();
        if panels.len() * 8 > n.div_ceil(NR) {
            return None;
        }
        let mut dest = Rows::of(&mut row, n);
        for p in panels {
            // the same kernel call, on the same panel, as the full product: the same values
            self.linear.panels_into(x, 1, p..p + 1, &mut dest, None);
        }
        Some(row)
    }
}

fn split(flat: Vec<f32>, n: usize) -> Vec<Vec<f32>> {
    flat.chunks_exact(n.max(1)).map(<[f32]>::to_vec).collect()
}

/// The bfloat16 screen of a float32 head (panels in the same layout) and its error bounds.
fn screen_of(linear: &PackedLinear, panels: &[f32]) -> Screen {
    let (n, k) = (linear.n, linear.k);
    let rounded: Vec<u16> = panels.iter().map(|&w| bf16_round(w)).collect();
    // per output: Σ (w − ŵ)², Σ w², Σ ŵ²
    let mut sums = vec![[0f64; 3]; n];
    for (i, (&w, &h)) in panels.iter().zip(&rounded).enumerate() {
        let j = (i / (k * NR)) * NR + i % NR;
        if let Some(s) = sums.get_mut(j) {
            let (w, h) = (f64::from(w), f64::from(f32::from_bits(u32::from(h) << 16)));
            s[0] += (w - h) * (w - h);
            s[1] += w * w;
            s[2] += h * h;
        }
    }
    // γ_k = k·u / (1 − k·u): the rounding of a k-term dot product, relative to Σ|x_i w_i|
    let u = f64::from(f32::EPSILON) / 2.0;
    let ku = k as f64 * u;
    let gamma = ku / (1.0 - ku).max(f64::MIN_POSITIVE);
    let err = sums
        .iter()
        .map(|s| {
            let e = s[0].sqrt() + gamma * (s[1].sqrt() + s[2].sqrt());
            // rounded up to f32 (and not finite when the weights are not)
            (e * (1.0 + 1e-6)) as f32
        })
        .collect();
    Screen {
        linear: PackedLinear {
            k,
            n,
            panels: Panels::Bf16(rounded),
            bias: linear.bias.clone(),
        },
        err,
    }
}

/// `w` rounded to the nearest bfloat16 (ties to even), as bit pattern; NaN stays NaN.
fn bf16_round(w: f32) -> u16 {
    if w.is_nan() {
        return 0x7FC0;
    }
    let b = w.to_bits();
    let rounded = b.wrapping_add(0x7FFF + ((b >> 16) & 1));
    (rounded >> 16) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::tests::random;

    /// Greedy search's own argmax (the first of equal maxima).
    fn argmax(x: &[f32]) -> usize {
        crate::kernels::argmax(x) as usize
    }

    fn masked(mut row: Vec<f32>, banned: &[u32]) -> Vec<f32> {
        for &t in banned {
            row[t as usize] = f32::NEG_INFINITY;
        }
        row
    }

    #[test]
    fn bf16_rounding_is_to_nearest_even() {
        let of = |bits: u32| bf16_round(f32::from_bits(bits));
        assert_eq!(of(0x3F80_0000), 0x3F80);
        assert_eq!(of(0x3F80_7FFF), 0x3F80);
        assert_eq!(of(0x3F80_8000), 0x3F80, "a tie rounds to the even pattern");
        assert_eq!(of(0x3F81_8000), 0x3F82, "a tie rounds to the even pattern");
        assert_eq!(of(0x3F80_8001), 0x3F81);
        assert_eq!(of(0xBF80_C000), 0xBF81);
        assert!(f32::from_bits(u32::from(of(f32::NAN.to_bits())) << 16).is_nan());
    }

    #[test]
    fn a_screened_row_has_the_argmax_of_the_full_row_and_its_exact_value() {
        let (n, k) = (5000, 96);
        let w = random(n * k, 11);
        let bias = random(n, 12);
        let head = LmHead::new(PackedLinear::new(&w, Some(&bias), n, k));
        assert!(head.screens());
        let m = 6;
        let x = random(m * k, 13);
        let full = split(head.linear().forward(&x, m), n);
        let banned_sets: Vec<Vec<u32>> = vec![
            vec![],
            vec![argmax(&full[1]) as u32],
            (0..n as u32).filter(|t| t % 3 != 0).collect(),
            (0..n as u32).collect(),
            vec![7, 8, 9],
            vec![],
        ];
        // rows 0..=4 argmax only, row 5 in full
        let wants: Vec<Option<Banned<'_>>> = (0..m)
            .map(|r| (r < 5).then(|| &banned_sets[r][..]))
            .collect();
        let got = head.logits(&x, m, &wants);
        assert_eq!(got[5], full[5], "a row wanted in full is the full row");
        for r in 0..5 {
            let want = masked(full[r].clone(), &banned_sets[r]);
            let have = masked(got[r].clone(), &banned_sets[r]);
            let (a, b) = (argmax(&want), argmax(&have));
            assert_eq!(a, b, "row {r}");
            assert_eq!(want[a].to_bits(), have[b].to_bits(), "row {r}");
            if r != 3 {
                // most of the row was skipped
                let kept = have.iter().filter(|v| v.is_finite()).count();
                assert!(kept > 0 && kept < n / 8, "row {r}: {kept} exact logits");
            }
        }
    }

    #[test]
    fn near_ties_are_decided_by_the_exact_logits() {
        // two outputs whose float32 weights differ below bfloat16's precision: the screen sees
        // them equal, the exact product does not
        let (n, k) = (4096, 64);
        let mut w = random(n * k, 21);
        let x = random(k, 22);
        for (jj, delta) in [(100usize, 0.0f32), (3000, 1e-6)] {
            for kk in 0..k {
                w[jj * k + kk] = x[kk] * 4.0 + if kk == 0 { delta } else { 0.0 };
            }
        }
        let head = LmHead::new(PackedLinear::new(&w, None, n, k));
        let full = head.linear().forward(&x, 1);
        let got = head.logits(&x, 1, &[Some(&[])]);
        assert_eq!(argmax(&got[0]), argmax(&full));
        let kept = got[0].iter().filter(|v| v.is_finite()).count();
        assert!(kept < n / 8, "the screen decided ({kept} exact logits)");
        assert_eq!(got[0][100].to_bits(), full[100].to_bits());
        assert_eq!(got[0][3000].to_bits(), full[3000].to_bits());
    }

    #[test]
    fn bf16_heads_and_small_heads_have_no_screen_and_non_finite_rows_fall_back() {
        let (n, k) = (5000, 32);
        let w: Vec<f32> = random(n * k, 31)
            .into_iter()
            .map(|v| f32::from_bits(v.to_bits() & 0xFFFF_0000))
            .collect();
        assert!(!LmHead::new(PackedLinear::new(&w, None, n, k)).screens());
        assert!(!LmHead::new(PackedLinear::new(&random(100 * k, 32), None, 100, k)).screens());
        let head = LmHead::new(PackedLinear::new(&random(n * k, 33), None, n, k));
        let mut x = random(k, 34);
        x[3] = f32::INFINITY;
        let full = head.linear().forward(&x, 1);
        let got = head.logits(&x, 1, &[Some(&[])]);
        assert_eq!(got[0].len(), n);
        assert!(got[0]
            .iter()
            .zip(&full)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}
