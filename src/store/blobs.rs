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
        fs::create_dir_all(&root).map_err(|e| StoreError::io(&root, e))?;
        Ok(Self { root })
    }

    pub fn path_of(&self, hash: &str) -> PathBuf {
        self.root.join(&hash[..2]).join(hash)
    }

    pub fn contains(&self, hash: &str) -> bool {
        self.path_of(hash).is_file()
    }

    /// Writes `bytes` under their hash and returns it. Written to a temporary file and renamed
    /// into place, so a killed process never leaves a partial blob under a valid name.
    pub fn put(&self, bytes: &[u8]) -> Result<String, StoreError> {
        let hash = hash_bytes(bytes);
        let dest = self.path_of(&hash);
        if dest.is_file() {
            return Ok(hash);
        }
        let dir = dest.parent().expect("blob path has a parent");
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        // The temporary file sits beside its destination: a rename within one directory takes
        // no filesystem-wide lock, so parallel writers do not queue. A killed writer leaves a
        // hidden `.part-*` file, never a blob under a valid name.
        let mut tmp = tempfile::Builder::new()
            .prefix(".part-")
            .tempfile_in(dir)
            .map_err(|e| StoreError::io(dir, e))?;
        // No fsync per blob: it made imports ten times slower than decoding. A killed process
        // loses nothing the kernel has; after a power cut a damaged blob can be caught by its
        // name, which is the hash of what it must contain.
        tmp.write_all(bytes)
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
        // no temporary files left behind: only the blob in its shard directory
        let shard = blobs.path_of(&a).parent().unwrap().to_path_buf();
        assert_eq!(fs::read_dir(shard).unwrap().count(), 1);
    }
}
