//! JPEG through libjpeg-turbo (the `turbojpeg` crate builds it from source with CMake).
//!
//! Why not the `image` crate's decoder here: libjpeg-turbo can decode straight to 1/8 … 8/8 of
//! the size inside the inverse DCT. Every coefficient is still entropy-decoded, so truncation and
//! corruption are caught as in a full decode, but a thumbnail or a 64-px model input costs a
//! fraction of a full-size decode. Its SIMD encoder is also about twice as fast as the pure-Rust
//! ones, which matters because import writes a thumbnail for every image.

use turbojpeg::{Colorspace, Compressor, Decompressor, Image, PixelFormat, ScalingFactor, Subsamp};

/// A JPEG's first bytes (SOI followed by a marker).
pub fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xff, 0xd8, 0xff])
}

/// A decoded JPEG: RGB pixels at the decoded (possibly reduced) size, and the image's size.
#[derive(Debug)]
pub struct Decoded {
    pub rgb: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub full_width: u32,
    pub full_height: u32,
}

/// Why a decode did not happen.
#[derive(Debug)]
pub enum DecodeError<E> {
    /// The caller's check refused the size in the header.
    Refused(E),
    /// CMYK or YCCK, which libjpeg-turbo does not turn into RGB.
    NotRgb,
    /// libjpeg-turbo refused the data; a warning such as a premature end counts (the `image`
    /// crate's decoder fills a truncated JPEG with grey and calls it a success).
    Corrupt(String),
}

/// Decodes `bytes` at the smallest DCT scale (1/8, 1/4, 1/2 or 1) whose result is at least as
/// large as what `wanted` asks for, given the full size from the header (return the full size
/// for a full decode).
/// `wanted` may refuse the image (e.g. a decompression bomb) before any pixel is allocated.
pub fn decode_at_least<E>(
    bytes: &[u8],
    wanted: impl FnOnce(u32, u32) -> Result<(u32, u32), E>,
) -> Result<Decoded, DecodeError<E>> {
    let failed = |e: turbojpeg::Error| DecodeError::Corrupt(e.to_string());
    let mut d = Decompressor::new().map_err(failed)?;
    let header = d.read_header(bytes).map_err(failed)?;
    if matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK) {
        return Err(DecodeError::NotRgb);
    }
    let (full_width, full_height) = (header.width as u32, header.height as u32);
    let (min_w, min_h) = wanted(full_width, full_height).map_err(DecodeError::Refused)?;
    // Only 1/8, 1/4 and 1/2: libjpeg-turbo has SIMD inverse DCTs for those; the 3/8, 5/8 … ones
    // are plain C and slower than a full decode.
    let factor = [1, 2, 4]
        .map(|n| ScalingFactor::new(n, 8))
        .into_iter()
        .find(|&f| {
            let s = header.scaled(f);
            s.width as u32 >= min_w && s.height as u32 >= min_h
        })
        .unwrap_or(ScalingFactor::ONE);
    d.set_scaling_factor(factor).map_err(failed)?;
    let s = header.scaled(factor);
    let mut rgb = vec![0u8; 3 * s.width * s.height];
    let image = Image {
        pixels: &mut rgb[..],
        width: s.width,
        pitch: 3 * s.width,
        height: s.height,
        format: PixelFormat::RGB,
    };
    d.decompress(bytes, image).map_err(failed)?;
    Ok(Decoded {
        rgb,
        width: s.width as u32,
        height: s.height as u32,
        full_width,
        full_height,
    })
}

/// Encodes packed RGB8 pixels as a baseline JPEG (4:2:0 below quality 90, else 4:4:4).
pub fn encode_jpeg(rgb: &[u8], width: u32, height: u32, quality: u8) -> Result<Vec<u8>, String> {
    if rgb.len() != (width as usize) * (height as usize) * 3 {
        return Err(format!(
            "{} bytes are not {width}×{height} RGB pixels",
            rgb.len()
        ));
    }
    let mut c = Compressor::new().map_err(|e| e.to_string())?;
    c.set_quality(quality.clamp(1, 100) as i32)
        .map_err(|e| e.to_string())?;
    c.set_subsamp(if quality < 90 {
        Subsamp::Sub2x2
    } else {
        Subsamp::None
    })
    .map_err(|e| e.to_string())?;
    let image = Image {
        pixels: rgb,
        width: width as usize,
        pitch: 3 * width as usize,
        height: height as usize,
        format: PixelFormat::RGB,
    };
    c.compress_to_vec(image).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient_jpeg(w: u32, h: u32) -> Vec<u8> {
        let rgb: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).flat_map(move |x| [(x * 255 / w) as u8, (y * 255 / h) as u8, 90]))
            .collect();
        encode_jpeg(&rgb, w, h, 90).unwrap()
    }

    #[test]
    fn decodes_at_the_smallest_scale_that_is_large_enough() {
        let jpeg = gradient_jpeg(640, 360);
        let d = decode_at_least::<()>(&jpeg, |w, h| Ok((w / 2, h / 2))).unwrap();
        assert_eq!((d.full_width, d.full_height), (640, 360));
        assert_eq!((d.width, d.height), (320, 180));
        let d = decode_at_least::<()>(&jpeg, |_, _| Ok((256, 144))).unwrap();
        assert_eq!((d.width, d.height), (320, 180), "1/4 would be 160 wide");
        let d = decode_at_least::<()>(&jpeg, |_, _| Ok((10, 10))).unwrap();
        assert_eq!((d.width, d.height), (80, 45));
        // The reduced decode is the picture, not noise: the gradient runs left to right.
        let px = |x: u32, y: u32| d.rgb[((y * d.width + x) * 3) as usize];
        assert!(
            px(5, 20) < 40 && px(75, 20) > 215,
            "{} {}",
            px(5, 20),
            px(75, 20)
        );
        let full = decode_at_least::<()>(&jpeg, |w, h| Ok((w, h))).unwrap();
        assert_eq!(
            (full.width, full.height, full.rgb.len()),
            (640, 360, 640 * 360 * 3)
        );
    }

    #[test]
    fn truncation_and_refusals_are_errors() {
        let jpeg = gradient_jpeg(64, 64);
        assert!(matches!(
            decode_at_least::<()>(&jpeg[..jpeg.len() / 2], |w, h| Ok((w, h))),
            Err(DecodeError::Corrupt(_))
        ));
        assert!(matches!(
            decode_at_least(&jpeg, |w, _| Err(w)),
            Err(DecodeError::Refused(64))
        ));
        assert!(encode_jpeg(&[0; 5], 2, 2, 80).is_err());
    }
}
