//! Evaluation metrics.

pub mod wer;
