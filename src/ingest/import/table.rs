//! JSONL, CSV and TSV tables: one row per item, an image path (relative to the table's
//! directory) and a caption in configurable columns; other columns are kept as meta.

use std::path::Path;

use serde_json::{Map, Value};

use super::{Chunk, ImportError, ImportOptions, ItemError};

fn base_dir(file: &Path) -> &Path {
    file.parent().unwrap_or(Path::new("."))
}

fn read(file: &Path) -> Result<Vec<u8>, ImportError> {
    std::fs::read(file).map_err(|source| ImportError::Io {
        path: file.to_path_buf(),
        source,
    })
}

pub(crate) fn scan_jsonl(file: &Path, opts: &ImportOptions) -> Result<Chunk, ImportError> {
    let bytes = read(file)?;
    let mut chunk = Chunk::new(file);
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i as u64 + 1;
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match jsonl_row(raw, opts) {
            Ok((image, caption, mut meta)) => {
                meta.insert(
                    "annotations".into(),
                    format!("{}:{line}", file.display()).into(),
                );
                let i = chunk.image_file(base_dir(file).join(image));
                let split = take_split(&mut meta);
                chunk.record(i, &caption, split, meta);
            }
            Err(reason) => chunk.problems.push(ItemError::line(file, line, reason)),
        }
    }
    Ok(chunk)
}

/// A `split` field (a non-empty string, as `tessera export jsonl` writes it) becomes the item's
/// split rather than meta, so an exported dataset comes back with its splits.
fn take_split(meta: &mut Map<String, Value>) -> Option<String> {
    match meta.get("split") {
        Some(Value::String(s)) if !s.trim().is_empty() => {
            let split = s.trim().to_string();
            meta.remove("split");
            Some(split)
        }
        _ => None,
    }
}

fn jsonl_row(
    raw: &[u8],
    opts: &ImportOptions,
) -> Result<(String, String, Map<String, Value>), String> {
    let text = std::str::from_utf8(raw).map_err(|_| "line is not UTF-8 (caption is not UTF-8)")?;
    let value: Value = serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
    let Value::Object(mut row) = value else {
        return Err("not a JSON object".into());
    };
    let mut field = |name: &str| match row.remove(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) => Err(format!("field {name:?} is empty")),
        Some(_) => Err(format!("field {name:?} is not a string")),
        None => Err(format!("no field {name:?}")),
    };
    let image = field(&opts.image_col)?;
    let caption = field(&opts.caption_col)?;
    Ok((image, caption, row))
}

pub(crate) fn scan_csv(
    file: &Path,
    opts: &ImportOptions,
    delimiter: u8,
) -> Result<Chunk, ImportError> {
    let bytes = read(file)?;
    let mut chunk = Chunk::new(file);
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        // TSV has no quoting; a stray quote in a caption is text.
        .quoting(delimiter != b'\t')
        // Short rows are reported by name and line rather than failing the whole file.
        .flexible(true)
        .from_reader(bytes.as_slice());
    let headers: Vec<String> = match rdr.byte_headers() {
        Ok(h) => h
            .iter()
            .map(|c| String::from_utf8_lossy(c).trim().to_string())
            .collect(),
        Err(e) => {
            chunk
                .problems
                .push(ItemError::line(file, 1, format!("unreadable header: {e}")));
            return Ok(chunk);
        }
    };
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(image_col), Some(caption_col)) = (col(&opts.image_col), col(&opts.caption_col))
    else {
        let missing = if col(&opts.image_col).is_none() {
            &opts.image_col
        } else {
            &opts.caption_col
        };
        chunk.problems.push(ItemError::line(
            file,
            1,
            format!(
                "no column {missing:?} in the header (columns: {})",
                headers.join(", ")
            ),
        ));
        return Ok(chunk);
    };
    for rec in rdr.byte_records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                chunk
                    .problems
                    .push(ItemError::line(file, line, format!("unreadable row: {e}")));
                // After an I/O or syntax error the reader's position is unreliable.
                break;
            }
        };
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let field = |i: usize, name: &str| -> Result<String, String> {
            let raw = rec
                .get(i)
                .ok_or_else(|| format!("row has no {name:?} column (only {} fields)", rec.len()))?;
            let text = std::str::from_utf8(raw)
                .map_err(|_| format!("{name} is not UTF-8"))?
                .trim();
            if text.is_empty() {
                return Err(format!("{name} is empty"));
            }
            Ok(text.to_string())
        };
        let row = field(image_col, "image")
            .and_then(|image| field(caption_col, "caption").map(|c| (image, c)));
        match row {
            Ok((image, caption)) => {
                let mut meta = Map::new();
                for (i, h) in headers.iter().enumerate() {
                    if i != image_col && i != caption_col {
                        if let Some(v) = rec.get(i) {
                            meta.insert(h.clone(), String::from_utf8_lossy(v).into_owned().into());
                        }
                    }
                }
                meta.insert(
                    "annotations".into(),
                    format!("{}:{line}", file.display()).into(),
                );
                let i = chunk.image_file(base_dir(file).join(image));
                let split = take_split(&mut meta);
                chunk.record(i, &caption, split, meta);
            }
            Err(reason) => chunk.problems.push(ItemError::line(file, line, reason)),
        }
    }
    Ok(chunk)
}

#[cfg(test)]
mod tests {
    use super::super::ImportFormat;
    use super::*;

    fn opts(format: ImportFormat) -> ImportOptions {
        ImportOptions::new("d", format, Path::new("."))
    }

    #[test]
    fn jsonl_rows_and_their_problems_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("data.jsonl");
        let mut text = Vec::new();
        text.extend_from_slice(b"{\"image\": \"a.png\", \"caption\": \"one\", \"id\": 7}\n\n");
        text.extend_from_slice(b"{\"image\": \"b.png\"\n");
        text.extend_from_slice(b"{\"image\": \"c.png\", \"caption\": \"\xff\"}\n");
        text.extend_from_slice(b"{\"image\": \"a.png\", \"caption\": \"two\"}\n");
        std::fs::write(&f, text).unwrap();
        let chunk = scan_jsonl(&f, &opts(ImportFormat::Jsonl)).unwrap();
        assert_eq!(chunk.records.len(), 2);
        assert_eq!(chunk.images.len(), 1, "one image, two captions");
        assert_eq!(chunk.records[0].meta["id"], 7);
        let problems: Vec<_> = chunk.problems.iter().map(|p| p.to_string()).collect();
        assert!(
            problems[0].contains("data.jsonl:3: malformed JSON"),
            "{problems:?}"
        );
        assert!(
            problems[1].contains("data.jsonl:4: line is not UTF-8"),
            "{problems:?}"
        );
    }

    #[test]
    fn csv_and_tsv_with_custom_columns() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("data.tsv");
        std::fs::write(
            &f,
            "file\ttext\tsource\na.png\ta \"quoted\" cat\tweb\nb.png\n",
        )
        .unwrap();
        let mut o = opts(ImportFormat::Tsv);
        o.image_col = "file".into();
        o.caption_col = "text".into();
        let chunk = scan_csv(&f, &o, b'\t').unwrap();
        assert_eq!(chunk.records.len(), 1);
        assert_eq!(chunk.records[0].caption, "a \"quoted\" cat");
        assert_eq!(chunk.records[0].meta["source"], "web");
        assert_eq!(
            chunk.problems[0].to_string(),
            format!(
                "{}:3: row has no \"caption\" column (only 1 fields)",
                f.display()
            )
        );
        let chunk = scan_csv(&f, &opts(ImportFormat::Csv), b'\t').unwrap();
        assert!(chunk.problems[0]
            .to_string()
            .contains(":1: no column \"image\""));
    }
}
