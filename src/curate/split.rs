//! Deterministic train/val/test splits, grouped by source so that no video (or imported file)
//! and no image straddles two splits.

use super::{CurateError, Groups, Result};
use crate::store::{hash_bytes, CurationItem, Store};

/// How far the ratios may sum from 1.
const SUM_TOLERANCE: f64 = 1e-6;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SplitCount {
    pub name: String,
    pub ratio: f64,
    pub items: usize,
    pub groups: usize,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SplitReport {
    pub dataset: String,
    pub seed: u64,
    pub items: usize,
    /// Sources (videos, files, shared images) kept whole.
    pub groups: usize,
    pub splits: Vec<SplitCount>,
}

/// `train=0.8,val=0.1,test=0.1` → named ratios, in the order given. Names are distinct and
/// non-empty, ratios positive, and they sum to 1.
pub fn parse_ratios(spec: &str) -> Result<Vec<(String, f64)>> {
    let bad = |reason: String| CurateError::BadRatios {
        spec: spec.to_string(),
        reason,
    };
    let mut ratios: Vec<(String, f64)> = Vec::new();
    for part in spec.split(',') {
        let Some((name, value)) = part.split_once('=') else {
            return Err(bad(format!("{part:?} is not NAME=RATIO")));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(bad(format!("{part:?} has no split name")));
        }
        let ratio: f64 = value
            .trim()
            .parse()
            .map_err(|_| bad(format!("{value:?} (for {name}) is not a number")))?;
        if !(ratio > 0.0 && ratio.is_finite()) {
            return Err(bad(format!("the ratio of {name} must be positive")));
        }
        if ratios.iter().any(|(n, _)| n == name) {
            return Err(bad(format!("{name} is named twice")));
        }
        ratios.push((name.to_string(), ratio));
    }
    let sum: f64 = ratios.iter().map(|(_, r)| r).sum();
    if (sum - 1.0).abs() > SUM_TOLERANCE {
        return Err(bad(format!("the ratios sum to {sum}, not 1")));
    }
    Ok(ratios)
}

/// Which split each item goes to. Items of one source (a video, else the imported file) and
/// items showing the same image form a group that goes whole into one split. Groups are put in
/// an order fixed by hashing the seed with the group's source, then laid along [0, 1) by item
/// count: a group goes to the split whose share holds its middle. The same seed and items give
/// the same splits; the shares come out as asked within about one group's size.
pub fn assign_splits(
    items: &[CurationItem],
    seed: u64,
    ratios: &[(String, f64)],
) -> (Vec<(i64, String)>, Vec<SplitCount>) {
    let mut groups = Groups::new(items.len());
    groups.union_by(items.iter().map(source_key));
    groups.union_by(items.iter().map(|it| it.image_hash.as_str()));
    let mut ordered: Vec<(String, Vec<usize>)> = groups
        .members()
        .into_iter()
        .map(|members| {
            // The smallest source key names the group, independent of item ids.
            let key = members
                .iter()
                .map(|&i| source_key(&items[i]))
                .min()
                .expect("a group has members");
            (hash_bytes(format!("{seed}\0{key}").as_bytes()), members)
        })
        .collect();
    ordered.sort();

    let mut counts: Vec<SplitCount> = ratios
        .iter()
        .map(|(name, ratio)| SplitCount {
            name: name.clone(),
            ratio: *ratio,
            items: 0,
            groups: 0,
        })
        .collect();
    let bounds: Vec<f64> = ratios
        .iter()
        .scan(0.0, |acc, (_, r)| {
            *acc += r;
            Some(*acc)
        })
        .collect();
    let total = items.len() as f64;
    let mut before = 0usize;
    let mut assigned = Vec::with_capacity(items.len());
    for (_, members) in ordered {
        let middle = (before as f64 + members.len() as f64 / 2.0) / total;
        let s = bounds
            .iter()
            .position(|b| middle < *b)
            .unwrap_or(bounds.len() - 1);
        counts[s].items += members.len();
        counts[s].groups += 1;
        before += members.len();
        for i in members {
            assigned.push((items[i].id, counts[s].name.clone()));
        }
    }
    assigned.sort();
    (assigned, counts)
}

/// What keeps items together: their video, else the file they were imported from.
fn source_key(item: &CurationItem) -> String {
    match item.video_id {
        Some(v) => format!("video:{v}"),
        None => format!("file:{}", item.source_path),
    }
}

/// Assigns every item of `dataset` a split (see [`assign_splits`]) and stores it.
pub fn split(
    store: &Store,
    dataset: &str,
    seed: u64,
    ratios: &[(String, f64)],
) -> Result<SplitReport> {
    let items = store.curation_items(dataset)?;
    let (assigned, splits) = assign_splits(&items, seed, ratios);
    store.set_splits(dataset, &assigned)?;
    Ok(SplitReport {
        dataset: dataset.to_string(),
        seed,
        items: items.len(),
        groups: splits.iter().map(|s| s.groups).sum(),
        splits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: i64, source: &str, image: &str) -> CurationItem {
        CurationItem {
            id,
            video_id: None,
            source_path: source.into(),
            image_hash: image.into(),
            caption: String::new(),
            question: None,
            no_speech: false,
            width: None,
            height: None,
            thumb_hash: None,
        }
    }

    #[test]
    fn ratios_parse_in_order_and_bad_ones_say_why() {
        assert_eq!(
            parse_ratios("train=0.8, val=0.1,test=0.1").unwrap(),
            vec![
                ("train".to_string(), 0.8),
                ("val".to_string(), 0.1),
                ("test".to_string(), 0.1)
            ]
        );
        for (spec, says) in [
            ("train=0.8,val=0.1", "sum to 0.9"),
            ("train=1.1,val=-0.1", "must be positive"),
            ("train=0.5,train=0.5", "named twice"),
            ("train", "not NAME=RATIO"),
            ("=1", "no split name"),
            ("train=x", "not a number"),
            ("train=0,val=1", "must be positive"),
        ] {
            let e = parse_ratios(spec).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains(spec), "{spec}: {e}");
        }
        // within the tolerance
        assert!(parse_ratios("a=0.3333333,b=0.6666667").is_ok());
    }

    #[test]
    fn shared_images_and_sources_stay_together() {
        // 0 and 1 share a file; 2 shows 1's image from another file; 3 stands alone
        let items = [
            item(1, "/a", "h1"),
            item(2, "/a", "h2"),
            item(3, "/b", "h2"),
            item(4, "/c", "h3"),
        ];
        let ratios = parse_ratios("x=0.5,y=0.5").unwrap();
        for seed in 0..20 {
            let (a, counts) = assign_splits(&items, seed, &ratios);
            assert_eq!(a.len(), 4);
            assert!(a[0].1 == a[1].1 && a[1].1 == a[2].1, "{a:?}");
            assert_eq!(counts.iter().map(|c| c.groups).sum::<usize>(), 2);
        }
    }
}
