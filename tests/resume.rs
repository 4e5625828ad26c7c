//! kill -9 in the middle of an ingest (a real child process), then a re-run: the store stays
//! consistent, nothing is duplicated or lost, and finished stages are not redone.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use rusqlite::{Connection, OpenFlags};

fn open_db(data: &Path) -> Option<Connection> {
    let p = data.join("tessera.db");
    if !p.exists() {
        return None;
    }
    Connection::open_with_flags(&p, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()
}

/// (source, frame time in ms) → caption, for comparing whole datasets.
fn by_frame(items: &[Item]) -> BTreeMap<(String, i64), String> {
    items
        .iter()
        .map(|i| {
            (
                (
                    i.source_path.clone(),
                    (i.frame_s.unwrap() * 1000.0).round() as i64,
                ),
                i.caption.clone(),
            )
        })
        .collect()
}

#[test]
fn kill_9_mid_ingest_then_resume_loses_and_duplicates_nothing() {
    let files = vec![
        composed_path("talk.mp4"),
        composed_path("talk.webm"),
        composed_path("noaudio.mp4"),
    ];
    let data = tempfile::tempdir().unwrap();
    let mut child = tessera(data.path())
        .args(["ingest", "--dataset", "r", "--json"])
        .args(&files)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    // Wait until some video has its transcript stored but not yet its items, then kill -9.
    let deadline = Instant::now() + Duration::from_secs(300);
    let (killed_path, killed_stage) = loop {
        assert!(
            Instant::now() < deadline,
            "ingest never reached the transcribed stage"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "ingest finished before it could be killed"
        );
        let hit = open_db(data.path()).and_then(|db| {
            db.query_row(
                "SELECT source_path, stage FROM jobs WHERE stage IN ('transcribed', 'frames')",
                [],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
            )
            .ok()
        });
        if let Some(hit) = hit {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            break hit;
        }
        std::thread::sleep(Duration::from_millis(5));
    };

    // The store is consistent after the kill.
    let db = open_db(data.path()).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let fk_violations: i64 = db
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(fk_violations, 0);
    let segments: i64 = db
        .query_row(
            "SELECT count(*) FROM transcript_segments s JOIN jobs j ON j.video_id = s.video_id
             WHERE j.source_path = ?1",
            [&killed_path],
            |r| r.get(0),
        )
        .unwrap();
    assert!(segments > 0, "the transcript was stored with its stage");
    drop(db);

    // Resume.
    let out = ingest(data.path(), "r", &files);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    let killed = report["videos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["path"] == killed_path.as_str())
        .expect("killed video in the report");
    assert_eq!(killed["outcome"], "ingested");
    let stages: Vec<&str> = killed["stages_run"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        !stages.contains(&"audio") && !stages.contains(&"transcribed"),
        "redid {stages:?}"
    );
    assert!(!stages.contains(&"probed"));
    if killed_stage == "frames" {
        assert!(!stages.contains(&"frames"), "redid {stages:?}");
    }
    assert!(stages.contains(&"items"));

    // Same items as an uninterrupted run: none lost, none duplicated.
    let resumed = items(data.path(), "r");
    let clean_dir = tempfile::tempdir().unwrap();
    let clean = ingest(clean_dir.path(), "r", &files);
    assert!(clean.status.success());
    let clean = items(clean_dir.path(), "r");
    assert_eq!(resumed.len(), clean.len());
    assert_eq!(by_frame(&resumed), by_frame(&clean));
    assert_eq!(by_frame(&resumed).len(), resumed.len(), "duplicate items");

    // And a third run does nothing at all.
    let again = json(&ingest(data.path(), "r", &files));
    for v in again["videos"].as_array().unwrap() {
        assert_eq!(v["outcome"], "already_ingested");
    }
    // The decoded-audio scratch space is gone once videos are done.
    let work = data.path().join("work");
    assert!(!work.exists() || std::fs::read_dir(&work).unwrap().count() == 0);
}
