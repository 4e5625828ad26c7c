//! Renders the engine's events as indicatif progress bars on stderr: one bar for the batch,
//! one for the video in hand.

use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tessera::events::{Event, EventSink, Stage, VideoOutcome};

pub fn percent_bar(message: &str) -> ProgressBar {
    let bar = ProgressBar::new(100);
    bar.set_style(
        ProgressStyle::with_template("{msg:>14} [{bar:30}] {pos:>3}% {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}

fn bytes_bar(message: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}

/// Where each stage starts on the per-video bar (percent); the transcription dominates.
fn stage_span(stage: Stage) -> (f32, f32) {
    match stage {
        Stage::Pending | Stage::Probed => (0.0, 2.0),
        Stage::Audio => (2.0, 8.0),
        Stage::Transcribed => (8.0, 75.0),
        Stage::Frames => (75.0, 97.0),
        Stage::Items => (97.0, 100.0),
    }
}

pub struct BarSink {
    multi: MultiProgress,
    overall: Mutex<Option<ProgressBar>>,
    video: Mutex<Option<ProgressBar>>,
}

impl BarSink {
    pub fn new() -> Self {
        Self {
            multi: MultiProgress::new(),
            overall: Mutex::new(None),
            video: Mutex::new(None),
        }
    }

    pub fn finish(&self) {
        for slot in [&self.video, &self.overall] {
            if let Some(b) = slot.lock().expect("bar lock").take() {
                b.finish_and_clear();
            }
        }
    }

    fn name(path: &std::path::Path) -> String {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string())
    }
}

impl EventSink for BarSink {
    fn emit(&self, event: Event) {
        let mut overall = self.overall.lock().expect("bar lock");
        let mut video = self.video.lock().expect("bar lock");
        match event {
            Event::BatchStarted { videos } => {
                let bar = self.multi.add(ProgressBar::new(videos as u64));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>10} [{bar:30}] {pos}/{len} videos {elapsed} eta {eta}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix("overall");
                *overall = Some(bar);
            }
            Event::VideoStarted { path, .. } => {
                let bar = self.multi.add(percent_bar(""));
                bar.set_message(Self::name(&path));
                *video = Some(bar);
            }
            Event::StageStarted { path, stage, .. } => {
                if let Some(b) = video.as_ref() {
                    b.set_message(format!("{} {}", Self::name(&path), stage.as_str()));
                    b.set_position(stage_span(stage).0 as u64);
                }
            }
            Event::StageProgress {
                stage, fraction, ..
            } => {
                if let Some(b) = video.as_ref() {
                    let (a, z) = stage_span(stage);
                    b.set_position((a + (z - a) * fraction.clamp(0.0, 1.0)) as u64);
                }
            }
            Event::VideoFinished { path, result, .. } => {
                if let Some(b) = video.take() {
                    b.finish_and_clear();
                }
                if let VideoOutcome::Failed { reason } = &result {
                    let _ = self.multi.println(format!("failed: {reason}"));
                } else {
                    let _ = self.multi.println(format!("done:   {}", path.display()));
                }
                if let Some(b) = overall.as_ref() {
                    b.inc(1);
                }
            }
            Event::InputRejected { path, reason } => {
                let _ = self
                    .multi
                    .println(format!("failed: {}: {reason}", path.display()));
            }
            Event::BatchFinished { .. } => {}
            // An import: one bar over every image, grown as each source is read.
            Event::ImportScanned { images, .. } => {
                let bar = overall.get_or_insert_with(|| {
                    let bar = self.multi.add(ProgressBar::new(0));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix:>10} [{bar:30}] {pos}/{len} images {elapsed} eta {eta}",
                        )
                        .expect("valid template")
                        .progress_chars("=> "),
                    );
                    bar.set_prefix("importing");
                    bar
                });
                bar.inc_length(images as u64);
            }
            Event::ImportImageDone { .. } => {
                if let Some(b) = overall.as_ref() {
                    b.inc(1);
                }
            }
            Event::ImportProblem { message } => {
                let _ = self.multi.println(format!("failed: {message}"));
            }
            Event::ImportFinished { .. } => {}
            Event::ExportStarted { items } => {
                let bar = self.multi.add(ProgressBar::new(items as u64));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>10} [{bar:30}] {pos}/{len} items {elapsed} eta {eta}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix("exporting");
                *overall = Some(bar);
            }
            Event::ExportItemDone => {
                if let Some(b) = overall.as_ref() {
                    b.inc(1);
                }
            }
            Event::ExportFileWritten { .. } => {}
            Event::TrainStarted {
                run,
                step,
                steps,
                device,
            } => {
                let bar = self.multi.add(ProgressBar::new(steps));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>10} [{bar:30}] {pos}/{len} steps {msg} {elapsed} eta {eta}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix("training");
                bar.set_position(step);
                let _ = self
                    .multi
                    .println(format!("run {run} on {device}, from step {step}"));
                *overall = Some(bar);
            }
            Event::TrainStep {
                step,
                loss,
                samples_per_s,
                ..
            } => {
                if let Some(b) = overall.as_ref() {
                    b.set_position(step);
                    b.set_message(format!("loss {loss:.4} · {samples_per_s:.1} samples/s"));
                }
            }
            Event::TrainValidated { step, metrics } => {
                let shown: Vec<String> =
                    metrics.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
                let _ = self
                    .multi
                    .println(format!("validation at step {step}: {}", shown.join(", ")));
            }
            Event::CheckpointSaved { step, path } => {
                let _ = self
                    .multi
                    .println(format!("checkpoint at step {step}: {}", path.display()));
            }
            Event::TrainFinished { .. } => {}
            Event::Download { name, done, total } => {
                let bar = overall.get_or_insert_with(|| {
                    self.multi.add(bytes_bar(&format!("downloading {name}")))
                });
                bar.set_length(total);
                bar.set_position(done);
            }
        }
    }
}
