//! COCO captions (`captions_*.json`: `images` + `annotations`, one item per caption) and the
//! Karpathy split file (`dataset_coco.json`: `images` with `sentences` and a `split`).

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::{Chunk, ImportError, ImportOptions, ItemError};

pub(crate) fn scan(file: &Path, opts: &ImportOptions) -> Result<Chunk, ImportError> {
    let bytes = std::fs::read(file).map_err(|source| ImportError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let mut chunk = Chunk::new(file);
    let doc: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            chunk.problems.push(ItemError::line(
                file,
                e.line() as u64,
                format!("malformed JSON: {e}"),
            ));
            return Ok(chunk);
        }
    };
    let images = doc.get("images").and_then(Value::as_array);
    let karpathy = images
        .and_then(|i| i.first())
        .is_some_and(|i| i.get("sentences").is_some());
    match (images, doc.get("annotations").and_then(Value::as_array)) {
        (Some(images), Some(annotations)) => {
            let dir = opts.images_dir.as_ref().ok_or_else(|| ImportError::Input {
                path: file.to_path_buf(),
                reason: "a COCO captions file needs --images DIR (where its images are)".into(),
            })?;
            captions(file, dir, images, annotations, &mut chunk);
        }
        (Some(images), None) if karpathy => {
            let dir = match &opts.images_dir {
                Some(d) => d.clone(),
                None => file.parent().unwrap_or(Path::new(".")).to_path_buf(),
            };
            karpathy_split(file, &dir, images, &mut chunk);
        }
        _ => chunk.problems.push(ItemError::file(
            file.display(),
            "neither a COCO captions file (images + annotations) nor a Karpathy split file \
             (images with sentences)",
        )),
    }
    Ok(chunk)
}

fn captions(file: &Path, dir: &Path, images: &[Value], annotations: &[Value], chunk: &mut Chunk) {
    let mut by_id = std::collections::HashMap::new();
    for (n, im) in images.iter().enumerate() {
        match (
            im.get("id").and_then(Value::as_i64),
            im.get("file_name").and_then(Value::as_str),
        ) {
            (Some(id), Some(name)) => {
                by_id.insert(id, name.to_string());
            }
            _ => chunk.problems.push(ItemError::file(
                file.display(),
                format!("images[{n}] has no id or file_name"),
            )),
        }
    }
    for (n, a) in annotations.iter().enumerate() {
        let image_id = a.get("image_id").and_then(Value::as_i64);
        let caption = a.get("caption").and_then(Value::as_str);
        let (Some(image_id), Some(caption)) = (image_id, caption) else {
            chunk.problems.push(ItemError::file(
                file.display(),
                format!("annotations[{n}] has no image_id or caption"),
            ));
            continue;
        };
        let Some(name) = by_id.get(&image_id) else {
            chunk.problems.push(ItemError::file(
                file.display(),
                format!("annotations[{n}] refers to image_id {image_id}, which is not in images"),
            ));
            continue;
        };
        let mut meta = Map::new();
        meta.insert("coco_image_id".into(), json!(image_id));
        if let Some(id) = a.get("id") {
            meta.insert("coco_annotation_id".into(), id.clone());
        }
        let i = chunk.image_file(dir.join(name));
        chunk.record(i, caption, None, meta);
    }
}

fn karpathy_split(file: &Path, dir: &Path, images: &[Value], chunk: &mut Chunk) {
    for (n, im) in images.iter().enumerate() {
        let Some(name) = im.get("filename").and_then(Value::as_str) else {
            chunk.problems.push(ItemError::file(
                file.display(),
                format!("images[{n}] has no filename"),
            ));
            continue;
        };
        // `filepath` (e.g. val2014) is under the images directory, unless the user pointed
        // --images at that sub-folder already.
        let mut path: PathBuf = match im.get("filepath").and_then(Value::as_str) {
            Some(sub) => dir.join(sub).join(name),
            None => dir.join(name),
        };
        if !path.exists() && dir.join(name).exists() {
            path = dir.join(name);
        }
        let split = im.get("split").and_then(Value::as_str).map(str::to_string);
        let sentences = im.get("sentences").and_then(Value::as_array);
        let Some(sentences) = sentences.filter(|s| !s.is_empty()) else {
            chunk.problems.push(ItemError::file(
                file.display(),
                format!("images[{n}] ({name}) has no sentences"),
            ));
            continue;
        };
        let i = chunk.image_file(path);
        for s in sentences {
            let Some(raw) = s.get("raw").and_then(Value::as_str) else {
                chunk.problems.push(ItemError::file(
                    file.display(),
                    format!("images[{n}] ({name}) has a sentence without raw text"),
                ));
                continue;
            };
            let mut meta = Map::new();
            for key in ["cocoid", "imgid"] {
                if let Some(v) = im.get(key) {
                    meta.insert(key.into(), v.clone());
                }
            }
            if let Some(v) = s.get("sentid") {
                meta.insert("sentid".into(), v.clone());
            }
            chunk.record(i, raw, split.clone(), meta);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ImportFormat;
    use super::*;

    #[test]
    fn captions_file_gives_one_item_per_caption() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("captions_val2014.json");
        let doc = json!({
            "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
            "annotations": [
                {"id": 10, "image_id": 1, "caption": "a cat"},
                {"id": 11, "image_id": 1, "caption": "a small cat"},
                {"id": 12, "image_id": 2, "caption": "a dog"},
                {"id": 13, "image_id": 9, "caption": "nobody"}
            ]
        });
        std::fs::write(&f, doc.to_string()).unwrap();
        let mut opts = ImportOptions::new("d", ImportFormat::Coco, &f);
        assert!(matches!(scan(&f, &opts), Err(ImportError::Input { .. })));
        opts.images_dir = Some(dir.path().join("imgs"));
        let chunk = scan(&f, &opts).unwrap();
        assert_eq!((chunk.records.len(), chunk.images.len()), (3, 2));
        assert_eq!(chunk.records[1].meta["coco_annotation_id"], 11);
        assert!(chunk.problems[0].to_string().contains("image_id 9"));
    }

    #[test]
    fn karpathy_keeps_the_split() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("dataset_coco.json");
        let doc = json!({"images": [
            {"filepath": "val2014", "filename": "a.jpg", "split": "test", "cocoid": 5,
             "sentences": [{"raw": "A cat.", "sentid": 1}, {"raw": "A cat sitting.", "sentid": 2}]}
        ]});
        std::fs::write(&f, doc.to_string()).unwrap();
        let chunk = scan(&f, &ImportOptions::new("d", ImportFormat::Coco, &f)).unwrap();
        assert_eq!(chunk.records.len(), 2);
        assert_eq!(chunk.records[0].split.as_deref(), Some("test"));
        assert!(
            matches!(&chunk.images[0], super::super::ImageSource::File(p)
            if p == &dir.path().join("val2014/a.jpg"))
        );
    }
}
