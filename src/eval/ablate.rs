//! Ablations (seed 001's question made one command): for every variant of the pre-training
//! objectives and every seed, pre-train → fine-tune → evaluate, plus a from-scratch row; then a
//! table of the downstream metrics, mean ± std over seeds. Every run has a fixed name, so a
//! killed ablation resumes: finished runs and stored evaluations are reused, an interrupted run
//! continues from its last checkpoint.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::run::{evaluate_retrieval, evaluate_vqa, save};
use super::table::Table;
use crate::events::EventSink;
use crate::infer::Loaded;
use crate::model::{DeviceChoice, RunConfig};
use crate::store::{RunStatus, Store};
use crate::train::{
    finetune, pretrain, resume, Cancel, FinetuneOptions, FinetuneTask, InitFrom, Parent,
    PretrainOptions, TrainError,
};

#[derive(Debug, Clone)]
pub struct AblateOptions {
    /// Prefix of every run's name, and the name of the result files.
    pub name: String,
    /// Pre-training data.
    pub dataset: String,
    /// Fine-tuning and evaluation data (its `train` and evaluation split).
    pub finetune_dataset: String,
    pub downstream: FinetuneTask,
    /// Architecture and training settings; steps are set per phase.
    pub config: RunConfig,
    /// Objective lists, `+`-separated (`mlm+mim+alt`).
    pub variants: Vec<String>,
    pub seeds: u64,
    pub pretrain_steps: u64,
    pub finetune_steps: u64,
    /// Share of the fine-tuning training split (label efficiency).
    pub finetune_fraction: f64,
    pub split: String,
    pub device: DeviceChoice,
}

#[derive(Debug, Clone, Serialize)]
pub struct AblateReport {
    pub table: Table,
    pub markdown: PathBuf,
    pub csv: PathBuf,
    pub json: PathBuf,
    /// False when cancelled before every run finished (the table holds what finished).
    pub complete: bool,
}

/// Where ablation tables are written: `DATA/ablations/NAME.{md,csv,json}`.
pub fn ablations_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("ablations")
}

/// An ablation table written earlier, or why its file cannot be read.
#[derive(Debug, Clone, Serialize)]
pub struct StoredAblation {
    pub name: String,
    pub path: PathBuf,
    pub table: Option<Table>,
    pub error: Option<String>,
}

/// Every ablation table in the data directory, by name; a damaged file is listed with its
/// reason instead of hiding the others.
pub fn stored_ablations(data_dir: &Path) -> Vec<StoredAblation> {
    let mut found: Vec<StoredAblation> = std::fs::read_dir(ablations_dir(data_dir))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|path| {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let parsed = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| serde_json::from_str::<Table>(&text).map_err(|e| e.to_string()));
            let (table, error) = match parsed {
                Ok(t) => (Some(t), None),
                Err(e) => (None, Some(format!("{}: {e}", path.display()))),
            };
            StoredAblation {
                name,
                path,
                table,
                error,
            }
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// The metrics a downstream task is compared by.
pub fn metric_names(task: FinetuneTask) -> Vec<String> {
    match task {
        FinetuneTask::Vqa { .. } => vec!["accuracy".into()],
        FinetuneTask::Retrieval => ["t2i_r1", "t2i_r5", "t2i_r10", "i2t_r1", "i2t_r5", "i2t_r10"]
            .map(String::from)
            .to_vec(),
    }
}

enum Outcome {
    Finished,
    Stopped,
}

/// Trains run `name` to the end: skips it when finished, resumes it when interrupted, else
/// starts it with `start`.
fn ensure_run(
    store: &Store,
    name: &str,
    device: DeviceChoice,
    sink: &Arc<dyn EventSink>,
    cancel: &Cancel,
    start: impl FnOnce() -> Result<crate::train::RunReport, TrainError>,
) -> Result<Outcome, TrainError> {
    let report = match store.run(name) {
        Ok(row) if row.status == RunStatus::Finished => return Ok(Outcome::Finished),
        Ok(_) => resume(store, name, device, sink.clone(), cancel)?,
        Err(crate::store::StoreError::NoSuchRun(_)) => start()?,
        Err(e) => return Err(e.into()),
    };
    Ok(if report.status == RunStatus::Finished.as_str() {
        Outcome::Finished
    } else {
        Outcome::Stopped
    })
}

/// The downstream metrics of run `name`'s latest checkpoint: stored ones when they were
/// computed on that checkpoint, else evaluated now (and stored).
fn metrics_of(store: &Store, name: &str, opts: &AblateOptions) -> Result<Vec<f64>, TrainError> {
    let kind = match opts.downstream {
        FinetuneTask::Vqa { .. } => "vqa",
        FinetuneTask::Retrieval => "retrieval",
    };
    let row = store.run(name)?;
    let latest = store.resume_point(row.id)?.map(|p| p.checksum);
    let stored = store.evaluations(row.id)?.into_iter().find(|e| {
        e.kind == kind
            && e.dataset == opts.finetune_dataset
            && e.split == opts.split
            && Some(&e.checksum) == latest.as_ref()
    });
    let value = match stored {
        Some(e) => e.metrics,
        None => {
            let loaded = Loaded::open(store, name, opts.device)?;
            let (ds, split) = (&opts.finetune_dataset, &opts.split);
            match opts.downstream {
                FinetuneTask::Vqa { .. } => {
                    let r = evaluate_vqa(store, &loaded, ds, split)?;
                    save(store, &loaded, kind, ds, split, &r)?;
                    serde_json::to_value(&r).expect("serialises")
                }
                FinetuneTask::Retrieval => {
                    let r = evaluate_retrieval(store, &loaded, ds, split, None)?;
                    save(store, &loaded, kind, ds, split, &r)?;
                    serde_json::to_value(&r).expect("serialises")
                }
            }
        }
    };
    Ok(metric_names(opts.downstream)
        .iter()
        .map(|m| value[m].as_f64().unwrap_or(f64::NAN))
        .collect())
}

/// A variant's objective list as a run-name part: `mlm+mim` → `mlm_mim`.
fn slug(variant: &str) -> String {
    variant.replace('+', "_")
}

pub fn ablate(
    store: &Store,
    opts: &AblateOptions,
    sink: Arc<dyn EventSink>,
    cancel: &Cancel,
) -> Result<AblateReport, TrainError> {
    // Every variant must name known objectives before anything trains.
    for v in &opts.variants {
        opts.config
            .objectives
            .clone()
            .select(&v.replace('+', ","))?;
    }
    let mut table = Table::new(metric_names(opts.downstream));
    let mut complete = true;
    let rows: Vec<Option<&String>> = std::iter::once(None)
        .chain(opts.variants.iter().map(Some))
        .collect();
    'rows: for variant in rows {
        let mut per_seed = Vec::new();
        for seed in 0..opts.seeds {
            let mut cfg = opts.config.clone();
            cfg.train.seed = seed;
            let label = variant.map(|v| slug(v)).unwrap_or_else(|| "scratch".into());
            let ft_name = format!("{}-{label}-s{seed}-ft", opts.name);
            let parent = match variant {
                None => Parent::Scratch,
                Some(v) => {
                    let pre_name = format!("{}-{label}-s{seed}", opts.name);
                    let mut pcfg = cfg.clone();
                    pcfg.objectives.select(&v.replace('+', ","))?;
                    pcfg.train.steps = opts.pretrain_steps;
                    let out = ensure_run(store, &pre_name, opts.device, &sink, cancel, || {
                        pretrain(
                            store,
                            &PretrainOptions {
                                dataset: opts.dataset.clone(),
                                config: pcfg,
                                run: Some(pre_name.clone()),
                                init: InitFrom::Random,
                                device: opts.device,
                            },
                            sink.clone(),
                            cancel,
                        )
                    })?;
                    if let Outcome::Stopped = out {
                        complete = false;
                        break 'rows;
                    }
                    Parent::Run(pre_name)
                }
            };
            let mut fcfg = cfg.clone();
            fcfg.train.steps = opts.finetune_steps;
            fcfg.train.train_fraction = opts.finetune_fraction;
            let out = ensure_run(store, &ft_name, opts.device, &sink, cancel, || {
                finetune(
                    store,
                    &FinetuneOptions {
                        dataset: opts.finetune_dataset.clone(),
                        config: fcfg,
                        task: opts.downstream,
                        from: parent,
                        run: Some(ft_name.clone()),
                        device: opts.device,
                    },
                    sink.clone(),
                    cancel,
                )
            })?;
            if let Outcome::Stopped = out {
                complete = false;
                break 'rows;
            }
            per_seed.push(metrics_of(store, &ft_name, opts)?);
        }
        table.push(variant.map(String::as_str).unwrap_or("scratch"), &per_seed);
    }
    let dir = ablations_dir(store.root());
    std::fs::create_dir_all(&dir).map_err(|e| TrainError::Run {
        run: opts.name.clone(),
        reason: format!("{}: {e}", dir.display()),
    })?;
    let write = |ext: &str, text: String| -> Result<PathBuf, TrainError> {
        let path = dir.join(format!("{}.{ext}", opts.name));
        std::fs::write(&path, text).map_err(|e| TrainError::Run {
            run: opts.name.clone(),
            reason: format!("{}: {e}", path.display()),
        })?;
        Ok(path)
    };
    Ok(AblateReport {
        markdown: write("md", table.markdown())?,
        csv: write("csv", table.csv())?,
        json: write(
            "json",
            serde_json::to_string_pretty(&table).expect("serialises"),
        )?,
        table,
        complete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_tables_are_listed_by_name_and_a_damaged_one_says_why() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ablations_dir(tmp.path());
        std::fs::create_dir_all(&dir).unwrap();
        let mut t = Table::new(vec!["accuracy".into()]);
        t.push("scratch", &[vec![0.5], vec![0.7]]);
        std::fs::write(dir.join("b.json"), serde_json::to_string(&t).unwrap()).unwrap();
        std::fs::write(dir.join("b.md"), t.markdown()).unwrap();
        std::fs::write(dir.join("a.json"), "{\"metrics\": [").unwrap();
        let found = stored_ablations(tmp.path());
        let names: Vec<&str> = found.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(found[0].table.is_none());
        assert!(
            found[0].error.as_deref().unwrap().contains("a.json"),
            "{:?}",
            found[0].error
        );
        assert_eq!(found[1].table.as_ref(), Some(&t));
        assert!(stored_ablations(&tmp.path().join("none")).is_empty());
    }
}
