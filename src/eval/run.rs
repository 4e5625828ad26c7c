//! Evaluating a run's latest checkpoint on a split of a data set — retrieval recall@K (embedding
//! only, and with the top-k re-ranked by image-text matching) and VQA accuracy — and keeping
//! the result with the run.

use std::collections::HashMap;

use serde::Serialize;

use super::retrieval::{ranks, Recall};
use super::vqa::{answer_type, gold_answers, report, Judged, VqaReport};
use crate::index::read_patches;
use crate::infer::{Loaded, Patches};
use crate::store::{ItemRow, Store};
use crate::train::TrainError;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetrievalReport {
    pub run: String,
    pub step: u64,
    pub dataset: String,
    pub split: String,
    pub captions: usize,
    pub images: usize,
    #[serde(flatten)]
    pub recall: Recall,
    /// With each query's top `rerank_k` re-ordered by the ITM head.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank_k: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reranked: Option<Recall>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VqaEvaluation {
    pub run: String,
    pub step: u64,
    pub dataset: String,
    pub split: String,
    #[serde(flatten)]
    pub report: VqaReport,
}

fn split_items(store: &Store, dataset: &str, split: &str) -> Result<Vec<ItemRow>, TrainError> {
    let items: Vec<ItemRow> = store
        .items(dataset, None)?
        .into_iter()
        .filter(|i| i.split.as_deref() == Some(split))
        .collect();
    if items.is_empty() {
        return Err(TrainError::Data {
            dataset: dataset.into(),
            reason: format!(
                "has no items in split {split:?} (make one with `tessera datasets split`)"
            ),
        });
    }
    Ok(items)
}

/// Decoded model inputs of images, by hash, each decoded once.
fn images(
    store: &Store,
    loaded: &Loaded,
    hashes: impl Iterator<Item = String>,
) -> Result<HashMap<String, Patches>, TrainError> {
    let mut out = HashMap::new();
    for h in hashes {
        if let std::collections::hash_map::Entry::Vacant(slot) = out.entry(h) {
            let p = read_patches(store, loaded, slot.key())?;
            slot.insert(p);
        }
    }
    Ok(out)
}

/// Recall@1/5/10 both ways over the captioned items of `split`: captions query the distinct
/// images, images query the captions. `rerank_k`: also re-rank each query's top k by ITM.
pub fn evaluate_retrieval(
    store: &Store,
    loaded: &Loaded,
    dataset: &str,
    split: &str,
    rerank_k: Option<usize>,
) -> Result<RetrievalReport, TrainError> {
    let items: Vec<ItemRow> = split_items(store, dataset, split)?
        .into_iter()
        .filter(|i| !i.caption.trim().is_empty())
        .collect();
    if items.is_empty() {
        return Err(TrainError::Data {
            dataset: dataset.into(),
            reason: format!("split {split:?} has no captioned items"),
        });
    }
    let mut image_hashes: Vec<String> = Vec::new();
    let mut image_of: Vec<usize> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    for i in &items {
        let k = *at.entry(i.image_hash.as_str()).or_insert_with(|| {
            image_hashes.push(i.image_hash.clone());
            image_hashes.len() - 1
        });
        image_of.push(k);
    }
    let decoded = images(store, loaded, image_hashes.iter().cloned())?;
    let pix: Vec<&Patches> = image_hashes.iter().map(|h| &decoded[h]).collect();
    let captions: Vec<&str> = items.iter().map(|i| i.caption.as_str()).collect();
    let t = loaded.embed_texts(&captions)?;
    let v = loaded.embed_images(&pix)?;
    let (nt, ni) = (captions.len(), pix.len());
    let t2i_scores: Vec<f32> = t.matmul(&v.t()?)?.flatten_all()?.to_vec1()?;
    let i2t_scores: Vec<f32> = v.matmul(&t.t()?)?.flatten_all()?.to_vec1()?;
    let (t2i_rel, i2t_rel) = relevance(&captions, &image_of, ni);
    let t2i = ranks(&t2i_scores, ni, &t2i_rel);
    let i2t = ranks(&i2t_scores, nt, &i2t_rel);
    let reranked = match rerank_k {
        Some(k) if k > 0 => {
            let t2i_r = rerank(
                &t2i_scores,
                ni,
                &t2i_rel,
                &t2i,
                k,
                |q, c| (captions[q], pix[c]),
                loaded,
            )?;
            let i2t_r = rerank(
                &i2t_scores,
                nt,
                &i2t_rel,
                &i2t,
                k,
                |q, c| (captions[c], pix[q]),
                loaded,
            )?;
            Some(Recall::from_ranks(&t2i_r, &i2t_r))
        }
        _ => None,
    };
    Ok(RetrievalReport {
        run: loaded.run.clone(),
        step: loaded.step,
        dataset: dataset.into(),
        split: split.into(),
        captions: nt,
        images: ni,
        recall: Recall::from_ranks(&t2i, &i2t),
        rerank_k: reranked.as_ref().and(rerank_k),
        reranked,
    })
}

/// What answers each query: a caption finds every image shown with that very caption text, an
/// image every caption text it was shown with. Identical captions (frames of one spoken span,
/// generated captions) cannot tell their images apart, so none of them counts as a miss.
fn relevance(
    captions: &[&str],
    image_of: &[usize],
    images: usize,
) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
    let mut by_text: HashMap<&str, Vec<usize>> = HashMap::new();
    for (c, &text) in captions.iter().enumerate() {
        by_text.entry(text).or_default().push(c);
    }
    let t2i: Vec<Vec<usize>> = captions
        .iter()
        .map(|t| {
            let mut imgs: Vec<usize> = by_text[t].iter().map(|&c| image_of[c]).collect();
            imgs.sort_unstable();
            imgs.dedup();
            imgs
        })
        .collect();
    let mut i2t: Vec<Vec<usize>> = vec![Vec::new(); images];
    for (c, &k) in image_of.iter().enumerate() {
        i2t[k].extend(by_text[captions[c]].iter().copied());
    }
    for list in &mut i2t {
        list.sort_unstable();
        list.dedup();
    }
    (t2i, i2t)
}

/// Ranks after re-ordering each query's top `k` candidates by ITM match probability; a query
/// whose relevant candidate is outside the top `k` keeps its embedding rank.
fn rerank<'a>(
    scores: &[f32],
    candidates: usize,
    relevant: &[Vec<usize>],
    before: &[usize],
    k: usize,
    pair: impl Fn(usize, usize) -> (&'a str, &'a Patches),
    loaded: &Loaded,
) -> Result<Vec<usize>, TrainError> {
    let k = k.min(candidates);
    let mut out = Vec::with_capacity(relevant.len());
    for (q, rel) in relevant.iter().enumerate() {
        if before[q] >= k {
            out.push(before[q]);
            continue;
        }
        let row = &scores[q * candidates..(q + 1) * candidates];
        let mut order: Vec<usize> = (0..candidates).collect();
        order.sort_by(|a, b| row[*b].total_cmp(&row[*a]));
        order.truncate(k);
        let (texts, imgs): (Vec<&str>, Vec<&Patches>) = order.iter().map(|&c| pair(q, c)).unzip();
        let itm = loaded.match_scores(&texts, &imgs)?;
        let mut local = vec![f32::NEG_INFINITY; candidates];
        for (c, s) in order.iter().zip(itm) {
            local[*c] = s;
        }
        out.push(ranks(&local, candidates, std::slice::from_ref(rel))[0]);
    }
    Ok(out)
}

/// VQA accuracy (overall, per answer type) and the most frequent confusions over the questions
/// of `split`.
pub fn evaluate_vqa(
    store: &Store,
    loaded: &Loaded,
    dataset: &str,
    split: &str,
) -> Result<VqaEvaluation, TrainError> {
    let items: Vec<ItemRow> = split_items(store, dataset, split)?
        .into_iter()
        .filter(|i| i.question.is_some() && i.answers.is_some())
        .collect();
    if items.is_empty() {
        return Err(TrainError::Data {
            dataset: dataset.into(),
            reason: format!("split {split:?} has no questions with answers"),
        });
    }
    let answers = loaded.answers().to_vec();
    let decoded = images(store, loaded, items.iter().map(|i| i.image_hash.clone()))?;
    let mut judged = Vec::with_capacity(items.len());
    for chunk in items.chunks(crate::infer::BATCH) {
        let qs: Vec<&str> = chunk
            .iter()
            .map(|i| i.question.as_deref().unwrap())
            .collect();
        let ims: Vec<&Patches> = chunk.iter().map(|i| &decoded[&i.image_hash]).collect();
        let probs = loaded.answer_probabilities(&qs, &ims)?;
        for (item, p) in chunk.iter().zip(probs) {
            let best = p
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i)
                .unwrap_or(0);
            let gold = gold_answers(item.answers.as_ref().unwrap());
            judged.push(Judged {
                predicted: answers[best].clone(),
                answer_type: answer_type(item.answer_type.as_deref(), &gold),
                gold,
            });
        }
    }
    Ok(VqaEvaluation {
        run: loaded.run.clone(),
        step: loaded.step,
        dataset: dataset.into(),
        split: split.into(),
        report: report(&judged),
    })
}

/// Keeps an evaluation with its run (replacing an earlier one of the same kind, data and split).
pub fn save<T: Serialize>(
    store: &Store,
    loaded: &Loaded,
    kind: &str,
    dataset: &str,
    split: &str,
    result: &T,
) -> Result<(), TrainError> {
    let run = store.run(&loaded.run)?;
    let json = serde_json::to_value(result).expect("evaluation serialises");
    store.save_evaluation(
        run.id,
        kind,
        dataset,
        split,
        loaded.step,
        &loaded.checksum,
        &json,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::relevance;

    #[test]
    fn identical_captions_share_their_images() {
        // Items: (caption, image): "cat"→0, "dog"→1, "cat"→2, "bird"→2.
        let (t2i, i2t) = relevance(&["cat", "dog", "cat", "bird"], &[0, 1, 2, 2], 3);
        assert_eq!(t2i, vec![vec![0, 2], vec![1], vec![0, 2], vec![2]]);
        assert_eq!(i2t, vec![vec![0, 2], vec![1], vec![0, 2, 3]]);
    }
}
