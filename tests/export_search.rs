//! `tessera export`, `tessera datasets search` and `tessera datasets stats` through the real
//! binary: exports read back by `tessera import` with the same captions and image bytes.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

const SVG: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10"><rect width="20" height="10" fill="red"/></svg>"#;

/// A folder of five images (JPEG, PNG, SVG) with caption sidecars, imported as `dataset`.
fn imported_folder(t: &Path, data: &Path, dataset: &str) -> PathBuf {
    let dir = t.join("folder");
    write(&dir.join("a.jpg"), jpeg_bytes(1));
    write(&dir.join("a.txt"), "a red kite over the beach");
    write(&dir.join("b.png"), png_bytes(2));
    write(&dir.join("b.txt"), "two dogs play in the snow");
    write(&dir.join("c.svg"), SVG);
    write(&dir.join("c.txt"), "a red rectangle");
    write(&dir.join("d.png"), png_bytes(4));
    write(&dir.join("d.txt"), "a dog sleeps under a red blanket");
    write(&dir.join("sub/e.jpg"), jpeg_bytes(5));
    write(&dir.join("sub/e.txt"), "an empty street at night");
    import_ok(data, "folder", &dir, dataset);
    dir
}

/// (caption, image hash) of every item, sorted.
fn pairs(data: &Path, dataset: &str) -> Vec<(String, String)> {
    let mut p: Vec<_> = items(data, dataset)
        .into_iter()
        .map(|i| (i.caption, i.image_hash))
        .collect();
    p.sort();
    p
}

fn export(data: &Path, args: &[&str], out: &Path) -> Output {
    tessera(data)
        .arg("export")
        .args(args)
        .arg(out)
        .arg("--json")
        .output()
        .expect("run tessera export")
}

/// Member names of a shard, in order.
fn members(shard: &Path) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(std::fs::File::open(shard).unwrap());
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            (e.path().unwrap().display().to_string(), bytes)
        })
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn webdataset_export_round_trips_through_import_in_shards_of_the_asked_size() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    imported_folder(t.path(), &data, "src");
    let shards = t.path().join("shards");
    let out = export(&data, &["webdataset", "src", "--shard-size", "2"], &shards);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["items"], 5);
    let mut names: Vec<_> = std::fs::read_dir(&shards)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["00000.tar", "00001.tar", "00002.tar"]);

    // Two items per shard, the last one holds the rest; keys unique, extensions from the type.
    let mut keys = BTreeMap::new();
    let mut exts = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let m = members(&shards.join(name));
        assert_eq!(m.len(), if i < 2 { 6 } else { 3 }, "{name}");
        for (member, bytes) in m {
            let (key, ext) = member.split_once('.').unwrap();
            assert_eq!(key.len(), 9, "zero-padded key {key}");
            if ext == "json" {
                let j: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(j["key"], key);
                assert!(j["source_path"].as_str().unwrap().contains("folder"));
                assert!(j.get("context_before").is_some() && j.get("split").is_some());
            } else if ext != "txt" {
                exts.push(ext.to_string());
            }
            *keys.entry(key.to_string()).or_insert(0) += 1;
        }
    }
    assert_eq!(keys.len(), 5);
    assert!(keys.values().all(|&n| n == 3));
    exts.sort();
    assert_eq!(exts, ["jpg", "jpg", "png", "png", "svg"]);

    let report = import_ok(&data, "webdataset", &shards, "copy");
    assert_eq!(report["added"], 5, "{report}");
    assert_eq!(pairs(&data, "copy"), pairs(&data, "src"));
}

#[test]
fn jsonl_export_round_trips_with_images_beside_it() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    imported_folder(t.path(), &data, "src");
    let table = t.path().join("out/data.jsonl");
    let out = export(&data, &["jsonl", "src"], &table);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["images"], 5);
    let text = std::fs::read_to_string(&table).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 5);
    for r in &rows {
        let image = r["image"].as_str().unwrap();
        let hash = r["image_hash"].as_str().unwrap();
        assert!(image.starts_with(&format!("images/{hash}.")), "{image}");
        // the file is the stored blob, byte for byte
        let bytes = std::fs::read(table.parent().unwrap().join(image)).unwrap();
        assert_eq!(blake3::hash(&bytes).to_hex().as_str(), hash);
    }
    // Nothing but the table and the images: no temporary left behind.
    let mut left: Vec<_> = std::fs::read_dir(table.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["data.jsonl", "images"]);

    let report = import_ok(&data, "jsonl", &table, "copy");
    assert_eq!(report["added"], 5, "{report}");
    assert_eq!(pairs(&data, "copy"), pairs(&data, "src"));
}

#[test]
fn split_filter_exports_only_that_split() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    let d = t.path().join("k");
    write(&d.join("a.jpg"), jpeg_bytes(1));
    write(&d.join("b.jpg"), jpeg_bytes(2));
    let doc = serde_json::json!({"images": [
        {"filename": "a.jpg", "split": "test",
         "sentences": [{"raw": "A cat."}, {"raw": "A sitting cat."}]},
        {"filename": "b.jpg", "split": "train", "sentences": [{"raw": "A dog."}]}
    ]});
    write(&d.join("dataset_coco.json"), doc.to_string());
    import_ok(&data, "coco", &d.join("dataset_coco.json"), "k");

    let shards = t.path().join("shards");
    let out = export(&data, &["webdataset", "k", "--split", "test"], &shards);
    assert!(out.status.success(), "{}", stderr(&out));
    let m = members(&shards.join("00000.tar"));
    let mut captions: Vec<_> = m
        .iter()
        .filter(|(n, _)| n.ends_with(".txt"))
        .map(|(_, b)| String::from_utf8(b.clone()).unwrap())
        .collect();
    captions.sort();
    assert_eq!(captions, ["A cat.", "A sitting cat."]);
    let j: serde_json::Value = serde_json::from_slice(&m[2].1).unwrap();
    assert_eq!(j["split"], "test");

    let table = t.path().join("train.jsonl");
    let out = export(&data, &["jsonl", "k", "--split", "train"], &table);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&table).unwrap();
    assert_eq!(text.lines().count(), 1);
    assert!(text.contains("\"A dog.\""));
    // Read back, the exported split is the item's split again, not just a meta field.
    import_ok(&data, "jsonl", &table, "back");
    let back = json(&run_ok(tessera(&data).args(["items", "back", "--json"])));
    assert_eq!(back[0]["split"], "train");
    assert!(back[0]["meta"].get("split").is_none(), "{}", back[0]);

    // A split with no items is an error that names it, and writes nothing.
    let empty = t.path().join("none");
    let out = export(&data, &["webdataset", "k", "--split", "val"], &empty);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no items in split \"val\""),
        "{}",
        stderr(&out)
    );
    assert!(!empty.exists());
}

#[test]
fn search_ranks_marks_and_reports_bad_queries() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    imported_folder(t.path(), &data, "s");
    let search = |q: &str, extra: &[&str]| {
        tessera(&data)
            .args(["datasets", "search", "s", q])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = search("red", &["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let hits = json(&out);
    let hits = hits.as_array().unwrap();
    assert_eq!(hits.len(), 3);
    // the shortest caption with the word ranks first (bm25 normalises by length)
    assert_eq!(hits[0]["item"]["caption"], "a red rectangle");
    assert_eq!(hits[0]["snippet"], "a [red] rectangle");
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    let out = search("red", &["--json", "--limit", "1"]);
    assert_eq!(json(&out).as_array().unwrap().len(), 1);

    // prefix and boolean syntax
    let out = search("dog* NOT snow", &["--json"]);
    let hits = json(&out);
    assert_eq!(
        hits[0]["item"]["caption"],
        "a dog sleeps under a red blanket"
    );
    assert_eq!(hits.as_array().unwrap().len(), 1);

    let out = search("zebra", &[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("no items in s match \"zebra\""));

    let out = search("\"unbalanced", &[]);
    assert!(!out.status.success(), "a malformed query fails");
    let err = stderr(&out);
    assert!(err.contains("search query \"\\\"unbalanced\""), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let out = tessera(&data)
        .args(["datasets", "search", "nope", "red"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no dataset named \"nope\""));
}

#[test]
fn stats_count_images_words_splits_and_sources() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    let d = t.path().join("k");
    write(&d.join("a.jpg"), jpeg_bytes(1));
    write(&d.join("b.jpg"), jpeg_bytes(2));
    let long = ["word"; 12].join(" ");
    let doc = serde_json::json!({"images": [
        {"filename": "a.jpg", "split": "test",
         "sentences": [{"raw": "A cat."}, {"raw": "A cat sits on a warm mat."}, {"raw": long}]},
        {"filename": "b.jpg", "split": "train", "sentences": [{"raw": "A dog."}]}
    ]});
    write(&d.join("dataset_coco.json"), doc.to_string());
    import_ok(&data, "coco", &d.join("dataset_coco.json"), "k");

    let s = json(&run_ok(
        tessera(&data).args(["datasets", "stats", "k", "--json"]),
    ));
    assert_eq!(s["items"], 4);
    assert_eq!(s["distinct_images"], 2);
    assert_eq!(s["no_speech_items"], 0);
    assert_eq!(
        (s["videos"].as_i64(), s["files"].as_i64()),
        (Some(0), Some(2))
    );
    assert_eq!(s["file_items"], 4);
    let hist: Vec<(String, i64)> = s["caption_words"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["words"].as_str().unwrap().into(),
                b["items"].as_i64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("0", 0),
        ("1-4", 2),
        ("5-9", 1),
        ("10-19", 1),
        ("20-49", 0),
        ("50+", 0),
    ];
    assert_eq!(hist, expected.map(|(w, n)| (w.to_string(), n)).to_vec());
    assert_eq!(s["caption_words_max"], 12);
    assert_eq!(
        s["splits"],
        serde_json::json!([{"split": "test", "items": 3}, {"split": "train", "items": 1}])
    );
    assert_eq!(s["top_sources"][0]["items"], 3);
    assert!(s["top_sources"][0]["path"]
        .as_str()
        .unwrap()
        .ends_with("a.jpg"));

    // the text form says the same
    let text = run_ok(tessera(&data).args(["datasets", "stats", "k"]));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("distinct images  2"), "{text}");
    assert!(text.contains("test"), "{text}");

    let out = tessera(&data)
        .args(["datasets", "stats", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no dataset named \"nope\""));
}

#[test]
fn exporting_an_unknown_dataset_is_an_error_and_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    for (format, out) in [("webdataset", "shards"), ("jsonl", "x.jsonl")] {
        let dest = t.path().join(out);
        let o = export(&data, &[format, "nope"], &dest);
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains("no dataset named \"nope\""),
            "{}",
            stderr(&o)
        );
        assert!(!dest.exists());
    }
}
