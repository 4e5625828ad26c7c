//! Sources into the store: the video pipeline (audio → transcript → keyframes → pairs).

pub mod discover;
pub mod pairing;
mod video;

pub use pairing::PairingOptions;
pub use video::{ingest_videos, IngestError, IngestOptions, IngestReport, VideoReport};
