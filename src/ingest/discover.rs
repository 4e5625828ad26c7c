//! Turns the paths a user gave (files and folders) into the list of videos to ingest.

use std::path::{Path, PathBuf};

/// Extensions treated as video when walking a folder. Files named explicitly are always tried,
/// whatever their name, so a mislabelled file gets a decoder's verdict rather than silence.
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "mts", "m2ts", "ts", "3gp", "mpg", "mpeg", "wmv",
    "flv", "ogv",
];

fn is_video_name(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// What the inputs expand to: candidate files in a stable order, and paths that could not be
/// read at all (with the reason).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Discovered {
    pub files: Vec<PathBuf>,
    pub rejected: Vec<(PathBuf, String)>,
}

pub fn discover(inputs: &[PathBuf]) -> Discovered {
    let mut out = Discovered::default();
    for input in inputs {
        match std::fs::metadata(input) {
            Err(e) => out.rejected.push((input.clone(), e.to_string())),
            Ok(m) if m.is_dir() => {
                let mut found = Vec::new();
                for entry in walkdir::WalkDir::new(input).follow_links(true) {
                    match entry {
                        Ok(e) if e.file_type().is_file() && is_video_name(e.path()) => {
                            found.push(e.into_path())
                        }
                        Ok(_) => {}
                        Err(e) => {
                            let path = e.path().unwrap_or(input).to_path_buf();
                            let reason = e
                                .io_error()
                                .map(|io| io.to_string())
                                .unwrap_or_else(|| e.to_string());
                            out.rejected
                                .push((path, format!("cannot read directory: {reason}")));
                        }
                    }
                }
                found.sort();
                out.files.extend(found);
            }
            Ok(_) => out.files.push(input.clone()),
        }
    }
    // The same file named twice (or found through two folders) is ingested once.
    let mut seen = std::collections::HashSet::new();
    out.files
        .retain(|f| seen.insert(f.canonicalize().unwrap_or_else(|_| f.clone())));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn walks_folders_for_videos_and_keeps_explicit_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("clips/sub")).unwrap();
        fs::write(d.join("clips/b.MOV"), b"x").unwrap();
        fs::write(d.join("clips/sub/a.webm"), b"x").unwrap();
        fs::write(d.join("clips/notes.txt"), b"x").unwrap();
        fs::write(d.join("weird.bin"), b"x").unwrap();
        let got = discover(&[
            d.join("clips"),
            d.join("weird.bin"),
            d.join("missing.mp4"),
            d.join("clips/b.MOV"),
        ]);
        assert_eq!(
            got.files,
            vec![
                d.join("clips/b.MOV"),
                d.join("clips/sub/a.webm"),
                d.join("weird.bin")
            ]
        );
        assert_eq!(got.rejected.len(), 1);
        assert_eq!(got.rejected[0].0, d.join("missing.mp4"));
    }
}
