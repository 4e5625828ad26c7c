//! Removing items whose caption length or image size is out of bounds.

use super::{CurateError, Result};
use crate::store::{CurationItem, Store};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FilterOptions {
    pub min_words: Option<usize>,
    pub max_words: Option<usize>,
    pub drop_empty: bool,
    /// Smallest allowed shorter side of the image, in pixels.
    pub min_side: Option<u32>,
    /// Report what would go, delete nothing.
    pub dry_run: bool,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct FilterReport {
    pub dataset: String,
    pub dry_run: bool,
    pub items: usize,
    /// Items that go (or, with a dry run, would go); each counted under its first failed check.
    pub removed: usize,
    pub empty: usize,
    pub too_few_words: usize,
    pub too_many_words: usize,
    pub too_small: usize,
    pub ids: Vec<i64>,
}

/// Why an item fails the filters, if it does. Frames without speech count as empty captions;
/// a VQA item without a caption is measured by its question.
fn reject(opts: &FilterOptions, it: &CurationItem) -> Option<Reason> {
    let words = crate::store::caption_words(&it.caption, it.question.as_deref(), it.no_speech);
    if opts.drop_empty && words == 0 {
        return Some(Reason::Empty);
    }
    if opts.min_words.is_some_and(|m| words < m) {
        return Some(Reason::TooFewWords);
    }
    if opts.max_words.is_some_and(|m| words > m) {
        return Some(Reason::TooManyWords);
    }
    // An image of unknown size is kept: nothing says it is too small.
    if let (Some(min), Some(w), Some(h)) = (opts.min_side, it.width, it.height) {
        if w.min(h) < min {
            return Some(Reason::TooSmall);
        }
    }
    None
}

enum Reason {
    Empty,
    TooFewWords,
    TooManyWords,
    TooSmall,
}

/// Removes (or, with `dry_run`, counts) the items of `dataset` that fail any given bound, in one
/// transaction.
pub fn filter(store: &Store, dataset: &str, opts: &FilterOptions) -> Result<FilterReport> {
    if opts.min_words.is_none()
        && opts.max_words.is_none()
        && !opts.drop_empty
        && opts.min_side.is_none()
    {
        return Err(CurateError::NoFilter);
    }
    if let (Some(min), Some(max)) = (opts.min_words, opts.max_words) {
        if min > max {
            return Err(CurateError::MinAboveMax { min, max });
        }
    }
    let items = store.curation_items(dataset)?;
    let mut report = FilterReport {
        dataset: dataset.to_string(),
        dry_run: opts.dry_run,
        items: items.len(),
        ..FilterReport::default()
    };
    for it in &items {
        let Some(reason) = reject(opts, it) else {
            continue;
        };
        *match reason {
            Reason::Empty => &mut report.empty,
            Reason::TooFewWords => &mut report.too_few_words,
            Reason::TooManyWords => &mut report.too_many_words,
            Reason::TooSmall => &mut report.too_small,
        } += 1;
        report.ids.push(it.id);
    }
    report.removed = report.ids.len();
    if !opts.dry_run && !report.ids.is_empty() {
        store.delete_items(dataset, &report.ids)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(caption: &str, no_speech: bool, size: Option<(u32, u32)>) -> CurationItem {
        CurationItem {
            id: 1,
            video_id: None,
            source_path: "/a".into(),
            image_hash: "h".into(),
            caption: caption.into(),
            question: None,
            no_speech,
            width: size.map(|s| s.0),
            height: size.map(|s| s.1),
            thumb_hash: None,
        }
    }

    #[test]
    fn no_speech_frames_count_as_empty_and_unknown_sizes_are_kept() {
        let empty = FilterOptions {
            drop_empty: true,
            ..FilterOptions::default()
        };
        assert!(reject(&empty, &item("words here", true, None)).is_some());
        assert!(reject(&empty, &item("  ", false, None)).is_some());
        assert!(reject(&empty, &item("words here", false, None)).is_none());
        let vqa = CurationItem {
            question: Some("what colour is it".into()),
            ..item("", false, None)
        };
        assert!(reject(&empty, &vqa).is_none(), "a question is not empty");
        let long = FilterOptions {
            max_words: Some(3),
            ..FilterOptions::default()
        };
        assert!(
            reject(&long, &vqa).is_some(),
            "the question's 4 words count"
        );
        let small = FilterOptions {
            min_side: Some(100),
            ..FilterOptions::default()
        };
        assert!(reject(&small, &item("a", false, None)).is_none());
        assert!(reject(&small, &item("a", false, Some((300, 99)))).is_some());
        assert!(reject(&small, &item("a", false, Some((100, 100)))).is_none());
    }
}
