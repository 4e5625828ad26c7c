//! What a dataset holds, in numbers: items, images, caption lengths, splits and sources.

use rusqlite::params;

use super::{Result, Store, FLAG_NO_SPEECH};

/// Caption-length buckets in words, as (lowest, highest) inclusive; `None` is open-ended.
/// Fixed, so the histograms of two datasets line up.
pub const CAPTION_WORD_BUCKETS: [(usize, Option<usize>); 6] = [
    (0, Some(0)),
    (1, Some(4)),
    (5, Some(9)),
    (10, Some(19)),
    (20, Some(49)),
    (50, None),
];

/// Source paths listed in [`DatasetStats::top_sources`].
const TOP_SOURCES: i64 = 10;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WordBucket {
    /// "0", "1-4", …, "50+".
    pub words: String,
    pub items: i64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SplitCount {
    /// `None`: items without a split.
    pub split: Option<String>,
    pub items: i64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SourceCount {
    pub path: String,
    pub video: bool,
    pub items: i64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DatasetStats {
    pub dataset: String,
    pub items: i64,
    pub distinct_images: i64,
    pub no_speech_items: i64,
    pub caption_words: Vec<WordBucket>,
    pub caption_words_mean: f64,
    pub caption_words_max: usize,
    /// Largest first; items without a split as `null`.
    pub splits: Vec<SplitCount>,
    pub videos: i64,
    pub video_items: i64,
    /// Distinct source files (images, shard members) of imported items.
    pub files: i64,
    pub file_items: i64,
    /// The sources with the most items, most first.
    pub top_sources: Vec<SourceCount>,
}

fn bucket_label(lo: usize, hi: Option<usize>) -> String {
    match hi {
        Some(h) if h == lo => lo.to_string(),
        Some(h) => format!("{lo}-{h}"),
        None => format!("{lo}+"),
    }
}

impl Store {
    pub fn dataset_stats(&self, dataset: &str) -> Result<DatasetStats> {
        let id = self.dataset_id(dataset)?;
        let (items, distinct_images, no_speech_items, videos, video_items, files, file_items) =
            self.conn.query_row(
                "SELECT count(*), count(DISTINCT image_hash), coalesce(sum((flags & ?2) != 0), 0),
                    count(DISTINCT video_id), count(video_id),
                    count(DISTINCT CASE WHEN video_id IS NULL THEN source_path END),
                    coalesce(sum(video_id IS NULL), 0)
                 FROM items WHERE dataset_id = ?1",
                params![id, FLAG_NO_SPEECH],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                },
            )?;

        // Words are counted here rather than in SQL, which has no notion of whitespace runs.
        let mut counts = [0i64; CAPTION_WORD_BUCKETS.len()];
        let (mut total_words, mut max_words) = (0usize, 0usize);
        let mut stmt = self
            .conn
            .prepare("SELECT caption FROM items WHERE dataset_id = ?1")?;
        let mut rows = stmt.query([id])?;
        while let Some(r) = rows.next()? {
            let n = r
                .get_ref(0)?
                .as_str()
                .map_err(rusqlite::Error::from)?
                .split_whitespace()
                .count();
            total_words += n;
            max_words = max_words.max(n);
            let b = CAPTION_WORD_BUCKETS
                .iter()
                .position(|&(lo, hi)| n >= lo && hi.is_none_or(|h| n <= h))
                .expect("buckets cover every length");
            counts[b] += 1;
        }
        let caption_words = CAPTION_WORD_BUCKETS
            .iter()
            .zip(counts)
            .map(|(&(lo, hi), items)| WordBucket {
                words: bucket_label(lo, hi),
                items,
            })
            .collect();

        let mut stmt = self.conn.prepare(
            "SELECT split, count(*) AS n FROM items WHERE dataset_id = ?1
             GROUP BY split ORDER BY n DESC, split",
        )?;
        let splits = stmt
            .query_map([id], |r| {
                Ok(SplitCount {
                    split: r.get(0)?,
                    items: r.get(1)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;

        let mut stmt = self.conn.prepare(
            "SELECT source_path, video_id IS NOT NULL, count(*) AS n FROM items
             WHERE dataset_id = ?1 GROUP BY source_path, video_id IS NOT NULL
             ORDER BY n DESC, source_path LIMIT ?2",
        )?;
        let top_sources = stmt
            .query_map(params![id, TOP_SOURCES], |r| {
                Ok(SourceCount {
                    path: r.get(0)?,
                    video: r.get(1)?,
                    items: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;

        Ok(DatasetStats {
            dataset: dataset.to_string(),
            items,
            distinct_images,
            no_speech_items,
            caption_words,
            caption_words_mean: if items > 0 {
                total_words as f64 / items as f64
            } else {
                0.0
            },
            caption_words_max: max_words,
            splits,
            videos,
            video_items,
            files,
            file_items,
            top_sources,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{ImageBlob, ImportedItem, NewItem};
    use super::*;

    fn blob(store: &Store, bytes: &[u8]) -> ImageBlob {
        ImageBlob {
            hash: store.blobs().put(bytes).unwrap(),
            size: bytes.len() as u64,
            mime: "image/png".into(),
            width: 4,
            height: 4,
            thumb_hash: store.blobs().put(b"thumb").unwrap(),
            thumb_size: 5,
            thumb_width: 4,
            thumb_height: 4,
        }
    }

    #[test]
    fn counts_images_words_splits_and_sources() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ds = store.ensure_dataset("d").unwrap();
        let (a, b) = (blob(&store, b"a"), blob(&store, b"b"));
        let imported =
            |image: &ImageBlob, caption: &str, source: &str, split: Option<&str>| ImportedItem {
                image_hash: image.hash.clone(),
                caption: caption.into(),
                source_path: source.into(),
                split: split.map(Into::into),
                meta_json: None,
                question: None,
            };
        let long = ["word"; 55].join(" ");
        store
            .save_imported_items(
                ds,
                &[a.clone(), b.clone()],
                &[
                    imported(&a, "one two three", "/x/a.png", Some("train")),
                    imported(&a, "one  two three four five", "/x/a.png", Some("train")),
                    imported(&b, &long, "/x/b.png", Some("val")),
                ],
            )
            .unwrap();
        // Two items from one video, one of them without speech.
        let v = store.upsert_video("vid", Path::new("/v.mp4"), 1).unwrap();
        let job = store
            .start_ingest_job(ds, v.id, Path::new("/v.mp4"), "{}")
            .unwrap();
        let frame = |t: f64, caption: &str, no_speech: bool| NewItem {
            image_hash: b.hash.clone(),
            caption: caption.into(),
            context_before: String::new(),
            context_after: String::new(),
            start_s: t,
            end_s: t + 1.0,
            frame_s: t,
            no_speech,
        };
        store
            .save_video_items(
                job.id,
                &[frame(0.0, "", true), frame(2.0, "ten words here", false)],
            )
            .unwrap();

        let s = store.dataset_stats("d").unwrap();
        assert_eq!((s.items, s.distinct_images, s.no_speech_items), (5, 2, 1));
        let hist: Vec<_> = s
            .caption_words
            .iter()
            .map(|b| (b.words.as_str(), b.items))
            .collect();
        assert_eq!(
            hist,
            [
                ("0", 1),
                ("1-4", 2),
                ("5-9", 1),
                ("10-19", 0),
                ("20-49", 0),
                ("50+", 1)
            ]
        );
        assert_eq!(s.caption_words_max, 55);
        assert!((s.caption_words_mean - (3.0 + 5.0 + 55.0 + 0.0 + 3.0) / 5.0).abs() < 1e-9);
        let splits: Vec<_> = s
            .splits
            .iter()
            .map(|c| (c.split.as_deref(), c.items))
            .collect();
        assert_eq!(splits, [(None, 2), (Some("train"), 2), (Some("val"), 1)]);
        assert_eq!(
            (s.videos, s.video_items, s.files, s.file_items),
            (1, 2, 2, 3)
        );
        assert_eq!(
            s.top_sources[0],
            SourceCount {
                path: "/v.mp4".into(),
                video: true,
                items: 2
            }
        );
        assert_eq!(s.top_sources[1].path, "/x/a.png");
        assert_eq!(s.top_sources.len(), 3);
    }

    #[test]
    fn an_empty_dataset_has_zero_counts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.ensure_dataset("e").unwrap();
        let s = store.dataset_stats("e").unwrap();
        assert_eq!((s.items, s.caption_words_mean, s.videos), (0, 0.0, 0));
        assert!(s.caption_words.iter().all(|b| b.items == 0));
        assert!(s.splits.is_empty() && s.top_sources.is_empty());
    }
}
