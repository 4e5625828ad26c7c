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
    pub fn new(b: &mut Builder, name: &str, inp: usize, out: usize) -> Result<Self> {
        Ok(Self {
            weight: b.get(&format!("{name}.weight"), (out, inp), Init::Normal(0.02))?,
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
        Ok(Self {
            attention: Attention {
                query: Linear::new(b, &format!("{name}.attention.self.query"), d, d)?,
                key: Linear::new(b, &format!("{name}.attention.self.key"), d, d)?,
                value: Linear::new(b, &format!("{name}.attention.self.value"), d, d)?,
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
