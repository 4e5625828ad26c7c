//! `tessera datasets search|stats` and `tessera export webdataset|jsonl`: reading a dataset
//! back out, through [`tessera::store`] and [`tessera::ingest::export`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use clap::Subcommand;
use tessera::ingest::export::{self, ExportReport, DEFAULT_SHARD_SIZE};
use tessera::store::SearchOptions;

use super::{open_store, print_json, progress};

#[derive(Subcommand)]
pub(super) enum ExploreCmd {
    /// Full-text search over captions and their context, best match first (FTS5 syntax:
    /// words, "a phrase", prefix*, AND/OR/NOT, NEAR(a b), caption:word).
    Search {
        name: String,
        query: String,
        #[arg(long, default_value_t = SearchOptions::default().limit)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Counts: items, images, caption lengths in words, splits, sources, items without speech.
    Stats {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(super) enum ExportCmd {
    /// Tar shards OUT/00000.tar, 00001.tar, … of key.jpg|png|webp|svg + key.txt + key.json
    /// (what open_clip and video2dataset read).
    Webdataset {
        name: String,
        /// The directory for the shards (created; must not hold shards already).
        out: PathBuf,
        #[arg(long, default_value_t = DEFAULT_SHARD_SIZE)]
        shard_size: usize,
        /// Only the items of this split.
        #[arg(long)]
        split: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One JSON object per line (image path, caption and the item's fields), the images in an
    /// images/ folder beside OUT named by their hash (`tessera import jsonl OUT` reads it back).
    Jsonl {
        name: String,
        out: PathBuf,
        /// Only the items of this split.
        #[arg(long)]
        split: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn run(dir: &Path, cmd: ExploreCmd) -> Result<ExitCode> {
    let store = open_store(dir)?;
    match cmd {
        ExploreCmd::Search {
            name,
            query,
            limit,
            json,
        } => {
            let opts = SearchOptions {
                limit,
                ..SearchOptions::default()
            };
            let hits = store.search_items(&name, &query, &opts)?;
            if json {
                print_json(&hits)?;
            } else if hits.is_empty() {
                println!("no items in {name} match {query:?}");
            } else {
                for h in hits {
                    println!("#{:<6} {:>8.3}  {}", h.item.id, h.score, h.item.source_path);
                    println!("        {}", h.snippet);
                }
            }
        }
        ExploreCmd::Stats { name, json } => {
            let s = store.dataset_stats(&name)?;
            if json {
                print_json(&s)?;
            } else {
                println!("dataset          {}", s.dataset);
                println!("items            {}", s.items);
                println!("distinct images  {}", s.distinct_images);
                println!("without speech   {}", s.no_speech_items);
                println!(
                    "sources          {} videos ({} items), {} files ({} items)",
                    s.videos, s.video_items, s.files, s.file_items
                );
                println!(
                    "caption words    mean {:.1}, max {}",
                    s.caption_words_mean, s.caption_words_max
                );
                let widest = s.caption_words.iter().map(|b| b.items).max().unwrap_or(0);
                for b in &s.caption_words {
                    // A 30-column bar scaled to the fullest bucket.
                    let len = if widest > 0 {
                        (b.items as u64 * 30).div_ceil(widest as u64)
                    } else {
                        0
                    };
                    println!(
                        "  {:>6} words {:>8}  {}",
                        b.words,
                        b.items,
                        "#".repeat(len as usize)
                    );
                }
                println!("splits");
                for c in &s.splits {
                    println!(
                        "  {:<14} {:>8}",
                        c.split.as_deref().unwrap_or("(none)"),
                        c.items
                    );
                }
                println!("top sources");
                for c in &s.top_sources {
                    let kind = if c.video { "video" } else { "file" };
                    println!("  {:>8}  {kind:<5}  {}", c.items, c.path);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn run_export(dir: &Path, cmd: ExportCmd) -> Result<ExitCode> {
    let store = open_store(dir)?;
    let sink = Arc::new(progress::BarSink::new());
    let (report, json) = match cmd {
        ExportCmd::Webdataset {
            name,
            out,
            shard_size,
            split,
            json,
        } => (
            export::export_webdataset(
                &store,
                &name,
                &out,
                split.as_deref(),
                shard_size,
                sink.clone(),
            ),
            json,
        ),
        ExportCmd::Jsonl {
            name,
            out,
            split,
            json,
        } => (
            export::export_jsonl(&store, &name, &out, split.as_deref(), sink.clone()),
            json,
        ),
    };
    sink.finish();
    let report: ExportReport = report?;
    if json {
        print_json(&report)?;
    } else {
        println!(
            "exported  {} items ({} images) of {} to {} ({} file{})",
            report.items,
            report.images,
            report.dataset,
            report.path.display(),
            report.files.len(),
            if report.files.len() == 1 { "" } else { "s" }
        );
    }
    Ok(ExitCode::SUCCESS)
}
