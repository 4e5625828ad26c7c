//! Sources into the store: the video pipeline (audio → transcript → keyframes → pairs) and
//! importers and exporters of image-caption datasets.

pub mod discover;
pub mod export;
pub mod import;
pub mod pairing;
mod video;

pub use export::{export_jsonl, export_webdataset, ExportError, ExportReport};
pub use import::{import, ImportError, ImportFormat, ImportOptions, ImportReport, Problem};
pub use pairing::PairingOptions;
pub use video::{ingest_videos, IngestError, IngestOptions, IngestReport, VideoReport};
