//! An attention heat map laid over the image it belongs to: a `g`×`g` grid of weights (one per
//! patch) smoothly upsampled, coloured from dark blue (none) through green to red (the most),
//! and blended over the picture.

/// `rgb`: `side`×`side` RGB bytes; `weights`: `g`×`g` row-major, any non-negative scale.
/// Returns the blended image (same size), `alpha` the heat map's share of each pixel.
pub fn overlay(rgb: &[u8], side: usize, weights: &[f32], g: usize, alpha: f32) -> Vec<u8> {
    let max = weights
        .iter()
        .copied()
        .fold(0f32, f32::max)
        .max(f32::MIN_POSITIVE);
    let cell = side as f32 / g as f32;
    let at = |y: isize, x: isize| {
        let (y, x) = (y.clamp(0, g as isize - 1), x.clamp(0, g as isize - 1));
        weights[y as usize * g + x as usize] / max
    };
    let mut out = Vec::with_capacity(rgb.len());
    for py in 0..side {
        // Bilinear between patch centres.
        let fy = (py as f32 + 0.5) / cell - 0.5;
        let (y0, ty) = (fy.floor() as isize, fy - fy.floor());
        for px in 0..side {
            let fx = (px as f32 + 0.5) / cell - 0.5;
            let (x0, tx) = (fx.floor() as isize, fx - fx.floor());
            let w = (1.0 - ty) * ((1.0 - tx) * at(y0, x0) + tx * at(y0, x0 + 1))
                + ty * ((1.0 - tx) * at(y0 + 1, x0) + tx * at(y0 + 1, x0 + 1));
            let heat = colour(w);
            let i = (py * side + px) * 3;
            for c in 0..3 {
                let v = (1.0 - alpha) * rgb[i + c] as f32 + alpha * heat[c];
                out.push(v.round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    out
}

/// The jet ramp for `t` in [0, 1]: dark blue → cyan → yellow → dark red.
fn colour(t: f32) -> [f32; 3] {
    let t = t.clamp(0.0, 1.0);
    let r = (1.5 - (4.0 * t - 3.0).abs()).clamp(0.0, 1.0);
    let g = (1.5 - (4.0 * t - 2.0).abs()).clamp(0.0, 1.0);
    let b = (1.5 - (4.0 * t - 1.0).abs()).clamp(0.0, 1.0);
    [255.0 * r, 255.0 * g, 255.0 * b]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_attended_patch_turns_red_and_the_rest_blue() {
        let side = 64;
        let grey = vec![128u8; side * side * 3];
        // 4×4 grid, all attention on the top-left patch.
        let mut w = vec![0.0; 16];
        w[0] = 1.0;
        let out = overlay(&grey, side, &w, 4, 1.0);
        let px = |y: usize, x: usize| &out[(y * side + x) * 3..(y * side + x) * 3 + 3];
        let hot = px(2, 2);
        assert!(
            hot[0] > 100 && hot[1] == 0 && hot[2] == 0,
            "attended: red, got {hot:?}"
        );
        let far = px(60, 60);
        assert!(far[2] > 100 && far[0] == 0, "unattended: blue, got {far:?}");
        // alpha 0 leaves the picture as it was.
        assert_eq!(overlay(&grey, side, &w, 4, 0.0), grey);
    }
}
