//! `tessera import`: every format on real files generated here (images with the `image` crate,
//! shards with the `tar` crate), and each bad input named in the report while the rest goes in.

mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use common::*;

fn png(seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(300, 200, |x, y| {
        image::Rgb([seed, (x % 256) as u8, (y % 256) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn messages(report: &serde_json::Value) -> Vec<String> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["message"].as_str().unwrap().to_string())
        .collect()
}

/// Exactly one problem, mentioning every one of `parts`.
fn assert_one_problem(report: &serde_json::Value, parts: &[&str]) {
    let msgs = messages(report);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    for p in parts {
        assert!(msgs[0].contains(p), "{:?} does not mention {p:?}", msgs[0]);
    }
}

fn blob(data: &Path, hash: &str) -> Vec<u8> {
    std::fs::read(data.join("blobs").join(&hash[..2]).join(hash)).unwrap()
}

fn captions(data: &Path, dataset: &str) -> Vec<String> {
    let mut c: Vec<_> = items(data, dataset)
        .into_iter()
        .map(|i| i.caption)
        .collect();
    c.sort();
    c
}

/// A folder with two good images (one JPEG with a .txt, one PNG with a .json in a sub-folder).
fn good_folder(d: &Path) -> PathBuf {
    let dir = d.join("folder");
    write(&dir.join("a.jpg"), jpeg_bytes(1));
    write(&dir.join("a.txt"), "a red square\n");
    write(&dir.join("sub/b.png"), png(2));
    write(
        &dir.join("sub/b.json"),
        r#"{"caption": "a green square", "url": "x"}"#,
    );
    dir
}

#[test]
fn folder_imports_with_image_bytes_thumbnails_and_reimport_is_a_noop() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    let dir = good_folder(t.path());
    let (out, report) = import(&data, "folder", &dir, "f", &[]);
    assert!(out.status.success(), "{report}");
    assert_eq!(
        (report["items"].as_u64(), report["added"].as_u64()),
        (Some(2), Some(2))
    );
    let first = items(&data, "f");
    assert_eq!(captions(&data, "f"), ["a green square", "a red square"]);
    for it in &first {
        assert_eq!(
            blob(&data, &it.image_hash),
            std::fs::read(&it.source_path).unwrap()
        );
    }
    let b = first
        .iter()
        .find(|i| i.caption == "a green square")
        .unwrap();
    assert_eq!(
        b.source_path,
        dir.canonicalize()
            .unwrap()
            .join("sub/b.png")
            .to_string_lossy()
    );
    // re-running changes nothing
    let (out, report) = import(&data, "folder", &dir, "f", &[]);
    assert!(out.status.success());
    assert_eq!(
        (report["added"].as_u64(), report["unchanged"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(items(&data, "f").len(), 2);
    // the same images in a second dataset are the same blobs
    let (out, _) = import(&data, "folder", &dir, "g", &[]);
    assert!(out.status.success());
    let mut h1: Vec<_> = first.iter().map(|i| i.image_hash.clone()).collect();
    let mut h2: Vec<_> = items(&data, "g")
        .into_iter()
        .map(|i| i.image_hash)
        .collect();
    h1.sort();
    h2.sort();
    assert_eq!(h1, h2);
    // two images and the PNG's thumbnail, nothing more: the small JPEG is its own thumbnail
    let blobs = count_files(&data.join("blobs"));
    assert_eq!(blobs, 3);
}

fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_name() == "tmp" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            n += count_files(&e.path());
        } else {
            n += 1;
        }
    }
    n
}

#[test]
fn strict_writes_nothing_on_error() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    let dir = good_folder(t.path());
    write(&dir.join("bad.png"), b"\x89PNG\r\n\x1a\nnope");
    write(&dir.join("bad.txt"), "broken");
    let (out, report) = import(&data, "folder", &dir, "s", &["--strict"]);
    assert!(!out.status.success());
    assert_eq!(report["aborted"], true);
    assert!(messages(&report)[0].contains("bad.png"));
    let listed = run_ok(tessera(&data).args(["datasets", "list", "--json"]));
    assert_eq!(json(&listed), serde_json::json!([]), "no dataset, no items");
}

#[test]
fn a_cancelled_import_writes_nothing_and_a_later_run_imports_all() {
    use std::sync::Arc;
    use tessera::ingest::import::{import, ImportFormat, ImportOptions};
    let t = tempfile::tempdir().unwrap();
    let dir = good_folder(t.path());
    let store = tessera::store::Store::open(&t.path().join("store")).unwrap();
    let opts = ImportOptions::new("s", ImportFormat::Folder, &dir);
    opts.cancel.cancel();
    let sink = Arc::new(tessera::events::RecordingSink::default());
    let report = import(&store, &opts, sink.clone()).unwrap();
    assert!(report.cancelled && report.aborted);
    assert_eq!((report.added, report.images), (0, 0));
    assert!(store.datasets().unwrap().is_empty(), "no dataset, no items");
    assert!(!sink
        .events()
        .iter()
        .any(|e| matches!(e, tessera::events::Event::ImportImageDone { .. })));

    let again = ImportOptions::new("s", ImportFormat::Folder, &dir);
    let report = import(&store, &again, Arc::new(tessera::events::NullSink)).unwrap();
    assert!(!report.cancelled);
    assert_eq!(report.added, 2);
}

#[test]
fn jsonl_csv_and_tsv_import_rows() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    let d = t.path().join("tables");
    write(&d.join("img/a.png"), png(1));
    write(&d.join("img/b.jpg"), jpeg_bytes(2));
    let jsonl = write(
        &d.join("data.jsonl"),
        "{\"image\": \"img/a.png\", \"caption\": \"first\"}\n{\"image\": \"img/b.jpg\", \"caption\": \"second\", \"id\": 2}\n",
    );
    let csv = write(
        &d.join("data.csv"),
        "file,text\nimg/a.png,\"one, with comma\"\nimg/b.jpg,two\n",
    );
    let tsv = write(
        &d.join("data.tsv"),
        "image\tcaption\nimg/a.png\ta \"tab\" row\n",
    );
    let (out, r) = import(&data, "jsonl", &jsonl, "j", &[]);
    assert!(out.status.success(), "{r}");
    assert_eq!(captions(&data, "j"), ["first", "second"]);
    for it in items(&data, "j") {
        assert_eq!(
            blob(&data, &it.image_hash),
            std::fs::read(&it.source_path).unwrap()
        );
    }
    let (out, r) = import(
        &data,
        "csv",
        &csv,
        "c",
        &["--image-col", "file", "--caption-col", "text"],
    );
    assert!(out.status.success(), "{r}");
    assert_eq!(captions(&data, "c"), ["one, with comma", "two"]);
    let (out, r) = import(&data, "tsv", &tsv, "t", &[]);
    assert!(out.status.success(), "{r}");
    assert_eq!(captions(&data, "t"), ["a \"tab\" row"]);
    // the same image in three datasets: one blob
    let a: Vec<_> = ["j", "c", "t"]
        .iter()
        .map(|ds| {
            items(&data, ds)
                .into_iter()
                .find(|i| i.source_path.ends_with("a.png"))
                .unwrap()
                .image_hash
        })
        .collect();
    assert!(a.iter().all(|h| h == &a[0]));
}

#[test]
fn coco_captions_give_one_item_per_caption() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    let d = t.path().join("coco");
    write(&d.join("val2014/COCO_val2014_1.jpg"), jpeg_bytes(1));
    write(&d.join("val2014/COCO_val2014_2.jpg"), jpeg_bytes(2));
    let doc = serde_json::json!({
        "images": [{"id": 1, "file_name": "COCO_val2014_1.jpg"}, {"id": 2, "file_name": "COCO_val2014_2.jpg"}],
        "annotations": [
            {"id": 10, "image_id": 1, "caption": "A cat on a mat."},
            {"id": 11, "image_id": 1, "caption": "A cat lying down."},
            {"id": 12, "image_id": 2, "caption": "A dog."}
        ]
    });
    let f = write(
        &d.join("annotations/captions_val2014.json"),
        doc.to_string(),
    );
    let images = d.join("val2014");
    let (out, r) = import(
        &data,
        "coco",
        &f,
        "coco",
        &["--images", images.to_str().unwrap()],
    );
    assert!(out.status.success(), "{r}");
    assert_eq!(
        captions(&data, "coco"),
        ["A cat lying down.", "A cat on a mat.", "A dog."]
    );
    let items = items(&data, "coco");
    let hashes: std::collections::HashSet<_> = items.iter().map(|i| &i.image_hash).collect();
    assert_eq!(hashes.len(), 2);
    for it in &items {
        assert_eq!(
            blob(&data, &it.image_hash),
            std::fs::read(&it.source_path).unwrap()
        );
    }
}

#[test]
fn karpathy_split_file_keeps_the_split() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    let d = t.path().join("k");
    write(&d.join("val2014/a.jpg"), jpeg_bytes(1));
    write(&d.join("train2014/b.jpg"), jpeg_bytes(2));
    let doc = serde_json::json!({"images": [
        {"filepath": "val2014", "filename": "a.jpg", "split": "test", "cocoid": 1,
         "sentences": [{"raw": "A cat.", "sentid": 1}, {"raw": "A sitting cat.", "sentid": 2}]},
        {"filepath": "train2014", "filename": "b.jpg", "split": "train", "cocoid": 2,
         "sentences": [{"raw": "A dog.", "sentid": 3}]}
    ]});
    let f = write(&d.join("dataset_coco.json"), doc.to_string());
    let (out, r) = import(&data, "coco", &f, "k", &[]);
    assert!(out.status.success(), "{r}");
    let listed = run_ok(tessera(&data).args(["items", "k", "--json"]));
    let rows = json(&listed);
    let mut got: Vec<(String, String)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["caption"].as_str().unwrap().into(),
                r["split"].as_str().unwrap().into(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("A cat.".into(), "test".into()),
            ("A dog.".into(), "train".into()),
            ("A sitting cat.".into(), "test".into())
        ]
    );
}

// ---- WebDataset ---------------------------------------------------------------------------

/// A tar member written with a raw name (so unsafe names can be made) and a type.
fn member(
    b: &mut tar::Builder<std::fs::File>,
    name: &str,
    kind: tar::EntryType,
    data: &[u8],
    link: Option<&str>,
) {
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(if kind.is_file() { data.len() as u64 } else { 0 });
    if let Some(l) = link {
        h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
    }
    h.set_cksum();
    b.append(&h, if kind.is_file() { data } else { &[][..] })
        .unwrap();
}

fn file(b: &mut tar::Builder<std::fs::File>, name: &str, data: &[u8]) {
    member(b, name, tar::EntryType::Regular, data, None);
}

/// A shard with two good samples (`s0`, `s1`) plus whatever `extra` adds.
fn shard(path: &Path, extra: impl FnOnce(&mut tar::Builder<std::fs::File>)) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    file(&mut b, "s0.jpg", &jpeg_bytes(1));
    file(&mut b, "s0.txt", b"sample zero");
    file(&mut b, "s0.json", br#"{"url": "http://example.invalid/0"}"#);
    file(&mut b, "s1.png", &png(2));
    file(&mut b, "s1.txt", b"sample one");
    extra(&mut b);
    b.into_inner().unwrap();
    path.to_path_buf()
}

#[test]
fn webdataset_shards_import_without_extracting() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    let d = t.path().join("shards");
    shard(&d.join("00000.tar"), |_| {});
    shard(&d.join("00001.tar"), |b| {
        file(b, "x.webp", &{
            let img = image::RgbImage::from_fn(20, 10, |x, _| image::Rgb([x as u8, 0, 0]));
            let mut out = Cursor::new(Vec::new());
            img.write_to(&mut out, image::ImageFormat::WebP).unwrap();
            out.into_inner()
        });
        file(b, "x.txt", b"a webp");
    });
    let (out, r) = import(&data, "webdataset", &d, "w", &[]);
    assert!(out.status.success(), "{r}");
    assert_eq!(r["items"], 5);
    let items = items(&data, "w");
    let s0 = items
        .iter()
        .find(|i| i.source_path.ends_with("00000.tar:s0.jpg"))
        .unwrap();
    assert_eq!(s0.caption, "sample zero");
    assert_eq!(blob(&data, &s0.image_hash), jpeg_bytes(1));
    assert_eq!(
        items.iter().filter(|i| i.caption == "sample one").count(),
        2
    );
    // a single shard works too, and importing it again adds nothing
    let (out, r) = import(&data, "webdataset", &d.join("00000.tar"), "w", &[]);
    assert!(out.status.success(), "{r}");
    assert_eq!(
        (r["added"].as_u64(), r["unchanged"].as_u64()),
        (Some(0), Some(2))
    );
}

/// Imports a good shard plus a shard built by `bad`, and returns the report; the good samples
/// of both shards must be in.
fn webdataset_with(bad: impl FnOnce(&mut tar::Builder<std::fs::File>)) -> serde_json::Value {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    let d = t.path().join("shards");
    shard(&d.join("00000.tar"), |_| {});
    shard(&d.join("00001.tar"), bad);
    let (out, r) = import(&data, "webdataset", &d, "w", &[]);
    assert!(!out.status.success(), "a problem fails the exit code: {r}");
    assert_eq!(items(&data, "w").len(), 4, "{r}");
    r
}

#[test]
fn webdataset_member_with_dotdot_is_refused() {
    let r = webdataset_with(|b| file(b, "../evil.txt", b"x"));
    assert_one_problem(&r, &["00001.tar:../evil.txt", "unsafe member path"]);
}

#[test]
fn webdataset_absolute_member_is_refused() {
    let r = webdataset_with(|b| file(b, "/etc/evil.txt", b"x"));
    assert_one_problem(&r, &["00001.tar:/etc/evil.txt", "unsafe member path"]);
}

#[test]
fn webdataset_symlink_is_refused() {
    let r = webdataset_with(|b| {
        member(
            b,
            "link.jpg",
            tar::EntryType::Symlink,
            b"",
            Some("/etc/passwd"),
        )
    });
    assert_one_problem(&r, &["00001.tar:link.jpg", "links are not allowed"]);
}

#[test]
fn webdataset_hardlink_is_refused() {
    let r = webdataset_with(|b| member(b, "hard.jpg", tar::EntryType::Link, b"", Some("s0.jpg")));
    assert_one_problem(&r, &["00001.tar:hard.jpg", "links are not allowed"]);
}

#[test]
fn webdataset_duplicate_key_is_refused() {
    let r = webdataset_with(|b| {
        file(b, "dup.jpg", &jpeg_bytes(9));
        file(b, "dup.txt", b"first");
        file(b, "dup.txt", b"second");
    });
    assert_one_problem(&r, &["00001.tar:dup.txt", "duplicate key"]);
}

#[test]
fn webdataset_empty_shard_is_named() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    let d = t.path().join("shards");
    shard(&d.join("00000.tar"), |_| {});
    tar::Builder::new(std::fs::File::create(d.join("00001.tar")).unwrap())
        .into_inner()
        .unwrap();
    let (out, r) = import(&data, "webdataset", &d, "w", &[]);
    assert!(!out.status.success());
    assert_one_problem(&r, &["00001.tar", "empty shard"]);
    assert_eq!(items(&data, "w").len(), 2);
}

// ---- bad inputs in the other formats ----------------------------------------------------

/// A folder import of the good folder plus what `bad` adds; the good items must be in.
fn folder_with(bad: impl FnOnce(&Path)) -> serde_json::Value {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    let dir = good_folder(t.path());
    bad(&dir);
    let (out, r) = import(&data, "folder", &dir, "f", &[]);
    assert!(!out.status.success(), "{r}");
    let got = captions(&data, "f");
    for good in ["a green square", "a red square"] {
        assert!(got.iter().any(|c| c == good), "{good:?} not imported: {r}");
    }
    r
}

#[test]
fn truncated_image_is_named() {
    let r = folder_with(|d| {
        let whole = png(5);
        write(&d.join("cut.png"), &whole[..whole.len() / 2]);
        write(&d.join("cut.txt"), "cut");
    });
    assert_one_problem(&r, &["cut.png", "corrupt or truncated"]);
}

#[test]
fn truncated_jpeg_is_named() {
    // The `image` crate's JPEG decoder fills a cut-off file with grey and calls it fine.
    let r = folder_with(|d| {
        let whole = jpeg_bytes(5);
        write(&d.join("cut.jpg"), &whole[..whole.len() * 2 / 3]);
        write(&d.join("cut.txt"), "cut");
    });
    assert_one_problem(&r, &["cut.jpg", "corrupt or truncated"]);
}

#[test]
fn corrupt_image_is_named() {
    let r = folder_with(|d| {
        let mut bytes = jpeg_bytes(5);
        for b in bytes.iter_mut().skip(2) {
            *b = 0x5a;
        }
        write(&d.join("junk.jpg"), bytes);
        write(&d.join("junk.txt"), "junk");
    });
    assert_one_problem(&r, &["junk.jpg"]);
}

#[test]
fn decompression_bomb_is_refused() {
    let r = folder_with(|d| {
        // A real PNG whose header claims 100000×100000 (CRC fixed up).
        let mut bytes = png(5);
        bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32fast::hash(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        write(&d.join("bomb.png"), bytes);
        write(&d.join("bomb.txt"), "boom");
    });
    assert_one_problem(&r, &["bomb.png", "100000×100000", "limit"]);
}

#[test]
fn svg_is_rasterised_and_external_references_refused() {
    let r = folder_with(|d| {
        write(
            &d.join("ok.svg"),
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="400" height="200"><circle cx="100" cy="100" r="80" fill="blue"/></svg>"#,
        );
        write(&d.join("ok.txt"), "a blue circle");
        write(
            &d.join("ext.svg"),
            r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10"><image xlink:href="../a.jpg" width="10" height="10"/></svg>"#,
        );
        write(&d.join("ext.txt"), "external");
    });
    assert_one_problem(&r, &["ext.svg", "external file", "../a.jpg"]);
    assert_eq!(r["items"], 3, "{r}");
}

#[test]
fn caption_not_utf8_names_file_and_line() {
    let r = folder_with(|d| {
        write(&d.join("latin.jpg"), jpeg_bytes(7));
        write(&d.join("latin.txt"), b"first line\ncaf\xe9\n");
    });
    assert_one_problem(&r, &["latin.txt:2:", "not UTF-8"]);
}

/// A JSONL import of two good rows plus `bad` lines after them.
fn jsonl_with(bad: &[u8]) -> (serde_json::Value, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    let d = t.path().join("t");
    write(&d.join("a.png"), png(1));
    let mut text = b"{\"image\": \"a.png\", \"caption\": \"one\"}\n{\"image\": \"a.png\", \"caption\": \"two\"}\n".to_vec();
    text.extend_from_slice(bad);
    let f = write(&d.join("data.jsonl"), text);
    let (out, r) = import(&data, "jsonl", &f, "j", &[]);
    assert!(!out.status.success(), "{r}");
    assert_eq!(captions(&data, "j"), ["one", "two"], "{r}");
    (r, f)
}

#[test]
fn missing_image_file_is_named() {
    let (r, _) = jsonl_with(b"{\"image\": \"gone.png\", \"caption\": \"lost\"}\n");
    // the report's path is the table's absolute path; the image is named beside it
    let table = PathBuf::from(r["path"].as_str().unwrap());
    let gone = table.parent().unwrap().join("gone.png");
    assert_one_problem(&r, &[gone.to_str().unwrap(), "not found"]);
}

#[test]
fn malformed_json_line_names_file_and_line() {
    let (r, _) = jsonl_with(b"{\"image\": \"a.png\", \"caption\": \n");
    assert_one_problem(&r, &["data.jsonl:3:", "malformed JSON"]);
}

#[test]
fn jsonl_caption_not_utf8_names_file_and_line() {
    let (r, _) = jsonl_with(b"\n{\"image\": \"a.png\", \"caption\": \"caf\xe9\"}\n");
    assert_one_problem(&r, &["data.jsonl:4:", "not UTF-8"]);
}

#[test]
fn csv_row_missing_column_names_file_and_line() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    let d = t.path().join("t");
    write(&d.join("a.png"), png(1));
    let f = write(
        &d.join("data.csv"),
        "image,caption\na.png,one\na.png\na.png,two\n",
    );
    let (out, r) = import(&data, "csv", &f, "c", &[]);
    assert!(!out.status.success());
    assert_one_problem(&r, &["data.csv:3:", "no \"caption\" column"]);
    assert_eq!(captions(&data, "c"), ["one", "two"]);
}
