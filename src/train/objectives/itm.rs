//! Image-text matching with hard negatives (ALBEF): for each text an image drawn in proportion
//! to its softmaxed similarity among the batch's other images, and for each image a text drawn
//! the same way; `[CLS]` of the fused pass classifies matched vs. not.

use rand::Rng;

/// Draws, for each row of `sim` (`[B, B]`), a column not `alike` the row (same image or same
/// caption: `objectives::alike_pairs`), with probability ∝ exp(sim / τ) — uniform for τ = ∞.
/// Falls back to uniform when every weight is zero.
pub fn draw_negatives(
    sim: &[Vec<f32>],
    alike: &[Vec<bool>],
    temperature: f32,
    rng: &mut impl Rng,
) -> Vec<usize> {
    let n = sim.len();
    (0..n)
        .map(|i| {
            let w: Vec<f64> = (0..n)
                .map(|j| {
                    if alike[i][j] {
                        0.0
                    } else {
                        ((sim[i][j] / temperature) as f64).exp()
                    }
                })
                .collect();
            let total: f64 = w.iter().sum();
            if total.is_nan() || total <= 0.0 || !total.is_finite() {
                let others: Vec<usize> = (0..n).filter(|&j| !alike[i][j]).collect();
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
    fn negatives_are_never_alike_and_favour_similar_ones() {
        // Pairs 0 and 3 share an image; pairs 1 and 4 say the same words.
        let keys = ["a", "b", "c", "a", "d"];
        let words = [0, 1, 2, 3, 1];
        let alike: Vec<Vec<bool>> = (0..5)
            .map(|i| {
                (0..5)
                    .map(|j| keys[i] == keys[j] || words[i] == words[j])
                    .collect()
            })
            .collect();
        let sim = vec![
            vec![1.0, 0.9, -0.9, 1.0, 0.0],
            vec![0.9, 1.0, 0.0, 0.9, 1.0],
            vec![0.0, 0.0, 1.0, 0.0, 0.0],
            vec![1.0, 0.9, -0.9, 1.0, 0.0],
            vec![0.0, 1.0, 0.0, 0.0, 1.0],
        ];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let mut picks_b = 0;
        for _ in 0..200 {
            let neg = draw_negatives(&sim, &alike, 0.1, &mut rng);
            for (i, &j) in neg.iter().enumerate() {
                assert!(!alike[i][j], "{i} drew its twin {j}");
            }
            picks_b += (neg[0] == 1) as usize;
        }
        assert!(
            picks_b > 190,
            "the similar image is the hard negative: {picks_b}"
        );
        // At an infinite temperature pair 0 draws 1, 2 and 4 alike.
        let mut counts = [0usize; 5];
        for _ in 0..600 {
            counts[draw_negatives(&sim, &alike, f32::INFINITY, &mut rng)[0]] += 1;
        }
        assert_eq!(counts[0] + counts[3], 0);
        for j in [1, 2, 4] {
            assert!((150..250).contains(&counts[j]), "{counts:?}");
        }
    }
}
