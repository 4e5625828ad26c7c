//! `tessera datasets split|dedupe|filter|edit|delete|merge` on datasets built through the real
//! CLI: images generated here and imported, and a real video without audio ingested.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

/// A picture of 8×6 random-coloured blocks: different seeds give unrelated perceptual hashes,
/// while re-encoding or resizing one keeps its hash.
fn picture(seed: u64, w: u32, h: u32) -> image::RgbImage {
    let mut x = seed.wrapping_mul(0x9e3779b97f4a7c15) | 1;
    let blocks: Vec<[u8; 3]> = (0..48)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            [x as u8, (x >> 8) as u8, (x >> 16) as u8]
        })
        .collect();
    image::RgbImage::from_fn(w, h, |px, py| {
        image::Rgb(blocks[(py * 6 / h * 8 + px * 8 / w) as usize])
    })
}

fn encode(img: &image::RgbImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn png(seed: u64, w: u32, h: u32) -> Vec<u8> {
    encode(&picture(seed, w, h), image::ImageFormat::Png)
}

/// `tessera datasets args…`, expected to fail: its stderr.
fn fails(data: &Path, args: &[&str]) -> String {
    let out = tessera(data).arg("datasets").args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn datasets(data: &Path, args: &[&str]) -> Output {
    run_ok(tessera(data).arg("datasets").args(args))
}

/// Item id → split, from `tessera items --json`.
fn splits(data: &Path, dataset: &str) -> BTreeMap<i64, String> {
    let out = run_ok(tessera(data).args(["items", dataset, "--json"]));
    json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_i64().unwrap(),
                i["split"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// 120 images, each with 1 to 4 captions in one JSONL file (rows of one image share a source).
fn many(d: &Path) -> PathBuf {
    let mut rows = String::new();
    for i in 0..120u64 {
        write(&d.join(format!("img/{i}.png")), png(i + 1, 48, 32));
        for c in 0..=(i % 4) {
            rows.push_str(&format!(
                "{{\"image\": \"img/{i}.png\", \"caption\": \"picture {i} caption {c}\"}}\n"
            ));
        }
    }
    write(&d.join("data.jsonl"), rows)
}

#[test]
fn split_is_deterministic_grouped_by_source_and_close_to_the_ratios() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    import_ok(&data, "jsonl", &many(t.path()), "m");
    let all = items(&data, "m");
    assert_eq!(all.len(), 300);

    let r = json(&datasets(
        &data,
        &[
            "split",
            "m",
            "--seed",
            "7",
            "--ratios",
            "train=0.8,val=0.1,test=0.1",
            "--json",
        ],
    ));
    assert_eq!(
        (r["items"].as_u64(), r["groups"].as_u64()),
        (Some(300), Some(120))
    );
    let first = splits(&data, "m");
    let count = |name: &str| first.values().filter(|s| *s == name).count() as f64 / 300.0;
    for (name, want) in [("train", 0.8), ("val", 0.1), ("test", 0.1)] {
        assert!((count(name) - want).abs() < 0.04, "{name}: {}", count(name));
    }
    assert_eq!(
        r["splits"][0]["items"].as_f64(),
        Some(count("train") * 300.0)
    );
    // no source in two splits
    let mut by_source: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for it in &all {
        by_source
            .entry(it.source_path.as_str())
            .or_default()
            .insert(first[&it.id].as_str());
    }
    assert_eq!(by_source.len(), 120);
    assert!(by_source.values().all(|s| s.len() == 1), "{by_source:?}");

    // the same seed gives the same splits; another seed other ones
    datasets(&data, &["split", "m", "--seed", "7"]);
    assert_eq!(splits(&data, "m"), first);
    datasets(&data, &["split", "m", "--seed", "8"]);
    let other = splits(&data, "m");
    assert_ne!(other, first);
    assert!(other
        .values()
        .all(|s| ["train", "val", "test"].contains(&s.as_str())));
}

#[test]
fn split_refuses_bad_ratios_and_unknown_datasets() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    write(&t.path().join("f/a.png"), png(1, 32, 32));
    write(&t.path().join("f/a.txt"), "a");
    import_ok(&data, "folder", &t.path().join("f"), "s");
    for (ratios, says) in [
        ("train=0.8,val=0.1", "sum to 0.9"),
        ("train=1.2,test=-0.2", "must be positive"),
        ("train=0.5,train=0.5", "named twice"),
        ("train:1", "not NAME=RATIO"),
    ] {
        let e = fails(&data, &["split", "s", "--ratios", ratios]);
        assert!(e.contains(says) && e.contains(ratios), "{ratios}: {e}");
    }
    assert_eq!(
        splits(&data, "s").values().next().unwrap(),
        "",
        "nothing stored"
    );
    let e = fails(&data, &["split", "nope"]);
    assert!(e.contains("no dataset named \"nope\""), "{e}");
}

/// a and b: the same bytes; c and d: one picture, d re-encoded as JPEG at another size;
/// e and f: unrelated pictures.
fn duplicates(d: &Path) -> PathBuf {
    let dir = d.join("dups");
    let one = png(11, 120, 90);
    write(&dir.join("a.png"), &one);
    write(&dir.join("b.png"), &one);
    write(&dir.join("c.png"), png(12, 120, 90));
    write(
        &dir.join("d.jpg"),
        encode(&picture(12, 100, 75), image::ImageFormat::Jpeg),
    );
    write(&dir.join("e.png"), png(13, 120, 90));
    write(&dir.join("f.png"), png(14, 120, 90));
    for n in ["a", "b", "c", "d", "e", "f"] {
        write(&dir.join(format!("{n}.txt")), format!("caption of {n}"));
    }
    dir
}

fn file_name(p: &str) -> String {
    Path::new(p)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn dedupe_finds_exact_and_near_duplicates_and_drop_keeps_one_per_group() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    import_ok(&data, "folder", &duplicates(t.path()), "d");
    let r = json(&datasets(&data, &["dedupe", "d", "--json"]));
    let groups: Vec<(String, Vec<String>)> = r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let mut files: Vec<String> = g["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| file_name(i["source_path"].as_str().unwrap()))
                .collect();
            files.sort();
            (g["kind"].as_str().unwrap().to_string(), files)
        })
        .collect();
    let mut sorted = groups.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![
            (
                "exact".to_string(),
                vec!["a.png".to_string(), "b.png".to_string()]
            ),
            (
                "near".to_string(),
                vec!["c.png".to_string(), "d.jpg".to_string()]
            ),
        ]
    );
    assert_eq!(r["duplicates"].as_u64(), Some(2));
    assert_eq!(r["dropped"].as_u64(), Some(0));
    assert_eq!(items(&data, "d").len(), 6, "without --drop nothing goes");

    // with every picture in one group, the hashes show the margin: the copy is within a
    // bit or two, unrelated pictures far beyond the default 4
    let r = json(&datasets(&data, &["dedupe", "d", "--near", "64", "--json"]));
    let phash: BTreeMap<String, u64> = r["groups"][0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let h = u64::from_str_radix(i["phash"].as_str().unwrap(), 16).unwrap();
            (file_name(i["source_path"].as_str().unwrap()), h)
        })
        .collect();
    assert_eq!(phash.len(), 6);
    let dist = |a: &str, b: &str| (phash[a] ^ phash[b]).count_ones();
    assert!(dist("c.png", "d.jpg") <= 2, "{}", dist("c.png", "d.jpg"));
    for (x, y) in [
        ("a.png", "c.png"),
        ("a.png", "e.png"),
        ("e.png", "f.png"),
        ("c.png", "f.png"),
    ] {
        assert!(dist(x, y) > 12, "{x} {y}: {}", dist(x, y));
    }

    // --near 0 still finds the exact pair
    let r = json(&datasets(&data, &["dedupe", "d", "--near", "0", "--json"]));
    assert!(r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["kind"] == "exact"));

    let r = json(&datasets(&data, &["dedupe", "d", "--drop", "--json"]));
    assert_eq!(r["dropped"].as_u64(), Some(2));
    let kept: Vec<i64> = r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["keep"].as_i64().unwrap())
        .collect();
    let left = items(&data, "d");
    assert_eq!(left.len(), 4);
    let ids: BTreeSet<i64> = left.iter().map(|i| i.id).collect();
    assert!(kept.iter().all(|k| ids.contains(k)), "{kept:?} {ids:?}");
    let mut files: Vec<String> = left.iter().map(|i| file_name(&i.source_path)).collect();
    files.sort();
    assert!(files.contains(&"e.png".to_string()) && files.contains(&"f.png".to_string()));
    let r = json(&datasets(&data, &["dedupe", "d", "--json"]));
    assert_eq!(r["groups"].as_array().unwrap().len(), 0);

    let e = fails(&data, &["dedupe", "d", "--near", "65"]);
    assert!(e.contains("--near 65"), "{e}");
    let e = fails(&data, &["dedupe", "nope"]);
    assert!(e.contains("no dataset named \"nope\""), "{e}");
}

/// Captions of 1, 3 and 6 words on images of 20, 64 and 64 px shorter side, plus a real
/// video without audio (merged in), whose frames count as empty captions.
fn mixed(t: &Path, data: &Path) -> usize {
    let dir = t.join("mixed");
    write(&dir.join("one.png"), png(21, 64, 64));
    write(&dir.join("one.txt"), "word");
    write(&dir.join("three.png"), png(22, 80, 64));
    write(&dir.join("three.txt"), "three little words");
    write(&dir.join("six.png"), png(23, 20, 64));
    write(&dir.join("six.txt"), "six words on a small image");
    import_ok(data, "folder", &dir, "x");
    let out = ingest(data, "v", &[composed_path("noaudio.mp4")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let video = items(data, "v");
    assert!(!video.is_empty() && video.iter().all(|i| i.no_speech));
    datasets(data, &["merge", "v", "x"]);
    video.len()
}

fn filter(data: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["filter", "x", "--json"];
    all.extend_from_slice(args);
    json(&datasets(data, &all))
}

#[test]
fn filters_remove_what_is_out_of_bounds() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    let frames = mixed(t.path(), &data);
    let total = 3 + frames;
    let captions = |data: &Path| -> BTreeSet<String> {
        items(data, "x")
            .into_iter()
            .filter(|i| !i.no_speech)
            .map(|i| i.caption)
            .collect()
    };

    // a dry run reports and keeps everything
    let r = filter(&data, &["--min-words", "2", "--dry-run"]);
    assert_eq!(r["removed"].as_u64(), Some(1 + frames as u64));
    assert_eq!(r["dry_run"], true);
    assert_eq!(items(&data, "x").len(), total);

    let r = filter(&data, &["--drop-empty"]);
    assert_eq!(
        (r["removed"].as_u64(), r["empty"].as_u64()),
        (Some(frames as u64), Some(frames as u64))
    );
    assert_eq!(items(&data, "x").len(), 3);
    assert!(items(&data, "x").iter().all(|i| !i.no_speech));

    let r = filter(&data, &["--max-words", "5"]);
    assert_eq!(r["too_many_words"].as_u64(), Some(1));
    assert_eq!(
        captions(&data),
        BTreeSet::from(["word".to_string(), "three little words".to_string()])
    );
    let r = filter(&data, &["--min-side", "64", "--dry-run"]);
    assert_eq!(r["removed"].as_u64(), Some(0), "64×64 and 80×64 pass");
    let r = filter(&data, &["--min-side", "65"]);
    assert_eq!(r["too_small"].as_u64(), Some(2));
    assert!(items(&data, "x").is_empty());

    let e = fails(&data, &["filter", "x"]);
    assert!(e.contains("nothing to filter by"), "{e}");
    let e = fails(
        &data,
        &["filter", "x", "--min-words", "5", "--max-words", "2"],
    );
    assert!(
        e.contains("--min-words 5") && e.contains("--max-words 2"),
        "{e}"
    );
}

#[test]
fn min_side_filter_drops_small_images() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    let dir = t.path().join("f");
    write(&dir.join("small.png"), png(31, 20, 64));
    write(&dir.join("small.txt"), "a small one");
    write(&dir.join("big.png"), png(32, 64, 64));
    write(&dir.join("big.txt"), "a big one");
    import_ok(&data, "folder", &dir, "x");
    let r = filter(&data, &["--min-side", "32", "--min-words", "1"]);
    assert_eq!(
        (r["removed"].as_u64(), r["too_small"].as_u64()),
        (Some(1), Some(1))
    );
    let left = items(&data, "x");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].caption, "a big one");
}

#[test]
fn edit_delete_and_merge_check_their_items() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    let dir = duplicates(t.path());
    import_ok(&data, "folder", &dir, "a");
    write(&t.path().join("g/g.png"), png(41, 32, 32));
    write(&t.path().join("g/g.txt"), "only in b");
    import_ok(&data, "folder", &t.path().join("g"), "b");
    let a = items(&data, "a");
    let b = items(&data, "b");
    let (first, other) = (a[0].id, b[0].id);

    // edit
    datasets(
        &data,
        &[
            "edit",
            "a",
            &first.to_string(),
            "--caption",
            "  a new caption ",
        ],
    );
    let edited = items(&data, "a")
        .into_iter()
        .find(|i| i.id == first)
        .unwrap();
    assert_eq!(edited.caption, "a new caption");
    let e = fails(&data, &["edit", "a", &other.to_string(), "--caption", "x"]);
    assert!(
        e.contains(&format!("item #{other}")) && e.contains("\"b\"") && e.contains("not \"a\""),
        "{e}"
    );
    let e = fails(&data, &["edit", "a", "99999", "--caption", "x"]);
    assert!(e.contains("no item #99999"), "{e}");
    let e = fails(&data, &["edit", "a", &first.to_string(), "--caption", "  "]);
    assert!(e.contains("empty"), "{e}");

    // merge: a's items into b, shared blobs, and a second merge adds nothing
    let blobs_before = count_files(&data.join("blobs"));
    let r = json(&datasets(&data, &["merge", "a", "b", "--json"]));
    assert_eq!(
        (
            r["added"].as_u64(),
            r["already_there"].as_u64(),
            r["created"].as_bool()
        ),
        (Some(6), Some(0), Some(false))
    );
    assert_eq!(
        count_files(&data.join("blobs")),
        blobs_before,
        "nothing copied on disk"
    );
    let merged = items(&data, "b");
    assert_eq!(merged.len(), 7);
    assert!(merged.iter().any(|i| i.caption == "a new caption"));
    let r = json(&datasets(&data, &["merge", "a", "b", "--json"]));
    assert_eq!(
        (r["added"].as_u64(), r["already_there"].as_u64()),
        (Some(0), Some(6))
    );
    assert_eq!(items(&data, "b").len(), 7);
    // into a new dataset
    let r = json(&datasets(&data, &["merge", "a", "c", "--json"]));
    assert_eq!(
        (r["added"].as_u64(), r["created"].as_bool()),
        (Some(6), Some(true))
    );
    let e = fails(&data, &["merge", "a", "a"]);
    assert!(e.contains("into itself"), "{e}");
    let e = fails(&data, &["merge", "nope", "a"]);
    assert!(e.contains("no dataset named \"nope\""), "{e}");
    let e = fails(&data, &["merge", "a", "../x"]);
    assert!(e.contains("invalid dataset name"), "{e}");

    // delete: all or none
    let (x, y) = (a[1].id, a[2].id);
    let e = fails(&data, &["delete", "a", &x.to_string(), &other.to_string()]);
    assert!(e.contains(&format!("item #{other}")), "{e}");
    let e = fails(&data, &["delete", "a", &x.to_string(), "99999"]);
    assert!(e.contains("no item #99999"), "{e}");
    assert_eq!(
        items(&data, "a").len(),
        6,
        "a failed delete deletes nothing"
    );
    datasets(
        &data,
        &[
            "delete",
            "a",
            &x.to_string(),
            &y.to_string(),
            &x.to_string(),
        ],
    );
    let left: BTreeSet<i64> = items(&data, "a").iter().map(|i| i.id).collect();
    assert_eq!(left.len(), 4);
    assert!(!left.contains(&x) && !left.contains(&y));
    assert_eq!(
        items(&data, "b").len(),
        7,
        "other datasets keep their copies"
    );
    let e = fails(&data, &["delete", "nope", "1"]);
    assert!(e.contains("no dataset named \"nope\""), "{e}");
}

fn count_files(dir: &Path) -> usize {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter(|e| e.as_ref().unwrap().file_type().is_file())
        .count()
}

#[test]
fn vqa_questions_on_one_image_are_not_duplicates_nor_empty() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    let d = t.path().join("vqa");
    let same = png(51, 64, 64);
    write(&d.join("a.png"), &same);
    write(&d.join("b.png"), &same);
    let q = |image: &str, question: &str| {
        format!("{{\"image\": \"{image}\", \"question\": \"{question}\", \"answer\": \"red\"}}\n")
    };
    let lines = [
        q("a.png", "what colour is it"),
        q("b.png", "what colour is it"),
        q("a.png", "is it red"),
    ]
    .concat();
    write(&d.join("q.jsonl"), lines);
    run_ok(
        tessera(&data)
            .args(["import", "vqa-jsonl"])
            .arg(d.join("q.jsonl"))
            .args(["--dataset", "q", "--json"]),
    );
    assert_eq!(items(&data, "q").len(), 3);
    // the same question about the same image twice is a duplicate; another question is not
    let r = json(&datasets(&data, &["dedupe", "q", "--json"]));
    let groups = r["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{r}");
    let files: BTreeSet<String> = groups[0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| file_name(i["source_path"].as_str().unwrap()))
        .collect();
    assert_eq!(
        files,
        BTreeSet::from(["a.png".to_string(), "b.png".to_string()])
    );
    let r = json(&datasets(
        &data,
        &["filter", "q", "--drop-empty", "--dry-run", "--json"],
    ));
    assert_eq!(
        r["removed"].as_u64(),
        Some(0),
        "questions are not empty captions"
    );
}

#[test]
fn edit_refuses_a_caption_that_would_duplicate_an_item() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    let d = t.path().join("j");
    write(&d.join("a.png"), png(61, 32, 32));
    let rows = "{\"image\": \"a.png\", \"caption\": \"one\"}\n{\"image\": \"a.png\", \"caption\": \"two\"}\n";
    import_ok(&data, "jsonl", &write(&d.join("a.jsonl"), rows), "j");
    let all = items(&data, "j");
    let one = all.iter().find(|i| i.caption == "one").unwrap().id;
    let two = all.iter().find(|i| i.caption == "two").unwrap().id;
    let e = fails(&data, &["edit", "j", &two.to_string(), "--caption", "one"]);
    assert!(e.contains(&format!("already has item #{one}")), "{e}");
    assert!(items(&data, "j").iter().any(|i| i.caption == "two"));
}
