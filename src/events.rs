//! The one event sink: the engine reports progress here, the faces render it
//! (the CLI as indicatif bars, the app as Tauri events).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A stage of one video's ingestion, in the order they run. Persisted with the job, so a
/// resumed run starts after the last finished stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Pending,
    Probed,
    Audio,
    Transcribed,
    Frames,
    Items,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Pending,
        Stage::Probed,
        Stage::Audio,
        Stage::Transcribed,
        Stage::Frames,
        Stage::Items,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Pending => "pending",
            Stage::Probed => "probed",
            Stage::Audio => "audio",
            Stage::Transcribed => "transcribed",
            Stage::Frames => "frames",
            Stage::Items => "items",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// How one video of a batch ended.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum VideoOutcome {
    /// Ingested in this run (possibly resuming an earlier one).
    Ingested {
        items: usize,
    },
    /// Already fully ingested into this dataset: nothing to do.
    AlreadyIngested {
        items: usize,
    },
    Failed {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    BatchStarted {
        videos: usize,
    },
    VideoStarted {
        index: usize,
        path: PathBuf,
    },
    /// A stage began (`resumed` when earlier stages were already done).
    StageStarted {
        path: PathBuf,
        stage: Stage,
        resumed: bool,
    },
    /// Progress inside a long stage, 0.0 ..= 1.0.
    StageProgress {
        path: PathBuf,
        stage: Stage,
        fraction: f32,
    },
    VideoFinished {
        index: usize,
        path: PathBuf,
        result: VideoOutcome,
    },
    /// A path given on the command line that is not a video we can read (missing, unreadable dir).
    InputRejected {
        path: PathBuf,
        reason: String,
    },
    BatchFinished {
        ingested: usize,
        skipped: usize,
        failed: usize,
    },
    /// An import read one source (an annotation file, a folder, a shard) and is about to
    /// decode its images.
    ImportScanned {
        path: PathBuf,
        images: usize,
        records: usize,
    },
    /// One image of an import was decoded and stored (or failed: `ok` false).
    ImportImageDone {
        source: String,
        ok: bool,
    },
    /// A record, image or shard that could not be imported; the rest goes on.
    ImportProblem {
        message: String,
    },
    ImportFinished {
        added: usize,
        unchanged: usize,
        failed: usize,
    },
    /// An export is about to write `items` items.
    ExportStarted {
        items: usize,
    },
    /// One item of an export was written.
    ExportItemDone,
    /// A shard (or the table) of an export is complete under its final name.
    ExportFileWritten {
        path: PathBuf,
        items: usize,
    },
    /// A model file is downloading: `done` of `total` bytes.
    Download {
        name: String,
        done: u64,
        total: u64,
    },
    /// A training run starts (or resumes) at `step` of `steps`.
    TrainStarted {
        run: String,
        step: u64,
        steps: u64,
        device: String,
    },
    /// One optimizer step finished.
    TrainStep {
        step: u64,
        steps: u64,
        loss: f64,
        samples_per_s: f64,
    },
    TrainValidated {
        step: u64,
        metrics: Vec<(String, f64)>,
    },
    CheckpointSaved {
        step: u64,
        path: PathBuf,
    },
    TrainFinished {
        run: String,
        step: u64,
        status: String,
    },
}

pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

/// Discards everything (for callers that do not render progress).
pub struct NullSink;

impl EventSink for NullSink {
    fn emit(&self, _event: Event) {}
}

/// Keeps every event, for tests and for callers that summarise afterwards.
#[derive(Default)]
pub struct RecordingSink(Mutex<Vec<Event>>);

impl RecordingSink {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().expect("sink poisoned").clone()
    }
}

impl EventSink for RecordingSink {
    fn emit(&self, event: Event) {
        self.0.lock().expect("sink poisoned").push(event);
    }
}

/// Asks a running job to stop at its next safe point: training after a checkpoint, an ingest
/// between videos, an import before it writes anything.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
