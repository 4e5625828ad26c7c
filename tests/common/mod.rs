//! Shared helpers for the end-to-end tests: the real assets fetched by
//! `scripts/fetch-assets.sh`, and the real `tessera` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;

pub fn assets() -> PathBuf {
    let dir = std::env::var_os("TESSERA_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/tessera/assets")
        });
    assert!(
        dir.join("composed/manifest.json").is_file(),
        "test assets missing in {}: run scripts/fetch-assets.sh (the README's test command does)",
        dir.display()
    );
    dir
}

pub fn model() -> PathBuf {
    assets().join("whisper/ggml-tiny.en.bin")
}

#[derive(Debug, Deserialize)]
pub struct SpeechSpan {
    pub start: f64,
    pub end: f64,
    pub text: String,
    pub source: String,
}

#[derive(Debug, Deserialize)]
pub struct Composed {
    pub duration: f64,
    pub cuts: Vec<f64>,
    pub speech: Vec<SpeechSpan>,
    pub files: Vec<String>,
    #[serde(default)]
    pub still: Option<(f64, f64)>,
}

pub fn composed(name: &str) -> Composed {
    let text = std::fs::read_to_string(assets().join("composed/manifest.json")).unwrap();
    let mut all: std::collections::HashMap<String, Composed> = serde_json::from_str(&text).unwrap();
    all.remove(name).expect("composed video in manifest")
}

pub fn composed_path(file: &str) -> PathBuf {
    assets().join("composed").join(file)
}

/// `tessera --data-dir DIR args…` with the test model.
pub fn tessera(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tessera"));
    c.arg("--data-dir")
        .arg(data_dir)
        .env("TESSERA_WHISPER_MODEL", model())
        .env_remove("TESSERA_HOME")
        .env_remove("RUST_LOG");
    c
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run tessera");
    assert!(
        out.status.success(),
        "{:?} failed ({}):\n{}",
        cmd,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[derive(Debug, Deserialize, Clone)]
pub struct Item {
    pub id: i64,
    pub caption: String,
    pub context_before: String,
    pub context_after: String,
    pub source_path: String,
    pub start_s: Option<f64>,
    pub end_s: Option<f64>,
    pub frame_s: Option<f64>,
    pub image_hash: String,
    pub no_speech: bool,
}

pub fn items(data_dir: &Path, dataset: &str) -> Vec<Item> {
    let out = run_ok(tessera(data_dir).args(["items", dataset, "--json"]));
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn ingest(data_dir: &Path, dataset: &str, files: &[PathBuf]) -> Output {
    let mut c = tessera(data_dir);
    c.args(["ingest", "--dataset", dataset, "--json"])
        .args(files);
    c.output().expect("run tessera ingest")
}

/// The JPEG of a stored blob, decoded.
pub fn blob_image(data_dir: &Path, hash: &str) -> image::DynamicImage {
    let p = data_dir.join("blobs").join(&hash[..2]).join(hash);
    let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(&bytes[..2], [0xff, 0xd8], "keyframes are stored as JPEG");
    image::load_from_memory(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A 64×48 PNG whose pixels depend on `seed` (different seeds, different blobs).
pub fn png_bytes(seed: u8) -> Vec<u8> {
    encoded(seed, image::ImageFormat::Png)
}

/// A 64×48 JPEG whose pixels depend on `seed`.
pub fn jpeg_bytes(seed: u8) -> Vec<u8> {
    encoded(seed, image::ImageFormat::Jpeg)
}

fn encoded(seed: u8, format: image::ImageFormat) -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([seed, x as u8 * 4, y as u8 * 5]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// Writes `bytes` to `path`, creating its folders; returns the path.
pub fn write(path: &Path, bytes: impl AsRef<[u8]>) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

/// `tessera import FORMAT PATH --dataset NAME --json extra…`: the output and its JSON report.
pub fn import(
    data: &Path,
    format: &str,
    path: &Path,
    dataset: &str,
    extra: &[&str],
) -> (Output, serde_json::Value) {
    let out = tessera(data)
        .args(["import", format])
        .arg(path)
        .args(["--dataset", dataset, "--json"])
        .args(extra)
        .output()
        .expect("run tessera import");
    let report = json(&out);
    (out, report)
}

/// [`import`] that must succeed: its JSON report.
pub fn import_ok(data: &Path, format: &str, path: &Path, dataset: &str) -> serde_json::Value {
    let (out, report) = import(data, format, path, dataset, &[]);
    assert!(
        out.status.success(),
        "import {format} {} failed:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    report
}
