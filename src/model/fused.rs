//! Fused CPU kernels, with hand-written backward passes, for the three element-heavy layers:
//! GELU, layer norm and the (scaled, biased) attention softmax. Composed from candle's basic
//! ops these make ~10 full-size temporaries each and a backward pass several times longer than
//! the forward; fused they take one pass each way and run on every core. On other devices
//! (Metal, CUDA) the composed versions run instead, so only ops with GPU kernels are used
//! there.

use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor, D,
};
use rayon::prelude::*;

use candle_core::cpu::erf::erf_f32;

/// Rows below this many elements are not worth a thread.
const PAR_MIN: usize = 1 << 14;

fn fused(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let (a, b) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("fused op needs a contiguous input".into()))?;
    Ok(&s.as_slice::<f32>()?[a..b])
}

/// Applies `f` to equal chunks of `out` (and the matching chunks of the inputs) on all cores.
fn par_rows(out: &mut [f32], row: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    if out.len() >= PAR_MIN {
        out.par_chunks_mut(row)
            .enumerate()
            .for_each(|(i, o)| f(i, o));
    } else {
        out.chunks_mut(row).enumerate().for_each(|(i, o)| f(i, o));
    }
}

const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
const INV_SQRT_2PI: f32 = 0.398_942_3;

// ---- GELU (erf) ----------------------------------------------------------------------------

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "tessera-gelu"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l)?;
        let mut out = vec![0f32; x.len()];
        par_rows(&mut out, 4096, |i, o| {
            let xs = &x[i * 4096..i * 4096 + o.len()];
            for (o, &v) in o.iter_mut().zip(xs) {
                *o = 0.5 * v * (1.0 + erf_f32(v * SQRT_HALF));
            }
        });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(arg.apply_op2_no_bwd(&grad.contiguous()?, &GeluGrad)?))
    }
}

/// `grad · gelu'(x)`.
struct GeluGrad;

impl CustomOp2 for GeluGrad {
    fn name(&self) -> &'static str {
        "tessera-gelu-grad"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (slice(s1, l1)?, slice(s2, l2)?);
        let mut out = vec![0f32; x.len()];
        par_rows(&mut out, 4096, |i, o| {
            let at = i * 4096;
            for (k, o) in o.iter_mut().enumerate() {
                let v = x[at + k];
                let d =
                    0.5 * (1.0 + erf_f32(v * SQRT_HALF)) + v * INV_SQRT_2PI * (-0.5 * v * v).exp();
                *o = g[at + k] * d;
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Exact (erf) GELU.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    if fused(x) {
        x.contiguous()?.apply_op1(Gelu)
    } else {
        x.gelu_erf()
    }
}

// ---- layer norm ----------------------------------------------------------------------------

struct LayerNormOp {
    eps: f32,
}

fn row_stats(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "tessera-layer-norm"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        let d = w.len();
        let mut out = vec![0f32; x.len()];
        par_rows(&mut out, d, |r, o| {
            let xr = &x[r * d..(r + 1) * d];
            let (mean, rstd) = row_stats(xr, self.eps);
            for k in 0..d {
                o[k] = (xr[k] - mean) * rstd * w[k] + b[k];
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dx = x.apply_op3_no_bwd(w, &grad, &LayerNormGradX { eps: self.eps })?;
        let d = w.dim(0)?;
        let dwb = x.apply_op2_no_bwd(&grad, &LayerNormGradParams { eps: self.eps, d })?;
        Ok((Some(dx), Some(dwb.get(0)?), Some(dwb.get(1)?)))
    }
}

/// `dx = rstd · (ĝ − mean(ĝ) − x̂ · mean(ĝ · x̂))` with `ĝ = g · w`.
struct LayerNormGradX {
    eps: f32,
}

impl CustomOp3 for LayerNormGradX {
    fn name(&self) -> &'static str {
        "tessera-layer-norm-grad-x"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, g) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        let d = w.len();
        let mut out = vec![0f32; x.len()];
        par_rows(&mut out, d, |r, o| {
            let (xr, gr) = (&x[r * d..(r + 1) * d], &g[r * d..(r + 1) * d]);
            let (mean, rstd) = row_stats(xr, self.eps);
            let (mut sg, mut sgx) = (0f32, 0f32);
            for k in 0..d {
                let gh = gr[k] * w[k];
                sg += gh;
                sgx += gh * (xr[k] - mean) * rstd;
            }
            let (mg, mgx) = (sg / d as f32, sgx / d as f32);
            for k in 0..d {
                let xh = (xr[k] - mean) * rstd;
                o[k] = rstd * (gr[k] * w[k] - mg - xh * mgx);
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// `[2, D]`: Σ g·x̂ (weight) and Σ g (bias) over rows.
struct LayerNormGradParams {
    eps: f32,
    d: usize,
}

impl CustomOp2 for LayerNormGradParams {
    fn name(&self) -> &'static str {
        "tessera-layer-norm-grad-params"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (slice(s1, l1)?, slice(s2, l2)?);
        let d = self.d;
        let rows = x.len() / d;
        let chunk = rows.div_ceil(rayon::current_num_threads().max(1)).max(1);
        let partial: Vec<Vec<f32>> = (0..rows)
            .step_by(chunk)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|start| {
                let mut acc = vec![0f32; 2 * d];
                for r in start..(start + chunk).min(rows) {
                    let (xr, gr) = (&x[r * d..(r + 1) * d], &g[r * d..(r + 1) * d]);
                    let (mean, rstd) = row_stats(xr, self.eps);
                    for k in 0..d {
                        acc[k] += gr[k] * (xr[k] - mean) * rstd;
                        acc[d + k] += gr[k];
                    }
                }
                acc
            })
            .collect();
        let mut out = vec![0f32; 2 * d];
        for p in partial {
            out.iter_mut().zip(p).for_each(|(o, v)| *o += v);
        }
        Ok((CpuStorage::F32(out), Shape::from((2, d))))
    }
}

/// Layer norm over the last dim.
pub fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
    if fused(x) {
        return x
            .contiguous()?
            .apply_op3(w, b, LayerNormOp { eps: eps as f32 });
    }
    let mean = x.mean_keepdim(D::Minus1)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    centred
        .broadcast_div(&(var + eps)?.sqrt()?)?
        .broadcast_mul(w)?
        .broadcast_add(b)
}

// ---- attention softmax ---------------------------------------------------------------------

/// `softmax(scale · scores + bias)` over the last dim; scores `[B, H, T, T]`, bias `[B, 1, 1, T]`
/// (padding). The bias is a constant: no gradient flows to it.
struct AttentionSoftmax {
    scale: f32,
}

impl CustomOp2 for AttentionSoftmax {
    fn name(&self) -> &'static str {
        "tessera-attention-softmax"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (s, bias) = (slice(s1, l1)?, slice(s2, l2)?);
        let dims = l1.shape().dims();
        let t = dims[dims.len() - 1];
        let per_batch = s.len() / dims[0];
        let mut out = vec![0f32; s.len()];
        par_rows(&mut out, t, |r, o| {
            let b = r * t / per_batch;
            let (sr, br) = (&s[r * t..(r + 1) * t], &bias[b * t..(b + 1) * t]);
            let mut max = f32::NEG_INFINITY;
            for k in 0..t {
                o[k] = sr[k] * self.scale + br[k];
                max = max.max(o[k]);
            }
            let mut sum = 0f32;
            for v in o.iter_mut() {
                *v = (*v - max).exp();
                sum += *v;
            }
            let inv = 1.0 / sum;
            o.iter_mut().for_each(|v| *v *= inv);
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
    fn bwd(
        &self,
        _s: &Tensor,
        _bias: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let ds = res.apply_op2_no_bwd(&grad.contiguous()?, &SoftmaxGrad { scale: self.scale })?;
        Ok((Some(ds), None))
    }
}

/// `scale · y · (g − Σ g·y)` per row.
struct SoftmaxGrad {
    scale: f32,
}

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "tessera-softmax-grad"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (y, g) = (slice(s1, l1)?, slice(s2, l2)?);
        let t = *l1.shape().dims().last().expect("rank ≥ 1");
        let mut out = vec![0f32; y.len()];
        par_rows(&mut out, t, |r, o| {
            let (yr, gr) = (&y[r * t..(r + 1) * t], &g[r * t..(r + 1) * t]);
            let dot: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
            for k in 0..t {
                o[k] = self.scale * yr[k] * (gr[k] - dot);
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Attention probabilities `softmax(scale · scores + bias)`.
pub fn attention_softmax(scores: &Tensor, bias: &Tensor, scale: f64) -> Result<Tensor> {
    if fused(scores) {
        return scores.contiguous()?.apply_op2(
            &bias.contiguous()?,
            AttentionSoftmax {
                scale: scale as f32,
            },
        );
    }
    let x = (scores * scale)?.broadcast_add(bias)?;
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Each fused op and its backward agree with the composed version (the path GPUs take).
    #[test]
    fn fused_matches_composed_forward_and_backward() {
        let dev = Device::Cpu;
        let wave = |n: usize, k: f32| {
            Tensor::from_iter((0..n).map(|i| ((i as f32 + k) * 0.77).sin() * 2.0), &dev).unwrap()
        };
        let x = Var::from_tensor(&wave(3 * 5 * 8, 0.0).reshape((3, 5, 8)).unwrap()).unwrap();
        let w = Var::from_tensor(&wave(8, 1.0)).unwrap();
        let b = Var::from_tensor(&wave(8, 2.0)).unwrap();
        let r = wave(3 * 5 * 8, 3.0).reshape((3, 5, 8)).unwrap();
        let close = |a: &Tensor, b: &Tensor, what: &str| {
            let d = (a - b)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(d < 1e-4, "{what}: differs by {d}");
        };
        // GELU
        let f = gelu(x.as_tensor()).unwrap();
        let c = x.as_tensor().gelu_erf().unwrap();
        close(&f, &c, "gelu");
        let gf = (f * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let gc = (c * &r).unwrap().sum_all().unwrap().backward().unwrap();
        close(gf.get(&x).unwrap(), gc.get(&x).unwrap(), "gelu grad");
        // layer norm (the composed path is what non-CPU devices run)
        let composed = |x: &Tensor| {
            let mean = x.mean_keepdim(D::Minus1).unwrap();
            let c = x.broadcast_sub(&mean).unwrap();
            let var = c.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
            c.broadcast_div(&(var + 1e-5).unwrap().sqrt().unwrap())
                .unwrap()
                .broadcast_mul(&w)
                .unwrap()
                .broadcast_add(&b)
                .unwrap()
        };
        let f = layer_norm(&x, &w, &b, 1e-5).unwrap();
        let c = composed(&x);
        close(&f, &c, "layer norm");
        let gf = (f * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let gc = (c * &r).unwrap().sum_all().unwrap().backward().unwrap();
        for (v, n) in [(&x, "x"), (&w, "w"), (&b, "b")] {
            close(
                gf.get(v).unwrap(),
                gc.get(v).unwrap(),
                &format!("layer norm grad {n}"),
            );
        }
        // attention softmax with a padding bias
        let s = Var::from_tensor(&wave(2 * 3 * 4 * 4, 5.0).reshape((2, 3, 4, 4)).unwrap()).unwrap();
        let bias = Tensor::new(&[0f32, 0.0, 0.0, -1e4, 0.0, 0.0, -1e4, -1e4], &dev)
            .unwrap()
            .reshape((2, 1, 1, 4))
            .unwrap();
        let rr = wave(2 * 3 * 4 * 4, 6.0).reshape((2, 3, 4, 4)).unwrap();
        let f = attention_softmax(&s, &bias, 0.5).unwrap();
        let x2 = (s.as_tensor() * 0.5).unwrap().broadcast_add(&bias).unwrap();
        let c = candle_nn::ops::softmax(&x2, D::Minus1).unwrap();
        close(&f, &c, "softmax");
        let gf = (f * &rr).unwrap().sum_all().unwrap().backward().unwrap();
        let gc = (c * &rr).unwrap().sum_all().unwrap().backward().unwrap();
        close(gf.get(&s).unwrap(), gc.get(&s).unwrap(), "softmax grad");
    }
}
