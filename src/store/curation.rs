//! Curation queries: what split, dedupe and filter need to know about a dataset's items, and the
//! edits they make (splits, captions, deletions, merges), each in one transaction.

use rusqlite::{params, Connection, OptionalExtension};

use super::{Result, Store, StoreError, FLAG_NO_SPEECH};

/// One item as curation sees it: its source, image (with the image's size and thumbnail) and
/// caption.
#[derive(Debug, Clone, PartialEq)]
pub struct CurationItem {
    pub id: i64,
    /// The video the item was cut from; None for imported items.
    pub video_id: Option<i64>,
    pub source_path: String,
    pub image_hash: String,
    pub caption: String,
    /// A VQA item's question.
    pub question: Option<String>,
    pub no_speech: bool,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub thumb_hash: Option<String>,
}

/// What `merge_datasets` did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MergeReport {
    pub source: String,
    pub destination: String,
    /// The destination did not exist before.
    pub created: bool,
    pub added: usize,
    /// Items the destination already had (same image, caption and source).
    pub already_there: usize,
}

/// Columns a merge does not copy: the row's identity, owner and creation time.
const NOT_COPIED: [&str; 3] = ["id", "dataset_id", "created_at"];

impl Store {
    /// Every item of `dataset` with its image's catalog facts, by id.
    pub fn curation_items(&self, dataset: &str) -> Result<Vec<CurationItem>> {
        let dataset_id = self.dataset_id(dataset)?;
        let question = if self.items_have_column("question")? {
            "i.question"
        } else {
            "NULL"
        };
        let mut stmt = self.conn.prepare(&format!(
            "SELECT i.id, i.video_id, i.source_path, i.image_hash, i.caption, i.flags,
                    b.width, b.height, b.thumb_hash, {question}
             FROM items i JOIN blobs b ON b.hash = i.image_hash
             WHERE i.dataset_id = ?1 ORDER BY i.id"
        ))?;
        let rows = stmt.query_map([dataset_id], |r| {
            Ok(CurationItem {
                id: r.get(0)?,
                video_id: r.get(1)?,
                source_path: r.get(2)?,
                image_hash: r.get(3)?,
                caption: r.get(4)?,
                no_speech: r.get::<_, i64>(5)? & FLAG_NO_SPEECH != 0,
                width: r.get(6)?,
                height: r.get(7)?,
                thumb_hash: r.get(8)?,
                question: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Whether `items` has this column: curation reads the VQA question where the schema has
    /// it, without depending on that migration.
    fn items_have_column(&self, name: &str) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM pragma_table_info('items') WHERE name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )? > 0)
    }

    /// Sets the split of the given items of `dataset`, in one transaction.
    pub fn set_splits(&self, dataset: &str, splits: &[(i64, String)]) -> Result<()> {
        let dataset_id = self.dataset_id(dataset)?;
        let tx = self.conn.unchecked_transaction()?;
        {
            let mut upd =
                tx.prepare("UPDATE items SET split = ?3 WHERE id = ?1 AND dataset_id = ?2")?;
            for (id, split) in splits {
                upd.execute(params![id, dataset_id, split])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes items of `dataset`, all or none: an unknown id, or one of another dataset, is an
    /// error and nothing is deleted. Blobs stay (other items and datasets may share them).
    pub fn delete_items(&self, dataset: &str, ids: &[i64]) -> Result<usize> {
        let dataset_id = self.dataset_id(dataset)?;
        let tx = self.conn.unchecked_transaction()?;
        let mut deleted = 0;
        for &id in ids {
            check_item(&tx, dataset, dataset_id, id)?;
            deleted += tx.execute("DELETE FROM items WHERE id = ?1", [id])?;
        }
        tx.commit()?;
        Ok(deleted)
    }

    /// Replaces an item's caption. The caption is now the user's, so the item no longer counts
    /// as a frame without speech.
    pub fn set_caption(&self, dataset: &str, id: i64, caption: &str) -> Result<()> {
        let dataset_id = self.dataset_id(dataset)?;
        let tx = self.conn.unchecked_transaction()?;
        check_item(&tx, dataset, dataset_id, id)?;
        // Imported items are unique by (source, caption, image): say which item is in the way
        // rather than surface the index's constraint error.
        let clash: Option<i64> = tx
            .query_row(
                "SELECT o.id FROM items o JOIN items i ON i.id = ?1
                 WHERE o.dataset_id = i.dataset_id AND o.id != i.id AND o.caption = ?2
                   AND o.image_hash = i.image_hash AND o.source_path = i.source_path
                   AND o.video_id IS NULL AND o.frame_s IS NULL
                   AND i.video_id IS NULL AND i.frame_s IS NULL",
                params![id, caption],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(other) = clash {
            return Err(StoreError::DuplicateItem {
                dataset: dataset.to_string(),
                other,
            });
        }
        tx.execute(
            "UPDATE items SET caption = ?2, flags = flags & ~?3 WHERE id = ?1",
            params![id, caption, FLAG_NO_SPEECH],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Copies the items of `src` into `dst` (created if new), in one transaction. Only rows are
    /// copied: blobs are shared. An item `dst` already has (same image, caption and source, and
    /// question where there is one) is not added again.
    pub fn merge_datasets(&self, src: &str, dst: &str) -> Result<MergeReport> {
        let src_id = self.dataset_id(src)?;
        let created = match self.dataset_id(dst) {
            Ok(_) => false,
            Err(StoreError::NoSuchDataset(_)) => true,
            Err(e) => return Err(e),
        };
        let tx = self.conn.unchecked_transaction()?;
        // ensure_dataset validates the name; inside the transaction, so a failed merge leaves
        // no empty destination behind.
        let dst_id = {
            Store::check_dataset_name(dst)?;
            tx.execute(
                "INSERT INTO datasets(name) VALUES (?1) ON CONFLICT(name) DO NOTHING",
                [dst],
            )?;
            tx.query_row("SELECT id FROM datasets WHERE name = ?1", [dst], |r| {
                r.get::<_, i64>(0)
            })?
        };
        // Every column but the row's identity, so columns added by later migrations travel too.
        let columns: Vec<String> = {
            let mut stmt = tx.prepare("SELECT name FROM pragma_table_info('items')")?;
            let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
            names
                .collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .filter(|c| !NOT_COPIED.contains(&c.as_str()))
                .collect()
        };
        let same_question = if columns.iter().any(|c| c == "question") {
            "AND d.question IS s.question"
        } else {
            ""
        };
        let list = columns.join(", ");
        let select = columns
            .iter()
            .map(|c| format!("s.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let total: i64 = tx.query_row(
            "SELECT count(*) FROM items WHERE dataset_id = ?1",
            [src_id],
            |r| r.get(0),
        )?;
        // The WHERE before ON CONFLICT also keeps SQLite from reading it as a join constraint.
        let added = tx.execute(
            &format!(
                "INSERT INTO items(dataset_id, {list})
                 SELECT ?2, {select} FROM items s
                 WHERE s.dataset_id = ?1 AND NOT EXISTS (
                    SELECT 1 FROM items d WHERE d.dataset_id = ?2
                      AND d.image_hash = s.image_hash AND d.caption = s.caption
                      AND d.source_path = s.source_path {same_question})
                 ORDER BY s.id
                 ON CONFLICT DO NOTHING"
            ),
            params![src_id, dst_id],
        )?;
        tx.commit()?;
        Ok(MergeReport {
            source: src.to_string(),
            destination: dst.to_string(),
            created,
            added,
            already_there: total as usize - added,
        })
    }
}

/// Fails unless item `id` exists and belongs to `dataset` (in or out of a transaction).
pub(super) fn check_item(conn: &Connection, dataset: &str, dataset_id: i64, id: i64) -> Result<()> {
    let owner: Option<(i64, String)> = conn
        .query_row(
            "SELECT d.id, d.name FROM items i JOIN datasets d ON d.id = i.dataset_id
             WHERE i.id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match owner {
        None => Err(StoreError::NoSuchItem(id)),
        Some((owner, _)) if owner == dataset_id => Ok(()),
        Some((_, actual)) => Err(StoreError::ItemInOtherDataset {
            id,
            expected: dataset.to_string(),
            actual,
        }),
    }
}
