//! The window's commands as plain Rust over the engine, so they are tested without a window:
//! every argument is checked here and every failure is a [`CommandError`] the page shows.
//! `lib.rs` only wires these methods to Tauri commands and events.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use tessera::asr::{AsrError, ModelInfo, OFFICIAL_MODELS};
use tessera::curate::{dedupe, CurateError, DupGroup};
use tessera::eval::ablate::{stored_ablations, StoredAblation};
use tessera::events::EventSink;
use tessera::index::{Hit, Index};
use tessera::infer::{Answer, Loaded};
use tessera::ingest::export::DEFAULT_SHARD_SIZE;
use tessera::ingest::{
    export_webdataset, import, ingest_videos, ExportError, ImportError, ImportFormat,
    ImportOptions, IngestError, IngestOptions,
};
use tessera::model::{device_name, select_device, DeviceChoice, ModelError, RunConfig};
use tessera::store::{
    DatasetStats, DatasetSummary, EvaluationRow, ItemFilter, ItemRow, RunStatus, RunSummary,
    SearchHit, SearchOptions, Store, StoreError,
};
use tessera::train::{
    Cancel, DeletedRun, FinetuneOptions, FinetuneTask, Parent, PretrainOptions, TrainError,
};

/// Most rows one call returns: a page of the grid, hits of a search.
pub const MAX_PAGE: usize = 500;
/// Longest query, caption or question the window sends (characters).
pub const MAX_TEXT: usize = 2000;
/// Most answers `ask` returns.
pub const MAX_ANSWERS: usize = 20;
/// Most training steps one start asks for.
pub const MAX_STEPS: u64 = 10_000_000;
/// Side of the attention picture `ask` returns.
const ATTENTION_SIDE: u32 = 256;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// An argument the window sent that cannot be right.
    #[error("{0}")]
    Invalid(String),
    /// The engine's own error, worded by it (boxed: its errors are large, and every command
    /// returns this type).
    #[error(transparent)]
    Engine(Box<dyn std::error::Error + Send + Sync>),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

macro_rules! engine_errors {
    ($($error:ty),*) => {$(
        impl From<$error> for CommandError {
            fn from(e: $error) -> Self {
                CommandError::Engine(Box::new(e))
            }
        }
    )*};
}
engine_errors!(
    StoreError,
    TrainError,
    ModelError,
    ImportError,
    IngestError,
    ExportError,
    AsrError,
    CurateError
);

/// The page gets the message: it shows errors, it does not branch on them.
impl Serialize for CommandError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

pub type Result<T> = std::result::Result<T, CommandError>;

fn invalid<T>(why: impl Into<String>) -> Result<T> {
    Err(CommandError::Invalid(why.into()))
}

fn check_count(what: &str, n: usize, max: usize) -> Result<()> {
    if n == 0 || n > max {
        return invalid(format!("{what} must be between 1 and {max}, got {n}"));
    }
    Ok(())
}

fn check_text<'a>(what: &str, text: &'a str) -> Result<&'a str> {
    let t = text.trim();
    if t.is_empty() {
        return invalid(format!("the {what} is empty"));
    }
    if t.chars().count() > MAX_TEXT {
        return invalid(format!("the {what} is longer than {MAX_TEXT} characters"));
    }
    Ok(t)
}

/// An image the window points at: one in the store by hash, or a file the user chose.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ImageRef {
    Stored { hash: String },
    File { path: PathBuf },
}

#[derive(Debug, Clone, Serialize)]
pub struct ItemsPage {
    pub total: usize,
    pub offset: usize,
    pub items: Vec<ItemRow>,
}

/// One metric of a run over its steps, as a chart takes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Curve {
    pub split: String,
    pub name: String,
    pub steps: Vec<u64>,
    pub values: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunDetail {
    pub run: RunSummary,
    pub config: serde_json::Value,
    pub curves: Vec<Curve>,
    pub evaluations: Vec<EvaluationRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AskResult {
    pub answers: Vec<Answer>,
    /// The image with `[CLS]`'s attention over it, as a `data:image/png;base64,…` URL.
    pub attention: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SystemInfo {
    pub data_dir: PathBuf,
    /// The device `auto` picks: `metal`, `cuda` or `cpu`.
    pub device: String,
    pub whisper_models: Vec<WhisperModel>,
    /// The official models `start_whisper_install` can download.
    pub whisper_catalog: Vec<CatalogModel>,
    pub presets: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WhisperModel {
    /// The file's name in the models folder, as `verify_whisper` takes it.
    pub file: String,
    pub path: PathBuf,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CatalogModel {
    pub name: &'static str,
    pub size_mib: u32,
    pub installed: bool,
}

/// What the Models screen starts: an official model by name, downloaded and checked against
/// its published checksum, or a model file the user chose, installed under `name`.
#[derive(Debug, Clone, Deserialize)]
pub struct WhisperInstallRequest {
    pub name: String,
    pub from: Option<PathBuf>,
}

/// Duplicate groups of a data set as the browser shows them: the first groups in full, how
/// many there are in all.
#[derive(Debug, Clone, Serialize)]
pub struct DuplicatesView {
    pub near: u32,
    pub items: usize,
    /// Items beyond the first of each group.
    pub duplicates: usize,
    pub dropped: usize,
    pub groups_total: usize,
    pub groups: Vec<DupGroup>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunCheckpoints {
    pub run: String,
    pub kind: String,
    pub status: String,
    /// The run's `[model]` settings.
    pub model: serde_json::Value,
    pub checkpoints: Vec<CheckpointInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckpointInfo {
    pub step: u64,
    pub bytes: u64,
    pub created_at: String,
}

/// What the Train screen starts: a pre-training run of a config the page edited.
#[derive(Debug, Clone, Deserialize)]
pub struct TrainRequest {
    pub dataset: String,
    pub config: RunConfig,
    pub run: Option<String>,
    pub device: DeviceChoice,
}

/// What the Train screen starts to fine-tune: from a run (its architecture kept, the page's
/// training settings used) or from scratch (the page's whole config).
#[derive(Debug, Clone, Deserialize)]
pub struct FinetuneRequest {
    pub dataset: String,
    pub task: FinetuneTask,
    /// `None`: from scratch.
    pub from: Option<String>,
    pub config: RunConfig,
    pub run: Option<String>,
    pub device: DeviceChoice,
}

/// What the Library starts: one folder, table, shard or annotation file into a data set,
/// with the import's options (each path among them chosen by the user too).
#[derive(Debug, Clone, Deserialize)]
pub struct ImportRequest {
    pub dataset: String,
    pub format: ImportFormat,
    pub path: PathBuf,
    /// Stop at the first problem and write nothing.
    #[serde(default)]
    pub strict: bool,
    /// Table columns (JSONL fields) of the image path and the caption.
    pub image_column: Option<String>,
    pub caption_column: Option<String>,
    /// COCO: the folder of the images.
    pub images_dir: Option<PathBuf>,
    /// VQA v2: the annotations file beside the questions file.
    pub annotations: Option<PathBuf>,
}

/// What the browser starts: a data set (or one split of it) as WebDataset shards in a folder
/// the user chose.
#[derive(Debug, Clone, Deserialize)]
pub struct ExportRequest {
    pub dataset: String,
    pub out: PathBuf,
    pub split: Option<String>,
}

/// What the Library starts: videos (files, or folders searched for them) into a data set.
#[derive(Debug, Clone, Deserialize)]
pub struct IngestRequest {
    pub dataset: String,
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Finished,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobInfo {
    pub id: u64,
    pub what: String,
    pub state: JobState,
    /// The engine's report when it ended (a run's, an import's, an ingest's), or why it failed.
    pub report: Option<serde_json::Value>,
    pub error: Option<String>,
}

struct Job {
    info: JobInfo,
    cancel: Cancel,
}

pub struct Workbench {
    data_dir: PathBuf,
    store: Mutex<Store>,
    /// Runs loaded for search and ask, by name; reloaded when a newer checkpoint appears.
    loaded: Mutex<HashMap<String, Arc<Loaded>>>,
    /// Files the user picked or dropped: the only paths outside the store a command reads.
    chosen: Mutex<HashSet<PathBuf>>,
    jobs: Arc<Mutex<HashMap<u64, Job>>>,
    next_job: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data behind: keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Workbench {
    /// Opens (creating if needed) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self> {
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            store: Mutex::new(Store::open(data_dir)?),
            loaded: Mutex::default(),
            chosen: Mutex::default(),
            jobs: Arc::default(),
            next_job: AtomicU64::new(1),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    pub fn system_info(&self) -> Result<SystemInfo> {
        let device = select_device(DeviceChoice::Auto)?;
        let models_dir = self.store().whisper_models_dir();
        let whisper_models: Vec<WhisperModel> = tessera::asr::installed_models(&models_dir)
            .into_iter()
            .map(|path| WhisperModel {
                file: file_name(&path),
                size_bytes: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
                path,
            })
            .collect();
        let whisper_catalog = OFFICIAL_MODELS
            .iter()
            .map(|m| CatalogModel {
                name: m.name,
                size_mib: m.size_mib,
                installed: whisper_models.iter().any(|w| w.file == m.file_name()),
            })
            .collect();
        Ok(SystemInfo {
            data_dir: self.data_dir.clone(),
            device: device_name(&device).into(),
            whisper_models,
            whisper_catalog,
            presets: tessera::model::config::PRESETS
                .iter()
                .map(|(n, _)| n.to_string())
                .collect(),
        })
    }

    /// Loads an installed Whisper model (by its file name) to prove it works, and says which
    /// official model's checksum it matches.
    pub fn verify_whisper(&self, file: &str) -> Result<ModelInfo> {
        let dir = self.store().whisper_models_dir();
        let path = tessera::asr::installed_models(&dir)
            .into_iter()
            .find(|p| file_name(p) == file)
            .ok_or_else(|| {
                CommandError::Invalid(format!("no Whisper model {file:?} in {}", dir.display()))
            })?;
        Ok(tessera::asr::verify_model(&path)?)
    }

    /// Installs a Whisper model: an official one downloaded with progress (cancelling it
    /// keeps nothing), or a file the user chose.
    pub fn start_whisper_install(
        &self,
        req: WhisperInstallRequest,
        sink: impl FnOnce(u64) -> Arc<dyn EventSink>,
        on_end: impl FnOnce(JobInfo) + Send + 'static,
    ) -> Result<u64> {
        let from = req
            .from
            .as_deref()
            .map(|p| self.chosen_path(p))
            .transpose()?;
        if from.is_none() && !OFFICIAL_MODELS.iter().any(|m| m.name == req.name) {
            let known: Vec<&str> = OFFICIAL_MODELS.iter().map(|m| m.name).collect();
            return invalid(format!(
                "no official Whisper model {:?}; known: {}",
                req.name,
                known.join(", ")
            ));
        }
        let dir = self.store().whisper_models_dir();
        let what = format!("install Whisper {}", req.name);
        self.spawn_job(what, sink, on_end, move |_, cancel, sink| {
            let path = match from {
                Some(file) => tessera::asr::install_from_file(&req.name, &file, &dir)?,
                None => tessera::asr::install_official(&req.name, &dir, sink.as_ref(), cancel)?,
            };
            report(serde_json::json!({ "path": path }))
        })
    }

    pub fn config_preset(&self, name: &str) -> Result<RunConfig> {
        Ok(RunConfig::preset(name)?)
    }

    // ---- data sets ---------------------------------------------------------------------

    pub fn datasets(&self) -> Result<Vec<DatasetSummary>> {
        Ok(self.store().datasets()?)
    }

    pub fn dataset_stats(&self, dataset: &str) -> Result<DatasetStats> {
        Ok(self.store().dataset_stats(dataset)?)
    }

    pub fn items(
        &self,
        dataset: &str,
        filter: &ItemFilter,
        offset: usize,
        limit: usize,
    ) -> Result<ItemsPage> {
        check_count("a page", limit, MAX_PAGE)?;
        if let (Some(lo), Some(hi)) = (filter.min_words, filter.max_words) {
            if lo > hi {
                return invalid(format!(
                    "at least {lo} words and at most {hi}: no item can pass"
                ));
            }
        }
        let (total, items) = self
            .store()
            .items_page(dataset, filter, offset, Some(limit))?;
        Ok(ItemsPage {
            total,
            offset,
            items,
        })
    }

    pub fn item(&self, dataset: &str, id: i64) -> Result<ItemRow> {
        Ok(self.store().item(dataset, id)?)
    }

    pub fn search_captions(
        &self,
        dataset: &str,
        query: &str,
        limit: usize,
    ) -> Result<Vec<SearchHit>> {
        check_count("the number of hits", limit, MAX_PAGE)?;
        let query = check_text("search", query)?;
        let opts = SearchOptions {
            limit,
            ..SearchOptions::default()
        };
        Ok(self.store().search_items(dataset, query, &opts)?)
    }

    pub fn edit_caption(&self, dataset: &str, id: i64, caption: &str) -> Result<()> {
        if caption.chars().count() > MAX_TEXT {
            return invalid(format!("the caption is longer than {MAX_TEXT} characters"));
        }
        Ok(self.store().set_caption(dataset, id, caption.trim())?)
    }

    /// Exact and near duplicate groups (perceptual hashes at most `near` bits apart); with
    /// `drop`, every item but the first of each group is deleted.
    pub fn duplicates(&self, dataset: &str, near: u32, drop: bool) -> Result<DuplicatesView> {
        let mut report = dedupe(&self.store(), dataset, near, drop)?;
        let groups_total = report.groups.len();
        report.groups.truncate(MAX_PAGE);
        Ok(DuplicatesView {
            near: report.near,
            items: report.items,
            duplicates: report.duplicates,
            dropped: report.dropped,
            groups_total,
            groups: report.groups,
        })
    }

    pub fn delete_item(&self, dataset: &str, id: i64) -> Result<()> {
        self.store().delete_items(dataset, &[id])?;
        Ok(())
    }

    /// What the `media:` protocol serves for a request path: `/HASH` (the image as stored) or
    /// `/thumb/HASH` (its thumbnail; the image itself when it has none). Only blobs the
    /// catalog knows as images are served, so no request reaches another file.
    pub fn media(&self, path: &str) -> Result<(String, Vec<u8>)> {
        // `convertFileSrc` percent-encodes the slash of `thumb/HASH`.
        let path = path.trim_start_matches('/').replace("%2F", "/");
        let path = path.as_str();
        let (thumb, hash) = match path.split_once('/') {
            Some(("thumb", hash)) => (true, hash),
            None => (false, path),
            Some(_) => return invalid(format!("no media at {path:?}")),
        };
        if !is_blob_hash(hash) {
            return invalid(format!("no media at {path:?}"));
        }
        let store = self.store();
        let row = store
            .blob_row(hash)?
            .ok_or_else(|| CommandError::Invalid(format!("no image {hash} in the store")))?;
        let (hash, mime) = match (thumb, row.thumb_hash) {
            (true, Some(t)) => (t, "image/jpeg".to_string()),
            _ => (row.hash, row.mime),
        };
        Ok((mime, store.blobs().get(&hash)?))
    }

    // ---- runs --------------------------------------------------------------------------

    pub fn runs(&self) -> Result<Vec<RunSummary>> {
        Ok(self.store().runs()?)
    }

    pub fn run_detail(&self, run: &str) -> Result<RunDetail> {
        let store = self.store();
        let row = store.run(run)?;
        let summary = store.run_summary(run)?;
        // Metrics come ordered by step; group them into one curve per split and name.
        let mut curves: Vec<Curve> = Vec::new();
        for m in store.run_metrics(row.id, None)? {
            let split = m.split.as_str();
            let at = match curves
                .iter()
                .position(|c| c.split == split && c.name == m.name)
            {
                Some(i) => i,
                None => {
                    curves.push(Curve {
                        split: split.into(),
                        name: m.name.clone(),
                        steps: Vec::new(),
                        values: Vec::new(),
                    });
                    curves.len() - 1
                }
            };
            curves[at].steps.push(m.step);
            curves[at].values.push(m.value);
        }
        let config = serde_json::from_str(&row.config_json).unwrap_or(serde_json::Value::Null);
        Ok(RunDetail {
            run: summary,
            config,
            curves,
            evaluations: store.evaluations(row.id)?,
        })
    }

    /// The ablation tables `tessera ablate` wrote, for the Runs screen.
    pub fn ablations(&self) -> Vec<StoredAblation> {
        stored_ablations(&self.data_dir)
    }

    /// Every run with its checkpoints on disk, for the Models screen.
    pub fn checkpoints(&self) -> Result<Vec<RunCheckpoints>> {
        let store = self.store();
        let mut out = Vec::new();
        for r in store.runs()? {
            let row = store.run(&r.name)?;
            let stored: serde_json::Value =
                serde_json::from_str(&row.config_json).unwrap_or_default();
            let checkpoints = store
                .checkpoints(row.id)?
                .into_iter()
                .map(|c| CheckpointInfo {
                    step: c.step,
                    bytes: tessera::train::checkpoint::size_on_disk(
                        &tessera::train::run::checkpoint_path(&store, &c.path),
                    ),
                    created_at: c.created_at,
                })
                .collect();
            out.push(RunCheckpoints {
                run: r.name,
                kind: r.kind.as_str().into(),
                status: r.status.as_str().into(),
                model: stored["config"]["model"].clone(),
                checkpoints,
            });
        }
        Ok(out)
    }

    /// Deletes a run with its checkpoints and indexes. A run marked running (training here or
    /// in another process, or killed and not resumed) is refused: stop or resume it first.
    pub fn delete_run(&self, run: &str) -> Result<DeletedRun> {
        if self.store().run(run)?.status == RunStatus::Running {
            return invalid(format!(
                "run {run:?} is marked running: stop it (or resume and stop it) before deleting"
            ));
        }
        let deleted = tessera::train::delete_run(&self.store(), run)?;
        lock(&self.loaded).remove(run);
        Ok(deleted)
    }

    /// The run's latest checkpoint, loaded once and kept until a newer one is written.
    fn loaded(&self, run: &str) -> Result<Arc<Loaded>> {
        let latest = {
            let store = self.store();
            let row = store.run(run)?;
            store.resume_point(row.id)?.map(|p| p.checksum)
        };
        if let Some(l) = lock(&self.loaded).get(run) {
            if Some(&l.checksum) == latest.as_ref() {
                return Ok(l.clone());
            }
        }
        let fresh = Arc::new(Loaded::open(&self.store(), run, DeviceChoice::Auto)?);
        lock(&self.loaded).insert(run.to_string(), fresh.clone());
        Ok(fresh)
    }

    fn run_dataset(&self, run: &str, dataset: Option<&str>) -> Result<String> {
        if let Some(d) = dataset {
            return Ok(d.to_string());
        }
        self.store()
            .run_summary(run)?
            .dataset
            .ok_or_else(|| CommandError::Invalid(format!("run {run:?} has no data set; pick one")))
    }

    // ---- search and ask ----------------------------------------------------------------

    /// Remembers paths the user chose in a dialog or dropped on the window.
    pub fn choose(&self, paths: impl IntoIterator<Item = PathBuf>) {
        let mut chosen = lock(&self.chosen);
        for p in paths {
            chosen.insert(p.canonicalize().unwrap_or(p));
        }
    }

    /// `path` as the file system names it, if the user chose it in this window.
    fn chosen_path(&self, path: &Path) -> Result<PathBuf> {
        let real = path.canonicalize().map_err(|source| CommandError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if !lock(&self.chosen).contains(&real) {
            return invalid(format!(
                "{} was not chosen in this window: pick or drop it first",
                path.display()
            ));
        }
        Ok(real)
    }

    fn image_bytes(&self, image: &ImageRef) -> Result<Vec<u8>> {
        match image {
            ImageRef::Stored { hash } => {
                let store = self.store();
                if !is_blob_hash(hash) || !store.blobs().contains(hash) {
                    return invalid(format!("no image {hash:?} in the store"));
                }
                Ok(store.blobs().get(hash)?)
            }
            ImageRef::File { path } => {
                let real = self.chosen_path(path)?;
                std::fs::read(&real).map_err(|source| CommandError::Io { path: real, source })
            }
        }
    }

    fn patches(&self, loaded: &Loaded, image: &ImageRef, bytes: &[u8]) -> Result<Vec<f32>> {
        loaded.patches(bytes).map_err(|e| {
            let name = match image {
                ImageRef::Stored { hash } => hash.clone(),
                ImageRef::File { path } => path.display().to_string(),
            };
            CommandError::Invalid(format!("{name} is not a readable image: {e}"))
        })
    }

    pub fn search_text(
        &self,
        run: &str,
        dataset: Option<&str>,
        text: &str,
        k: usize,
        rerank: bool,
    ) -> Result<Vec<Hit>> {
        check_count("k", k, MAX_PAGE)?;
        let text = check_text("search text", text)?;
        let loaded = self.loaded(run)?;
        let dataset = self.run_dataset(run, dataset)?;
        // A connection of its own: building an index embeds the whole data set, and the grid
        // and the thumbnails must not wait behind it.
        let store = Store::open(&self.data_dir)?;
        let (index, _) = Index::open(&store, &loaded, &dataset)?;
        Ok(index.search_text(&store, &loaded, text, k, rerank)?)
    }

    pub fn search_image(
        &self,
        run: &str,
        dataset: Option<&str>,
        image: &ImageRef,
        k: usize,
        rerank: bool,
    ) -> Result<Vec<Hit>> {
        check_count("k", k, MAX_PAGE)?;
        let loaded = self.loaded(run)?;
        let dataset = self.run_dataset(run, dataset)?;
        let bytes = self.image_bytes(image)?;
        let pix = self.patches(&loaded, image, &bytes)?;
        // A connection of its own: building an index embeds the whole data set, and the grid
        // and the thumbnails must not wait behind it.
        let store = Store::open(&self.data_dir)?;
        let (index, _) = Index::open(&store, &loaded, &dataset)?;
        Ok(index.search_image(&loaded, &pix, k, rerank)?)
    }

    pub fn ask(
        &self,
        run: &str,
        image: &ImageRef,
        question: &str,
        top: usize,
    ) -> Result<AskResult> {
        check_count("the number of answers", top, MAX_ANSWERS)?;
        let question = check_text("question", question)?;
        let loaded = self.loaded(run)?;
        let bytes = self.image_bytes(image)?;
        let pix = self.patches(&loaded, image, &bytes)?;
        let answers = loaded.ask(question, &pix, top)?;
        let picture = loaded.attention_overlay(&bytes, question, &pix, ATTENTION_SIDE)?;
        let mut png = Vec::new();
        picture
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(|e| CommandError::Invalid(format!("encoding the attention picture: {e}")))?;
        use base64::Engine as _;
        Ok(AskResult {
            answers,
            attention: format!(
                "data:image/png;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(png)
            ),
        })
    }

    // ---- training jobs -----------------------------------------------------------------

    /// What every training start checks before a thread is spawned: the data set exists, the
    /// run name is valid, the step count is sane and the config is consistent.
    fn check_training(&self, dataset: &str, run: Option<&str>, config: &RunConfig) -> Result<()> {
        self.store().dataset_id(dataset)?;
        if let Some(run) = run {
            Store::check_run_name(run)?;
        }
        let steps = config.train.steps;
        if steps == 0 || steps > MAX_STEPS {
            return invalid(format!(
                "steps must be between 1 and {MAX_STEPS}, got {steps}"
            ));
        }
        Ok(config.validate()?)
    }

    /// Starts pre-training on its own thread (with its own store connection) and returns the
    /// job's id; progress goes to `sink`, the end to `on_end`.
    pub fn start_pretrain(
        &self,
        req: TrainRequest,
        sink: impl FnOnce(u64) -> Arc<dyn EventSink>,
        on_end: impl FnOnce(JobInfo) + Send + 'static,
    ) -> Result<u64> {
        self.check_training(&req.dataset, req.run.as_deref(), &req.config)?;
        let what = format!("pre-train on {}", req.dataset);
        let opts = PretrainOptions {
            dataset: req.dataset,
            config: req.config,
            run: req.run,
            init: tessera::train::InitFrom::Random,
            device: req.device,
        };
        self.spawn_job(what, sink, on_end, move |store, cancel, sink| {
            report(tessera::train::pretrain(store, &opts, sink, cancel)?)
        })
    }

    /// Starts fine-tuning for VQA or retrieval on its own thread; like [`Workbench::start_pretrain`].
    pub fn start_finetune(
        &self,
        req: FinetuneRequest,
        sink: impl FnOnce(u64) -> Arc<dyn EventSink>,
        on_end: impl FnOnce(JobInfo) + Send + 'static,
    ) -> Result<u64> {
        let config = match &req.from {
            Some(parent) => {
                let mut c = tessera::train::run::run_config(&self.store(), parent)?;
                c.train = req.config.train.clone();
                c
            }
            None => req.config.clone(),
        };
        self.check_training(&req.dataset, req.run.as_deref(), &config)?;
        if let FinetuneTask::Vqa { answers } = req.task {
            check_count("the number of answers", answers, 100_000)?;
        }
        let what = format!("fine-tune on {}", req.dataset);
        let opts = FinetuneOptions {
            dataset: req.dataset,
            config,
            task: req.task,
            from: req.from.map_or(Parent::Scratch, Parent::Run),
            run: req.run,
            device: req.device,
        };
        self.spawn_job(what, sink, on_end, move |store, cancel, sink| {
            report(tessera::train::finetune(store, &opts, sink, cancel)?)
        })
    }

    /// Continues a stopped run from its last checkpoint (on the device it started on, or the
    /// best one here).
    pub fn resume(
        &self,
        run: &str,
        sink: impl FnOnce(u64) -> Arc<dyn EventSink>,
        on_end: impl FnOnce(JobInfo) + Send + 'static,
    ) -> Result<u64> {
        self.store().run(run)?;
        let run = run.to_string();
        self.spawn_job(
            format!("resume {run}"),
            sink,
            on_end,
            move |store, cancel, sink| {
                report(tessera::train::resume(
                    store,
                    &run,
                    DeviceChoice::Auto,
                    sink,
                    cancel,
                )?)
            },
        )
    }

    fn spawn_job(
        &self,
        what: String,
        sink: impl FnOnce(u64) -> Arc<dyn EventSink>,
        on_end: impl FnOnce(JobInfo) + Send + 'static,
        work: impl FnOnce(&Store, &Cancel, Arc<dyn EventSink>) -> Result<serde_json::Value>
            + Send
            + 'static,
    ) -> Result<u64> {
        let id = self.next_job.fetch_add(1, Ordering::Relaxed);
        let sink = sink(id);
        let cancel = Cancel::new();
        let info = JobInfo {
            id,
            what,
            state: JobState::Running,
            report: None,
            error: None,
        };
        lock(&self.jobs).insert(
            id,
            Job {
                info,
                cancel: cancel.clone(),
            },
        );
        let jobs = self.jobs.clone();
        let dir = self.data_dir.clone();
        std::thread::Builder::new()
            .name(format!("job-{id}"))
            .spawn(move || {
                tessera::train::keep_freed_memory();
                let result = Store::open(&dir)
                    .map_err(CommandError::from)
                    .and_then(|store| work(&store, &cancel, sink));
                let info = {
                    let mut jobs = lock(&jobs);
                    let job = jobs.get_mut(&id).expect("jobs are never removed");
                    match result {
                        Ok(report) => {
                            job.info.state = JobState::Finished;
                            job.info.report = Some(report);
                        }
                        Err(e) => {
                            job.info.state = JobState::Failed;
                            job.info.error = Some(e.to_string());
                        }
                    }
                    job.info.clone()
                };
                on_end(info);
            })
            .map_err(|source| CommandError::Io {
                path: self.data_dir.clone(),
                source,
            })?;
        Ok(id)
    }

    /// Imports a folder, table, shard or annotation file the user chose; cancelling it
    /// writes nothing.
    pub fn start_import(
        &self,
        req: ImportRequest,
        sink: impl FnOnce(u64) -> Arc<dyn EventSink>,
        on_end: impl FnOnce(JobInfo) + Send + 'static,
    ) -> Result<u64> {
        Store::check_dataset_name(&req.dataset)?;
        let path = self.chosen_path(&req.path)?;
        let mut opts = ImportOptions::new(&req.dataset, req.format, &path);
        opts.strict = req.strict;
        for (column, given) in [
            (&mut opts.image_col, req.image_column),
            (&mut opts.caption_col, req.caption_column),
        ] {
            if let Some(name) = given {
                *column = check_text("column name", &name)?.to_string();
            }
        }
        opts.images_dir = req
            .images_dir
            .as_deref()
            .map(|p| self.chosen_path(p))
            .transpose()?;
        opts.annotations = req
            .annotations
            .as_deref()
            .map(|p| self.chosen_path(p))
            .transpose()?;
        let what = format!("import {} into {}", path.display(), req.dataset);
        self.spawn_job(what, sink, on_end, move |store, cancel, sink| {
            opts.cancel = cancel.clone();
            report(import(store, &opts, sink)?)
        })
    }

    /// Ingests the videos the user chose (files, or folders searched for videos) with the
    /// installed Whisper model; cancelling stops before the next video.
    pub fn start_ingest(
        &self,
        req: IngestRequest,
        sink: impl FnOnce(u64) -> Arc<dyn EventSink>,
        on_end: impl FnOnce(JobInfo) + Send + 'static,
    ) -> Result<u64> {
        Store::check_dataset_name(&req.dataset)?;
        if req.paths.is_empty() {
            return invalid("no videos or folders chosen");
        }
        let paths = req
            .paths
            .iter()
            .map(|p| self.chosen_path(p))
            .collect::<Result<Vec<_>>>()?;
        let model = tessera::asr::resolve_model(None, &self.store().whisper_models_dir())?;
        let what = format!("ingest {} into {}", paths.len(), req.dataset);
        self.spawn_job(what, sink, on_end, move |store, cancel, sink| {
            let opts = IngestOptions {
                dataset: req.dataset,
                model,
                decode: Default::default(),
                pairing: Default::default(),
                sampling: Default::default(),
                cancel: cancel.clone(),
            };
            report(ingest_videos(store, &paths, &opts, sink)?)
        })
    }

    /// Writes the data set as WebDataset shards into a folder the user chose (which must not
    /// hold shards already).
    pub fn start_export(
        &self,
        req: ExportRequest,
        sink: impl FnOnce(u64) -> Arc<dyn EventSink>,
        on_end: impl FnOnce(JobInfo) + Send + 'static,
    ) -> Result<u64> {
        self.store().dataset_id(&req.dataset)?;
        let out = self.chosen_path(&req.out)?;
        let what = format!("export {} to {}", req.dataset, out.display());
        self.spawn_job(what, sink, on_end, move |store, _, sink| {
            report(export_webdataset(
                store,
                &req.dataset,
                &out,
                req.split.as_deref(),
                DEFAULT_SHARD_SIZE,
                sink,
            )?)
        })
    }

    /// Asks a job to stop at its next safe point (training checkpoints first, and its run
    /// ends as `stopped`).
    pub fn cancel_job(&self, id: u64) -> Result<()> {
        match lock(&self.jobs).get(&id) {
            Some(job) => {
                job.cancel.cancel();
                Ok(())
            }
            None => invalid(format!("no job #{id}")),
        }
    }

    pub fn jobs(&self) -> Vec<JobInfo> {
        let mut all: Vec<JobInfo> = lock(&self.jobs).values().map(|j| j.info.clone()).collect();
        all.sort_by_key(|j| j.id);
        all
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A job's report as the page receives it.
fn report(r: impl Serialize) -> Result<serde_json::Value> {
    serde_json::to_value(r).map_err(|e| CommandError::Invalid(format!("report: {e}")))
}

/// A blob store name: 64 lower-case hex digits (BLAKE3). Checked before any path is built.
pub fn is_blob_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
