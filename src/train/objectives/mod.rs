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
