//! Everything that touches ffmpeg: probing, audio at 16 kHz mono, frames at timestamps, and the
//! per-frame measurements (sharpness, scene change, perceptual hash) that keyframe choice needs.
//!
//! We drive the `ffmpeg`/`ffprobe` programs rather than link libav (ffmpeg-next): a corrupt or
//! hostile file can crash or hang a decoder, and in a child process that costs one video, not the
//! engine or the app; the CLI reads every container and codec of every FFmpeg release, where
//! ffmpeg-next is tied to the libav major version it was built against (Debian 12 ships 5.1,
//! Homebrew 7–8); and there is no bindgen or libav ABI in our build. Raw frames and PCM cross the
//! pipe uncopied, so the process boundary costs little next to decoding and Whisper.

mod frames;
pub mod heatmap;
mod jpeg;
mod pixels;
mod probe;
mod still;

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use frames::{
    analyze_frames, extract_jpegs, laplacian_variance, phash_distance, phash_image, FrameSample,
    FrameSampling, JpegFrame,
};
pub use jpeg::encode_jpeg;
pub use pixels::{fit_within, resize_rgb};
pub use probe::{probe, AudioStream, Probe, VideoStream};
pub use still::{
    decode_still, square_rgb, svg_metadata, Still, StillError, SvgMetadata, MAX_ALLOC, MAX_SIDE,
    THUMB_SIDE,
};

/// Whisper's input rate.
pub const SAMPLE_RATE: u32 = 16_000;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("{tool} not found: install FFmpeg (Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg) or set {env}")]
    ToolMissing {
        tool: &'static str,
        env: &'static str,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: the file is empty", path.display())]
    Empty { path: PathBuf },
    #[error("{}: not a video FFmpeg can read ({reason})", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("{}: has no video stream", path.display())]
    NoVideo { path: PathBuf },
    #[error("{}: decoding {what} failed ({reason})", path.display())]
    Decode {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
}

pub type Result<T> = std::result::Result<T, MediaError>;

fn tool(name: &'static str) -> (PathBuf, &'static str) {
    let env = match name {
        "ffprobe" => "TESSERA_FFPROBE",
        _ => "TESSERA_FFMPEG",
    };
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(name));
    (path, env)
}

/// Runs an FFmpeg tool and hands its stdout to `read`; stderr is kept for the error message.
fn run_tool<T>(
    name: &'static str,
    args: &[OsString],
    input: &Path,
    what: &'static str,
    read: impl FnOnce(&mut dyn Read) -> std::io::Result<T>,
) -> Result<T> {
    let (bin, env) = tool(name);
    let mut child = Command::new(&bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => MediaError::ToolMissing { tool: name, env },
            _ => MediaError::Io {
                path: bin.clone(),
                source: e,
            },
        })?;
    // Drain stderr on its own thread so a chatty decoder never blocks on a full pipe.
    let mut stderr = child.stderr.take().expect("piped stderr");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut stdout = child.stdout.take().expect("piped stdout");
    let out = read(&mut stdout);
    drop(stdout);
    let status = child.wait().map_err(|e| MediaError::Io {
        path: bin.clone(),
        source: e,
    })?;
    let stderr = err_reader.join().unwrap_or_default();
    let reason = || last_line(&stderr, status);
    match out {
        Ok(v) if status.success() => Ok(v),
        Ok(_) => Err(MediaError::Decode {
            path: input.to_path_buf(),
            what,
            reason: reason(),
        }),
        Err(e) => Err(MediaError::Decode {
            path: input.to_path_buf(),
            what,
            reason: if status.success() {
                e.to_string()
            } else {
                reason()
            },
        }),
    }
}

/// `before… input after…` as arguments (paths need not be UTF-8).
fn args_around(before: &[&str], input: &Path, after: &[&str]) -> Vec<OsString> {
    let mut args: Vec<OsString> = before.iter().map(OsString::from).collect();
    args.push(input.as_os_str().to_owned());
    args.extend(after.iter().map(OsString::from));
    args
}

/// The most telling line of an FFmpeg error log, without the "[mov,mp4,…] " prefix noise.
fn last_line(stderr: &str, status: std::process::ExitStatus) -> String {
    stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(|l| l.to_string())
        .unwrap_or_else(|| format!("exited with {status}"))
}

/// Checks a path is a readable, non-empty regular file before handing it to FFmpeg, so the
/// common mistakes get plain words instead of a decoder's.
pub fn check_input(path: &Path) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| MediaError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    if !meta.is_file() {
        return Err(MediaError::Unreadable {
            path: path.to_path_buf(),
            reason: "not a regular file".into(),
        });
    }
    if meta.len() == 0 {
        return Err(MediaError::Empty {
            path: path.to_path_buf(),
        });
    }
    std::fs::File::open(path).map_err(|e| MediaError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok(meta.len())
}

/// Decodes the first audio stream to 16 kHz mono f32 samples (FFmpeg's resampler).
pub fn decode_audio(path: &Path) -> Result<Vec<f32>> {
    let args = args_around(
        &["-v", "error", "-nostdin", "-i"],
        path,
        &[
            "-map", "0:a:0", "-vn", "-ac", "1", "-ar", "16000", "-f", "f32le", "-",
        ],
    );
    let bytes = run_tool("ffmpeg", &args, path, "audio", |r| {
        let mut buf = Vec::new();
        r.read_to_end(&mut buf)?;
        Ok(buf)
    })?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Reads f32 little-endian PCM written by [`write_pcm`].
pub fn read_pcm(path: &Path) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).map_err(|e| MediaError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Writes PCM atomically (temporary file, then rename), so a crash never leaves half a track.
pub fn write_pcm(path: &Path, samples: &[f32]) -> Result<()> {
    let io = |e| MediaError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let dir = path.parent().expect("pcm path has a parent");
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut bytes = Vec::with_capacity(samples.len() * 4);
    for s in samples {
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, &bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
