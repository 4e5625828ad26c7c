//! Masked image modelling: mean squared error between the decoder's pixels for the hidden
//! patches and those patches' per-patch normalised pixels (MAE).

use candle_core::Tensor;

use crate::model::Model;

/// `dec`: `[B·(Lt+N), Dd]`; `rows`: hidden patches' decoder rows; `targets`: `[B·N, P·P·3]`;
/// `target_rows`: the same patches' rows in `targets`.
pub fn loss(
    model: &Model,
    dec: &Tensor,
    rows: &Tensor,
    targets: &Tensor,
    target_rows: &Tensor,
) -> crate::model::Result<Tensor> {
    let pred = model.mim_pixels(&dec.index_select(rows, 0)?)?;
    let want = targets.index_select(target_rows, 0)?;
    Ok((pred - want)?.sqr()?.mean_all()?)
}

/// Patch pixels normalised within the patch (mean 0, variance 1), the MAE target.
pub fn normalise_patch(pixels: &mut [f32]) {
    let n = pixels.len() as f32;
    let mean = pixels.iter().sum::<f32>() / n;
    let var = pixels.iter().map(|p| (p - mean) * (p - mean)).sum::<f32>() / n;
    let inv = 1.0 / (var + 1e-6).sqrt();
    pixels.iter_mut().for_each(|p| *p = (*p - mean) * inv);
}
