//! A folder (searched recursively) of images with sidecar captions: `x.jpg` + `x.txt`, or
//! `x.json` with a `caption` field (its other fields are kept as the item's meta); an SVG
//! without a sidecar is captioned from its own metadata (Open Clip Art's title, description,
//! keywords).

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{is_image_ext, utf8_caption, Chunk, ImportError, ItemError};

pub(crate) fn scan(root: &Path) -> Result<Chunk, ImportError> {
    if !root.is_dir() {
        return Err(ImportError::Input {
            path: root.to_path_buf(),
            reason: "not a directory (the folder format takes a directory of images)".into(),
        });
    }
    let mut chunk = Chunk::new(root);
    let mut found: Vec<PathBuf> = Vec::new();
    for entry in walkdir::WalkDir::new(root) {
        match entry {
            Ok(e)
                if e.file_type().is_file()
                    && e.path()
                        .extension()
                        .and_then(|x| x.to_str())
                        .is_some_and(is_image_ext) =>
            {
                found.push(e.into_path())
            }
            Ok(_) => {}
            Err(e) => {
                let path = e.path().unwrap_or(root).display().to_string();
                chunk
                    .problems
                    .push(ItemError::file(path, format!("cannot read: {e}")));
            }
        }
    }
    found.sort();
    // Sidecars (and SVG metadata) are read on every core; the order stays the folder's.
    let captions: Vec<_> = found.par_iter().map(|image| caption_for(image)).collect();
    for (image, caption) in found.into_iter().zip(captions) {
        match caption {
            Ok((caption, meta)) => {
                let i = chunk.image_file(image);
                chunk.record(i, &caption, None, meta);
            }
            Err(e) => chunk.problems.push(e),
        }
    }
    Ok(chunk)
}

type Meta = serde_json::Map<String, serde_json::Value>;

fn caption_for(image: &Path) -> Result<(String, Meta), ItemError> {
    let txt = image.with_extension("txt");
    let json = image.with_extension("json");
    if txt.is_file() {
        let bytes = std::fs::read(&txt).map_err(|e| ItemError::io(&txt, e))?;
        let caption = utf8_caption(bytes, &txt.display().to_string())?;
        return non_empty(caption, &txt).map(|c| (c, Meta::new()));
    }
    if json.is_file() {
        let bytes = std::fs::read(&json).map_err(|e| ItemError::io(&json, e))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ItemError::line(&json, e.line() as u64, format!("malformed JSON: {e}")))?;
        let serde_json::Value::Object(mut meta) = value else {
            return Err(ItemError::file(json.display(), "not a JSON object"));
        };
        let Some(serde_json::Value::String(caption)) = meta.remove("caption") else {
            return Err(ItemError::file(
                json.display(),
                "no \"caption\" field (a string)",
            ));
        };
        return non_empty(caption, &json).map(|c| (c, meta));
    }
    // Clip art carries its caption inside: title, description and keywords.
    if image
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"))
    {
        let bytes = std::fs::read(image).map_err(|e| ItemError::io(image, e))?;
        if let Some(m) = crate::media::svg_metadata(&bytes) {
            let mut meta = Meta::new();
            meta.insert("title".into(), m.title.clone().into());
            meta.insert("keywords".into(), m.keywords.clone().into());
            return Ok((m.caption(), meta));
        }
    }
    Err(ItemError::file(
        image.display(),
        format!(
            "no caption beside the image (expected {} or {})",
            txt.file_name().unwrap_or_default().to_string_lossy(),
            json.file_name().unwrap_or_default().to_string_lossy()
        ),
    ))
}

fn non_empty(caption: String, file: &Path) -> Result<String, ItemError> {
    if caption.trim().is_empty() {
        Err(ItemError::file(file.display(), "caption is empty"))
    } else {
        Ok(caption)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::png;
    use super::*;

    #[test]
    fn pairs_images_with_txt_and_json_sidecars_recursively() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("a.png"), png(1)).unwrap();
        std::fs::write(d.join("a.txt"), " a cat \n").unwrap();
        std::fs::write(d.join("sub/b.png"), png(2)).unwrap();
        std::fs::write(d.join("sub/b.json"), r#"{"caption": "a dog", "url": "x"}"#).unwrap();
        std::fs::write(d.join("c.png"), png(3)).unwrap();
        let chunk = scan(d).unwrap();
        let captions: Vec<_> = chunk.records.iter().map(|r| r.caption.as_str()).collect();
        assert_eq!(captions, ["a cat", "a dog"]);
        assert_eq!(chunk.records[1].meta["url"], "x");
        assert_eq!(chunk.problems.len(), 1);
        assert!(chunk.problems[0].to_string().contains("c.png"));
    }
}
