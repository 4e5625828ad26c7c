//! Arguments and commands of the `tessera` binary.

mod curate;
mod demo;
mod evaluate;
mod explore;
mod progress;
mod query;
mod train;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use clap::{Args, Parser, Subcommand};
use tessera::asr::{self, DecodeOptions, Transcriber};
use tessera::events::VideoOutcome;
use tessera::ingest::{
    import, ingest_videos, ImportFormat, ImportOptions, IngestOptions, PairingOptions,
};
use tessera::media::{self, FrameSampling};
use tessera::store::{self, Store};

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Vision-language research workbench: videos and image-text data in, a single-stream transformer out."
)]
struct Cli {
    /// Where the store lives (default: the platform's app-data directory).
    #[arg(long, global = true, env = "TESSERA_HOME", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Turn videos into keyframe–transcript pairs in a dataset.
    Ingest(IngestArgs),
    /// Import image-caption data (a folder, JSONL/CSV/TSV, COCO, WebDataset shards) or VQA data
    /// (VQA v2, JSONL, easy-VQA).
    Import(ImportArgs),
    /// Data sets in the store.
    #[command(subcommand)]
    Datasets(DatasetsCmd),
    /// Write a dataset out as WebDataset shards or a JSONL table with its images.
    #[command(subcommand)]
    Export(explore::ExportCmd),
    /// Items of a dataset.
    Items {
        dataset: String,
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Transcribe one audio or video file (speech recognition only; nothing is stored).
    Transcribe {
        file: PathBuf,
        #[command(flatten)]
        asr: AsrArgs,
        #[arg(long)]
        json: bool,
    },
    /// Whisper model files.
    #[command(subcommand)]
    Models(ModelsCmd),
    /// Pre-train the vision-language transformer on a dataset.
    Pretrain(train::PretrainArgs),
    /// Fine-tune for VQA or retrieval from a pre-trained run (or from scratch), in the same loop.
    Finetune(train::FinetuneArgs),
    /// Evaluate runs: retrieval recall@K, VQA accuracy (kept with each run).
    #[command(subcommand)]
    Eval(evaluate::EvalCmd),
    /// The whole chain on the sample assets in a few minutes: ingest, import, pre-train,
    /// fine-tune, evaluate, ask, search.
    Demo(demo::DemoArgs),
    /// Pre-train → fine-tune → evaluate every variant of the objectives over seeds (plus a
    /// from-scratch row) and write the table; resumable.
    Ablate(evaluate::AblateArgs),
    /// Images for a caption, or captions for an image (`--image`), through the run's index.
    Search(query::SearchArgs),
    /// Answer a question about an image with a VQA run: the top answers and their probabilities.
    Ask(query::AskArgs),
    /// Training runs: their configs, status and per-step metrics.
    #[command(subcommand)]
    Runs(train::RunsCmd),
    /// Continue a stopped, failed or killed run from its last checkpoint.
    Resume {
        run: String,
        #[arg(long, default_value = "auto")]
        device: tessera::model::DeviceChoice,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct AsrArgs {
    /// GGML Whisper model file (default: the most capable one installed).
    #[arg(long, env = "TESSERA_WHISPER_MODEL", value_name = "PATH")]
    model: Option<PathBuf>,
    /// Spoken language (a Whisper code such as en, de, fr) or auto.
    #[arg(long, default_value = "auto")]
    language: String,
    /// CPU threads for Whisper (default: all cores, at most 8).
    #[arg(long)]
    threads: Option<usize>,
    /// Translate speech to English instead of transcribing it.
    #[arg(long)]
    translate: bool,
    /// Beams for decoding; 1 is greedy (fastest).
    #[arg(long, default_value_t = 1)]
    beam_size: usize,
}

impl AsrArgs {
    fn decode_options(&self) -> DecodeOptions {
        let mut d = DecodeOptions {
            language: self.language.clone(),
            translate: self.translate,
            beam_size: self.beam_size.max(1),
            ..DecodeOptions::default()
        };
        if let Some(t) = self.threads {
            d.threads = t.max(1);
        }
        d
    }
}

#[derive(Args)]
struct IngestArgs {
    /// Dataset to add the items to (created if new).
    #[arg(long)]
    dataset: String,
    #[command(flatten)]
    asr: AsrArgs,
    /// Transcript segments of context kept before and after each item.
    #[arg(long, default_value_t = PairingOptions::default().context)]
    context: usize,
    /// Merge short transcript segments until a caption has this many words.
    #[arg(long, default_value_t = PairingOptions::default().min_words)]
    min_words: usize,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Video files and folders (searched recursively).
    #[arg(required = true, value_name = "FILES_OR_DIRS")]
    inputs: Vec<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    /// Images with sidecar captions (x.jpg + x.txt, or x.json with "caption"), recursively.
    Folder,
    /// One JSON object per line with an image path and a caption.
    Jsonl,
    /// Comma-separated rows with a header.
    Csv,
    /// Tab-separated rows with a header.
    Tsv,
    /// COCO captions (captions_*.json, with --images) or the Karpathy split file.
    Coco,
    /// A .tar shard, or a directory of them (key.jpg + key.txt [+ key.json]).
    Webdataset,
    /// VQA v2: a questions JSON, with --annotations (the answers) and --images (COCO images).
    Vqa2,
    /// One JSON object per line: image path, "question", "answers" (a list) or "answer".
    VqaJsonl,
    /// The easy-VQA data folder (train/ and test/ with questions.json and images/).
    EasyVqa,
}

impl From<FormatArg> for ImportFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Folder => ImportFormat::Folder,
            FormatArg::Jsonl => ImportFormat::Jsonl,
            FormatArg::Csv => ImportFormat::Csv,
            FormatArg::Tsv => ImportFormat::Tsv,
            FormatArg::Coco => ImportFormat::Coco,
            FormatArg::Webdataset => ImportFormat::Webdataset,
            FormatArg::Vqa2 => ImportFormat::Vqa2,
            FormatArg::VqaJsonl => ImportFormat::VqaJsonl,
            FormatArg::EasyVqa => ImportFormat::EasyVqa,
        }
    }
}

#[derive(Args)]
struct ImportArgs {
    #[arg(value_enum)]
    format: FormatArg,
    /// The folder, table, COCO file, shard or directory of shards.
    path: PathBuf,
    /// Dataset to add the items to (created if new).
    #[arg(long)]
    dataset: String,
    /// Stop at the first problem and write nothing.
    #[arg(long)]
    strict: bool,
    /// Column (JSONL field) with the image path, relative to the table's directory.
    #[arg(long, default_value = "image")]
    image_col: String,
    /// Column (JSONL field) with the caption.
    #[arg(long, default_value = "caption")]
    caption_col: String,
    /// Where a COCO or VQA v2 file's images are (default for a Karpathy file: its own
    /// directory).
    #[arg(long, value_name = "DIR")]
    images: Option<PathBuf>,
    /// VQA v2's annotations file: the answers to the questions in PATH.
    #[arg(long, value_name = "FILE")]
    annotations: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum DatasetsCmd {
    /// All data sets with their counts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One data set: counts and failed sources.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    #[command(flatten)]
    Curate(curate::CurateCmd),
    #[command(flatten)]
    Explore(explore::ExploreCmd),
}

#[derive(Subcommand)]
enum ModelsCmd {
    /// Installed model files and the official ones that can be installed.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Check that a file (or an installed model's name) is a loadable GGML Whisper model.
    Verify { model: String },
    /// Download an official whisper.cpp model (checked against its published SHA-1), or install
    /// a local file under NAME with --from.
    Install {
        name: String,
        #[arg(long, value_name = "FILE")]
        from: Option<PathBuf>,
    },
}

pub fn run() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Engine and whisper.cpp logs go to stderr only when asked for (RUST_LOG=debug).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn data_dir(cli_dir: Option<PathBuf>) -> Result<PathBuf> {
    cli_dir
        .or_else(store::default_data_dir)
        .ok_or_else(|| anyhow!("no home directory: pass --data-dir or set TESSERA_HOME"))
}

fn open_store(dir: &Path) -> Result<Store> {
    Store::open(dir).with_context(|| format!("opening the store in {}", dir.display()))
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let written = serde_json::to_writer_pretty(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|_| writeln!(out));
    match written {
        // the reader went away (`| head`): nothing left to say
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    let dir = data_dir(cli.data_dir)?;
    match cli.command {
        Command::Ingest(args) => ingest(&dir, args),
        Command::Import(args) => import_data(&dir, args),
        Command::Datasets(DatasetsCmd::List { json }) => {
            let store = open_store(&dir)?;
            let all = store.datasets()?;
            if json {
                print_json(&all)?;
            } else if all.is_empty() {
                println!(
                    "no datasets yet in {} (try `tessera ingest`)",
                    dir.display()
                );
            } else {
                println!(
                    "{:<24} {:>8} {:>7} {:>7}",
                    "DATASET", "ITEMS", "VIDEOS", "FAILED"
                );
                for d in all {
                    println!(
                        "{:<24} {:>8} {:>7} {:>7}",
                        d.name, d.items, d.videos, d.failed_videos
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Datasets(DatasetsCmd::Curate(cmd)) => curate::run(&dir, cmd),
        Command::Datasets(DatasetsCmd::Explore(cmd)) => explore::run(&dir, cmd),
        Command::Export(cmd) => explore::run_export(&dir, cmd),
        Command::Datasets(DatasetsCmd::Show { name, json }) => {
            let store = open_store(&dir)?;
            let d = store.dataset(&name)?;
            let failed = store.failed_jobs(store.dataset_id(&name)?)?;
            if json {
                let failed: Vec<_> = failed
                    .iter()
                    .map(|(p, r)| serde_json::json!({"path": p, "reason": r}))
                    .collect();
                print_json(&serde_json::json!({"dataset": d, "failed": failed}))?;
            } else {
                println!("dataset   {}", d.name);
                println!("created   {}", d.created_at);
                println!(
                    "items     {} ({} without speech)",
                    d.items, d.no_speech_items
                );
                println!(
                    "videos    {} ingested, {} failed",
                    d.videos, d.failed_videos
                );
                for (p, r) in failed {
                    println!("  failed  {p}: {r}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Items {
            dataset,
            limit,
            json,
        } => {
            let store = open_store(&dir)?;
            let items = store.items(&dataset, limit)?;
            if json {
                print_json(&items)?;
            } else {
                for it in items {
                    let span = match (it.start_s, it.end_s) {
                        (Some(a), Some(b)) => format!("{a:>7.2}–{b:<7.2}"),
                        _ => String::from("-"),
                    };
                    let caption = if it.no_speech {
                        "(no speech)"
                    } else {
                        it.caption.as_str()
                    };
                    println!(
                        "#{:<5} {} {} {}",
                        it.id,
                        span,
                        &it.image_hash[..12],
                        it.source_path
                    );
                    println!("       {caption}");
                    if let Some(q) = &it.question {
                        // The most given answer; `--json` shows them all.
                        let top = it.answers.as_ref().and_then(|a| a[0]["answer"].as_str());
                        println!("       Q: {q}  A: {}", top.unwrap_or("-"));
                    }
                    if !it.context_before.is_empty() || !it.context_after.is_empty() {
                        println!("       before: {}", it.context_before);
                        println!("       after:  {}", it.context_after);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Transcribe { file, asr, json } => transcribe(&dir, &file, &asr, json),
        Command::Models(cmd) => models(&dir, cmd),
        Command::Pretrain(args) => train::pretrain(&dir, args),
        Command::Finetune(args) => train::finetune(&dir, args),
        Command::Eval(cmd) => evaluate::eval(&dir, cmd),
        Command::Ablate(args) => evaluate::ablate(&dir, args),
        Command::Demo(args) => demo::demo(&dir, args),
        Command::Search(args) => query::search(&dir, args),
        Command::Ask(args) => query::ask(&dir, args),
        Command::Runs(cmd) => train::runs(&dir, cmd),
        Command::Resume { run, device, json } => train::resume(&dir, &run, device, json),
    }
}

fn models_dir(dir: &Path) -> PathBuf {
    dir.join("models").join("whisper")
}

fn resolve_model(dir: &Path, explicit: Option<&Path>) -> Result<PathBuf> {
    Ok(asr::resolve_model(explicit, &models_dir(dir))?)
}

fn ingest(dir: &Path, args: IngestArgs) -> Result<ExitCode> {
    let store = open_store(dir)?;
    let model = resolve_model(dir, args.asr.model.as_deref())?;
    let opts = IngestOptions {
        dataset: args.dataset.clone(),
        model,
        decode: args.asr.decode_options(),
        pairing: PairingOptions {
            context: args.context,
            min_words: args.min_words.max(1),
            ..PairingOptions::default()
        },
        sampling: FrameSampling::default(),
        cancel: Default::default(),
    };
    let sink = Arc::new(progress::BarSink::new());
    let report = ingest_videos(&store, &args.inputs, &opts, sink.clone())?;
    sink.finish();
    if args.json {
        print_json(&report)?;
    } else {
        for v in &report.videos {
            match &v.outcome {
                VideoOutcome::Ingested { items } => {
                    println!("ingested  {} ({items} items)", v.path.display())
                }
                VideoOutcome::AlreadyIngested { items } => {
                    println!(
                        "unchanged {} ({items} items, already ingested)",
                        v.path.display()
                    )
                }
                VideoOutcome::Failed { reason } => println!("FAILED    {reason}"),
            }
        }
        for (p, r) in &report.rejected {
            println!("FAILED    {}: {r}", p.display());
        }
    }
    Ok(if report.failed() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn import_data(dir: &Path, args: ImportArgs) -> Result<ExitCode> {
    let store = open_store(dir)?;
    let opts = ImportOptions {
        strict: args.strict,
        image_col: args.image_col,
        caption_col: args.caption_col,
        images_dir: args.images,
        annotations: args.annotations,
        ..ImportOptions::new(&args.dataset, args.format.into(), &args.path)
    };
    let sink = Arc::new(progress::BarSink::new());
    let report = import(&store, &opts, sink.clone())?;
    sink.finish();
    if args.json {
        print_json(&report)?;
    } else {
        for p in &report.problems {
            println!("FAILED    {}", p.message);
        }
        if report.aborted {
            println!(
                "aborted   --strict: nothing written to {} ({} problems)",
                report.dataset,
                report.failed()
            );
        } else {
            println!(
                "imported  {} items into {} ({} new, {} already there; {} images) from {}",
                report.items,
                report.dataset,
                report.added,
                report.unchanged,
                report.images,
                report.path.display()
            );
        }
    }
    Ok(if report.failed() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn transcribe(dir: &Path, file: &Path, args: &AsrArgs, json: bool) -> Result<ExitCode> {
    let model = resolve_model(dir, args.model.as_deref())?;
    let pcm = media::decode_audio(file)?;
    let transcriber = Transcriber::load(&model)?;
    let bar = progress::percent_bar("transcribing");
    let b = bar.clone();
    let transcript = transcriber.transcribe(&pcm, &args.decode_options(), move |f| {
        b.set_position((f * 100.0) as u64)
    })?;
    bar.finish_and_clear();
    if json {
        print_json(&transcript)?;
    } else {
        for s in &transcript.segments {
            println!("[{:>7.2} → {:>7.2}] {}", s.start_s, s.end_s, s.text);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn models(dir: &Path, cmd: ModelsCmd) -> Result<ExitCode> {
    let mdir = models_dir(dir);
    match cmd {
        ModelsCmd::List { json } => {
            let installed = asr::installed_models(&mdir);
            if json {
                let installed: Vec<_> = installed
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "path": p,
                            "size_bytes": std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
                        })
                    })
                    .collect();
                let official: Vec<_> = asr::OFFICIAL_MODELS
                    .iter()
                    .map(|m| serde_json::json!({"name": m.name, "size_mib": m.size_mib, "sha1": m.sha1}))
                    .collect();
                print_json(&serde_json::json!({
                    "models_dir": mdir, "installed": installed, "official": official
                }))?;
            } else {
                println!("installed in {}:", mdir.display());
                if installed.is_empty() {
                    println!("  (none)");
                }
                for p in &installed {
                    let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                    println!("  {}  {:.0} MiB", p.display(), size as f64 / 1048576.0);
                }
                println!("official (tessera models install NAME):");
                for m in asr::OFFICIAL_MODELS {
                    println!("  {:<10} {:>5} MiB  sha1 {}", m.name, m.size_mib, m.sha1);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelsCmd::Verify { model } => {
            let path = if Path::new(&model).exists() {
                PathBuf::from(&model)
            } else {
                mdir.join(format!("ggml-{model}.bin"))
            };
            let info = asr::verify_model(&path)?;
            println!(
                "ok: {} is a GGML Whisper model ({}{}, {} encoder / {} decoder layers, width {}){}",
                path.display(),
                info.size_name,
                if info.multilingual {
                    ", multilingual"
                } else {
                    ", English-only"
                },
                info.header.n_audio_layer,
                info.header.n_text_layer,
                info.header.n_audio_state,
                info.official
                    .map(|n| format!("; matches the official {n} checksum"))
                    .unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        ModelsCmd::Install { name, from } => {
            let dest = match from {
                Some(file) => asr::install_from_file(&name, &file, &mdir)?,
                None => {
                    let bars = progress::BarSink::new();
                    let dest = asr::install_official(&name, &mdir, &bars, &Default::default());
                    bars.finish();
                    dest?
                }
            };
            println!("installed {}", dest.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
