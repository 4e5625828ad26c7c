//! JPEG through libjpeg-turbo (the `turbojpeg` crate builds it from source with CMake).
//!
//! Why not the `image` crate's decoder here: libjpeg-turbo can decode straight to 1/8 … 8/8 of
//! the size inside the inverse DCT. Every coefficient is still entropy-decoded, so truncation and
//! corruption are caught as in a full decode, but a thumbnail or a 64-px model input costs a
//! fraction of a full-size decode. Its SIMD encoder is also about twice as fast as the pure-Rust
//! ones, which matters because import writes a thumbnail for every image.

use turbojpeg::{
    yuv_pixels_len, Colorspace, Compressor, DecompressHeader, Decompressor, Image, PixelFormat,
    ScalingFactor, Subsamp, YuvImage,
};

use super::pixels::resize_plane;
use super::{fit_within, resize_rgb};

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
    /// Making the thumbnail from good pixels failed (resizing or encoding).
    Thumbnail(String),
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
    let factor = smallest_scale_covering(&header, min_w, min_h);
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
    })
}

/// A JPEG's thumbnail and the JPEG's size.
#[derive(Debug)]
pub struct Thumbnail {
    /// The thumbnail's bytes: the source's own when it already fits.
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub full_width: u32,
    pub full_height: u32,
}

/// The thumbnail (longest side `side`) of a JPEG, made the way a thumbnailer should: decoded in
/// the DCT at the smallest scale that covers it, straight into its Y, Cb and Cr planes, each
/// plane resized and encoded again with the source's own chroma subsampling. No colour
/// conversion and no chroma up- and down-sampling happen on the way, and the resize moves half
/// the bytes of an RGB one. Every coefficient is still entropy-decoded, so truncation and
/// corruption are caught; a JPEG that already fits is decoded at 1/8 for that alone and is its
/// own thumbnail. `check` may refuse the header's size before anything is allocated.
/// Layouts without plain YCbCr planes (RGB-coded JPEGs, unusual subsampling) take the RGB path.
pub fn thumbnail<E>(
    bytes: &[u8],
    side: u32,
    quality: u8,
    check: impl FnOnce(u32, u32) -> Result<(), E>,
) -> Result<Thumbnail, DecodeError<E>> {
    let failed = |e: turbojpeg::Error| DecodeError::Corrupt(e.to_string());
    let mut d = Decompressor::new().map_err(failed)?;
    let header = d.read_header(bytes).map_err(failed)?;
    let (full_width, full_height) = (header.width as u32, header.height as u32);
    check(full_width, full_height).map_err(DecodeError::Refused)?;
    let (width, height) = fit_within(full_width, full_height, side);
    // One that fits is decoded only to be checked: the smallest scale does.
    let fits = (width, height) == (full_width, full_height);
    let (min_w, min_h) = if fits { (1, 1) } else { (width, height) };
    let planar = matches!(header.colorspace, Colorspace::YCbCr | Colorspace::Gray)
        && header.subsamp != Subsamp::Unknown;
    if !planar {
        let decoded = decode_at_least(bytes, |_, _| Ok((min_w, min_h)))?;
        let jpeg = if fits {
            bytes.to_vec()
        } else {
            let small = resize_rgb(decoded.rgb, decoded.width, decoded.height, width, height)
                .map_err(DecodeError::Thumbnail)?;
            encode_jpeg(&small, width, height, quality).map_err(DecodeError::Thumbnail)?
        };
        return Ok(Thumbnail {
            jpeg,
            width,
            height,
            full_width,
            full_height,
        });
    }
    let factor = smallest_scale_covering(&header, min_w, min_h);
    d.set_scaling_factor(factor).map_err(failed)?;
    let scaled = header.scaled(factor);
    let subsamp = header.subsamp;
    let mut yuv =
        vec![0u8; yuv_pixels_len(scaled.width, 1, scaled.height, subsamp).map_err(failed)?];
    let image = YuvImage {
        pixels: &mut yuv[..],
        width: scaled.width,
        align: 1,
        height: scaled.height,
        subsamp,
    };
    d.decompress_to_yuv(bytes, image).map_err(failed)?;
    if fits {
        return Ok(Thumbnail {
            jpeg: bytes.to_vec(),
            width,
            height,
            full_width,
            full_height,
        });
    }
    // Each plane's picture (luma: the decoded size; chroma: that over the subsampling, possibly
    // a fraction of a sample) is resized to the thumbnail's, then padded as libjpeg-turbo pads.
    let (hf, vf) = subsamp.size();
    let from = planes(scaled.width, scaled.height, subsamp);
    let to = planes(width as usize, height as usize, subsamp);
    let mut small = Vec::with_capacity(to.iter().map(|(w, h)| w * h).sum());
    let mut offset = 0;
    for (i, (&(w, h), &(tw, th))) in from.iter().zip(&to).enumerate() {
        let plane = &yuv[offset..offset + w * h];
        offset += w * h;
        let (sub_w, sub_h) = if i == 0 { (1, 1) } else { (hf, vf) };
        let valid = (
            scaled.width as f64 / sub_w as f64,
            scaled.height as f64 / sub_h as f64,
        );
        let inside = (
            (width as usize).div_ceil(sub_w).min(tw),
            (height as usize).div_ceil(sub_h).min(th),
        );
        let resized = resize_plane(
            plane,
            (w as u32, h as u32),
            valid,
            (inside.0 as u32, inside.1 as u32),
        )
        .map_err(DecodeError::Thumbnail)?;
        append_padded(&mut small, &resized, inside, (tw, th));
    }
    let encoding = |e: turbojpeg::Error| DecodeError::Thumbnail(e.to_string());
    let mut c = Compressor::new().map_err(encoding)?;
    c.set_quality(quality.clamp(1, 100) as i32)
        .map_err(encoding)?;
    let image = YuvImage {
        pixels: &small[..],
        width: width as usize,
        align: 1,
        height: height as usize,
        subsamp,
    };
    let jpeg = c.compress_yuv_to_vec(image).map_err(encoding)?;
    Ok(Thumbnail {
        jpeg,
        width,
        height,
        full_width,
        full_height,
    })
}

/// The smallest of the DCT scales with SIMD inverse transforms (1/8, 1/4, 1/2) whose result is
/// at least `min_w`×`min_h`, else full size. The 3/8, 5/8 … ones are plain C and were slower than
/// a full decode (measured). Lossless JPEGs have no DCT, so only their full size.
fn smallest_scale_covering(header: &DecompressHeader, min_w: u32, min_h: u32) -> ScalingFactor {
    if header.is_lossless {
        return ScalingFactor::ONE;
    }
    [1, 2, 4]
        .map(|n| ScalingFactor::new(n, 8))
        .into_iter()
        .find(|&f| {
            let s = header.scaled(f);
            s.width as u32 >= min_w && s.height as u32 >= min_h
        })
        .unwrap_or(ScalingFactor::ONE)
}

/// Appends a `from`-sized plane to `out`, grown to `to` by repeating its last column and row.
fn append_padded(out: &mut Vec<u8>, plane: &[u8], from: (usize, usize), to: (usize, usize)) {
    if from == to {
        out.extend_from_slice(plane);
        return;
    }
    for y in 0..to.1 {
        let row = &plane[y.min(from.1 - 1) * from.0..][..from.0];
        out.extend_from_slice(row);
        out.extend(std::iter::repeat_n(row[from.0 - 1], to.0 - from.0));
    }
}

/// Width and height of each plane (Y, then Cb and Cr unless grey) of a `width`×`height` image
/// packed with no row padding: libjpeg-turbo pads the luma plane to whole chroma samples.
fn planes(width: usize, height: usize, subsamp: Subsamp) -> Vec<(usize, usize)> {
    let (hf, vf) = subsamp.size();
    let (w, h) = (width.div_ceil(hf) * hf, height.div_ceil(vf) * vf);
    let luma = (w, h);
    if subsamp == Subsamp::Gray {
        vec![luma]
    } else {
        vec![luma, (w / hf, h / vf), (w / hf, h / vf)]
    }
}

/// Encodes packed RGB8 pixels as a baseline JPEG (4:2:0 below quality 90, else 4:4:4).
pub fn encode_jpeg(rgb: &[u8], width: u32, height: u32, quality: u8) -> Result<Vec<u8>, String> {
    let subsamp = if quality < 90 {
        Subsamp::Sub2x2
    } else {
        Subsamp::None
    };
    encode_rgb(rgb, width, height, quality, subsamp)
}

fn encode_rgb(
    rgb: &[u8],
    width: u32,
    height: u32,
    quality: u8,
    subsamp: Subsamp,
) -> Result<Vec<u8>, String> {
    if rgb.len() != (width as usize) * (height as usize) * 3 {
        return Err(format!(
            "{} bytes are not {width}×{height} RGB pixels",
            rgb.len()
        ));
    }
    let mut c = Compressor::new().map_err(|e| e.to_string())?;
    c.set_quality(quality.clamp(1, 100) as i32)
        .map_err(|e| e.to_string())?;
    c.set_subsamp(subsamp).map_err(|e| e.to_string())?;
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

    fn gradient(w: u32, h: u32) -> Vec<u8> {
        (0..h)
            .flat_map(|y| (0..w).flat_map(move |x| [(x * 255 / w) as u8, (y * 255 / h) as u8, 90]))
            .collect()
    }

    fn gradient_jpeg(w: u32, h: u32) -> Vec<u8> {
        encode_jpeg(&gradient(w, h), w, h, 90).unwrap()
    }

    /// A JPEG of `rgb` with the given chroma subsampling (grey keeps only the luma).
    fn jpeg_with(rgb: &[u8], w: u32, h: u32, subsamp: Subsamp) -> Vec<u8> {
        encode_rgb(rgb, w, h, 92, subsamp).unwrap()
    }

    /// Mean absolute difference per channel between a thumbnail and the source resized directly.
    fn error_against_source(thumb: &Thumbnail, rgb: &[u8], w: u32, h: u32) -> f64 {
        let want = resize_rgb(rgb.to_vec(), w, h, thumb.width, thumb.height).unwrap();
        let got = image::load_from_memory(&thumb.jpeg).unwrap().to_rgb8();
        assert_eq!(got.dimensions(), (thumb.width, thumb.height));
        let diff: u64 = got
            .as_raw()
            .iter()
            .zip(&want)
            .map(|(&a, &b)| a.abs_diff(b) as u64)
            .sum();
        diff as f64 / want.len() as f64
    }

    #[test]
    fn planar_thumbnails_keep_the_picture_for_every_subsampling() {
        // Odd sizes: the luma plane is padded to whole chroma samples on both sides of the resize.
        for (w, h) in [(640, 360), (333, 251), (1000, 17)] {
            let rgb = gradient(w, h);
            for subsamp in [
                Subsamp::Sub2x2,
                Subsamp::Sub2x1,
                Subsamp::None,
                Subsamp::Sub1x2,
            ] {
                let jpeg = jpeg_with(&rgb, w, h, subsamp);
                let t = thumbnail::<()>(&jpeg, 256, 85, |_, _| Ok(())).unwrap();
                assert_eq!((t.full_width, t.full_height), (w, h));
                assert_eq!((t.width, t.height), fit_within(w, h, 256));
                let err = error_against_source(&t, &rgb, w, h);
                // Against the way through RGB: full decode, RGB resize, encode.
                let d = decode_at_least::<()>(&jpeg, |w, h| Ok((w, h))).unwrap();
                let small = resize_rgb(d.rgb, w, h, t.width, t.height).unwrap();
                let through_rgb = Thumbnail {
                    jpeg: encode_jpeg(&small, t.width, t.height, 85).unwrap(),
                    ..t
                };
                let rgb_err = error_against_source(&through_rgb, &rgb, w, h);
                // A 4-row thumbnail is mostly JPEG block error either way.
                let bound = if h > 100 { 1.0 } else { rgb_err + 2.0 };
                assert!(
                    err < bound,
                    "{w}×{h} {subsamp:?}: mean error {err:.2} (through RGB {rgb_err:.2})"
                );
                // The thumbnail keeps the source's subsampling.
                assert_eq!(turbojpeg::read_header(&t.jpeg).unwrap().subsamp, subsamp);
            }
        }
        // Grey stays grey, and stays the picture: dark on the left, light on the right.
        let rgb = gradient(600, 400);
        let grey = jpeg_with(&rgb, 600, 400, Subsamp::Gray);
        let t = thumbnail::<()>(&grey, 256, 85, |_, _| Ok(())).unwrap();
        assert_eq!(
            turbojpeg::read_header(&t.jpeg).unwrap().subsamp,
            Subsamp::Gray
        );
        let img = image::load_from_memory(&t.jpeg).unwrap().to_luma8();
        assert_eq!(img.dimensions(), (256, 171));
        assert!(img.get_pixel(5, 80)[0] + 60 < img.get_pixel(250, 80)[0]);
    }

    #[test]
    fn lossless_jpegs_have_no_reduced_scales_and_still_get_thumbnails() {
        let rgb = gradient(400, 300);
        let mut c = Compressor::new().unwrap();
        c.set_lossless(true).unwrap();
        let image = Image {
            pixels: &rgb[..],
            width: 400,
            pitch: 1200,
            height: 300,
            format: PixelFormat::RGB,
        };
        let lossless = c.compress_to_vec(image).unwrap();
        assert!(turbojpeg::read_header(&lossless).unwrap().is_lossless);
        let t = thumbnail::<()>(&lossless, 256, 85, |_, _| Ok(())).unwrap();
        assert_eq!((t.width, t.height), (256, 192));
        let err = error_against_source(&t, &rgb, 400, 300);
        assert!(err < 1.0, "mean error {err:.2}");
        let t = thumbnail::<()>(&lossless, 512, 85, |_, _| Ok(())).unwrap();
        assert_eq!(t.jpeg, lossless, "fits: its own thumbnail");
    }

    #[test]
    fn a_jpeg_that_fits_is_its_own_thumbnail_and_is_still_checked() {
        let jpeg = gradient_jpeg(256, 144);
        let t = thumbnail::<()>(&jpeg, 256, 85, |_, _| Ok(())).unwrap();
        assert_eq!(t.jpeg, jpeg);
        assert_eq!(
            (t.width, t.height, t.full_width, t.full_height),
            (256, 144, 256, 144)
        );
        for cut in [&jpeg[..jpeg.len() / 2], &jpeg[..jpeg.len() - 40]] {
            assert!(matches!(
                thumbnail::<()>(cut, 256, 85, |_, _| Ok(())),
                Err(DecodeError::Corrupt(_))
            ));
        }
        let big = gradient_jpeg(640, 360);
        assert!(matches!(
            thumbnail::<()>(&big[..big.len() * 2 / 3], 256, 85, |_, _| Ok(())),
            Err(DecodeError::Corrupt(_))
        ));
        assert!(matches!(
            thumbnail(&big, 256, 85, |w, h| Err((w, h))),
            Err(DecodeError::Refused((640, 360)))
        ));
    }

    #[test]
    fn decodes_at_the_smallest_scale_that_is_large_enough() {
        let jpeg = gradient_jpeg(640, 360);
        let d = decode_at_least::<()>(&jpeg, |w, h| {
            assert_eq!((w, h), (640, 360), "the header's size");
            Ok((w / 2, h / 2))
        })
        .unwrap();
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
