//! Alternate modality masking: for the pairs that hid one whole modality, the decoder rebuilds
//! it from the other — words by cross-entropy, pixels by MSE — as one loss.

use candle_core::Tensor;

use crate::model::Model;

/// Either part may be absent in a batch (no pair chose that modality).
pub fn loss(
    model: &Model,
    dec: &Tensor,
    text: Option<(&Tensor, &Tensor)>,
    image: Option<(&Tensor, &Tensor, &Tensor)>,
) -> crate::model::Result<Option<Tensor>> {
    let t = match text {
        Some((rows, targets)) => Some(super::mlm::loss(model, dec, rows, targets)?.0),
        None => None,
    };
    let i = match image {
        Some((rows, targets, target_rows)) => {
            Some(super::mim::loss(model, dec, rows, targets, target_rows)?)
        }
        None => None,
    };
    Ok(match (t, i) {
        (Some(a), Some(b)) => Some((a + b)?),
        (a, b) => a.or(b),
    })
}
