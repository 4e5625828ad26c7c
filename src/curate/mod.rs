//! Dataset curation: deterministic grouped splits, exact and near-duplicate detection, caption
//! and image-size filters, and item edits, deletions and merges. The decisions live here; the
//! rows are read and written through [`crate::store`].

mod dedupe;
mod filter;
mod split;

pub use dedupe::{dedupe, DedupeReport, DupGroup, DupItem, DEFAULT_NEAR};
pub use filter::{filter, FilterOptions, FilterReport};
pub use split::{assign_splits, parse_ratios, split, SplitCount, SplitReport};

use crate::media::StillError;
use crate::store::{MergeReport, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CurateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("bad --ratios {spec:?}: {reason}")]
    BadRatios { spec: String, reason: String },
    #[error("--near {0} is more than the 64 bits a perceptual hash has")]
    NearTooLarge(u32),
    #[error("nothing to filter by: give --min-words, --max-words, --drop-empty or --min-side")]
    NoFilter,
    #[error("--min-words {min} is more than --max-words {max}: every item would go")]
    MinAboveMax { min: usize, max: usize },
    #[error("cannot merge dataset {0:?} into itself")]
    MergeIntoItself(String),
    #[error(
        "the new caption of item #{0} is empty (use `tessera datasets delete` to remove an item)"
    )]
    EmptyCaption(i64),
    #[error("no item ids given")]
    NoIds,
    #[error("image {hash} of item #{item}: {source}")]
    Image {
        item: i64,
        hash: String,
        source: StillError,
    },
}

pub type Result<T> = std::result::Result<T, CurateError>;

/// Replaces the caption of item `id` of `dataset`.
pub fn edit_caption(store: &Store, dataset: &str, id: i64, caption: &str) -> Result<()> {
    let caption = caption.trim();
    if caption.is_empty() {
        return Err(CurateError::EmptyCaption(id));
    }
    Ok(store.set_caption(dataset, id, caption)?)
}

/// Deletes items of `dataset`, all or none (an id that is unknown or of another dataset stops
/// it). Returns how many went.
pub fn delete_items(store: &Store, dataset: &str, ids: &[i64]) -> Result<usize> {
    if ids.is_empty() {
        return Err(CurateError::NoIds);
    }
    let mut ids = ids.to_vec();
    // An id given twice is deleted once, not reported missing the second time.
    ids.sort_unstable();
    ids.dedup();
    Ok(store.delete_items(dataset, &ids)?)
}

/// Copies the items of `src` into `dst` (created if new); items `dst` already has are skipped.
pub fn merge(store: &Store, src: &str, dst: &str) -> Result<MergeReport> {
    if src == dst {
        return Err(CurateError::MergeIntoItself(src.to_string()));
    }
    Ok(store.merge_datasets(src, dst)?)
}

/// Disjoint sets over item indices: which items must stay together.
pub(crate) struct Groups {
    parent: Vec<usize>,
}

impl Groups {
    pub(crate) fn new(n: usize) -> Self {
        Self {
            parent: (0..n).collect(),
        }
    }

    pub(crate) fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    pub(crate) fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            // The smaller index leads, so a group's leader is its first member.
            self.parent[a.max(b)] = a.min(b);
        }
    }

    /// Joins every pair of indices that share a key.
    pub(crate) fn union_by<K: std::hash::Hash + Eq>(&mut self, keys: impl Iterator<Item = K>) {
        let mut first: std::collections::HashMap<K, usize> = std::collections::HashMap::new();
        for (i, k) in keys.enumerate() {
            let leader = *first.entry(k).or_insert(i);
            self.union(leader, i);
        }
    }

    /// The groups, each a list of indices in ascending order, ordered by their first index.
    pub(crate) fn members(&mut self) -> Vec<Vec<usize>> {
        let mut by_leader: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for i in 0..self.parent.len() {
            let leader = self.find(i);
            by_leader.entry(leader).or_default().push(i);
        }
        by_leader.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_join_shared_keys_transitively() {
        let mut g = Groups::new(5);
        g.union_by(["a", "b", "a", "c", "d"].into_iter());
        g.union_by(["x", "y", "z", "y", "w"].into_iter());
        // 0~2 by the first key, 1~3 by the second; 4 alone
        assert_eq!(g.members(), vec![vec![0, 2], vec![1, 3], vec![4]]);
        g.union(2, 3);
        assert_eq!(g.members(), vec![vec![0, 1, 2, 3], vec![4]]);
    }
}
