//! Image-text matching with hard negatives (ALBEF): for each text an image drawn in proportion
//! to its softmaxed similarity among the batch's other images, and for each image a text drawn
//! the same way; `[CLS]` of the fused pass classifies matched vs. not.

use rand::Rng;

/// Draws, for each row of `sim` (`[B, B]`), a column other than those sharing the row's image,
/// with probability ∝ exp(sim / τ). Falls back to uniform when every weight is zero.
pub fn draw_negatives(
    sim: &[Vec<f32>],
    keys: &[String],
    temperature: f32,
    rng: &mut impl Rng,
) -> Vec<usize> {
    let n = sim.len();
    (0..n)
        .map(|i| {
            let w: Vec<f64> = (0..n)
                .map(|j| {
                    if keys[j] == keys[i] {
                        0.0
                    } else {
                        ((sim[i][j] / temperature) as f64).exp()
                    }
                })
                .collect();
            let total: f64 = w.iter().sum();
            if total.is_nan() || total <= 0.0 || !total.is_finite() {
                let others: Vec<usize> = (0..n).filter(|&j| keys[j] != keys[i]).collect();
                return if others.is_empty() {
                    (i + 1) % n
                } else {
                    others[rng.random_range(0..others.len())]
                };
            }
            let mut r = rng.random::<f64>() * total;
            for (j, wj) in w.iter().enumerate() {
                if *wj > 0.0 {
                    if r < *wj {
                        return j;
                    }
                    r -= wj;
                }
            }
            w.iter().rposition(|x| *x > 0.0).unwrap_or((i + 1) % n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn negatives_never_share_the_image_and_favour_similar_ones() {
        let keys: Vec<String> = ["a", "b", "c", "a"].iter().map(|s| s.to_string()).collect();
        let sim = vec![
            vec![1.0, 0.9, -0.9, 1.0],
            vec![0.9, 1.0, 0.0, 0.9],
            vec![0.0, 0.0, 1.0, 0.0],
            vec![1.0, 0.9, -0.9, 1.0],
        ];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let mut picks_b = 0;
        for _ in 0..200 {
            let neg = draw_negatives(&sim, &keys, 0.1, &mut rng);
            for (i, &j) in neg.iter().enumerate() {
                assert_ne!(keys[i], keys[j]);
            }
            picks_b += (neg[0] == 1) as usize;
        }
        assert!(
            picks_b > 190,
            "the similar image is the hard negative: {picks_b}"
        );
    }
}
