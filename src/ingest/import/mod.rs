//! Importers of image-caption datasets: a folder with sidecar captions, JSONL/CSV/TSV tables,
//! COCO captions (and the Karpathy split file), and WebDataset tar shards; and VQA data (VQA v2,
//! JSONL questions, easy-VQA), one item per question.
//!
//! Each format turns its input into [`Chunk`]s (a folder, a file, one shard): image sources,
//! the records that point at them, and the problems found while reading. Images are then decoded
//! once, in parallel, checked and thumbnailed; their bytes go to the blob store (content-addressed,
//! so the same image in two datasets is stored once) and every item goes into the catalog in one
//! transaction at the end. A bad record, image or shard is reported and skipped; with `strict`
//! the first problem stops the import and nothing is written.

mod coco;
mod folder;
mod table;
mod vqa;
mod webdataset;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use crate::events::{Event, EventSink};
use crate::media::{decode_still, StillError};
use crate::store::{BlobStore, ImageBlob, ImportedItem, ImportedQuestion, Store, StoreError};

/// Largest image file we read into memory.
pub const MAX_IMAGE_BYTES: u64 = 256 * 1024 * 1024;

/// Image file names we pick up (folders, shards); anything else is decoded by content anyway.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "svg"];

fn is_image_ext(ext: &str) -> bool {
    IMAGE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportFormat {
    Folder,
    Jsonl,
    Csv,
    Tsv,
    Coco,
    Webdataset,
    Vqa2,
    VqaJsonl,
    EasyVqa,
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub dataset: String,
    pub format: ImportFormat,
    /// The folder, table, COCO file, shard or folder of shards.
    pub path: PathBuf,
    /// Stop at the first problem and write nothing.
    pub strict: bool,
    /// Table columns (JSONL fields) holding the image path and the caption.
    pub image_col: String,
    pub caption_col: String,
    /// Where COCO images live (required for a COCO captions file; a Karpathy file defaults to
    /// its own directory).
    pub images_dir: Option<PathBuf>,
    /// VQA v2's annotations file (the answers to the questions file).
    pub annotations: Option<PathBuf>,
    /// Stops decoding and writes nothing (a later run starts over; stored images are reused).
    pub cancel: crate::events::Cancel,
}

impl ImportOptions {
    pub fn new(dataset: &str, format: ImportFormat, path: &Path) -> Self {
        Self {
            dataset: dataset.to_string(),
            format,
            path: path.to_path_buf(),
            strict: false,
            image_col: "image".into(),
            caption_col: "caption".into(),
            images_dir: None,
            annotations: None,
            cancel: Default::default(),
        }
    }
}

/// Errors that stop a whole import. Problems with one record, image or shard are
/// [`Problem`]s in the report instead.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Input { path: PathBuf, reason: String },
}

/// Why one record, image or shard was not imported. `file` names the file, or
/// `shard.tar:member` inside a shard.
#[derive(Debug, thiserror::Error)]
pub enum ItemError {
    #[error("{file}: image file not found")]
    MissingImage { file: String },
    #[error("{file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {source}")]
    Image { file: String, source: StillError },
    #[error("{file}:{line}: {reason}")]
    Line {
        file: String,
        line: u64,
        reason: String,
    },
    #[error("{file}: {reason}")]
    File { file: String, reason: String },
}

impl ItemError {
    pub(crate) fn line(file: &Path, line: u64, reason: impl Into<String>) -> Self {
        ItemError::Line {
            file: file.display().to_string(),
            line,
            reason: reason.into(),
        }
    }

    pub(crate) fn file(file: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        ItemError::File {
            file: file.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(file: &Path, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            ItemError::MissingImage {
                file: file.display().to_string(),
            }
        } else {
            ItemError::Io {
                file: file.display().to_string(),
                source,
            }
        }
    }

    fn problem(&self) -> Problem {
        let (file, line) = match self {
            ItemError::MissingImage { file }
            | ItemError::Io { file, .. }
            | ItemError::Image { file, .. }
            | ItemError::File { file, .. } => (file.clone(), None),
            ItemError::Line { file, line, .. } => (file.clone(), Some(*line)),
        };
        Problem {
            file,
            line,
            message: self.to_string(),
        }
    }
}

/// A problem as the report shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Problem {
    pub file: String,
    pub line: Option<u64>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ImportReport {
    pub dataset: String,
    pub format: ImportFormat,
    pub path: PathBuf,
    /// Items found with a readable image.
    pub items: usize,
    /// Items new to the dataset.
    pub added: usize,
    /// Items the dataset already had (a re-run).
    pub unchanged: usize,
    /// Distinct images decoded and stored.
    pub images: usize,
    pub problems: Vec<Problem>,
    /// `strict` and something was wrong, or cancelled: nothing was written.
    pub aborted: bool,
    /// Stopped by [`ImportOptions::cancel`].
    pub cancelled: bool,
}

impl ImportReport {
    pub fn failed(&self) -> usize {
        self.problems.len()
    }
}

/// Where an image's bytes are.
pub(crate) enum ImageSource {
    File(PathBuf),
    /// Already read (a tar member); `origin` is `shard.tar:member`.
    Bytes {
        origin: String,
        bytes: Vec<u8>,
    },
}

impl ImageSource {
    fn origin(&self) -> String {
        match self {
            ImageSource::File(p) => p.display().to_string(),
            ImageSource::Bytes { origin, .. } => origin.clone(),
        }
    }
}

pub(crate) struct Record {
    /// Index into the chunk's images.
    pub image: usize,
    pub caption: String,
    pub split: Option<String>,
    pub meta: serde_json::Map<String, serde_json::Value>,
    pub question: Option<ImportedQuestion>,
}

/// What one source (folder, table, shard) yields.
pub(crate) struct Chunk {
    pub label: PathBuf,
    pub images: Vec<ImageSource>,
    pub records: Vec<Record>,
    pub problems: Vec<ItemError>,
    files: std::collections::HashMap<PathBuf, usize>,
}

impl Chunk {
    pub fn new(label: &Path) -> Self {
        Self {
            label: label.to_path_buf(),
            images: Vec::new(),
            records: Vec::new(),
            problems: Vec::new(),
            files: Default::default(),
        }
    }

    /// The index of an image file, each file listed once however many captions point at it.
    pub fn image_file(&mut self, path: PathBuf) -> usize {
        if let Some(&i) = self.files.get(&path) {
            return i;
        }
        self.images.push(ImageSource::File(path.clone()));
        self.files.insert(path, self.images.len() - 1);
        self.images.len() - 1
    }

    pub fn image_bytes(&mut self, origin: String, bytes: Vec<u8>) -> usize {
        self.images.push(ImageSource::Bytes { origin, bytes });
        self.images.len() - 1
    }

    pub fn record(
        &mut self,
        image: usize,
        caption: &str,
        split: Option<String>,
        meta: serde_json::Map<String, serde_json::Value>,
    ) {
        self.records.push(Record {
            image,
            caption: caption.trim().to_string(),
            split,
            meta,
            question: None,
        });
    }

    /// A VQA record: one question about the image. The caption is empty unless the source
    /// has one.
    pub fn question(
        &mut self,
        image: usize,
        caption: &str,
        split: Option<String>,
        meta: serde_json::Map<String, serde_json::Value>,
        question: ImportedQuestion,
    ) {
        self.records.push(Record {
            image,
            caption: caption.trim().to_string(),
            split,
            meta,
            question: Some(question),
        });
    }
}

/// Text from a caption file or field: must be UTF-8; the error names the line of the first
/// bad byte.
pub(crate) fn utf8_caption(bytes: Vec<u8>, file: &str) -> Result<String, ItemError> {
    String::from_utf8(bytes).map_err(|e| {
        let upto = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..upto].iter().filter(|&&b| b == b'\n').count() as u64;
        ItemError::Line {
            file: file.to_string(),
            line,
            reason: "caption is not UTF-8".into(),
        }
    })
}

/// Imports `opts.path` into `opts.dataset`.
pub fn import(
    store: &Store,
    opts: &ImportOptions,
    sink: Arc<dyn EventSink>,
) -> Result<ImportReport, ImportError> {
    Store::check_dataset_name(&opts.dataset)?;
    // Absolute paths: an item's source names the same file whatever directory we ran from.
    let root = std::fs::canonicalize(&opts.path).map_err(|source| ImportError::Io {
        path: opts.path.clone(),
        source,
    })?;
    let chunks: Box<dyn Iterator<Item = Chunk>> = match opts.format {
        ImportFormat::Folder => Box::new(std::iter::once(folder::scan(&root)?)),
        ImportFormat::Jsonl => Box::new(std::iter::once(table::scan_jsonl(&root, opts)?)),
        ImportFormat::Csv => Box::new(std::iter::once(table::scan_csv(&root, opts, b',')?)),
        ImportFormat::Tsv => Box::new(std::iter::once(table::scan_csv(&root, opts, b'\t')?)),
        ImportFormat::Coco => Box::new(std::iter::once(coco::scan(&root, opts)?)),
        ImportFormat::Webdataset => {
            let shards = webdataset::shards(&root)?;
            Box::new(shards.into_iter().map(|s| webdataset::read_shard(&s)))
        }
        ImportFormat::Vqa2 => Box::new(std::iter::once(vqa::scan_vqa2(&root, opts)?)),
        ImportFormat::VqaJsonl => Box::new(std::iter::once(vqa::scan_jsonl(&root, opts)?)),
        ImportFormat::EasyVqa => Box::new(vqa::scan_easy_vqa(&root)?.into_iter()),
    };

    let blobs = store.blobs().clone();
    let mut problems: Vec<Problem> = Vec::new();
    let mut images: Vec<ImageBlob> = Vec::new();
    let mut items: Vec<ImportedItem> = Vec::new();
    let report_problem = |e: ItemError, problems: &mut Vec<Problem>| {
        let p = e.problem();
        sink.emit(Event::ImportProblem {
            message: p.message.clone(),
        });
        problems.push(p);
    };
    let cancelled = || opts.cancel.is_cancelled();
    for chunk in chunks {
        if cancelled() {
            break;
        }
        let Chunk {
            label,
            images: sources,
            records,
            problems: found,
            ..
        } = chunk;
        for e in found {
            report_problem(e, &mut problems);
        }
        if opts.strict && !problems.is_empty() {
            break;
        }
        sink.emit(Event::ImportScanned {
            path: label,
            images: sources.len(),
            records: records.len(),
        });
        let decoded: Vec<Option<Result<(ImageBlob, String), ItemError>>> = sources
            .into_par_iter()
            .map(|src| {
                if cancelled() {
                    return None;
                }
                let origin = src.origin();
                let got = store_image(&blobs, src).map(|b| (b, origin.clone()));
                sink.emit(Event::ImportImageDone {
                    source: origin,
                    ok: got.is_ok(),
                });
                Some(got)
            })
            .collect();
        if cancelled() {
            break;
        }
        let mut ok: Vec<Option<(String, String)>> = Vec::with_capacity(decoded.len());
        // Not cancelled by now, so no image was skipped: `ok` stays aligned with the images.
        for d in decoded.into_iter().flatten() {
            match d {
                Ok((blob, origin)) => {
                    ok.push(Some((blob.hash.clone(), origin)));
                    images.push(blob);
                }
                Err(e) => {
                    ok.push(None);
                    report_problem(e, &mut problems);
                }
            }
        }
        for r in records {
            // An image that failed is reported once, however many captions it had.
            let Some((hash, origin)) = &ok[r.image] else {
                continue;
            };
            items.push(ImportedItem {
                image_hash: hash.clone(),
                caption: r.caption,
                source_path: origin.clone(),
                split: r.split,
                meta_json: (!r.meta.is_empty())
                    .then(|| serde_json::Value::Object(r.meta).to_string()),
                question: r.question,
            });
        }
        if opts.strict && !problems.is_empty() {
            break;
        }
    }

    let cancelled = cancelled();
    let aborted = (opts.strict && !problems.is_empty()) || cancelled;
    let mut added = 0;
    if !aborted && !items.is_empty() {
        let dataset_id = store.ensure_dataset(&opts.dataset)?;
        added = store.save_imported_items(dataset_id, &images, &items)?;
    }
    let report = ImportReport {
        dataset: opts.dataset.clone(),
        format: opts.format,
        path: root,
        items: items.len(),
        added,
        unchanged: if aborted { 0 } else { items.len() - added },
        images: images.len(),
        problems,
        aborted,
        cancelled,
    };
    sink.emit(Event::ImportFinished {
        added: report.added,
        unchanged: report.unchanged,
        failed: report.failed(),
    });
    Ok(report)
}

/// Reads, decodes and checks one image, then stores it and its thumbnail.
fn store_image(blobs: &BlobStore, src: ImageSource) -> Result<ImageBlob, ItemError> {
    let (origin, bytes) = match src {
        ImageSource::File(path) => {
            let meta = std::fs::metadata(&path).map_err(|e| ItemError::io(&path, e))?;
            if meta.len() > MAX_IMAGE_BYTES {
                return Err(ItemError::file(
                    path.display(),
                    format!(
                        "file is {} bytes, more than the {MAX_IMAGE_BYTES} byte limit",
                        meta.len()
                    ),
                ));
            }
            let bytes = std::fs::read(&path).map_err(|e| ItemError::io(&path, e))?;
            (path.display().to_string(), bytes)
        }
        ImageSource::Bytes { origin, bytes } => (origin, bytes),
    };
    let still = decode_still(&bytes).map_err(|source| ItemError::Image {
        file: origin.clone(),
        source,
    })?;
    let stored = |b: &[u8]| {
        blobs.put(b).map_err(|e| ItemError::File {
            file: origin.clone(),
            reason: format!("storing the image: {e}"),
        })
    };
    let hash = stored(&bytes)?;
    let thumb_hash = stored(&still.thumb_jpeg)?;
    Ok(ImageBlob {
        hash,
        size: bytes.len() as u64,
        mime: still.mime.to_string(),
        width: still.width,
        height: still.height,
        thumb_hash,
        thumb_size: still.thumb_jpeg.len() as u64,
        thumb_width: still.thumb_width,
        thumb_height: still.thumb_height,
    })
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::io::Cursor;

    /// A small PNG whose pixels depend on `seed`, so different seeds give different blobs.
    pub fn png(seed: u8) -> Vec<u8> {
        let img =
            image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([seed, x as u8 * 5, y as u8 * 7]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caption_utf8_error_names_the_line() {
        let e = utf8_caption(b"one\ntwo \xff\n".to_vec(), "a.txt").unwrap_err();
        assert_eq!(e.to_string(), "a.txt:2: caption is not UTF-8");
        assert_eq!(utf8_caption(b"ok".to_vec(), "a.txt").unwrap(), "ok");
    }

    #[test]
    fn strict_writes_nothing_and_lenient_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("a.png"), testutil::png(1)).unwrap();
        std::fs::write(data.join("a.txt"), "a red square").unwrap();
        std::fs::write(data.join("b.png"), b"not an image").unwrap();
        std::fs::write(data.join("b.txt"), "broken").unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let mut opts = ImportOptions::new("d", ImportFormat::Folder, &data);
        opts.strict = true;
        let sink = Arc::new(crate::events::RecordingSink::default());
        let r = import(&store, &opts, sink.clone()).unwrap();
        assert!(r.aborted);
        assert_eq!(r.added, 0);
        assert!(
            store.dataset_id("d").is_err(),
            "strict import wrote nothing"
        );
        opts.strict = false;
        let r = import(&store, &opts, sink.clone()).unwrap();
        assert_eq!((r.items, r.added, r.failed()), (1, 1, 1));
        assert!(r.problems[0].message.contains("b.png"), "{:?}", r.problems);
        let r = import(&store, &opts, sink.clone()).unwrap();
        assert_eq!((r.added, r.unchanged), (0, 1));
        assert!(sink
            .events()
            .iter()
            .any(|e| matches!(e, Event::ImportImageDone { ok: true, .. })));
    }
}
