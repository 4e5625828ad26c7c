//! Bad inputs in one batch: each gets a clear error naming the file (or, for a video without
//! audio, flagged items), and the rest of the batch is ingested.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `tessera` with directory permissions enforced even for root (whose capabilities would
/// otherwise read any directory).
fn tessera_as_user(data: &Path) -> Command {
    let base = tessera(data);
    if !is_root() {
        return base;
    }
    let mut c = Command::new("setpriv");
    c.arg("--bounding-set=-dac_override,-dac_read_search")
        .arg(base.get_program())
        .args(base.get_args());
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

fn reason_for<'a>(report: &'a serde_json::Value, file: &Path) -> &'a str {
    report["videos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["path"] == file.to_string_lossy().as_ref())
        .unwrap_or_else(|| panic!("{} not in report", file.display()))["reason"]
        .as_str()
        .unwrap_or("")
}

#[test]
fn each_bad_input_is_named_and_the_rest_is_ingested() {
    let inputs = tempfile::tempdir().unwrap();
    let d = inputs.path();
    let empty = d.join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let text = d.join("notes.mp4");
    std::fs::write(
        &text,
        "These are my lecture notes, not a video.\n".repeat(50),
    )
    .unwrap();
    let truncated = d.join("truncated.mp4");
    let whole = std::fs::read(composed_path("talk.mp4")).unwrap();
    std::fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();
    let random = d.join("random.mp4");
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let noise: Vec<u8> = (0..200_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&random, noise).unwrap();
    let silent = d.join("silent.mp4");
    std::fs::copy(composed_path("noaudio.mp4"), &silent).unwrap();
    let good = composed_path("talk.mkv");
    let missing = d.join("missing.mov");
    let locked = d.join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::copy(composed_path("noaudio.mp4"), locked.join("hidden.mp4")).unwrap();
    set_mode(&locked, 0o000);

    let data = tempfile::tempdir().unwrap();
    let all: Vec<PathBuf> = vec![
        empty.clone(),
        text.clone(),
        truncated.clone(),
        random.clone(),
        silent.clone(),
        good.clone(),
        missing.clone(),
        locked.clone(),
    ];
    let mut cmd = tessera_as_user(data.path());
    cmd.args(["ingest", "--dataset", "mixed", "--json"])
        .args(&all);
    let out = cmd.output().unwrap();
    set_mode(&locked, 0o755);
    assert!(
        !out.status.success(),
        "a batch with failures exits non-zero"
    );
    let report = json(&out);

    let expect = |file: &Path, words: &[&str]| {
        let r = reason_for(&report, file);
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(
            r.contains(name.as_ref()),
            "reason for {name} does not name it: {r:?}"
        );
        for w in words {
            assert!(r.contains(w), "reason for {name}: {r:?} lacks {w:?}");
        }
    };
    expect(&empty, &["empty"]);
    expect(&text, &["not a video FFmpeg can read"]);
    expect(&truncated, &["not a video FFmpeg can read"]);
    expect(&random, &["not a video FFmpeg can read"]);

    let rejected = report["rejected"].as_array().unwrap();
    let rejected_reason = |p: &Path| {
        rejected
            .iter()
            .find(|r| r[0] == p.to_string_lossy().as_ref())
            .map(|r| r[1].as_str().unwrap().to_string())
    };
    let r = rejected_reason(&missing).expect("missing file reported");
    assert!(r.contains("No such file"), "{r}");
    let r = rejected_reason(&locked).expect("unreadable directory reported");
    assert!(
        r.contains("cannot read directory") && r.contains("Permission denied"),
        "{r}"
    );

    // the rest went in: the silent video flagged, the good one with speech
    for ok in [&silent, &good] {
        let v = report["videos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["path"] == ok.to_string_lossy().as_ref())
            .unwrap();
        assert_eq!(v["outcome"], "ingested", "{v}");
    }
    let items = items(data.path(), "mixed");
    let silent_items: Vec<_> = items
        .iter()
        .filter(|i| i.source_path == silent.to_string_lossy())
        .collect();
    assert!(!silent_items.is_empty() && silent_items.iter().all(|i| i.no_speech));
    assert!(items
        .iter()
        .any(|i| i.source_path == good.to_string_lossy() && i.caption.contains("Dashwood")));

    // the failures are remembered with their reasons
    let out = run_ok(tessera(data.path()).args(["datasets", "show", "mixed", "--json"]));
    let shown = json(&out);
    let failed: Vec<&str> = shown["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        failed.contains(&text.to_str().unwrap()) && failed.contains(&truncated.to_str().unwrap())
    );
    assert_eq!(shown["dataset"]["videos"], 2);
}

#[test]
fn a_bad_model_fails_the_videos_that_need_it_and_not_the_others() {
    let data = tempfile::tempdir().unwrap();
    let bogus = data.path().join("model.bin");
    std::fs::write(&bogus, b"<html>404 Not Found</html>".repeat(10)).unwrap();
    let speech = composed_path("talk.mp4");
    let silent = composed_path("noaudio.mp4");
    let out = tessera(data.path())
        .args(["ingest", "--dataset", "m", "--json", "--model"])
        .arg(&bogus)
        .arg(&speech)
        .arg(&silent)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let report = json(&out);
    let r = reason_for(&report, &speech);
    assert!(
        r.contains("model.bin") && r.contains("not a GGML Whisper model"),
        "{r}"
    );
    let items = items(data.path(), "m");
    assert!(
        !items.is_empty()
            && items
                .iter()
                .all(|i| i.source_path == silent.to_string_lossy())
    );

    // with the right model the failed video resumes after its finished stages
    let out = ingest(data.path(), "m", &[speech.clone(), silent]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    let v = &report["videos"][0];
    assert_eq!(v["outcome"], "ingested");
    let stages: Vec<&str> = v["stages_run"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(stages, ["transcribed", "frames", "items"]);
    assert_eq!(report["videos"][1]["outcome"], "already_ingested");
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_reader_that_goes_away_ends_the_listing_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = tessera(tmp.path())
        .args(["runs", "list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // `| head -0`: the reader is gone before the first line is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    use std::os::unix::process::ExitStatusExt;
    assert!(
        out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
        "{:?}",
        out.status
    );
}
