//! A training run against the store: the corpus from a dataset's splits, a run row, the step
//! loop with metrics, validation and checkpoints, cancellation that checkpoints, and resume
//! from the last checkpoint (which continues exactly as if never stopped).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::events::{Event, EventSink};
use crate::model::{select_device, DeviceChoice, RunConfig};
use crate::store::{MetricSplit, RunKind, RunStatus, Store};
use crate::text::Tokenizer;

use super::batch::{BatchBuilder, Corpus, CorpusItem, ImageCache, Loader};
use super::checkpoint;
use super::{Cancel, TrainError, Trainer};

/// Where the weights start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitFrom {
    Random,
    /// all-MiniLM-L6-v2's BERT weights (the `small` shapes) from this safetensors file.
    Minilm(PathBuf),
}

#[derive(Debug, Clone)]
pub struct PretrainOptions {
    pub dataset: String,
    pub config: RunConfig,
    /// Default: `<dataset>-<n>`.
    pub run: Option<String>,
    pub init: InitFrom,
    pub device: DeviceChoice,
}

/// What the store keeps to resume a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredRun {
    dataset: String,
    config: RunConfig,
    init: InitFrom,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    pub run: String,
    pub status: String,
    pub step: u64,
    pub steps: u64,
    /// The last step's metrics.
    pub last: Vec<(String, f64)>,
    pub checkpoint: Option<String>,
}

/// Decoded images kept in memory across epochs.
const IMAGE_CACHE_BYTES: usize = 1 << 30;

pub fn pretrain(
    store: &Store,
    opts: &PretrainOptions,
    sink: Arc<dyn EventSink>,
    cancel: &Cancel,
) -> Result<RunReport, TrainError> {
    opts.config.validate()?;
    let dataset_id = store.dataset_id(&opts.dataset)?;
    // Fail on data problems before a run row exists.
    let (train, _) = corpus_items(store, &opts.dataset)?;
    let name = match &opts.run {
        Some(n) => n.clone(),
        None => {
            let taken: Vec<String> = store.runs()?.into_iter().map(|r| r.name).collect();
            (1..)
                .map(|i| format!("{}-{i}", opts.dataset))
                .find(|n| !taken.contains(n))
                .expect("a free name")
        }
    };
    let stored = StoredRun {
        dataset: opts.dataset.clone(),
        config: opts.config.clone(),
        init: opts.init.clone(),
    };
    let json = serde_json::to_string(&stored).expect("run config serialises");
    let row = store.create_run(&name, RunKind::Pretrain, Some(dataset_id), &json, None)?;
    drop(train);
    drive(
        store,
        row.id,
        &name,
        stored,
        None,
        opts.device,
        sink,
        cancel,
    )
}

/// Continues a stopped, failed or killed run from its last checkpoint (or from the start when
/// it has none).
pub fn resume(
    store: &Store,
    run: &str,
    device: DeviceChoice,
    sink: Arc<dyn EventSink>,
    cancel: &Cancel,
) -> Result<RunReport, TrainError> {
    let row = store.run(run)?;
    if row.status == RunStatus::Finished {
        return Err(TrainError::Run {
            run: run.into(),
            reason: "already finished".into(),
        });
    }
    let stored: StoredRun =
        serde_json::from_str(&row.config_json).map_err(|e| TrainError::Run {
            run: run.into(),
            reason: format!("stored config unreadable: {e}"),
        })?;
    let point = store.resume_point(row.id)?;
    drive(
        store,
        row.id,
        run,
        stored,
        point.map(|p| (p.step, p.path, p.checksum)),
        device,
        sink,
        cancel,
    )
}

/// The training and validation pairs of a dataset: its `train` split (everything when it has no
/// splits) and its `val` split (else `test`).
fn corpus_items(
    store: &Store,
    dataset: &str,
) -> Result<(Vec<CorpusItem>, Vec<CorpusItem>), TrainError> {
    let items = store.items(dataset, None)?;
    if items.is_empty() {
        return Err(TrainError::Data {
            dataset: dataset.into(),
            reason: "has no items (no images to train on)".into(),
        });
    }
    let pick = |split: &str| -> Vec<CorpusItem> {
        items
            .iter()
            .filter(|i| i.split.as_deref() == Some(split))
            .map(|i| CorpusItem {
                image_hash: i.image_hash.clone(),
                caption: i.caption.clone(),
            })
            .collect()
    };
    let has_splits = items.iter().any(|i| i.split.is_some());
    let train = if has_splits {
        pick("train")
    } else {
        items
            .iter()
            .map(|i| CorpusItem {
                image_hash: i.image_hash.clone(),
                caption: i.caption.clone(),
            })
            .collect()
    };
    if train.len() < 2 {
        return Err(TrainError::Data {
            dataset: dataset.into(),
            reason: format!("has {} training pairs; at least 2 are needed", train.len()),
        });
    }
    let mut val = pick("val");
    if val.is_empty() {
        val = pick("test");
    }
    Ok((train, val))
}

fn checkpoint_dir(store: &Store, run: &str, step: u64) -> (PathBuf, String) {
    let rel = format!("runs/{run}/checkpoints/step-{step:08}");
    (store.root().join(&rel), rel)
}

#[allow(clippy::too_many_arguments)]
fn drive(
    store: &Store,
    run_id: i64,
    run: &str,
    stored: StoredRun,
    from: Option<(u64, String, String)>,
    device: DeviceChoice,
    sink: Arc<dyn EventSink>,
    cancel: &Cancel,
) -> Result<RunReport, TrainError> {
    let result = drive_inner(
        store,
        run_id,
        run,
        stored,
        from,
        device,
        sink.clone(),
        cancel,
    );
    match &result {
        Ok(r) => sink.emit(Event::TrainFinished {
            run: run.into(),
            step: r.step,
            status: r.status.clone(),
        }),
        Err(e) => {
            // The failure is recorded; the store keeps the last good checkpoint to resume from.
            let _ = store.set_run_status(run_id, RunStatus::Failed, Some(&e.to_string()));
        }
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn drive_inner(
    store: &Store,
    run_id: i64,
    run: &str,
    stored: StoredRun,
    from: Option<(u64, String, String)>,
    device: DeviceChoice,
    sink: Arc<dyn EventSink>,
    cancel: &Cancel,
) -> Result<RunReport, TrainError> {
    let cfg = stored.config.clone();
    let device = select_device(device)?;
    let tokenizer = Arc::new(Tokenizer::built_in());
    let mut trainer = Trainer::new(cfg.clone(), device.clone(), tokenizer.specials)?;
    match &from {
        Some((step, path, checksum)) => {
            let ckpt = checkpoint::read(&store.root().join(path), checksum, &device)?;
            if ckpt.state.config != cfg {
                return Err(TrainError::Checkpoint {
                    path: path.clone(),
                    reason: "its config differs from the run's".into(),
                });
            }
            trainer.restore(ckpt)?;
            for later in store.truncate_run_after(run_id, *step)? {
                let _ = std::fs::remove_dir_all(store.root().join(&later.path));
            }
        }
        None => {
            if let InitFrom::Minilm(path) = &stored.init {
                crate::model::minilm::load_bert_into(&trainer.vars, path)?;
                if let Some(t) = trainer.teacher.as_mut() {
                    *t = crate::model::snapshot(&trainer.vars);
                }
            }
            store.truncate_run_after(run_id, 0)?;
        }
    }
    store.set_run_status(run_id, RunStatus::Running, None)?;
    let (train, val) = corpus_items(store, &stored.dataset)?;
    let blobs = store.blobs().clone();
    let corpus = |items: Vec<CorpusItem>| {
        let blobs = blobs.clone();
        Arc::new(Corpus {
            items,
            read_image: Box::new(move |hash| std::fs::read(blobs.path_of(hash))),
        })
    };
    let cache = Arc::new(ImageCache::new(IMAGE_CACHE_BYTES));
    let builder = Arc::new(BatchBuilder {
        corpus: corpus(train),
        cfg: cfg.clone(),
        tokenizer: tokenizer.clone(),
        cache: cache.clone(),
        augment: true,
        seed: cfg.train.seed,
    });
    let val_builder = BatchBuilder {
        corpus: corpus(val.into_iter().take(cfg.train.val_items).collect()),
        cfg: cfg.clone(),
        tokenizer,
        cache,
        augment: false,
        seed: cfg.train.seed,
    };
    let t = &cfg.train;
    let accum = t.accumulate as u64;
    let mut loader = Loader::start(
        builder,
        trainer.step * accum,
        t.steps * accum,
        t.loader_threads,
    );
    sink.emit(Event::TrainStarted {
        run: run.into(),
        step: trainer.step,
        steps: t.steps,
        device: format!("{device:?}"),
    });
    let mut last = Vec::new();
    let mut last_ckpt = from.map(|f| f.1);
    let mut status = RunStatus::Finished;
    while trainer.step < t.steps {
        if cancel.is_cancelled() {
            status = RunStatus::Stopped;
            break;
        }
        let started = Instant::now();
        let micro = (0..accum)
            .map(|_| loader.next_batch())
            .collect::<Result<Vec<_>, _>>()?;
        let mut metrics = trainer.train_step(&micro)?;
        let rate = (t.batch as u64 * accum) as f64 / started.elapsed().as_secs_f64();
        metrics.push(("samples_per_s".into(), rate));
        let step = trainer.step;
        let pairs: Vec<(&str, f64)> = metrics.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        store.record_step(run_id, step, MetricSplit::Train, &pairs)?;
        let loss = metrics
            .iter()
            .find(|m| m.0 == "loss")
            .map(|m| m.1)
            .unwrap_or(f64::NAN);
        sink.emit(Event::TrainStep {
            step,
            steps: t.steps,
            loss,
            samples_per_s: rate,
        });
        last = metrics;
        if t.validate_every > 0
            && (step % t.validate_every == 0 || step == t.steps)
            && val_builder.corpus.items.len() >= 2
        {
            let val = validation(&trainer, &val_builder)?;
            let pairs: Vec<(&str, f64)> = val.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            store.record_step(run_id, step, MetricSplit::Val, &pairs)?;
            sink.emit(Event::TrainValidated { step, metrics: val });
        }
        if step % t.checkpoint_every == 0 || step == t.steps {
            last_ckpt = Some(save(store, run_id, run, &trainer, &sink)?);
        }
    }
    if status == RunStatus::Stopped
        && last_ckpt.as_deref() != Some(checkpoint_dir(store, run, trainer.step).1.as_str())
    {
        last_ckpt = Some(save(store, run_id, run, &trainer, &sink)?);
    }
    store.set_run_status(run_id, status, None)?;
    Ok(RunReport {
        run: run.into(),
        status: status.as_str().into(),
        step: trainer.step,
        steps: t.steps,
        last,
        checkpoint: last_ckpt,
    })
}

fn save(
    store: &Store,
    run_id: i64,
    run: &str,
    trainer: &Trainer,
    sink: &Arc<dyn EventSink>,
) -> Result<String, TrainError> {
    let (dir, rel) = checkpoint_dir(store, run, trainer.step);
    let checksum = checkpoint::write(&dir, &trainer.checkpoint())?;
    store.save_checkpoint(run_id, trainer.step, &rel, &checksum)?;
    // Only the newest few are kept: forgotten by the store first, so it never points at a
    // folder that is gone; a kill between the two leaves an orphan folder, nothing worse.
    let all = store.checkpoints(run_id)?;
    let keep = trainer.cfg.train.keep_checkpoints;
    for old in &all[..all.len().saturating_sub(keep)] {
        store.forget_checkpoint(run_id, old.step)?;
        let _ = std::fs::remove_dir_all(store.root().join(&old.path));
    }
    sink.emit(Event::CheckpointSaved {
        step: trainer.step,
        path: dir,
    });
    Ok(rel)
}

/// Fixed batches of the held-out pairs, in order (the last short one dropped).
fn validation(trainer: &Trainer, vb: &BatchBuilder) -> Result<Vec<(String, f64)>, TrainError> {
    let n = vb.corpus.items.len();
    let b = vb.cfg.train.batch.min(n);
    let batches = (0..n / b)
        .map(|k| vb.build_from(k as u64, &(k * b..(k + 1) * b).collect::<Vec<_>>()))
        .collect::<Result<Vec<_>, _>>()?;
    trainer.validate(&batches)
}

/// The folder of a run's checkpoint, for callers that load it for inference.
pub fn checkpoint_path(store: &Store, rel: &str) -> PathBuf {
    store.root().join(Path::new(rel))
}
