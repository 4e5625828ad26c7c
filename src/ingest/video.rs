//! The video pipeline. Each video's job advances through persisted stages
//! (probed → audio → transcribed → frames → items); every stage's results are written in the
//! same transaction that records the stage, so a kill at any moment leaves the store
//! consistent and the next run resumes after the last finished stage.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::discover::discover;
use super::pairing::{choose_keyframes, merge_segments, pair, PairingOptions, StoredFrame};
use crate::asr::{AsrError, DecodeOptions, Transcriber};
use crate::events::{Event, EventSink, Stage, VideoOutcome};
use crate::media::{self, FrameSampling, MediaError, Probe};
use crate::store::{hash_file, KeyframeRow, SegmentRow, Store, StoreError, VideoFacts, VideoRow};

/// Errors that stop a whole batch. Problems with one video are reported in its
/// [`VideoReport`] instead, and the batch goes on.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why one video failed.
#[derive(Debug, thiserror::Error)]
enum VideoError {
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(transparent)]
    Asr(#[from] AsrError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub dataset: String,
    /// The Whisper model (loaded only if some video still needs transcribing).
    pub model: PathBuf,
    pub decode: DecodeOptions,
    pub pairing: PairingOptions,
    pub sampling: FrameSampling,
    /// Stops the batch before its next video (the unfinished ones resume on a later run).
    pub cancel: crate::events::Cancel,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VideoReport {
    pub path: PathBuf,
    #[serde(flatten)]
    pub outcome: VideoOutcome,
    /// The stages this run performed (finished stages of an earlier run are not redone).
    pub stages_run: Vec<Stage>,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct IngestReport {
    pub dataset: String,
    pub videos: Vec<VideoReport>,
    /// Paths that were not videos we could even open (missing, unreadable directory).
    pub rejected: Vec<(PathBuf, String)>,
    /// Stopped by [`IngestOptions::cancel`] before every video was done.
    pub cancelled: bool,
}

impl IngestReport {
    pub fn failed(&self) -> usize {
        self.rejected.len()
            + self
                .videos
                .iter()
                .filter(|v| matches!(v.outcome, VideoOutcome::Failed { .. }))
                .count()
    }
}

/// The Whisper model, loaded on first need and shared by every video of the batch; a model
/// that fails to load fails the videos that need it, not the batch.
struct LazyTranscriber<'a> {
    path: &'a Path,
    loaded: Option<std::result::Result<Transcriber, String>>,
}

impl LazyTranscriber<'_> {
    fn get(&mut self) -> std::result::Result<&Transcriber, VideoError> {
        let path = self.path;
        let loaded = self
            .loaded
            .get_or_insert_with(|| Transcriber::load(path).map_err(|e| e.to_string()));
        match loaded {
            Ok(t) => Ok(t),
            Err(e) => Err(VideoError::Asr(AsrError::Whisper(e.clone()))),
        }
    }
}

/// Ingests every video under `inputs` into `opts.dataset`.
pub fn ingest_videos(
    store: &Store,
    inputs: &[PathBuf],
    opts: &IngestOptions,
    sink: Arc<dyn EventSink>,
) -> Result<IngestReport, IngestError> {
    let dataset_id = store.ensure_dataset(&opts.dataset)?;
    let found = discover(inputs);
    for (path, reason) in &found.rejected {
        sink.emit(Event::InputRejected {
            path: path.clone(),
            reason: reason.clone(),
        });
    }
    sink.emit(Event::BatchStarted {
        videos: found.files.len(),
    });
    let mut transcriber = LazyTranscriber {
        path: &opts.model,
        loaded: None,
    };
    let mut report = IngestReport {
        dataset: opts.dataset.clone(),
        videos: Vec::new(),
        rejected: found.rejected.clone(),
        cancelled: false,
    };
    for (index, path) in found.files.iter().enumerate() {
        if opts.cancel.is_cancelled() {
            report.cancelled = true;
            break;
        }
        sink.emit(Event::VideoStarted {
            index,
            path: path.clone(),
        });
        let mut run = VideoRun {
            store,
            dataset_id,
            path,
            opts,
            sink: sink.as_ref(),
            sink_arc: &sink,
            stages_run: Vec::new(),
            job_id: None,
        };
        let outcome = match run.ingest(&mut transcriber) {
            Ok(outcome) => outcome,
            // The store itself failing is not this video's fault: stop the batch.
            Err(VideoError::Store(e)) => return Err(e.into()),
            Err(e) => {
                let reason = e.to_string();
                if let Some(job) = run.job_id {
                    store.fail_job(job, &reason)?;
                }
                VideoOutcome::Failed { reason }
            }
        };
        sink.emit(Event::VideoFinished {
            index,
            path: path.clone(),
            result: outcome.clone(),
        });
        report.videos.push(VideoReport {
            path: path.clone(),
            outcome,
            stages_run: run.stages_run,
        });
    }
    let count =
        |f: fn(&VideoOutcome) -> bool| report.videos.iter().filter(|v| f(&v.outcome)).count();
    sink.emit(Event::BatchFinished {
        ingested: count(|o| matches!(o, VideoOutcome::Ingested { .. })),
        skipped: count(|o| matches!(o, VideoOutcome::AlreadyIngested { .. })),
        failed: report.failed(),
    });
    Ok(report)
}

struct VideoRun<'a> {
    store: &'a Store,
    dataset_id: i64,
    path: &'a Path,
    opts: &'a IngestOptions,
    sink: &'a dyn EventSink,
    sink_arc: &'a Arc<dyn EventSink>,
    stages_run: Vec<Stage>,
    job_id: Option<i64>,
}

impl VideoRun<'_> {
    fn begin(&mut self, stage: Stage, resumed: bool) {
        self.stages_run.push(stage);
        self.sink.emit(Event::StageStarted {
            path: self.path.to_path_buf(),
            stage,
            resumed,
        });
    }

    fn ingest(&mut self, transcriber: &mut LazyTranscriber) -> Result<VideoOutcome, VideoError> {
        let size = media::check_input(self.path)?;
        let hash = hash_file(self.path).map_err(|source| VideoError::Io {
            path: self.path.to_path_buf(),
            source,
        })?;
        let video = self.store.upsert_video(&hash, self.path, size)?;
        let options_json = serde_json::json!({
            "model": self.opts.model,
            "language": self.opts.decode.language,
            "translate": self.opts.decode.translate,
            "pairing": self.opts.pairing,
        })
        .to_string();
        let job =
            self.store
                .start_ingest_job(self.dataset_id, video.id, self.path, &options_json)?;
        self.job_id = Some(job.id);
        if job.status == "done" {
            return Ok(VideoOutcome::AlreadyIngested {
                items: self.store.video_item_count(self.dataset_id, video.id)?,
            });
        }
        let resumed = job.stage > Stage::Pending;
        let work = self.store.work_dir(&hash);
        let pcm_path = work.join("audio.f32");

        // probe
        let probe = media::probe(self.path)?;
        let Some(vstream) = probe.video.clone() else {
            return Err(MediaError::NoVideo {
                path: self.path.to_path_buf(),
            }
            .into());
        };
        if job.stage < Stage::Probed {
            self.begin(Stage::Probed, resumed);
            self.store.save_probe(job.id, video.id, &facts(&probe))?;
        }
        let has_audio = probe.audio.is_some();

        // audio
        if job.stage < Stage::Audio {
            self.begin(Stage::Audio, resumed);
            if has_audio {
                let pcm = media::decode_audio(self.path)?;
                media::write_pcm(&pcm_path, &pcm)?;
            }
            self.store.finish_stage(job.id, Stage::Audio)?;
        }

        // The frame analysis needs no transcript, so it runs beside the transcription, on the
        // cores Whisper leaves idle while it decodes tokens.
        let path = self.path;
        let sampling = self.opts.sampling;
        let (transcribed, samples) = std::thread::scope(|scope| {
            let analysis = (job.stage < Stage::Frames).then(|| {
                let vstream = &vstream;
                scope.spawn(move || media::analyze_frames(path, vstream, sampling))
            });
            let transcribed = if job.stage < Stage::Transcribed {
                self.begin(Stage::Transcribed, resumed);
                self.transcribe(transcriber, job.id, &video, has_audio, &pcm_path)
            } else {
                Ok(())
            };
            let samples = analysis
                .map(|h| h.join().expect("frame analysis thread panicked"))
                .transpose();
            (transcribed, samples)
        });
        transcribed?;
        let spans = merge_segments(
            &self.store.transcript(video.id)?,
            self.opts.pairing.min_words,
        );

        // keyframes
        if let Some(samples) = samples? {
            self.begin(Stage::Frames, resumed);
            let choices = choose_keyframes(&samples, &spans, probe.duration_s, &self.opts.pairing);
            let indices: Vec<u64> = choices.iter().map(|c| c.frame).collect();
            let jpegs = media::extract_jpegs(
                self.path,
                &vstream,
                &indices,
                self.opts.pairing.max_frame_side,
            )?;
            let rows = choices
                .iter()
                .zip(jpegs)
                .map(|(c, jpeg)| {
                    Ok(KeyframeRow {
                        t_s: c.t,
                        blob_hash: self.store.blobs().put(&jpeg.bytes)?,
                        mime: "image/jpeg".into(),
                        width: jpeg.width,
                        height: jpeg.height,
                        size: jpeg.bytes.len() as u64,
                        reason: c.reason.to_string(),
                        span_start: c.span_start,
                        span_end: c.span_end,
                        phash: c.phash.clone(),
                        sharpness: c.sharpness,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            self.store.save_keyframes(job.id, &rows)?;
        }

        // items
        self.begin(Stage::Items, resumed);
        let frames: Vec<StoredFrame> = self
            .store
            .keyframes(job.id)?
            .into_iter()
            .map(|k| StoredFrame {
                t: k.t_s,
                image_hash: k.blob_hash,
                phash: k.phash,
                span_start: k.span_start,
                span_end: k.span_end,
            })
            .collect();
        let items = pair(&frames, &spans, &self.opts.pairing);
        self.store.save_video_items(job.id, &items)?;
        // The decoded audio is only a resumption aid; the transcript is stored.
        if work.exists() {
            std::fs::remove_dir_all(&work).map_err(|source| VideoError::Io {
                path: work.clone(),
                source,
            })?;
        }
        Ok(VideoOutcome::Ingested { items: items.len() })
    }
}

impl VideoRun<'_> {
    /// Transcribes the video's audio (or reuses the transcript another dataset made with the
    /// same settings) and stores it with the stage.
    fn transcribe(
        &self,
        transcriber: &mut LazyTranscriber,
        job_id: i64,
        video: &VideoRow,
        has_audio: bool,
        pcm_path: &Path,
    ) -> Result<(), VideoError> {
        let key = asr_key(&self.opts.model, &self.opts.decode);
        if !has_audio {
            self.store.save_transcript(job_id, video.id, "", &[])?;
            return Ok(());
        }
        if video.asr_model.as_deref() == Some(key.as_str()) {
            self.store.finish_stage(job_id, Stage::Transcribed)?;
            return Ok(());
        }
        let pcm = if pcm_path.is_file() {
            media::read_pcm(pcm_path)?
        } else {
            media::decode_audio(self.path)?
        };
        let sink = Arc::clone(self.sink_arc);
        let path = self.path.to_path_buf();
        let transcript = transcriber
            .get()?
            .transcribe(&pcm, &self.opts.decode, move |f| {
                sink.emit(Event::StageProgress {
                    path: path.clone(),
                    stage: Stage::Transcribed,
                    fraction: f,
                })
            })?;
        let rows: Vec<SegmentRow> = transcript
            .segments
            .iter()
            .map(|s| SegmentRow {
                start_s: s.start_s,
                end_s: s.end_s,
                text: s.text.clone(),
                no_speech_prob: s.no_speech_prob,
            })
            .collect();
        self.store.save_transcript(job_id, video.id, &key, &rows)?;
        Ok(())
    }
}

/// Identifies the recognition settings a transcript was made with.
fn asr_key(model: &Path, d: &DecodeOptions) -> String {
    let name = model
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(
        "{name} language={} translate={} beam={}",
        d.language, d.translate, d.beam_size
    )
}

fn facts(p: &Probe) -> VideoFacts {
    VideoFacts {
        duration_s: p.duration_s,
        width: p.video.as_ref().map(|v| v.width),
        height: p.video.as_ref().map(|v| v.height),
        fps: p.video.as_ref().and_then(|v| v.fps),
        has_audio: p.audio.is_some(),
        probe_json: p.raw_json.clone(),
    }
}
