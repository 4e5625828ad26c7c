//! Versioned schema. Append migrations; never edit one that has shipped.

use rusqlite_migration::{Migrations, M};

pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(V1),
        M::up(V2),
        M::up(V3),
        M::up(V4),
        M::up(V5),
        M::up(V6),
        M::up(V7),
        M::up(V8),
        M::up(V9),
    ])
}

const V1: &str = r#"
CREATE TABLE datasets (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Content-addressed media: the file lives at blobs/<hash[0..2]>/<hash>.
CREATE TABLE blobs (
    hash        TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    mime        TEXT NOT NULL,
    width       INTEGER,
    height      INTEGER,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- A source video, identified by the hash of its bytes (the file stays where the user keeps it).
CREATE TABLE videos (
    id            INTEGER PRIMARY KEY,
    content_hash  TEXT NOT NULL UNIQUE,
    path          TEXT NOT NULL,
    size          INTEGER NOT NULL,
    duration_s    REAL,
    width         INTEGER,
    height        INTEGER,
    fps           REAL,
    has_audio     INTEGER,
    probe_json    TEXT,
    asr_model     TEXT
);

CREATE TABLE transcript_segments (
    id              INTEGER PRIMARY KEY,
    video_id        INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    start_s         REAL NOT NULL,
    end_s           REAL NOT NULL,
    text            TEXT NOT NULL,
    no_speech_prob  REAL NOT NULL DEFAULT 0,
    UNIQUE (video_id, seq)
);

-- One ingestion of one video into one dataset; `stage` is the last finished stage.
CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL,
    dataset_id    INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    video_id      INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    source_path   TEXT NOT NULL,
    stage         TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    error         TEXT,
    options_json  TEXT NOT NULL DEFAULT '{}',
    attempts      INTEGER NOT NULL DEFAULT 0,
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (kind, dataset_id, video_id)
);

-- Keyframes chosen by a job's frames stage (before pairing and de-duplication).
CREATE TABLE keyframes (
    id         INTEGER PRIMARY KEY,
    job_id     INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    t_s        REAL NOT NULL,
    blob_hash  TEXT NOT NULL REFERENCES blobs(hash),
    reason     TEXT NOT NULL CHECK (reason IN ('speech', 'scene')),
    span_start REAL NOT NULL,
    span_end   REAL NOT NULL,
    phash      BLOB NOT NULL,
    sharpness  REAL NOT NULL,
    UNIQUE (job_id, t_s)
);

CREATE TABLE items (
    id              INTEGER PRIMARY KEY,
    dataset_id      INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    image_hash      TEXT NOT NULL REFERENCES blobs(hash),
    caption         TEXT NOT NULL,
    context_before  TEXT NOT NULL DEFAULT '',
    context_after   TEXT NOT NULL DEFAULT '',
    source_path     TEXT NOT NULL,
    video_id        INTEGER REFERENCES videos(id) ON DELETE SET NULL,
    start_s         REAL,
    end_s           REAL,
    frame_s         REAL,
    -- bit 0: no speech (video without audio, or a frame in silence)
    flags           INTEGER NOT NULL DEFAULT 0,
    split           TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (dataset_id, video_id, frame_s)
);
CREATE INDEX items_dataset ON items(dataset_id, id);
"#;

/// Imported image-caption data: thumbnails, extra fields, and an identity that makes
/// re-importing the same (source, caption, image) a no-op.
const V2: &str = r#"
-- The JPEG thumbnail (longest side 256) of an image blob; itself a blob.
ALTER TABLE blobs ADD COLUMN thumb_hash TEXT REFERENCES blobs(hash);
-- Fields of the source record that have no column of their own (JSON object).
ALTER TABLE items ADD COLUMN meta_json TEXT;
-- Imported items (no video, no frame time) are unique per dataset, source, caption and image.
CREATE UNIQUE INDEX items_imported ON items(dataset_id, source_path, caption, image_hash)
    WHERE video_id IS NULL AND frame_s IS NULL;
"#;

/// Visual question answering: a question about the item's image and every answer the source
/// gives, so one image can carry many questions.
const V3: &str = r#"
ALTER TABLE items ADD COLUMN question TEXT;
-- JSON array of the distinct answers, most given first: [{"answer", "count", "confidence"?}].
ALTER TABLE items ADD COLUMN answers_json TEXT;
-- VQA v2's answer type ("yes/no", "number", "other") and question type ("what color is").
ALTER TABLE items ADD COLUMN answer_type TEXT;
ALTER TABLE items ADD COLUMN question_type TEXT;
-- The question and its answers join the identity of an imported item: re-importing is still a
-- no-op, while one image can carry many questions.
DROP INDEX items_imported;
CREATE UNIQUE INDEX items_imported ON items(dataset_id, source_path, caption, image_hash,
    coalesce(question, ''), coalesce(answers_json, ''))
    WHERE video_id IS NULL AND frame_s IS NULL;
"#;

/// Full-text search over captions and their context: an external-content FTS5 index (the text
/// stays in `items` only), kept in step by triggers and filled from the rows already there.
const V4: &str = r#"
CREATE VIRTUAL TABLE items_fts USING fts5(
    caption, context_before, context_after,
    content = 'items', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2',
    -- Prefix indexes: the app searches as the user types ("ki*"), which would otherwise
    -- scan every term starting so.
    prefix = '2 3'
);
CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN
    INSERT INTO items_fts(rowid, caption, context_before, context_after)
    VALUES (new.id, new.caption, new.context_before, new.context_after);
END;
CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN
    INSERT INTO items_fts(items_fts, rowid, caption, context_before, context_after)
    VALUES ('delete', old.id, old.caption, old.context_before, old.context_after);
END;
-- Only text changes touch the index (a split or flag update does not).
CREATE TRIGGER items_fts_update AFTER UPDATE OF id, caption, context_before, context_after
ON items BEGIN
    INSERT INTO items_fts(items_fts, rowid, caption, context_before, context_after)
    VALUES ('delete', old.id, old.caption, old.context_before, old.context_after);
    INSERT INTO items_fts(rowid, caption, context_before, context_after)
    VALUES (new.id, new.caption, new.context_before, new.context_after);
END;
INSERT INTO items_fts(items_fts) VALUES ('rebuild');
"#;

/// Training runs (pre-training and fine-tuning): their settings and state, the metrics of each
/// step, and the checkpoints written (the files live under the data directory).
const V5: &str = r#"
CREATE TABLE runs (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    kind           TEXT NOT NULL CHECK (kind IN ('pretrain', 'finetune')),
    -- The dataset trained on; a run outlives its dataset.
    dataset_id     INTEGER REFERENCES datasets(id) ON DELETE SET NULL,
    config_json    TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('running', 'stopped', 'finished', 'failed')),
    error          TEXT,
    -- The last finished training step.
    step           INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- The run a fine-tuning run started from; deleting that run keeps this one.
    parent_run_id  INTEGER REFERENCES runs(id) ON DELETE SET NULL
);
CREATE INDEX runs_parent ON runs(parent_run_id);
CREATE INDEX runs_dataset ON runs(dataset_id);

CREATE TABLE run_metrics (
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step    INTEGER NOT NULL,
    split   TEXT NOT NULL CHECK (split IN ('train', 'val')),
    name    TEXT NOT NULL,
    value   REAL NOT NULL,
    PRIMARY KEY (run_id, split, step, name)
) WITHOUT ROWID;

CREATE TABLE checkpoints (
    run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step        INTEGER NOT NULL,
    -- Relative to the data directory.
    path        TEXT NOT NULL,
    -- BLAKE3 (hex) of the checkpoint's manifest.
    checksum    TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (run_id, step)
);
"#;

/// VQA questions join the full-text index: searching "what color" finds the questions that ask
/// it. The index and its triggers are recreated with the column and rebuilt from `items`.
const V6: &str = r#"
DROP TRIGGER items_fts_insert;
DROP TRIGGER items_fts_delete;
DROP TRIGGER items_fts_update;
DROP TABLE items_fts;
CREATE VIRTUAL TABLE items_fts USING fts5(
    caption, context_before, context_after, question,
    content = 'items', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);
CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN
    INSERT INTO items_fts(rowid, caption, context_before, context_after, question)
    VALUES (new.id, new.caption, new.context_before, new.context_after, new.question);
END;
CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN
    INSERT INTO items_fts(items_fts, rowid, caption, context_before, context_after, question)
    VALUES ('delete', old.id, old.caption, old.context_before, old.context_after, old.question);
END;
CREATE TRIGGER items_fts_update AFTER UPDATE OF id, caption, context_before, context_after, question
ON items BEGIN
    INSERT INTO items_fts(items_fts, rowid, caption, context_before, context_after, question)
    VALUES ('delete', old.id, old.caption, old.context_before, old.context_after, old.question);
    INSERT INTO items_fts(rowid, caption, context_before, context_after, question)
    VALUES (new.id, new.caption, new.context_before, new.context_after, new.question);
END;
INSERT INTO items_fts(items_fts) VALUES ('rebuild');
"#;

/// Evaluations of runs (`tessera eval`): one row per run, checkpoint, kind, data set and split,
/// replaced when evaluated again.
const V7: &str = r#"
CREATE TABLE evaluations (
    run_id        INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('retrieval', 'vqa')),
    dataset       TEXT NOT NULL,
    split         TEXT NOT NULL,
    step          INTEGER NOT NULL,
    -- The manifest hash of the evaluated checkpoint.
    checksum      TEXT NOT NULL,
    metrics_json  TEXT NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (run_id, kind, dataset, split)
);
"#;

/// The browser's grid reads a data set a page at a time in source order: an index in that order
/// serves each page without sorting the whole data set.
const V8: &str = r#"
CREATE INDEX items_source_order ON items(dataset_id, video_id, start_s, id);
"#;

/// Bulk imports index their text once, at the end of their transaction, instead of row by row:
/// FTS5 writes its pending terms out at every statement of a transaction that has touched it,
/// which made saving 10,000 imported items take a second. A bulk insert holds a row in
/// `items_fts_deferred` inside its own transaction while it inserts, so the trigger leaves its
/// items to it; no row outlives that transaction (a killed import rolls it back with the rest).
const V9: &str = r#"
CREATE TABLE items_fts_deferred (pending INTEGER NOT NULL);
DROP TRIGGER items_fts_insert;
CREATE TRIGGER items_fts_insert AFTER INSERT ON items
WHEN NOT EXISTS (SELECT 1 FROM items_fts_deferred) BEGIN
    INSERT INTO items_fts(rowid, caption, context_before, context_after, question)
    VALUES (new.id, new.caption, new.context_before, new.context_after, new.question);
END;
"#;
