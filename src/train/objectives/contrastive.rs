//! Contrastive consistency: symmetric InfoNCE between the unimodal text and image embeddings of
//! a batch, with a learned temperature (CLIP).

use candle_core::{Tensor, D};

/// `text`, `image`: `[B, E]` unit vectors; `scale`: exp(logit scale). Pair i matches pair i.
pub fn loss(text: &Tensor, image: &Tensor, scale: &Tensor) -> crate::model::Result<Tensor> {
    let b = text.dim(0)?;
    let logits = text.matmul(&image.t()?)?.broadcast_mul(scale)?;
    let targets = Tensor::arange(0u32, b as u32, text.device())?;
    let t2i = candle_nn::loss::cross_entropy(&logits, &targets)?;
    let i2t = candle_nn::loss::cross_entropy(&logits.t()?.contiguous()?, &targets)?;
    Ok(((t2i + i2t)? / 2.0)?)
}

/// The plain cosine similarities `[B, B]` (text rows, image columns), without gradient.
pub fn similarity(text: &Tensor, image: &Tensor) -> crate::model::Result<Vec<Vec<f32>>> {
    Ok(text
        .detach()
        .matmul(&image.detach().t()?)?
        .to_vec2::<f32>()?)
}

/// Share of texts whose most similar image is their own (or the same image), and vice versa.
pub fn recall_at_1(sim: &[Vec<f32>], image_keys: &[String]) -> (f64, f64) {
    let n = sim.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    let argmax = |v: &mut dyn Iterator<Item = f32>| {
        v.enumerate()
            .fold((0, f32::NEG_INFINITY), |best, (i, x)| {
                if x > best.1 {
                    (i, x)
                } else {
                    best
                }
            })
            .0
    };
    let mut t2i = 0;
    let mut i2t = 0;
    for i in 0..n {
        let j = argmax(&mut sim[i].iter().copied());
        if image_keys[j] == image_keys[i] {
            t2i += 1;
        }
        let j = argmax(&mut (0..n).map(|t| sim[t][i]));
        if image_keys[j] == image_keys[i] {
            i2t += 1;
        }
    }
    (t2i as f64 / n as f64, i2t as f64 / n as f64)
}

/// Row-wise softmax of similarities, used to draw hard negatives.
pub fn softmax_rows(x: &Tensor) -> crate::model::Result<Tensor> {
    Ok(candle_nn::ops::softmax(x, D::Minus1)?)
}
