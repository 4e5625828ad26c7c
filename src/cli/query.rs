//! `tessera search` and `tessera ask`: a trained run answering — images for a caption, captions
//! for an image (through the run's index of a data set), answers to a question about an image.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use tessera::index::Index;
use tessera::infer::Loaded;
use tessera::model::DeviceChoice;
use tessera::store::Store;

use super::{open_store, print_json};

#[derive(Args)]
pub(super) struct SearchArgs {
    run: String,
    /// The caption to find images for.
    #[arg(required_unless_present = "image", conflicts_with = "image")]
    text: Option<String>,
    /// Find captions for this image file instead.
    #[arg(long, value_name = "FILE")]
    image: Option<PathBuf>,
    /// The data set searched (default: the run's own).
    #[arg(long)]
    dataset: Option<String>,
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Re-order the top K by the image-text matching head.
    #[arg(long)]
    rerank: bool,
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(super) struct AskArgs {
    /// A VQA fine-tuning run.
    run: String,
    /// An image file, or the hash of an image in the store (as `search` prints).
    image: String,
    question: String,
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Write the image with `[CLS]`'s last-layer attention over its patches as a heat map.
    #[arg(long, value_name = "PNG")]
    attention: Option<PathBuf>,
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    #[arg(long)]
    json: bool,
}

fn run_dataset(store: &Store, run: &str) -> Result<String> {
    store
        .run_summary(run)?
        .dataset
        .with_context(|| format!("run {run:?} has no data set; pass --dataset"))
}

pub(super) fn search(dir: &Path, a: SearchArgs) -> Result<ExitCode> {
    let store = open_store(dir)?;
    let loaded = Loaded::open(&store, &a.run, a.device)?;
    let dataset = match a.dataset {
        Some(d) => d,
        None => run_dataset(&store, &a.run)?,
    };
    let (index, built) = Index::open(&store, &loaded, &dataset)?;
    // On stderr, so `--json` output stays one document.
    if built {
        eprintln!(
            "indexed {} images and {} captions of {dataset} under {} step {}",
            index.images.len(),
            index.texts.len(),
            a.run,
            loaded.step
        );
    }
    let hits = match (&a.text, &a.image) {
        (Some(q), _) => index.search_text(&store, &loaded, q, a.k, a.rerank)?,
        (None, Some(path)) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let pix = loaded
                .patches(&bytes)
                .with_context(|| format!("{} is not a readable image", path.display()))?;
            index.search_image(&loaded, &pix, a.k, a.rerank)?
        }
        (None, None) => unreachable!("clap requires one"),
    };
    if a.json {
        print_json(&hits)?;
        return Ok(ExitCode::SUCCESS);
    }
    for (i, h) in hits.iter().enumerate() {
        let m = h
            .match_score
            .map(|m| format!(" match {m:.3}"))
            .unwrap_or_default();
        println!(
            "{:>2}. {:.3}{m}  {}  {}",
            i + 1,
            h.score,
            &h.image_hash[..h.image_hash.len().min(16)],
            if h.captions.is_empty() {
                h.source.clone().unwrap_or_default()
            } else {
                h.captions.join(" | ")
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn ask(dir: &Path, a: AskArgs) -> Result<ExitCode> {
    let store = open_store(dir)?;
    let loaded = Loaded::open(&store, &a.run, a.device)?;
    let path = Path::new(&a.image);
    let bytes = if path.is_file() {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
    } else {
        let known = a.image.len() >= 8
            && a.image.chars().all(|c| c.is_ascii_hexdigit())
            && store.blobs().contains(&a.image);
        if !known {
            bail!(
                "{}: no such image file, and no image with that hash in the store",
                a.image
            );
        }
        std::fs::read(store.blobs().path_of(&a.image))?
    };
    let pix = loaded
        .patches(&bytes)
        .with_context(|| format!("{} is not a readable image", a.image))?;
    let answers = loaded.ask(&a.question, &pix, a.top)?;
    if let Some(out) = &a.attention {
        loaded
            .attention_overlay(&bytes, &a.question, &pix, 256)?
            .save(out)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    if a.json {
        print_json(&answers)?;
    } else {
        for x in &answers {
            println!("{:>6.2}%  {}", 100.0 * x.probability, x.answer);
        }
        if let Some(out) = &a.attention {
            println!("attention: {}", out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
