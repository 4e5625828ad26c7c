//! Evaluation metrics: word error rate, retrieval recall@K, VQA accuracy.

pub mod ablate;
pub mod retrieval;
pub mod run;
pub mod table;
pub mod vqa;
pub mod wer;
