//! Pre-training (DESIGN.md, "Objectives"): batches built on background threads, the masked,
//! unimodal, fused and grouped passes each objective needs, AdamW with warm-up + cosine,
//! clipping and accumulation, checkpoints with exact resume, metrics in the store.

pub mod batch;
pub mod checkpoint;
pub mod masking;
pub mod objectives;
pub mod optim;
pub mod run;
pub mod trainer;

pub use run::{
    delete_run, finetune, pretrain, resume, DeletedRun, FinetuneOptions, FinetuneTask, InitFrom,
    Parent, PretrainOptions, RunReport,
};
pub use trainer::{Losses, Trainer};
// Training was the first job that could be cancelled; the flag now serves every job.
pub use crate::events::Cancel;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Text(#[from] crate::text::TextError),
    #[error("image {hash}: {reason}")]
    Image { hash: String, reason: String },
    #[error("checkpoint {path}: {reason}")]
    Checkpoint { path: String, reason: String },
    #[error("dataset {dataset:?}: {reason}")]
    Data { dataset: String, reason: String },
    #[error("run {run:?}: {reason}")]
    Run { run: String, reason: String },
    #[error("the loss became {value} at step {step}; lower the learning rate or check the data")]
    Diverged { step: u64, value: f64 },
    #[error("batch loader: {0}")]
    Loader(String),
}

impl From<candle_core::Error> for TrainError {
    fn from(e: candle_core::Error) -> Self {
        TrainError::Model(e.into())
    }
}

/// Keeps freed memory in the process instead of handing it back to the kernel. A training step
/// frees and re-allocates gigabytes of activations; with glibc's defaults (large blocks mapped
/// fresh, the heap trimmed) the kernel zeroes those pages anew every step — a third of the CPU
/// time in the profile, and 1.6× on `small`. Process-wide, so the faces call it before training;
/// it does nothing where the C library is not glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before training threads
    // start allocating and takes effect for later allocations.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}
