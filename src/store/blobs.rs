//! Content-addressed blob directory: a file's name is the BLAKE3 hash of its bytes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::StoreError;

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

/// Hex BLAKE3 of some bytes: the address of a blob.
pub fn hash_bytes(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Hex BLAKE3 of a file, streamed (videos can be large).
pub fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(fs::File::open(path)?)?;
    Ok(hasher.finalize().to_hex().to_string())
}

impl BlobStore {
    pub fn open(root: PathBuf) -> Result<Self, StoreError> {
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp).map_err(|e| StoreError::io(&root, e))?;
        remove_stale_temporaries(&tmp);
        Ok(Self { root })
    }

    pub fn path_of(&self, hash: &str) -> PathBuf {
        self.root.join(&hash[..2]).join(hash)
    }

    pub fn contains(&self, hash: &str) -> bool {
        self.path_of(hash).is_file()
    }

    /// Writes `bytes` under their hash and returns it. Written to a temporary file, synced and
    /// renamed into place, so a crash never leaves a partial blob under a valid name.
    pub fn put(&self, bytes: &[u8]) -> Result<String, StoreError> {
        let hash = hash_bytes(bytes);
        let dest = self.path_of(&hash);
        if dest.is_file() {
            return Ok(hash);
        }
        let dir = dest.parent().expect("blob path has a parent");
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let tmp_dir = self.root.join("tmp");
        let mut tmp =
            tempfile::NamedTempFile::new_in(&tmp_dir).map_err(|e| StoreError::io(&tmp_dir, e))?;
        tmp.write_all(bytes)
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(|e| StoreError::io(tmp.path(), e))?;
        tmp.persist(&dest)
            .map_err(|e| StoreError::io(&dest, e.error))?;
        Ok(hash)
    }

    pub fn get(&self, hash: &str) -> Result<Vec<u8>, StoreError> {
        let p = self.path_of(hash);
        fs::read(&p).map_err(|e| StoreError::io(&p, e))
    }
}

/// A process killed mid-write leaves its temporary file behind; those older than an hour
/// cannot belong to a live writer.
fn remove_stale_temporaries(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 3600);
        if old {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_is_content_addressed_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path().join("blobs")).unwrap();
        let a = blobs.put(b"hello").unwrap();
        let b = blobs.put(b"hello").unwrap();
        let c = blobs.put(b"world").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, hash_bytes(b"hello"));
        assert_eq!(blobs.get(&a).unwrap(), b"hello");
        assert!(blobs
            .path_of(&a)
            .starts_with(dir.path().join("blobs").join(&a[..2])));
        // no temporary files left behind
        assert_eq!(
            fs::read_dir(dir.path().join("blobs/tmp")).unwrap().count(),
            0
        );
    }
}
