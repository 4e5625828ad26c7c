//! Tessera: a workbench for vision-language research.
//!
//! Data flows one way: sources → [`ingest`] (through [`media`] and [`asr`]) → [`store`] → …
//! Library code never prints and never exits; it returns typed errors and reports progress
//! through one [`events::EventSink`] that every face (CLI, app) renders.

pub mod asr;
pub mod curate;
pub mod eval;
pub mod events;
pub mod index;
pub mod infer;
pub mod ingest;
pub mod media;
pub mod model;
pub mod store;
pub mod text;
pub mod train;
