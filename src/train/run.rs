//! A training run against the store: the corpus from a dataset's splits, a run row, the step
//! loop with metrics, validation and checkpoints, cancellation that checkpoints, and resume
//! from the last checkpoint (which continues exactly as if never stopped).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::eval::vqa::{gold_answers, targets};
use crate::events::{Event, EventSink};
use crate::model::config::Task;
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
    /// Another run's checkpoint (fine-tuning, or pre-training on): every tensor of the model, by
    /// name; task heads the parent lacks start fresh.
    Run {
        run: String,
        step: u64,
        path: String,
        checksum: String,
    },
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
    start(store, opts, RunKind::Pretrain, sink, cancel)
}

/// Starts from run `name`'s latest checkpoint (fine-tuning it, or pre-training it further with
/// other objectives); its architecture must be `model`.
pub fn init_from_run(
    store: &Store,
    name: &str,
    model: &crate::model::ModelConfig,
) -> Result<InitFrom, TrainError> {
    let (row, parent) = stored_run(store, name)?;
    if parent.config.model != *model {
        return Err(TrainError::Run {
            run: name.into(),
            reason: "its architecture differs from the config's \
                     (use the run's config, or start from scratch)"
                .into(),
        });
    }
    let point = store.resume_point(row.id)?.ok_or_else(|| TrainError::Run {
        run: name.into(),
        reason: "has no checkpoint to start from".into(),
    })?;
    Ok(InitFrom::Run {
        run: name.into(),
        step: point.step,
        path: point.path,
        checksum: point.checksum,
    })
}

/// What `tessera finetune` starts from.
#[derive(Debug, Clone)]
pub enum Parent {
    /// Fresh weights (the from-scratch baseline).
    Scratch,
    /// A run's latest checkpoint.
    Run(String),
}

#[derive(Debug, Clone)]
pub struct FinetuneOptions {
    pub dataset: String,
    /// The model, training settings and objectives (ignored for VQA); the parent's
    /// architecture when fine-tuning a run.
    pub config: RunConfig,
    pub task: FinetuneTask,
    pub from: Parent,
    pub run: Option<String>,
    pub device: DeviceChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FinetuneTask {
    /// At most this many answers in the vocabulary.
    Vqa {
        answers: usize,
    },
    Retrieval,
}

/// The model config of a run (for fine-tuning it: the architecture to keep).
pub fn run_config(store: &Store, run: &str) -> Result<RunConfig, TrainError> {
    Ok(stored_run(store, run)?.1.config)
}

fn stored_run(store: &Store, run: &str) -> Result<(crate::store::RunRow, StoredRun), TrainError> {
    let row = store.run(run)?;
    let stored = serde_json::from_str(&row.config_json).map_err(|e| TrainError::Run {
        run: run.into(),
        reason: format!("stored config unreadable: {e}"),
    })?;
    Ok((row, stored))
}

/// Fine-tunes for VQA or retrieval, from a run's latest checkpoint or from scratch, in the
/// same loop as pre-training (checkpoints, resume, metrics, cancellation).
pub fn finetune(
    store: &Store,
    opts: &FinetuneOptions,
    sink: Arc<dyn EventSink>,
    cancel: &Cancel,
) -> Result<RunReport, TrainError> {
    let mut config = opts.config.clone();
    let init = match &opts.from {
        Parent::Scratch => InitFrom::Random,
        Parent::Run(name) => init_from_run(store, name, &config.model)?,
    };
    config.task = match opts.task {
        FinetuneTask::Retrieval => {
            config.objectives.select("itm,contrastive")?;
            Task::Retrieval
        }
        FinetuneTask::Vqa { answers } => {
            let items = store.items(&opts.dataset, None)?;
            let has_splits = items.iter().any(|i| i.split.is_some());
            let gold: Vec<_> = items
                .iter()
                .filter(|i| !has_splits || i.split.as_deref() == Some("train"))
                .filter_map(|i| i.answers.as_ref().map(gold_answers))
                .collect();
            let answers = crate::eval::vqa::vocabulary(gold.iter().map(|g| g.as_slice()), answers);
            if answers.is_empty() {
                return Err(TrainError::Data {
                    dataset: opts.dataset.clone(),
                    reason: "has no training questions with answers (not a VQA data set?)".into(),
                });
            }
            Task::Vqa { answers }
        }
    };
    let opts = PretrainOptions {
        dataset: opts.dataset.clone(),
        config,
        run: opts.run.clone(),
        init,
        device: opts.device,
    };
    start(store, &opts, RunKind::Finetune, sink, cancel)
}

fn start(
    store: &Store,
    opts: &PretrainOptions,
    kind: RunKind,
    sink: Arc<dyn EventSink>,
    cancel: &Cancel,
) -> Result<RunReport, TrainError> {
    opts.config.validate()?;
    // A run that starts from another's checkpoint is that run's child.
    let parent = match &opts.init {
        InitFrom::Run { run, .. } => Some(store.run(run)?.id),
        _ => None,
    };
    let dataset_id = store.dataset_id(&opts.dataset)?;
    // Fail on data problems before a run row exists.
    let (train, _) = corpus_items(store, &opts.dataset, &opts.config)?;
    let name = match &opts.run {
        Some(n) => n.clone(),
        None => {
            let taken: Vec<String> = store.runs()?.into_iter().map(|r| r.name).collect();
            (1..)
                .map(|i| format!("{}-{}-{i}", opts.dataset, opts.config.task.name()))
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
    let row = store.create_run(&name, kind, Some(dataset_id), &json, parent)?;
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
    let (row, stored) = stored_run(store, run)?;
    if row.status == RunStatus::Finished {
        return Err(TrainError::Run {
            run: run.into(),
            reason: "already finished".into(),
        });
    }
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

/// The training and validation pairs of a dataset for `task`: its `train` split (everything
/// when it has no splits) and its `val` split (else `test`). VQA runs train on questions with
/// their answers' soft targets; the other tasks on captions — a VQA data set without captions
/// gives one pair per image, captioned with the open (not yes/no) answers of its questions.
pub(crate) fn corpus_items(
    store: &Store,
    dataset: &str,
    cfg: &RunConfig,
) -> Result<(Vec<CorpusItem>, Vec<CorpusItem>), TrainError> {
    let task = &cfg.task;
    let items = store.items(dataset, None)?;
    if items.is_empty() {
        return Err(TrainError::Data {
            dataset: dataset.into(),
            reason: "has no items (no images to train on)".into(),
        });
    }
    let has_splits = items.iter().any(|i| i.split.is_some());
    let in_split = |i: &crate::store::ItemRow, split: &str| {
        if split == "train" && !has_splits {
            true
        } else {
            i.split.as_deref() == Some(split)
        }
    };
    let pick = |split: &str| -> Vec<CorpusItem> {
        let chosen = items.iter().filter(|i| in_split(i, split));
        match task {
            Task::Vqa { answers } => {
                let index: std::collections::BTreeMap<&str, u32> = answers
                    .iter()
                    .enumerate()
                    .map(|(i, a)| (a.as_str(), i as u32))
                    .collect();
                chosen
                    .filter_map(|i| {
                        let q = i.question.as_ref()?;
                        let t = targets(&gold_answers(i.answers.as_ref()?), &index);
                        // Questions none of whose answers are in the vocabulary teach nothing.
                        (!t.is_empty()).then(|| CorpusItem {
                            image_hash: i.image_hash.clone(),
                            caption: q.clone(),
                            answers: t,
                        })
                    })
                    .collect()
            }
            _ => captioned_pairs(chosen),
        }
    };
    let mut train = pick("train");
    let fraction = cfg.train.train_fraction;
    if fraction < 1.0 {
        // A fixed subset: each pair is in or out by a hash of seed, image and text.
        let seed = cfg.train.seed.to_le_bytes();
        train.retain(|i| {
            let mut h = blake3::Hasher::new();
            h.update(&seed);
            h.update(i.image_hash.as_bytes());
            h.update(i.caption.as_bytes());
            let x = u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().unwrap());
            (x as f64) < fraction * u64::MAX as f64
        });
    }
    if train.len() < 2 {
        return Err(TrainError::Data {
            dataset: dataset.into(),
            reason: format!(
                "has {} training {}; at least 2 are needed",
                train.len(),
                match task {
                    Task::Vqa { .. } => "questions with an answer in the vocabulary",
                    _ => "pairs",
                }
            ),
        });
    }
    let mut val = pick("val");
    if val.is_empty() {
        val = pick("test");
    }
    Ok((train, val))
}

/// Image-caption pairs of `items`: captioned items as they are; questions about an image
/// (captionless VQA items) folded into one pair per image whose caption lists the distinct open
/// answers in sorted order, so that images with the same answers get the same caption (and
/// count as twins, not negatives, in contrastive and ITM).
fn captioned_pairs<'a>(items: impl Iterator<Item = &'a crate::store::ItemRow>) -> Vec<CorpusItem> {
    let mut out = Vec::new();
    let mut from_answers: Vec<(String, Vec<String>)> = Vec::new();
    let mut at: std::collections::HashMap<String, usize> = Default::default();
    for i in items {
        if !i.caption.trim().is_empty() || i.question.is_none() {
            out.push(CorpusItem::pair(&i.image_hash, &i.caption));
            continue;
        }
        let slot = *at.entry(i.image_hash.clone()).or_insert_with(|| {
            from_answers.push((i.image_hash.clone(), Vec::new()));
            from_answers.len() - 1
        });
        let words = &mut from_answers[slot].1;
        for g in i.answers.as_ref().map(gold_answers).unwrap_or_default() {
            let open = !matches!(g.answer.as_str(), "yes" | "no");
            if open && !words.contains(&g.answer) {
                words.push(g.answer);
            }
        }
    }
    out.extend(
        from_answers
            .into_iter()
            .filter(|(_, w)| !w.is_empty())
            .map(|(h, mut w)| {
                w.sort();
                CorpusItem::pair(&h, &w.join(" "))
            }),
    );
    out
}

/// Everything a run writes lives in `runs/NAME` (relative to the data directory).
fn run_dir_rel(run: &str) -> String {
    format!("runs/{run}")
}

fn checkpoint_dir(store: &Store, run: &str, step: u64) -> (PathBuf, String) {
    let rel = format!("{}/checkpoints/step-{step:08}", run_dir_rel(run));
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
            match &stored.init {
                InitFrom::Random => {}
                InitFrom::Minilm(path) => {
                    crate::model::minilm::load_bert_into(&trainer.vars, path)?;
                }
                InitFrom::Run { path, checksum, .. } => {
                    let parent = checkpoint::read(&store.root().join(path), checksum, &device)?;
                    trainer.load_weights(&parent.params, path)?;
                }
            }
            if let Some(t) = trainer.teacher.as_mut() {
                *t = crate::model::snapshot(&trainer.vars);
            }
            store.truncate_run_after(run_id, 0)?;
        }
    }
    store.set_run_status(run_id, RunStatus::Running, None)?;
    let (train, val) = corpus_items(store, &stored.dataset, &cfg)?;
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
        training: true,
        seed: cfg.train.seed,
    });
    let val_builder = BatchBuilder {
        corpus: corpus(val.into_iter().take(cfg.train.val_items).collect()),
        cfg: cfg.clone(),
        tokenizer,
        cache,
        training: false,
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
        device: crate::model::device_name(&device).into(),
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

/// What [`delete_run`] removed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeletedRun {
    pub run: String,
    pub checkpoints: usize,
    pub bytes: u64,
}

/// Deletes run `name`: its catalog rows first (one transaction, so a kill leaves either the
/// whole run or none of it in the catalog), then its folder of checkpoints and its search
/// indexes. Runs started from it keep their own checkpoints.
pub fn delete_run(store: &Store, name: &str) -> Result<DeletedRun, TrainError> {
    let removed = store.delete_run(name)?;
    let run_dir = store.root().join(run_dir_rel(name));
    let bytes = checkpoint::size_on_disk(&run_dir);
    for dir in [run_dir, crate::index::run_index_dir(store, name)] {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| TrainError::Checkpoint {
                path: dir.display().to_string(),
                reason: e.to_string(),
            })?;
        }
    }
    Ok(DeletedRun {
        run: name.to_string(),
        checkpoints: removed.len(),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(image: &str, q: &str, answer: &str) -> crate::store::ItemRow {
        crate::store::ItemRow {
            id: 0,
            caption: String::new(),
            context_before: String::new(),
            context_after: String::new(),
            source_path: format!("{image}.png"),
            start_s: None,
            end_s: None,
            frame_s: None,
            image_hash: image.into(),
            no_speech: false,
            split: Some("train".into()),
            meta: None,
            question: Some(q.into()),
            answers: Some(serde_json::json!([{ "answer": answer, "count": 1 }])),
            answer_type: None,
            question_type: None,
        }
    }

    #[test]
    fn questions_fold_into_one_caption_per_image_of_its_sorted_open_answers() {
        let mut captioned = question("c", "", "");
        captioned.caption = "a photo".into();
        captioned.question = None;
        let items = [
            question("a", "what shape is it?", "rectangle"),
            question("a", "is it red?", "no"),
            question("a", "what color is it?", "blue"),
            question("b", "what color is it?", "blue"),
            question("b", "what shape is it?", "rectangle"),
            question("b", "what is the blue shape?", "rectangle"),
            question("d", "is there a circle?", "yes"),
            captioned,
        ];
        let pairs: Vec<(String, String)> = captioned_pairs(items.iter())
            .into_iter()
            .map(|p| (p.image_hash, p.caption))
            .collect();
        let want = |h: &str, c: &str| (h.to_string(), c.to_string());
        // "d" has only yes/no answers: nothing to caption it with.
        assert_eq!(
            pairs,
            [
                want("c", "a photo"),
                want("a", "blue rectangle"),
                want("b", "blue rectangle")
            ]
        );
    }
}
