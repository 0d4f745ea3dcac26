//! What the convolutional image classifiers share (ConvNeXt, ResNet, MobileNet): convolutions with
//! torch's or TensorFlow's ("SAME") padding, batch norms in eval mode folded into the convolution
//! before them, the activations `config.json`'s `hidden_act` names, global average pooling, and
//! ConvNeXt's channels-first layer norm.

use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;

use crate::error::ToolkitError;

/// An activation named by `hidden_act` (transformers' `ACT2FN`), the ones convolutional networks
/// use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConvAct {
    /// `relu`.
    Relu,
    /// `relu6`: `min(max(x, 0), 6)`.
    Relu6,
    /// `gelu`: exact (`erf`).
    Gelu,
    /// `gelu_new`, `gelu_pytorch_tanh`: the tanh approximation.
    GeluTanh,
    /// `silu`, `swish`.
    Silu,
    /// `quick_gelu`: `x · sigmoid(1.702 x)`.
    QuickGelu,
    /// `sigmoid`.
    Sigmoid,
    /// `tanh`.
    Tanh,
    /// `linear`: the identity.
    Linear,
}

impl ConvAct {
    /// The activation of a `hidden_act` name.
    pub(crate) fn parse(name: &str) -> std::result::Result<Self, ToolkitError> {
        Ok(match name {
            "relu" => Self::Relu,
            "relu6" => Self::Relu6,
            "gelu" => Self::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" => Self::GeluTanh,
            "silu" | "swish" => Self::Silu,
            "quick_gelu" => Self::QuickGelu,
            "sigmoid" => Self::Sigmoid,
            "tanh" => Self::Tanh,
            "linear" => Self::Linear,
            other => {
                return Err(ToolkitError::model_load(format!(
                    "config.json: hidden_act {other:?} is not supported (relu, relu6, gelu, gelu_new, gelu_pytorch_tanh, silu, swish, quick_gelu, sigmoid, tanh, linear)"
                )))
            }
        })
    }

    pub(crate) fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Relu => x.relu(),
            Self::Relu6 => x.clamp(0f32, 6f32),
            Self::Gelu => x.gelu_erf(),
            Self::GeluTanh => x.gelu(),
            Self::Silu => x.silu(),
            Self::QuickGelu => x * candle_nn::ops::sigmoid(&(x * 1.702)?)?,
            Self::Sigmoid => candle_nn::ops::sigmoid(x),
            Self::Tanh => x.tanh(),
            Self::Linear => Ok(x.clone()),
        }
    }
}

/// How a convolution pads its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Padding {
    /// torch's: this many zeros on every side.
    Symmetric(usize),
    /// TensorFlow's "SAME" (MobileNet's `tf_padding`): computed from the input's size so that the
    /// output is `ceil(input / stride)`, the odd zero at the bottom and right.
    TfSame,
}

/// The shape of a 2-D convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvSpec {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: Padding,
    pub dilation: usize,
    pub groups: usize,
}

impl ConvSpec {
    /// A `kernel × kernel` convolution, stride 1, no padding, no dilation, one group.
    pub(crate) fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel,
            stride: 1,
            padding: Padding::Symmetric(0),
            dilation: 1,
            groups: 1,
        }
    }

    pub(crate) fn stride(self, stride: usize) -> Self {
        Self { stride, ..self }
    }

    pub(crate) fn padding(self, padding: Padding) -> Self {
        Self { padding, ..self }
    }

    pub(crate) fn dilation(self, dilation: usize) -> Self {
        Self { dilation, ..self }
    }

    pub(crate) fn groups(self, groups: usize) -> Self {
        Self { groups, ..self }
    }
}

/// A 2-D convolution (`nn.Conv2d`), possibly with a batch norm folded in.
#[derive(Debug, Clone)]
pub(crate) struct Conv {
    weight: Tensor,
    bias: Option<Tensor>,
    spec: ConvSpec,
    /// A depthwise convolution's weights and bias on the CPU, for [`depthwise`].
    depthwise: Option<(Vec<f32>, Vec<f32>)>,
}

/// The amounts TensorFlow's "SAME" padding adds before and after an axis of `size` (transformers'
/// `apply_tf_padding`: the padding of the undilated kernel, then scaled by the dilation).
pub(crate) fn tf_same_padding(
    size: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> (usize, usize) {
    let stride = stride.max(1);
    let along = if size.is_multiple_of(stride) {
        kernel.saturating_sub(stride)
    } else {
        kernel.saturating_sub(size % stride)
    };
    let before = along / 2;
    (before * dilation, (along - before) * dilation)
}

impl Conv {
    /// Loads `weight` (and `bias` when `bias`) under `vb`.
    pub(crate) fn load(vb: VarBuilder, spec: ConvSpec, bias: bool) -> Result<Self> {
        if spec.groups == 0
            || !spec.in_channels.is_multiple_of(spec.groups)
            || !spec.out_channels.is_multiple_of(spec.groups)
            || spec.kernel == 0
            || spec.stride == 0
            || spec.dilation == 0
        {
            candle_core::bail!(
                "a convolution of {} to {} channels in {} groups, kernel {}, stride {}, dilation {} cannot be built",
                spec.in_channels,
                spec.out_channels,
                spec.groups,
                spec.kernel,
                spec.stride,
                spec.dilation
            );
        }
        let weight = vb.get(
            (
                spec.out_channels,
                spec.in_channels / spec.groups,
                spec.kernel,
                spec.kernel,
            ),
            "weight",
        )?;
        let bias = if bias {
            Some(vb.get(spec.out_channels, "bias")?)
        } else {
            None
        };
        Self::new(weight, bias, spec)
    }

    fn new(weight: Tensor, bias: Option<Tensor>, spec: ConvSpec) -> Result<Self> {
        let depthwise = if spec.groups == spec.in_channels
            && spec.out_channels == spec.in_channels
            && weight.device().is_cpu()
        {
            let w: Vec<f32> = weight.flatten_all()?.to_vec1()?;
            let b: Vec<f32> = match &bias {
                Some(b) => b.to_vec1()?,
                None => vec![0.0; spec.out_channels],
            };
            Some((w, b))
        } else {
            None
        };
        Ok(Self {
            weight,
            bias,
            spec,
            depthwise,
        })
    }

    /// Loads a convolution without bias followed by an eval-mode `nn.BatchNorm2d` with `eps`, the
    /// norm folded into the convolution: `w · γ / √(var + ε)` and `β − mean · γ / √(var + ε)`.
    pub(crate) fn load_with_batch_norm(
        conv: VarBuilder,
        norm: VarBuilder,
        spec: ConvSpec,
        eps: f64,
    ) -> Result<Self> {
        let c = Self::load(conv, spec, false)?;
        let n = spec.out_channels;
        let gamma = norm.get(n, "weight")?.to_dtype(DType::F64)?;
        let beta = norm.get(n, "bias")?.to_dtype(DType::F64)?;
        let mean = norm.get(n, "running_mean")?.to_dtype(DType::F64)?;
        let var = norm.get(n, "running_var")?.to_dtype(DType::F64)?;
        // in float64, then float32: the folded weights are as close to torch's two steps as
        // float32 allows
        let scale = (gamma / (var + eps)?.sqrt()?)?;
        let weight = c
            .weight
            .to_dtype(DType::F64)?
            .broadcast_mul(&scale.reshape((n, 1, 1, 1))?)?
            .to_dtype(DType::F32)?;
        let bias = (beta - (mean * &scale)?)?.to_dtype(DType::F32)?;
        Self::new(weight, Some(bias), spec)
    }

    /// The `(height, width)` of the output for an `h × w` input; `None` when the (padded) input
    /// is smaller than the (dilated) kernel, which torch refuses.
    pub(crate) fn out_size(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let s = self.spec;
        let extent = s.dilation * (s.kernel - 1) + 1;
        let axis = |n: usize| {
            let padded = match s.padding {
                Padding::Symmetric(p) => n + 2 * p,
                Padding::TfSame => {
                    let (before, after) = tf_same_padding(n, s.kernel, s.stride, s.dilation);
                    n + before + after
                }
            };
            (n > 0 && padded >= extent).then(|| (padded - extent) / s.stride + 1)
        };
        Some((axis(h)?, axis(w)?))
    }

    /// `x`: `[b, in_channels, h, w]`.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = self.spec;
        let (_, _, h, w) = x.dims4()?;
        let Some(out) = self.out_size(h, w) else {
            // candle's output size would underflow
            candle_core::bail!(
                "a {w}x{h} map is smaller than a {}x{} convolution",
                s.kernel,
                s.kernel
            );
        };
        let (top, bottom, left, right) = match s.padding {
            Padding::Symmetric(p) => (p, p, p, p),
            Padding::TfSame => {
                let (top, bottom) = tf_same_padding(h, s.kernel, s.stride, s.dilation);
                let (left, right) = tf_same_padding(w, s.kernel, s.stride, s.dilation);
                (top, bottom, left, right)
            }
        };
        if let (Some((weight, bias)), true) = (&self.depthwise, x.device().is_cpu()) {
            return depthwise(x, weight, bias, s, (top, left), out);
        }
        let y = if (top, left) == (bottom, right) && top == left {
            x.conv2d(&self.weight, top, s.stride, s.dilation, s.groups)?
        } else {
            x.pad_with_zeros(2, top, bottom)?
                .pad_with_zeros(3, left, right)?
                .conv2d(&self.weight, 0, s.stride, s.dilation, s.groups)?
        };
        match &self.bias {
            Some(b) => y.broadcast_add(&b.reshape((1, s.out_channels, 1, 1))?),
            None => Ok(y),
        }
    }
}

/// A depthwise convolution (one group per channel) on the CPU, directly: candle runs a grouped
/// convolution as one convolution per group, thousands of calls for a ConvNeXt or a MobileNet.
/// `x` is `[b, c, h, w]`, `weight` `[c, 1, k, k]` flattened; zeros pad `top` rows and `left`
/// columns before the input (and as many after as the output size `out` needs).
fn depthwise(
    x: &Tensor,
    weight: &[f32],
    bias: &[f32],
    spec: ConvSpec,
    (top, left): (usize, usize),
    (oh, ow): (usize, usize),
) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let input: Vec<f32> = x.contiguous()?.flatten_all()?.to_vec1()?;
    let (k, st, dil) = (spec.kernel, spec.stride, spec.dilation);
    let planes = crate::kernels::team::map(b * c, |p| {
        let ch = p % c;
        let plane = &input[p * h * w..(p + 1) * h * w];
        let wk = &weight[ch * k * k..(ch + 1) * k * k];
        let mut o = vec![bias[ch]; oh * ow];
        for (oy, orow) in o.chunks_exact_mut(ow).enumerate() {
            for ky in 0..k {
                // the input row: oy·stride + ky·dilation − top
                let Some(iy) = (oy * st + ky * dil).checked_sub(top).filter(|&y| y < h) else {
                    continue;
                };
                let row = &plane[iy * w..(iy + 1) * w];
                for kx in 0..k {
                    let wv = wk[ky * k + kx];
                    // the input column of output ox: ox·stride + off, inside 0..w
                    let off = (kx * dil) as isize - left as isize;
                    let lo = if off >= 0 {
                        0
                    } else {
                        off.unsigned_abs().div_ceil(st)
                    };
                    let hi = match usize::try_from(w as isize - off) {
                        Ok(n) => n.div_ceil(st).min(ow),
                        Err(_) => 0,
                    };
                    if lo >= hi {
                        continue;
                    }
                    let first = (lo * st).wrapping_add_signed(off);
                    if st == 1 {
                        for (o, &v) in orow[lo..hi].iter_mut().zip(&row[first..first + hi - lo]) {
                            *o += wv * v;
                        }
                    } else {
                        for (o, &v) in orow[lo..hi].iter_mut().zip(row[first..].iter().step_by(st))
                        {
                            *o += wv * v;
                        }
                    }
                }
            }
        }
        o
    });
    Tensor::from_vec(planes.concat(), (b, c, oh, ow), x.device())
}

/// transformers' `ResNetConvLayer` and `MobileNetV{1,2}ConvLayer`: a convolution without bias
/// (`convolution`) with its eval-mode batch norm (`normalization`) folded in, then an optional
/// activation.
pub(crate) struct ConvLayer {
    pub(crate) conv: Conv,
    act: Option<ConvAct>,
}

impl ConvLayer {
    /// Loads `convolution` and `normalization` (with `eps`) under `vb`.
    pub(crate) fn load(
        vb: VarBuilder,
        spec: ConvSpec,
        eps: f64,
        act: Option<ConvAct>,
    ) -> Result<Self> {
        Ok(Self {
            conv: Conv::load_with_batch_norm(
                vb.pp("convolution"),
                vb.pp("normalization"),
                spec,
                eps,
            )?,
            act,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.conv.forward(x)?;
        match self.act {
            Some(a) => a.apply(&y),
            None => Ok(y),
        }
    }
}

/// `nn.AdaptiveAvgPool2d((1, 1))` flattened, or `x.mean([-2, -1])`: `[b, c, h, w]` to `[b, c]`.
pub(crate) fn global_average(x: &Tensor) -> Result<Tensor> {
    x.flatten_from(2)?.mean(2)
}

/// `nn.MaxPool2d(kernel, stride, padding)`: the padding is `-inf`, never the maximum.
pub(crate) fn max_pool(x: &Tensor, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
    let x = if padding > 0 {
        let (b, c, h, w) = x.dims4()?;
        let side = |rows: usize, cols: usize| {
            Tensor::full(f32::NEG_INFINITY, (b, c, rows, cols), x.device())
        };
        let x = Tensor::cat(&[&side(h, padding)?, x, &side(h, padding)?], 3)?;
        let wp = w + 2 * padding;
        Tensor::cat(&[&side(padding, wp)?, &x, &side(padding, wp)?], 2)?
    } else {
        x.clone()
    };
    x.max_pool2d_with_stride(kernel, stride)
}

/// ConvNeXt's layer norm over the channels of `[b, c, h, w]` (`data_format="channels_first"`):
/// `(x − mean) / √(var + ε)` per position, then the per-channel affine.
#[derive(Debug, Clone)]
pub(crate) struct ChannelsFirstNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl ChannelsFirstNorm {
    pub(crate) fn load(vb: VarBuilder, channels: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: vb.get(channels, "weight")?.reshape((1, channels, 1, 1))?,
            bias: vb.get(channels, "bias")?.reshape((1, channels, 1, 1))?,
            eps,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let u = x.mean_keepdim(1)?;
        let d = x.broadcast_sub(&u)?;
        let s = d.sqr()?.mean_keepdim(1)?;
        let n = d.broadcast_div(&(s + self.eps)?.sqrt()?)?;
        n.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)
    }
}

/// The `(height, width)` after a chain of convolutions, `None` when one of them cannot take its
/// input.
pub(crate) fn chain_size<'a>(
    convs: impl IntoIterator<Item = &'a Conv>,
    h: usize,
    w: usize,
) -> Option<(usize, usize)> {
    convs
        .into_iter()
        .try_fold((h, w), |(h, w), c| c.out_size(h, w))
}

/// Images of one size go through the network together, at most this many at a time (the
/// activations of a batch grow with it: a ConvNeXt at 384x384 holds ~14 MB per image in its
/// first stage).
const MAX_GROUP: usize = 8;

/// The logits of each image, in order. Images of equal size go through `forward` (`[n, 3, h, w]`
/// to `[n, labels]`) together, in groups of at most [`MAX_GROUP`]; images may differ in size. An
/// image that `fits` refuses (too small for the network's convolutions: only an image processor
/// that does not resize lets one through) is a 400, as torch's error is in the toolkit.
pub(crate) fn logits_each(
    images: &[crate::vision::PixelValues],
    labels: usize,
    device: &candle_core::Device,
    fits: impl Fn(usize, usize) -> bool,
    forward: impl Fn(&Tensor) -> Result<Tensor>,
) -> std::result::Result<Vec<Vec<f32>>, ToolkitError> {
    if let Some(p) = images.iter().find(|p| !fits(p.height, p.width)) {
        return Err(ToolkitError::Validation(format!(
            "the preprocessed {}x{} image is too small for the model's convolutions",
            p.width, p.height
        )));
    }
    // the indices of the images of each size, in order of first appearance
    let mut groups: Vec<((usize, usize), Vec<usize>)> = Vec::new();
    for (i, p) in images.iter().enumerate() {
        let size = (p.height, p.width);
        match groups.iter_mut().find(|(s, _)| *s == size) {
            Some((_, members)) => members.push(i),
            None => groups.push((size, vec![i])),
        }
    }
    let mut out: Vec<Vec<f32>> = vec![Vec::new(); images.len()];
    for ((h, w), members) in groups {
        for chunk in members.chunks(MAX_GROUP) {
            let mut data = Vec::with_capacity(chunk.len() * 3 * h * w);
            for &i in chunk {
                data.extend_from_slice(&images[i].data);
            }
            let x = Tensor::from_vec(data, (chunk.len(), 3, h, w), device)?;
            let l: Vec<f32> = forward(&x)?
                .to_device(&candle_core::Device::Cpu)?
                .flatten_all()?
                .to_vec1()?;
            if l.len() != labels * chunk.len() {
                return Err(ToolkitError::Internal(format!(
                    "the model produced {} logits for {} images, expected {labels} each",
                    l.len(),
                    chunk.len()
                )));
            }
            for (&i, row) in chunk.iter().zip(l.chunks_exact(labels.max(1))) {
                out[i] = row.to_vec();
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn tf_same_padding_puts_the_odd_zero_after() {
        // transformers' apply_tf_padding: 32 wide, 3x3, stride 2 -> 0 before, 1 after
        assert_eq!(tf_same_padding(32, 3, 2, 1), (0, 1));
        assert_eq!(tf_same_padding(33, 3, 2, 1), (1, 1));
        assert_eq!(tf_same_padding(7, 3, 1, 1), (1, 1));
        assert_eq!(tf_same_padding(7, 1, 1, 1), (0, 0));
        // dilated: the undilated padding times the dilation
        assert_eq!(tf_same_padding(8, 3, 1, 2), (2, 2));
        // a kernel smaller than the stride pads nothing
        assert_eq!(tf_same_padding(5, 1, 2, 1), (0, 0));
    }

    #[test]
    fn output_sizes_and_inputs_too_small_for_a_kernel() {
        let conv = |spec: ConvSpec| {
            let w = Tensor::zeros((1, 1, spec.kernel, spec.kernel), DType::F32, &Device::Cpu);
            Conv::new(w.unwrap(), None, spec).unwrap()
        };
        // ConvNeXt's 4x4 stride-4 stem: 2 pixels are too few
        let stem = conv(ConvSpec::new(1, 1, 4).stride(4));
        assert_eq!(stem.out_size(38, 9), Some((9, 2)));
        assert_eq!(stem.out_size(3, 9), None);
        let x = Tensor::zeros((1, 1, 3, 9), DType::F32, &Device::Cpu).unwrap();
        assert!(stem.forward(&x).is_err());
        // torch's padding and TensorFlow's keep 1 pixel alive
        let padded = conv(
            ConvSpec::new(1, 1, 3)
                .stride(2)
                .padding(Padding::Symmetric(1)),
        );
        assert_eq!(padded.out_size(1, 32), Some((1, 16)));
        let same = conv(ConvSpec::new(1, 1, 3).stride(2).padding(Padding::TfSame));
        assert_eq!(same.out_size(1, 33), Some((1, 17)));
        let x = Tensor::ones((1, 1, 5, 5), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(same.forward(&x).unwrap().dims4().unwrap(), (1, 1, 3, 3));
        assert_eq!(chain_size([&stem, &padded, &same], 64, 48), Some((4, 3)));
        assert_eq!(chain_size([&stem, &stem, &stem], 64, 48), None);
    }

    #[test]
    fn depthwise_convolutions_match_candles_grouped_convolution() {
        let dev = Device::Cpu;
        for (k, stride, dilation, padding, (h, w)) in [
            (7, 1, 1, Padding::Symmetric(3), (9, 11)),
            (3, 2, 1, Padding::TfSame, (8, 9)),
            (3, 2, 1, Padding::TfSame, (7, 6)),
            (3, 1, 2, Padding::TfSame, (6, 7)),
            (3, 2, 1, Padding::Symmetric(1), (5, 8)),
            (3, 1, 1, Padding::Symmetric(0), (4, 5)),
            (3, 3, 1, Padding::TfSame, (10, 4)),
            (3, 1, 1, Padding::Symmetric(1), (1, 1)),
        ] {
            let c = 3;
            let spec = ConvSpec::new(c, c, k)
                .stride(stride)
                .dilation(dilation)
                .padding(padding)
                .groups(c);
            let weight = Tensor::randn(0f32, 1.0, (c, 1, k, k), &dev).unwrap();
            let bias = Tensor::randn(0f32, 1.0, c, &dev).unwrap();
            let x = Tensor::randn(0f32, 1.0, (2, c, h, w), &dev).unwrap();
            let conv = Conv::new(weight.clone(), Some(bias.clone()), spec).unwrap();
            assert!(conv.depthwise.is_some());
            let got = conv.forward(&x).unwrap();
            // candle's grouped convolution on the explicitly padded input
            let (t, b, l, r) = match padding {
                Padding::Symmetric(p) => (p, p, p, p),
                Padding::TfSame => {
                    let (t, b) = tf_same_padding(h, k, stride, dilation);
                    let (l, r) = tf_same_padding(w, k, stride, dilation);
                    (t, b, l, r)
                }
            };
            let want = x
                .pad_with_zeros(2, t, b)
                .unwrap()
                .pad_with_zeros(3, l, r)
                .unwrap()
                .conv2d(&weight, 0, stride, dilation, c)
                .unwrap()
                .broadcast_add(&bias.reshape((1, c, 1, 1)).unwrap())
                .unwrap();
            assert_eq!(got.dims(), want.dims(), "k {k} stride {stride} {padding:?}");
            let (oh, ow) = conv.out_size(h, w).unwrap();
            assert_eq!(got.dims4().unwrap(), (2, c, oh, ow));
            let diff: f32 = (got - want)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar()
                .unwrap();
            assert!(diff < 1e-5, "k {k} stride {stride} {padding:?}: {diff}");
        }
    }

    #[test]
    fn max_pool_pads_with_minus_infinity() {
        // all-negative input: a zero padding would win the corners
        let x = Tensor::from_vec(
            (0..16).map(|v| -(v as f32) - 1.0).collect::<Vec<_>>(),
            (1, 1, 4, 4),
            &Device::Cpu,
        )
        .unwrap();
        let y: Vec<f32> = max_pool(&x, 3, 2, 1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        // windows: rows/cols -1..1 and 1..3
        assert_eq!(y, vec![-1.0, -2.0, -5.0, -6.0]);
    }

    #[test]
    fn activations_by_name() {
        let x = Tensor::new(&[-1f32, 0.5, 7.0], &Device::Cpu).unwrap();
        let relu6: Vec<f32> = ConvAct::parse("relu6")
            .unwrap()
            .apply(&x)
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(relu6, vec![0.0, 0.5, 6.0]);
        assert!(ConvAct::parse("hardswish").is_err());
    }
}
