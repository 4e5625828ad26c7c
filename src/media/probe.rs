//! `ffprobe` → duration and streams.

use std::path::Path;

use serde::Deserialize;

use super::{args_around, run_tool, MediaError, Result};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VideoStream {
    pub codec: String,
    pub width: u32,
    pub height: u32,
    /// Average frame rate, when the container states one.
    pub fps: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AudioStream {
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u32,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Probe {
    pub format: String,
    pub duration_s: f64,
    pub video: Option<VideoStream>,
    pub audio: Option<AudioStream>,
    /// ffprobe's own JSON, kept with the video in the store.
    #[serde(skip)]
    pub raw_json: String,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    streams: Vec<RawStream>,
    format: Option<RawFormat>,
}

#[derive(Deserialize)]
struct RawStream {
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    avg_frame_rate: Option<String>,
    sample_rate: Option<String>,
    channels: Option<u32>,
    duration: Option<String>,
    disposition: Option<RawDisposition>,
}

#[derive(Deserialize)]
struct RawDisposition {
    #[serde(default)]
    attached_pic: u8,
}

#[derive(Deserialize)]
struct RawFormat {
    format_name: Option<String>,
    duration: Option<String>,
}

fn parse_rate(s: &str) -> Option<f64> {
    let (n, d) = s.split_once('/')?;
    let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
    (d > 0.0 && n > 0.0).then_some(n / d)
}

/// Probes a media file. Errors name the file and say what is wrong with it.
pub fn probe(path: &Path) -> Result<Probe> {
    super::check_input(path)?;
    let args = args_around(
        &[
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ],
        path,
        &[],
    );
    let json = run_tool("ffprobe", &args, path, "container", |r| {
        let mut s = String::new();
        r.read_to_string(&mut s)?;
        Ok(s)
    })
    .map_err(|e| match e {
        MediaError::Decode { path, reason, .. } => MediaError::Unreadable { path, reason },
        other => other,
    })?;
    parse_probe(path, json)
}

fn parse_probe(path: &Path, json: String) -> Result<Probe> {
    let unreadable = |reason: String| MediaError::Unreadable {
        path: path.to_path_buf(),
        reason,
    };
    let raw: Raw = serde_json::from_str(&json).map_err(|e| unreadable(e.to_string()))?;
    let format = raw
        .format
        .ok_or_else(|| unreadable("no container format".into()))?;
    // A cover picture in an audio file is a "video" stream of one frame; it is not a video.
    let video = raw
        .streams
        .iter()
        .find(|s| {
            s.codec_type.as_deref() == Some("video")
                && s.disposition.as_ref().is_none_or(|d| d.attached_pic == 0)
        })
        .and_then(|s| {
            Some(VideoStream {
                codec: s.codec_name.clone().unwrap_or_default(),
                width: s.width.filter(|w| *w > 0)?,
                height: s.height.filter(|h| *h > 0)?,
                fps: s.avg_frame_rate.as_deref().and_then(parse_rate),
            })
        });
    let audio = raw
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("audio"))
        .map(|s| AudioStream {
            codec: s.codec_name.clone().unwrap_or_default(),
            sample_rate: s
                .sample_rate
                .as_deref()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0),
            channels: s.channels.unwrap_or(0),
        });
    let duration_s = format
        .duration
        .as_deref()
        .and_then(|d| d.parse::<f64>().ok())
        .or_else(|| {
            raw.streams
                .iter()
                .filter_map(|s| s.duration.as_deref()?.parse::<f64>().ok())
                .reduce(f64::max)
        })
        .filter(|d| d.is_finite() && *d > 0.0)
        .ok_or_else(|| unreadable("no duration: the file may be truncated".into()))?;
    Ok(Probe {
        format: format.format_name.unwrap_or_default(),
        duration_s,
        video,
        audio,
        raw_json: json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_streams_and_skips_cover_art() {
        let json = r#"{"streams":[
            {"codec_type":"video","codec_name":"mjpeg","width":300,"height":300,"avg_frame_rate":"0/0","disposition":{"attached_pic":1}},
            {"codec_type":"video","codec_name":"h264","width":640,"height":360,"avg_frame_rate":"30000/1001","disposition":{"attached_pic":0}},
            {"codec_type":"audio","codec_name":"aac","sample_rate":"44100","channels":2}],
            "format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"12.5"}}"#;
        let p = parse_probe(Path::new("x.mp4"), json.into()).unwrap();
        let v = p.video.unwrap();
        assert_eq!((v.codec.as_str(), v.width, v.height), ("h264", 640, 360));
        assert!((v.fps.unwrap() - 29.97).abs() < 0.01);
        assert_eq!(p.audio.unwrap().sample_rate, 44100);
        assert_eq!(p.duration_s, 12.5);
    }

    #[test]
    fn missing_duration_is_an_error_naming_the_file() {
        let json = r#"{"streams":[],"format":{"format_name":"mp4"}}"#;
        let err = parse_probe(Path::new("cut.mp4"), json.into()).unwrap_err();
        assert!(err.to_string().starts_with("cut.mp4: "), "{err}");
        assert!(err.to_string().contains("duration"), "{err}");
    }
}
