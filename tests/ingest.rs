//! Ingest of composed videos (real footage, real speech, known cuts) through the real CLI.

mod common;

use common::*;
use image_hasher::{HashAlg, HasherConfig};
use tessera::eval::wer::normalize;

fn overlaps(a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.1.min(b.1) - a.0.max(b.0)).max(0.0)
}

#[test]
fn composed_video_becomes_contextual_keyframe_transcript_pairs() {
    let talk = composed("talk");
    let data = tempfile::tempdir().unwrap();
    let file = composed_path("talk.mp4");
    let out = ingest(data.path(), "talks", std::slice::from_ref(&file));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert_eq!(report["videos"][0]["outcome"], "ingested");
    let items = items(data.path(), "talks");
    assert!(items.len() >= 4, "{items:#?}");
    let speech_items: Vec<&Item> = items.iter().filter(|i| !i.no_speech).collect();

    for it in &items {
        let (a, b, f) = (it.start_s.unwrap(), it.end_s.unwrap(), it.frame_s.unwrap());
        // keyframes come from inside their spans, and spans lie inside the video
        assert!(a <= f && f <= b, "frame {f} outside {a}..{b}");
        assert!(a >= 0.0 && b <= talk.duration + 0.5 && a < b);
        assert_eq!(it.source_path, file.to_string_lossy());
        assert_eq!(it.image_hash.len(), 64);
        let img = blob_image(data.path(), &it.image_hash);
        assert_eq!((img.width(), img.height()), (640, 360));
        if it.no_speech {
            assert!(it.caption.is_empty());
        }
    }

    // captions match the reference words spoken in their span (Whisper's timestamps are coarse:
    // a second of slack either side)
    for it in &speech_items {
        let span = (it.start_s.unwrap() - 1.0, it.end_s.unwrap() + 1.0);
        let reference: Vec<String> = talk
            .speech
            .iter()
            .filter(|s| overlaps((s.start, s.end), span) > 0.0)
            .flat_map(|s| normalize(&s.text))
            .collect();
        let words = normalize(&it.caption);
        let found = words.iter().filter(|w| reference.contains(w)).count();
        assert!(
            found as f64 >= 0.85 * words.len() as f64,
            "caption {:?} vs reference {:?}",
            it.caption,
            reference.join(" ")
        );
    }

    // the items' spans cover the speech
    for s in &talk.speech {
        let covered: f64 = speech_items
            .iter()
            .map(|i| overlaps((s.start, s.end), (i.start_s.unwrap(), i.end_s.unwrap())))
            .fold(0.0, f64::max);
        let union: f64 = {
            let mut spans: Vec<(f64, f64)> = speech_items
                .iter()
                .map(|i| (i.start_s.unwrap().max(s.start), i.end_s.unwrap().min(s.end)))
                .filter(|(a, b)| b > a)
                .collect();
            spans.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut total = 0.0;
            let mut reach = s.start;
            for (a, b) in spans {
                let a = a.max(reach);
                if b > a {
                    total += b - a;
                    reach = b;
                }
            }
            total
        };
        assert!(covered > 0.0, "no item covers {:?}", s.text);
        assert!(
            union >= 0.8 * (s.end - s.start),
            "speech {:?} covered {union:.2}s",
            s.text
        );
    }

    // every spoken word reaches some caption
    let all_captions: Vec<String> = speech_items
        .iter()
        .flat_map(|i| normalize(&i.caption))
        .collect();
    let reference: Vec<String> = talk
        .speech
        .iter()
        .flat_map(|s| normalize(&s.text))
        .collect();
    let missing = reference
        .iter()
        .filter(|w| !all_captions.contains(w))
        .count();
    assert!(
        missing as f64 <= 0.1 * reference.len() as f64,
        "{missing} words missing"
    );

    // near-duplicates are removed: the still shot spans two sentences but yields one item,
    // and no two consecutive items show near-identical frames
    let (still_a, still_b) = talk.still.unwrap();
    let in_still: Vec<&Item> = items
        .iter()
        .filter(|i| {
            let f = i.frame_s.unwrap();
            f > still_a + 0.3 && f < still_b - 0.3
        })
        .collect();
    assert_eq!(in_still.len(), 1, "{in_still:#?}");
    let still_words = normalize(&in_still[0].caption).len();
    let spoken_in_still: Vec<&SpeechSpan> = talk
        .speech
        .iter()
        .filter(|s| s.start >= still_a && s.end <= still_b)
        .collect();
    assert!(spoken_in_still.len() >= 2);
    assert!(
        still_words
            >= spoken_in_still
                .iter()
                .map(|s| normalize(&s.text).len())
                .sum::<usize>()
                - 2,
        "the folded item carries the speech of both sentences: {:?}",
        in_still[0].caption
    );
    let hasher = HasherConfig::new().hash_alg(HashAlg::Gradient).to_hasher();
    let hashes: Vec<_> = items
        .iter()
        .map(|i| hasher.hash_image(&blob_image(data.path(), &i.image_hash)))
        .collect();
    for w in hashes.windows(2) {
        assert!(
            w[0].dist(&w[1]) > 4,
            "consecutive near-duplicate frames kept"
        );
    }

    // context: the speech just before and after, never the item's own
    for it in &speech_items {
        let (a, b) = (it.start_s.unwrap(), it.end_s.unwrap());
        let earlier: Vec<String> = talk
            .speech
            .iter()
            .filter(|s| s.start < a + 0.5)
            .flat_map(|s| normalize(&s.text))
            .collect();
        let later: Vec<String> = talk
            .speech
            .iter()
            .filter(|s| s.end > b - 0.5)
            .flat_map(|s| normalize(&s.text))
            .collect();
        let known = |ctx: &str, pool: &[String]| {
            let w = normalize(ctx);
            w.iter().filter(|x| pool.contains(x)).count() as f64 >= 0.85 * w.len() as f64
        };
        assert!(
            known(&it.context_before, &earlier),
            "before {:?} of {:?}",
            it.context_before,
            it.caption
        );
        assert!(
            known(&it.context_after, &later),
            "after {:?} of {:?}",
            it.context_after,
            it.caption
        );
        assert_ne!(it.context_before, it.caption);
        assert_ne!(it.context_after, it.caption);
    }
    assert!(speech_items.iter().any(|i| !i.context_before.is_empty()));
    assert!(speech_items.iter().any(|i| !i.context_after.is_empty()));
}

#[test]
fn a_second_run_over_the_same_files_does_nothing() {
    let data = tempfile::tempdir().unwrap();
    let file = composed_path("noaudio.mp4");
    let first = ingest(data.path(), "d", std::slice::from_ref(&file));
    assert!(first.status.success());
    let before = items(data.path(), "d");
    let second = json(&ingest(data.path(), "d", &[file.clone(), file.clone()]));
    assert_eq!(
        second["videos"].as_array().unwrap().len(),
        1,
        "named twice, ingested once"
    );
    assert_eq!(second["videos"][0]["outcome"], "already_ingested");
    assert_eq!(
        second["videos"][0]["stages_run"].as_array().unwrap().len(),
        0
    );
    let after = items(data.path(), "d");
    assert_eq!(
        before.iter().map(|i| i.id).collect::<Vec<_>>(),
        after.iter().map(|i| i.id).collect::<Vec<_>>()
    );
    // the same bytes under another name are the same video
    let copy = data.path().join("renamed.mp4");
    std::fs::copy(&file, &copy).unwrap();
    let third = json(&ingest(data.path(), "d", &[copy]));
    assert_eq!(third["videos"][0]["outcome"], "already_ingested");
    assert_eq!(items(data.path(), "d").len(), before.len());
}

#[test]
fn video_without_audio_yields_flagged_keyframes_per_shot() {
    let noaudio = composed("noaudio");
    let data = tempfile::tempdir().unwrap();
    let out = ingest(data.path(), "silent", &[composed_path("noaudio.mp4")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let items = items(data.path(), "silent");
    assert!(!items.is_empty());
    assert!(items.iter().all(|i| i.no_speech && i.caption.is_empty()));
    // every shot between the composed cuts is shown by some keyframe
    let mut bounds = vec![0.0];
    bounds.extend(&noaudio.cuts);
    bounds.push(noaudio.duration);
    for w in bounds.windows(2) {
        assert!(
            items.iter().any(|i| {
                let f = i.frame_s.unwrap();
                f >= w[0] && f < w[1]
            }),
            "no keyframe in shot {:?}",
            w
        );
    }
    let out = run_ok(tessera(data.path()).args(["datasets", "show", "silent", "--json"]));
    let v = json(&out);
    assert_eq!(
        v["dataset"]["no_speech_items"].as_i64().unwrap() as usize,
        items.len()
    );
}

#[test]
fn mp4_mov_webm_and_mkv_give_the_same_transcript() {
    let talk = composed("talk");
    let data = tempfile::tempdir().unwrap();
    let files: Vec<_> = talk.files.iter().map(|f| composed_path(f)).collect();
    let out = ingest(data.path(), "formats", &files);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let items = items(data.path(), "formats");
    let mut transcripts = Vec::new();
    for f in &files {
        let mut captions: Vec<&str> = items
            .iter()
            .filter(|i| i.source_path == f.to_string_lossy() && !i.no_speech)
            .map(|i| i.caption.as_str())
            .collect();
        captions.dedup();
        let words: Vec<String> = captions.iter().flat_map(|c| normalize(c)).collect();
        let mut unique = words.clone();
        unique.dedup();
        assert!(!words.is_empty(), "{} gave no speech", f.display());
        transcripts.push((f.clone(), words));
    }
    for (f, t) in &transcripts[1..] {
        assert_eq!(
            t,
            &transcripts[0].1,
            "{} differs from {}",
            f.display(),
            transcripts[0].0.display()
        );
    }
    let out = run_ok(tessera(data.path()).args(["datasets", "list", "--json"]));
    assert_eq!(json(&out)[0]["videos"], 4);
}

#[test]
fn a_cancelled_batch_stops_before_its_next_video() {
    use std::sync::Arc;
    use tessera::ingest::{ingest_videos, IngestOptions, PairingOptions};
    let t = tempfile::tempdir().unwrap();
    let store = tessera::store::Store::open(t.path()).unwrap();
    let opts = IngestOptions {
        dataset: "v".into(),
        model: model(),
        decode: Default::default(),
        pairing: PairingOptions::default(),
        sampling: Default::default(),
        cancel: Default::default(),
    };
    opts.cancel.cancel();
    let inputs = [composed_path("talk.mp4"), composed_path("noaudio.mp4")];
    let sink = Arc::new(tessera::events::RecordingSink::default());
    let report = ingest_videos(&store, &inputs, &opts, sink.clone()).unwrap();
    assert!(report.cancelled);
    assert!(report.videos.is_empty(), "no video was started");
    assert!(!sink
        .events()
        .iter()
        .any(|e| matches!(e, tessera::events::Event::VideoStarted { .. })));
    // Nothing half-done: the next run ingests both from the start.
    let again = IngestOptions {
        cancel: Default::default(),
        ..opts
    };
    let report =
        ingest_videos(&store, &inputs, &again, Arc::new(tessera::events::NullSink)).unwrap();
    assert!(!report.cancelled);
    assert_eq!(report.videos.len(), 2);
    assert_eq!(report.failed(), 0);
}
