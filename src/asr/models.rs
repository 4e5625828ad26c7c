//! Whisper model files: the official whisper.cpp GGML catalogue with its published SHA-1
//! checksums, header checks, verification by loading, installation, and default resolution.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};

use super::{AsrError, Result};

/// One of the GGML files whisper.cpp publishes, with the checksum from its models/README.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfficialModel {
    pub name: &'static str,
    pub size_mib: u32,
    pub sha1: &'static str,
}

impl OfficialModel {
    pub fn file_name(&self) -> String {
        format!("ggml-{}.bin", self.name)
    }
}

/// Most capable first: when several are installed, the first one found is the default.
pub const OFFICIAL_MODELS: &[OfficialModel] = &[
    OfficialModel {
        name: "large-v3",
        size_mib: 2950,
        sha1: "ad82bf6a9043ceed055076d0fd39f5f186ff8062",
    },
    OfficialModel {
        name: "large-v2",
        size_mib: 2950,
        sha1: "0f4c8e34f21cf1a914c59d8b3ce882345ad349d6",
    },
    OfficialModel {
        name: "large-v1",
        size_mib: 2950,
        sha1: "b1caaf735c4cc1429223d5a74f0f4d0b9b59a299",
    },
    OfficialModel {
        name: "medium.en",
        size_mib: 1500,
        sha1: "8c30f0e44ce9560643ebd10bbe50cd20eafd3723",
    },
    OfficialModel {
        name: "medium",
        size_mib: 1500,
        sha1: "fd9727b6e1217c2f614f9b698455c4ffd82463b4",
    },
    OfficialModel {
        name: "small.en",
        size_mib: 466,
        sha1: "db8a495a91d927739e50b3fc1cc4c6b8f6c2d022",
    },
    OfficialModel {
        name: "small",
        size_mib: 466,
        sha1: "55356645c2b361a969dfd0ef2c5a50d530afd8d5",
    },
    OfficialModel {
        name: "base.en",
        size_mib: 142,
        sha1: "137c40403d78fd54d454da0f9bd998f78703390c",
    },
    OfficialModel {
        name: "base",
        size_mib: 142,
        sha1: "465707469ff3a37a2b9b8d8f89f2f99de7299dac",
    },
    OfficialModel {
        name: "tiny.en",
        size_mib: 75,
        sha1: "c78c86eb1a8faa21b369bcd33207cc90d64ae9df",
    },
    OfficialModel {
        name: "tiny",
        size_mib: 75,
        sha1: "bd577a113a864445d4c299885e0cb97d4ba92b5f",
    },
];

/// Where whisper.cpp's GGML files are published; `TESSERA_WHISPER_MODELS_URL` points elsewhere
/// (a mirror, or a local server in tests).
const DEFAULT_BASE_URL: &str = "https://huggingface.co/ggerganov/whisper.cpp/resolve/main";

/// GGML's magic number, "ggml" read as a little-endian u32.
const GGML_MAGIC: u32 = 0x6767_6d6c;

/// The hyper-parameters at the head of a GGML Whisper file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct GgmlHeader {
    pub n_vocab: i32,
    pub n_audio_ctx: i32,
    pub n_audio_state: i32,
    pub n_audio_head: i32,
    pub n_audio_layer: i32,
    pub n_text_ctx: i32,
    pub n_text_state: i32,
    pub n_text_head: i32,
    pub n_text_layer: i32,
    pub n_mels: i32,
    pub ftype: i32,
}

impl GgmlHeader {
    pub fn multilingual(&self) -> bool {
        self.n_vocab >= 51865
    }

    /// Whisper's size names follow the encoder depth.
    pub fn size_name(&self) -> &'static str {
        match self.n_audio_layer {
            4 => "tiny",
            6 => "base",
            12 => "small",
            24 => "medium",
            32 => "large",
            _ => "unknown",
        }
    }
}

/// Reads and sanity-checks the header, so a wrong file is named as such before whisper.cpp
/// is asked to load it.
pub fn read_header(path: &Path) -> Result<GgmlHeader> {
    let io = |e| AsrError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let not_ggml = |reason: String| AsrError::NotGgml {
        path: path.to_path_buf(),
        reason,
    };
    let mut f = fs::File::open(path).map_err(io)?;
    let mut buf = [0u8; 48];
    let mut n = 0;
    while n < buf.len() {
        let r = f.read(&mut buf[n..]).map_err(io)?;
        if r == 0 {
            break;
        }
        n += r;
    }
    if n < buf.len() {
        return Err(not_ggml(format!("only {n} bytes, too short for a header")));
    }
    let word = |i: usize| i32::from_le_bytes(buf[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
    let magic = word(0) as u32;
    if magic != GGML_MAGIC {
        return Err(not_ggml(format!(
            "starts with {:02x?}, not the GGML magic",
            &buf[..4]
        )));
    }
    let h = GgmlHeader {
        n_vocab: word(1),
        n_audio_ctx: word(2),
        n_audio_state: word(3),
        n_audio_head: word(4),
        n_audio_layer: word(5),
        n_text_ctx: word(6),
        n_text_state: word(7),
        n_text_head: word(8),
        n_text_layer: word(9),
        n_mels: word(10),
        ftype: word(11),
    };
    let plausible = (50_000..=60_000).contains(&h.n_vocab)
        && (1..=64).contains(&h.n_audio_layer)
        && (1..=64).contains(&h.n_text_layer)
        && h.n_audio_head > 0
        && h.n_text_head > 0
        && h.n_audio_state > 0
        && h.n_audio_state % h.n_audio_head == 0
        && matches!(h.n_mels, 80 | 128);
    if !plausible {
        return Err(not_ggml(format!(
            "GGML file but not a Whisper model (vocabulary {}, {} mel bands, {} encoder layers)",
            h.n_vocab, h.n_mels, h.n_audio_layer
        )));
    }
    Ok(h)
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub size_bytes: u64,
    pub header: GgmlHeader,
    pub size_name: &'static str,
    pub multilingual: bool,
    /// The official model whose checksum this file matches, if any.
    pub official: Option<&'static str>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha1_of(path: &Path) -> Result<String> {
    let mut f = fs::File::open(path).map_err(|e| AsrError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let mut h = Sha1::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| AsrError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Checks a file is a GGML Whisper model that whisper.cpp loads.
pub fn verify_model(path: &Path) -> Result<ModelInfo> {
    let header = read_header(path)?;
    super::Transcriber::load(path)?;
    let sha1 = sha1_of(path)?;
    let size_bytes = fs::metadata(path)
        .map_err(|e| AsrError::Io {
            path: path.to_path_buf(),
            source: e,
        })?
        .len();
    Ok(ModelInfo {
        path: path.to_path_buf(),
        size_bytes,
        size_name: header.size_name(),
        multilingual: header.multilingual(),
        official: OFFICIAL_MODELS
            .iter()
            .find(|m| m.sha1 == sha1)
            .map(|m| m.name),
        header,
    })
}

fn official(name: &str) -> Result<&'static OfficialModel> {
    OFFICIAL_MODELS
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| {
            AsrError::UnknownModel(
                name.to_string(),
                OFFICIAL_MODELS
                    .iter()
                    .map(|m| m.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })
}

/// Downloads an official model into `dir`, checking its published SHA-1; the file appears under
/// its final name only once complete and verified, and a cancelled download leaves nothing.
/// Returns its path.
pub fn install_official(
    name: &str,
    dir: &Path,
    sink: &dyn crate::events::EventSink,
    cancel: &crate::events::Cancel,
) -> Result<PathBuf> {
    let model = official(name)?;
    let base =
        std::env::var("TESSERA_WHISPER_MODELS_URL").unwrap_or_else(|_| DEFAULT_BASE_URL.into());
    let url = format!("{}/{}", base.trim_end_matches('/'), model.file_name());
    let download = |reason: String| AsrError::Download {
        url: url.clone(),
        reason,
    };
    fs::create_dir_all(dir).map_err(|e| AsrError::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let dest = dir.join(model.file_name());
    let part = dir.join(format!("{}.part", model.file_name()));
    let response = ureq::get(&url)
        .call()
        .map_err(|e| download(e.to_string()))?;
    let total = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(model.size_mib as u64 * 1024 * 1024);
    let mut body = response.into_body().into_reader();
    let io = |e| AsrError::Io {
        path: part.clone(),
        source: e,
    };
    // Whatever goes wrong below (a dropped connection, a cancel, a bad checksum), the partial
    // file goes: only a complete, verified model is ever kept.
    let fetched = (|| {
        let mut out = fs::File::create(&part).map_err(io)?;
        let mut hasher = Sha1::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut done = 0u64;
        loop {
            if cancel.is_cancelled() {
                return Err(AsrError::Cancelled(model.name.to_string()));
            }
            let n = body.read(&mut buf).map_err(|e| download(e.to_string()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io)?;
            // One event per MiB (and the last): a window need not hear of every 64 KiB.
            let before = done;
            done += n as u64;
            if done >> 20 != before >> 20 || done == total {
                sink.emit(crate::events::Event::Download {
                    name: model.name.to_string(),
                    done,
                    total,
                });
            }
        }
        out.sync_all().map_err(io)?;
        let actual = hex(&hasher.finalize());
        if actual != model.sha1 {
            return Err(AsrError::Checksum {
                path: dest.clone(),
                expected: model.sha1.to_string(),
                actual,
            });
        }
        Ok(())
    })();
    if let Err(e) = fetched {
        let _ = fs::remove_file(&part);
        return Err(e);
    }
    fs::rename(&part, &dest).map_err(|e| AsrError::Io {
        path: dest.clone(),
        source: e,
    })?;
    Ok(dest)
}

/// Installs a model file the user already has (converted, or copied from another machine) under
/// `name`, after verifying it loads.
pub fn install_from_file(name: &str, source: &Path, dir: &Path) -> Result<PathBuf> {
    verify_model(source)?;
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(AsrError::UnknownModel(
            name.to_string(),
            "a plain name such as tiny.en".into(),
        ));
    }
    fs::create_dir_all(dir).map_err(|e| AsrError::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let dest = dir.join(format!("ggml-{name}.bin"));
    let part = dir.join(format!("ggml-{name}.bin.part"));
    fs::copy(source, &part).map_err(|e| AsrError::Io {
        path: part.clone(),
        source: e,
    })?;
    fs::rename(&part, &dest).map_err(|e| AsrError::Io {
        path: dest.clone(),
        source: e,
    })?;
    Ok(dest)
}

/// The model to use: `explicit` (from --model or TESSERA_WHISPER_MODEL), else the most capable
/// installed in `models_dir`.
pub fn resolve_model(explicit: Option<&Path>, models_dir: &Path) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    OFFICIAL_MODELS
        .iter()
        .map(|m| models_dir.join(m.file_name()))
        .find(|p| p.is_file())
        .ok_or_else(|| AsrError::NoModel {
            dir: models_dir.to_path_buf(),
        })
}

/// Installed model files in `dir`: `ggml-*.bin`, sorted by name.
pub fn installed_models(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("ggml-") && n.ends_with(".bin"))
        })
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_bytes(words: [i32; 12]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn header_of_a_tiny_model_parses() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.bin");
        let words = [
            GGML_MAGIC as i32,
            51864,
            1500,
            384,
            6,
            4,
            448,
            384,
            6,
            4,
            80,
            1,
        ];
        fs::write(&p, header_bytes(words)).unwrap();
        let h = read_header(&p).unwrap();
        assert_eq!(h.size_name(), "tiny");
        assert!(!h.multilingual());
    }

    #[test]
    fn wrong_files_are_named_and_explained() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.bin");
        fs::write(&text, "this is a text file, not a model at all, really not").unwrap();
        let e = read_header(&text).unwrap_err().to_string();
        assert!(
            e.contains("notes.bin") && e.contains("not a GGML Whisper model"),
            "{e}"
        );

        let short = dir.path().join("short.bin");
        fs::write(&short, b"lmgg").unwrap();
        assert!(read_header(&short)
            .unwrap_err()
            .to_string()
            .contains("too short"));

        // a GGML file of another kind (a language model's vocabulary size)
        let llm = dir.path().join("llm.bin");
        let words = [GGML_MAGIC as i32, 32000, 1, 1, 1, 1, 1, 1, 1, 1, 80, 1];
        fs::write(&llm, header_bytes(words)).unwrap();
        let e = read_header(&llm).unwrap_err().to_string();
        assert!(e.contains("not a Whisper model"), "{e}");
    }

    #[test]
    fn resolution_prefers_explicit_then_most_capable_installed() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            resolve_model(None, dir.path()),
            Err(AsrError::NoModel { .. })
        ));
        fs::write(dir.path().join("ggml-tiny.en.bin"), b"x").unwrap();
        fs::write(dir.path().join("ggml-base.en.bin"), b"x").unwrap();
        assert_eq!(
            resolve_model(None, dir.path()).unwrap(),
            dir.path().join("ggml-base.en.bin")
        );
        assert_eq!(
            resolve_model(Some(Path::new("/m.bin")), dir.path()).unwrap(),
            PathBuf::from("/m.bin")
        );
        assert_eq!(installed_models(dir.path()).len(), 2);
    }

    #[test]
    fn unknown_official_model_lists_the_known_ones() {
        let e = official("huge").unwrap_err().to_string();
        assert!(e.contains("tiny.en") && e.contains("large-v3"), "{e}");
    }
}
