//! Resizing RGB pixels (a SIMD library: next to decoding, thumbnails and model inputs should
//! cost little).

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

/// The size that fits `width`×`height` within `side`×`side`, keeping the aspect ratio (never
/// enlarging).
pub fn fit_within(width: u32, height: u32, side: u32) -> (u32, u32) {
    let scale = (side as f64 / width.max(height) as f64).min(1.0);
    (
        ((width as f64 * scale).round() as u32).max(1),
        ((height as f64 * scale).round() as u32).max(1),
    )
}

/// Resizes packed RGB8 pixels (bilinear convolution, which averages over the source area when
/// shrinking, so no aliasing).
pub fn resize_rgb(
    rgb: Vec<u8>,
    width: u32,
    height: u32,
    to_width: u32,
    to_height: u32,
) -> Result<Vec<u8>, String> {
    if (width, height) == (to_width, to_height) {
        return Ok(rgb);
    }
    let src = Image::from_vec_u8(width, height, rgb, PixelType::U8x3).map_err(|e| e.to_string())?;
    let mut dst = Image::new(to_width, to_height, PixelType::U8x3);
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    Resizer::new()
        .resize(&src, &mut dst, &opts)
        .map_err(|e| e.to_string())?;
    Ok(dst.into_vec())
}

/// Resizes the top-left `valid` region (in samples, possibly fractional) of a `width`×`height`
/// 8-bit plane (a JPEG's Y, Cb or Cr, whose edges are padded to whole chroma samples) to
/// `to_width`×`to_height`, the same way as [`resize_rgb`].
pub(crate) fn resize_plane(
    plane: &[u8],
    (width, height): (u32, u32),
    valid: (f64, f64),
    (to_width, to_height): (u32, u32),
) -> Result<Vec<u8>, String> {
    let src = ImageRef::new(width, height, plane, PixelType::U8).map_err(|e| e.to_string())?;
    let mut dst = Image::new(to_width, to_height, PixelType::U8);
    let opts = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
        .crop(0.0, 0.0, valid.0, valid.1);
    Resizer::new()
        .resize(&src, &mut dst, &opts)
        .map_err(|e| e.to_string())?;
    Ok(dst.into_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resized_jpeg_decodes_to_the_asked_size_and_colour() {
        let (w, h) = (640u32, 360u32);
        let rgb: Vec<u8> = (0..w * h).flat_map(|_| [200u8, 40, 40]).collect();
        let (tw, th) = fit_within(w, h, 256);
        assert_eq!((tw, th), (256, 144));
        let small = resize_rgb(rgb, w, h, tw, th).unwrap();
        assert_eq!(small.len(), (tw * th * 3) as usize);
        let jpeg = crate::media::encode_jpeg(&small, tw, th, 85).unwrap();
        let back = image::load_from_memory(&jpeg).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), (256, 144));
        let p = back.get_pixel(100, 70);
        assert!(p[0] > 180 && p[1] < 70 && p[2] < 70, "{p:?}");
        assert_eq!(fit_within(100, 50, 256), (100, 50), "never enlarged");
    }
}
