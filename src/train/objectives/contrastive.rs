//! Contrastive consistency: symmetric InfoNCE between the unimodal text and image embeddings of
//! a batch, with a learned temperature (CLIP).

use candle_core::{Tensor, D};

/// `text`, `image`: `[B, E]` unit vectors; `scale`: exp(logit scale); `alike`: `[B][B]`, which
/// pairs match (symmetric, true on the diagonal — `objectives::alike_pairs`). Each row's target
/// spreads evenly over its matches, so a twin caption in the batch is not a negative.
pub fn loss(
    text: &Tensor,
    image: &Tensor,
    scale: &Tensor,
    alike: &[Vec<bool>],
) -> crate::model::Result<Tensor> {
    let b = text.dim(0)?;
    let logits = text.matmul(&image.t()?)?.broadcast_mul(scale)?;
    let targets: Vec<f32> = alike
        .iter()
        .flat_map(|row| {
            let n = row.iter().filter(|&&m| m).count().max(1) as f32;
            row.iter().map(move |&m| if m { 1.0 / n } else { 0.0 })
        })
        .collect();
    let targets = Tensor::from_vec(targets, (b, b), text.device())?;
    let soft_ce = |logits: &Tensor| -> crate::model::Result<Tensor> {
        let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
        Ok(((logp * &targets)?.sum_all()? / -(b as f64))?)
    };
    let t2i = soft_ce(&logits)?;
    let i2t = soft_ce(&logits.t()?.contiguous()?)?;
    Ok(((t2i + i2t)? / 2.0)?)
}

/// The plain cosine similarities `[B, B]` (text rows, image columns), without gradient.
pub fn similarity(text: &Tensor, image: &Tensor) -> crate::model::Result<Vec<Vec<f32>>> {
    Ok(text
        .detach()
        .matmul(&image.detach().t()?)?
        .to_vec2::<f32>()?)
}

/// Share of texts whose most similar image is alike (`alike[t][i]`: the same image or the same
/// caption, see `objectives::alike_pairs`), and vice versa. A twin's image is as right an answer
/// as its own: that is what the soft-target loss optimises.
pub fn recall_at_1(sim: &[Vec<f32>], alike: &[Vec<bool>]) -> (f64, f64) {
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
        if alike[i][argmax(&mut sim[i].iter().copied())] {
            t2i += 1;
        }
        if alike[argmax(&mut (0..n).map(|t| sim[t][i]))][i] {
            i2t += 1;
        }
    }
    (t2i as f64 / n as f64, i2t as f64 / n as f64)
}

/// Row-wise softmax of similarities, used to draw hard negatives.
pub fn softmax_rows(x: &Tensor) -> crate::model::Result<Tensor> {
    Ok(candle_nn::ops::softmax(x, D::Minus1)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn unit_rows(rows: &[[f32; 2]]) -> Tensor {
        Tensor::from_vec(rows.concat(), (rows.len(), 2), &Device::Cpu).unwrap()
    }

    #[test]
    fn without_twins_it_is_clip_cross_entropy_and_twins_share_the_target() {
        let dev = Device::Cpu;
        let scale = Tensor::new(10f32, &dev).unwrap();
        let text = unit_rows(&[[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]);
        let image = unit_rows(&[[0.8, 0.6], [0.6, 0.8], [0.0, 1.0]]);
        let eye: Vec<Vec<bool>> = (0..3).map(|i| (0..3).map(|j| i == j).collect()).collect();
        let ours = loss(&text, &image, &scale, &eye)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let logits = (text.matmul(&image.t().unwrap()).unwrap() * 10.0).unwrap();
        let t = Tensor::new(&[0u32, 1, 2], &dev).unwrap();
        let clip = ((candle_nn::loss::cross_entropy(&logits, &t).unwrap()
            + candle_nn::loss::cross_entropy(&logits.t().unwrap().contiguous().unwrap(), &t)
                .unwrap())
        .unwrap()
            / 2.0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((ours - clip).abs() < 1e-5, "{ours} vs {clip}");

        // Pairs 0 and 2 are twins: each of their rows and columns aims half at each of them.
        let t = [[1.0f32, 0.0], [0.6, 0.8], [0.8, 0.6]];
        let i = [[0.0f32, 1.0], [0.8, 0.6], [1.0, 0.0]];
        let alike = vec![
            vec![true, false, true],
            vec![false, true, false],
            vec![true, false, true],
        ];
        let ours = loss(&unit_rows(&t), &unit_rows(&i), &scale, &alike)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let logit = |a: usize, b: usize| 10.0 * (t[a][0] * i[b][0] + t[a][1] * i[b][1]);
        let soft_ce = |row: &dyn Fn(usize) -> f32, k: usize| {
            let lse = (0..3).map(|j| row(j).exp()).sum::<f32>().ln();
            let want: Vec<usize> = (0..3).filter(|&j| alike[k][j]).collect();
            want.iter().map(|&j| lse - row(j)).sum::<f32>() / want.len() as f32
        };
        let t2i: f32 = (0..3).map(|a| soft_ce(&|b| logit(a, b), a)).sum::<f32>() / 3.0;
        let i2t: f32 = (0..3).map(|b| soft_ce(&|a| logit(a, b), b)).sum::<f32>() / 3.0;
        let by_hand = (t2i + i2t) / 2.0;
        assert!((ours - by_hand).abs() < 1e-4, "{ours} vs {by_hand}");
        // Without the twins it would be a different loss: the pairing matters.
        let apart = loss(&unit_rows(&t), &unit_rows(&i), &scale, &eye)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((apart - by_hand).abs() > 0.5, "{apart} vs {by_hand}");
    }

    #[test]
    fn recall_at_1_counts_a_twin_as_a_hit_and_a_stranger_as_a_miss() {
        // Text 0's best image is 2, its twin; text 1's best is 0, a stranger; text 2 finds itself.
        // Image 0's best text is 1 (a miss), image 1's is 1, image 2's is 0 (its twin).
        let sim = vec![
            vec![0.1f32, 0.0, 0.9],
            vec![0.8, 0.7, 0.0],
            vec![0.0, 0.2, 0.5],
        ];
        let alike = vec![
            vec![true, false, true],
            vec![false, true, false],
            vec![true, false, true],
        ];
        let (t2i, i2t) = recall_at_1(&sim, &alike);
        assert!((t2i - 2.0 / 3.0).abs() < 1e-12, "{t2i}");
        assert!((i2t - 2.0 / 3.0).abs() < 1e-12, "{i2t}");
        // Only the same image counts when there are no twins.
        let eye: Vec<Vec<bool>> = (0..3).map(|a| (0..3).map(|b| a == b).collect()).collect();
        assert_eq!(recall_at_1(&sim, &eye), (1.0 / 3.0, 1.0 / 3.0));
        assert_eq!(recall_at_1(&[], &[]), (0.0, 0.0));
    }
}
