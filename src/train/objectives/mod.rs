//! The pre-training objectives, a file each. Each turns model outputs into a scalar loss
//! (and, where it has one, an accuracy); the trainer weights and sums them.

pub mod alt;
pub mod attmask;
pub mod contrastive;
pub mod grouped_itm;
pub mod itm;
pub mod mim;
pub mod mlm;
pub mod vqa;

use candle_core::{Result, Tensor};

use crate::train::batch::Sample;

/// `[i][j]`: pairs i and j show the same image or say the same words, so neither may serve as
/// the other's negative. Data sets with few distinct captions (easy-VQA's answer captions:
/// 24 shape-colour pairs) put many twins in a batch; counting them as negatives teaches the
/// contrastive head to tell identical captions apart and labels true matches "no match" in ITM.
pub fn alike_pairs<S: std::borrow::Borrow<Sample>>(samples: &[S]) -> Vec<Vec<bool>> {
    samples
        .iter()
        .map(|a| {
            let a = a.borrow();
            samples
                .iter()
                .map(|b| {
                    let b = b.borrow();
                    a.image_key == b.image_key || a.ids == b.ids
                })
                .collect()
        })
        .collect()
}

/// Share of rows whose arg-max equals the target.
pub fn accuracy(logits: &Tensor, targets: &Tensor) -> Result<f64> {
    let pred = logits.argmax(candle_core::D::Minus1)?.to_vec1::<u32>()?;
    let want = targets.to_vec1::<u32>()?;
    if want.is_empty() {
        return Ok(0.0);
    }
    let right = pred.iter().zip(&want).filter(|(a, b)| a == b).count();
    Ok(right as f64 / want.len() as f64)
}
