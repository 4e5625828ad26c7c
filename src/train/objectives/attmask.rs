//! Attention-guided masking (AttMask): hide the words and patches the `[CLS]` token attends to
//! most in a no-grad pass of the teacher. "high" hides the top ones; "hint" hides the top ones
//! but one `hint_ratio` share of them stays visible, replaced by random others, so the ratio holds.

use rand::seq::SliceRandom;
use rand::Rng;

use crate::model::config::AttMaskMode;

/// Chooses `k` of `candidates` (positions) by their `attention` (indexed by position).
pub fn choose(
    candidates: &[usize],
    attention: &[f32],
    k: usize,
    mode: AttMaskMode,
    hint_ratio: f64,
    rng: &mut impl Rng,
) -> Vec<usize> {
    let mut ranked = candidates.to_vec();
    // Highest attention first; ties by position so the choice is deterministic.
    ranked.sort_by(|&a, &b| attention[b].total_cmp(&attention[a]).then(a.cmp(&b)));
    let k = k.min(ranked.len());
    let mut hidden: Vec<usize> = ranked[..k].to_vec();
    if mode == AttMaskMode::Hint && k > 0 {
        let hints = ((k as f64) * hint_ratio).round() as usize;
        let rest = &ranked[k..];
        let hints = hints.min(rest.len());
        if hints > 0 {
            hidden.shuffle(rng);
            hidden.truncate(k - hints);
            let mut others = rest.to_vec();
            others.shuffle(rng);
            hidden.extend_from_slice(&others[..hints]);
        }
    }
    hidden.sort_unstable();
    hidden
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn high_hides_the_most_attended() {
        let att = [0.0, 0.5, 0.1, 0.9, 0.3, 0.7];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let h = choose(&[1, 2, 3, 4, 5], &att, 2, AttMaskMode::High, 0.0, &mut rng);
        assert_eq!(h, vec![3, 5]);
    }

    #[test]
    fn hint_keeps_some_top_ones_visible_and_the_count() {
        let att: Vec<f32> = (0..100).map(|i| i as f32).collect();
        let cand: Vec<usize> = (0..100).collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let h = choose(&cand, &att, 50, AttMaskMode::Hint, 0.2, &mut rng);
        assert_eq!(h.len(), 50);
        let top = h.iter().filter(|&&p| p >= 50).count();
        assert_eq!(top, 40, "10 of the top 50 stay visible as hints");
    }
}
