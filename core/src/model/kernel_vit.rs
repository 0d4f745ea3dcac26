//! ViT image classification (`ViTForImageClassification`) on our own CPU kernels
//! ([`crate::kernels`]), the same network as [`super::vit`] (candle-transformers' ViT, which
//! stays as the reference and the GPU path): the patch embedding as one packed matrix product
//! over the image's patches, a CLS token and position embeddings, pre-norm encoder layers
//! (`layernorm_before`, fused query/key/value, `layernorm_after`, GELU feed-forward), the final
//! layer norm and the classifier on the CLS token.
//!
//! Images run one at a time (`[patches + 1, hidden]` rows through every linear layer, attention
//! per head), each on the model's whole team of threads; the forward pass itself takes a stack
//! of images, which measured slower per image.

use candle_nn::VarBuilder;
use serde_json::Value;

use super::config::Activation;
use super::image_classifier::ImageClassifier;
use super::kernel_encoder::{get, linear, norm, team, with_values, Norm};
use super::loader::{var_builder, ModelFiles};
use crate::error::ToolkitError;
use crate::kernels::{self, PackedLinear};
use crate::vision::PixelValues;

struct Layer {
    norm1: Norm,
    qkv: PackedLinear,
    out: PackedLinear,
    norm2: Norm,
    ff_in: PackedLinear,
    ff_out: PackedLinear,
}

/// A ViT classifier on the CPU kernels.
pub struct KernelVit {
    /// `[hidden, 3·patch·patch]`: the convolution's kernels as rows, read in `(c, y, x)` order.
    patch: PackedLinear,
    cls: Vec<f32>,
    /// `[(patches + 1), hidden]`.
    position: Vec<f32>,
    layers: Vec<Layer>,
    norm: Norm,
    classifier: PackedLinear,
    hidden: usize,
    heads: usize,
    act: Activation,
    eps: f32,
    image_size: usize,
    patch_size: usize,
    team: kernels::team::Team,
}

impl std::fmt::Debug for KernelVit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelVit")
            .field("image_size", &self.image_size)
            .field("patch_size", &self.patch_size)
            .field("hidden", &self.hidden)
            .field("layers", &self.layers.len())
            .finish_non_exhaustive()
    }
}

fn layer(vb: &VarBuilder, h: usize, inter: usize) -> Result<Layer, ToolkitError> {
    let att = vb.pp("attention.attention");
    let mut w = Vec::with_capacity(3 * h * h);
    let mut b = Vec::with_capacity(3 * h);
    let biased = att.pp("query").contains_tensor("bias");
    for name in ["query", "key", "value"] {
        let p = att.pp(name);
        with_values(&p, &[h, h], "weight", |v| w.extend_from_slice(v))?;
        if biased {
            with_values(&p, &[h], "bias", |v| b.extend_from_slice(v))?;
        }
    }
    Ok(Layer {
        norm1: norm(&vb.pp("layernorm_before"), h)?,
        qkv: PackedLinear::new(&w, biased.then_some(b.as_slice()), 3 * h, h),
        out: linear(&vb.pp("attention.output.dense"), h, h)?,
        norm2: norm(&vb.pp("layernorm_after"), h)?,
        ff_in: linear(&vb.pp("intermediate.dense"), inter, h)?,
        ff_out: linear(&vb.pp("output.dense"), h, inter)?,
    })
}

fn usize_of(c: &Value, key: &str) -> Result<usize, ToolkitError> {
    c.get(key)
        .and_then(Value::as_u64)
        .map(|n| n as usize)
        .ok_or_else(|| ToolkitError::model_load(format!("config.json: {key} is missing")))
}

impl KernelVit {
    /// Loads the model of `config` (`config.json`, with transformers' ViT defaults filled in)
    /// with `labels` classes.
    pub fn load(files: &ModelFiles, config: &Value, labels: usize) -> Result<Self, ToolkitError> {
        let c = super::vit::with_defaults(config);
        let (h, heads) = (
            usize_of(&c, "hidden_size")?,
            usize_of(&c, "num_attention_heads")?,
        );
        let (inter, n_layers) = (
            usize_of(&c, "intermediate_size")?,
            usize_of(&c, "num_hidden_layers")?,
        );
        let (image_size, p) = (usize_of(&c, "image_size")?, usize_of(&c, "patch_size")?);
        let channels = usize_of(&c, "num_channels")?;
        let act: Activation = serde_json::from_value(c["hidden_act"].clone())
            .map_err(|e| ToolkitError::model_load(format!("config.json: hidden_act: {e}")))?;
        let eps = c["layer_norm_eps"].as_f64().unwrap_or(1e-12) as f32;
        if heads == 0 || !h.is_multiple_of(heads) {
            return Err(ToolkitError::model_load(
                "config.json: hidden_size must be a multiple of num_attention_heads",
            ));
        }
        if p == 0 || !image_size.is_multiple_of(p) || channels != 3 {
            return Err(ToolkitError::model_load(
                "config.json: image_size must be a multiple of patch_size, with 3 channels",
            ));
        }
        if labels == 0 {
            return Err(ToolkitError::model_load(
                "config.json has no labels (id2label or num_labels): not an image classifier",
            ));
        }
        let vb = var_builder(files, candle_core::DType::F32, &candle_core::Device::Cpu)?;
        let emb = vb.pp("vit.embeddings");
        let patches = (image_size / p).pow(2);
        let pe = emb.pp("patch_embeddings.projection");
        let bias = get(&pe, &[h], "bias")?;
        let patch = with_values(&pe, &[h, 3, p, p], "weight", |w| {
            PackedLinear::new(w, Some(&bias), h, 3 * p * p)
        })?;
        let layers = (0..n_layers)
            .map(|i| layer(&vb.pp(format!("vit.encoder.layer.{i}")), h, inter))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            patch,
            cls: get(&emb, &[1, 1, h], "cls_token")?,
            position: get(&emb, &[1, patches + 1, h], "position_embeddings")?,
            layers,
            norm: norm(&vb.pp("vit.layernorm"), h)?,
            classifier: linear(&vb.pp("classifier"), labels, h)?,
            hidden: h,
            heads,
            act,
            eps,
            image_size,
            patch_size: p,
            team: team()?,
        })
    }

    fn activation(&self) -> fn(&mut [f32]) {
        match self.act {
            Activation::Gelu => kernels::gelu_erf,
            Activation::GeluNew => kernels::gelu_tanh,
            Activation::Relu => kernels::relu,
            Activation::QuickGelu => kernels::quick_gelu,
        }
    }

    /// The embeddings of one image: `[(patches + 1), hidden]` rows appended to `x`.
    fn embed(&self, image: &PixelValues, x: &mut Vec<f32>) {
        let (s, p, h) = (self.image_size, self.patch_size, self.hidden);
        let grid = s / p;
        let plane = s * s;
        let k = 3 * p * p;
        let mut cols = vec![0f32; grid * grid * k];
        for (i, row) in cols.chunks_exact_mut(k).enumerate() {
            let (py, px) = (i / grid, i % grid);
            for c in 0..3 {
                for y in 0..p {
                    let src = c * plane + (py * p + y) * s + px * p;
                    let dst = (c * p + y) * p;
                    row[dst..dst + p].copy_from_slice(&image.data[src..src + p]);
                }
            }
        }
        let emb = self.patch.forward(&cols, grid * grid);
        let start = x.len();
        x.extend_from_slice(&self.cls);
        x.extend_from_slice(&emb);
        for (v, &e) in x[start..].iter_mut().zip(&self.position) {
            *v += e;
        }
        debug_assert_eq!(x.len() - start, (grid * grid + 1) * h);
    }

    /// Attention of every image (each `seq` rows of `qkv`), one task per image, head and block
    /// of query rows: a head is split into as many row blocks as it takes to give every thread
    /// at least two tasks (ViT-tiny's 3 heads on 2 threads would otherwise leave one thread
    /// idle for a third of the time). The rows of a block get the same values as in the whole
    /// head.
    fn attention(&self, qkv: &[f32], images: usize, seq: usize) -> Vec<f32> {
        let h = self.hidden;
        let ones = vec![1u32; seq];
        let heads = self.heads;
        let units = images * heads;
        let blocks = (2 * kernels::team::threads())
            .div_ceil(units)
            .clamp(1, seq.max(1));
        let per = seq.div_ceil(blocks);
        let hd = h / heads;
        let parts: Vec<Vec<f32>> = kernels::team::map(units * blocks, |t| {
            let (unit, b) = (t / blocks, t % blocks);
            let (i, head) = (unit / heads, unit % heads);
            kernels::attention_rows(
                &qkv[i * seq * 3 * h..(i + 1) * seq * 3 * h],
                seq,
                h,
                heads,
                &ones,
                head,
                (b * per).min(seq)..((b + 1) * per).min(seq),
            )
        });
        let mut ctx = vec![0f32; images * seq * h];
        for (t, part) in parts.iter().enumerate() {
            let (unit, b) = (t / blocks, t % blocks);
            let (i, head) = (unit / heads, unit % heads);
            let r0 = i * seq + (b * per).min(seq);
            for (r, p) in part.chunks_exact(hd).enumerate() {
                let o = (r0 + r) * h + head * hd;
                ctx[o..o + hd].copy_from_slice(p);
            }
        }
        ctx
    }

    fn forward_in_team(&self, images: &[PixelValues]) -> Vec<Vec<f32>> {
        let h = self.hidden;
        let seq = (self.image_size / self.patch_size).pow(2) + 1;
        let n = images.len();
        let total = n * seq;
        let mut x = Vec::with_capacity(total * h);
        for image in images {
            self.embed(image, &mut x);
        }
        let normed = |x: &[f32], n: &Norm| {
            let mut a = x.to_vec();
            kernels::add_layer_norm(&mut a, None, &n.gamma, &n.beta, self.eps);
            a
        };
        for l in &self.layers {
            let a = normed(&x, &l.norm1);
            let qkv = l.qkv.forward(&a, total);
            let ctx = self.attention(&qkv, n, seq);
            let o = l.out.forward(&ctx, total);
            x.iter_mut().zip(&o).for_each(|(v, &d)| *v += d);
            let a = normed(&x, &l.norm2);
            let f = l.ff_in.forward_then(&a, total, Some(self.activation()));
            let y = l.ff_out.forward(&f, total);
            x.iter_mut().zip(&y).for_each(|(v, &d)| *v += d);
        }
        // the final layer norm is per token: only the CLS rows are needed
        let mut cls = Vec::with_capacity(n * h);
        for i in 0..n {
            cls.extend_from_slice(&x[i * seq * h..(i * seq + 1) * h]);
        }
        kernels::add_layer_norm(&mut cls, None, &self.norm.gamma, &self.norm.beta, self.eps);
        let logits = self.classifier.forward(&cls, n);
        logits
            .chunks_exact(self.classifier.n())
            .map(<[f32]>::to_vec)
            .collect()
    }
}

impl ImageClassifier for KernelVit {
    fn input_size(&self) -> Option<(usize, usize)> {
        Some((self.image_size, self.image_size))
    }

    fn logits(&self, images: &[PixelValues]) -> Result<Vec<Vec<f32>>, ToolkitError> {
        let s = self.image_size;
        if let Some(p) = images
            .iter()
            .find(|p| (p.height, p.width) != (s, s) || p.data.len() != 3 * s * s)
        {
            return Err(ToolkitError::Internal(format!(
                "a preprocessed image is {}x{} but the model takes {s}x{s}",
                p.width, p.height
            )));
        }
        if images.is_empty() {
            return Ok(Vec::new());
        }
        // one image at a time: stacking a batch's rows made each image slower (ViT-base: 6.2
        // images/s one by one against 5.0 as one stack of 16, `cargo bench --bench vit_forward`)
        Ok(self.team.run(|| {
            images
                .chunks(1)
                .flat_map(|one| self.forward_in_team(one))
                .collect()
        }))
    }
}
