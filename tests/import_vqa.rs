//! `tessera import` of VQA data: VQA v2 and JSONL on files generated here, the real easy-VQA set
//! (fetched by scripts/fetch-assets.sh), and each bad question named while the rest goes in.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use common::*;
use serde_json::{json, Value};

fn messages(report: &Value) -> Vec<String> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["message"].as_str().unwrap().to_string())
        .collect()
}

/// The one message that mentions `key`, which must mention every one of `parts` too.
fn assert_problem(msgs: &[String], key: &str, parts: &[&str]) {
    let hits: Vec<_> = msgs.iter().filter(|m| m.contains(key)).collect();
    assert_eq!(hits.len(), 1, "one problem about {key:?} in {msgs:?}");
    for p in parts {
        assert!(hits[0].contains(p), "{:?} does not mention {p:?}", hits[0]);
    }
}

/// `tessera items NAME --json`, with the VQA fields the shared `Item` does not have.
fn vqa_items(data: &Path, dataset: &str) -> Vec<Value> {
    let out = run_ok(tessera(data).args(["items", dataset, "--json"]));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn counts(report: &Value) -> (u64, u64, u64) {
    let n = |k: &str| report[k].as_u64().unwrap();
    (n("items"), n("added"), n("unchanged"))
}

/// Ten VQA v2 answers: `(answer, confidence, times)`.
fn ten(answers: &[(&str, &str, usize)]) -> Value {
    let mut list = Vec::new();
    for (a, c, times) in answers {
        for _ in 0..*times {
            list.push(json!({"answer": a, "answer_confidence": c, "answer_id": list.len() + 1}));
        }
    }
    Value::Array(list)
}

#[test]
fn vqa2_keeps_every_answer_and_types_and_names_each_bad_question() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    let images = t.path().join("val2014");
    write(&images.join("COCO_val2014_000000000042.jpg"), jpeg_bytes(1));
    write(&images.join("COCO_val2014_000000000007.jpg"), jpeg_bytes(2));
    let questions = write(
        &t.path().join("v2_OpenEnded_mscoco_val2014_questions.json"),
        json!({
            "data_subtype": "val2014",
            "questions": [
                {"image_id": 42, "question": "How many cats are there?", "question_id": 420},
                {"image_id": 42, "question": "Is the cat asleep?", "question_id": 421},
                {"image_id": 7, "question": "What color is the bus?", "question_id": 70},
                // no image 5 in the folder
                {"image_id": 5, "question": "Is it raining?", "question_id": 50},
                // its annotation has no answers
                {"image_id": 7, "question": "Why?", "question_id": 71},
            ]
        })
        .to_string(),
    );
    let annotation = |qid: i64, image: i64, answers: Value, atype: &str, qtype: &str| {
        json!({"question_id": qid, "image_id": image, "answers": answers,
               "multiple_choice_answer": answers.get(0).map(|a| a["answer"].clone()),
               "answer_type": atype, "question_type": qtype})
    };
    let annotations = write(
        &t.path().join("v2_mscoco_val2014_annotations.json"),
        json!({"annotations": [
            annotation(420, 42, ten(&[("2", "yes", 7), ("3", "maybe", 2), ("two", "yes", 1)]),
                       "number", "how many"),
            annotation(421, 42, ten(&[("yes", "yes", 10)]), "yes/no", "is the"),
            annotation(70, 7, ten(&[("red", "yes", 6), ("orange", "maybe", 4)]),
                       "other", "what color is the"),
            annotation(50, 5, ten(&[("no", "yes", 10)]), "yes/no", "is it"),
            annotation(71, 7, json!([]), "other", "why"),
            // answers a question the questions file does not have
            annotation(999, 42, ten(&[("no", "yes", 10)]), "yes/no", "is"),
        ]})
        .to_string(),
    );
    let ann = annotations.to_str().unwrap();
    let imgs = images.to_str().unwrap();
    let extra = ["--annotations", ann, "--images", imgs];
    let (out, report) = import(&data, "vqa2", &questions, "vqa", &extra);
    assert!(
        !out.status.success(),
        "bad questions fail the run: {report}"
    );
    assert_eq!(counts(&report), (3, 3, 0), "{report}");
    assert_eq!(report["images"], 2);
    let msgs = messages(&report);
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    let qfile = questions.to_str().unwrap();
    assert_problem(
        &msgs,
        "question_id 50",
        &[qfile, "image file not found", "000000000005"],
    );
    assert_problem(&msgs, "question_id 71", &[qfile, "no answers"]);
    assert_problem(&msgs, "question_id 999", &[ann, "not in"]);

    let items = vqa_items(&data, "vqa");
    assert_eq!(items.len(), 3);
    let by_q: BTreeMap<&str, &Value> = items
        .iter()
        .map(|i| (i["question"].as_str().unwrap(), i))
        .collect();
    let cats = by_q["How many cats are there?"];
    assert_eq!(
        cats["answers"],
        json!([
            {"answer": "2", "count": 7, "confidence": {"yes": 7}},
            {"answer": "3", "count": 2, "confidence": {"maybe": 2}},
            {"answer": "two", "count": 1, "confidence": {"yes": 1}}
        ])
    );
    assert_eq!(cats["answer_type"], "number");
    assert_eq!(cats["question_type"], "how many");
    assert_eq!(cats["caption"], "", "no caption in VQA v2");
    assert_eq!(cats["split"], "val2014");
    assert_eq!(cats["meta"]["question_id"], 420);
    assert_eq!(cats["meta"]["multiple_choice_answer"], "2");
    assert!(cats["source_path"]
        .as_str()
        .unwrap()
        .ends_with("COCO_val2014_000000000042.jpg"));
    let asleep = by_q["Is the cat asleep?"];
    assert_eq!(
        asleep["image_hash"], cats["image_hash"],
        "one image, two questions"
    );
    assert_eq!(by_q["What color is the bus?"]["answers"][1]["count"], 4);

    // Re-importing adds nothing.
    let (_, again) = import(&data, "vqa2", &questions, "vqa", &extra);
    assert_eq!(counts(&again), (3, 0, 3), "{again}");
    assert_eq!(vqa_items(&data, "vqa").len(), 3);
}

#[test]
fn vqa_jsonl_imports_questions_and_names_bad_lines() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    let dir = t.path().join("vqa");
    write(&dir.join("img/a.jpg"), jpeg_bytes(1));
    write(&dir.join("img/b.jpg"), jpeg_bytes(2));
    let lines = [
        r#"{"image": "img/a.jpg", "question": "what is it?", "answers": ["a dog", "dog", "a dog"]}"#,
        r#"{"image": "img/a.jpg", "question": "is it a cat?", "answer": "no", "split": "val"}"#,
        r#"{"image": "img/b.jpg", "question": "any text?", "answer": "yes", "caption": "a sign"}"#,
        r#"{"image": "img/b.jpg", "question": "broken", "answer": "#,
        r#"{"image": "img/missing.jpg", "question": "where?", "answer": "here"}"#,
        r#"{"image": "img/b.jpg", "question": "why?", "answers": []}"#,
    ];
    let file = write(&dir.join("questions.jsonl"), lines.join("\n") + "\n");
    let (out, report) = import(&data, "vqa-jsonl", &file, "j", &[]);
    assert!(!out.status.success());
    assert_eq!(counts(&report), (3, 3, 0), "{report}");
    let msgs = messages(&report);
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    let at = |line: u32| format!("{}:{line}:", file.display());
    assert_problem(&msgs, &at(4), &["malformed JSON"]);
    assert_problem(&msgs, &at(5), &["image file not found", "missing.jpg"]);
    assert_problem(&msgs, &at(6), &["no answers"]);

    let items = vqa_items(&data, "j");
    let by_q: BTreeMap<&str, &Value> = items
        .iter()
        .map(|i| (i["question"].as_str().unwrap(), i))
        .collect();
    assert_eq!(
        by_q["what is it?"]["answers"],
        json!([{"answer": "a dog", "count": 2}, {"answer": "dog", "count": 1}])
    );
    assert_eq!(by_q["is it a cat?"]["split"], "val");
    assert_eq!(by_q["any text?"]["caption"], "a sign");
    assert_eq!(by_q["what is it?"]["caption"], "");
    let (_, again) = import(&data, "vqa-jsonl", &file, "j", &[]);
    assert_eq!(counts(&again), (3, 0, 3));
}

#[test]
fn easy_vqa_full_set_through_the_cli() {
    let root = assets().join("easy-vqa/data");
    assert!(
        root.join("answers.txt").is_file(),
        "easy-VQA missing in {}: run scripts/fetch-assets.sh",
        root.display()
    );
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    let started = std::time::Instant::now();
    let (out, report) = import(&data, "easy-vqa", &root, "easy", &[]);
    eprintln!("easy-VQA import: {:.1} s", started.elapsed().as_secs_f64());
    assert!(out.status.success(), "{}", messages(&report).join("\n"));
    assert_eq!(counts(&report), (48_248, 48_248, 0));
    assert_eq!(report["images"], 5_000);

    let items = vqa_items(&data, "easy");
    let mut questions: BTreeMap<&str, usize> = BTreeMap::new();
    let mut images: BTreeMap<&str, HashSet<&str>> = BTreeMap::new();
    let mut answers: HashSet<&str> = HashSet::new();
    for it in &items {
        let split = it["split"].as_str().unwrap();
        *questions.entry(split).or_default() += 1;
        images
            .entry(split)
            .or_default()
            .insert(it["image_hash"].as_str().unwrap());
        let a = it["answers"].as_array().unwrap();
        assert_eq!(a.len(), 1, "easy-VQA has one answer per question: {it}");
        answers.insert(a[0]["answer"].as_str().unwrap());
        assert!(!it["question"].as_str().unwrap().is_empty());
        assert_eq!(it["caption"], "");
    }
    assert_eq!(
        questions,
        BTreeMap::from([("test", 9_673), ("train", 38_575)])
    );
    assert_eq!(images["train"].len(), 4_000);
    assert_eq!(images["test"].len(), 1_000);
    assert_eq!(answers.len(), 13, "{answers:?}");

    let (_, again) = import(&data, "easy-vqa", &root, "easy", &[]);
    assert_eq!(counts(&again), (48_248, 0, 48_248));
}

#[test]
fn easy_vqa_names_a_missing_image_and_an_empty_answer() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("store");
    let root = t.path().join("data");
    write(&root.join("train/images/0.png"), jpeg_bytes(1));
    let questions = write(
        &root.join("train/questions.json"),
        json!([
            ["what shape is it?", "circle", 0],
            ["is it red?", "no", 0],
            ["is there a square?", "yes", 3],
            ["what color is it?", " ", 0]
        ])
        .to_string(),
    );
    let (out, report) = import(&data, "easy-vqa", &root, "e", &[]);
    assert!(!out.status.success());
    assert_eq!(counts(&report), (2, 2, 0), "{report}");
    let msgs = messages(&report);
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    let q = questions.to_str().unwrap();
    assert_problem(&msgs, "questions[2]", &[q, "image file not found", "3.png"]);
    assert_problem(&msgs, "questions[3]", &[q, "has no answer"]);
    let items = vqa_items(&data, "e");
    assert!(items.iter().all(|i| i["split"] == "train"));
}
