//! Training runs (pre-training and fine-tuning share them): a run's settings and state, the
//! metrics of each step, and the checkpoints it wrote (migration V5). Checkpoint files live
//! under the data directory; the catalog keeps their relative path and manifest checksum.
//!
//! Resuming a run restores its latest checkpoint ([`Store::resume_point`]) and then forgets
//! whatever was recorded after it ([`Store::truncate_run_after`]), so the metric series always
//! matches the restored state.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{params, Connection, OptionalExtension};

use super::{valid_dataset_name, Result, Store, StoreError};

/// A run kind, status or metric split that is not one of the known words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?} (expected one of: {expected})")]
pub struct ParseRunEnumError {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static str,
}

/// An enum stored as one lowercase word: `as_str`, `FromStr`, `Display` and `FromSql`.
macro_rules! word_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }
        }

        impl FromStr for $name {
            type Err = ParseRunEnumError;

            fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
                match s {
                    $($word => Ok($name::$variant),)+
                    _ => Err(ParseRunEnumError {
                        what: $what,
                        value: s.to_string(),
                        expected: concat!($($word, ", "),+).trim_end_matches(", "),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e: ParseRunEnumError| FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

word_enum!(
    /// What a run trains.
    RunKind, "run kind" {
        /// Pre-training the model from scratch.
        Pretrain = "pretrain",
        /// Fine-tuning a pre-trained model (usually from a parent run's checkpoint).
        Finetune = "finetune",
    }
);

word_enum!(
    /// Where a run stands. Any status may follow any other (a stopped, finished or failed run
    /// can be resumed); the store does not police transitions.
    RunStatus, "run status" {
        Running = "running",
        /// Cancelled by the user after a checkpoint; resumable.
        Stopped = "stopped",
        Finished = "finished",
        /// Stopped by an error (kept in [`RunRow::error`]).
        Failed = "failed",
    }
);

word_enum!(
    /// Which data a metric was measured on.
    MetricSplit, "metric split" {
        Train = "train",
        Val = "val",
    }
);

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunRow {
    pub id: i64,
    pub name: String,
    pub kind: RunKind,
    pub dataset_id: Option<i64>,
    /// The run's settings as the trainer wrote them (a JSON document).
    pub config_json: String,
    pub status: RunStatus,
    pub error: Option<String>,
    /// The last finished training step.
    pub step: u64,
    pub created_at: String,
    pub updated_at: String,
    pub parent_run_id: Option<i64>,
}

/// A run as `runs` lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunSummary {
    pub id: i64,
    pub name: String,
    pub kind: RunKind,
    /// `None`: trained without a dataset of the catalog, or that dataset is gone.
    pub dataset: Option<String>,
    pub status: RunStatus,
    pub error: Option<String>,
    pub step: u64,
    pub created_at: String,
    pub updated_at: String,
    /// The name of the run this one started from.
    pub parent: Option<String>,
    /// The train `loss` of the latest step that recorded one.
    pub loss: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MetricRow {
    pub step: u64,
    pub split: MetricSplit,
    pub name: String,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CheckpointRow {
    pub run_id: i64,
    pub step: u64,
    /// Relative to the data directory ([`Store::root`]).
    pub path: String,
    /// BLAKE3 (hex) of the checkpoint's manifest.
    pub checksum: String,
    pub created_at: String,
}

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

const RUN_COLUMNS: &str = "id, name, kind, dataset_id, config_json, status, error, step,
    created_at, updated_at, parent_run_id";

fn run_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        dataset_id: r.get(3)?,
        config_json: r.get(4)?,
        status: r.get(5)?,
        error: r.get(6)?,
        step: get_step(r, 7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
        parent_run_id: r.get(10)?,
    })
}

fn checkpoint_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CheckpointRow> {
    Ok(CheckpointRow {
        run_id: r.get(0)?,
        step: get_step(r, 1)?,
        path: r.get(2)?,
        checksum: r.get(3)?,
        created_at: r.get(4)?,
    })
}

/// Steps are `u64` to callers and `INTEGER` (i64) in SQLite.
fn get_step(r: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    Ok(r.get::<_, i64>(idx)?.max(0) as u64)
}

fn sql_step(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}

/// Touches run `run_id` (its `updated_at`, and `step` when given); fails if there is no such run.
fn touch_run(conn: &Connection, run_id: i64, step: Option<u64>) -> Result<()> {
    let n = conn.execute(
        &format!("UPDATE runs SET step = coalesce(?2, step), updated_at = {NOW} WHERE id = ?1"),
        params![run_id, step.map(sql_step)],
    )?;
    if n == 0 {
        return Err(StoreError::NoSuchRunId(run_id));
    }
    Ok(())
}

fn checkpoints_where(
    conn: &Connection,
    run_id: i64,
    after_step: Option<u64>,
) -> Result<Vec<CheckpointRow>> {
    let mut stmt = conn.prepare(
        "SELECT run_id, step, path, checksum, created_at FROM checkpoints
         WHERE run_id = ?1 AND (?2 IS NULL OR step > ?2) ORDER BY step",
    )?;
    let rows = stmt.query_map(
        params![run_id, after_step.map(sql_step)],
        checkpoint_from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

impl Store {
    /// Run names follow the rules of dataset names (they name checkpoint directories).
    pub fn check_run_name(name: &str) -> Result<()> {
        if !valid_dataset_name(name) {
            return Err(StoreError::InvalidRunName(name.to_string()));
        }
        Ok(())
    }

    /// Registers a new run, status `running` at step 0. Run names follow the rules of dataset
    /// names (they name checkpoint directories). `parent`: the run this one starts from.
    pub fn create_run(
        &self,
        name: &str,
        kind: RunKind,
        dataset_id: Option<i64>,
        config_json: &str,
        parent: Option<i64>,
    ) -> Result<RunRow> {
        Self::check_run_name(name)?;
        let tx = self.conn.unchecked_transaction()?;
        if let Some(id) = dataset_id {
            let known: Option<i64> = tx
                .query_row("SELECT id FROM datasets WHERE id = ?1", [id], |r| r.get(0))
                .optional()?;
            if known.is_none() {
                return Err(StoreError::NoSuchDataset(format!("#{id}")));
            }
        }
        if let Some(id) = parent {
            let known: Option<i64> = tx
                .query_row("SELECT id FROM runs WHERE id = ?1", [id], |r| r.get(0))
                .optional()?;
            if known.is_none() {
                return Err(StoreError::NoSuchRunId(id));
            }
        }
        let added = tx.execute(
            "INSERT INTO runs(name, kind, dataset_id, config_json, status, parent_run_id)
             VALUES (?1, ?2, ?3, ?4, 'running', ?5) ON CONFLICT(name) DO NOTHING",
            params![name, kind.as_str(), dataset_id, config_json, parent],
        )?;
        if added == 0 {
            return Err(StoreError::RunExists(name.to_string()));
        }
        let run = tx.query_row(
            &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
            [tx.last_insert_rowid()],
            run_from_row,
        )?;
        tx.commit()?;
        Ok(run)
    }

    pub fn run(&self, name: &str) -> Result<RunRow> {
        self.conn
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE name = ?1"),
                [name],
                run_from_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::NoSuchRun(name.to_string()))
    }

    pub fn run_by_id(&self, run_id: i64) -> Result<RunRow> {
        self.conn
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
                [run_id],
                run_from_row,
            )
            .optional()?
            .ok_or(StoreError::NoSuchRunId(run_id))
    }

    /// Every run, newest first.
    pub fn runs(&self) -> Result<Vec<RunSummary>> {
        self.run_summaries(None)
    }

    /// One run as [`Store::runs`] lists it.
    pub fn run_summary(&self, name: &str) -> Result<RunSummary> {
        self.run_summaries(Some(name))?
            .pop()
            .ok_or_else(|| StoreError::NoSuchRun(name.to_string()))
    }

    fn run_summaries(&self, name: Option<&str>) -> Result<Vec<RunSummary>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.id, r.name, r.kind, d.name, r.status, r.error, r.step, r.created_at,
                r.updated_at, p.name,
                (SELECT m.value FROM run_metrics m
                 WHERE m.run_id = r.id AND m.split = 'train' AND m.name = 'loss'
                 ORDER BY m.step DESC LIMIT 1)
             FROM runs r
             LEFT JOIN datasets d ON d.id = r.dataset_id
             LEFT JOIN runs p ON p.id = r.parent_run_id
             WHERE ?1 IS NULL OR r.name = ?1
             ORDER BY r.created_at DESC, r.id DESC",
        )?;
        let rows = stmt.query_map([name], |r| {
            Ok(RunSummary {
                id: r.get(0)?,
                name: r.get(1)?,
                kind: r.get(2)?,
                dataset: r.get(3)?,
                status: r.get(4)?,
                error: r.get(5)?,
                step: get_step(r, 6)?,
                created_at: r.get(7)?,
                updated_at: r.get(8)?,
                parent: r.get(9)?,
                loss: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Sets a run's status and error (`None` clears a previous error).
    pub fn set_run_status(
        &self,
        run_id: i64,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<()> {
        let n = self.conn.execute(
            &format!("UPDATE runs SET status = ?2, error = ?3, updated_at = {NOW} WHERE id = ?1"),
            params![run_id, status.as_str(), error],
        )?;
        if n == 0 {
            return Err(StoreError::NoSuchRunId(run_id));
        }
        Ok(())
    }

    /// Records the metrics of one step, in one transaction; a metric recorded again for the same
    /// step and split replaces the old value. A train step also becomes the run's step. A NaN
    /// value is refused (SQLite would store it as NULL) and nothing of the step is written.
    pub fn record_step(
        &self,
        run_id: i64,
        step: u64,
        split: MetricSplit,
        metrics: &[(&str, f64)],
    ) -> Result<()> {
        if let Some((name, _)) = metrics.iter().find(|(_, v)| v.is_nan()) {
            return Err(StoreError::NanMetric {
                step,
                name: name.to_string(),
            });
        }
        let tx = self.conn.unchecked_transaction()?;
        touch_run(&tx, run_id, (split == MetricSplit::Train).then_some(step))?;
        {
            let mut ins = tx.prepare(
                "INSERT OR REPLACE INTO run_metrics(run_id, step, split, name, value)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (name, value) in metrics {
                ins.execute(params![run_id, sql_step(step), split.as_str(), name, value])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// A run's metrics (of one split, or all), ordered by step, then split, then name.
    pub fn run_metrics(&self, run_id: i64, split: Option<MetricSplit>) -> Result<Vec<MetricRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT step, split, name, value FROM run_metrics
             WHERE run_id = ?1 AND (?2 IS NULL OR split = ?2)
             ORDER BY step, split, name",
        )?;
        let rows = stmt.query_map(params![run_id, split.map(MetricSplit::as_str)], |r| {
            Ok(MetricRow {
                step: get_step(r, 0)?,
                split: r.get(1)?,
                name: r.get(2)?,
                value: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One metric of a run as (step, value), by step.
    pub fn metric_series(
        &self,
        run_id: i64,
        split: MetricSplit,
        name: &str,
    ) -> Result<Vec<(u64, f64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT step, value FROM run_metrics
             WHERE run_id = ?1 AND split = ?2 AND name = ?3 ORDER BY step",
        )?;
        let rows = stmt.query_map(params![run_id, split.as_str(), name], |r| {
            Ok((get_step(r, 0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records a checkpoint written at `step` (`path` relative to the data directory; saving a
    /// step again replaces its row) and makes `step` the run's step, in one transaction.
    pub fn save_checkpoint(
        &self,
        run_id: i64,
        step: u64,
        path: &str,
        checksum: &str,
    ) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        touch_run(&tx, run_id, Some(step))?;
        tx.execute(
            "INSERT OR REPLACE INTO checkpoints(run_id, step, path, checksum) VALUES (?1, ?2, ?3, ?4)",
            params![run_id, sql_step(step), path, checksum],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Forgets the checkpoint of `run_id` at `step` (the caller deletes its files after).
    pub fn forget_checkpoint(&self, run_id: i64, step: u64) -> Result<()> {
        self.conn.execute(
            "DELETE FROM checkpoints WHERE run_id = ?1 AND step = ?2",
            params![run_id, sql_step(step)],
        )?;
        Ok(())
    }

    /// A run's checkpoints, oldest step first.
    pub fn checkpoints(&self, run_id: i64) -> Result<Vec<CheckpointRow>> {
        checkpoints_where(&self.conn, run_id, None)
    }

    /// The checkpoint to resume run `run_id` from: its latest. `None`: start from scratch.
    pub fn resume_point(&self, run_id: i64) -> Result<Option<CheckpointRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT run_id, step, path, checksum, created_at FROM checkpoints
                 WHERE run_id = ?1 ORDER BY step DESC LIMIT 1",
                [run_id],
                checkpoint_from_row,
            )
            .optional()?)
    }

    /// Forgets what run `run_id` recorded after `step` (metrics of every split, checkpoints) and
    /// makes `step` the run's step, in one transaction: on resume, so the series matches the
    /// restored state. Returns the checkpoint rows removed, oldest first, so their files can go.
    pub fn truncate_run_after(&self, run_id: i64, step: u64) -> Result<Vec<CheckpointRow>> {
        let tx = self.conn.unchecked_transaction()?;
        touch_run(&tx, run_id, Some(step))?;
        let removed = checkpoints_where(&tx, run_id, Some(step))?;
        tx.execute(
            "DELETE FROM run_metrics WHERE run_id = ?1 AND step > ?2",
            params![run_id, sql_step(step)],
        )?;
        tx.execute(
            "DELETE FROM checkpoints WHERE run_id = ?1 AND step > ?2",
            params![run_id, sql_step(step)],
        )?;
        tx.commit()?;
        Ok(removed)
    }

    /// Deletes run `name` with its metrics and checkpoint rows; runs started from it keep going
    /// without a parent. Returns the checkpoint rows it had, so their files can go.
    pub fn delete_run(&self, name: &str) -> Result<Vec<CheckpointRow>> {
        let tx = self.conn.unchecked_transaction()?;
        let id: i64 = tx
            .query_row("SELECT id FROM runs WHERE name = ?1", [name], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NoSuchRun(name.to_string()))?;
        let removed = checkpoints_where(&tx, id, None)?;
        tx.execute("DELETE FROM runs WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    fn pretrain(store: &Store, name: &str) -> RunRow {
        store
            .create_run(name, RunKind::Pretrain, None, r#"{"lr":0.001}"#, None)
            .unwrap()
    }

    #[test]
    fn enums_round_trip_through_words() {
        for k in RunKind::ALL {
            assert_eq!(k.as_str().parse::<RunKind>().unwrap(), *k);
        }
        for s in RunStatus::ALL {
            assert_eq!(s.as_str().parse::<RunStatus>().unwrap(), *s);
        }
        for s in MetricSplit::ALL {
            assert_eq!(s.to_string().parse::<MetricSplit>().unwrap(), *s);
        }
        let err = "test".parse::<MetricSplit>().unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown metric split "test" (expected one of: train, val)"#
        );
        assert_eq!(
            serde_json::to_string(&RunStatus::Finished).unwrap(),
            r#""finished""#
        );
    }

    #[test]
    fn creates_runs_with_unique_valid_names() {
        let (_dir, store) = store();
        let ds = store.ensure_dataset("coco").unwrap();
        let base = store
            .create_run("base", RunKind::Pretrain, Some(ds), "{}", None)
            .unwrap();
        assert_eq!(
            (base.kind, base.status, base.step, base.dataset_id),
            (RunKind::Pretrain, RunStatus::Running, 0, Some(ds))
        );
        assert_eq!((base.error, base.parent_run_id), (None, None));
        assert!(!base.created_at.is_empty());
        assert_eq!(store.run("base").unwrap().id, base.id);
        assert_eq!(store.run_by_id(base.id).unwrap().name, "base");

        assert!(matches!(
            store.create_run("base", RunKind::Finetune, None, "{}", None),
            Err(StoreError::RunExists(n)) if n == "base"
        ));
        assert!(matches!(
            store.create_run("../x", RunKind::Pretrain, None, "{}", None),
            Err(StoreError::InvalidRunName(_))
        ));
        assert!(matches!(
            store.create_run("ft", RunKind::Finetune, None, "{}", Some(base.id + 99)),
            Err(StoreError::NoSuchRunId(_))
        ));
        assert!(matches!(
            store.create_run("ft", RunKind::Finetune, Some(ds + 99), "{}", None),
            Err(StoreError::NoSuchDataset(_))
        ));
        assert!(matches!(store.run("nope"), Err(StoreError::NoSuchRun(n)) if n == "nope"));

        let ft = store
            .create_run("ft", RunKind::Finetune, Some(ds), "{}", Some(base.id))
            .unwrap();
        assert_eq!(ft.parent_run_id, Some(base.id));
        let listed = store.runs().unwrap();
        assert_eq!(
            listed.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["ft", "base"],
            "newest first"
        );
        assert_eq!(listed[0].parent.as_deref(), Some("base"));
        assert_eq!(listed[0].dataset.as_deref(), Some("coco"));

        // Deleting the parent keeps the fine-tuned run; deleting a run cascades.
        store
            .record_step(base.id, 1, MetricSplit::Train, &[("loss", 1.0)])
            .unwrap();
        store
            .save_checkpoint(base.id, 1, "runs/base/step-1", "abc")
            .unwrap();
        let removed = store.delete_run("base").unwrap();
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].path, "runs/base/step-1");
        assert!(store.run_metrics(base.id, None).unwrap().is_empty());
        assert!(store.checkpoints(base.id).unwrap().is_empty());
        assert_eq!(store.run("ft").unwrap().parent_run_id, None);
        assert!(matches!(
            store.delete_run("base"),
            Err(StoreError::NoSuchRun(_))
        ));
    }

    #[test]
    fn records_steps_and_reads_them_back_ordered() {
        let (_dir, store) = store();
        let run = pretrain(&store, "r");
        for step in [2u64, 1, 3] {
            store
                .record_step(
                    run.id,
                    step,
                    MetricSplit::Train,
                    &[("loss", 10.0 - step as f64), ("lr", 0.1)],
                )
                .unwrap();
        }
        store
            .record_step(run.id, 2, MetricSplit::Val, &[("loss", 7.5)])
            .unwrap();
        // Recording a metric again replaces it.
        store
            .record_step(run.id, 3, MetricSplit::Train, &[("loss", 6.5)])
            .unwrap();
        assert_eq!(store.run("r").unwrap().step, 3);

        let train = store.run_metrics(run.id, Some(MetricSplit::Train)).unwrap();
        let got: Vec<_> = train
            .iter()
            .map(|m| (m.step, m.name.as_str(), m.value))
            .collect();
        assert_eq!(
            got,
            [
                (1, "loss", 9.0),
                (1, "lr", 0.1),
                (2, "loss", 8.0),
                (2, "lr", 0.1),
                (3, "loss", 6.5),
                (3, "lr", 0.1)
            ]
        );
        let all = store.run_metrics(run.id, None).unwrap();
        assert_eq!(all.len(), 7);
        assert_eq!(
            (all[4].step, all[4].split, all[4].value),
            (2, MetricSplit::Val, 7.5)
        );
        assert_eq!(
            store
                .metric_series(run.id, MetricSplit::Train, "loss")
                .unwrap(),
            [(1, 9.0), (2, 8.0), (3, 6.5)]
        );
        assert_eq!(
            store
                .metric_series(run.id, MetricSplit::Val, "loss")
                .unwrap(),
            [(2, 7.5)]
        );

        // A val step does not move the run; a NaN writes nothing; an unknown run is an error.
        store
            .record_step(run.id, 9, MetricSplit::Val, &[("acc", 0.5)])
            .unwrap();
        assert_eq!(store.run("r").unwrap().step, 3);
        assert!(matches!(
            store.record_step(run.id, 4, MetricSplit::Train, &[("lr", 0.1), ("loss", f64::NAN)]),
            Err(StoreError::NanMetric { step: 4, ref name }) if name == "loss"
        ));
        assert!(
            store
                .metric_series(run.id, MetricSplit::Train, "lr")
                .unwrap()
                .len()
                == 3
        );
        assert!(matches!(
            store.record_step(run.id + 1, 1, MetricSplit::Train, &[("loss", 1.0)]),
            Err(StoreError::NoSuchRunId(_))
        ));
    }

    #[test]
    fn truncating_keeps_what_came_before_the_resume_point() {
        let (_dir, store) = store();
        let run = pretrain(&store, "r");
        assert_eq!(store.resume_point(run.id).unwrap(), None);
        for step in 1..=6u64 {
            store
                .record_step(run.id, step, MetricSplit::Train, &[("loss", step as f64)])
                .unwrap();
            if step % 2 == 0 {
                store
                    .record_step(run.id, step, MetricSplit::Val, &[("loss", step as f64)])
                    .unwrap();
                store
                    .save_checkpoint(run.id, step, &format!("runs/r/{step}"), "ff")
                    .unwrap();
            }
        }
        let cps = store.checkpoints(run.id).unwrap();
        assert_eq!(cps.iter().map(|c| c.step).collect::<Vec<_>>(), [2, 4, 6]);
        let latest = store.resume_point(run.id).unwrap().unwrap();
        assert_eq!((latest.step, latest.path.as_str()), (6, "runs/r/6"));

        // Resuming from step 4 (say step 6's files were found damaged) drops what followed.
        let removed = store.truncate_run_after(run.id, 4).unwrap();
        assert_eq!(removed.iter().map(|c| c.step).collect::<Vec<_>>(), [6]);
        assert_eq!(store.run("r").unwrap().step, 4);
        assert_eq!(store.resume_point(run.id).unwrap().unwrap().step, 4);
        assert_eq!(
            store
                .checkpoints(run.id)
                .unwrap()
                .iter()
                .map(|c| c.step)
                .collect::<Vec<_>>(),
            [2, 4]
        );
        assert_eq!(
            store
                .metric_series(run.id, MetricSplit::Train, "loss")
                .unwrap(),
            [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]
        );
        assert_eq!(
            store
                .metric_series(run.id, MetricSplit::Val, "loss")
                .unwrap(),
            [(2, 2.0), (4, 4.0)]
        );
        // Truncating to 0 forgets everything.
        assert_eq!(store.truncate_run_after(run.id, 0).unwrap().len(), 2);
        assert!(store.run_metrics(run.id, None).unwrap().is_empty());
        assert_eq!(store.run("r").unwrap().step, 0);
        assert!(matches!(
            store.truncate_run_after(run.id + 1, 0),
            Err(StoreError::NoSuchRunId(_))
        ));
    }

    #[test]
    fn status_transitions_keep_and_clear_errors() {
        let (_dir, store) = store();
        let run = pretrain(&store, "r");
        store
            .set_run_status(run.id, RunStatus::Stopped, None)
            .unwrap();
        assert_eq!(store.run("r").unwrap().status, RunStatus::Stopped);
        store
            .set_run_status(run.id, RunStatus::Running, None)
            .unwrap();
        store
            .set_run_status(run.id, RunStatus::Failed, Some("out of memory"))
            .unwrap();
        let failed = store.run("r").unwrap();
        assert_eq!(
            (failed.status, failed.error.as_deref()),
            (RunStatus::Failed, Some("out of memory"))
        );
        assert!(failed.updated_at >= run.updated_at);
        let listed = &store.runs().unwrap()[0];
        assert_eq!(listed.error.as_deref(), Some("out of memory"));
        store
            .set_run_status(run.id, RunStatus::Running, None)
            .unwrap();
        store
            .set_run_status(run.id, RunStatus::Finished, None)
            .unwrap();
        let done = store.run("r").unwrap();
        assert_eq!((done.status, done.error), (RunStatus::Finished, None));
        assert!(matches!(
            store.set_run_status(run.id + 1, RunStatus::Stopped, None),
            Err(StoreError::NoSuchRunId(_))
        ));
    }

    #[test]
    fn lists_the_latest_train_loss() {
        let (_dir, store) = store();
        let a = pretrain(&store, "a");
        let b = pretrain(&store, "b");
        assert_eq!(store.runs().unwrap()[0].loss, None);
        store
            .record_step(a.id, 1, MetricSplit::Train, &[("loss", 3.0)])
            .unwrap();
        store
            .record_step(a.id, 2, MetricSplit::Train, &[("loss", 2.5)])
            .unwrap();
        // Later steps without a loss, and val losses, do not hide the latest train loss.
        store
            .record_step(a.id, 3, MetricSplit::Train, &[("lr", 0.1)])
            .unwrap();
        store
            .record_step(a.id, 3, MetricSplit::Val, &[("loss", 9.0)])
            .unwrap();
        store
            .record_step(b.id, 1, MetricSplit::Train, &[("loss", 4.0)])
            .unwrap();
        let runs = store.runs().unwrap();
        let loss = |name: &str| runs.iter().find(|r| r.name == name).unwrap().loss;
        assert_eq!((loss("a"), loss("b")), (Some(2.5), Some(4.0)));
        assert_eq!(runs.iter().find(|r| r.name == "a").unwrap().step, 3);
    }

    #[test]
    fn a_reopened_store_keeps_runs_metrics_and_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let (run, metrics, cps) = {
            let store = Store::open(dir.path()).unwrap();
            let ds = store.ensure_dataset("d").unwrap();
            let base = pretrain(&store, "base");
            let run = store
                .create_run(
                    "ft",
                    RunKind::Finetune,
                    Some(ds),
                    r#"{"epochs":2}"#,
                    Some(base.id),
                )
                .unwrap();
            store
                .record_step(
                    run.id,
                    1,
                    MetricSplit::Train,
                    &[("loss", 1.5), ("acc", 0.25)],
                )
                .unwrap();
            store
                .record_step(run.id, 1, MetricSplit::Val, &[("loss", 1.75)])
                .unwrap();
            store
                .save_checkpoint(run.id, 1, "runs/ft/step-1", "beef")
                .unwrap();
            store
                .set_run_status(run.id, RunStatus::Stopped, None)
                .unwrap();
            (
                store.run("ft").unwrap(),
                store.run_metrics(run.id, None).unwrap(),
                store.checkpoints(run.id).unwrap(),
            )
        };
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.run("ft").unwrap(), run);
        assert_eq!(run.status, RunStatus::Stopped);
        assert_eq!(run.config_json, r#"{"epochs":2}"#);
        assert_eq!(store.run_metrics(run.id, None).unwrap(), metrics);
        assert_eq!(metrics.len(), 3);
        assert_eq!(store.checkpoints(run.id).unwrap(), cps);
        assert_eq!(
            store.resume_point(run.id).unwrap().map(|c| c.checksum),
            Some("beef".to_string())
        );
        let runs = store.runs().unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].loss, Some(1.5));
    }
}

/// A stored evaluation of a run's checkpoint.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvaluationRow {
    pub kind: String,
    pub dataset: String,
    pub split: String,
    pub step: u64,
    pub checksum: String,
    pub metrics: serde_json::Value,
    pub created_at: String,
}

impl Store {
    /// Records (or replaces) the evaluation of `run_id`'s checkpoint `step` on a data set split.
    #[allow(clippy::too_many_arguments)]
    pub fn save_evaluation(
        &self,
        run_id: i64,
        kind: &str,
        dataset: &str,
        split: &str,
        step: u64,
        checksum: &str,
        metrics: &serde_json::Value,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO evaluations(run_id, kind, dataset, split, step, checksum, metrics_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(run_id, kind, dataset, split) DO UPDATE SET
                step = excluded.step, checksum = excluded.checksum,
                metrics_json = excluded.metrics_json, created_at = excluded.created_at",
            params![
                run_id,
                kind,
                dataset,
                split,
                sql_step(step),
                checksum,
                metrics.to_string()
            ],
        )?;
        Ok(())
    }

    /// A run's evaluations, by kind, data set and split.
    pub fn evaluations(&self, run_id: i64) -> Result<Vec<EvaluationRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT kind, dataset, split, step, checksum, metrics_json, created_at
             FROM evaluations WHERE run_id = ?1 ORDER BY kind, dataset, split",
        )?;
        let rows = stmt.query_map([run_id], |r| {
            let json: String = r.get(5)?;
            Ok(EvaluationRow {
                kind: r.get(0)?,
                dataset: r.get(1)?,
                split: r.get(2)?,
                step: get_step(r, 3)?,
                checksum: r.get(4)?,
                metrics: serde_json::from_str(&json).unwrap_or(serde_json::Value::Null),
                created_at: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
