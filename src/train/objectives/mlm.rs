//! Masked language modelling: cross-entropy of the hidden words, predicted by the decoder at
//! their places (the word head is tied to the word embeddings).

use candle_core::{Result, Tensor};

use crate::model::Model;

/// `dec`: decoder outputs flattened to `[B·(Lt+N), Dd]`; `rows`/`targets`: the hidden words.
pub fn loss(
    model: &Model,
    dec: &Tensor,
    rows: &Tensor,
    targets: &Tensor,
) -> crate::model::Result<(Tensor, f64)> {
    let logits = model.mlm_logits(&dec.index_select(rows, 0)?)?;
    let loss = candle_nn::loss::cross_entropy(&logits, targets)?;
    let acc = super::accuracy(&logits, targets)?;
    Ok((loss, acc))
}

/// Cross-entropy only (no accuracy), for callers that do not report one.
pub fn ce(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    candle_nn::loss::cross_entropy(logits, targets)
}
