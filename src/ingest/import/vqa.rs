//! Visual question answering data, one item per question with every answer kept (VQA soft
//! scores need them all):
//!
//! - `vqa2`: VQA v2's questions file (`{"questions": [{image_id, question, question_id}]}`) with
//!   its annotations file (`{"annotations": [{question_id, answers: [{answer,
//!   answer_confidence}], answer_type, question_type, …}]}`) and a folder of COCO images, found
//!   by the image id their names end with (`COCO_val2014_000000000042.jpg`).
//! - `vqa-jsonl`: lines `{"image": path, "question": …, "answers": [..] | "answer": ..}`.
//! - `easy-vqa`: the easy-VQA `data` folder (`{train,test}/questions.json` holding
//!   `[question, answer, image id]` triples, `{train,test}/images/N.png`); the split is kept.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::{is_image_ext, Chunk, ImportError, ImportOptions, ItemError};
use crate::store::ImportedQuestion;

fn read(file: &Path) -> Result<Vec<u8>, ImportError> {
    std::fs::read(file).map_err(|source| ImportError::Io {
        path: file.to_path_buf(),
        source,
    })
}

/// A whole JSON file; malformed JSON is a problem of that file (with its line), not an error
/// that stops the import.
fn read_json(file: &Path) -> Result<Result<Value, ItemError>, ImportError> {
    let bytes = read(file)?;
    Ok(serde_json::from_slice(&bytes)
        .map_err(|e| ItemError::line(file, e.line() as u64, format!("malformed JSON: {e}"))))
}

fn canonical(path: &Path) -> Result<PathBuf, ImportError> {
    std::fs::canonicalize(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The answers as stored (see [`ImportedQuestion::answers_json`]): distinct answers (trimmed,
/// empty ones dropped) with how often each was given, most given first, ties in source order.
/// None when no answer is left.
fn answers_json<'a>(
    answers: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Option<String> {
    let mut distinct: Vec<(&str, usize, Map<String, Value>)> = Vec::new();
    for (text, confidence) in answers {
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let at = match distinct.iter().position(|(t, ..)| *t == text) {
            Some(i) => i,
            None => {
                distinct.push((text, 0, Map::new()));
                distinct.len() - 1
            }
        };
        let entry = &mut distinct[at];
        entry.1 += 1;
        if let Some(c) = confidence {
            let n = entry.2.get(c).and_then(Value::as_u64).unwrap_or(0);
            entry.2.insert(c.to_string(), json!(n + 1));
        }
    }
    if distinct.is_empty() {
        return None;
    }
    // Stable: equal counts keep the order the source gave them in.
    distinct.sort_by_key(|d| std::cmp::Reverse(d.1));
    let list: Vec<Value> = distinct
        .into_iter()
        .map(|(text, count, confidence)| {
            let mut a = Map::new();
            a.insert("answer".into(), json!(text));
            a.insert("count".into(), json!(count));
            if !confidence.is_empty() {
                a.insert("confidence".into(), Value::Object(confidence));
            }
            Value::Object(a)
        })
        .collect();
    Some(Value::Array(list).to_string())
}

fn text_field(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

// ---- VQA v2 -------------------------------------------------------------------------------

pub(crate) fn scan_vqa2(file: &Path, opts: &ImportOptions) -> Result<Chunk, ImportError> {
    let need = |what: &str| ImportError::Input {
        path: file.to_path_buf(),
        reason: format!("a VQA v2 questions file needs {what}"),
    };
    let ann_file = canonical(
        opts.annotations
            .as_deref()
            .ok_or_else(|| need("--annotations FILE (its answers)"))?,
    )?;
    let dir = canonical(
        opts.images_dir
            .as_deref()
            .ok_or_else(|| need("--images DIR (where its COCO images are)"))?,
    )?;
    let mut chunk = Chunk::new(file);
    let (questions, annotations) = match (read_json(file)?, read_json(&ann_file)?) {
        (Ok(q), Ok(a)) => (q, a),
        (q, a) => {
            chunk.problems.extend(q.err());
            chunk.problems.extend(a.err());
            return Ok(chunk);
        }
    };
    let Some(questions_list) = questions.get("questions").and_then(Value::as_array) else {
        chunk.problems.push(ItemError::file(
            file.display(),
            "no \"questions\" array: not a VQA v2 questions file",
        ));
        return Ok(chunk);
    };
    let Some(annotations) = annotations.get("annotations").and_then(Value::as_array) else {
        chunk.problems.push(ItemError::file(
            ann_file.display(),
            "no \"annotations\" array: not a VQA v2 annotations file",
        ));
        return Ok(chunk);
    };
    let split = text_field(&questions, "data_subtype");
    let images = images_by_id(&dir, &mut chunk);

    let mut by_question: HashMap<i64, &Value> = HashMap::new();
    for (n, a) in annotations.iter().enumerate() {
        match a.get("question_id").and_then(Value::as_i64) {
            Some(id) => {
                by_question.insert(id, a);
            }
            None => chunk.problems.push(ItemError::file(
                ann_file.display(),
                format!("annotations[{n}] has no question_id"),
            )),
        }
    }
    let mut asked: std::collections::HashSet<i64> = std::collections::HashSet::new();
    for (n, q) in questions_list.iter().enumerate() {
        let (Some(qid), Some(image_id), Some(text)) = (
            q.get("question_id").and_then(Value::as_i64),
            q.get("image_id").and_then(Value::as_i64),
            text_field(q, "question"),
        ) else {
            chunk.problems.push(ItemError::file(
                file.display(),
                format!("questions[{n}] has no question_id, image_id or question"),
            ));
            continue;
        };
        asked.insert(qid);
        let problem = |reason: String| {
            ItemError::file(file.display(), format!("question_id {qid}: {reason}"))
        };
        let Some(ann) = by_question.get(&qid) else {
            chunk.problems.push(problem(format!(
                "no answers (no annotation for it in {})",
                ann_file.display()
            )));
            continue;
        };
        let given = ann.get("answers").and_then(Value::as_array);
        let answers = given.and_then(|list| {
            answers_json(list.iter().filter_map(|a| {
                Some((
                    a.get("answer")?.as_str()?,
                    a.get("answer_confidence").and_then(Value::as_str),
                ))
            }))
        });
        let Some(answers_json) = answers else {
            chunk.problems.push(problem(format!(
                "no answers (its annotation in {} has none)",
                ann_file.display()
            )));
            continue;
        };
        let Some(path) = images.get(&image_id) else {
            chunk.problems.push(problem(format!(
                "image file not found: no file named like COCO_*_{image_id:012}.jpg for \
                 image_id {image_id} in {}",
                dir.display()
            )));
            continue;
        };
        let mut meta = Map::new();
        meta.insert("question_id".into(), json!(qid));
        meta.insert("image_id".into(), json!(image_id));
        if let Some(mc) = ann.get("multiple_choice_answer") {
            meta.insert("multiple_choice_answer".into(), mc.clone());
        }
        let i = chunk.image_file(path.clone());
        chunk.question(
            i,
            "",
            split.clone(),
            meta,
            ImportedQuestion {
                question: text,
                answers_json,
                answer_type: text_field(ann, "answer_type"),
                question_type: text_field(ann, "question_type"),
            },
        );
    }
    for (n, a) in annotations.iter().enumerate() {
        if let Some(qid) = a.get("question_id").and_then(Value::as_i64) {
            if !asked.contains(&qid) {
                chunk.problems.push(ItemError::file(
                    ann_file.display(),
                    format!(
                        "annotations[{n}] answers question_id {qid}, which is not in {}",
                        file.display()
                    ),
                ));
            }
        }
    }
    Ok(chunk)
}

/// Image files under `dir` by the number their name ends with (`COCO_val2014_000000000042.jpg`,
/// `000000000042.jpg`, `42.png` are all image 42).
fn images_by_id(dir: &Path, chunk: &mut Chunk) -> HashMap<i64, PathBuf> {
    let mut found: Vec<PathBuf> = Vec::new();
    for entry in walkdir::WalkDir::new(dir) {
        match entry {
            Ok(e) if e.file_type().is_file() => found.push(e.into_path()),
            Ok(_) => {}
            Err(e) => {
                let path = e.path().unwrap_or(dir).display().to_string();
                chunk
                    .problems
                    .push(ItemError::file(path, format!("cannot read: {e}")));
            }
        }
    }
    // Sorted, so that of two files with the same id the same one wins every run.
    found.sort();
    let mut by_id = HashMap::new();
    for path in found {
        let ext_ok = path
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(is_image_ext);
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let digits = stem.len() - stem.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        if !ext_ok || digits == 0 {
            continue;
        }
        if let Ok(id) = stem[stem.len() - digits..].parse::<i64>() {
            by_id.entry(id).or_insert(path);
        }
    }
    by_id
}

// ---- JSONL --------------------------------------------------------------------------------

pub(crate) fn scan_jsonl(file: &Path, opts: &ImportOptions) -> Result<Chunk, ImportError> {
    let bytes = read(file)?;
    let base = file.parent().unwrap_or(Path::new("."));
    let mut chunk = Chunk::new(file);
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i as u64 + 1;
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match jsonl_row(raw, base, opts) {
            Ok(row) => {
                let mut meta = row.meta;
                meta.insert(
                    "annotations".into(),
                    format!("{}:{line}", file.display()).into(),
                );
                let i = chunk.image_file(row.image);
                let caption = row.caption.unwrap_or_default();
                chunk.question(i, &caption, row.split, meta, row.question);
            }
            Err(reason) => chunk.problems.push(ItemError::line(file, line, reason)),
        }
    }
    Ok(chunk)
}

struct JsonlRow {
    image: PathBuf,
    question: ImportedQuestion,
    caption: Option<String>,
    split: Option<String>,
    meta: Map<String, Value>,
}

fn jsonl_row(raw: &[u8], base: &Path, opts: &ImportOptions) -> Result<JsonlRow, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "line is not UTF-8")?;
    let value: Value = serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
    let Value::Object(mut row) = value else {
        return Err("not a JSON object".into());
    };
    let image = optional(&mut row, &opts.image_col)?
        .ok_or_else(|| format!("no field {:?} (the image path)", opts.image_col))?;
    let question = optional(&mut row, "question")?.ok_or("no field \"question\"")?;
    let caption = optional(&mut row, &opts.caption_col)?;
    let split = optional(&mut row, "split")?;
    let answer_type = optional(&mut row, "answer_type")?;
    let question_type = optional(&mut row, "question_type")?;
    let answers: Vec<String> = match (row.remove("answers"), row.remove("answer")) {
        (Some(Value::Array(list)), None) => list
            .into_iter()
            .map(|a| match a {
                Value::String(s) => Ok(s),
                _ => Err("\"answers\" holds something other than strings".to_string()),
            })
            .collect::<Result<_, _>>()?,
        (None, Some(Value::String(s))) => vec![s],
        (Some(_), Some(_)) => return Err("both \"answers\" and \"answer\"; give one".into()),
        (Some(_), None) => return Err("field \"answers\" is not a list of strings".into()),
        (None, Some(_)) => return Err("field \"answer\" is not a string".into()),
        (None, None) => return Err("no answers (no \"answers\" or \"answer\" field)".into()),
    };
    let answers_json = answers_json(answers.iter().map(|a| (a.as_str(), None)))
        .ok_or_else(|| format!("question {question:?} has no answers (all are empty)"))?;
    let image = base.join(image);
    if !image.is_file() {
        return Err(format!("image file not found: {}", image.display()));
    }
    Ok(JsonlRow {
        image,
        question: ImportedQuestion {
            question,
            answers_json,
            answer_type,
            question_type,
        },
        caption,
        split,
        meta: row,
    })
}

/// A string field taken out of the row; missing, null or blank is None.
fn optional(row: &mut Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match row.remove(name) {
        Some(Value::String(s)) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
        Some(Value::Null) | None => Ok(None),
        Some(_) => Err(format!("field {name:?} is not a string")),
    }
}

// ---- easy-VQA -----------------------------------------------------------------------------

const EASY_VQA_SPLITS: [&str; 2] = ["train", "test"];

/// One chunk per split found in the easy-VQA `data` folder.
pub(crate) fn scan_easy_vqa(root: &Path) -> Result<Vec<Chunk>, ImportError> {
    let splits: Vec<&str> = EASY_VQA_SPLITS
        .into_iter()
        .filter(|s| root.join(s).join("questions.json").is_file())
        .collect();
    if splits.is_empty() {
        return Err(ImportError::Input {
            path: root.to_path_buf(),
            reason: "no train/questions.json or test/questions.json: not easy-VQA's data folder"
                .into(),
        });
    }
    // The answer vocabulary, when there: an answer outside it is a corrupt record.
    let vocabulary: Option<Vec<String>> = std::fs::read_to_string(root.join("answers.txt"))
        .ok()
        .map(|t| t.lines().map(|l| l.trim().to_string()).collect());
    let mut chunks = Vec::new();
    for split in splits {
        let file = root.join(split).join("questions.json");
        let mut chunk = Chunk::new(&file);
        let doc = match read_json(&file)? {
            Ok(d) => d,
            Err(e) => {
                chunk.problems.push(e);
                chunks.push(chunk);
                continue;
            }
        };
        let Some(list) = doc.as_array() else {
            chunk.problems.push(ItemError::file(
                file.display(),
                "not a list of [question, answer, image id]",
            ));
            chunks.push(chunk);
            continue;
        };
        for (n, entry) in list.iter().enumerate() {
            let fields = entry.as_array().map(Vec::as_slice);
            let Some([Value::String(question), Value::String(answer), id]) = fields else {
                chunk.problems.push(ItemError::file(
                    file.display(),
                    format!("questions[{n}] is not [question, answer, image id]"),
                ));
                continue;
            };
            let Some(id) = id.as_u64() else {
                chunk.problems.push(ItemError::file(
                    file.display(),
                    format!("questions[{n}]: image id {id} is not a whole number"),
                ));
                continue;
            };
            let problem = |reason: String| {
                ItemError::file(file.display(), format!("questions[{n}]: {reason}"))
            };
            let Some(answers_json) = answers_json([(answer.as_str(), None)]) else {
                chunk
                    .problems
                    .push(problem(format!("{question:?} (image {id}) has no answer")));
                continue;
            };
            if let Some(vocab) = &vocabulary {
                if !vocab.iter().any(|v| v == answer.trim()) {
                    chunk.problems.push(problem(format!(
                        "answer {answer:?} is not in {}",
                        root.join("answers.txt").display()
                    )));
                    continue;
                }
            }
            let image = root.join(split).join("images").join(format!("{id}.png"));
            if !image.is_file() {
                chunk.problems.push(problem(format!(
                    "image file not found: {}",
                    image.display()
                )));
                continue;
            }
            let mut meta = Map::new();
            meta.insert("image_id".into(), json!(id));
            let i = chunk.image_file(image);
            chunk.question(
                i,
                "",
                Some(split.to_string()),
                meta,
                ImportedQuestion {
                    question: question.trim().to_string(),
                    answers_json,
                    answer_type: None,
                    question_type: None,
                },
            );
        }
        chunks.push(chunk);
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::png;
    use super::super::ImportFormat;
    use super::*;

    fn answers(json: &str) -> Value {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn answers_are_counted_most_given_first_with_their_confidence() {
        let given = [
            ("2", Some("yes")),
            ("two", Some("maybe")),
            (" 2 ", Some("maybe")),
            ("", Some("yes")),
            ("2", Some("yes")),
        ];
        let got = answers(&answers_json(given).unwrap());
        assert_eq!(
            got,
            json!([
                {"answer": "2", "count": 3, "confidence": {"yes": 2, "maybe": 1}},
                {"answer": "two", "count": 1, "confidence": {"maybe": 1}}
            ])
        );
        let plain = answers(&answers_json([("no", None), ("yes", None)]).unwrap());
        assert_eq!(
            plain,
            json!([{"answer": "no", "count": 1}, {"answer": "yes", "count": 1}])
        );
        assert_eq!(answers_json([(" ", None)]), None);
    }

    #[test]
    fn vqa2_images_are_found_by_the_id_their_name_ends_with() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("COCO_val2014_000000000042.jpg"), png(1)).unwrap();
        std::fs::write(d.join("7.png"), png(2)).unwrap();
        std::fs::write(d.join("notes_000000000009.txt"), "not an image").unwrap();
        std::fs::write(d.join("cover.png"), png(3)).unwrap();
        let mut chunk = Chunk::new(d);
        let found = images_by_id(d, &mut chunk);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[&42].ends_with("COCO_val2014_000000000042.jpg"));
        assert!(found[&7].ends_with("7.png"));
    }

    #[test]
    fn vqa2_needs_annotations_and_images() {
        let dir = tempfile::tempdir().unwrap();
        let q = dir.path().join("q.json");
        std::fs::write(&q, r#"{"questions": []}"#).unwrap();
        let mut opts = ImportOptions::new("d", ImportFormat::Vqa2, &q);
        let e = scan_vqa2(&q, &opts).err().unwrap().to_string();
        assert!(e.contains("--annotations"), "{e}");
        opts.annotations = Some(q.clone());
        let e = scan_vqa2(&q, &opts).err().unwrap().to_string();
        assert!(e.contains("--images"), "{e}");
    }

    #[test]
    fn jsonl_question_rows_and_their_problems_by_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.png"), png(1)).unwrap();
        let f = dir.path().join("vqa.jsonl");
        let lines = [
            r#"{"image": "a.png", "question": "how many?", "answers": ["2", "2", "3"], "id": 7}"#,
            r#"{"image": "a.png", "question": "what is it?", "answer": "a square", "caption": "c"}"#,
            r#"{"image": "a.png", "question": "why?", "answers": []}"#,
            r#"{"image": "a.png", "question": "what?""#,
            r#"{"image": "b.png", "question": "where?", "answer": "here"}"#,
            r#"{"image": "a.png", "answer": "yes"}"#,
        ];
        std::fs::write(&f, lines.join("\n")).unwrap();
        let chunk = scan_jsonl(&f, &ImportOptions::new("d", ImportFormat::VqaJsonl, &f)).unwrap();
        assert_eq!(chunk.records.len(), 2);
        assert_eq!(chunk.images.len(), 1, "one image, two questions");
        let first = chunk.records[0].question.as_ref().unwrap();
        assert_eq!(first.question, "how many?");
        assert_eq!(
            answers(&first.answers_json),
            json!([{"answer": "2", "count": 2}, {"answer": "3", "count": 1}])
        );
        assert_eq!(chunk.records[0].meta["id"], 7);
        assert_eq!(chunk.records[0].caption, "");
        assert_eq!(chunk.records[1].caption, "c");
        let problems: Vec<_> = chunk.problems.iter().map(|p| p.to_string()).collect();
        let at = |line: u64| format!("{}:{line}: ", f.display());
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with(&at(3)) && problems[0].contains("no answers"));
        assert!(problems[1].starts_with(&at(4)) && problems[1].contains("malformed JSON"));
        assert!(problems[2].starts_with(&at(5)) && problems[2].contains("b.png"));
        assert!(problems[3].starts_with(&at(6)) && problems[3].contains("\"question\""));
    }

    #[test]
    fn easy_vqa_keeps_the_split_and_checks_answers_against_the_vocabulary() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("test/images")).unwrap();
        std::fs::write(d.join("test/images/0.png"), png(1)).unwrap();
        std::fs::write(d.join("answers.txt"), "yes\nno\ncircle\n").unwrap();
        let questions = json!([
            ["is there a circle?", "yes", 0],
            ["what shape is it?", "circle", 0],
            ["what color is it?", "mauve", 0],
            ["is it red?", "no", 1],
            ["is it blue?", "", 0],
            ["broken"]
        ]);
        std::fs::write(d.join("test/questions.json"), questions.to_string()).unwrap();
        let chunks = scan_easy_vqa(d).unwrap();
        assert_eq!(chunks.len(), 1, "only the test split is there");
        let chunk = &chunks[0];
        assert_eq!((chunk.records.len(), chunk.images.len()), (2, 1));
        assert_eq!(chunk.records[1].split.as_deref(), Some("test"));
        assert_eq!(chunk.records[1].meta["image_id"], 0);
        let problems: Vec<_> = chunk.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("questions[2]: answer \"mauve\" is not in"));
        assert!(problems[1].contains("questions[3]: image file not found"));
        assert!(problems[2].contains("questions[4]: \"is it blue?\" (image 0) has no answer"));
        assert!(problems[3].contains("questions[5] is not [question, answer, image id]"));
        assert!(
            scan_easy_vqa(&d.join("test")).is_err(),
            "not the data folder"
        );
    }
}
