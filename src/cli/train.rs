//! `tessera pretrain`, `tessera runs list|show`, `tessera resume`: the faces of
//! [`tessera::train`]. Ctrl-C asks the run to stop; it checkpoints first.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use tessera::model::{DeviceChoice, RunConfig};
use tessera::store::MetricSplit;
use tessera::train::{
    Cancel, FinetuneOptions, FinetuneTask, InitFrom, Parent, PretrainOptions, RunReport,
};

use super::{open_store, print_json, progress};

#[derive(Args)]
pub(super) struct PretrainArgs {
    #[arg(long)]
    dataset: String,
    /// A model config (models/tiny.toml, small.toml, base.toml or your own).
    #[arg(long, value_name = "TOML")]
    config: PathBuf,
    /// Comma list of objectives to turn on (mlm, mim, alt, itm, contrastive, attmask,
    /// grouped_itm); default: those the config enables.
    #[arg(long)]
    objectives: Option<String>,
    /// Start from all-MiniLM-L6-v2's BERT weights (`small` shapes).
    #[arg(long, value_parser = ["minilm"], conflicts_with = "from")]
    init: Option<String>,
    /// Start from another run's latest checkpoint (same architecture), e.g. to pre-train it on
    /// with other objectives; optimiser and schedule start fresh.
    #[arg(long, value_name = "RUN")]
    from: Option<String>,
    /// The MiniLM safetensors file for `--init minilm`.
    #[arg(long, env = "TESSERA_MINILM", value_name = "FILE")]
    minilm: Option<PathBuf>,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq)]
pub(super) enum FinetuneKind {
    /// A classifier over the training split's answers, on `[CLS]` of question + image.
    Vqa,
    /// Contrastive + image-text matching with hard negatives.
    Retrieval,
}

#[derive(Args)]
pub(super) struct FinetuneArgs {
    /// vqa or retrieval.
    task: FinetuneKind,
    #[arg(long)]
    dataset: String,
    /// A pre-trained run (its latest checkpoint), or `scratch` for fresh weights.
    #[arg(long, value_name = "RUN|scratch")]
    from: String,
    /// Model and training settings (default: the parent run's; needed with `--from scratch`).
    #[arg(long, value_name = "TOML")]
    config: Option<PathBuf>,
    /// VQA: keep the K most frequent training answers.
    #[arg(long, default_value_t = 1000)]
    answers: usize,
    #[command(flatten)]
    train: TrainArgs,
}

/// Training settings the command line overrides.
#[derive(Args)]
pub(super) struct TrainArgs {
    #[arg(long)]
    steps: Option<u64>,
    #[arg(long)]
    batch: Option<usize>,
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    seed: Option<u64>,
    /// Write a checkpoint every N steps (and always at the end or on Ctrl-C).
    #[arg(long)]
    checkpoint_every: Option<u64>,
    /// Validate on the held-out split every N steps (and at the end).
    #[arg(long)]
    validate_every: Option<u64>,
    /// Train on this share of the training split (a fixed subset chosen by the seed).
    #[arg(long, value_name = "SHARE")]
    train_fraction: Option<f64>,
    /// Flip and turn training images at random (only where no caption or question says left,
    /// right, up or down: easy-VQA's do not).
    #[arg(long)]
    dihedral: bool,
    /// Run name (default: DATASET-TASK-N).
    #[arg(long)]
    run: Option<String>,
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub(super) enum RunsCmd {
    /// Every run, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One run: its config, status, checkpoints and per-step metrics.
    Show {
        run: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a run with its metrics, checkpoints and search indexes (runs fine-tuned from it
    /// keep theirs).
    Delete {
        run: String,
        #[arg(long)]
        json: bool,
    },
}

/// Ctrl-C asks the loop to checkpoint and stop; a second Ctrl-C ends the process.
pub(super) fn cancel_on_ctrl_c() -> Cancel {
    let cancel = Cancel::new();
    let c = cancel.clone();
    let _ = ctrlc::set_handler(move || {
        if c.is_cancelled() {
            std::process::exit(130);
        }
        c.cancel();
    });
    cancel
}

fn finish(report: RunReport, json: bool) -> Result<ExitCode> {
    if json {
        print_json(&report)?;
    } else {
        let loss = report.last.iter().find(|m| m.0 == "loss").map(|m| m.1);
        println!(
            "run {}: {} at step {}/{}{}",
            report.run,
            report.status,
            report.step,
            report.steps,
            loss.map(|l| format!(", loss {l:.4}")).unwrap_or_default()
        );
        if let Some(c) = &report.checkpoint {
            println!("checkpoint: {c}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

impl TrainArgs {
    fn apply(&self, config: &mut RunConfig) -> Result<()> {
        let a = self;
        if let Some(s) = a.steps {
            config.train.steps = s;
        }
        if let Some(b) = a.batch {
            config.train.batch = b;
        }
        if let Some(lr) = a.lr {
            config.train.lr = lr;
            config.train.min_lr = config.train.min_lr.min(lr);
        }
        if let Some(s) = a.seed {
            config.train.seed = s;
        }
        if let Some(n) = a.checkpoint_every {
            config.train.checkpoint_every = n;
        }
        if let Some(n) = a.validate_every {
            config.train.validate_every = n;
        }
        if let Some(f) = a.train_fraction {
            config.train.train_fraction = f;
        }
        if a.dihedral {
            config.train.dihedral = true;
        }
        config.validate()?;
        Ok(())
    }
}

pub(super) fn pretrain(dir: &Path, a: PretrainArgs) -> Result<ExitCode> {
    let mut config = RunConfig::load(&a.config)?;
    if let Some(list) = &a.objectives {
        config.objectives.select(list)?;
    }
    a.train.apply(&mut config)?;
    let store = open_store(dir)?;
    let init = match (a.init.as_deref(), &a.from) {
        (Some("minilm"), _) => InitFrom::Minilm(a.minilm.clone().context(
            "--init minilm needs the weights: --minilm FILE or TESSERA_MINILM (scripts/fetch-assets.sh puts them in ~/.cache/tessera/assets/minilm/model.safetensors)",
        )?),
        (_, Some(run)) => tessera::train::run::init_from_run(&store, run, &config.model)?,
        _ => InitFrom::Random,
    };
    tessera::train::keep_freed_memory();
    let sink = Arc::new(progress::BarSink::new());
    let opts = PretrainOptions {
        dataset: a.dataset,
        config,
        run: a.train.run,
        init,
        device: a.train.device,
    };
    let report = tessera::train::pretrain(&store, &opts, sink.clone(), &cancel_on_ctrl_c());
    sink.finish();
    finish(report?, a.train.json)
}

pub(super) fn finetune(dir: &Path, a: FinetuneArgs) -> Result<ExitCode> {
    let store = open_store(dir)?;
    let from = match a.from.as_str() {
        "scratch" => Parent::Scratch,
        run => Parent::Run(run.to_string()),
    };
    let mut config = match (&a.config, &from) {
        (Some(path), _) => RunConfig::load(path)?,
        (None, Parent::Run(run)) => tessera::train::run::run_config(&store, run)?,
        (None, Parent::Scratch) => anyhow::bail!("--from scratch needs --config TOML"),
    };
    a.train.apply(&mut config)?;
    let task = match a.task {
        FinetuneKind::Vqa => FinetuneTask::Vqa { answers: a.answers },
        FinetuneKind::Retrieval => FinetuneTask::Retrieval,
    };
    tessera::train::keep_freed_memory();
    let sink = Arc::new(progress::BarSink::new());
    let opts = FinetuneOptions {
        dataset: a.dataset,
        config,
        task,
        from,
        run: a.train.run,
        device: a.train.device,
    };
    let report = tessera::train::finetune(&store, &opts, sink.clone(), &cancel_on_ctrl_c());
    sink.finish();
    finish(report?, a.train.json)
}

pub(super) fn resume(dir: &Path, run: &str, device: DeviceChoice, json: bool) -> Result<ExitCode> {
    let store = open_store(dir)?;
    tessera::train::keep_freed_memory();
    let sink = Arc::new(progress::BarSink::new());
    let report = tessera::train::resume(&store, run, device, sink.clone(), &cancel_on_ctrl_c());
    sink.finish();
    finish(report?, json)
}

/// What `runs show --json` prints: the run, its config, checkpoints, and one object per step
/// with every metric (`loss` and each objective's `*_loss` among them).
#[derive(serde::Serialize)]
struct RunDetail {
    name: String,
    kind: String,
    status: String,
    error: Option<String>,
    step: u64,
    created_at: String,
    updated_at: String,
    config: serde_json::Value,
    checkpoints: Vec<tessera::store::CheckpointRow>,
    /// `tessera eval` results of the run's checkpoints.
    evaluations: Vec<tessera::store::EvaluationRow>,
    train: Vec<serde_json::Map<String, serde_json::Value>>,
    val: Vec<serde_json::Map<String, serde_json::Value>>,
}

fn by_step(
    rows: Vec<tessera::store::MetricRow>,
) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let mut out: Vec<serde_json::Map<String, serde_json::Value>> = Vec::new();
    for r in rows {
        if out
            .last()
            .and_then(|m| m.get("step"))
            .and_then(|s| s.as_u64())
            != Some(r.step)
        {
            let mut m = serde_json::Map::new();
            m.insert("step".into(), r.step.into());
            out.push(m);
        }
        out.last_mut().unwrap().insert(r.name, r.value.into());
    }
    out
}

pub(super) fn runs(dir: &Path, cmd: RunsCmd) -> Result<ExitCode> {
    let store = open_store(dir)?;
    match cmd {
        RunsCmd::List { json } => {
            let all = store.runs()?;
            if json {
                print_json(&all)?;
            } else if all.is_empty() {
                println!("no runs yet (try `tessera pretrain`)");
            } else {
                println!(
                    "{:<24} {:<9} {:<16} {:<9} {:>7} {:>9}",
                    "RUN", "KIND", "DATASET", "STATUS", "STEP", "LOSS"
                );
                for r in all {
                    println!(
                        "{:<24} {:<9} {:<16} {:<9} {:>7} {:>9}",
                        r.name,
                        r.kind.as_str(),
                        r.dataset.unwrap_or_default(),
                        r.status.as_str(),
                        r.step,
                        r.loss.map(|l| format!("{l:.4}")).unwrap_or_default()
                    );
                }
            }
        }
        RunsCmd::Delete { run, json } => {
            let deleted = tessera::train::delete_run(&store, &run)?;
            if json {
                print_json(&deleted)?;
            } else {
                println!(
                    "deleted run {} ({} checkpoints, {:.1} MB)",
                    deleted.run,
                    deleted.checkpoints,
                    deleted.bytes as f64 / 1e6
                );
            }
        }
        RunsCmd::Show { run, json } => {
            let row = store.run(&run)?;
            let detail = RunDetail {
                name: row.name.clone(),
                kind: row.kind.as_str().into(),
                status: row.status.as_str().into(),
                error: row.error.clone(),
                step: row.step,
                created_at: row.created_at.clone(),
                updated_at: row.updated_at.clone(),
                config: serde_json::from_str(&row.config_json).unwrap_or(serde_json::Value::Null),
                checkpoints: store.checkpoints(row.id)?,
                evaluations: store.evaluations(row.id)?,
                train: by_step(store.run_metrics(row.id, Some(MetricSplit::Train))?),
                val: by_step(store.run_metrics(row.id, Some(MetricSplit::Val))?),
            };
            if json {
                print_json(&detail)?;
            } else {
                println!(
                    "run {} ({}) — {} at step {}",
                    detail.name, detail.kind, detail.status, detail.step
                );
                if let Some(e) = &detail.error {
                    println!("error: {e}");
                }
                println!("config: {}", serde_json::to_string(&detail.config)?);
                for c in &detail.checkpoints {
                    println!("checkpoint step {}: {}", c.step, c.path);
                }
                for e in &detail.evaluations {
                    // The headline numbers; `--json` has per-type scores and confusions.
                    let numbers: Vec<String> = e
                        .metrics
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter(|(_, v)| v.is_f64())
                        .map(|(k, v)| format!("{k}={:.4}", v.as_f64().unwrap_or(f64::NAN)))
                        .collect();
                    println!(
                        "eval {} on {}/{} (step {}): {}",
                        e.kind,
                        e.dataset,
                        e.split,
                        e.step,
                        numbers.join(" ")
                    );
                }
                let tagged = detail.train.iter().map(|m| ("train", m));
                for (split, m) in tagged.chain(detail.val.iter().map(|m| ("val", m))) {
                    let fields: Vec<String> = m
                        .iter()
                        .filter(|(k, _)| *k != "step")
                        .map(|(k, v)| format!("{k}={:.4}", v.as_f64().unwrap_or(f64::NAN)))
                        .collect();
                    println!("{split:<5} step {:>6}: {}", m["step"], fields.join(" "));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
