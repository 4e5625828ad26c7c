//! The layers we write ourselves on candle tensors: linear, layer norm, attention, the
//! post-LN transformer block. Only ops with Metal kernels, and every op has a gradient
//! (candle-nn's fused layer-norm and softmax have none).

use candle_core::{DType, Module, Result, Tensor, D};

use super::params::{Builder, Init};

pub struct Linear {
    /// `[out, in]`, as PyTorch and safetensors files store it.
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    /// Weights drawn as BERT's: N(0, 0.02).
    pub fn new(b: &mut Builder, name: &str, inp: usize, out: usize) -> Result<Self> {
        Self::with_std(b, name, inp, out, 0.02)
    }

    pub fn with_std(b: &mut Builder, name: &str, inp: usize, out: usize, std: f64) -> Result<Self> {
        Ok(Self {
            weight: b.get(&format!("{name}.weight"), (out, inp), Init::Normal(std))?,
            bias: Some(b.get(&format!("{name}.bias"), out, Init::Zeros)?),
        })
    }
}

impl Module for Linear {
    /// Any leading dims: folded into one so the matmul is a single GEMM.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let inp = *dims.last().expect("input has a last dim");
        let rows = x.elem_count() / inp;
        let y = x.reshape((rows, inp))?.matmul(&self.weight.t()?)?;
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        let mut out = dims;
        *out.last_mut().unwrap() = y.dim(1)?;
        y.reshape(out)
    }
}

/// Patch pixels `[.., P·P·3]` (row by row) → tokens `[.., D]`. Without cells: one matrix
/// (ViT). With cells of `c`×`c` pixels: every cell of every patch goes through one shared
/// matrix, layer norm and GELU (a convolution with kernel = stride = `c`, as a matmul), and a
/// second matrix makes the token from its cells' features (the hMLP stem of Touvron et al.,
/// "Three things everyone should know about ViTs").
pub struct PatchStem {
    pub cells: Option<(Linear, LayerNorm, usize)>,
    /// The (last) matrix; named `image_embeddings.patch` either way.
    pub patch: Linear,
    patch_size: usize,
}

impl PatchStem {
    /// `cell` = 0: the linear stem. Otherwise `cell` divides `patch_size`.
    pub fn new(
        b: &mut Builder,
        patch_size: usize,
        cell: usize,
        channels: usize,
        d: usize,
        eps: f64,
    ) -> Result<Self> {
        let pd = patch_size * patch_size * 3;
        if cell == 0 {
            return Ok(Self {
                cells: None,
                patch: Linear::new(b, "image_embeddings.patch", pd, d)?,
                patch_size,
            });
        }
        let per_side = patch_size / cell;
        Ok(Self {
            cells: Some((
                Linear::new(b, "image_embeddings.stem.cell", cell * cell * 3, channels)?,
                LayerNorm::new(b, "image_embeddings.stem.LayerNorm", channels, eps)?,
                cell,
            )),
            patch: Linear::new(
                b,
                "image_embeddings.patch",
                per_side * per_side * channels,
                d,
            )?,
            patch_size,
        })
    }
}

impl Module for PatchStem {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let Some((cell_linear, norm, c)) = &self.cells else {
            return self.patch.forward(x);
        };
        let dims = x.dims().to_vec();
        let rows = x.elem_count() / *dims.last().expect("patches have a last dim");
        let k = self.patch_size / c;
        // [rows, P, P, 3] → [rows, cell row, y in cell, cell col, x in cell, 3] → cells major.
        let cells = x
            .reshape((rows, k, *c, k, c * 3))?
            .transpose(2, 3)?
            .contiguous()?
            .reshape((rows * k * k, c * c * 3))?;
        let h = super::fused::gelu(&norm.forward(&cell_linear.forward(&cells)?)?)?;
        let y = self.patch.forward(&h.reshape((rows, ()))?)?;
        let mut out = dims;
        *out.last_mut().unwrap() = y.dim(1)?;
        y.reshape(out)
    }
}

pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps: f64,
}

impl LayerNorm {
    pub fn new(b: &mut Builder, name: &str, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: b.get(&format!("{name}.weight"), dim, Init::Ones)?,
            bias: b.get(&format!("{name}.bias"), dim, Init::Zeros)?,
            eps,
        })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        super::fused::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

/// `[B, T]` of 1 (attend) / 0 (padding) → additive `[B, 1, 1, T]` bias.
pub fn attention_bias(key_mask: &Tensor) -> Result<Tensor> {
    let (b, t) = key_mask.dims2()?;
    ((key_mask.to_dtype(DType::F32)? - 1.0)? * 1e4)?
        .to_dtype(key_mask.dtype())?
        .reshape((b, 1, 1, t))
}

pub struct Attention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub output: Linear,
    pub heads: usize,
}

impl Attention {
    /// `x`: `[B, T, D]`; `bias`: `[B, 1, 1, T]`. Returns the output and, when asked, the
    /// attention of the first token (`[CLS]`) over all tokens, averaged over heads: `[B, T]`.
    pub fn forward(
        &self,
        x: &Tensor,
        bias: &Tensor,
        want_cls: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let (b, t, d) = x.dims3()?;
        let dh = d / self.heads;
        let split = |y: Tensor| -> Result<Tensor> {
            y.reshape((b, t, self.heads, dh))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(self.query.forward(x)?)?;
        let k = split(self.key.forward(x)?)?;
        let v = split(self.value.forward(x)?)?;
        let scores = q.matmul(&k.t()?)?;
        let probs = super::fused::attention_softmax(&scores, bias, 1.0 / (dh as f64).sqrt())?;
        let cls = if want_cls {
            Some(probs.narrow(2, 0, 1)?.squeeze(2)?.mean(1)?)
        } else {
            None
        };
        let ctx = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, t, d))?;
        Ok((self.output.forward(&ctx)?, cls))
    }
}

/// A BERT layer: attention, add & norm, feed-forward (erf GELU), add & norm. Parameter names
/// follow BERT's, so MiniLM's weights map one to one.
pub struct Block {
    pub attention: Attention,
    pub attention_norm: LayerNorm,
    pub intermediate: Linear,
    pub output: Linear,
    pub output_norm: LayerNorm,
}

impl Block {
    pub fn new(
        b: &mut Builder,
        name: &str,
        d: usize,
        heads: usize,
        ff: usize,
        eps: f64,
    ) -> Result<Self> {
        // Query, key and value are drawn as one [3D, D] Xavier matrix (PyTorch's attention
        // default): std √(2 / 4D), 0.0625 at D = 128. BERT's 0.02 makes a narrow model's first
        // attention logits ten times flatter, and it learns where to look more slowly
        // (easy-VQA from scratch, models/easyvqa.toml: test accuracy about 91 % with 0.02,
        // 99.35 % this way).
        let qkv_std = (2.0 / (4 * d) as f64).sqrt();
        let qkv = |b: &mut Builder, part: &str| {
            Linear::with_std(b, &format!("{name}.attention.self.{part}"), d, d, qkv_std)
        };
        Ok(Self {
            attention: Attention {
                query: qkv(b, "query")?,
                key: qkv(b, "key")?,
                value: qkv(b, "value")?,
                output: Linear::new(b, &format!("{name}.attention.output.dense"), d, d)?,
                heads,
            },
            attention_norm: LayerNorm::new(
                b,
                &format!("{name}.attention.output.LayerNorm"),
                d,
                eps,
            )?,
            intermediate: Linear::new(b, &format!("{name}.intermediate.dense"), d, ff)?,
            output: Linear::new(b, &format!("{name}.output.dense"), ff, d)?,
            output_norm: LayerNorm::new(b, &format!("{name}.output.LayerNorm"), d, eps)?,
        })
    }

    pub fn forward(
        &self,
        x: &Tensor,
        bias: &Tensor,
        want_cls: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let (a, cls) = self.attention.forward(x, bias, want_cls)?;
        let x = self.attention_norm.forward(&(x + a)?)?;
        let h = super::fused::gelu(&self.intermediate.forward(&x)?)?;
        let x = self
            .output_norm
            .forward(&(&x + self.output.forward(&h)?)?)?;
        Ok((x, cls))
    }
}

/// Rows `idx` of a `[N, D]` table (a gather that back-propagates as an index-add).
pub fn rows(table: &Tensor, idx: &Tensor) -> Result<Tensor> {
    table.index_select(idx, 0)
}

/// L2-normalises the last dim.
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let n = (x.sqr()?.sum_keepdim(D::Minus1)? + 1e-12)?.sqrt()?;
    x.broadcast_div(&n)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    /// Query, key and value start as one Xavier-initialised [3D, D] matrix would (std √(2/4D));
    /// the other matrices as BERT's (0.02).
    #[test]
    fn attention_projections_start_with_xavier_spread() -> Result<()> {
        let dev = Device::Cpu;
        let d = 128;
        let mut b = Builder::fresh(3, DType::F32, &dev);
        let block = Block::new(&mut b, "l", d, 4, 4 * d, 1e-12)?;
        let std = |t: &Tensor| -> Result<f64> {
            let v = t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
            Ok(crate::eval::table::mean_std(&v).std)
        };
        let want = (2.0 / (4 * d) as f64).sqrt();
        let a = &block.attention;
        for w in [&a.query.weight, &a.key.weight, &a.value.weight] {
            let s = std(w)?;
            assert!((s - want).abs() < 0.05 * want, "std {s}, want {want}");
        }
        let s = std(&a.output.weight)?;
        assert!((s - 0.02).abs() < 0.001, "output std {s}");
        Ok(())
    }

    /// The cell stem embeds exactly the pixels of each cell, cells in row-major order: the
    /// reshapes are checked against cells gathered by hand.
    #[test]
    fn stem_cells_are_the_patch_pixels_of_each_cell() -> Result<()> {
        let dev = Device::Cpu;
        let (p, c, ch, d, rows) = (8, 4, 5, 6, 3);
        let mut b = Builder::fresh(7, DType::F32, &dev);
        let stem = PatchStem::new(&mut b, p, c, ch, d, 1e-12)?;
        let pd = p * p * 3;
        let pixels: Vec<f32> = (0..rows * pd)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let x = Tensor::from_vec(pixels.clone(), (1, rows, pd), &dev)?;
        let got = stem.forward(&x)?;
        assert_eq!(got.dims(), &[1, rows, d]);

        let k = p / c;
        let mut cells = Vec::new();
        for r in 0..rows {
            for cy in 0..k {
                for cx in 0..k {
                    for y in 0..c {
                        for xx in 0..c {
                            let at = r * pd + ((cy * c + y) * p + cx * c + xx) * 3;
                            cells.extend_from_slice(&pixels[at..at + 3]);
                        }
                    }
                }
            }
        }
        let cells = Tensor::from_vec(cells, (rows * k * k, c * c * 3), &dev)?;
        let (lin, norm, _) = stem.cells.as_ref().unwrap();
        let h = super::super::fused::gelu(&norm.forward(&lin.forward(&cells)?)?)?;
        let want = stem.patch.forward(&h.reshape((rows, k * k * ch))?)?;
        let diff = (got.reshape((rows, d))? - want)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(
            diff < 1e-6,
            "stem differs from hand-gathered cells by {diff}"
        );

        // Training reaches the cell matrix through the reshapes.
        let grads = got.sqr()?.sum_all()?.backward()?;
        let cell = &b.vars["image_embeddings.stem.cell.weight"];
        let g = grads
            .get(cell.as_tensor())
            .expect("cell weight has a gradient");
        assert!(g.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
        Ok(())
    }
}
