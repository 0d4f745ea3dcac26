//! CPU kernels for encoder inference, used instead of candle's generic ops on the CPU hot path.
//!
//! Why: candle's CPU matmul re-packs the weight matrix on every call and hands even tiny
//! matrices to its thread pool; for a single sentence (M ≈ 10 rows) that is most of the time.
//! Here weights are packed once at load into 16-column panels ([`PackedLinear`]) and a
//! register-blocked micro-kernel streams them (12×16 with AVX-512, 6×16 with AVX2); layer norm,
//! GELU and softmax are fused loops; work is split across threads only when it is big enough to
//! pay for the hand-off.
//!
//! The micro-kernel is plain Rust (`f32::mul_add` on fixed-size arrays) compiled three times: for
//! AVX-512 and for AVX2+FMA, chosen at run time when the CPU has them, and for the baseline
//! target. No `-C target-cpu=native` is needed. Each kernel is unit-tested against candle's own
//! ops.

/// Panel width: the number of output columns one micro-kernel call produces.
pub const NR: usize = 16;
/// Rows per micro-kernel call with AVX2 (16 vector registers: 6 rows × 2 vectors of 8
/// accumulators) and the portable fallback.
pub const MR: usize = 6;
/// Rows per micro-kernel call with AVX-512 (32 registers: 12 rows × one 16-float accumulator),
/// which covers a whole single sentence of ~12 tokens in one pass over each weight panel.
pub const MR_WIDE: usize = 12;
/// Below this many multiply-adds a matmul runs on the calling thread.
const PARALLEL_MIN_MACS: usize = 1 << 17;

/// A linear layer `y = x·Wᵀ + b` with `W` (`[n, k]`, PyTorch layout) packed for the micro-kernel:
/// panel `p` holds columns `16p..16p+16` as `k` rows of 16 contiguous floats.
///
/// Weights that are all exactly bfloat16 values (a bf16 checkpoint read as f32) are kept as
/// bf16 and widened in the micro-kernel: the same products bit for bit, half the memory and half
/// the bandwidth, which is what bounds a decoding step.
#[derive(Debug, Clone)]
pub struct PackedLinear {
    k: usize,
    n: usize,
    panels: Panels,
    bias: Vec<f32>,
}

/// Packed weights: f32, or bf16 bit patterns (the high half of the f32).
#[derive(Debug, Clone)]
enum Panels {
    F32(Vec<f32>),
    Bf16(Vec<u16>),
}

/// An element of a packed panel.
trait Weight: Copy + Default + Send + Sync {
    fn widen(self) -> f32;
}

impl Weight for f32 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
}

impl Weight for u16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        f32::from_bits(u32::from(self) << 16)
    }
}

fn pack<W: Weight>(weight: &[f32], n: usize, k: usize, conv: impl Fn(f32) -> W) -> Vec<W> {
    let np = n.div_ceil(NR);
    let mut panels = vec![W::default(); np * k * NR];
    for (j, row) in weight.chunks_exact(k).take(n).enumerate() {
        let (p, c) = (j / NR, j % NR);
        let panel = &mut panels[p * k * NR..(p + 1) * k * NR];
        for (kk, &w) in row.iter().enumerate() {
            panel[kk * NR + c] = conv(w);
        }
    }
    panels
}

impl PackedLinear {
    /// Packs a row-major `[n, k]` weight and its bias (zeros when `None`).
    pub fn new(weight: &[f32], bias: Option<&[f32]>, n: usize, k: usize) -> Self {
        let exact_bf16 = weight.iter().all(|w| w.to_bits() & 0xFFFF == 0);
        let panels = if exact_bf16 && !weight.is_empty() {
            Panels::Bf16(pack(weight, n, k, |w| (w.to_bits() >> 16) as u16))
        } else {
            Panels::F32(pack(weight, n, k, |w| w))
        };
        let bias = bias.map_or_else(|| vec![0.0; n], <[f32]>::to_vec);
        Self { k, n, panels, bias }
    }

    /// Whether the weights are held as bf16.
    pub fn is_bf16(&self) -> bool {
        matches!(self.panels, Panels::Bf16(_))
    }

    /// Row `j` of the weight (`[k]`), widened to f32.
    pub fn weight_row(&self, j: usize) -> Vec<f32> {
        let (p, c, k) = (j / NR, j % NR, self.k);
        let get = |i: usize| match &self.panels {
            Panels::F32(v) => v[i],
            Panels::Bf16(v) => v[i].widen(),
        };
        (0..k).map(|kk| get(p * k * NR + kk * NR + c)).collect()
    }

    /// Input width.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Output width.
    pub fn n(&self) -> usize {
        self.n
    }

    /// `x`: `[m, k]` row-major; returns `[m, n]`.
    pub fn forward(&self, x: &[f32], m: usize) -> Vec<f32> {
        self.forward_then(x, m, None)
    }

    /// [`forward`](Self::forward) with the elementwise activation `act` applied to each output
    /// as it is written (by the thread that computed it, while it is in cache): the same values
    /// as applying it to the whole output afterwards, without a serial pass over it.
    pub fn forward_then(&self, x: &[f32], m: usize, act: Option<fn(&mut [f32])>) -> Vec<f32> {
        let (k, n) = (self.k, self.n);
        debug_assert_eq!(x.len(), m * k);
        let np = n.div_ceil(NR);
        let mut out = vec![0f32; m * n];
        if m == 0 {
            return out;
        }
        let threads = team::threads();
        if m * n * k < PARALLEL_MIN_MACS || threads < 2 || np < 2 {
            self.panels_into(x, m, 0..np, &mut Rows::of(&mut out, n), act);
            return out;
        }
        // split the panels (columns) so each thread streams a share of the weights once, each
        // writing its columns of `out` in place
        let per = np.div_ceil(threads);
        let dest = Rows::of(&mut out, n);
        team::for_each(np.div_ceil(per), |c| {
            let mut dest = dest;
            let p0 = c * per;
            self.panels_into(x, m, p0..(p0 + per).min(np), &mut dest, act);
        });
        out
    }

    /// Computes panels `range` into their columns of `out`, then `act` on them.
    fn panels_into(
        &self,
        x: &[f32],
        m: usize,
        range: std::ops::Range<usize>,
        out: &mut Rows,
        act: Option<fn(&mut [f32])>,
    ) {
        match &self.panels {
            Panels::F32(panels) => self.panels_of(panels, x, m, range, out, act),
            Panels::Bf16(panels) => self.panels_of(panels, x, m, range, out, act),
        }
    }

    fn panels_of<W: Weight>(
        &self,
        panels: &[W],
        x: &[f32],
        m: usize,
        range: std::ops::Range<usize>,
        out: &mut Rows,
        act: Option<fn(&mut [f32])>,
    ) {
        panel_rows(panels, self.k, self.n, &self.bias, x, m, range.clone(), out);
        // the activation over this thread's columns, row by row (one call per row: a call per
        // 16-column panel costs twice as much)
        if let Some(act) = act.filter(|_| !range.is_empty()) {
            let c0 = range.start * NR;
            let cols = (range.end * NR).min(self.n) - c0;
            for r in 0..m {
                act(out.span(r, c0, cols));
            }
        }
    }
}

/// Panels `range` of a packed `[n, k]` weight times `x` (`[m, k]`), plus `bias` (`[n]`), into
/// their columns of `out`, on the calling thread.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn panel_rows<W: Weight>(
    panels: &[W],
    k: usize,
    n: usize,
    bias: &[f32],
    x: &[f32],
    m: usize,
    range: std::ops::Range<usize>,
    out: &mut Rows,
) {
    if m == 0 {
        return;
    }
    // rows in calls of at most `rows_per_call()`, as even as possible (14 rows: 7 + 7, not
    // 12 + 2, whose 2-row call would stream the panel for few products)
    let calls = m.div_ceil(rows_per_call()).max(1);
    let (base, extra) = (m / calls, m % calls);
    // with AVX-512, two panels at a time: 12 rows x 32 columns per call, 24 accumulators,
    // 2 weight loads and 12 broadcasts per 24 multiply-adds (one panel: 13 loads per 12)
    let pairs = has_avx512() && base >= MR;
    let mut p = range.start;
    while p < range.end {
        let two = pairs && p + 1 < range.end;
        let width = if two { 2 } else { 1 };
        let panel = &panels[p * k * NR..(p + width) * k * NR];
        // the next panel(s) are prefetched while these are computed (decoding streams the
        // weights from memory once per step: overlap the loads with the arithmetic)
        let next = panels
            .get((p + width) * k * NR..((p + 2 * width) * k * NR).min(panels.len()))
            .unwrap_or(&[]);
        let c0 = p * NR;
        let cols = (width * NR).min(n - c0);
        let bias = &bias[c0..c0 + cols];
        let mut r0 = 0;
        for call in 0..calls {
            let mr = base + usize::from(call < extra);
            // one row streams well on the hardware prefetcher alone; several rows compute
            // long enough per panel that the next one is worth asking for
            let ahead = if r0 == 0 && m > 1 { next } else { &[] };
            let mut acc = [[0f32; 2 * NR]; MR_WIDE];
            if two {
                micro_pair(x, r0, mr, k, panel, ahead, &mut acc);
            } else {
                let mut one = [[0f32; NR]; MR_WIDE];
                micro(x, r0, mr, k, panel, ahead, &mut one);
                for (a, o) in acc.iter_mut().zip(&one) {
                    a[..NR].copy_from_slice(o);
                }
            }
            for (r, row) in acc.iter().enumerate().take(mr) {
                let dst = out.span(r0 + r, c0, cols);
                for ((dst, &a), &b) in dst.iter_mut().zip(&row[..cols]).zip(bias) {
                    *dst = a + b;
                }
            }
            r0 += mr;
        }
        p += width;
    }
}

/// The output of a matrix product, `[rows, stride]` row-major, shared by the threads that each
/// compute a disjoint range of its columns (the weights are split by columns, so that each
/// thread streams its share once); each thread writes its spans in place.
#[derive(Clone, Copy)]
struct Rows {
    ptr: *mut f32,
    len: usize,
    stride: usize,
}

// SAFETY: `Rows` is a pointer to a buffer that outlives every use (`PackedLinear::forward`
// holds the buffer, untouched, until the threads are joined); threads write only through
// `span`, each its own columns, so no two threads touch the same element.
#[allow(unsafe_code)]
unsafe impl Send for Rows {}
// SAFETY: as for `Send`: shared between threads that write disjoint columns.
#[allow(unsafe_code)]
unsafe impl Sync for Rows {}

impl Rows {
    fn of(buf: &mut [f32], stride: usize) -> Self {
        Self {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
            stride,
        }
    }

    /// Columns `c0..c0 + cols` of row `r`. Every copy of a `Rows` must keep to its own columns
    /// (the panels a thread computes): that is what makes the spans of concurrent threads
    /// disjoint. Private to this module for that reason.
    #[inline(always)]
    fn span(&mut self, r: usize, c0: usize, cols: usize) -> &mut [f32] {
        let o = r * self.stride + c0;
        assert!(
            c0 + cols <= self.stride && o + cols <= self.len,
            "span out of range"
        );
        #[allow(unsafe_code)]
        // SAFETY: in bounds (checked just above) of a live buffer (see `Send`); the span lies in
        // the caller's own columns, which no other thread reads or writes meanwhile, and the
        // returned borrow ends before the next span of this thread is taken.
        unsafe {
            std::slice::from_raw_parts_mut(self.ptr.add(o), cols)
        }
    }
}

/// Dispatches to the widest micro-kernel the CPU supports.
fn micro<W: Weight>(
    x: &[f32],
    r0: usize,
    mr: usize,
    k: usize,
    panel: &[W],
    next: &[W],
    acc: &mut [[f32; NR]; MR_WIDE],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if mr > MR && has_avx512() {
            #[allow(unsafe_code)]
            // SAFETY: the CPU supports AVX-512F/VL, AVX2 and FMA (checked just above), the only
            // requirement of the function's `#[target_feature]`.
            unsafe {
                micro_avx512(x, r0, mr, k, panel, next, acc)
            };
            return;
        }
        if has_avx2_fma() {
            #[allow(unsafe_code)]
            // SAFETY: the CPU supports AVX2 and FMA (checked just above), which is the only
            // requirement of a `#[target_feature(enable = "avx2,fma")]` function.
            unsafe {
                micro_avx2(x, r0, mr, k, panel, next, acc)
            };
            return;
        }
    }
    micro_generic(x, r0, mr, k, panel, next, acc);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn micro_avx2<W: Weight>(
    x: &[f32],
    r0: usize,
    mr: usize,
    k: usize,
    panel: &[W],
    next: &[W],
    acc: &mut [[f32; NR]; MR_WIDE],
) {
    micro_body::<true, W>(x, r0, mr, k, panel, next, acc);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
fn micro_avx512<W: Weight>(
    x: &[f32],
    r0: usize,
    mr: usize,
    k: usize,
    panel: &[W],
    next: &[W],
    acc: &mut [[f32; NR]; MR_WIDE],
) {
    // a dispatch of its own: folding 7..=12 into `micro_body` (shared with the AVX2 and portable
    // variants) makes this kernel 2.5x slower (the accumulators no longer stay in registers)
    match mr {
        12 => tile::<12, true, W>(x, r0, k, panel, next, acc),
        11 => tile::<11, true, W>(x, r0, k, panel, next, acc),
        10 => tile::<10, true, W>(x, r0, k, panel, next, acc),
        9 => tile::<9, true, W>(x, r0, k, panel, next, acc),
        8 => tile::<8, true, W>(x, r0, k, panel, next, acc),
        7 => tile::<7, true, W>(x, r0, k, panel, next, acc),
        _ => micro_body::<true, W>(x, r0, mr, k, panel, next, acc),
    }
}

/// Two adjacent panels (`panels`: `2 · k · NR` weights) for 7 to 12 rows, on AVX-512 only (the
/// caller checks): `acc[r][..NR]` from the first panel, `acc[r][NR..]` from the second, each sum
/// in the same order as [`micro`]'s, so a column's value does not depend on its pairing.
fn micro_pair<W: Weight>(
    x: &[f32],
    r0: usize,
    mr: usize,
    k: usize,
    panels: &[W],
    next: &[W],
    acc: &mut [[f32; 2 * NR]; MR_WIDE],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx512() {
            #[allow(unsafe_code)]
            // SAFETY: the CPU supports AVX-512F/VL, AVX2 and FMA (checked just above), the only
            // requirement of the function's `#[target_feature]`.
            unsafe {
                micro_pair_avx512(x, r0, mr, k, panels, next, acc)
            };
            return;
        }
    }
    // not reached (pairs are only formed on AVX-512); the portable equivalent
    let (a, b) = panels.split_at(k * NR);
    for (half, panel) in [(0, a), (1, b)] {
        let mut one = [[0f32; NR]; MR_WIDE];
        micro(x, r0, mr, k, panel, &[], &mut one);
        for (dst, src) in acc.iter_mut().zip(&one) {
            dst[half * NR..(half + 1) * NR].copy_from_slice(src);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
fn micro_pair_avx512<W: Weight>(
    x: &[f32],
    r0: usize,
    mr: usize,
    k: usize,
    panels: &[W],
    next: &[W],
    acc: &mut [[f32; 2 * NR]; MR_WIDE],
) {
    match mr {
        12 => tile_pair::<12, W>(x, r0, k, panels, next, acc),
        11 => tile_pair::<11, W>(x, r0, k, panels, next, acc),
        10 => tile_pair::<10, W>(x, r0, k, panels, next, acc),
        9 => tile_pair::<9, W>(x, r0, k, panels, next, acc),
        8 => tile_pair::<8, W>(x, r0, k, panels, next, acc),
        7 => tile_pair::<7, W>(x, r0, k, panels, next, acc),
        _ => tile_pair::<6, W>(x, r0, k, panels, next, acc),
    }
}

/// [`tile`] over two panels at once (FMA only: AVX-512 implies it).
#[inline(always)]
fn tile_pair<const R: usize, W: Weight>(
    x: &[f32],
    r0: usize,
    k: usize,
    panels: &[W],
    next: &[W],
    out: &mut [[f32; 2 * NR]; MR_WIDE],
) {
    let rows: [&[f32]; R] = std::array::from_fn(|r| &x[(r0 + r) * k..(r0 + r + 1) * k]);
    let (a, b) = panels.split_at(k * NR);
    let mut acc = [[0f32; 2 * NR]; R];
    let every = (64 / (NR * std::mem::size_of::<W>())).max(1);
    for (kk, (wa, wb)) in a
        .chunks_exact(NR)
        .zip(b.chunks_exact(NR))
        .enumerate()
        .take(k)
    {
        if kk % every == 0 {
            prefetch(next, kk * NR);
            prefetch(next, (k + kk) * NR);
        }
        for r in 0..R {
            let xv = rows[r][kk];
            for j in 0..NR {
                acc[r][j] = xv.mul_add(wa[j].widen(), acc[r][j]);
                acc[r][NR + j] = xv.mul_add(wb[j].widen(), acc[r][NR + j]);
            }
        }
    }
    out[..R].copy_from_slice(&acc);
}

fn micro_generic<W: Weight>(
    x: &[f32],
    r0: usize,
    mr: usize,
    k: usize,
    panel: &[W],
    next: &[W],
    acc: &mut [[f32; NR]; MR_WIDE],
) {
    micro_body::<false, W>(x, r0, mr, k, panel, next, acc);
}

#[inline(always)]
fn micro_body<const FMA: bool, W: Weight>(
    x: &[f32],
    r0: usize,
    mr: usize,
    k: usize,
    panel: &[W],
    next: &[W],
    acc: &mut [[f32; NR]; MR_WIDE],
) {
    match mr {
        6 => tile::<6, FMA, W>(x, r0, k, panel, next, acc),
        5 => tile::<5, FMA, W>(x, r0, k, panel, next, acc),
        4 => tile::<4, FMA, W>(x, r0, k, panel, next, acc),
        3 => tile::<3, FMA, W>(x, r0, k, panel, next, acc),
        2 => tile::<2, FMA, W>(x, r0, k, panel, next, acc),
        _ => tile::<1, FMA, W>(x, r0, k, panel, next, acc),
    }
}

/// Hints the CPU to bring `s[i]` into the cache.
#[inline(always)]
fn prefetch<W>(s: &[W], i: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(w) = s.get(i) {
        #[allow(unsafe_code)]
        // SAFETY: a prefetch is only a hint (it never faults, whatever the address), and SSE,
        // which provides it, is part of the x86_64 baseline.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                (w as *const W).cast::<i8>(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (s, i);
}

/// `acc[r][j] = Σ_kk x[r0 + r][kk] · panel[kk][j]` for `R` rows. `FMA` only where the CPU has
/// it: elsewhere `mul_add` would be a slow library call.
#[inline(always)]
fn tile<const R: usize, const FMA: bool, W: Weight>(
    x: &[f32],
    r0: usize,
    k: usize,
    panel: &[W],
    next: &[W],
    out: &mut [[f32; NR]; MR_WIDE],
) {
    let rows: [&[f32]; R] = std::array::from_fn(|r| &x[(r0 + r) * k..(r0 + r + 1) * k]);
    let mut acc = [[0f32; NR]; R];
    // weights per 64-byte cache line, in panel rows of NR
    let every = (64 / (NR * std::mem::size_of::<W>())).max(1);
    for (kk, w) in panel.chunks_exact(NR).enumerate().take(k) {
        if kk % every == 0 {
            prefetch(next, kk * NR);
        }
        for r in 0..R {
            let xv = rows[r][kk];
            for j in 0..NR {
                acc[r][j] = if FMA {
                    xv.mul_add(w[j].widen(), acc[r][j])
                } else {
                    xv * w[j].widen() + acc[r][j]
                };
            }
        }
    }
    out[..R].copy_from_slice(&acc);
}

/// The instruction-set path the kernels take: the best the CPU has, or the one forced by
/// [`KERNEL_PATH_ENV`] (lower paths only: a path the CPU lacks is never run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KernelPath {
    /// The baseline target, no run-time dispatch: what arm64 (Graviton) and old x86 CPUs run.
    Generic,
    /// AVX2 + FMA: the 6x16 micro-kernel and 256-bit auto-vectorized loops.
    Avx2,
    /// AVX-512 (F + VL) on top of AVX2 + FMA: the 12x16 micro-kernel.
    Avx512,
}

/// The environment variable that forces a kernel path: `generic`, `avx2` or `avx512`. A switch
/// for tests and diagnosis (CI runs the kernel and encoder tests once per path the machine has),
/// read once, the first time a kernel runs; unset, the kernels take the best path the CPU has.
pub const KERNEL_PATH_ENV: &str = "HF_KERNEL_PATH";

impl KernelPath {
    /// The name [`KERNEL_PATH_ENV`] takes.
    pub fn name(self) -> &'static str {
        match self {
            KernelPath::Generic => "generic",
            KernelPath::Avx2 => "avx2",
            KernelPath::Avx512 => "avx512",
        }
    }

    /// Parses a [`KERNEL_PATH_ENV`] value.
    pub fn parse(s: &str) -> Option<KernelPath> {
        [KernelPath::Generic, KernelPath::Avx2, KernelPath::Avx512]
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
    }

    /// The best path this CPU can run.
    pub fn detected() -> KernelPath {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 =
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
            let avx512 = std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512vl");
            match (avx2, avx512) {
                (true, true) => KernelPath::Avx512,
                (true, false) => KernelPath::Avx2,
                _ => KernelPath::Generic,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            KernelPath::Generic
        }
    }

    /// The path asked for by [`KERNEL_PATH_ENV`]: `Ok(None)` when unset, `Err` with the value
    /// when it names no path.
    pub fn requested() -> Result<Option<KernelPath>, String> {
        match std::env::var(KERNEL_PATH_ENV) {
            Ok(v) if v.trim().is_empty() => Ok(None),
            Ok(v) => KernelPath::parse(&v).map(Some).ok_or(v),
            Err(_) => Ok(None),
        }
    }

    /// The path the kernels take in this process: the requested one capped at the detected one
    /// (an unknown request is ignored; the kernels' unit test `the_forced_kernel_path_is_taken`
    /// fails on either).
    pub fn active() -> KernelPath {
        static ACTIVE: std::sync::OnceLock<KernelPath> = std::sync::OnceLock::new();
        *ACTIVE.get_or_init(|| {
            let detected = KernelPath::detected();
            match KernelPath::requested() {
                Ok(Some(p)) => p.min(detected),
                _ => detected,
            }
        })
    }
}

/// Whether the AVX-512 micro-kernel runs here.
#[inline]
fn has_avx512() -> bool {
    KernelPath::active() == KernelPath::Avx512
}

/// Rows one micro-kernel call covers on this CPU.
#[inline]
fn rows_per_call() -> usize {
    if has_avx512() {
        MR_WIDE
    } else {
        MR
    }
}

/// Whether the AVX2+FMA variants run here (the CPU has them: [`KernelPath::active`] never
/// exceeds [`KernelPath::detected`]).
#[inline]
fn has_avx2_fma() -> bool {
    KernelPath::active() >= KernelPath::Avx2
}

/// Defines `pub fn $name` running `$body` compiled for AVX2+FMA when the CPU has them (wider
/// vectors for the auto-vectorized loops), and for the baseline target otherwise.
macro_rules! dispatched {
    ($(#[$doc:meta])* pub fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty $body:block) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn body($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn wide($($arg: $ty),*) -> $ret {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if has_avx2_fma() {
                #[allow(unsafe_code)]
                // SAFETY: the CPU supports AVX2 and FMA, checked just above.
                return unsafe { wide($($arg),*) };
            }
            body($($arg),*)
        }
    };
}

/// Sum with eight independent accumulators: a float sum in one chain cannot be vectorized
/// (reordering it changes the rounding, which the compiler may not do on its own).
#[inline(always)]
fn sum8(x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// Dot product with eight independent accumulators (see [`sum8`]).
#[inline(always)]
fn dot8(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Sum of squared deviations from `mean`, eight accumulators.
#[inline(always)]
fn sq_dev8(x: &[f32], mean: f32) -> f32 {
    let mut acc = [0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for i in 0..8 {
            let d = c[i] - mean;
            acc[i] += d * d;
        }
    }
    acc.iter().sum::<f32>()
        + chunks
            .remainder()
            .iter()
            .map(|v| (v - mean) * (v - mean))
            .sum::<f32>()
}

dispatched! {
/// `x ← LayerNorm(x + residual)` over rows of width `gamma.len()` (two-pass mean/variance in
/// f32, as torch).
pub fn add_layer_norm(x: &mut [f32], residual: Option<&[f32]>, gamma: &[f32], beta: &[f32], eps: f32) -> () {
    let h = gamma.len();
    if let Some(res) = residual {
        for (a, &b) in x.iter_mut().zip(res) {
            *a += b;
        }
    }
    for row in x.chunks_exact_mut(h) {
        let mean = sum8(row) / h as f32;
        let var = sq_dev8(row, mean) / h as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, &g), &b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}
}

#[inline(always)]
/// `erf`, by the rational approximation used by Eigen and XLA for f32 (max error a few ulp on
/// the clamped range [-4, 4], where erf is ±1 to f32 precision outside).
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 - 2.101_024e-6;
    p = p * x2 - 5.692_506_4e-5;
    p = p * x2 - 7.349_906_3e-4;
    p = p * x2 - 2.954_600_5e-3;
    p = p * x2 - 1.609_603_3e-2;
    let p = p * x;
    let mut q = -1.456_607_2e-5_f32;
    q = q * x2 - 2.133_740_5e-4;
    q = q * x2 - 1.682_827e-3;
    q = q * x2 - 7.373_329_3e-3;
    q = q * x2 - 1.426_474e-2;
    p / q
}

dispatched! {
/// Exact (erf) GELU in place.
pub fn gelu_erf(x: &mut [f32]) -> () {
    for v in x {
        *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}
}

/// Tanh-approximated GELU in place (`gelu_new`).
pub fn gelu_tanh(x: &mut [f32]) {
    const C: f32 = 0.797_884_6; // sqrt(2/pi)
    for v in x {
        let u = C * (*v + 0.044_715 * *v * *v * *v);
        *v = 0.5 * *v * (1.0 + u.tanh());
    }
}

/// `quick_gelu` in place: `x · sigmoid(1.702 x)`.
pub fn quick_gelu(x: &mut [f32]) {
    for v in x {
        *v /= 1.0 + (-1.702 * *v).exp();
    }
}

/// ReLU in place.
pub fn relu(x: &mut [f32]) {
    for v in x {
        *v = v.max(0.0);
    }
}

/// Softmax of each row of width `w`, in place.
pub fn softmax_rows(x: &mut [f32], w: usize) {
    for row in x.chunks_exact_mut(w) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        let inv = 1.0 / sum;
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

/// Multi-head self-attention of one sequence.
///
/// `qkv`: `[s, 3h]` rows (queries, keys, values side by side); `mask`: 1 for tokens that may be
/// attended to; returns the context `[s, h]`.
pub fn attention(qkv: &[f32], s: usize, h: usize, heads: usize, mask: &[u32]) -> Vec<f32> {
    let mut ctx = vec![0f32; s * h];
    for head in 0..heads {
        put_head(
            &mut ctx,
            h,
            heads,
            head,
            &attention_head(qkv, s, h, heads, mask, head),
        );
    }
    ctx
}

/// Writes head `head`'s context `part` (`[s, h / heads]`, from [`attention_head`]) into its
/// columns of the sequence's context rows `ctx` (`[s, h]`).
pub fn put_head(ctx: &mut [f32], h: usize, heads: usize, head: usize, part: &[f32]) {
    let hd = h / heads;
    for (row, p) in ctx.chunks_exact_mut(h).zip(part.chunks_exact(hd)) {
        row[head * hd..(head + 1) * hd].copy_from_slice(p);
    }
}

/// Head `head` of [`attention`]: its context, `[s, h / heads]`. The heads of one sequence are
/// independent, so a long sequence can run them on several threads.
pub fn attention_head(
    qkv: &[f32],
    s: usize,
    h: usize,
    heads: usize,
    mask: &[u32],
    head: usize,
) -> Vec<f32> {
    attention_rows(qkv, s, h, heads, mask, head, 0..s)
}

dispatched! {
/// Query rows `rows` of [`attention_head`]: their context, `[rows.len(), h / heads]`, the same
/// values as those rows of the whole head (each row's sums run in the same order whatever the
/// rows beside it), so a head can be split across threads by rows.
///
/// Both products run on the micro-kernel: the head's keys are packed as the panels of a
/// `[s, hd]` weight (scores = queries · keysᵀ), its values as those of a `[hd, s]` one
/// (context = probabilities · values). Packing costs `s · hd` copies against `s² · hd`
/// multiply-adds per product; a dot product per score instead keeps one accumulator chain per
/// pair and ran at a fraction of the arithmetic's speed.
pub fn attention_rows(
    qkv: &[f32],
    s: usize,
    h: usize,
    heads: usize,
    mask: &[u32],
    head: usize,
    rows: std::ops::Range<usize>
) -> Vec<f32> {
    let hd = h / heads;
    let m = rows.len();
    let scale = 1.0 / (hd as f32).sqrt();
    let (qo, ko, vo) = (head * hd, h + head * hd, 2 * h + head * hd);
    let at = |j: usize, off: usize| &qkv[j * 3 * h + off..j * 3 * h + off + hd];
    let q: Vec<f32> = rows.flat_map(|i| at(i, qo).iter().copied()).collect();
    // keys as a [s, hd] weight: panel p holds keys 16p..16p+16, hd rows of 16
    let mut keys = vec![0f32; s.div_ceil(NR) * hd * NR];
    for j in 0..s {
        let (p, c) = (j / NR, j % NR);
        for (kk, &v) in at(j, ko).iter().enumerate() {
            keys[(p * hd + kk) * NR + c] = v;
        }
    }
    let mut scores = vec![0f32; m * s];
    panel_product(&q, m, hd, &keys, s, &mut scores);
    for row in scores.chunks_exact_mut(s) {
        for (v, &keep) in row.iter_mut().zip(mask) {
            // masked keys get f32::MIN, as transformers' additive mask
            *v = if keep != 0 { *v * scale } else { *v * scale + f32::MIN };
        }
    }
    softmax_rows(&mut scores, s);
    // values as a [hd, s] weight: panel p holds dimensions 16p..16p+16, s rows of 16
    let mut values = vec![0f32; hd.div_ceil(NR) * s * NR];
    for j in 0..s {
        for (d, &v) in at(j, vo).iter().enumerate() {
            let (p, c) = (d / NR, d % NR);
            values[(p * s + j) * NR + c] = v;
        }
    }
    let mut ctx = vec![0f32; m * hd];
    panel_product(&scores, m, s, &values, hd, &mut ctx);
    ctx
}
}

/// `out[m, n] = x[m, k] · W` on the calling thread, `W` packed as [`PackedLinear`]'s panels
/// (`n.div_ceil(NR)` panels of `k` rows of `NR`, zero-padded).
#[inline(always)]
fn panel_product(x: &[f32], m: usize, k: usize, panels: &[f32], n: usize, out: &mut [f32]) {
    let zeros = vec![0f32; n];
    panel_rows(
        panels,
        k,
        n,
        &zeros,
        x,
        m,
        0..n.div_ceil(NR),
        &mut Rows::of(out, n),
    );
}

pub mod decode;
pub mod head;
pub mod team;

/// First index of the maximum (torch.argmax).
pub fn argmax(x: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_core::{Device, Module, Tensor};

    pub(crate) fn random(n: usize, seed: u64) -> Vec<f32> {
        // xorshift: deterministic, no extra dependency
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    pub(crate) fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    /// `HF_KERNEL_PATH=<path>` runs every kernel test on that path: this test fails where the
    /// value names no path or one this CPU cannot run, so a forced run cannot silently test
    /// another path.
    #[test]
    fn the_forced_kernel_path_is_taken() {
        let active = KernelPath::active();
        assert!(active <= KernelPath::detected());
        match KernelPath::requested() {
            Ok(Some(p)) => assert_eq!(
                active,
                p,
                "{KERNEL_PATH_ENV}={} asked, but this CPU's best is {}",
                p.name(),
                KernelPath::detected().name()
            ),
            Ok(None) => assert_eq!(active, KernelPath::detected()),
            Err(v) => panic!("{KERNEL_PATH_ENV}={v:?} names no path (generic, avx2, avx512)"),
        }
        eprintln!("kernel path: {}", active.name());
    }

    #[test]
    fn an_activation_applied_as_the_output_is_written_equals_applying_it_after() {
        // serial, and split between threads by columns (the second and third shapes), with
        // rows in one and in several micro-kernel calls
        for (m, k, n) in [(3, 64, 40), (14, 384, 1536), (30, 96, 200)] {
            let lin = PackedLinear::new(&random(n * k, 11), Some(&random(n, 12)), n, k);
            let x = random(m * k, 13);
            let mut want = lin.forward(&x, m);
            gelu_erf(&mut want);
            let got = lin.forward_then(&x, m, Some(gelu_erf));
            assert!(got == want, "{m}x{k}x{n}");
        }
    }

    #[test]
    fn bf16_weights_are_packed_as_bf16_and_give_the_same_products() {
        let (m, n, k) = (5, 40, 33);
        // weights that are exactly bf16 (as a bf16 checkpoint read as f32)
        let w: Vec<f32> = random(n * k, 9)
            .into_iter()
            .map(|v| f32::from_bits(v.to_bits() & 0xFFFF_0000))
            .collect();
        let x = random(m * k, 10);
        let packed = PackedLinear::new(&w, None, n, k);
        assert!(packed.is_bf16());
        assert_eq!(packed.weight_row(7), w[7 * k..8 * k]);
        let dev = Device::Cpu;
        let lin = candle_nn::Linear::new(Tensor::from_vec(w.clone(), (n, k), &dev).unwrap(), None);
        let theirs: Vec<f32> = lin
            .forward(&Tensor::from_vec(x.clone(), (m, k), &dev).unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(max_diff(&packed.forward(&x, m), &theirs) < 1e-4);
        // one weight that is not bf16 keeps the whole layer in f32
        let mut w2 = w;
        w2[3] = 0.123_456_79;
        assert!(!PackedLinear::new(&w2, None, n, k).is_bf16());
    }

    #[test]
    fn packed_linear_matches_candle() {
        for &(m, n, k) in &[
            (1, 3, 5),
            (7, 16, 32),
            (10, 384, 384),
            (13, 100, 37),
            (8, 48, 40),
            (9, 17, 64),
            (11, 64, 384),
            (64, 1536, 384),
        ] {
            let x = random(m * k, 1);
            let w = random(n * k, 2);
            let b = random(n, 3);
            let ours = PackedLinear::new(&w, Some(&b), n, k).forward(&x, m);
            let dev = Device::Cpu;
            let lin = candle_nn::Linear::new(
                Tensor::from_vec(w.clone(), (n, k), &dev).unwrap(),
                Some(Tensor::from_vec(b.clone(), n, &dev).unwrap()),
            );
            let theirs = lin
                .forward(&Tensor::from_vec(x, (m, k), &dev).unwrap())
                .unwrap();
            let theirs: Vec<f32> = theirs.flatten_all().unwrap().to_vec1().unwrap();
            assert!(
                max_diff(&ours, &theirs) < 1e-4,
                "{m}x{n}x{k}: {}",
                max_diff(&ours, &theirs)
            );
        }
    }

    #[test]
    fn a_row_does_not_depend_on_the_rows_beside_it() {
        // whatever the micro-kernel shape (6 or 12 rows per call, or one), every product is
        // summed in the same order: a sequence's output is the same alone or in a batch
        let (n, k) = (80, 96);
        let w = random(n * k, 5);
        let lin = PackedLinear::new(&w, None, n, k);
        for m in 1..=25 {
            let x = random(m * k, 6 + m as u64);
            let all = lin.forward(&x, m);
            for r in 0..m {
                let alone = lin.forward(&x[r * k..(r + 1) * k], 1);
                assert_eq!(alone, all[r * n..(r + 1) * n], "row {r} of {m}");
            }
        }
    }

    #[test]
    fn layer_norm_matches_candle() {
        let (rows, h) = (5, 48);
        let x = random(rows * h, 4);
        let r = random(rows * h, 5);
        let g = random(h, 6);
        let b = random(h, 7);
        let mut ours = x.clone();
        add_layer_norm(&mut ours, Some(&r), &g, &b, 1e-12);
        let dev = Device::Cpu;
        let ln = candle_nn::LayerNorm::new(
            Tensor::new(g.as_slice(), &dev).unwrap(),
            Tensor::new(b.as_slice(), &dev).unwrap(),
            1e-12,
        );
        let sum = (Tensor::from_vec(x, (rows, h), &dev).unwrap()
            + Tensor::from_vec(r, (rows, h), &dev).unwrap())
        .unwrap();
        let theirs: Vec<f32> = ln
            .forward(&sum)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(
            max_diff(&ours, &theirs) < 1e-5,
            "{}",
            max_diff(&ours, &theirs)
        );
    }

    #[test]
    fn gelu_and_softmax_match_candle() {
        let x: Vec<f32> = random(4096, 8).iter().map(|v| v * 6.0).collect();
        let t = Tensor::new(x.as_slice(), &Device::Cpu).unwrap();
        let mut ours = x.clone();
        gelu_erf(&mut ours);
        let theirs: Vec<f32> = t.gelu_erf().unwrap().to_vec1().unwrap();
        assert!(
            max_diff(&ours, &theirs) < 2e-6,
            "gelu {}",
            max_diff(&ours, &theirs)
        );
        let mut ours = x.clone();
        gelu_tanh(&mut ours);
        let theirs: Vec<f32> = t.gelu().unwrap().to_vec1().unwrap();
        assert!(
            max_diff(&ours, &theirs) < 2e-6,
            "gelu_tanh {}",
            max_diff(&ours, &theirs)
        );
        let mut ours = x.clone();
        softmax_rows(&mut ours, 64);
        let t2 = Tensor::from_vec(x, (64, 64), &Device::Cpu).unwrap();
        let theirs: Vec<f32> = candle_nn::ops::softmax_last_dim(&t2)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(
            max_diff(&ours, &theirs) < 1e-6,
            "softmax {}",
            max_diff(&ours, &theirs)
        );
    }

    #[test]
    fn erf_is_accurate() {
        // reference values of erf (from the C library's double-precision erf)
        for &(x, want) in &[
            (0.0f32, 0.0f64),
            (0.1, 0.1124629160182849),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (-2.0, -0.9953222650189527),
            (3.5, 0.9999992569016276),
            (10.0, 1.0),
        ] {
            assert!(
                (f64::from(erf(x)) - want).abs() < 1e-6,
                "erf({x}) = {} want {want}",
                erf(x)
            );
        }
    }

    #[test]
    fn attention_matches_candle_with_a_mask() {
        // widths and lengths off the panel (16) and tile (6, 12) sizes, and one across several
        for (s, h, heads, seed) in [(5, 8, 2, 9), (37, 96, 3, 10), (20, 40, 2, 11)] {
            let qkv = random(s * 3 * h, seed);
            let mask: Vec<u32> = (0..s).map(|j| u32::from(j % 4 != 3)).collect();
            let ours = attention(&qkv, s, h, heads, &mask);
            let theirs = candle_attention(qkv, s, h, heads, &mask);
            assert!(
                max_diff(&ours, &theirs) < 1e-5,
                "s={s} h={h}: {}",
                max_diff(&ours, &theirs)
            );
        }
    }

    fn candle_attention(qkv: Vec<f32>, s: usize, h: usize, heads: usize, mask: &[u32]) -> Vec<f32> {
        let dev = Device::Cpu;
        let t = Tensor::from_vec(qkv, (s, 3 * h), &dev).unwrap();
        let split = |i: usize| {
            t.narrow(1, i * h, h)
                .unwrap()
                .reshape((s, heads, h / heads))
                .unwrap()
                .transpose(0, 1)
                .unwrap()
                .contiguous()
                .unwrap()
        };
        let (q, k, v) = (split(0), split(1), split(2));
        let scores = (q.matmul(&k.t().unwrap()).unwrap() / ((h / heads) as f64).sqrt()).unwrap();
        let bias: Vec<f32> = mask
            .iter()
            .map(|&m| if m == 1 { 0.0 } else { f32::MIN })
            .collect();
        let scores = scores
            .broadcast_add(&Tensor::new(bias.as_slice(), &dev).unwrap())
            .unwrap();
        let p = candle_nn::ops::softmax_last_dim(&scores).unwrap();
        let ctx = p
            .matmul(&v)
            .unwrap()
            .transpose(0, 1)
            .unwrap()
            .reshape((s, h))
            .unwrap();
        ctx.flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn a_head_split_by_query_rows_gives_the_whole_heads_values() {
        let (s, h, heads) = (41, 64, 2);
        let qkv = random(s * 3 * h, 12);
        let mask = vec![1u32; s];
        for head in 0..heads {
            let whole = attention_head(&qkv, s, h, heads, &mask, head);
            let mut parts = Vec::new();
            for rows in [0..7, 7..8, 8..30, 30..30, 30..41] {
                parts.extend(attention_rows(&qkv, s, h, heads, &mask, head, rows));
            }
            assert_eq!(whole, parts, "head {head}");
        }
    }
}
