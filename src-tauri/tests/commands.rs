//! The window's command layer over a real store: argument checks, the `media:` protocol's
//! limits, training jobs that stream events, stop when cancelled and resume, and search and
//! ask through a trained run — what the Tauri commands call, without a window.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use tessera::events::{Event, EventSink, RecordingSink};
use tessera::ingest::import::{import, ImportFormat, ImportOptions};
use tessera::model::{DeviceChoice, RunConfig};
use tessera::store::{ItemFilter, Store};
use tessera::train::FinetuneTask;
use tessera_app::workbench::{
    ExportRequest, FinetuneRequest, ImageRef, ImportRequest, IngestRequest, JobInfo, JobState,
    TrainRequest, WhisperInstallRequest, Workbench,
};

const COLOURS: [(&str, [u8; 3]); 3] = [
    ("red", [220, 30, 30]),
    ("green", [30, 200, 60]),
    ("blue", [40, 60, 230]),
];
const SHAPES: [&str; 3] = ["square", "circle", "cross"];

fn png(rgb: [u8; 3], shape: usize) -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 64, |x, y| {
        let (dx, dy) = (x as i32 - 32, y as i32 - 32);
        let inside = match shape {
            0 => dx.abs() < 18 && dy.abs() < 18,
            1 => dx * dx + dy * dy < 20 * 20,
            _ => dx.abs() < 6 || dy.abs() < 6,
        };
        image::Rgb(if inside { rgb } else { [128, 128, 128] })
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A data directory with `shapes`: 9 pictures, each captioned with its colour and shape.
fn store_with_shapes() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("shapes");
    std::fs::create_dir_all(&folder).unwrap();
    for (c, (colour, rgb)) in COLOURS.iter().enumerate() {
        for (s, shape) in SHAPES.iter().enumerate() {
            let stem = folder.join(format!("{c}{s}"));
            std::fs::write(stem.with_extension("png"), png(*rgb, s)).unwrap();
            std::fs::write(stem.with_extension("txt"), format!("a {colour} {shape}")).unwrap();
        }
    }
    let data = tmp.path().join("data");
    let store = Store::open(&data).unwrap();
    let report = import(
        &store,
        &ImportOptions::new("shapes", ImportFormat::Folder, &folder),
        Arc::new(tessera::events::NullSink),
    )
    .unwrap();
    assert_eq!(report.added, 9);
    (tmp, data)
}

fn all_items() -> ItemFilter {
    ItemFilter::default()
}

fn err<T: std::fmt::Debug>(r: Result<T, tessera_app::workbench::CommandError>) -> String {
    r.expect_err("should be refused").to_string()
}

#[test]
fn pages_search_and_edits_with_their_arguments_checked() {
    let (_tmp, data) = store_with_shapes();
    let wb = Workbench::open(&data).unwrap();
    let all = wb.items("shapes", &all_items(), 0, 100).unwrap();
    assert_eq!((all.total, all.items.len()), (9, 9));
    let page = wb.items("shapes", &all_items(), 4, 3).unwrap();
    assert_eq!(page.total, 9);
    let ids: Vec<i64> = page.items.iter().map(|i| i.id).collect();
    let expected: Vec<i64> = all.items[4..7].iter().map(|i| i.id).collect();
    assert_eq!(ids, expected, "a page is the slice of the whole order");
    assert!(wb
        .items("shapes", &all_items(), 9, 10)
        .unwrap()
        .items
        .is_empty());
    assert!(err(wb.items("shapes", &all_items(), 0, 0)).contains("between 1 and 500"));
    assert!(err(wb.items("shapes", &all_items(), 0, 100_000)).contains("between 1 and 500"));
    assert!(err(wb.items("nope", &all_items(), 0, 10)).contains("nope"));

    let square = ItemFilter {
        source: Some("2.png".into()),
        min_words: Some(3),
        ..Default::default()
    };
    let page = wb.items("shapes", &square, 0, 10).unwrap();
    assert_eq!(
        page.total, 3,
        "the x2.png files: squares and crosses of each colour"
    );
    assert!(page.items.iter().all(|i| i.source_path.ends_with("2.png")));
    let impossible = ItemFilter {
        min_words: Some(5),
        max_words: Some(2),
        ..Default::default()
    };
    assert!(err(wb.items("shapes", &impossible, 0, 10)).contains("no item can pass"));

    let hits = wb.search_captions("shapes", "red", 10).unwrap();
    assert_eq!(hits.len(), 3);
    assert!(hits.iter().all(|h| h.item.caption.contains("red")));
    assert!(err(wb.search_captions("shapes", "   ", 10)).contains("empty"));
    assert!(err(wb.search_captions("shapes", "\"red", 10)).contains("red"));

    let target = hits[0].item.id;
    assert_eq!(wb.item("shapes", target).unwrap(), hits[0].item);
    assert!(err(wb.item("shapes", 12345)).contains("#12345"));
    wb.edit_caption("shapes", target, "  a crimson square  ")
        .unwrap();
    let crimson = wb.search_captions("shapes", "crimson", 10).unwrap();
    assert_eq!(crimson.len(), 1);
    assert_eq!(crimson[0].item.caption, "a crimson square");
    assert!(err(wb.edit_caption("shapes", target, &"x".repeat(3000))).contains("longer than"));

    wb.delete_item("shapes", target).unwrap();
    assert_eq!(wb.items("shapes", &all_items(), 0, 100).unwrap().total, 8);
    assert!(err(wb.delete_item("shapes", target)).contains(&format!("#{target}")));
    let names: Vec<String> = wb.datasets().unwrap().into_iter().map(|d| d.name).collect();
    assert_eq!(names, ["shapes"]);
    assert_eq!(wb.dataset_stats("shapes").unwrap().items, 8);
}

#[test]
fn media_serves_catalogued_images_and_nothing_else() {
    let (_tmp, data) = store_with_shapes();
    let wb = Workbench::open(&data).unwrap();
    let item = &wb.items("shapes", &all_items(), 0, 1).unwrap().items[0];
    let (mime, bytes) = wb.media(&format!("/{}", item.image_hash)).unwrap();
    assert_eq!(mime, "image/png");
    assert_eq!(tessera::store::hash_bytes(&bytes), item.image_hash);
    let (mime, thumb) = wb.media(&format!("/thumb/{}", item.image_hash)).unwrap();
    assert_eq!(mime, "image/jpeg");
    assert_eq!(&thumb[..2], &[0xff, 0xd8], "a JPEG thumbnail");
    // What `convertFileSrc` sends for `thumb/HASH`.
    assert_eq!(
        wb.media(&format!("/thumb%2F{}", item.image_hash))
            .unwrap()
            .1,
        thumb
    );
    for bad in [
        "/../catalog.sqlite".to_string(),
        "/thumb/../../etc/passwd".to_string(),
        format!("/{}", "0".repeat(64)),
        format!("/{}/x", item.image_hash),
        format!("/{}", item.image_hash.to_uppercase()),
        "/".to_string(),
    ] {
        assert!(wb.media(&bad).is_err(), "{bad} must not be served");
    }
}

fn tiny(steps: u64) -> RunConfig {
    let mut cfg = RunConfig::preset("tiny").unwrap();
    cfg.objectives.select("mlm,itm,contrastive").unwrap();
    cfg.train.batch = 4;
    cfg.train.steps = steps;
    cfg.train.warmup_steps = 0;
    cfg.train.checkpoint_every = 1000;
    cfg.train.validate_every = 1000;
    cfg
}

/// A sink that records and says when the first training step arrived.
struct Watch {
    events: RecordingSink,
    stepped: mpsc::SyncSender<()>,
}

impl EventSink for Watch {
    fn emit(&self, event: Event) {
        if matches!(event, Event::TrainStep { .. }) {
            let _ = self.stepped.try_send(());
        }
        self.events.emit(event);
    }
}

fn wait(rx: &mpsc::Receiver<JobInfo>) -> JobInfo {
    rx.recv_timeout(Duration::from_secs(300))
        .expect("the job ended")
}

#[test]
fn a_training_job_streams_stops_resumes_and_then_searches() {
    let (tmp, data) = store_with_shapes();
    let wb = Workbench::open(&data).unwrap();
    let request = |steps: u64, run: &str, dataset: &str| TrainRequest {
        dataset: dataset.into(),
        config: tiny(steps),
        run: Some(run.into()),
        device: DeviceChoice::Cpu,
    };
    let no_sink = |_| -> Arc<dyn EventSink> { Arc::new(tessera::events::NullSink) };

    // Refused before anything starts.
    assert!(err(wb.start_pretrain(request(0, "r", "shapes"), no_sink, |_| {})).contains("steps"));
    assert!(err(wb.start_pretrain(request(5, "r", "nope"), no_sink, |_| {})).contains("nope"));
    assert!(err(wb.start_pretrain(request(5, "../r", "shapes"), no_sink, |_| {})).contains("../r"));
    let mut bad = request(5, "r", "shapes");
    bad.config.train.batch = 1;
    assert!(err(wb.start_pretrain(bad, no_sink, |_| {})).contains("batch"));
    assert!(wb.jobs().is_empty());
    assert!(err(wb.cancel_job(42)).contains("no job #42"));

    // Start a long run, cancel it after its first step: it checkpoints and stops.
    let (stepped_tx, stepped) = mpsc::sync_channel(1);
    let watch = Arc::new(Watch {
        events: RecordingSink::default(),
        stepped: stepped_tx,
    });
    let (ended_tx, ended) = mpsc::channel();
    let sink = watch.clone();
    let tx = ended_tx.clone();
    let job = wb
        .start_pretrain(
            request(100_000, "shapes-run", "shapes"),
            move |_| sink,
            move |info| tx.send(info).unwrap(),
        )
        .unwrap();
    stepped
        .recv_timeout(Duration::from_secs(300))
        .expect("a first step");
    assert_eq!(wb.jobs()[0].state, JobState::Running);
    wb.cancel_job(job).unwrap();
    let info = wait(&ended);
    assert_eq!(info.id, job);
    assert_eq!(info.state, JobState::Finished, "{:?}", info.error);
    let report = info.report.unwrap();
    assert_eq!(report["status"], "stopped");
    let stopped_at = report["step"].as_u64().unwrap();
    assert!((1..100_000).contains(&stopped_at));
    let events = watch.events.events();
    assert!(matches!(
        events.first(),
        Some(Event::TrainStarted { device, .. }) if device == "cpu"
    ));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::TrainFinished { status, .. } if status == "stopped")));
    let detail = wb.run_detail("shapes-run").unwrap();
    assert_eq!(detail.run.status.as_str(), "stopped");
    let loss = detail
        .curves
        .iter()
        .find(|c| c.split == "train" && c.name == "loss")
        .expect("a train loss curve");
    assert_eq!(loss.steps.len(), loss.values.len());
    assert_eq!(*loss.steps.last().unwrap(), stopped_at);

    // Resume goes on from the checkpoint; stop it again.
    let (stepped_tx, stepped) = mpsc::sync_channel(1);
    let watch = Arc::new(Watch {
        events: RecordingSink::default(),
        stepped: stepped_tx,
    });
    let sink = watch.clone();
    let tx = ended_tx.clone();
    let again = wb
        .resume("shapes-run", move |_| sink, move |i| tx.send(i).unwrap())
        .unwrap();
    assert_ne!(again, job);
    stepped
        .recv_timeout(Duration::from_secs(300))
        .expect("a resumed step");
    wb.cancel_job(again).unwrap();
    let resumed = wait(&ended).report.unwrap();
    assert!(resumed["step"].as_u64().unwrap() > stopped_at);
    assert!(matches!(
        watch.events.events().first(),
        Some(Event::TrainStarted { step, .. }) if *step == stopped_at
    ));

    // Search through the run.
    let hits = wb
        .search_text("shapes-run", None, "a red square", 3, false)
        .unwrap();
    assert_eq!(hits.len(), 3);
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    // Each image hit names an item showing it, so the window can open it.
    for h in &hits {
        let item = wb.item("shapes", h.item_id.expect("an item")).unwrap();
        assert_eq!(item.image_hash, h.image_hash);
    }
    assert!(err(wb.search_text("shapes-run", None, "x", 0, false)).contains("k must be"));
    assert!(err(wb.search_text("shapes-run", None, " ", 3, false)).contains("empty"));
    assert!(err(wb.search_text("ghost", None, "x", 3, false)).contains("ghost"));

    // A file is read only once the user chose it.
    let outside = tmp.path().join("shapes/00.png");
    let file = ImageRef::File {
        path: outside.clone(),
    };
    assert!(err(wb.search_image("shapes-run", None, &file, 3, false)).contains("was not chosen"));
    wb.choose([outside]);
    let by_image = wb
        .search_image("shapes-run", None, &file, 3, false)
        .unwrap();
    assert_eq!(by_image.len(), 3);
    let stored = ImageRef::Stored {
        hash: by_image[0].image_hash.clone(),
    };
    assert_eq!(
        wb.search_image("shapes-run", None, &stored, 1, false)
            .unwrap()
            .len(),
        1
    );
    let unknown = ImageRef::Stored {
        hash: "../../catalog.sqlite".into(),
    };
    assert!(err(wb.search_image("shapes-run", None, &unknown, 3, false)).contains("no image"));
    let not_image = tmp.path().join("shapes/00.txt");
    wb.choose([not_image.clone()]);
    let text_file = ImageRef::File { path: not_image };
    assert!(
        err(wb.search_image("shapes-run", None, &text_file, 3, false))
            .contains("not a readable image")
    );

    // Asking needs a VQA run.
    assert!(err(wb.ask("shapes-run", &stored, "what colour?", 5)).contains("not a VQA"));
    assert!(err(wb.ask("shapes-run", &stored, "what colour?", 0)).contains("answers"));
    // Fine-tuning from the run: its architecture, the page's training settings.
    let finetune = |task: FinetuneTask, from: Option<&str>| FinetuneRequest {
        dataset: "shapes".into(),
        task,
        from: from.map(str::to_string),
        config: tiny(3),
        run: Some(format!("ft-{}", wb.jobs().len())),
        device: DeviceChoice::Cpu,
    };
    let (info, _) = run_job(|sink, end| {
        wb.start_finetune(
            finetune(FinetuneTask::Retrieval, Some("shapes-run")),
            sink,
            end,
        )
    });
    assert_eq!(info.state, JobState::Finished, "{:?}", info.error);
    assert_eq!(info.report.unwrap()["step"], 3);
    let child = wb
        .runs()
        .unwrap()
        .into_iter()
        .find(|r| r.name == "ft-2")
        .unwrap();
    assert_eq!(child.parent.as_deref(), Some("shapes-run"));
    // No questions in this data set: the engine refuses VQA, and the job says why.
    let (info, _) = run_job(|sink, end| {
        wb.start_finetune(finetune(FinetuneTask::Vqa { answers: 10 }, None), sink, end)
    });
    assert_eq!(info.state, JobState::Failed);
    assert!(info.error.unwrap().contains("shapes"));
    assert!(err(wb.start_finetune(
        finetune(FinetuneTask::Vqa { answers: 0 }, None),
        no_sink,
        |_| {}
    ))
    .contains("answers"));
    assert!(err(wb.start_finetune(
        finetune(FinetuneTask::Retrieval, Some("ghost")),
        no_sink,
        |_| {}
    ))
    .contains("ghost"));

    let jobs = wb.jobs();
    assert_eq!(jobs.len(), 4);
    assert_eq!(
        jobs.iter()
            .filter(|j| j.state == JobState::Finished)
            .count(),
        3
    );

    // The Models screen: checkpoints with their size; deleting the run takes them and its index.
    let listed = wb.checkpoints().unwrap();
    let run = listed.iter().find(|r| r.run == "shapes-run").unwrap();
    assert_eq!(run.model["hidden"], tiny(1).model.hidden);
    assert!(!run.checkpoints.is_empty());
    assert!(run.checkpoints.iter().all(|c| c.bytes > 10_000));
    let run_dir = data.join("runs/shapes-run");
    assert!(run_dir.is_dir() && data.join("index/shapes-run").is_dir());
    let deleted = wb.delete_run("shapes-run").unwrap();
    assert_eq!(deleted.checkpoints, run.checkpoints.len());
    assert!(!run_dir.exists() && !data.join("index/shapes-run").exists());
    assert!(err(wb.search_text("shapes-run", None, "x", 3, false)).contains("shapes-run"));
    assert!(err(wb.delete_run("shapes-run")).contains("shapes-run"));
}

fn assets() -> PathBuf {
    std::env::var_os("TESSERA_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/tessera/assets")
        })
}

/// Runs a job to its end and returns what `on_end` got, with the events it streamed.
fn run_job(
    start: impl FnOnce(
        Box<dyn FnOnce(u64) -> Arc<dyn EventSink>>,
        Box<dyn FnOnce(JobInfo) + Send>,
    ) -> Result<u64, tessera_app::workbench::CommandError>,
) -> (JobInfo, Vec<Event>) {
    let events = Arc::new(RecordingSink::default());
    let sink = events.clone();
    let (tx, rx) = mpsc::channel();
    start(
        Box::new(move |_| sink as Arc<dyn EventSink>),
        Box::new(move |info| tx.send(info).unwrap()),
    )
    .unwrap();
    (wait(&rx), events.events())
}

#[test]
fn import_and_ingest_jobs_read_only_chosen_paths_and_report() {
    let (tmp, data) = store_with_shapes();
    let wb = Workbench::open(&data).unwrap();
    let folder = tmp.path().join("shapes");
    let request = |dataset: &str| ImportRequest {
        dataset: dataset.into(),
        format: ImportFormat::Folder,
        path: folder.clone(),
        strict: false,
        image_column: None,
        caption_column: None,
        images_dir: None,
        annotations: None,
    };
    let none = |_| -> Arc<dyn EventSink> { Arc::new(tessera::events::NullSink) };
    assert!(err(wb.start_import(request("copy"), none, |_| {})).contains("was not chosen"));
    wb.choose([folder.clone()]);
    assert!(err(wb.start_import(request("no/slash"), none, |_| {})).contains("no/slash"));

    let (info, events) = run_job(|sink, end| wb.start_import(request("copy"), sink, end));
    assert_eq!(info.state, JobState::Finished, "{:?}", info.error);
    let report = info.report.unwrap();
    assert_eq!(report["added"], 9);
    assert_eq!(report["cancelled"], false);
    let done = events
        .iter()
        .filter(|e| matches!(e, Event::ImportImageDone { ok: true, .. }))
        .count();
    assert_eq!(done, 9, "one event per image, for the window's progress");
    assert_eq!(wb.items("copy", &all_items(), 0, 100).unwrap().total, 9);

    // Export: into a folder the user chose, as WebDataset shards.
    let out = tmp.path().join("shards");
    std::fs::create_dir_all(&out).unwrap();
    let export = |split: Option<&str>| ExportRequest {
        dataset: "copy".into(),
        out: out.clone(),
        split: split.map(str::to_string),
    };
    assert!(err(wb.start_export(export(None), none, |_| {})).contains("was not chosen"));
    wb.choose([out.clone()]);
    let (info, events) = run_job(|sink, end| wb.start_export(export(None), sink, end));
    assert_eq!(info.state, JobState::Finished, "{:?}", info.error);
    assert_eq!(info.report.unwrap()["items"], 9);
    assert!(out.join("00000.tar").is_file());
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::ExportFileWritten { items: 9, .. })));
    // A second export into the same folder is refused by the engine, and says why.
    let (again, _) = run_job(|sink, end| wb.start_export(export(None), sink, end));
    assert_eq!(again.state, JobState::Failed);
    assert!(again.error.unwrap().contains("shards"));

    // Videos: the Whisper model must be installed first; then a chosen video goes in.
    let video = assets().join("composed/talk.mp4");
    let ingest = |paths: Vec<PathBuf>| IngestRequest {
        dataset: "talks".into(),
        paths,
    };
    assert!(err(wb.start_ingest(ingest(vec![]), none, |_| {})).contains("no videos"));
    assert!(err(wb.start_ingest(ingest(vec![video.clone()]), none, |_| {})).contains("not chosen"));
    wb.choose([video.clone()]);
    let no_model = err(wb.start_ingest(ingest(vec![video.clone()]), none, |_| {}));
    assert!(no_model.to_lowercase().contains("model"), "{no_model}");
    let store = Store::open(&data).unwrap();
    tessera::asr::install_from_file(
        "tiny.en",
        &assets().join("whisper/ggml-tiny.en.bin"),
        &store.whisper_models_dir(),
    )
    .unwrap();
    let (info, events) =
        run_job(|sink, end| wb.start_ingest(ingest(vec![video.clone()]), sink, end));
    assert_eq!(info.state, JobState::Finished, "{:?}", info.error);
    let report = info.report.unwrap();
    assert_eq!(report["videos"].as_array().unwrap().len(), 1);
    assert_eq!(report["videos"][0]["outcome"], "ingested", "{report}");
    assert!(events.iter().any(
        |e| matches!(e, Event::StageStarted { stage, .. } if stage.as_str() == "transcribed")
    ));
    let items = wb.items("talks", &all_items(), 0, 100).unwrap();
    assert!(items.total >= 3);
    assert!(items.items.iter().any(|i| !i.caption.is_empty()));
}

#[test]
fn import_options_duplicates_and_ablation_tables() {
    let (tmp, data) = store_with_shapes();
    let wb = Workbench::open(&data).unwrap();
    let none = |_| -> Arc<dyn EventSink> { Arc::new(tessera::events::NullSink) };
    // A table with its own column names; one row names a missing image.
    let folder = tmp.path().join("shapes");
    let table = tmp.path().join("pairs.csv");
    std::fs::write(
        &table,
        format!(
            "file,text\n{0}/00.png,a red square\n{0}/00.png,the same red square\n\
             {0}/11.png,a green circle\n{0}/missing.png,nothing\n",
            folder.display()
        ),
    )
    .unwrap();
    let csv = |dataset: &str, strict: bool, columns: bool| ImportRequest {
        dataset: dataset.into(),
        format: ImportFormat::Csv,
        path: table.clone(),
        strict,
        image_column: columns.then(|| "file".into()),
        caption_column: columns.then(|| "text".into()),
        images_dir: None,
        annotations: None,
    };
    wb.choose([table.clone()]);
    let (info, events) =
        run_job(|sink, end| wb.start_import(csv("pairs", false, false), sink, end));
    assert_eq!(info.report.unwrap()["added"], 0, "{:?}", info.error);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::ImportProblem { message }
            if message.contains("no column \"image\""))),
        "the default columns image and caption are not in this table"
    );
    let (info, events) = run_job(|sink, end| wb.start_import(csv("pairs", false, true), sink, end));
    assert_eq!(info.state, JobState::Finished, "{:?}", info.error);
    assert_eq!(info.report.unwrap()["added"], 3);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::ImportProblem { message } if message.contains("missing.png"))));
    // Strict: the first problem aborts the import and nothing is written.
    let (info, _) = run_job(|sink, end| wb.start_import(csv("strict", true, true), sink, end));
    let report = info.report.unwrap();
    assert_eq!(
        (report["aborted"].as_bool(), report["added"].as_u64()),
        (Some(true), Some(0))
    );
    assert!(
        report["problems"][0].to_string().contains("missing.png"),
        "{report}"
    );
    assert!(wb.datasets().unwrap().iter().all(|d| d.name != "strict"));
    // Every path of the request must have been chosen, the COCO images folder included.
    let coco = ImportRequest {
        format: ImportFormat::Coco,
        images_dir: Some(folder.clone()),
        ..csv("coco", false, false)
    };
    assert!(err(wb.start_import(coco, none, |_| {})).contains("was not chosen"));
    let blank = ImportRequest {
        image_column: Some("  ".into()),
        ..csv("pairs", false, true)
    };
    assert!(err(wb.start_import(blank, none, |_| {})).contains("column name"));

    // Duplicates: the red square twice is one exact group; dropping keeps its first item.
    let dups = wb.duplicates("pairs", 4, false).unwrap();
    assert_eq!((dups.items, dups.duplicates, dups.dropped), (3, 1, 0));
    assert_eq!(dups.groups_total, 1);
    assert_eq!(dups.groups[0].kind, "exact");
    assert_eq!(dups.groups[0].items.len(), 2);
    // One shape in three colours: alike in a luminance-gradient hash, but no exact copies.
    let shapes = wb.duplicates("shapes", 4, false).unwrap();
    assert!(shapes.groups.iter().all(|g| g.kind == "near"));
    assert!(err(wb.duplicates("pairs", 65, false)).contains("65"));
    assert!(err(wb.duplicates("nope", 4, false)).contains("nope"));
    let dropped = wb.duplicates("pairs", 4, true).unwrap();
    assert_eq!(dropped.dropped, 1);
    let left = wb.items("pairs", &all_items(), 0, 10).unwrap();
    assert_eq!(left.total, 2);
    assert!(left.items.iter().any(|i| i.id == dups.groups[0].keep));

    // Ablation tables written by `tessera ablate` are listed with their rows.
    assert!(wb.ablations().is_empty());
    let mut t = tessera::eval::table::Table::new(vec!["accuracy".into()]);
    t.push("scratch", &[vec![0.4], vec![0.5]]);
    t.push("mlm+mim", &[vec![0.8], vec![0.9]]);
    let dir = tessera::eval::ablate::ablations_dir(&data);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("evqa.json"), serde_json::to_string(&t).unwrap()).unwrap();
    let listed = wb.ablations();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "evqa");
    assert_eq!(listed[0].table.as_ref().unwrap().rows[1].variant, "mlm+mim");
}

/// Serves one HTTP response of `body` to whoever connects first, `pause` between its MiBs.
fn serve_once(body: Vec<u8>, pause: Duration) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 2 {
            line.clear();
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes()).unwrap();
        for chunk in body.chunks(1 << 20) {
            if conn.write_all(chunk).is_err() {
                return;
            }
            std::thread::sleep(pause);
        }
    });
    format!("http://{addr}")
}

#[test]
fn whisper_models_are_verified_and_installed_from_a_chosen_file_or_the_catalogue() {
    let (tmp, data) = store_with_shapes();
    let wb = Workbench::open(&data).unwrap();
    let none = |_| -> Arc<dyn EventSink> { Arc::new(tessera::events::NullSink) };
    let info = wb.system_info().unwrap();
    assert!(info.whisper_models.is_empty());
    assert!(info
        .whisper_catalog
        .iter()
        .any(|m| m.name == "tiny.en" && !m.installed));
    assert!(err(wb.verify_whisper("ggml-tiny.en.bin")).contains("no Whisper model"));
    let install = |name: &str, from: Option<PathBuf>| WhisperInstallRequest {
        name: name.into(),
        from,
    };
    assert!(err(wb.start_whisper_install(install("huge", None), none, |_| {})).contains("huge"));

    // From a file the user chose: verified, then copied in under its name.
    let file = assets().join("whisper/ggml-tiny.en.bin");
    let req = || install("tiny.en", Some(file.clone()));
    assert!(err(wb.start_whisper_install(req(), none, |_| {})).contains("not chosen"));
    wb.choose([file.clone()]);
    let (job, _) = run_job(|sink, end| wb.start_whisper_install(req(), sink, end));
    assert_eq!(job.state, JobState::Finished, "{:?}", job.error);
    let info = wb.system_info().unwrap();
    assert_eq!(info.whisper_models.len(), 1);
    assert_eq!(info.whisper_models[0].file, "ggml-tiny.en.bin");
    assert!(info
        .whisper_catalog
        .iter()
        .any(|m| m.name == "tiny.en" && m.installed));
    let verified = wb.verify_whisper("ggml-tiny.en.bin").unwrap();
    assert_eq!(verified.size_name, "tiny");
    assert!(!verified.multilingual);
    assert!(err(wb.verify_whisper("../ggml-tiny.en.bin")).contains("no Whisper model"));

    // A file that is not a model is refused before anything is installed.
    let junk = tmp.path().join("junk.bin");
    std::fs::write(&junk, b"not a model").unwrap();
    wb.choose([junk.clone()]);
    let (job, _) = run_job(|sink, end| {
        wb.start_whisper_install(install("junk", Some(junk.clone())), sink, end)
    });
    assert_eq!(job.state, JobState::Failed);
    assert!(job.error.unwrap().contains("junk.bin"));

    // From the catalogue: progress streams; bytes that miss the published checksum are
    // discarded and nothing is left behind.
    let url = serve_once(vec![7u8; 3 << 20], Duration::ZERO);
    std::env::set_var("TESSERA_WHISPER_MODELS_URL", &url);
    let (job, events) =
        run_job(|sink, end| wb.start_whisper_install(install("base.en", None), sink, end));
    assert_eq!(job.state, JobState::Failed);
    assert!(job.error.unwrap().contains("checksum"));
    let progress: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Download { name, done, total } if name == "base.en" => {
                assert_eq!(*total, 3 << 20);
                Some(*done)
            }
            _ => None,
        })
        .collect();
    // One event per MiB crossed, the last at the total.
    assert_eq!(progress.len(), 3, "{progress:?}");
    assert!(progress.windows(2).all(|w| w[0] >> 20 < w[1] >> 20));
    assert_eq!(progress.last(), Some(&(3 << 20)));
    let models = Store::open(&data).unwrap().whisper_models_dir();
    let kept = || -> Vec<_> {
        std::fs::read_dir(&models)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect()
    };
    assert_eq!(kept(), ["ggml-tiny.en.bin"], "no partial download kept");

    // Cancelled half-way: the job ends with the reason, and again nothing is left behind.
    let url = serve_once(vec![7u8; 8 << 20], Duration::from_millis(300));
    std::env::set_var("TESSERA_WHISPER_MODELS_URL", &url);
    let (tx, rx) = mpsc::channel();
    let id = wb
        .start_whisper_install(install("base.en", None), none, move |i| tx.send(i).unwrap())
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    wb.cancel_job(id).unwrap();
    let job = wait(&rx);
    assert_eq!(job.state, JobState::Failed);
    assert!(job.error.unwrap().contains("cancelled"));
    assert_eq!(kept(), ["ggml-tiny.en.bin"], "no partial download kept");
}
