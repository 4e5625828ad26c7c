//! Retrieval recall@K: the share of queries with a relevant candidate among the first K.
//! Ties count against the query (a model that scores everything alike ranks nothing first).

use serde::Serialize;

/// 0-based rank of each query's best relevant candidate: `scores` row-major `[queries,
/// candidates]`, `relevant[q]` the candidates that answer query `q` (none → rank = candidates).
pub fn ranks(scores: &[f32], candidates: usize, relevant: &[Vec<usize>]) -> Vec<usize> {
    relevant
        .iter()
        .enumerate()
        .map(|(q, rel)| {
            let row = &scores[q * candidates..(q + 1) * candidates];
            let Some(best) = rel.iter().map(|&c| row[c]).reduce(f32::max) else {
                return candidates;
            };
            row.iter()
                .enumerate()
                .filter(|(c, s)| **s >= best && !rel.contains(c))
                .count()
        })
        .collect()
}

/// Share of `ranks` below `k`.
pub fn recall_at(ranks: &[usize], k: usize) -> f64 {
    if ranks.is_empty() {
        return 0.0;
    }
    ranks.iter().filter(|&&r| r < k).count() as f64 / ranks.len() as f64
}

/// Recall@1/5/10 in both directions, under the keys `tessera eval retrieval` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recall {
    pub t2i_r1: f64,
    pub t2i_r5: f64,
    pub t2i_r10: f64,
    pub i2t_r1: f64,
    pub i2t_r5: f64,
    pub i2t_r10: f64,
}

impl Recall {
    pub fn from_ranks(t2i: &[usize], i2t: &[usize]) -> Self {
        Self {
            t2i_r1: recall_at(t2i, 1),
            t2i_r5: recall_at(t2i, 5),
            t2i_r10: recall_at(t2i, 10),
            i2t_r1: recall_at(i2t, 1),
            i2t_r5: recall_at(i2t, 5),
            i2t_r10: recall_at(i2t, 10),
        }
    }

    pub fn pairs(&self) -> [(&'static str, f64); 6] {
        [
            ("t2i_r1", self.t2i_r1),
            ("t2i_r5", self.t2i_r5),
            ("t2i_r10", self.t2i_r10),
            ("i2t_r1", self.i2t_r1),
            ("i2t_r5", self.i2t_r5),
            ("i2t_r10", self.i2t_r10),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_and_recall_match_a_hand_computed_case() {
        // Three text queries over four images.
        #[rustfmt::skip]
        let scores = [
            0.9, 0.1, 0.3, 0.2, // query 0 → image 0: rank 0
            0.8, 0.5, 0.7, 0.6, // query 1 → image 1: three above → rank 3
            0.1, 0.2, 0.4, 0.4, // query 2 → image 3: tied with image 2 → rank 1
        ];
        let rel = vec![vec![0], vec![1], vec![3]];
        let r = ranks(&scores, 4, &rel);
        assert_eq!(r, vec![0, 3, 1]);
        assert!((recall_at(&r, 1) - 1.0 / 3.0).abs() < 1e-12);
        assert!((recall_at(&r, 2) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(recall_at(&r, 5), 1.0);
        // An image with two captions: the better-ranked one counts.
        let i2t = ranks(&[0.1, 0.5, 0.9, 0.3], 4, &[vec![0, 3]]);
        assert_eq!(i2t, vec![2]);
        // Constant scores rank nothing first.
        assert_eq!(ranks(&[0.5; 4], 4, &[vec![2]]), vec![3]);
        assert_eq!(ranks(&[0.5; 4], 4, &[vec![]]), vec![4]);
    }

    #[test]
    fn recall_keys_follow_the_ranks() {
        let r = Recall::from_ranks(&[0, 4, 9, 10], &[0, 0]);
        assert_eq!((r.t2i_r1, r.t2i_r5, r.t2i_r10), (0.25, 0.5, 0.75));
        assert_eq!((r.i2t_r1, r.i2t_r5), (1.0, 1.0));
    }
}
