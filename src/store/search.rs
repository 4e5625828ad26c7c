//! Reading items back: full-text search over captions and their context (FTS5, ranked by
//! bm25), and a streaming walk over a dataset's items for exporters.

use rusqlite::{params, ErrorCode, OptionalExtension};

use super::{item_from_row, ItemRow, Result, Store, StoreError, ITEM_COLUMNS};

/// Column weights for bm25 (caption, context before, context after, VQA question): a word in
/// the caption says more about the image than one in the speech around it; a question's words
/// weigh as a caption's.
const BM25_WEIGHTS: &str = "4.0, 1.0, 1.0, 4.0";

#[derive(Debug, Clone, PartialEq)]
pub struct SearchOptions {
    pub limit: usize,
    /// Put around each matched word in the snippet.
    pub open: String,
    pub close: String,
    /// Words in a snippet (FTS5 allows at most 64).
    pub snippet_words: usize,
}

impl Default for SearchOptions {
    fn default() -> Self {
        Self {
            limit: 20,
            open: "[".into(),
            close: "]".into(),
            snippet_words: 16,
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SearchHit {
    /// Relevance (bm25, negated): higher is better.
    pub score: f64,
    /// The best-matching stretch of caption or context, matches marked.
    pub snippet: String,
    pub item: ItemRow,
}

/// A MATCH expression the FTS5 parser refused. Only the query text can cause SQLITE_ERROR
/// here: the statements around it are fixed.
fn bad_query(query: &str, e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, Some(msg)) if f.code == ErrorCode::Unknown => {
            StoreError::BadSearchQuery {
                query: query.to_string(),
                reason: msg.trim_start_matches("fts5: ").to_string(),
            }
        }
        other => StoreError::Sqlite(other),
    }
}

/// The full-text index of a bulk insert, written once at its end (migration V9): call before
/// inserting, inside the transaction, and pass what it returns to [`index_deferred`] before
/// committing. New rows get ids above today's largest, which it returns.
pub(super) fn defer_indexing(tx: &rusqlite::Transaction<'_>) -> Result<i64> {
    tx.execute("INSERT INTO items_fts_deferred(pending) VALUES (1)", [])?;
    Ok(tx.query_row("SELECT coalesce(max(id), 0) FROM items", [], |r| r.get(0))?)
}

/// Indexes the items inserted since [`defer_indexing`] returned `last_before`, in one statement,
/// and lets the trigger index rows again.
pub(super) fn index_deferred(tx: &rusqlite::Transaction<'_>, last_before: i64) -> Result<()> {
    tx.execute(
        "INSERT INTO items_fts(rowid, caption, context_before, context_after, question)
         SELECT id, caption, context_before, context_after, question FROM items WHERE id > ?1",
        [last_before],
    )?;
    tx.execute("DELETE FROM items_fts_deferred", [])?;
    Ok(())
}

impl Store {
    /// Items of `dataset` matching `query` (FTS5 syntax) in caption or context, best first.
    pub fn search_items(
        &self,
        dataset: &str,
        query: &str,
        opts: &SearchOptions,
    ) -> Result<Vec<SearchHit>> {
        let dataset_id = self.dataset_id(dataset)?;
        if query.trim().is_empty() {
            return Err(StoreError::BadSearchQuery {
                query: query.to_string(),
                reason: "empty query".into(),
            });
        }
        // Rank first and fetch snippets for the top hits only: a snippet costs far more than
        // a score, and a common word can match most of the dataset. Ordering by FTS5's own
        // `rank` (weighted through `rank MATCH`) lets it hand rows over best first, so the
        // dataset check stops after `limit` hits instead of looking up every match.
        let ranked: Vec<(i64, f64)> = {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT items_fts.rowid, items_fts.rank
                 FROM items_fts JOIN items ON items.id = items_fts.rowid
                 WHERE items_fts MATCH ?1 AND items_fts.rank MATCH 'bm25({BM25_WEIGHTS})'
                    AND items.dataset_id = ?2
                 ORDER BY items_fts.rank LIMIT ?3"
            ))?;
            let rows = stmt
                .query_map(params![query, dataset_id, opts.limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(|e| bad_query(query, e))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(|e| bad_query(query, e))?
        };
        let mut snippet = self.conn.prepare_cached(
            "SELECT snippet(items_fts, -1, ?2, ?3, '…', ?4) FROM items_fts
             WHERE items_fts MATCH ?1 AND rowid = ?5",
        )?;
        let mut item = self
            .conn
            .prepare_cached(&format!("SELECT {ITEM_COLUMNS} FROM items WHERE id = ?1"))?;
        let words = opts.snippet_words.clamp(1, 64) as i64;
        let mut hits = Vec::with_capacity(ranked.len());
        for (id, bm25) in ranked {
            let snippet: Option<String> = snippet
                .query_row(params![query, opts.open, opts.close, words, id], |r| {
                    r.get(0)
                })
                .optional()?;
            hits.push(SearchHit {
                score: -bm25,
                snippet: snippet.unwrap_or_default(),
                item: item.query_row([id], item_from_row)?,
            });
        }
        Ok(hits)
    }

    /// How many items `dataset` has (in `split`, when given).
    pub fn count_items(&self, dataset: &str, split: Option<&str>) -> Result<usize> {
        let dataset_id = self.dataset_id(dataset)?;
        Ok(self.conn.query_row(
            "SELECT count(*) FROM items WHERE dataset_id = ?1 AND (?2 IS NULL OR split = ?2)",
            params![dataset_id, split],
            |r| r.get::<_, i64>(0),
        )? as usize)
    }

    /// Calls `f` with each item of `dataset` (in `split`, when given) and its image's MIME type,
    /// in the order of [`Store::items`], without holding them all in memory.
    pub fn each_item<E: From<StoreError>>(
        &self,
        dataset: &str,
        split: Option<&str>,
        mut f: impl FnMut(ItemRow, String) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let dataset_id = self.dataset_id(dataset)?;
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {ITEM_COLUMNS},
                    (SELECT mime FROM blobs WHERE blobs.hash = items.image_hash) AS mime
                 FROM items WHERE dataset_id = ?1 AND (?2 IS NULL OR split = ?2)
                 ORDER BY video_id, start_s, id"
            ))
            .map_err(StoreError::from)?;
        let mut rows = stmt
            .query(params![dataset_id, split])
            .map_err(StoreError::from)?;
        while let Some(r) = rows.next().map_err(StoreError::from)? {
            let item = item_from_row(r).map_err(StoreError::from)?;
            let mime: Option<String> = r.get("mime").map_err(StoreError::from)?;
            f(item, mime.unwrap_or_default())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{migrations, ImageBlob, ImportedItem};
    use super::*;

    fn image(store: &Store) -> ImageBlob {
        ImageBlob {
            hash: store.blobs().put(b"png bytes").unwrap(),
            size: 9,
            mime: "image/png".into(),
            width: 4,
            height: 4,
            thumb_hash: store.blobs().put(b"thumb").unwrap(),
            thumb_size: 9,
            thumb_width: 4,
            thumb_height: 4,
        }
    }

    fn add(store: &Store, dataset: &str, captions: &[&str]) {
        let ds = store.ensure_dataset(dataset).unwrap();
        let im = image(store);
        let items: Vec<_> = captions
            .iter()
            .enumerate()
            .map(|(i, c)| ImportedItem {
                image_hash: im.hash.clone(),
                caption: c.to_string(),
                source_path: format!("/data/{i}.png"),
                split: None,
                meta_json: None,
                question: None,
            })
            .collect();
        store.save_imported_items(ds, &[im], &items).unwrap();
    }

    fn captions(hits: &[SearchHit]) -> Vec<&str> {
        hits.iter().map(|h| h.item.caption.as_str()).collect()
    }

    fn search(store: &Store, q: &str) -> Result<Vec<SearchHit>> {
        store.search_items("d", q, &SearchOptions::default())
    }

    #[test]
    fn vqa_questions_are_searchable() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ds = store.ensure_dataset("d").unwrap();
        let im = image(&store);
        let q = |i: usize, text: &str| ImportedItem {
            image_hash: im.hash.clone(),
            caption: String::new(),
            source_path: format!("/q/{i}"),
            split: None,
            meta_json: None,
            question: Some(super::super::ImportedQuestion {
                question: text.into(),
                answers_json: r#"[{"answer":"red","count":1}]"#.into(),
                answer_type: None,
                question_type: None,
            }),
        };
        let items = vec![
            q(0, "what color is the circle?"),
            q(1, "how many shapes are there?"),
        ];
        store
            .save_imported_items(ds, std::slice::from_ref(&im), &items)
            .unwrap();
        let hits = search(&store, "color").unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(
            hits[0].item.question.as_deref(),
            Some("what color is the circle?")
        );
        assert!(hits[0].snippet.contains("[color]"), "{}", hits[0].snippet);
        assert!(search(&store, "triangle").unwrap().is_empty());
    }

    #[test]
    fn imports_index_their_new_rows_once_and_other_inserts_still_index_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ds = store.ensure_dataset("d").unwrap();
        let im = image(&store);
        let item = |path: &str, caption: &str| ImportedItem {
            image_hash: im.hash.clone(),
            caption: caption.into(),
            source_path: path.into(),
            split: None,
            meta_json: None,
            question: None,
        };
        let first = [item("/a", "a red kite"), item("/b", "a blue boat")];
        let images = std::slice::from_ref(&im);
        assert_eq!(store.save_imported_items(ds, images, &first).unwrap(), 2);
        // Again, plus one new: the two already there are neither added nor indexed twice.
        let again = [first[0].clone(), first[1].clone(), item("/c", "a red boat")];
        assert_eq!(store.save_imported_items(ds, images, &again).unwrap(), 1);
        assert_eq!(search(&store, "red").unwrap().len(), 2);
        assert_eq!(search(&store, "boat").unwrap().len(), 2);
        assert_eq!(search(&store, "kite").unwrap().len(), 1);
        // No deferral outlives the import, so a row inserted any other way is indexed at once.
        let pending: i64 = store
            .conn
            .query_row("SELECT count(*) FROM items_fts_deferred", [], |r| r.get(0))
            .unwrap();
        assert_eq!(pending, 0);
        store
            .conn
            .execute(
                "INSERT INTO items(dataset_id, image_hash, caption, source_path)
                 VALUES (?1, ?2, 'a green kite', '/d')",
                rusqlite::params![ds, im.hash],
            )
            .unwrap();
        assert_eq!(search(&store, "kite").unwrap().len(), 2);
        store
            .conn
            .execute(
                "INSERT INTO items_fts(items_fts, rank) VALUES ('integrity-check', 1)",
                [],
            )
            .unwrap();
    }

    #[test]
    fn ranks_by_relevance_marks_matches_and_stays_in_its_dataset() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        add(
            &store,
            "d",
            &[
                "a dog runs on the beach",
                "a cat sleeps",
                "dog and dog and another dog",
                "Café crème on a table",
            ],
        );
        add(&store, "other", &["a dog in another dataset"]);
        let hits = search(&store, "dog").unwrap();
        assert_eq!(
            captions(&hits),
            ["dog and dog and another dog", "a dog runs on the beach"]
        );
        assert!(hits[0].score > hits[1].score);
        assert_eq!(hits[1].snippet, "a [dog] runs on the beach");
        // diacritics folded, prefix queries, phrases
        assert_eq!(
            captions(&search(&store, "cafe").unwrap()),
            ["Café crème on a table"]
        );
        assert_eq!(captions(&search(&store, "sle*").unwrap()), ["a cat sleeps"]);
        assert_eq!(
            captions(&search(&store, "\"runs on\"").unwrap()),
            ["a dog runs on the beach"]
        );
        assert!(search(&store, "zebra").unwrap().is_empty());
        let one = store
            .search_items(
                "d",
                "dog",
                &SearchOptions {
                    limit: 1,
                    ..SearchOptions::default()
                },
            )
            .unwrap();
        assert_eq!(captions(&one), ["dog and dog and another dog"]);
    }

    #[test]
    fn malformed_and_empty_queries_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        add(&store, "d", &["a dog"]);
        for q in ["\"unterminated", "dog AND", "nosuchcolumn:dog", "  "] {
            match search(&store, q) {
                Err(StoreError::BadSearchQuery { query, reason }) => {
                    assert_eq!(query, q);
                    assert!(!reason.is_empty());
                }
                other => panic!("{q:?}: {other:?}"),
            }
        }
        assert!(matches!(
            store.search_items("nope", "dog", &SearchOptions::default()),
            Err(StoreError::NoSuchDataset(_))
        ));
    }

    #[test]
    fn pages_filter_by_split_source_and_words_and_count_what_passes() {
        use crate::store::ItemFilter;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .conn
            .execute_batch(
                "INSERT INTO datasets(id, name) VALUES (1, 'd'), (2, 'other');
                 INSERT INTO blobs(hash, size, mime) VALUES ('h', 1, 'image/png');
                 INSERT INTO items(dataset_id, image_hash, caption, source_path, split, flags, question)
                 VALUES (1, 'h', 'one', '/cats/a.png', 'train', 0, NULL),
                        (1, 'h', 'one two three', '/cats/b.png', 'test', 0, NULL),
                        (1, 'h', 'one  two   three four five', '/dogs/c.png', NULL, 0, NULL),
                        (1, 'h', 'said while the frame showed', '/v.mp4', 'train', 1, NULL),
                        (1, 'h', '', '/q.png', 'train', 0, 'what color is it'),
                        (2, 'h', 'one two three', '/cats/z.png', 'train', 0, NULL);",
            )
            .unwrap();
        let page = |f: ItemFilter, offset: usize, limit: Option<usize>| {
            let (total, items) = store.items_page("d", &f, offset, limit).unwrap();
            (
                total,
                items.into_iter().map(|i| i.source_path).collect::<Vec<_>>(),
            )
        };
        assert_eq!(page(ItemFilter::default(), 0, None).0, 5);
        let train = ItemFilter {
            split: Some("train".into()),
            ..Default::default()
        };
        assert_eq!(page(train.clone(), 0, None).0, 3);
        let (total, one) = page(train, 1, Some(1));
        assert_eq!((total, one.len()), (3, 1), "the total counts past the page");
        let unsplit = ItemFilter {
            split: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(page(unsplit, 0, None).1, ["/dogs/c.png"]);
        let cats = ItemFilter {
            source: Some("/cats/".into()),
            ..Default::default()
        };
        assert_eq!(page(cats, 0, None).1, ["/cats/a.png", "/cats/b.png"]);
        // Words as the curate filters count them: a frame without speech has none, a VQA
        // item without a caption has its question's.
        let words = |min, max| {
            let mut got = page(
                ItemFilter {
                    min_words: min,
                    max_words: max,
                    ..Default::default()
                },
                0,
                None,
            )
            .1;
            got.sort();
            got
        };
        assert_eq!(words(Some(3), Some(4)), ["/cats/b.png", "/q.png"]);
        assert_eq!(words(Some(5), None), ["/dogs/c.png"]);
        assert_eq!(words(None, Some(0)), ["/v.mp4"]);
        assert!(matches!(
            store.items_page("nope", &ItemFilter::default(), 0, None),
            Err(StoreError::NoSuchDataset(_))
        ));
        // One item by id, checked against its data set.
        let first = &store.items("d", Some(1)).unwrap()[0];
        assert_eq!(store.item("d", first.id).unwrap(), *first);
        assert!(matches!(
            store.item("other", first.id),
            Err(StoreError::ItemInOtherDataset { .. })
        ));
        assert!(matches!(
            store.item("d", 999),
            Err(StoreError::NoSuchItem(999))
        ));
    }

    #[test]
    fn index_follows_updates_and_deletes_and_backfills_old_rows() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tessera.db");
        {
            // A store from before full-text search, with items already in it.
            let mut conn = rusqlite::Connection::open(&db).unwrap();
            migrations::migrations().to_version(&mut conn, 2).unwrap();
            conn.execute_batch(
                "INSERT INTO datasets(id, name) VALUES (1, 'd');
                 INSERT INTO blobs(hash, size, mime) VALUES ('h', 1, 'image/png');
                 INSERT INTO items(dataset_id, image_hash, caption, context_after, source_path)
                 VALUES (1, 'h', 'an old lighthouse', 'waves crash', '/a.png');",
            )
            .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            captions(&search(&store, "lighthouse").unwrap()),
            ["an old lighthouse"]
        );
        let ctx = search(&store, "waves").unwrap();
        assert_eq!(ctx[0].snippet, "[waves] crash", "context is searched too");
        store
            .conn
            .execute("UPDATE items SET caption = 'a new windmill'", [])
            .unwrap();
        assert!(search(&store, "lighthouse").unwrap().is_empty());
        assert_eq!(search(&store, "windmill").unwrap().len(), 1);
        store.conn.execute("DELETE FROM items", []).unwrap();
        assert!(search(&store, "windmill OR waves").unwrap().is_empty());
        // the index agrees with its content table
        store
            .conn
            .execute(
                "INSERT INTO items_fts(items_fts, rank) VALUES ('integrity-check', 1)",
                [],
            )
            .unwrap();
    }

    #[test]
    fn each_item_streams_a_split_with_mimes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        add(&store, "d", &["one", "two", "three"]);
        store
            .conn
            .execute("UPDATE items SET split = 'val' WHERE caption = 'two'", [])
            .unwrap();
        let mut seen = Vec::new();
        store
            .each_item::<StoreError>("d", Some("val"), |it, mime| {
                seen.push((it.caption, mime));
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, [("two".to_string(), "image/png".to_string())]);
        assert_eq!(store.count_items("d", None).unwrap(), 3);
        assert_eq!(store.count_items("d", Some("val")).unwrap(), 1);
        assert_eq!(store.count_items("d", Some("test")).unwrap(), 0);
    }
}
