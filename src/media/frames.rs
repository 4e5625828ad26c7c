//! Video frames: one analysis pass over the whole video at a low rate and size (sharpness, scene
//! change, perceptual hash per sample), and one extraction pass for the chosen frames as JPEG.

use std::path::Path;

use image::GrayImage;
use image_hasher::{HashAlg, Hasher, HasherConfig};
use rayon::prelude::*;

use super::{args_around, run_tool, MediaError, Result, VideoStream};

/// How densely and how large the analysis pass samples the video.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameSampling {
    /// Samples per second.
    pub rate_hz: f64,
    /// Width of the grey analysis frames (height follows the aspect ratio).
    pub width: u32,
}

impl Default for FrameSampling {
    fn default() -> Self {
        Self {
            rate_hz: 10.0,
            width: 160,
        }
    }
}

/// One analysed sample of the video.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameSample {
    /// Index of the decoded frame in the video's first video stream; [`extract_jpegs`] selects
    /// by it, so both passes agree on the frame even where timestamps are irregular.
    pub frame: u64,
    pub t: f64,
    /// Variance of the Laplacian: high for sharp frames, low for blurred or faded ones.
    pub sharpness: f64,
    /// Mean absolute change of a 16×9 luma thumbnail against the previous sample, 0..=1.
    pub change: f64,
    /// 64-bit gradient (dHash) perceptual hash.
    pub phash: Vec<u8>,
}

/// Hamming distance between two perceptual hashes.
pub fn phash_distance(a: &[u8], b: &[u8]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// Perceptual hash of an encoded still (JPEG, PNG, WebP), computed as [`analyze_frames`] hashes
/// frames, so stored images compare with [`phash_distance`] like keyframes do.
pub fn phash_image(bytes: &[u8]) -> std::result::Result<Vec<u8>, super::StillError> {
    let img =
        image::load_from_memory(bytes).map_err(|e| super::StillError::Corrupt(e.to_string()))?;
    Ok(hasher().hash_image(&img.to_luma8()).as_bytes().to_vec())
}

fn hasher() -> Hasher {
    HasherConfig::new()
        .hash_alg(HashAlg::Gradient)
        .hash_size(8, 8)
        .to_hasher()
}

fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32).max(1) * 2
}

/// The video's frame rate, for turning frame indices into seconds (25 when unknown).
fn frame_rate(video: &VideoStream) -> f64 {
    video
        .fps
        .filter(|f| *f > 0.0 && f.is_finite())
        .unwrap_or(25.0)
}

/// Decodes the whole video once and measures every k-th frame (k chosen for about
/// `sampling.rate_hz` samples a second), scaled down and grey.
pub fn analyze_frames(
    path: &Path,
    video: &VideoStream,
    sampling: FrameSampling,
) -> Result<Vec<FrameSample>> {
    let w = even(sampling.width as f64);
    let h = even(sampling.width as f64 * video.height as f64 / video.width as f64);
    let fps = frame_rate(video);
    let step = (fps / sampling.rate_hz).round().max(1.0) as u64;
    let filter = format!("select='not(mod(n\\,{step}))',scale={w}:{h}:flags=area,format=gray");
    // Skipping the deblocking filter speeds decoding by a fifth; at 160 px grey it changes
    // nothing the measurements can see. One decoding thread: this pass runs beside Whisper,
    // which has the cores, and frame threading costs a fifth more CPU in all.
    let args = args_around(
        &[
            "-v",
            "error",
            "-nostdin",
            "-threads",
            "1",
            "-skip_loop_filter",
            "all",
            "-i",
        ],
        path,
        &[
            "-map",
            "0:v:0",
            "-an",
            "-vf",
            &filter,
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-",
        ],
    );
    let hasher = hasher();
    run_tool("ffmpeg", &args, path, "video frames", |out| {
        let mut buf = vec![0u8; (w * h) as usize];
        let mut samples: Vec<FrameSample> = Vec::new();
        let mut prev_thumb: Option<Vec<f32>> = None;
        loop {
            match out.read_exact(&mut buf) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
            let frame = samples.len() as u64 * step;
            let t = frame as f64 / fps;
            let thumb = block_means(&buf, w, h, 16, 9);
            let change = prev_thumb
                .as_ref()
                .map(|p| {
                    p.iter()
                        .zip(&thumb)
                        .map(|(a, b)| (a - b).abs())
                        .sum::<f32>()
                        / (thumb.len() as f32 * 255.0)
                })
                .unwrap_or(0.0) as f64;
            let gray = GrayImage::from_raw(w, h, buf.clone()).expect("buffer matches size");
            samples.push(FrameSample {
                frame,
                t,
                sharpness: laplacian_variance(&buf, w as usize, h as usize),
                change,
                phash: hasher.hash_image(&gray).as_bytes().to_vec(),
            });
            prev_thumb = Some(thumb);
        }
        Ok(samples)
    })
}

/// Mean of each cell of a `bw`×`bh` grid over a grey frame.
fn block_means(px: &[u8], w: u32, h: u32, bw: u32, bh: u32) -> Vec<f32> {
    let mut sums = vec![0f32; (bw * bh) as usize];
    let mut counts = vec![0u32; (bw * bh) as usize];
    for y in 0..h {
        let by = (y * bh / h) as usize;
        for x in 0..w {
            let bx = (x * bw / w) as usize;
            let i = by * bw as usize + bx;
            sums[i] += px[(y * w + x) as usize] as f32;
            counts[i] += 1;
        }
    }
    sums.iter()
        .zip(&counts)
        .map(|(s, c)| s / (*c).max(1) as f32)
        .collect()
}

/// Variance of the 4-neighbour Laplacian over the frame's interior.
pub fn laplacian_variance(px: &[u8], w: usize, h: usize) -> f64 {
    if w < 3 || h < 3 {
        return 0.0;
    }
    let (mut sum, mut sum2, mut n) = (0f64, 0f64, 0f64);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let c = px[y * w + x] as f64;
            let l = 4.0 * c
                - px[y * w + x - 1] as f64
                - px[y * w + x + 1] as f64
                - px[(y - 1) * w + x] as f64
                - px[(y + 1) * w + x] as f64;
            sum += l;
            sum2 += l * l;
            n += 1.0;
        }
    }
    let mean = sum / n;
    sum2 / n - mean * mean
}

/// A frame encoded as JPEG.
#[derive(Debug, Clone)]
pub struct JpegFrame {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// JPEG quality of stored keyframes.
const JPEG_QUALITY: u8 = 90;

/// The frames with the given indices (ascending, as [`FrameSample::frame`]), scaled so the longer
/// side is at most `max_side`, as JPEG. One decoding pass, whatever the number of frames: seeking
/// per frame would decode from the previous keyframe each time, which costs more on the long
/// GOPs of screen recordings and encoder defaults.
pub fn extract_jpegs(
    path: &Path,
    video: &VideoStream,
    frames: &[u64],
    max_side: u32,
) -> Result<Vec<JpegFrame>> {
    if frames.is_empty() {
        return Ok(Vec::new());
    }
    let scale = (max_side as f64 / video.width.max(video.height) as f64).min(1.0);
    let (width, height) = (
        even(video.width as f64 * scale),
        even(video.height as f64 * scale),
    );
    let wanted = frames
        .iter()
        .map(|n| format!("eq(n\\,{n})"))
        .collect::<Vec<_>>()
        .join("+");
    let filter = format!("select='{wanted}',scale={width}:{height}:flags=bicubic");
    // -frames:v stops decoding once the last wanted frame is out.
    let count = frames.len().to_string();
    let args = args_around(
        &["-v", "error", "-nostdin", "-i"],
        path,
        &[
            "-map",
            "0:v:0",
            "-an",
            "-vf",
            &filter,
            "-fps_mode",
            "passthrough",
            "-frames:v",
            &count,
            "-pix_fmt",
            "rgb24",
            "-f",
            "rawvideo",
            "-",
        ],
    );
    let size = (width * height * 3) as usize;
    let raw = run_tool("ffmpeg", &args, path, "keyframes", |out| {
        let mut images = Vec::with_capacity(frames.len());
        let mut buf = vec![0u8; size];
        loop {
            match out.read_exact(&mut buf) {
                Ok(()) => images.push(buf.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
        }
        Ok(images)
    })?;
    if raw.len() != frames.len() {
        return Err(MediaError::Decode {
            path: path.to_path_buf(),
            what: "keyframes",
            reason: format!("asked for {} frames, got {}", frames.len(), raw.len()),
        });
    }
    raw.into_par_iter()
        .map(|rgb| {
            let bytes =
                super::encode_jpeg(&rgb, width, height, JPEG_QUALITY).map_err(|reason| {
                    MediaError::Decode {
                        path: path.to_path_buf(),
                        what: "keyframes",
                        reason: format!("JPEG encoding: {reason}"),
                    }
                })?;
            Ok(JpegFrame {
                bytes,
                width,
                height,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laplacian_variance_ranks_sharp_above_blurred() {
        let (w, h) = (32, 32);
        let sharp: Vec<u8> = (0..w * h)
            .map(|i| {
                if (i % w / 4 + i / w / 4) % 2 == 0 {
                    0
                } else {
                    255
                }
            })
            .collect();
        let flat = vec![128u8; w * h];
        let ramp: Vec<u8> = (0..w * h).map(|i| (i % w * 8) as u8).collect();
        let s = laplacian_variance(&sharp, w, h);
        assert!(s > 1000.0, "{s}");
        assert_eq!(laplacian_variance(&flat, w, h), 0.0);
        assert!(laplacian_variance(&ramp, w, h) < s / 100.0);
    }

    #[test]
    fn block_means_average_each_cell() {
        // left half black, right half white
        let (w, h) = (8u32, 2u32);
        let px: Vec<u8> = (0..w * h)
            .map(|i| if i % w < 4 { 0 } else { 200 })
            .collect();
        assert_eq!(block_means(&px, w, h, 2, 1), vec![0.0, 200.0]);
    }

    #[test]
    fn phash_distance_counts_differing_bits() {
        assert_eq!(phash_distance(&[0b1010, 0xff], &[0b0110, 0xff]), 2);
        assert_eq!(phash_distance(&[0; 8], &[0; 8]), 0);
    }
}
