//! Speech recognition with Whisper (whisper.cpp through whisper-rs): GGML model files, their
//! verification and installation, and transcription with per-segment timestamps.

mod models;

use std::path::{Path, PathBuf};
use std::sync::Once;

use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

pub use models::{
    install_from_file, install_official, installed_models, read_header, resolve_model,
    verify_model, GgmlHeader, ModelInfo, OfficialModel, OFFICIAL_MODELS,
};

#[derive(Debug, thiserror::Error)]
pub enum AsrError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a GGML Whisper model: {reason}", path.display())]
    NotGgml { path: PathBuf, reason: String },
    #[error("{}: whisper.cpp could not load this model (truncated or an unsupported variant)", path.display())]
    LoadFailed { path: PathBuf },
    #[error("no Whisper model: pass --model FILE, set TESSERA_WHISPER_MODEL, or run `tessera models install tiny.en` (looked in {})", dir.display())]
    NoModel { dir: PathBuf },
    #[error("unknown model {0:?}; known: {1}")]
    UnknownModel(String, String),
    #[error("unknown language {0:?}: use a Whisper language code such as en, de, fr, or auto")]
    UnknownLanguage(String),
    #[error("downloading {url}: {reason}")]
    Download { url: String, reason: String },
    #[error("{}: checksum mismatch (SHA-1 {actual}, expected {expected}); the download was discarded", path.display())]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("installing {0} was cancelled; nothing was kept")]
    Cancelled(String),
    #[error("transcription failed: {0}")]
    Whisper(String),
}

pub type Result<T> = std::result::Result<T, AsrError>;

/// How to decode speech.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeOptions {
    /// A Whisper language code, or "auto" to detect it (English-only models always use "en").
    pub language: String,
    pub threads: usize,
    /// Translate to English instead of transcribing.
    pub translate: bool,
    /// 1 decodes greedily (fast); more keeps that many beams (slower, a little more accurate).
    pub beam_size: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            language: "auto".into(),
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(4)
                .min(8),
            translate: false,
            beam_size: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Segment {
    pub start_s: f64,
    pub end_s: f64,
    pub text: String,
    pub no_speech_prob: f32,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Transcript {
    pub language: String,
    pub segments: Vec<Segment>,
}

impl Transcript {
    /// All segments' text, joined by spaces.
    pub fn text(&self) -> String {
        self.segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A loaded Whisper model; create once, transcribe many.
pub struct Transcriber {
    ctx: WhisperContext,
}

/// whisper.cpp logs to stderr; route it to `tracing` so library code stays silent.
fn quiet_whisper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(whisper_rs::install_logging_hooks);
}

impl Transcriber {
    /// Loads a GGML model, checking its header first so a wrong file gets a plain answer.
    pub fn load(model: &Path) -> Result<Self> {
        quiet_whisper();
        read_header(model)?;
        // Flash attention, as whisper.cpp's own default: faster and leaner than whisper-rs's.
        let mut params = WhisperContextParameters::default();
        params.flash_attn(true);
        let ctx =
            WhisperContext::new_with_params(model, params).map_err(|_| AsrError::LoadFailed {
                path: model.to_path_buf(),
            })?;
        Ok(Self { ctx })
    }

    pub fn is_multilingual(&self) -> bool {
        self.ctx.is_multilingual()
    }

    /// Transcribes 16 kHz mono samples. `progress` gets 0.0..=1.0 as whisper.cpp advances.
    pub fn transcribe(
        &self,
        pcm: &[f32],
        opts: &DecodeOptions,
        progress: impl FnMut(f32) + 'static,
    ) -> Result<Transcript> {
        let language = if self.is_multilingual() {
            opts.language.as_str()
        } else {
            "en"
        };
        if language.contains('\0')
            || (language != "auto" && whisper_rs::get_lang_id(language).is_none())
        {
            return Err(AsrError::UnknownLanguage(language.to_string()));
        }
        if pcm.is_empty() {
            return Ok(Transcript {
                language: language.to_string(),
                segments: vec![],
            });
        }
        let strategy = if opts.beam_size > 1 {
            SamplingStrategy::BeamSearch {
                beam_size: opts.beam_size as i32,
                patience: -1.0,
            }
        } else {
            SamplingStrategy::Greedy { best_of: 1 }
        };
        let mut params = FullParams::new(strategy);
        params.set_n_threads(opts.threads.max(1) as i32);
        params.set_translate(opts.translate);
        params.set_language(Some(language));
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        let mut progress = progress;
        params.set_progress_callback_safe(move |pct: i32| progress(pct as f32 / 100.0));

        let mut state = self
            .ctx
            .create_state()
            .map_err(|e| AsrError::Whisper(e.to_string()))?;
        state
            .full(params, pcm)
            .map_err(|e| AsrError::Whisper(e.to_string()))?;
        let detected = whisper_rs::get_lang_str(state.full_lang_id_from_state())
            .unwrap_or(language)
            .to_string();
        let segments = state
            .as_iter()
            .filter_map(|seg| {
                let text = seg.to_str_lossy().ok()?.trim().to_string();
                (!text.is_empty()).then(|| Segment {
                    start_s: seg.start_timestamp() as f64 / 100.0,
                    end_s: seg.end_timestamp() as f64 / 100.0,
                    text,
                    no_speech_prob: seg.no_speech_probability(),
                })
            })
            .collect();
        Ok(Transcript {
            language: detected,
            segments,
        })
    }
}
