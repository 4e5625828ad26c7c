//! WebDataset tar shards: members `key.jpg|png|webp` + `key.txt` [+ `key.json`]. Shards are
//! read as streams, never extracted; unsafe or ambiguous members are refused by name.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{is_image_ext, utf8_caption, Chunk, ImportError, ItemError, MAX_IMAGE_BYTES};

/// The shards to read: PATH itself, or the `.tar` files under it (sorted).
pub(crate) fn shards(root: &Path) -> Result<Vec<PathBuf>, ImportError> {
    if !root.is_dir() {
        return Ok(vec![root.to_path_buf()]);
    }
    let mut found: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("tar")))
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(ImportError::Input {
            path: root.to_path_buf(),
            reason: "no .tar shards in this directory".into(),
        });
    }
    Ok(found)
}

#[derive(Default)]
struct Sample {
    image: Option<(String, Vec<u8>)>,
    txt: Option<(String, Vec<u8>)>,
    json: Option<(String, Vec<u8>)>,
}

/// Splits `dir/key.ext` at the first dot of the file name, as WebDataset does.
fn key_and_ext(member: &str) -> Option<(String, String)> {
    let (dir, base) = member.rsplit_once('/').unwrap_or(("", member));
    let (stem, ext) = base.split_once('.')?;
    let key = if dir.is_empty() {
        stem.to_string()
    } else {
        format!("{dir}/{stem}")
    };
    Some((key, ext.to_ascii_lowercase()))
}

pub(crate) fn read_shard(shard: &Path) -> Chunk {
    let mut chunk = Chunk::new(shard);
    let name = shard.display().to_string();
    let member_err = |member: &str, reason: &str| {
        ItemError::file(format!("{name}:{member}"), reason.to_string())
    };
    let file = match std::fs::File::open(shard) {
        Ok(f) => f,
        Err(e) => {
            chunk.problems.push(ItemError::io(shard, e));
            return chunk;
        }
    };
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => {
            chunk
                .problems
                .push(ItemError::file(&name, format!("not a tar file: {e}")));
            return chunk;
        }
    };
    let mut samples: BTreeMap<String, Sample> = BTreeMap::new();
    let mut bad_keys: HashSet<String> = HashSet::new();
    let mut members = 0usize;
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                chunk.problems.push(ItemError::file(
                    &name,
                    format!("corrupt or truncated tar after {members} members: {e}"),
                ));
                break;
            }
        };
        members += 1;
        let member = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if member.starts_with('/') || member.split('/').any(|c| c == "..") {
            chunk.problems.push(member_err(
                &member,
                "unsafe member path (absolute or containing ..)",
            ));
            continue;
        }
        if kind.is_symlink() || kind.is_hard_link() {
            chunk
                .problems
                .push(member_err(&member, "links are not allowed in a shard"));
            continue;
        }
        if !kind.is_file() {
            chunk
                .problems
                .push(member_err(&member, "not a regular file"));
            continue;
        }
        let Some((key, ext)) = key_and_ext(&member) else {
            continue;
        };
        let slot = match ext.as_str() {
            "txt" => 1,
            "json" => 2,
            e if is_image_ext(e) => 0,
            // Other members (class labels, embeddings) are not ours to import.
            _ => continue,
        };
        if entry.size() > MAX_IMAGE_BYTES {
            chunk.problems.push(member_err(
                &member,
                &format!(
                    "member is {} bytes, over the {MAX_IMAGE_BYTES} byte limit",
                    entry.size()
                ),
            ));
            bad_keys.insert(key);
            continue;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        if let Err(e) = entry.read_to_end(&mut bytes) {
            chunk
                .problems
                .push(member_err(&member, &format!("truncated member: {e}")));
            break;
        }
        let sample = samples.entry(key.clone()).or_default();
        let place = match slot {
            0 => &mut sample.image,
            1 => &mut sample.txt,
            _ => &mut sample.json,
        };
        if let Some((first, _)) = place {
            chunk.problems.push(member_err(
                &member,
                &format!("duplicate key {key:?} (already has {first}); the sample is skipped"),
            ));
            bad_keys.insert(key);
            continue;
        }
        *place = Some((member, bytes));
    }
    if members == 0 && chunk.problems.is_empty() {
        chunk
            .problems
            .push(ItemError::file(&name, "empty shard (no members)"));
    }
    for (key, sample) in samples {
        if bad_keys.contains(&key) {
            continue;
        }
        match sample {
            Sample {
                image: Some((image, bytes)),
                txt: Some((txt, text)),
                json,
            } => {
                let caption = match utf8_caption(text, &format!("{name}:{txt}")) {
                    Ok(c) if !c.trim().is_empty() => c,
                    Ok(_) => {
                        chunk.problems.push(member_err(&txt, "caption is empty"));
                        continue;
                    }
                    Err(e) => {
                        chunk.problems.push(e);
                        continue;
                    }
                };
                let mut meta = serde_json::Map::new();
                if let Some((member, j)) = json {
                    match serde_json::from_slice::<serde_json::Value>(&j) {
                        Ok(serde_json::Value::Object(m)) => meta = m,
                        Ok(_) => {
                            chunk
                                .problems
                                .push(member_err(&member, "not a JSON object"));
                            continue;
                        }
                        Err(e) => {
                            chunk.problems.push(ItemError::Line {
                                file: format!("{name}:{member}"),
                                line: e.line() as u64,
                                reason: format!("malformed JSON: {e}"),
                            });
                            continue;
                        }
                    }
                }
                let i = chunk.image_bytes(format!("{name}:{image}"), bytes);
                chunk.record(i, &caption, None, meta);
            }
            Sample {
                image: Some((image, _)),
                txt: None,
                ..
            } => chunk.problems.push(member_err(
                &image,
                &format!("no caption ({key}.txt) for this image"),
            )),
            Sample {
                txt: Some((txt, _)),
                image: None,
                ..
            } => chunk
                .problems
                .push(member_err(&txt, &format!("no image for key {key:?}"))),
            _ => {}
        }
    }
    chunk
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_at_the_first_dot() {
        assert_eq!(
            key_and_ext("d/000.seg.JPG"),
            Some(("d/000".into(), "seg.jpg".into()))
        );
        assert_eq!(key_and_ext("a.txt"), Some(("a".into(), "txt".into())));
        assert_eq!(key_and_ext("README"), None);
    }

    #[test]
    fn empty_shard_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let shard = dir.path().join("00000.tar");
        let builder = tar::Builder::new(std::fs::File::create(&shard).unwrap());
        builder.into_inner().unwrap();
        let chunk = read_shard(&shard);
        assert!(chunk.records.is_empty());
        assert!(chunk.problems[0]
            .to_string()
            .contains("00000.tar: empty shard"));
    }
}
