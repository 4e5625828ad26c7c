//! `tessera transcribe` with real Whisper tiny.en weights on real read speech.

mod common;

use common::*;
use tessera::eval::wer::{align, normalize, WerCounts};

#[test]
fn librivox_word_error_rate_is_at_most_8_percent() {
    let speech = assets().join("speech");
    let data = tempfile::tempdir().unwrap();
    let mut total = WerCounts::default();
    let mut clips = 0;
    for entry in std::fs::read_dir(&speech).unwrap() {
        let wav = entry.unwrap().path();
        let txt = wav.with_extension("txt");
        if wav.extension().is_none_or(|e| e != "wav") || !txt.is_file() {
            continue;
        }
        let out = run_ok(
            tessera(data.path())
                .arg("transcribe")
                .arg(&wav)
                .arg("--json"),
        );
        let v = json(&out);
        let hyp: Vec<String> = v["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["text"].as_str().unwrap().to_string())
            .collect();
        let reference = std::fs::read_to_string(&txt).unwrap();
        let counts = align(&normalize(&reference), &normalize(&hyp.join(" ")));
        eprintln!(
            "{}: WER {:.3} — {}",
            wav.display(),
            counts.rate(),
            hyp.join(" ")
        );
        total = total + counts;
        clips += 1;
    }
    assert_eq!(
        clips, 5,
        "the five LibriVox clips of the pocketsphinx sdist"
    );
    assert!(total.reference_words > 60);
    assert!(
        total.rate() <= 0.08,
        "WER {:.3} over {clips} clips",
        total.rate()
    );
}

#[test]
fn jfk_is_transcribed_with_timestamps() {
    let data = tempfile::tempdir().unwrap();
    let out = run_ok(
        tessera(data.path())
            .arg("transcribe")
            .arg(assets().join("speech/jfk.wav"))
            .args(["--json", "--threads", "2"]),
    );
    let v = json(&out);
    assert_eq!(v["language"], "en");
    let segs = v["segments"].as_array().unwrap();
    let text: Vec<&str> = segs.iter().map(|s| s["text"].as_str().unwrap()).collect();
    let reference = "and so my fellow americans ask not what your country can do for you \
                     ask what you can do for your country";
    let counts = align(&normalize(reference), &normalize(&text.join(" ")));
    assert!(counts.rate() <= 0.05, "{text:?}");
    let mut last = 0.0;
    for s in segs {
        let (a, b) = (s["start_s"].as_f64().unwrap(), s["end_s"].as_f64().unwrap());
        assert!(a >= last - 1e-9 && b > a && b <= 11.5, "segment {a}..{b}");
        last = b;
    }
}

#[test]
fn a_model_file_that_is_not_ggml_is_named_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("ggml-fake.bin");
    std::fs::write(&bogus, vec![7u8; 4096]).unwrap();
    let out = tessera(dir.path())
        .arg("transcribe")
        .arg(assets().join("speech/jfk.wav"))
        .arg("--model")
        .arg(&bogus)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ggml-fake.bin") && err.contains("not a GGML Whisper model"),
        "{err}"
    );

    let out = tessera(dir.path())
        .args(["models", "verify"])
        .arg(&bogus)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a GGML Whisper model"));

    // the real one verifies, and installs under a name the default resolution then finds
    let out = run_ok(tessera(dir.path()).args(["models", "verify"]).arg(model()));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("tiny") && said.contains("English-only"),
        "{said}"
    );
    run_ok(
        tessera(dir.path())
            .args(["models", "install", "tiny.en", "--from"])
            .arg(model()),
    );
    let out = run_ok(
        tessera(dir.path())
            .env_remove("TESSERA_WHISPER_MODEL")
            .args(["models", "list", "--json"]),
    );
    let listed = json(&out);
    assert_eq!(listed["installed"].as_array().unwrap().len(), 1);
    let out = run_ok(
        tessera(dir.path())
            .env_remove("TESSERA_WHISPER_MODEL")
            .arg("transcribe")
            .arg(assets().join("speech/jfk.wav")),
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .to_lowercase()
        .contains("fellow americans"));
}
