//! Exact duplicates (the same image blob) and near duplicates (perceptual hashes at most N bits
//! apart: re-encoded, resized or lightly edited copies).

use rayon::prelude::*;

use super::{CurateError, Groups, Result};
use crate::media::{phash_distance, phash_image};
use crate::store::{CurationItem, Store};

/// Default `--near`: bits two 64-bit gradient hashes may differ by and still be one picture.
pub const DEFAULT_NEAR: u32 = 4;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DupItem {
    pub id: i64,
    pub image_hash: String,
    /// The perceptual hash, hex.
    pub phash: String,
    pub source_path: String,
    pub caption: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DupGroup {
    /// "exact" when every item has the same image, else "near".
    pub kind: &'static str,
    /// The item kept by `--drop`: the group's first (lowest id).
    pub keep: i64,
    pub items: Vec<DupItem>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DedupeReport {
    pub dataset: String,
    pub near: u32,
    pub items: usize,
    pub groups: Vec<DupGroup>,
    /// Items beyond the first of each group.
    pub duplicates: usize,
    /// Items deleted (with `--drop`).
    pub dropped: usize,
}

/// Finds the duplicate groups of `dataset` (VQA items only with the same question); with `drop`, deletes all but the first item of each,
/// in one transaction. Near duplicates join transitively (a~b and b~c make one group).
pub fn dedupe(store: &Store, dataset: &str, near: u32, drop: bool) -> Result<DedupeReport> {
    if near > 64 {
        return Err(CurateError::NearTooLarge(near));
    }
    let items = store.curation_items(dataset)?;
    let phashes = perceptual_hashes(store, &items)?;
    // VQA items asking different questions about one image are not duplicates: the question
    // (None for captioned items) is part of what must match.
    fn key(it: &CurationItem) -> (&str, Option<&str>) {
        (it.image_hash.as_str(), it.question.as_deref())
    }
    let mut groups = Groups::new(items.len());
    groups.union_by(items.iter().map(key));
    // One representative per distinct image and question; pairs are compared once each.
    let mut distinct: Vec<usize> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, it) in items.iter().enumerate() {
        if seen.insert(key(it)) {
            distinct.push(i);
        }
    }
    // Only items asking the same question can be duplicates: compare within those buckets.
    let mut by_question: std::collections::BTreeMap<Option<&str>, Vec<usize>> = Default::default();
    for &i in &distinct {
        by_question
            .entry(items[i].question.as_deref())
            .or_default()
            .push(i);
    }
    for bucket in by_question.values() {
        for (n, &a) in bucket.iter().enumerate() {
            for &b in &bucket[n + 1..] {
                if phash_distance(&phashes[a], &phashes[b]) <= near {
                    groups.union(a, b);
                }
            }
        }
    }
    let found: Vec<DupGroup> = groups
        .members()
        .into_iter()
        .filter(|m| m.len() > 1)
        .map(|members| {
            let first = &items[members[0]].image_hash;
            DupGroup {
                kind: if members.iter().all(|&i| &items[i].image_hash == first) {
                    "exact"
                } else {
                    "near"
                },
                keep: items[members[0]].id,
                items: members
                    .iter()
                    .map(|&i| DupItem {
                        id: items[i].id,
                        image_hash: items[i].image_hash.clone(),
                        phash: hex(&phashes[i]),
                        source_path: items[i].source_path.clone(),
                        caption: items[i].caption.clone(),
                    })
                    .collect(),
            }
        })
        .collect();
    let extra: Vec<i64> = found
        .iter()
        .flat_map(|g| g.items.iter().skip(1).map(|i| i.id))
        .collect();
    let dropped = if drop && !extra.is_empty() {
        store.delete_items(dataset, &extra)?
    } else {
        0
    };
    Ok(DedupeReport {
        dataset: dataset.to_string(),
        near,
        items: items.len(),
        duplicates: extra.len(),
        groups: found,
        dropped,
    })
}

/// Each item's perceptual hash, from its image's thumbnail where there is one (small, and the
/// only raster form of an SVG), else from the image itself; each image decoded once.
fn perceptual_hashes(store: &Store, items: &[CurationItem]) -> Result<Vec<Vec<u8>>> {
    let mut by_image: std::collections::HashMap<&str, &CurationItem> = Default::default();
    for it in items {
        by_image.entry(it.image_hash.as_str()).or_insert(it);
    }
    // The connection stays on this thread; the blob directory is all the workers need.
    let blobs = store.blobs().clone();
    let hashed: std::collections::HashMap<&str, Vec<u8>> = by_image
        .into_par_iter()
        .map(|(image, it)| {
            let blob = it.thumb_hash.as_deref().unwrap_or(image);
            let bytes = blobs.get(blob)?;
            let phash = phash_image(&bytes).map_err(|source| CurateError::Image {
                item: it.id,
                hash: blob.to_string(),
                source,
            })?;
            Ok((image, phash))
        })
        .collect::<Result<_>>()?;
    Ok(items
        .iter()
        .map(|it| hashed[it.image_hash.as_str()].clone())
        .collect())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
