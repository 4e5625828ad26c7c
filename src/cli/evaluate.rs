//! `tessera eval retrieval|vqa RUN…`: the faces of [`tessera::eval::run`]. Each result is kept
//! with its run; with several runs (seeds) the mean ± std follows.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use tessera::eval::run::{evaluate_retrieval, evaluate_vqa, save};
use tessera::eval::table::{mean_std, MeanStd};
use tessera::infer::Loaded;
use tessera::model::DeviceChoice;

use super::{open_store, print_json};

#[derive(Subcommand)]
pub(super) enum EvalCmd {
    /// Recall@1/5/10 text→image and image→text on a held-out split.
    Retrieval {
        /// One run, or several (seeds of one recipe) for mean ± std.
        #[arg(required = true)]
        runs: Vec<String>,
        #[arg(long)]
        dataset: String,
        #[arg(long, default_value = "test")]
        split: String,
        /// Also re-rank each query's top K by the image-text matching head.
        #[arg(long, value_name = "K")]
        rerank: Option<usize>,
        #[arg(long, default_value = "auto")]
        device: DeviceChoice,
        #[arg(long)]
        json: bool,
    },
    /// VQA accuracy overall and per answer type, and the most frequent confusions.
    Vqa {
        #[arg(required = true)]
        runs: Vec<String>,
        #[arg(long)]
        dataset: String,
        #[arg(long, default_value = "test")]
        split: String,
        #[arg(long, default_value = "auto")]
        device: DeviceChoice,
        #[arg(long)]
        json: bool,
    },
}

/// Mean ± std of each numeric top-level field over the runs' results.
fn summary(results: &[serde_json::Value]) -> BTreeMap<String, MeanStd> {
    let mut keys: Vec<String> = Vec::new();
    for r in results {
        for (k, v) in r.as_object().into_iter().flatten() {
            if v.is_f64() && !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    keys.into_iter()
        .map(|k| {
            let vals: Vec<f64> = results.iter().filter_map(|r| r[&k].as_f64()).collect();
            (k, mean_std(&vals))
        })
        .collect()
}

fn show(results: Vec<serde_json::Value>, json: bool, lines: Vec<String>) -> Result<ExitCode> {
    let several = results.len() > 1;
    let summary = summary(&results);
    if json {
        if several {
            print_json(&serde_json::json!({ "runs": results, "summary": summary }))?;
        } else {
            print_json(&results[0])?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    for l in lines {
        println!("{l}");
    }
    if several {
        let parts: Vec<String> = summary.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!(
            "mean ± std over {} runs (percent): {}",
            results.len(),
            parts.join("  ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn eval(dir: &Path, cmd: EvalCmd) -> Result<ExitCode> {
    let store = open_store(dir)?;
    match cmd {
        EvalCmd::Retrieval {
            runs,
            dataset,
            split,
            rerank,
            device,
            json,
        } => {
            let mut results = Vec::new();
            let mut lines = Vec::new();
            for run in &runs {
                let loaded = Loaded::open(&store, run, device)?;
                let r = evaluate_retrieval(&store, &loaded, &dataset, &split, rerank)?;
                save(&store, &loaded, "retrieval", &dataset, &split, &r)?;
                let fmt = |pairs: [(&str, f64); 6]| {
                    pairs
                        .iter()
                        .map(|(k, v)| format!("{k} {:.1}", 100.0 * v))
                        .collect::<Vec<_>>()
                        .join("  ")
                };
                lines.push(format!(
                    "{run} (step {}) on {dataset}/{split}, {} captions × {} images: {}",
                    r.step,
                    r.captions,
                    r.images,
                    fmt(r.recall.pairs())
                ));
                if let Some(rr) = &r.reranked {
                    lines.push(format!(
                        "  re-ranked top {} by ITM: {}",
                        r.rerank_k.unwrap_or(0),
                        fmt(rr.pairs())
                    ));
                }
                results.push(serde_json::to_value(&r)?);
            }
            show(results, json, lines)
        }
        EvalCmd::Vqa {
            runs,
            dataset,
            split,
            device,
            json,
        } => {
            let mut results = Vec::new();
            let mut lines = Vec::new();
            for run in &runs {
                let loaded = Loaded::open(&store, run, device)?;
                let r = evaluate_vqa(&store, &loaded, &dataset, &split)?;
                save(&store, &loaded, "vqa", &dataset, &split, &r)?;
                lines.push(format!(
                    "{run} (step {}) on {dataset}/{split}: accuracy {:.2}% over {} questions",
                    r.step,
                    100.0 * r.report.accuracy,
                    r.report.questions
                ));
                for (t, s) in &r.report.per_type {
                    lines.push(format!(
                        "  {t:<10} {:.2}% ({} questions)",
                        100.0 * s.accuracy,
                        s.questions
                    ));
                }
                for c in r.report.confusion.iter().take(5) {
                    lines.push(format!(
                        "  confused: {} → {} ×{}",
                        c.expected, c.predicted, c.count
                    ));
                }
                results.push(serde_json::to_value(&r)?);
            }
            show(results, json, lines)
        }
    }
}

#[derive(clap::Args)]
pub(super) struct AblateArgs {
    /// Pre-training data set.
    #[arg(long)]
    dataset: String,
    /// Fine-tuning and evaluation data set (default: the pre-training one).
    #[arg(long)]
    finetune_dataset: Option<String>,
    #[arg(long, value_enum)]
    downstream: super::train::FinetuneKind,
    /// What varies: `objectives=mlm+mim,mlm+mim+alt,…` (one variant per comma).
    #[arg(long, value_name = "objectives=LIST")]
    vary: String,
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Pre-training steps of each variant.
    #[arg(long)]
    steps: u64,
    /// Fine-tuning steps (default: the same as --steps).
    #[arg(long)]
    finetune_steps: Option<u64>,
    /// Fine-tune on this share of the training split (label efficiency).
    #[arg(long, default_value_t = 1.0)]
    finetune_fraction: f64,
    #[arg(long, value_name = "TOML")]
    config: std::path::PathBuf,
    /// Names the runs (NAME-VARIANT-sSEED[-ft]) and the table files.
    #[arg(long, default_value = "ablation")]
    name: String,
    #[arg(long, default_value = "test")]
    split: String,
    /// VQA: keep the K most frequent training answers.
    #[arg(long, default_value_t = 1000)]
    answers: usize,
    #[arg(long)]
    batch: Option<usize>,
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    #[arg(long)]
    json: bool,
}

pub(super) fn ablate(dir: &Path, a: AblateArgs) -> Result<ExitCode> {
    use tessera::eval::ablate::{ablate, AblateOptions};
    let Some(("objectives", list)) = a.vary.split_once('=') else {
        anyhow::bail!(
            "--vary {:?}: expected objectives=LIST (e.g. objectives=mlm+mim,mlm+mim+alt)",
            a.vary
        );
    };
    let mut config = tessera::model::RunConfig::load(&a.config)?;
    if let Some(b) = a.batch {
        config.train.batch = b;
    }
    if let Some(lr) = a.lr {
        config.train.lr = lr;
        config.train.min_lr = config.train.min_lr.min(lr);
    }
    let store = open_store(dir)?;
    tessera::train::keep_freed_memory();
    let opts = AblateOptions {
        name: a.name,
        finetune_dataset: a.finetune_dataset.unwrap_or_else(|| a.dataset.clone()),
        dataset: a.dataset,
        downstream: match a.downstream {
            super::train::FinetuneKind::Vqa => {
                tessera::train::FinetuneTask::Vqa { answers: a.answers }
            }
            super::train::FinetuneKind::Retrieval => tessera::train::FinetuneTask::Retrieval,
        },
        config,
        variants: list
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
        seeds: a.seeds.max(1),
        pretrain_steps: a.steps,
        finetune_steps: a.finetune_steps.unwrap_or(a.steps),
        finetune_fraction: a.finetune_fraction,
        split: a.split,
        device: a.device,
    };
    let sink = std::sync::Arc::new(super::progress::BarSink::new());
    let report = ablate(
        &store,
        &opts,
        sink.clone(),
        &super::train::cancel_on_ctrl_c(),
    );
    sink.finish();
    let report = report?;
    if a.json {
        print_json(&report)?;
    } else {
        print!("{}", report.table.markdown());
        println!(
            "written: {}, {}, {}",
            report.markdown.display(),
            report.csv.display(),
            report.json.display()
        );
        if !report.complete {
            println!("stopped before every run finished: run the same command again to go on");
        }
    }
    Ok(ExitCode::SUCCESS)
}
