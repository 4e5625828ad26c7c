//! `tessera pretrain`, `runs list|show`, `resume` end to end on a real store: metrics per step,
//! a kill -9 mid-run then a resume that loses and repeats nothing, and the errors users meet.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{json, png_bytes, run_ok, tessera, write};

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/tiny.toml");

/// A folder of 12 captioned images, imported as `pics`.
fn pics(data: &Path) {
    let dir = data.join("src");
    for i in 0..12u8 {
        write(&dir.join(format!("p{i}.png")), png_bytes(i * 20));
        write(
            &dir.join(format!("p{i}.txt")),
            format!("picture number {i} in a set of twelve"),
        );
    }
    run_ok(
        tessera(data)
            .args(["import", "folder"])
            .arg(&dir)
            .args(["--dataset", "pics"]),
    );
}

fn steps_of(show: &serde_json::Value) -> Vec<u64> {
    show["train"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["step"].as_u64().unwrap())
        .collect()
}

#[test]
fn pretrain_records_every_objectives_loss_per_step() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    pics(data);
    let out = run_ok(tessera(data).args([
        "pretrain",
        "--dataset",
        "pics",
        "--config",
        TINY,
        "--objectives",
        "mlm,mim,itm,contrastive",
        "--steps",
        "5",
        "--batch",
        "4",
        "--run",
        "first",
        "--json",
    ]));
    let report = json(&out);
    assert_eq!(report["status"], "finished");
    assert_eq!(report["step"], 5);

    let list = json(&run_ok(tessera(data).args(["runs", "list", "--json"])));
    assert_eq!(list[0]["name"], "first");
    assert_eq!(list[0]["dataset"], "pics");
    assert!(list[0]["loss"].as_f64().unwrap().is_finite());

    let show = json(&run_ok(
        tessera(data).args(["runs", "show", "first", "--json"]),
    ));
    assert_eq!(steps_of(&show), vec![1, 2, 3, 4, 5]);
    for m in show["train"].as_array().unwrap() {
        let parts: f64 = ["mlm_loss", "mim_loss", "itm_loss", "contrastive_loss"]
            .iter()
            .map(|k| m[k].as_f64().unwrap_or_else(|| panic!("no {k} in {m}")))
            .sum();
        // All weights are 1: the total is the sum of the objectives' losses.
        assert!((m["loss"].as_f64().unwrap() - parts).abs() < 1e-4, "{m}");
        for k in ["lr", "grad_norm", "samples_per_s", "mlm_acc", "itm_acc"] {
            assert!(m[k].as_f64().is_some(), "no {k} in {m}");
        }
    }
    assert_eq!(
        show["config"]["config"]["objectives"]["mim"]["enabled"],
        true
    );
    assert_eq!(
        show["config"]["config"]["objectives"]["alt"]["enabled"],
        false
    );
    assert_eq!(show["checkpoints"][0]["step"], 5);
    let ckpt = data.join(show["checkpoints"][0]["path"].as_str().unwrap());
    assert!(ckpt.join("model.safetensors").is_file());

    // Deleting the run takes its rows and its files; deleting it again names it.
    let deleted = json(&run_ok(
        tessera(data).args(["runs", "delete", "first", "--json"]),
    ));
    assert_eq!(deleted["checkpoints"], 1);
    assert!(deleted["bytes"].as_u64().unwrap() > 10_000);
    assert!(!ckpt.exists());
    let list = json(&run_ok(tessera(data).args(["runs", "list", "--json"])));
    assert_eq!(list, serde_json::json!([]));
    let again = tessera(data)
        .args(["runs", "delete", "first"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("first"));
}

#[test]
fn kill_9_mid_run_then_resume_finishes_without_gaps_or_repeats() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    pics(data);
    let mut child = tessera(data)
        .args([
            "pretrain",
            "--dataset",
            "pics",
            "--config",
            TINY,
            "--objectives",
            "mlm,mim,contrastive",
            "--steps",
            "150",
            "--batch",
            "4",
            "--checkpoint-every",
            "3",
            "--run",
            "long",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let show = json(&run_ok(
            tessera(data).args(["runs", "show", "long", "--json"]),
        ));
        if show["checkpoints"].as_array().is_some_and(|c| c.len() >= 2) {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint in two minutes"
        );
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let show = json(&run_ok(
        tessera(data).args(["runs", "show", "long", "--json"]),
    ));
    assert_eq!(show["status"], "running", "a killed run is left as it was");
    let done = steps_of(&show);
    assert!(!done.is_empty());

    let out = run_ok(tessera(data).args(["resume", "long", "--json"]));
    assert_eq!(json(&out)["status"], "finished");
    let show = json(&run_ok(
        tessera(data).args(["runs", "show", "long", "--json"]),
    ));
    assert_eq!(show["status"], "finished");
    assert_eq!(
        steps_of(&show),
        (1..=150).collect::<Vec<u64>>(),
        "every step once"
    );
    let e = tessera(data).args(["resume", "long"]).output().unwrap();
    assert!(!e.status.success());
    assert!(String::from_utf8_lossy(&e.stderr).contains("already finished"));
}

#[test]
fn validation_on_the_held_out_split_and_ctrl_c_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    pics(data);
    run_ok(tessera(data).args(["datasets", "split", "pics", "--ratios", "train=0.5,val=0.5"]));
    let child = tessera(data)
        .args([
            "pretrain",
            "--dataset",
            "pics",
            "--config",
            TINY,
            "--objectives",
            "mim,contrastive",
            "--steps",
            "100000",
            "--batch",
            "2",
            "--validate-every",
            "2",
            "--run",
            "v",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let show = json(&run_ok(tessera(data).args(["runs", "show", "v", "--json"])));
        if show["val"].as_array().is_some_and(|v| !v.is_empty()) {
            let v = &show["val"][0];
            for k in [
                "loss",
                "mim_loss",
                "contrastive_loss",
                "r1_text_to_image",
                "r1_image_to_text",
            ] {
                assert!(v[k].as_f64().is_some(), "no {k} in {v}");
            }
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no validation in two minutes"
        );
    }
    // Ctrl-C: the run checkpoints where it is and stops cleanly.
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], "stopped");
    let show = json(&run_ok(tessera(data).args(["runs", "show", "v", "--json"])));
    assert_eq!(show["status"], "stopped");
    let last = show["checkpoints"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        last["step"], report["step"],
        "a checkpoint at the step it stopped"
    );
}

#[test]
fn small_starts_from_minilm() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    pics(data);
    let small = concat!(env!("CARGO_MANIFEST_DIR"), "/models/small.toml");
    let out = run_ok(
        tessera(data)
            .args([
                "pretrain",
                "--dataset",
                "pics",
                "--config",
                small,
                "--init",
                "minilm",
                "--minilm",
            ])
            .arg(common::assets().join("minilm/model.safetensors"))
            .args([
                "--objectives",
                "mlm",
                "--steps",
                "1",
                "--batch",
                "2",
                "--json",
            ]),
    );
    assert_eq!(json(&out)["status"], "finished");
    let e = tessera(data)
        .args([
            "pretrain",
            "--dataset",
            "pics",
            "--config",
            TINY,
            "--init",
            "minilm",
            "--minilm",
        ])
        .arg(common::assets().join("minilm/model.safetensors"))
        .output()
        .unwrap();
    assert!(!e.status.success());
    assert!(String::from_utf8_lossy(&e.stderr).contains("shape"));
}

/// `pretrain` args for `pics`, tiny, batch 4, seed 7.
fn pretrain_pics(data: &Path, run: &str, objectives: &str, steps: &str) -> std::process::Command {
    let mut cmd = tessera(data);
    cmd.args(["pretrain", "--dataset", "pics", "--config", TINY])
        .args(["--objectives", objectives, "--steps", steps])
        .args(["--batch", "4", "--seed", "7", "--run", run, "--json"]);
    cmd
}

fn first_step(data: &Path, run: &str, key: &str) -> f64 {
    let show = json(&run_ok(tessera(data).args(["runs", "show", run, "--json"])));
    show["train"][0][key]
        .as_f64()
        .unwrap_or_else(|| panic!("no {key} at {run}'s first step"))
}

#[test]
fn pretraining_on_from_another_run_starts_from_its_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    pics(data);
    run_ok(&mut pretrain_pics(data, "base", "mlm", "40"));
    // Two one-step runs with another objective mix, the same seed and batches: one from base.
    run_ok(pretrain_pics(data, "on", "mlm,itm", "1").args(["--from", "base"]));
    run_ok(&mut pretrain_pics(data, "fresh", "mlm,itm", "1"));
    let (on, fresh) = (
        first_step(data, "on", "mlm_loss"),
        first_step(data, "fresh", "mlm_loss"),
    );
    assert!(
        on < fresh - 1.0,
        "base's 40 MLM steps should carry over: {on} vs fresh {fresh}"
    );
    let list = json(&run_ok(tessera(data).args(["runs", "list", "--json"])));
    let parent_of = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .map(|r| r["parent"].clone())
            .unwrap()
    };
    assert_eq!(parent_of("on"), "base");
    assert!(parent_of("fresh").is_null());

    let wider = write(
        &data.join("wider.toml"),
        std::fs::read_to_string(TINY)
            .unwrap()
            .replace("layers = 2", "layers = 3"),
    );
    let out = tessera(data)
        .args(["pretrain", "--dataset", "pics", "--config"])
        .arg(&wider)
        .args(["--from", "base", "--run", "deeper"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("base") && err.contains("architecture"),
        "{err}"
    );
    let out = pretrain_pics(data, "orphan", "mlm", "1")
        .args(["--from", "no-such-run"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-run"));
    let runs = json(&run_ok(tessera(data).args(["runs", "list", "--json"])));
    assert_eq!(
        runs.as_array().unwrap().len(),
        3,
        "no row for a refused start"
    );
}

#[test]
fn bad_configs_and_datasets_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    pics(data);
    let bad = write(
        &data.join("bad.toml"),
        std::fs::read_to_string(TINY)
            .unwrap()
            .replace("layers = 2", "layerz = 2"),
    );
    let out = tessera(data)
        .args(["pretrain", "--dataset", "pics", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("layerz"), "{err}");

    let out = tessera(data)
        .args(["pretrain", "--dataset", "nothing-here", "--config", TINY])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing-here"));

    let out = tessera(data)
        .args([
            "pretrain",
            "--dataset",
            "pics",
            "--config",
            TINY,
            "--objectives",
            "mlm,jigsaw",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("jigsaw"));
    let runs = json(&run_ok(tessera(data).args(["runs", "list", "--json"])));
    assert_eq!(
        runs.as_array().unwrap().len(),
        0,
        "no run row for a refused start"
    );
}

#[test]
fn a_dataset_without_images_is_refused_before_a_run_exists() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tessera::store::Store::open(tmp.path()).unwrap();
    store.ensure_dataset("empty").unwrap();
    let cfg = tessera::model::RunConfig::load(Path::new(TINY)).unwrap();
    let opts = tessera::train::PretrainOptions {
        dataset: "empty".into(),
        config: cfg,
        run: None,
        init: tessera::train::InitFrom::Random,
        device: tessera::model::DeviceChoice::Cpu,
    };
    let e = tessera::train::pretrain(
        &store,
        &opts,
        std::sync::Arc::new(tessera::events::NullSink),
        &tessera::train::Cancel::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("empty") && e.contains("no items"), "{e}");
    assert!(store.runs().unwrap().is_empty());
}
