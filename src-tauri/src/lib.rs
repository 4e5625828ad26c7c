//! Tessera's window: Tauri commands over [`workbench::Workbench`], the engine's events
//! forwarded to the page as `engine` events, and the `media:` protocol serving the store's
//! images. No logic of its own lives here: it wires, the engine works.

pub mod workbench;

use std::path::PathBuf;
use std::sync::Arc;

use tauri::{AppHandle, Emitter, Manager, State};
use tessera::events::{Event, EventSink};
use tessera::index::Hit;
use tessera::model::RunConfig;
use tessera::store::{DatasetStats, DatasetSummary, ItemFilter, ItemRow, RunSummary, SearchHit};
use tessera::train::DeletedRun;
use workbench::{
    AskResult, CommandError, DuplicatesView, ExportRequest, FinetuneRequest, ImageRef,
    ImportRequest, IngestRequest, ItemsPage, JobInfo, Result, RunCheckpoints, RunDetail,
    SystemInfo, TrainRequest, WhisperInstallRequest, Workbench,
};

type Wb<'a> = State<'a, Arc<Workbench>>;

/// Runs `f` on a blocking thread: the store and the model must never stall the window.
async fn off_ui<T: Send + 'static>(
    wb: &Arc<Workbench>,
    f: impl FnOnce(&Workbench) -> Result<T> + Send + 'static,
) -> Result<T> {
    let wb = wb.clone();
    tauri::async_runtime::spawn_blocking(move || f(&wb))
        .await
        .map_err(|e| CommandError::Invalid(format!("the command failed inside: {e}")))?
}

#[tauri::command]
async fn system_info(wb: Wb<'_>) -> Result<SystemInfo> {
    off_ui(&wb, |w| w.system_info()).await
}

#[tauri::command]
async fn config_preset(wb: Wb<'_>, name: String) -> Result<RunConfig> {
    off_ui(&wb, move |w| w.config_preset(&name)).await
}

#[tauri::command]
async fn datasets(wb: Wb<'_>) -> Result<Vec<DatasetSummary>> {
    off_ui(&wb, |w| w.datasets()).await
}

#[tauri::command]
async fn dataset_stats(wb: Wb<'_>, dataset: String) -> Result<DatasetStats> {
    off_ui(&wb, move |w| w.dataset_stats(&dataset)).await
}

#[tauri::command]
async fn items(
    wb: Wb<'_>,
    dataset: String,
    filter: Option<ItemFilter>,
    offset: usize,
    limit: usize,
) -> Result<ItemsPage> {
    off_ui(&wb, move |w| {
        w.items(&dataset, &filter.unwrap_or_default(), offset, limit)
    })
    .await
}

#[tauri::command]
async fn item(wb: Wb<'_>, dataset: String, id: i64) -> Result<ItemRow> {
    off_ui(&wb, move |w| w.item(&dataset, id)).await
}

#[tauri::command]
async fn search_captions(
    wb: Wb<'_>,
    dataset: String,
    query: String,
    limit: usize,
) -> Result<Vec<SearchHit>> {
    off_ui(&wb, move |w| w.search_captions(&dataset, &query, limit)).await
}

#[tauri::command]
async fn edit_caption(wb: Wb<'_>, dataset: String, id: i64, caption: String) -> Result<()> {
    off_ui(&wb, move |w| w.edit_caption(&dataset, id, &caption)).await
}

#[tauri::command]
async fn delete_item(wb: Wb<'_>, dataset: String, id: i64) -> Result<()> {
    off_ui(&wb, move |w| w.delete_item(&dataset, id)).await
}

#[tauri::command]
async fn duplicates(wb: Wb<'_>, dataset: String, near: u32, drop: bool) -> Result<DuplicatesView> {
    off_ui(&wb, move |w| w.duplicates(&dataset, near, drop)).await
}

#[tauri::command]
async fn verify_whisper(wb: Wb<'_>, file: String) -> Result<tessera::asr::ModelInfo> {
    off_ui(&wb, move |w| w.verify_whisper(&file)).await
}

#[tauri::command]
async fn ablations(wb: Wb<'_>) -> Result<Vec<tessera::eval::ablate::StoredAblation>> {
    off_ui(&wb, |w| Ok(w.ablations())).await
}

#[tauri::command]
async fn runs(wb: Wb<'_>) -> Result<Vec<RunSummary>> {
    off_ui(&wb, |w| w.runs()).await
}

#[tauri::command]
async fn run_detail(wb: Wb<'_>, run: String) -> Result<RunDetail> {
    off_ui(&wb, move |w| w.run_detail(&run)).await
}

#[tauri::command]
async fn checkpoints(wb: Wb<'_>) -> Result<Vec<RunCheckpoints>> {
    off_ui(&wb, |w| w.checkpoints()).await
}

#[tauri::command]
async fn delete_run(wb: Wb<'_>, run: String) -> Result<DeletedRun> {
    off_ui(&wb, move |w| w.delete_run(&run)).await
}

#[tauri::command]
async fn search_text(
    wb: Wb<'_>,
    run: String,
    dataset: Option<String>,
    text: String,
    k: usize,
    rerank: bool,
) -> Result<Vec<Hit>> {
    off_ui(&wb, move |w| {
        w.search_text(&run, dataset.as_deref(), &text, k, rerank)
    })
    .await
}

#[tauri::command]
async fn search_image(
    wb: Wb<'_>,
    run: String,
    dataset: Option<String>,
    image: ImageRef,
    k: usize,
    rerank: bool,
) -> Result<Vec<Hit>> {
    off_ui(&wb, move |w| {
        w.search_image(&run, dataset.as_deref(), &image, k, rerank)
    })
    .await
}

#[tauri::command]
async fn ask(
    wb: Wb<'_>,
    run: String,
    image: ImageRef,
    question: String,
    top: usize,
) -> Result<AskResult> {
    off_ui(&wb, move |w| w.ask(&run, &image, &question, top)).await
}

/// The image dialog, opened by the engine side so the page never names a path itself; the
/// chosen file becomes readable by `search_image` and `ask`.
#[tauri::command]
async fn pick_image(app: AppHandle, wb: Wb<'_>) -> Result<Option<PathBuf>> {
    use tauri_plugin_dialog::DialogExt;
    let picked = tauri::async_runtime::spawn_blocking(move || {
        app.dialog()
            .file()
            .add_filter("Images", &["jpg", "jpeg", "png", "webp", "svg"])
            .blocking_pick_file()
    })
    .await
    .map_err(|e| CommandError::Invalid(format!("the file dialog failed: {e}")))?;
    let Some(path) = picked.and_then(|p| p.into_path().ok()) else {
        return Ok(None);
    };
    wb.choose([path.clone()]);
    Ok(Some(path))
}

/// What `pick_paths` asks the dialog for.
#[derive(serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum PickKind {
    Folder,
    Files,
}

/// The file dialog for the Library (a folder, or several files); the chosen paths become
/// readable by `start_import` and `start_ingest`.
#[tauri::command]
async fn pick_paths(app: AppHandle, wb: Wb<'_>, kind: PickKind) -> Result<Vec<PathBuf>> {
    use tauri_plugin_dialog::DialogExt;
    let picked = tauri::async_runtime::spawn_blocking(move || {
        let dialog = app.dialog().file();
        match kind {
            PickKind::Folder => dialog.blocking_pick_folder().into_iter().collect(),
            PickKind::Files => dialog.blocking_pick_files().unwrap_or_default(),
        }
    })
    .await
    .map_err(|e| CommandError::Invalid(format!("the file dialog failed: {e}")))?;
    let paths: Vec<PathBuf> = picked
        .into_iter()
        .filter_map(|p: tauri_plugin_dialog::FilePath| p.into_path().ok())
        .collect();
    wb.choose(paths.iter().cloned());
    Ok(paths)
}

/// One engine event of a job, as the page receives it.
#[derive(Clone, serde::Serialize)]
struct JobEvent {
    job: u64,
    #[serde(flatten)]
    event: Event,
}

struct WindowSink {
    app: AppHandle,
    job: u64,
}

impl EventSink for WindowSink {
    fn emit(&self, event: Event) {
        // A closed window has no one to tell; the job goes on and the store records it.
        let _ = self.app.emit(
            "engine",
            JobEvent {
                job: self.job,
                event,
            },
        );
    }
}

fn job_sink(app: &AppHandle) -> impl FnOnce(u64) -> Arc<dyn EventSink> {
    let app = app.clone();
    move |job| Arc::new(WindowSink { app, job })
}

fn on_job_end(app: &AppHandle) -> impl FnOnce(JobInfo) + Send + 'static {
    let app = app.clone();
    move |info| {
        let _ = app.emit("job-ended", info);
    }
}

#[tauri::command]
async fn start_pretrain(app: AppHandle, wb: Wb<'_>, request: TrainRequest) -> Result<u64> {
    wb.start_pretrain(request, job_sink(&app), on_job_end(&app))
}

#[tauri::command]
async fn start_finetune(app: AppHandle, wb: Wb<'_>, request: FinetuneRequest) -> Result<u64> {
    wb.start_finetune(request, job_sink(&app), on_job_end(&app))
}

#[tauri::command]
async fn start_import(app: AppHandle, wb: Wb<'_>, request: ImportRequest) -> Result<u64> {
    wb.start_import(request, job_sink(&app), on_job_end(&app))
}

#[tauri::command]
async fn start_ingest(app: AppHandle, wb: Wb<'_>, request: IngestRequest) -> Result<u64> {
    wb.start_ingest(request, job_sink(&app), on_job_end(&app))
}

#[tauri::command]
async fn start_export(app: AppHandle, wb: Wb<'_>, request: ExportRequest) -> Result<u64> {
    wb.start_export(request, job_sink(&app), on_job_end(&app))
}

#[tauri::command]
async fn start_whisper_install(
    app: AppHandle,
    wb: Wb<'_>,
    request: WhisperInstallRequest,
) -> Result<u64> {
    wb.start_whisper_install(request, job_sink(&app), on_job_end(&app))
}

#[tauri::command]
async fn resume_run(app: AppHandle, wb: Wb<'_>, run: String) -> Result<u64> {
    wb.resume(&run, job_sink(&app), on_job_end(&app))
}

#[tauri::command]
async fn cancel_job(wb: Wb<'_>, job: u64) -> Result<()> {
    wb.cancel_job(job)
}

#[tauri::command]
async fn jobs(wb: Wb<'_>) -> Result<Vec<JobInfo>> {
    Ok(wb.jobs())
}

/// `--data-dir DIR`, else `TESSERA_HOME`, else the platform's data directory (as the CLI).
fn data_dir() -> std::result::Result<PathBuf, String> {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--data-dir" {
            return args
                .next()
                .map(PathBuf::from)
                .ok_or_else(|| "--data-dir needs a directory".into());
        }
    }
    std::env::var_os("TESSERA_HOME")
        .map(PathBuf::from)
        .or_else(tessera::store::default_data_dir)
        .ok_or_else(|| "no home directory: pass --data-dir or set TESSERA_HOME".into())
}

fn media_response(wb: &Workbench, path: &str) -> tauri::http::Response<Vec<u8>> {
    let (status, mime, body) = match wb.media(path) {
        Ok((mime, bytes)) => (200, mime, bytes),
        Err(e) => (404, "text/plain".to_string(), e.to_string().into_bytes()),
    };
    tauri::http::Response::builder()
        .status(status)
        .header("Content-Type", mime)
        // Content-addressed: a name never changes what it serves.
        .header("Cache-Control", "public, max-age=31536000, immutable")
        .header("Access-Control-Allow-Origin", "*")
        .body(body)
        .expect("static headers are valid")
}

/// Opens the window on the data directory and serves it until it closes.
pub fn run() -> std::result::Result<(), String> {
    let dir = data_dir()?;
    tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .setup(move |app| {
            let wb = Workbench::open(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            app.manage(Arc::new(wb));
            Ok(())
        })
        .register_asynchronous_uri_scheme_protocol("media", |ctx, request, responder| {
            let app = ctx.app_handle().clone();
            let path = request.uri().path().to_string();
            std::thread::spawn(move || {
                let wb = app.state::<Arc<Workbench>>();
                responder.respond(media_response(&wb, &path));
            });
        })
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::DragDrop(tauri::DragDropEvent::Drop { paths, .. }) = event {
                window
                    .state::<Arc<Workbench>>()
                    .choose(paths.iter().cloned());
            }
        })
        .invoke_handler(tauri::generate_handler![
            system_info,
            config_preset,
            datasets,
            dataset_stats,
            items,
            item,
            search_captions,
            edit_caption,
            delete_item,
            runs,
            run_detail,
            checkpoints,
            delete_run,
            search_text,
            search_image,
            ask,
            pick_image,
            pick_paths,
            start_import,
            start_ingest,
            start_export,
            start_pretrain,
            start_finetune,
            resume_run,
            cancel_job,
            jobs,
            verify_whisper,
            start_whisper_install,
            ablations,
            duplicates,
        ])
        .run(tauri::generate_context!())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The quoted or bare names between `open` and the next `close` of `text`.
    fn names(text: &str, open: &str, close: &str) -> BTreeSet<String> {
        let start = text.find(open).expect("the list") + open.len();
        let end = start + text[start..].find(close).expect("its end");
        text[start..end]
            .split(',')
            .map(|n| n.trim().trim_matches('"').to_string())
            .filter(|n| !n.is_empty())
            .collect()
    }

    /// The commands the app declares (build.rs), the ones it registers, and the ones the
    /// window is granted are the same set: nothing callable is ungranted, nothing granted
    /// is missing.
    #[test]
    fn the_window_is_granted_exactly_the_registered_commands() {
        let declared = names(include_str!("../build.rs"), "= &[", "];");
        let registered = names(include_str!("lib.rs"), "generate_handler![", "]");
        let caps: serde_json::Value =
            serde_json::from_str(include_str!("../capabilities/main.json")).unwrap();
        let granted: BTreeSet<String> = caps["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p.as_str()?.strip_prefix("allow-"))
            .map(|p| p.replace('-', "_"))
            .collect();
        assert_eq!(declared.len(), 30);
        assert_eq!(declared, registered);
        assert_eq!(declared, granted);
        let core: Vec<&str> = caps["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p.as_str())
            .filter(|p| p.contains(':'))
            .collect();
        assert_eq!(
            core,
            ["core:event:allow-listen", "core:event:allow-unlisten"]
        );
    }
}
