//! Exporters: a dataset out as WebDataset tar shards (`00000.tar`, … holding `key.jpg` +
//! `key.txt` + `key.json`, what open_clip and video2dataset read) or as a JSONL table with its
//! images beside it (what `tessera import jsonl` reads back).
//!
//! Every file is written under a temporary name and renamed when complete, so a killed export
//! leaves whole shards and images or none, never a truncated one under a final name.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tempfile::NamedTempFile;

use crate::events::{Event, EventSink};
use crate::store::{ItemRow, Store, StoreError};

/// Items per shard unless asked otherwise (open_clip's and video2dataset's usual size order).
pub const DEFAULT_SHARD_SIZE: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Output { path: PathBuf, reason: String },
    #[error("dataset {dataset:?} has no items{} to export", split.as_ref().map(|s| format!(" in split {s:?}")).unwrap_or_default())]
    Nothing {
        dataset: String,
        split: Option<String>,
    },
    #[error("item #{id}: its image {hash} has type {mime:?}, which has no file extension here")]
    UnknownImageType { id: i64, hash: String, mime: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    Webdataset,
    Jsonl,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExportReport {
    pub dataset: String,
    pub format: ExportFormat,
    pub split: Option<String>,
    /// The shard directory, or the JSONL file.
    pub path: PathBuf,
    pub items: usize,
    /// Distinct images written (for JSONL: including ones already in the images folder).
    pub images: usize,
    /// The shards, or the JSONL file, in order.
    pub files: Vec<PathBuf>,
}

/// The file extension for a stored image's MIME type.
fn image_ext(item: &ItemRow, mime: &str) -> Result<&'static str, ExportError> {
    match mime {
        "image/jpeg" => Ok("jpg"),
        "image/png" => Ok("png"),
        "image/webp" => Ok("webp"),
        "image/svg+xml" => Ok("svg"),
        _ => Err(ExportError::UnknownImageType {
            id: item.id,
            hash: item.image_hash.clone(),
            mime: mime.to_string(),
        }),
    }
}

/// The item as `tessera items --json` shows it, with `dataset` (and whatever `extra` adds).
fn item_json(
    dataset: &str,
    item: &ItemRow,
    extra: &[(&str, serde_json::Value)],
) -> serde_json::Value {
    let mut v = serde_json::to_value(item).expect("an item serialises");
    let obj = v.as_object_mut().expect("an item is a JSON object");
    obj.insert("dataset".into(), dataset.into());
    for (k, x) in extra {
        obj.insert((*k).into(), x.clone());
    }
    v
}

/// A temporary file in `dir`, named so that no reader takes it for a finished one: it does not
/// end in `.tar`, `.jsonl` or an image extension.
fn temp_in(dir: &Path, final_name: &str) -> Result<NamedTempFile, ExportError> {
    let prefix = format!(".{final_name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".partial");
    // Exports are meant to be shared: the usual 0644 (less the umask), not a temporary 0600.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    builder.tempfile_in(dir).map_err(io_err(dir))
}

/// Syncs a finished temporary file and gives it its final name.
fn persist(tmp: NamedTempFile, dest: &Path) -> Result<(), ExportError> {
    tmp.as_file().sync_all().map_err(io_err(tmp.path()))?;
    tmp.persist(dest).map_err(|e| ExportError::Io {
        path: dest.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

struct Shard {
    tar: tar::Builder<BufWriter<NamedTempFile>>,
    path: PathBuf,
    items: usize,
}

impl Shard {
    fn create(dir: &Path, index: usize) -> Result<Self, ExportError> {
        let name = format!("{index:05}.tar");
        Ok(Self {
            tar: tar::Builder::new(BufWriter::new(temp_in(dir, &name)?)),
            path: dir.join(name),
            items: 0,
        })
    }

    fn add(&mut self, name: &str, bytes: &[u8]) -> Result<(), ExportError> {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        // A fixed time: the same dataset exports to byte-identical shards.
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        self.tar
            .append_data(&mut header, name, bytes)
            .map_err(io_err(&self.path))
    }

    fn finish(self) -> Result<(PathBuf, usize), ExportError> {
        let file = self
            .tar
            .into_inner()
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .map_err(io_err(&self.path))?;
        persist(file, &self.path)?;
        Ok((self.path, self.items))
    }
}

/// Writes `dataset` (or its `split`) as tar shards of `shard_size` items into `out`, which is
/// created if needed and must not hold shards already (they would mix with the new ones).
pub fn export_webdataset(
    store: &Store,
    dataset: &str,
    out: &Path,
    split: Option<&str>,
    shard_size: usize,
    sink: Arc<dyn EventSink>,
) -> Result<ExportReport, ExportError> {
    if shard_size == 0 {
        return Err(ExportError::Output {
            path: out.to_path_buf(),
            reason: "--shard-size must be at least 1".into(),
        });
    }
    let total = store.count_items(dataset, split)?;
    if total == 0 {
        return Err(ExportError::Nothing {
            dataset: dataset.to_string(),
            split: split.map(Into::into),
        });
    }
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    let existing = std::fs::read_dir(out)
        .map_err(io_err(out))?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "tar"))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .min();
    if let Some(first) = existing {
        return Err(ExportError::Output {
            path: out.to_path_buf(),
            reason: format!(
                "already holds shards ({first}…); export into an empty or new directory"
            ),
        });
    }
    sink.emit(Event::ExportStarted { items: total });
    let mut files = Vec::new();
    let mut images = std::collections::HashSet::new();
    let mut shard: Option<Shard> = None;
    let mut n = 0usize;
    store.each_item(dataset, split, |item, mime| {
        let ext = image_ext(&item, &mime)?;
        let bytes = store.blobs().get(&item.image_hash)?;
        if shard.is_none() {
            shard = Some(Shard::create(out, files.len())?);
        }
        let current = shard.as_mut().expect("a shard is open");
        // Nine digits: unique across the export, and sorted as the items are.
        let key = format!("{n:09}");
        let json = item_json(dataset, &item, &[("key", key.clone().into())]);
        current.add(&format!("{key}.{ext}"), &bytes)?;
        current.add(&format!("{key}.txt"), item.caption.as_bytes())?;
        current.add(&format!("{key}.json"), json.to_string().as_bytes())?;
        current.items += 1;
        images.insert(item.image_hash);
        n += 1;
        sink.emit(Event::ExportItemDone);
        if current.items == shard_size {
            let (path, items) = shard.take().expect("a shard is open").finish()?;
            sink.emit(Event::ExportFileWritten {
                path: path.clone(),
                items,
            });
            files.push(path);
        }
        Ok::<_, ExportError>(())
    })?;
    if let Some(s) = shard {
        let (path, items) = s.finish()?;
        sink.emit(Event::ExportFileWritten {
            path: path.clone(),
            items,
        });
        files.push(path);
    }
    Ok(ExportReport {
        dataset: dataset.to_string(),
        format: ExportFormat::Webdataset,
        split: split.map(Into::into),
        path: out.to_path_buf(),
        items: n,
        images: images.len(),
        files,
    })
}

/// Writes `dataset` (or its `split`) as one JSON object per line to `out`, with each image in
/// `images/` beside it, named by its hash; rows point at them relatively (`"image"`), so the
/// file and folder move together and `tessera import jsonl OUT` reads them back.
pub fn export_jsonl(
    store: &Store,
    dataset: &str,
    out: &Path,
    split: Option<&str>,
    sink: Arc<dyn EventSink>,
) -> Result<ExportReport, ExportError> {
    let total = store.count_items(dataset, split)?;
    if total == 0 {
        return Err(ExportError::Nothing {
            dataset: dataset.to_string(),
            split: split.map(Into::into),
        });
    }
    let file_name = out
        .file_name()
        .ok_or_else(|| ExportError::Output {
            path: out.to_path_buf(),
            reason: "not a file name".into(),
        })?
        .to_string_lossy()
        .into_owned();
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let images_dir = dir.join("images");
    std::fs::create_dir_all(&images_dir).map_err(io_err(&images_dir))?;
    sink.emit(Event::ExportStarted { items: total });
    let tmp = temp_in(&dir, &file_name)?;
    let mut table = BufWriter::new(tmp);
    let mut images = std::collections::HashSet::new();
    let mut n = 0usize;
    store.each_item(dataset, split, |item, mime| {
        let name = format!("{}.{}", item.image_hash, image_ext(&item, &mime)?);
        let dest = images_dir.join(&name);
        // Content-addressed: a file already there under this name has these bytes.
        if images.insert(item.image_hash.clone()) && !dest.is_file() {
            let mut f = temp_in(&images_dir, &name)?;
            f.write_all(&store.blobs().get(&item.image_hash)?)
                .map_err(io_err(f.path()))?;
            persist(f, &dest)?;
        }
        let row = item_json(
            dataset,
            &item,
            &[("image", format!("images/{name}").into())],
        );
        serde_json::to_writer(&mut table, &row)
            .map_err(std::io::Error::from)
            .and_then(|_| table.write_all(b"\n"))
            .map_err(io_err(out))?;
        n += 1;
        sink.emit(Event::ExportItemDone);
        Ok::<_, ExportError>(())
    })?;
    let tmp = table.into_inner().map_err(|e| ExportError::Io {
        path: out.to_path_buf(),
        source: e.into_error(),
    })?;
    persist(tmp, out)?;
    sink.emit(Event::ExportFileWritten {
        path: out.to_path_buf(),
        items: n,
    });
    Ok(ExportReport {
        dataset: dataset.to_string(),
        format: ExportFormat::Jsonl,
        split: split.map(Into::into),
        path: out.to_path_buf(),
        items: n,
        images: images.len(),
        files: vec![out.to_path_buf()],
    })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::events::{NullSink, RecordingSink};
    use crate::ingest::import::testutil::png;
    use crate::ingest::{import, ImportFormat, ImportOptions};

    /// A store with dataset "d": `n` items, each its own PNG, captions "caption 0"….
    fn dataset(n: u8) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        for i in 0..n {
            std::fs::write(src.join(format!("{i}.png")), png(i)).unwrap();
            std::fs::write(src.join(format!("{i}.txt")), format!("caption {i}")).unwrap();
        }
        let store = Store::open(&dir.path().join("store")).unwrap();
        let opts = ImportOptions::new("d", ImportFormat::Folder, &src);
        assert_eq!(
            import(&store, &opts, Arc::new(NullSink)).unwrap().added,
            n as usize
        );
        (dir, store)
    }

    fn members(shard: &Path) -> Vec<(String, Vec<u8>)> {
        let mut a = tar::Archive::new(std::fs::File::open(shard).unwrap());
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut b = Vec::new();
                e.read_to_end(&mut b).unwrap();
                (e.path().unwrap().display().to_string(), b)
            })
            .collect()
    }

    #[test]
    fn shards_hold_image_caption_and_json_per_key_and_leave_no_temporaries() {
        let (dir, store) = dataset(5);
        let out = dir.path().join("out");
        let sink = Arc::new(RecordingSink::default());
        let r = export_webdataset(&store, "d", &out, None, 2, sink.clone()).unwrap();
        assert_eq!((r.items, r.images, r.files.len()), (5, 5, 3));
        let mut names: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["00000.tar", "00001.tar", "00002.tar"]);
        let first = members(&out.join("00000.tar"));
        let names: Vec<_> = first.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "000000000.png",
                "000000000.txt",
                "000000000.json",
                "000000001.png",
                "000000001.txt",
                "000000001.json"
            ]
        );
        let items = store.items("d", None).unwrap();
        assert_eq!(first[0].1, store.blobs().get(&items[0].image_hash).unwrap());
        assert_eq!(first[1].1, items[0].caption.as_bytes());
        let json: serde_json::Value = serde_json::from_slice(&first[2].1).unwrap();
        assert_eq!(json["key"], "000000000");
        assert_eq!(json["id"], items[0].id);
        assert_eq!(json["dataset"], "d");
        assert_eq!(members(&out.join("00002.tar")).len(), 3, "one item left");
        let written = sink
            .events()
            .iter()
            .filter(|e| matches!(e, Event::ExportFileWritten { .. }))
            .count();
        assert_eq!(written, 3);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // As an ordinary new file would be (0644 less the umask), not 0600.
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            let plain = dir.path().join("plain");
            std::fs::write(&plain, b"").unwrap();
            assert_eq!(mode(&r.files[0]), mode(&plain) & 0o644);
        }
        // a second export into the same directory would mix shards
        let again = export_webdataset(&store, "d", &out, None, 2, Arc::new(NullSink));
        assert!(
            matches!(&again, Err(ExportError::Output { reason, .. }) if reason.contains("00000.tar")),
            "{again:?}"
        );
    }

    #[test]
    fn a_failed_export_leaves_no_shard_under_a_final_name() {
        let (dir, store) = dataset(3);
        // The second item's image is gone from the blob store: the export stops there.
        let items = store.items("d", None).unwrap();
        std::fs::remove_file(store.blobs().path_of(&items[1].image_hash)).unwrap();
        let out = dir.path().join("out");
        let e = export_webdataset(&store, "d", &out, None, 10, Arc::new(NullSink)).unwrap_err();
        assert!(e.to_string().contains(&items[1].image_hash), "{e}");
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    }

    #[test]
    fn empty_selections_and_zero_shard_size_are_refused() {
        let (dir, store) = dataset(1);
        let out = dir.path().join("out");
        let e =
            export_webdataset(&store, "d", &out, Some("test"), 10, Arc::new(NullSink)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "dataset \"d\" has no items in split \"test\" to export"
        );
        assert!(export_webdataset(&store, "d", &out, None, 0, Arc::new(NullSink)).is_err());
        let e = export_jsonl(
            &store,
            "nope",
            &out.join("x.jsonl"),
            None,
            Arc::new(NullSink),
        )
        .unwrap_err();
        assert!(matches!(
            e,
            ExportError::Store(StoreError::NoSuchDataset(_))
        ));
    }
}
