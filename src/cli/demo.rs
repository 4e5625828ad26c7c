//! `tessera demo`: the whole chain on the fetched real assets, each step through the same
//! command the user would type (and printing what it prints): ingest the composed sample video,
//! import easy-VQA, pre-train `tiny`, fine-tune it for VQA, evaluate, answer a question with an
//! attention map, search images by a caption.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser};

use super::{dispatch, open_store, Cli};

const TINY: &str = tessera::model::config::PRESETS[0].1;

#[derive(Args)]
pub(super) struct DemoArgs {
    /// Where scripts/fetch-assets.sh put the sample assets.
    #[arg(long, env = "TESSERA_ASSETS", value_name = "DIR")]
    assets: Option<PathBuf>,
    /// Pre-training steps.
    #[arg(long, default_value_t = 150)]
    pretrain_steps: u64,
    /// VQA fine-tuning steps.
    #[arg(long, default_value_t = 400)]
    finetune_steps: u64,
}

fn step(n: usize, title: &str, dir: &Path, args: &[&str]) -> Result<ExitCode> {
    println!("\n== {n}. {title}\n$ tessera {}", args.join(" "));
    let mut argv = vec!["tessera", "--data-dir"];
    let d = dir.to_string_lossy().to_string();
    argv.push(&d);
    argv.extend_from_slice(args);
    dispatch(Cli::try_parse_from(argv)?)
}

pub(super) fn demo(dir: &Path, a: DemoArgs) -> Result<ExitCode> {
    let assets = match a.assets {
        Some(p) => p,
        None => directories::BaseDirs::new()
            .context("no home directory: pass --assets")?
            .home_dir()
            .join(".cache/tessera/assets"),
    };
    let video = assets.join("composed/talk.mp4");
    let easy = assets.join("easy-vqa/data");
    for p in [&video, &easy] {
        if !p.exists() {
            anyhow::bail!(
                "{} is missing: run scripts/fetch-assets.sh (or pass --assets)",
                p.display()
            );
        }
    }
    // Fresh run names each time the demo runs in the same store.
    let taken: Vec<String> = open_store(dir)?
        .runs()?
        .into_iter()
        .map(|r| r.name)
        .collect();
    let tag = (1..)
        .map(|i| format!("demo{i}"))
        .find(|t| !taken.iter().any(|n| n.starts_with(&format!("{t}-"))))
        .expect("a free name");
    let work = dir.join("demo");
    std::fs::create_dir_all(&work)?;
    let config = work.join("tiny.toml");
    std::fs::write(&config, TINY)?;
    let (pre, vqa) = (format!("{tag}-pretrain"), format!("{tag}-vqa"));
    let attention = work.join(format!("{tag}-attention.png"));
    let question_image = easy.join("test/images/0.png");
    let s = |p: &Path| p.to_string_lossy().to_string();
    let (video, easy, config, attention, question_image) = (
        s(&video),
        s(&easy),
        s(&config),
        s(&attention),
        s(&question_image),
    );
    let (ps, fs) = (a.pretrain_steps.to_string(), a.finetune_steps.to_string());
    let mut failed = Vec::new();
    let mut go = |n: usize, title: &str, args: &[&str]| match step(n, title, dir, args) {
        Ok(code) if code == ExitCode::SUCCESS => true,
        Ok(_) => {
            failed.push(title.to_string());
            true
        }
        Err(e) => {
            println!("error: {e:#}");
            failed.push(title.to_string());
            false
        }
    };
    // The video needs a Whisper model; when it fails the rest still runs.
    go(
        1,
        "ingest a video: speech → keyframe–transcript pairs",
        &["ingest", "--dataset", "demo-video", &video],
    );
    go(1, "the pairs", &["items", "demo-video", "--limit", "3"]);
    let chain: [(&str, Vec<&str>); 6] = [
        (
            "import easy-VQA (5,000 images, 48,248 questions)",
            vec!["import", "easy-vqa", &easy, "--dataset", "demo-vqa"],
        ),
        (
            "pre-train tiny (MLM + MIM + ITM + contrastive; captions from the answers)",
            vec![
                "pretrain",
                "--dataset",
                "demo-vqa",
                "--config",
                &config,
                "--objectives",
                "mlm,mim,itm,contrastive",
                "--steps",
                &ps,
                "--batch",
                "32",
                "--run",
                &pre,
            ],
        ),
        (
            "fine-tune for VQA from the pre-trained run",
            vec![
                "finetune",
                "vqa",
                "--dataset",
                "demo-vqa",
                "--from",
                &pre,
                "--steps",
                &fs,
                "--batch",
                "64",
                "--lr",
                "1e-3",
                "--run",
                &vqa,
            ],
        ),
        (
            "evaluate on the test split",
            vec!["eval", "vqa", &vqa, "--dataset", "demo-vqa"],
        ),
        (
            "ask a question about a test image",
            vec![
                "ask",
                &vqa,
                &question_image,
                "what color is the shape?",
                "--attention",
                &attention,
            ],
        ),
        (
            "search images by a caption",
            vec![
                "search",
                &pre,
                "red circle",
                "--dataset",
                "demo-vqa",
                "--k",
                "5",
            ],
        ),
    ];
    for (i, (title, args)) in chain.iter().enumerate() {
        if !go(i + 2, title, args) {
            break;
        }
    }
    if failed.is_empty() {
        println!(
            "\ndemo finished: runs {pre} and {vqa} are in {}",
            dir.display()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("\ndemo finished with failed steps: {}", failed.join("; "));
        Ok(ExitCode::FAILURE)
    }
}
