//! VQA fine-tuning: a classifier over the answer vocabulary on `[CLS]` of question + image,
//! trained on soft targets (each answer's VQA score, normalised to a distribution) with
//! cross-entropy; its figure is the VQA score of the arg-max answer.

use candle_core::{Device, Tensor, D};

use crate::model::Model;

/// `x`: `[B, T, D]` embeddings of `[CLS]` question `[SEP]` + patches, `mask` `[B, T]`;
/// `answers[i]`: (class, soft score) of pair `i`. Returns the loss and the mean score.
pub fn loss(
    model: &Model,
    x: &Tensor,
    mask: &Tensor,
    answers: &[&[(u32, f32)]],
    classes: usize,
    device: &Device,
) -> crate::model::Result<(Tensor, f64)> {
    let logits = model.vqa_logits(x, mask)?;
    let b = answers.len();
    let mut target = vec![0f32; b * classes];
    for (i, list) in answers.iter().enumerate() {
        let sum: f32 = list.iter().map(|a| a.1).sum();
        for &(c, s) in list.iter() {
            if sum > 0.0 {
                target[i * classes + c as usize] += s / sum;
            }
        }
    }
    let target = Tensor::from_vec(target, (b, classes), device)?;
    let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let loss = ((logp * target)?.sum_all()? * (-1.0 / b as f64))?;
    let pred = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
    let score: f64 = pred
        .iter()
        .zip(answers)
        .map(|(p, list)| {
            list.iter()
                .find(|a| a.0 == *p)
                .map(|a| a.1 as f64)
                .unwrap_or(0.0)
        })
        .sum();
    Ok((loss, score / b.max(1) as f64))
}
