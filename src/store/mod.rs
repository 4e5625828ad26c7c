//! The store: one SQLite catalog (`tessera.db`, WAL, foreign keys, versioned migrations) and a
//! content-addressed blob directory beside it. Only this module writes SQL.

mod blobs;
mod curation;
mod migrations;
mod runs;
mod search;
mod stats;
mod vqa;

use std::path::{Path, PathBuf};

use rusqlite::functions::FunctionFlags;
use rusqlite::{params, Connection, OptionalExtension};

pub use blobs::{hash_bytes, hash_file, BlobStore};
pub use curation::{CurationItem, MergeReport};
pub use runs::{
    CheckpointRow, EvaluationRow, MetricRow, MetricSplit, ParseRunEnumError, RunKind, RunRow,
    RunStatus, RunSummary,
};
pub use search::{SearchHit, SearchOptions};
pub use stats::{DatasetStats, SourceCount, SplitCount, WordBucket, CAPTION_WORD_BUCKETS};
pub use vqa::ImportedQuestion;

use crate::events::Stage;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migrating the database in {}: {source}", path.display())]
    Migration {
        path: PathBuf,
        source: rusqlite_migration::Error,
    },
    #[error("no dataset named {0:?} (see `tessera datasets list`)")]
    NoSuchDataset(String),
    #[error("invalid dataset name {0:?}: use 1-64 letters, digits, '-', '_' or '.'")]
    InvalidDatasetName(String),
    #[error("search query {query:?}: {reason} (FTS5 syntax: words, \"a phrase\", prefix*, AND/OR/NOT, NEAR(a b))")]
    BadSearchQuery { query: String, reason: String },
    #[error("no item #{0} (see `tessera items`)")]
    NoSuchItem(i64),
    #[error("item #{id} belongs to dataset {actual:?}, not {expected:?}")]
    ItemInOtherDataset {
        id: i64,
        expected: String,
        actual: String,
    },
    #[error("dataset {dataset:?} already has item #{other} with that image, source and caption")]
    DuplicateItem { dataset: String, other: i64 },
    #[error("a training run named {0:?} already exists")]
    RunExists(String),
    #[error("no training run named {0:?}")]
    NoSuchRun(String),
    #[error("no training run #{0}")]
    NoSuchRunId(i64),
    #[error("invalid run name {0:?}: use 1-64 letters, digits, '-', '_' or '.'")]
    InvalidRunName(String),
    #[error("metric {name:?} of step {step} is not a number")]
    NanMetric { step: u64, name: String },
}

impl StoreError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The platform's data directory for Tessera (e.g. `~/Library/Application Support/org.tessera.Tessera`
/// on macOS, `~/.local/share/tessera` on Linux).
pub fn default_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("org", "tessera", "Tessera").map(|d| d.data_dir().to_path_buf())
}

pub struct Store {
    conn: Connection,
    root: PathBuf,
    blobs: BlobStore,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DatasetSummary {
    pub name: String,
    pub created_at: String,
    pub items: i64,
    pub videos: i64,
    pub failed_videos: i64,
    pub no_speech_items: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VideoRow {
    pub id: i64,
    pub content_hash: String,
    pub path: String,
    pub has_audio: Option<bool>,
    pub duration_s: Option<f64>,
    pub asr_model: Option<String>,
}

/// What a probe found, as the catalog keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoFacts {
    pub duration_s: f64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<f64>,
    pub has_audio: bool,
    pub probe_json: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub id: i64,
    pub dataset_id: i64,
    pub video_id: i64,
    pub stage: Stage,
    pub status: String,
    pub error: Option<String>,
    pub attempts: i64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SegmentRow {
    pub start_s: f64,
    pub end_s: f64,
    pub text: String,
    pub no_speech_prob: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeyframeRow {
    pub t_s: f64,
    pub blob_hash: String,
    pub mime: String,
    pub width: u32,
    pub height: u32,
    pub size: u64,
    /// "speech" (picked for a transcript segment) or "scene" (picked for a new shot).
    pub reason: String,
    pub span_start: f64,
    pub span_end: f64,
    pub phash: Vec<u8>,
    pub sharpness: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewItem {
    pub image_hash: String,
    pub caption: String,
    pub context_before: String,
    pub context_after: String,
    pub start_s: f64,
    pub end_s: f64,
    pub frame_s: f64,
    pub no_speech: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ItemRow {
    pub id: i64,
    pub caption: String,
    pub context_before: String,
    pub context_after: String,
    pub source_path: String,
    pub start_s: Option<f64>,
    pub end_s: Option<f64>,
    pub frame_s: Option<f64>,
    pub image_hash: String,
    pub no_speech: bool,
    pub split: Option<String>,
    /// Fields of the imported record that have no column of their own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
    /// VQA items: the question, its answers (see `ImportedQuestion`) and their types.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answers: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub question_type: Option<String>,
}

/// An imported image's blob row, with its JPEG thumbnail (also a blob).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageBlob {
    pub hash: String,
    pub size: u64,
    pub mime: String,
    pub width: u32,
    pub height: u32,
    pub thumb_hash: String,
    pub thumb_size: u64,
    pub thumb_width: u32,
    pub thumb_height: u32,
}

/// One image-caption pair from an imported dataset file.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedItem {
    pub image_hash: String,
    pub caption: String,
    /// The file (or `shard.tar:member`) the image came from.
    pub source_path: String,
    pub split: Option<String>,
    pub meta_json: Option<String>,
    /// A VQA item's question and answers.
    pub question: Option<ImportedQuestion>,
}

/// A blob's catalog row.
#[derive(Debug, Clone, PartialEq)]
pub struct BlobRow {
    pub hash: String,
    pub size: u64,
    pub mime: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub thumb_hash: Option<String>,
}

pub const FLAG_NO_SPEECH: i64 = 1;

/// Which items a page of the browser shows; `None` lets everything through.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct ItemFilter {
    /// Items of this split (`""`: items without one).
    pub split: Option<String>,
    /// Items whose source path contains this text.
    pub source: Option<String>,
    pub min_words: Option<usize>,
    pub max_words: Option<usize>,
}

/// How long an item's text is, as the filters count it: the caption's words (a VQA item
/// without a caption: its question's); a frame without speech has none.
pub fn caption_words(caption: &str, question: Option<&str>, no_speech: bool) -> usize {
    if no_speech {
        return 0;
    }
    match question {
        Some(q) if caption.trim().is_empty() => q.split_whitespace().count(),
        _ => caption.split_whitespace().count(),
    }
}

fn valid_dataset_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
}

impl Store {
    /// Opens (creating if needed) the store rooted at `root` and brings its schema up to date.
    pub fn open(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|e| StoreError::io(root, e))?;
        let db = root.join("tessera.db");
        let mut conn = Connection::open(&db)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // WAL: readers (the app) never block the ingest writer; NORMAL sync is crash-safe in WAL.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // A bulk insert's statement journal (each row's trigger makes one) stays in memory
        // instead of being written to a temporary file page by page, and its pages stay cached:
        // together about a third of saving a 10,000-image import.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.pragma_update(None, "cache_size", -32 * 1024)?;
        migrations::migrations()
            .to_latest(&mut conn)
            .map_err(|source| StoreError::Migration {
                path: db.clone(),
                source,
            })?;
        conn.create_scalar_function(
            "caption_words",
            3,
            FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
            |ctx| {
                let caption: String = ctx.get(0)?;
                let question: Option<String> = ctx.get(1)?;
                let flags: i64 = ctx.get(2)?;
                Ok(
                    caption_words(&caption, question.as_deref(), flags & FLAG_NO_SPEECH != 0)
                        as i64,
                )
            },
        )?;
        let blobs = BlobStore::open(root.join("blobs"))?;
        Ok(Self {
            conn,
            root: root.to_path_buf(),
            blobs,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// Scratch space for one video's intermediate files (decoded audio), removed when done.
    pub fn work_dir(&self, content_hash: &str) -> PathBuf {
        self.root.join("work").join(content_hash)
    }

    /// Where `tessera models install` puts Whisper model files.
    pub fn whisper_models_dir(&self) -> PathBuf {
        self.root.join("models").join("whisper")
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    // ---- datasets ------------------------------------------------------------------------

    /// Fails unless `name` may name a dataset (checked before any work, without creating it).
    pub fn check_dataset_name(name: &str) -> Result<()> {
        if valid_dataset_name(name) {
            Ok(())
        } else {
            Err(StoreError::InvalidDatasetName(name.to_string()))
        }
    }

    /// The id of dataset `name`, created if it does not exist yet.
    pub fn ensure_dataset(&self, name: &str) -> Result<i64> {
        if !valid_dataset_name(name) {
            return Err(StoreError::InvalidDatasetName(name.to_string()));
        }
        self.conn.execute(
            "INSERT INTO datasets(name) VALUES (?1) ON CONFLICT(name) DO NOTHING",
            [name],
        )?;
        self.dataset_id(name)
    }

    pub fn dataset_id(&self, name: &str) -> Result<i64> {
        self.conn
            .query_row("SELECT id FROM datasets WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| StoreError::NoSuchDataset(name.to_string()))
    }

    pub fn datasets(&self) -> Result<Vec<DatasetSummary>> {
        let mut stmt = self.conn.prepare(
            "SELECT d.name, d.created_at,
                (SELECT count(*) FROM items i WHERE i.dataset_id = d.id),
                (SELECT count(*) FROM jobs j WHERE j.dataset_id = d.id AND j.status = 'done'),
                (SELECT count(*) FROM jobs j WHERE j.dataset_id = d.id AND j.status = 'failed'),
                (SELECT count(*) FROM items i WHERE i.dataset_id = d.id AND (i.flags & 1) = 1)
             FROM datasets d ORDER BY d.name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(DatasetSummary {
                name: r.get(0)?,
                created_at: r.get(1)?,
                items: r.get(2)?,
                videos: r.get(3)?,
                failed_videos: r.get(4)?,
                no_speech_items: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn dataset(&self, name: &str) -> Result<DatasetSummary> {
        self.dataset_id(name)?;
        Ok(self
            .datasets()?
            .into_iter()
            .find(|d| d.name == name)
            .expect("dataset exists"))
    }

    /// Failed ingestions of a dataset: (source path, reason).
    pub fn failed_jobs(&self, dataset_id: i64) -> Result<Vec<(String, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT source_path, coalesce(error, '') FROM jobs
             WHERE dataset_id = ?1 AND status = 'failed' ORDER BY source_path",
        )?;
        let rows = stmt.query_map([dataset_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- videos --------------------------------------------------------------------------

    /// The video with these bytes, registered on first sight.
    pub fn upsert_video(&self, content_hash: &str, path: &Path, size: u64) -> Result<VideoRow> {
        self.conn.execute(
            "INSERT INTO videos(content_hash, path, size) VALUES (?1, ?2, ?3)
             ON CONFLICT(content_hash) DO UPDATE SET path = excluded.path",
            params![content_hash, path.to_string_lossy(), size as i64],
        )?;
        Ok(self.conn.query_row(
            "SELECT id, content_hash, path, has_audio, duration_s, asr_model FROM videos
             WHERE content_hash = ?1",
            [content_hash],
            |r| {
                Ok(VideoRow {
                    id: r.get(0)?,
                    content_hash: r.get(1)?,
                    path: r.get(2)?,
                    has_audio: r.get(3)?,
                    duration_s: r.get(4)?,
                    asr_model: r.get(5)?,
                })
            },
        )?)
    }

    pub fn video_facts(&self, video_id: i64) -> Result<Option<VideoFacts>> {
        Ok(self
            .conn
            .query_row(
                "SELECT duration_s, width, height, fps, has_audio, probe_json FROM videos
                 WHERE id = ?1 AND probe_json IS NOT NULL",
                [video_id],
                |r| {
                    Ok(VideoFacts {
                        duration_s: r.get(0)?,
                        width: r.get(1)?,
                        height: r.get(2)?,
                        fps: r.get(3)?,
                        has_audio: r.get(4)?,
                        probe_json: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }

    // ---- jobs ----------------------------------------------------------------------------

    /// The ingest job of `video_id` into `dataset_id`, created at stage `pending` on first sight.
    /// A job that is not done is marked running again and its attempt counted.
    pub fn start_ingest_job(
        &self,
        dataset_id: i64,
        video_id: i64,
        source_path: &Path,
        options_json: &str,
    ) -> Result<JobRow> {
        self.conn.execute(
            "INSERT INTO jobs(kind, dataset_id, video_id, source_path, stage, status, options_json)
             VALUES ('ingest', ?1, ?2, ?3, 'pending', 'running', ?4)
             ON CONFLICT(kind, dataset_id, video_id) DO UPDATE SET
                source_path = excluded.source_path,
                status = CASE WHEN jobs.status = 'done' THEN 'done' ELSE 'running' END,
                error = CASE WHEN jobs.status = 'done' THEN jobs.error ELSE NULL END,
                attempts = jobs.attempts + (jobs.status != 'done'),
                updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            params![
                dataset_id,
                video_id,
                source_path.to_string_lossy(),
                options_json
            ],
        )?;
        self.job(dataset_id, video_id)
    }

    pub fn job(&self, dataset_id: i64, video_id: i64) -> Result<JobRow> {
        Ok(self.conn.query_row(
            "SELECT id, dataset_id, video_id, stage, status, error, attempts FROM jobs
             WHERE kind = 'ingest' AND dataset_id = ?1 AND video_id = ?2",
            [dataset_id, video_id],
            job_from_row,
        )?)
    }

    pub fn job_by_id(&self, job_id: i64) -> Result<JobRow> {
        Ok(self.conn.query_row(
            "SELECT id, dataset_id, video_id, stage, status, error, attempts FROM jobs WHERE id = ?1",
            [job_id],
            job_from_row,
        )?)
    }

    /// Records the probe and moves the job to `probed`, atomically.
    pub fn save_probe(&self, job_id: i64, video_id: i64, facts: &VideoFacts) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "UPDATE videos SET duration_s = ?2, width = ?3, height = ?4, fps = ?5, has_audio = ?6,
             probe_json = ?7 WHERE id = ?1",
            params![
                video_id,
                facts.duration_s,
                facts.width,
                facts.height,
                facts.fps,
                facts.has_audio,
                facts.probe_json
            ],
        )?;
        set_stage(&tx, job_id, Stage::Probed)?;
        tx.commit()?;
        Ok(())
    }

    pub fn finish_stage(&self, job_id: i64, stage: Stage) -> Result<()> {
        set_stage(&self.conn, job_id, stage)
    }

    pub fn fail_job(&self, job_id: i64, reason: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE jobs SET status = 'failed', error = ?2,
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1",
            params![job_id, reason],
        )?;
        Ok(())
    }

    // ---- transcripts ---------------------------------------------------------------------

    /// Replaces the video's transcript and moves the job to `transcribed`, atomically.
    pub fn save_transcript(
        &self,
        job_id: i64,
        video_id: i64,
        model: &str,
        segments: &[SegmentRow],
    ) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "DELETE FROM transcript_segments WHERE video_id = ?1",
            [video_id],
        )?;
        {
            let mut ins = tx.prepare(
                "INSERT INTO transcript_segments(video_id, seq, start_s, end_s, text, no_speech_prob)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (seq, s) in segments.iter().enumerate() {
                ins.execute(params![
                    video_id,
                    seq as i64,
                    s.start_s,
                    s.end_s,
                    s.text,
                    s.no_speech_prob
                ])?;
            }
        }
        tx.execute(
            "UPDATE videos SET asr_model = ?2 WHERE id = ?1",
            params![video_id, model],
        )?;
        set_stage(&tx, job_id, Stage::Transcribed)?;
        tx.commit()?;
        Ok(())
    }

    pub fn transcript(&self, video_id: i64) -> Result<Vec<SegmentRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT start_s, end_s, text, no_speech_prob FROM transcript_segments
             WHERE video_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([video_id], |r| {
            Ok(SegmentRow {
                start_s: r.get(0)?,
                end_s: r.get(1)?,
                text: r.get(2)?,
                no_speech_prob: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- keyframes -----------------------------------------------------------------------

    /// Records the job's keyframes (whose bytes are already in the blob store) and moves the job
    /// to `frames`, atomically.
    pub fn save_keyframes(&self, job_id: i64, frames: &[KeyframeRow]) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM keyframes WHERE job_id = ?1", [job_id])?;
        {
            let mut blob = tx.prepare(
                "INSERT INTO blobs(hash, size, mime, width, height) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(hash) DO NOTHING",
            )?;
            let mut kf = tx.prepare(
                "INSERT INTO keyframes(job_id, t_s, blob_hash, reason, span_start, span_end, phash, sharpness)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for f in frames {
                blob.execute(params![
                    f.blob_hash,
                    f.size as i64,
                    f.mime,
                    f.width,
                    f.height
                ])?;
                kf.execute(params![
                    job_id,
                    f.t_s,
                    f.blob_hash,
                    f.reason,
                    f.span_start,
                    f.span_end,
                    f.phash,
                    f.sharpness
                ])?;
            }
        }
        set_stage(&tx, job_id, Stage::Frames)?;
        tx.commit()?;
        Ok(())
    }

    pub fn keyframes(&self, job_id: i64) -> Result<Vec<KeyframeRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT k.t_s, k.blob_hash, b.mime, b.width, b.height, b.size, k.reason, k.span_start,
                    k.span_end, k.phash, k.sharpness
             FROM keyframes k JOIN blobs b ON b.hash = k.blob_hash
             WHERE k.job_id = ?1 ORDER BY k.t_s",
        )?;
        let rows = stmt.query_map([job_id], |r| {
            Ok(KeyframeRow {
                t_s: r.get(0)?,
                blob_hash: r.get(1)?,
                mime: r.get(2)?,
                width: r.get(3)?,
                height: r.get(4)?,
                size: r.get::<_, i64>(5)? as u64,
                reason: r.get(6)?,
                span_start: r.get(7)?,
                span_end: r.get(8)?,
                phash: r.get(9)?,
                sharpness: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- items ---------------------------------------------------------------------------

    /// Replaces the items this job produced, and marks the job done, atomically.
    pub fn save_video_items(&self, job_id: i64, items: &[NewItem]) -> Result<()> {
        let job = self.job_by_id(job_id)?;
        let source_path: String = self.conn.query_row(
            "SELECT source_path FROM jobs WHERE id = ?1",
            [job_id],
            |r| r.get(0),
        )?;
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "DELETE FROM items WHERE dataset_id = ?1 AND video_id = ?2",
            [job.dataset_id, job.video_id],
        )?;
        {
            let mut ins = tx.prepare(
                "INSERT INTO items(dataset_id, image_hash, caption, context_before, context_after,
                    source_path, video_id, start_s, end_s, frame_s, flags)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            for it in items {
                ins.execute(params![
                    job.dataset_id,
                    it.image_hash,
                    it.caption,
                    it.context_before,
                    it.context_after,
                    source_path,
                    job.video_id,
                    it.start_s,
                    it.end_s,
                    it.frame_s,
                    if it.no_speech { FLAG_NO_SPEECH } else { 0 }
                ])?;
            }
        }
        set_stage(&tx, job_id, Stage::Items)?;
        tx.execute(
            "UPDATE jobs SET status = 'done', error = NULL WHERE id = ?1",
            [job_id],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn video_item_count(&self, dataset_id: i64, video_id: i64) -> Result<usize> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM items WHERE dataset_id = ?1 AND video_id = ?2",
            [dataset_id, video_id],
            |r| r.get::<_, i64>(0),
        )? as usize)
    }

    /// Items of a dataset in source order (video, then time); `limit` None means all.
    pub fn items(&self, dataset: &str, limit: Option<usize>) -> Result<Vec<ItemRow>> {
        Ok(self
            .items_page(dataset, &ItemFilter::default(), 0, limit)?
            .1)
    }

    /// Item `id` of `dataset` (an id of another data set is an error naming it).
    pub fn item(&self, dataset: &str, id: i64) -> Result<ItemRow> {
        curation::check_item(&self.conn, dataset, self.dataset_id(dataset)?, id)?;
        Ok(self.conn.query_row(
            &format!("SELECT {ITEM_COLUMNS} FROM items WHERE id = ?1"),
            [id],
            item_from_row,
        )?)
    }

    /// The items of `dataset` that pass `filter`, in [`Store::items`]' order from the
    /// `offset`-th on, with how many pass in all.
    pub fn items_page(
        &self,
        dataset: &str,
        filter: &ItemFilter,
        offset: usize,
        limit: Option<usize>,
    ) -> Result<(usize, Vec<ItemRow>)> {
        let dataset_id = self.dataset_id(dataset)?;
        // `?2 = ''` asks for the items without a split.
        const WHERE: &str = "dataset_id = ?1
             AND (?2 IS NULL OR (?2 = '' AND split IS NULL) OR split = ?2)
             AND (?3 IS NULL OR instr(source_path, ?3) > 0)
             AND (?4 IS NULL OR caption_words(caption, question, flags) >= ?4)
             AND (?5 IS NULL OR caption_words(caption, question, flags) <= ?5)";
        let split = filter.split.as_deref();
        let source = filter.source.as_deref().filter(|s| !s.is_empty());
        let min = filter.min_words.map(|n| n as i64);
        let max = filter.max_words.map(|n| n as i64);
        let total: i64 = self.conn.query_row(
            &format!("SELECT count(*) FROM items WHERE {WHERE}"),
            params![dataset_id, split, source, min, max],
            |r| r.get(0),
        )?;
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ITEM_COLUMNS} FROM items WHERE {WHERE}
             ORDER BY video_id, start_s, id LIMIT ?6 OFFSET ?7"
        ))?;
        let limit = limit.map(|l| l as i64).unwrap_or(-1);
        let rows = stmt.query_map(
            params![dataset_id, split, source, min, max, limit, offset as i64],
            item_from_row,
        )?;
        Ok((total as usize, rows.collect::<rusqlite::Result<_>>()?))
    }

    // ---- imports -------------------------------------------------------------------------

    /// Records imported images (whose bytes and thumbnails are already in the blob store) and
    /// adds the items, in one transaction. An item already in the dataset (same source,
    /// caption and image) is left as it is. Returns how many items were new.
    pub fn save_imported_items(
        &self,
        dataset_id: i64,
        images: &[ImageBlob],
        items: &[ImportedItem],
    ) -> Result<usize> {
        let tx = self.conn.unchecked_transaction()?;
        let last_before = search::defer_indexing(&tx)?;
        let mut added = 0;
        {
            let mut blob = tx.prepare(
                "INSERT INTO blobs(hash, size, mime, width, height, thumb_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(hash) DO UPDATE SET
                    thumb_hash = coalesce(blobs.thumb_hash, excluded.thumb_hash),
                    width = coalesce(blobs.width, excluded.width),
                    height = coalesce(blobs.height, excluded.height)",
            )?;
            for im in images {
                // The thumbnail row first: the image's row references it.
                blob.execute(params![
                    im.thumb_hash,
                    im.thumb_size as i64,
                    "image/jpeg",
                    im.thumb_width,
                    im.thumb_height,
                    None::<String>
                ])?;
                blob.execute(params![
                    im.hash,
                    im.size as i64,
                    im.mime,
                    im.width,
                    im.height,
                    // A small image can be its own thumbnail; no self-reference then.
                    (im.thumb_hash != im.hash).then_some(&im.thumb_hash)
                ])?;
            }
            let mut ins = tx.prepare(
                "INSERT INTO items(dataset_id, image_hash, caption, source_path, split, meta_json,
                    question, answers_json, answer_type, question_type)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT DO NOTHING",
            )?;
            for it in items {
                let q = it.question.as_ref();
                added += ins.execute(params![
                    dataset_id,
                    it.image_hash,
                    it.caption,
                    it.source_path,
                    it.split,
                    it.meta_json,
                    q.map(|q| &q.question),
                    q.map(|q| &q.answers_json),
                    q.and_then(|q| q.answer_type.as_ref()),
                    q.and_then(|q| q.question_type.as_ref())
                ])?;
            }
        }
        search::index_deferred(&tx, last_before)?;
        tx.commit()?;
        Ok(added)
    }

    pub fn blob_row(&self, hash: &str) -> Result<Option<BlobRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT hash, size, mime, width, height, thumb_hash FROM blobs WHERE hash = ?1",
                [hash],
                |r| {
                    Ok(BlobRow {
                        hash: r.get(0)?,
                        size: r.get::<_, i64>(1)? as u64,
                        mime: r.get(2)?,
                        width: r.get(3)?,
                        height: r.get(4)?,
                        thumb_hash: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }
}

/// The item columns [`item_from_row`] reads, in its order (other columns of a query are read
/// by name after them).
pub(crate) const ITEM_COLUMNS: &str = "id, caption, context_before, context_after, source_path,
    start_s, end_s, frame_s, image_hash, flags, split, meta_json, question, answers_json,
    answer_type, question_type";

pub(crate) fn item_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ItemRow> {
    Ok(ItemRow {
        id: r.get(0)?,
        caption: r.get(1)?,
        context_before: r.get(2)?,
        context_after: r.get(3)?,
        source_path: r.get(4)?,
        start_s: r.get(5)?,
        end_s: r.get(6)?,
        frame_s: r.get(7)?,
        image_hash: r.get(8)?,
        no_speech: r.get::<_, i64>(9)? & FLAG_NO_SPEECH != 0,
        split: r.get(10)?,
        meta: r
            .get::<_, Option<String>>(11)?
            .and_then(|m| serde_json::from_str(&m).ok()),
        question: r.get(12)?,
        answers: r
            .get::<_, Option<String>>(13)?
            .and_then(|a| serde_json::from_str(&a).ok()),
        answer_type: r.get(14)?,
        question_type: r.get(15)?,
    })
}

fn job_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    let stage: String = r.get(3)?;
    Ok(JobRow {
        id: r.get(0)?,
        dataset_id: r.get(1)?,
        video_id: r.get(2)?,
        stage: Stage::parse(&stage).unwrap_or(Stage::Pending),
        status: r.get(4)?,
        error: r.get(5)?,
        attempts: r.get(6)?,
    })
}

fn set_stage(conn: &Connection, job_id: i64, stage: Stage) -> Result<()> {
    conn.execute(
        "UPDATE jobs SET stage = ?2, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1",
        params![job_id, stage.as_str()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn opens_with_wal_foreign_keys_and_latest_schema() {
        let (dir, store) = store();
        let mode: String = store
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = store
            .conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        let temp_store: i64 = store
            .conn
            .pragma_query_value(None, "temp_store", |r| r.get(0))
            .unwrap();
        assert_eq!(temp_store, 2, "statement journals in memory");
        assert_eq!(store.schema_version().unwrap(), 9);
        migrations::migrations().validate().unwrap();
        drop(store);
        // reopening an up-to-date store is a no-op
        assert_eq!(
            Store::open(dir.path()).unwrap().schema_version().unwrap(),
            9
        );
    }

    #[test]
    fn dataset_names_are_validated_and_unique() {
        let (_dir, store) = store();
        let a = store.ensure_dataset("talks").unwrap();
        assert_eq!(store.ensure_dataset("talks").unwrap(), a);
        assert!(matches!(
            store.ensure_dataset("../etc"),
            Err(StoreError::InvalidDatasetName(_))
        ));
        assert!(matches!(
            store.dataset_id("nope"),
            Err(StoreError::NoSuchDataset(_))
        ));
    }

    #[test]
    fn job_lifecycle_and_items_replace_atomically() {
        let (_dir, store) = store();
        let ds = store.ensure_dataset("d").unwrap();
        let v = store.upsert_video("abcd", Path::new("/v.mp4"), 10).unwrap();
        assert_eq!(
            store
                .upsert_video("abcd", Path::new("/w.mp4"), 10)
                .unwrap()
                .id,
            v.id
        );
        let job = store
            .start_ingest_job(ds, v.id, Path::new("/v.mp4"), "{}")
            .unwrap();
        assert_eq!(job.stage, Stage::Pending);
        assert_eq!(job.status, "running");
        store.fail_job(job.id, "boom").unwrap();
        let again = store
            .start_ingest_job(ds, v.id, Path::new("/v.mp4"), "{}")
            .unwrap();
        assert_eq!(
            (again.id, again.status.as_str(), again.attempts),
            (job.id, "running", 1)
        );

        let hash = store.blobs().put(b"jpeg bytes").unwrap();
        let frame = KeyframeRow {
            t_s: 1.0,
            blob_hash: hash.clone(),
            mime: "image/jpeg".into(),
            width: 2,
            height: 2,
            size: 10,
            reason: "speech".into(),
            span_start: 0.0,
            span_end: 2.0,
            phash: vec![1, 2],
            sharpness: 3.0,
        };
        store
            .save_keyframes(job.id, std::slice::from_ref(&frame))
            .unwrap();
        assert_eq!(store.keyframes(job.id).unwrap(), vec![frame]);
        let item = NewItem {
            image_hash: hash,
            caption: "hello".into(),
            context_before: String::new(),
            context_after: "world".into(),
            start_s: 0.0,
            end_s: 2.0,
            frame_s: 1.0,
            no_speech: false,
        };
        store
            .save_video_items(job.id, std::slice::from_ref(&item))
            .unwrap();
        store.save_video_items(job.id, &[item]).unwrap();
        let items = store.items("d", None).unwrap();
        assert_eq!(items.len(), 1, "saving twice replaces, never duplicates");
        assert_eq!(items[0].source_path, "/v.mp4");
        let job = store.job(ds, v.id).unwrap();
        assert_eq!((job.stage, job.status.as_str()), (Stage::Items, "done"));
        let summary = store.dataset("d").unwrap();
        assert_eq!((summary.items, summary.videos), (1, 1));
    }

    #[test]
    fn imported_items_are_unique_and_blobs_carry_thumbnails() {
        let (_dir, store) = store();
        let ds = store.ensure_dataset("coco").unwrap();
        let image = ImageBlob {
            hash: store.blobs().put(b"png bytes").unwrap(),
            size: 9,
            mime: "image/png".into(),
            width: 640,
            height: 480,
            thumb_hash: store.blobs().put(b"thumb").unwrap(),
            thumb_size: 5,
            thumb_width: 256,
            thumb_height: 192,
        };
        let item = |caption: &str| ImportedItem {
            image_hash: image.hash.clone(),
            caption: caption.into(),
            source_path: "/data/a.png".into(),
            split: Some("train".into()),
            meta_json: Some(r#"{"id":1}"#.into()),
            question: None,
        };
        let batch = [item("a cat"), item("a cat on a mat")];
        let images = std::slice::from_ref(&image);
        assert_eq!(store.save_imported_items(ds, images, &batch).unwrap(), 2);
        assert_eq!(store.save_imported_items(ds, images, &batch).unwrap(), 0);
        let items = store.items("coco", None).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].split.as_deref(), Some("train"));
        assert_eq!(items[0].meta, Some(serde_json::json!({"id": 1})));
        let row = store.blob_row(&image.hash).unwrap().unwrap();
        assert_eq!(row.thumb_hash.as_deref(), Some(image.thumb_hash.as_str()));
        assert_eq!((row.width, row.height), (Some(640), Some(480)));
        let thumb = store.blob_row(&image.thumb_hash).unwrap().unwrap();
        assert_eq!(
            (thumb.mime.as_str(), thumb.thumb_hash),
            ("image/jpeg", None)
        );
    }
}
