//! VQA scoring as VQA v2 defines it: an answer is worth min(#annotators who gave it / 3, 1).
//! Data sets with fewer than three answers per question (easy-VQA, most JSONL sets) divide by
//! the number they have, so a single given answer scores 1.

use std::collections::BTreeMap;

use serde::Serialize;

/// One distinct answer a question's annotators gave, and how many gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct GoldAnswer {
    pub answer: String,
    pub count: u32,
}

/// The answers of an item's `answers` JSON (`[{"answer": "2", "count": 7}, …]`).
pub fn gold_answers(json: &serde_json::Value) -> Vec<GoldAnswer> {
    json.as_array()
        .map(|list| {
            list.iter()
                .filter_map(|a| {
                    Some(GoldAnswer {
                        answer: a.get("answer")?.as_str()?.to_string(),
                        count: a.get("count").and_then(|c| c.as_u64()).unwrap_or(1) as u32,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The score of an answer `count` of `total` annotators gave: min(count / min(3, total), 1).
pub fn soft_score(count: u32, total: u32) -> f64 {
    if count == 0 || total == 0 {
        return 0.0;
    }
    (count as f64 / total.min(3) as f64).min(1.0)
}

/// The score `predicted` earns against `gold`.
pub fn score_of(predicted: &str, gold: &[GoldAnswer]) -> f64 {
    let total = gold.iter().map(|g| g.count).sum();
    gold.iter()
        .find(|g| g.answer == predicted)
        .map(|g| soft_score(g.count, total))
        .unwrap_or(0.0)
}

/// The item's answer type, or VQA's categories derived from the most given answer where the
/// data set has none: "yes/no", "number", "other".
pub fn answer_type(given: Option<&str>, gold: &[GoldAnswer]) -> String {
    if let Some(t) = given.filter(|t| !t.is_empty()) {
        return t.to_string();
    }
    let top = gold
        .iter()
        .max_by_key(|g| g.count)
        .map(|g| g.answer.as_str());
    match top {
        Some("yes" | "no") => "yes/no".into(),
        Some(a) if !a.is_empty() && a.chars().all(|c| c.is_ascii_digit()) => "number".into(),
        _ => "other".into(),
    }
}

/// One evaluated question.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub predicted: String,
    pub gold: Vec<GoldAnswer>,
    pub answer_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeScore {
    pub accuracy: f64,
    pub questions: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Confusion {
    /// The most given answer.
    pub expected: String,
    pub predicted: String,
    pub count: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VqaReport {
    pub accuracy: f64,
    pub questions: usize,
    pub per_type: BTreeMap<String, TypeScore>,
    /// Wrong predictions by (most given answer, predicted), most frequent first.
    pub confusion: Vec<Confusion>,
}

/// Accuracy overall and per answer type (means of [`score_of`]), and the confusions.
pub fn report(judged: &[Judged]) -> VqaReport {
    let mut sum = 0.0;
    let mut types: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    let mut wrong: BTreeMap<(String, String), usize> = BTreeMap::new();
    for j in judged {
        let s = score_of(&j.predicted, &j.gold);
        sum += s;
        let t = types.entry(j.answer_type.clone()).or_default();
        t.0 += s;
        t.1 += 1;
        if let Some(top) = j.gold.iter().max_by_key(|g| g.count) {
            if top.answer != j.predicted {
                *wrong
                    .entry((top.answer.clone(), j.predicted.clone()))
                    .or_default() += 1;
            }
        }
    }
    let mut confusion: Vec<Confusion> = wrong
        .into_iter()
        .map(|((expected, predicted), count)| Confusion {
            expected,
            predicted,
            count,
        })
        .collect();
    confusion.sort_by(|a, b| b.count.cmp(&a.count).then(a.expected.cmp(&b.expected)));
    VqaReport {
        accuracy: if judged.is_empty() {
            0.0
        } else {
            sum / judged.len() as f64
        },
        questions: judged.len(),
        per_type: types
            .into_iter()
            .map(|(k, (s, n))| {
                (
                    k,
                    TypeScore {
                        accuracy: s / n as f64,
                        questions: n,
                    },
                )
            })
            .collect(),
        confusion,
    }
}

/// The answer vocabulary of training questions: the `k` answers given most often (by
/// annotator count), ties by first appearance.
pub fn vocabulary<'a>(
    questions: impl IntoIterator<Item = &'a [GoldAnswer]>,
    k: usize,
) -> Vec<String> {
    let mut counts: Vec<(String, u64)> = Vec::new();
    let mut at: BTreeMap<String, usize> = BTreeMap::new();
    for gold in questions {
        for g in gold {
            let i = *at.entry(g.answer.clone()).or_insert_with(|| {
                counts.push((g.answer.clone(), 0));
                counts.len() - 1
            });
            counts[i].1 += g.count as u64;
        }
    }
    // Stable: equal counts keep their first-appearance order.
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    counts.into_iter().take(k).map(|(a, _)| a).collect()
}

/// Soft targets of one question over `vocabulary` (answers outside it are dropped).
pub fn targets(gold: &[GoldAnswer], vocabulary: &BTreeMap<&str, u32>) -> Vec<(u32, f32)> {
    let total = gold.iter().map(|g| g.count).sum();
    gold.iter()
        .filter_map(|g| {
            let c = *vocabulary.get(g.answer.as_str())?;
            Some((c, soft_score(g.count, total) as f32))
        })
        .filter(|t| t.1 > 0.0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(list: &[(&str, u32)]) -> Vec<GoldAnswer> {
        list.iter()
            .map(|(a, c)| GoldAnswer {
                answer: a.to_string(),
                count: *c,
            })
            .collect()
    }

    #[test]
    fn vqa_v2_scores_by_annotator_count() {
        // Ten annotators: 2 said "2", 7 said "3", 1 said "three".
        let gold = g(&[("3", 7), ("2", 2), ("three", 1)]);
        assert_eq!(score_of("3", &gold), 1.0);
        assert!((score_of("2", &gold) - 2.0 / 3.0).abs() < 1e-12);
        assert!((score_of("three", &gold) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(score_of("4", &gold), 0.0);
        // One given answer (easy-VQA) is worth 1; two differing ones half each.
        assert_eq!(score_of("red", &g(&[("red", 1)])), 1.0);
        assert_eq!(score_of("red", &g(&[("red", 1), ("blue", 1)])), 0.5);
    }

    #[test]
    fn report_averages_overall_and_per_type_and_counts_confusions() {
        let j = |p: &str, gold: &[(&str, u32)], t: Option<&str>| Judged {
            predicted: p.into(),
            gold: g(gold),
            answer_type: answer_type(t, &g(gold)),
        };
        let judged = [
            j("yes", &[("yes", 1)], None),           // 1
            j("no", &[("yes", 1)], None),            // 0, yes→no
            j("2", &[("2", 2), ("3", 8)], None),     // 2/3, number, 3→2
            j("red", &[("blue", 1)], Some("color")), // 0, blue→red
            j("red", &[("blue", 1)], Some("color")), // 0, blue→red
        ];
        let r = report(&judged);
        assert_eq!(r.questions, 5);
        assert!((r.accuracy - (1.0 + 2.0 / 3.0) / 5.0).abs() < 1e-12);
        assert_eq!(r.per_type["yes/no"].accuracy, 0.5);
        assert_eq!(r.per_type["yes/no"].questions, 2);
        assert!((r.per_type["number"].accuracy - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(r.per_type["color"].accuracy, 0.0);
        assert_eq!(
            r.confusion[0],
            Confusion {
                expected: "blue".into(),
                predicted: "red".into(),
                count: 2
            }
        );
        assert_eq!(r.confusion.len(), 3);
    }

    #[test]
    fn vocabulary_is_most_frequent_first_and_targets_drop_the_rest() {
        let qs = [
            g(&[("no", 1)]),
            g(&[("yes", 1)]),
            g(&[("yes", 2), ("red", 1)]),
        ];
        let v = vocabulary(qs.iter().map(|q| q.as_slice()), 2);
        assert_eq!(v, ["yes", "no"]);
        let index: BTreeMap<&str, u32> = v
            .iter()
            .enumerate()
            .map(|(i, a)| (a.as_str(), i as u32))
            .collect();
        // Two of three annotators said "yes": 2/3; "red" is outside the vocabulary.
        assert_eq!(targets(&qs[2], &index), vec![(0, 2.0 / 3.0)]);
        assert_eq!(targets(&g(&[("red", 1)]), &index), vec![]);
    }
}
