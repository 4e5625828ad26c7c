//! `tessera datasets split|dedupe|filter|edit|delete|merge`: curation commands over
//! [`tessera::curate`].

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use tessera::curate::{self, FilterOptions, DEFAULT_NEAR};

use super::{open_store, print_json};

#[derive(Subcommand)]
pub(super) enum CurateCmd {
    /// Assign splits deterministically from a seed; all items of one video, imported file or
    /// image land in the same split.
    Split {
        name: String,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// NAME=RATIO,… with positive ratios summing to 1.
        #[arg(long, default_value = "train=0.8,val=0.1,test=0.1")]
        ratios: String,
        #[arg(long)]
        json: bool,
    },
    /// Find exact (same image) and near (perceptual hash) duplicates; --drop keeps the first
    /// item of each group.
    Dedupe {
        name: String,
        /// Most bits two perceptual hashes may differ by to count as the same picture (0-64).
        #[arg(long, value_name = "N", default_value_t = DEFAULT_NEAR)]
        near: u32,
        /// Delete all but the first (lowest id) item of each group.
        #[arg(long)]
        drop: bool,
        #[arg(long)]
        json: bool,
    },
    /// Remove items whose caption length or image size is out of bounds (frames without
    /// speech count as empty captions).
    Filter {
        name: String,
        #[arg(long, value_name = "N")]
        min_words: Option<usize>,
        #[arg(long, value_name = "N")]
        max_words: Option<usize>,
        #[arg(long)]
        drop_empty: bool,
        /// Smallest allowed shorter image side.
        #[arg(long, value_name = "PX")]
        min_side: Option<u32>,
        /// Report what would go; delete nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Replace an item's caption.
    Edit {
        name: String,
        id: i64,
        #[arg(long)]
        caption: String,
    },
    /// Delete items (all or none: an unknown id stops it).
    Delete {
        name: String,
        #[arg(required = true, value_name = "ID")]
        ids: Vec<i64>,
    },
    /// Copy SRC's items into DST (created if new); blobs are shared, items DST has are skipped.
    Merge {
        src: String,
        dst: String,
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn run(dir: &Path, cmd: CurateCmd) -> Result<ExitCode> {
    let store = open_store(dir)?;
    match cmd {
        CurateCmd::Split {
            name,
            seed,
            ratios,
            json,
        } => {
            let ratios = curate::parse_ratios(&ratios)?;
            let r = curate::split(&store, &name, seed, &ratios)?;
            if json {
                print_json(&r)?;
            } else {
                println!(
                    "split     {} items of {} in {} groups (seed {})",
                    r.items, r.dataset, r.groups, r.seed
                );
                for s in &r.splits {
                    println!(
                        "  {:<8} {:>7} items {:>6} groups  (asked {:.3}, got {:.3})",
                        s.name,
                        s.items,
                        s.groups,
                        s.ratio,
                        s.items as f64 / r.items.max(1) as f64
                    );
                }
            }
        }
        CurateCmd::Dedupe {
            name,
            near,
            drop,
            json,
        } => {
            let r = curate::dedupe(&store, &name, near, drop)?;
            if json {
                print_json(&r)?;
            } else {
                for g in &r.groups {
                    println!("{} duplicates, keeping #{}:", g.kind, g.keep);
                    for it in &g.items {
                        println!(
                            "  #{:<6} {} phash {} {}",
                            it.id,
                            &it.image_hash[..12],
                            it.phash,
                            it.source_path
                        );
                    }
                }
                let verb = if drop { "dropped" } else { "would drop" };
                println!(
                    "{} groups in {} items (near = {} bits); {verb} {}",
                    r.groups.len(),
                    r.items,
                    r.near,
                    if drop { r.dropped } else { r.duplicates }
                );
            }
        }
        CurateCmd::Filter {
            name,
            min_words,
            max_words,
            drop_empty,
            min_side,
            dry_run,
            json,
        } => {
            let opts = FilterOptions {
                min_words,
                max_words,
                drop_empty,
                min_side,
                dry_run,
            };
            let r = curate::filter(&store, &name, &opts)?;
            if json {
                print_json(&r)?;
            } else {
                println!(
                    "{} {} of {} items from {} (empty {}, too few words {}, too many words {}, too small {})",
                    if dry_run { "would remove" } else { "removed" },
                    r.removed,
                    r.items,
                    r.dataset,
                    r.empty,
                    r.too_few_words,
                    r.too_many_words,
                    r.too_small
                );
            }
        }
        CurateCmd::Edit { name, id, caption } => {
            curate::edit_caption(&store, &name, id, &caption)?;
            println!("edited    #{id} of {name}");
        }
        CurateCmd::Delete { name, ids } => {
            let n = curate::delete_items(&store, &name, &ids)?;
            println!("deleted   {n} items from {name}");
        }
        CurateCmd::Merge { src, dst, json } => {
            let r = curate::merge(&store, &src, &dst)?;
            if json {
                print_json(&r)?;
            } else {
                println!(
                    "merged    {} into {}{}: {} added, {} already there",
                    r.source,
                    r.destination,
                    if r.created { " (new)" } else { "" },
                    r.added,
                    r.already_there
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
