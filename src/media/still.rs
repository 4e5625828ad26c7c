//! Still images from datasets (JPEG, PNG, WebP, SVG): decoded once, checked, measured and
//! thumbnailed. JPEGs go through libjpeg-turbo (`super::jpeg`), the rest through the `image`
//! crate under `image::Limits`; either way a header claiming a huge size is refused before any
//! pixel buffer is allocated.

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

use super::jpeg::{self, DecodeError};
use super::{encode_jpeg, fit_within};

/// Largest width or height we accept (a decompression bomb declares far more).
pub const MAX_SIDE: u32 = 16_384;
/// Most memory one decode may allocate.
pub const MAX_ALLOC: u64 = 512 * 1024 * 1024;
/// Longest side of the stored thumbnail.
pub const THUMB_SIDE: u32 = 256;
const THUMB_QUALITY: u8 = 85;

#[derive(Debug, thiserror::Error)]
pub enum StillError {
    #[error("not a JPEG, PNG, WebP or SVG image")]
    UnknownFormat,
    #[error("{format} images are not supported (use JPEG, PNG, WebP or SVG)")]
    Unsupported { format: String },
    #[error("image is {width}×{height}, larger than the {MAX_SIDE}×{MAX_SIDE} limit")]
    TooLarge { width: u32, height: u32 },
    #[error("corrupt or truncated image: {0}")]
    Corrupt(String),
    #[error("SVG references an external file ({href:?}); only self-contained SVGs are imported")]
    SvgExternal { href: String },
    #[error("invalid SVG: {0}")]
    Svg(String),
    #[error("encoding the thumbnail: {0}")]
    Thumbnail(String),
}

/// One decoded image: what the catalog records about it and its JPEG thumbnail.
#[derive(Debug, Clone, PartialEq)]
pub struct Still {
    /// "jpeg", "png", "webp" or "svg".
    pub format: &'static str,
    pub mime: &'static str,
    pub width: u32,
    pub height: u32,
    pub thumb_jpeg: Vec<u8>,
    pub thumb_width: u32,
    pub thumb_height: u32,
}

/// An XML document whose root is `<svg>`. Prologs can be long (licence comments, DTDs with
/// entities), so the root is looked for in the first 64 KiB.
fn looks_like_svg(bytes: &[u8]) -> bool {
    // Binary formats are turned away on their first byte: no text decoding of every JPEG.
    let start = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    if start.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'<') {
        return false;
    }
    let head = &bytes[..bytes.len().min(64 * 1024)];
    let head = String::from_utf8_lossy(head);
    let head = head.trim_start_matches('\u{feff}').trim_start();
    head.starts_with("<svg")
        || (["<?xml", "<!--", "<!DOCTYPE"]
            .iter()
            .any(|p| head.starts_with(p))
            && head.contains("<svg"))
}

/// Decodes `bytes` (a JPEG's every coefficient, at the smallest DCT scale the thumbnail allows;
/// so truncation is caught) and makes the thumbnail.
pub fn decode_still(bytes: &[u8]) -> Result<Still, StillError> {
    if looks_like_svg(bytes) {
        return decode_svg(bytes);
    }
    if jpeg::is_jpeg(bytes) {
        // None for CMYK, which the `image` crate converts below.
        if let Some(still) = decode_jpeg_still(bytes)? {
            return Ok(still);
        }
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| StillError::Corrupt(e.to_string()))?;
    let (format, mime) = match reader.format() {
        Some(ImageFormat::Jpeg) => ("jpeg", "image/jpeg"),
        Some(ImageFormat::Png) => ("png", "image/png"),
        Some(ImageFormat::WebP) => ("webp", "image/webp"),
        Some(other) => {
            return Err(StillError::Unsupported {
                format: format!("{other:?}"),
            })
        }
        None => return Err(StillError::UnknownFormat),
    };
    let mut reader = reader;
    reader.limits(limits());
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => match header_dimensions(bytes) {
            Some((width, height)) => StillError::TooLarge { width, height },
            None => StillError::Corrupt(e.to_string()),
        },
        other => StillError::Corrupt(other.to_string()),
    })?;
    let (width, height) = (img.width(), img.height());
    // A JPEG that already fits is its own thumbnail: re-encoding would only lose quality.
    let (thumb_jpeg, thumb_width, thumb_height) =
        if format == "jpeg" && width.max(height) <= THUMB_SIDE {
            (bytes.to_vec(), width, height)
        } else {
            encode_thumb(img.into_rgb8())?
        };
    Ok(Still {
        format,
        mime,
        width,
        height,
        thumb_jpeg,
        thumb_width,
        thumb_height,
    })
}

/// A JPEG's size and thumbnail through libjpeg-turbo (`jpeg::thumbnail`); `None` when it cannot
/// give RGB (CMYK).
fn decode_jpeg_still(bytes: &[u8]) -> Result<Option<Still>, StillError> {
    let t = match jpeg::thumbnail(bytes, THUMB_SIDE, THUMB_QUALITY, check_size) {
        Ok(t) => t,
        Err(DecodeError::NotRgb) => return Ok(None),
        Err(DecodeError::Refused(e)) => return Err(e),
        Err(DecodeError::Corrupt(reason)) => return Err(StillError::Corrupt(reason)),
        Err(DecodeError::Thumbnail(reason)) => return Err(StillError::Thumbnail(reason)),
    };
    Ok(Some(Still {
        format: "jpeg",
        mime: "image/jpeg",
        width: t.full_width,
        height: t.full_height,
        thumb_jpeg: t.jpeg,
        thumb_width: t.width,
        thumb_height: t.height,
    }))
}

/// The limits of [`limits`] for a decoder that only tells us the header's size.
fn check_size(width: u32, height: u32) -> Result<(), StillError> {
    if width.max(height) > MAX_SIDE || width as u64 * height as u64 * 4 > MAX_ALLOC {
        return Err(StillError::TooLarge { width, height });
    }
    Ok(())
}

fn limits() -> Limits {
    let mut l = Limits::default();
    l.max_image_width = Some(MAX_SIDE);
    l.max_image_height = Some(MAX_SIDE);
    l.max_alloc = Some(MAX_ALLOC);
    l
}

/// The dimensions in the header only (no decoding), for the message about a refused image.
fn header_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()
}

/// The JPEG thumbnail (longest side [`THUMB_SIDE`]) of an RGB image.
fn encode_thumb(rgb: image::RgbImage) -> Result<(Vec<u8>, u32, u32), StillError> {
    let (w, h) = rgb.dimensions();
    let (tw, th) = fit_within(w, h, THUMB_SIDE);
    let small = super::resize_rgb(rgb.into_raw(), w, h, tw, th).map_err(StillError::Thumbnail)?;
    let jpeg = encode_jpeg(&small, tw, th, THUMB_QUALITY).map_err(StillError::Thumbnail)?;
    Ok((jpeg, tw, th))
}

/// SVGs are parsed without fonts or file access; any `<image>` pointing outside the file is an
/// error rather than silently left blank. Only the thumbnail is rasterised, so a huge declared
/// canvas costs nothing.
fn decode_svg(bytes: &[u8]) -> Result<Still, StillError> {
    let (rgb, width, height) = render_svg(bytes, THUMB_SIDE)?;
    let (thumb_jpeg, thumb_width, thumb_height) = encode_thumb(rgb)?;
    Ok(Still {
        format: "svg",
        mime: "image/svg+xml",
        width,
        height,
        thumb_jpeg,
        thumb_width,
        thumb_height,
    })
}

/// Renders an SVG with its longest side at most `side` pixels, on white. Returns the pixels
/// and the declared canvas size.
fn render_svg(bytes: &[u8], side: u32) -> Result<(image::RgbImage, u32, u32), StillError> {
    use resvg::{tiny_skia, usvg};
    let external: Arc<Mutex<Option<String>>> = Arc::default();
    let seen = external.clone();
    let resolver = usvg::ImageHrefResolver {
        // Embedded raster data is fine; nested SVG data would need the same guard, so it is
        // not rendered.
        resolve_data: Box::new(|mime, data, _| match mime {
            "image/jpg" | "image/jpeg" => Some(usvg::ImageKind::JPEG(data)),
            "image/png" => Some(usvg::ImageKind::PNG(data)),
            "image/webp" => Some(usvg::ImageKind::WEBP(data)),
            _ => None,
        }),
        resolve_string: Box::new(move |href, _| {
            seen.lock()
                .expect("svg href lock")
                .get_or_insert_with(|| href.to_string());
            None
        }),
    };
    let opts = usvg::Options {
        image_href_resolver: resolver,
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_data(bytes, &opts).map_err(|e| StillError::Svg(e.to_string()))?;
    if let Some(href) = external.lock().expect("svg href lock").take() {
        return Err(StillError::SvgExternal { href });
    }
    let size = tree.size();
    let width = size.width().ceil() as u32;
    let height = size.height().ceil() as u32;
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(StillError::TooLarge { width, height });
    }
    let scale = (side as f32 / size.width().max(size.height())).min(1.0);
    let tw = ((size.width() * scale).round() as u32).max(1);
    let th = ((size.height() * scale).round() as u32).max(1);
    let mut pixmap =
        tiny_skia::Pixmap::new(tw, th).ok_or_else(|| StillError::Svg("empty canvas".into()))?;
    // White under transparent areas, as a browser shows it (JPEG has no alpha).
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    let rgba = image::RgbaImage::from_raw(tw, th, pixmap.take())
        .ok_or_else(|| StillError::Svg("pixmap size mismatch".into()))?;
    Ok((
        DynamicImage::ImageRgba8(rgba).into_rgb8(),
        width.max(1),
        height.max(1),
    ))
}

/// An image as a `side`×`side` RGB square for a model: the centred square of the picture
/// (SVGs rendered at that size first), resized. Row-major, 3 bytes a pixel.
pub fn square_rgb(bytes: &[u8], side: u32) -> Result<Vec<u8>, StillError> {
    let decoded = if jpeg::is_jpeg(bytes) {
        // The centred square must come out at least `side` on a side.
        let d = jpeg::decode_at_least(bytes, |w, h| {
            check_size(w, h)?;
            let c = w.min(h).max(1) as f64;
            let up = |x: u32| ((x as f64 * side as f64 / c).ceil() as u32).min(x);
            Ok((up(w), up(h)))
        });
        match d {
            Ok(d) => image::RgbImage::from_raw(d.width, d.height, d.rgb),
            Err(DecodeError::Refused(e)) => return Err(e),
            Err(DecodeError::Corrupt(reason)) => return Err(StillError::Corrupt(reason)),
            Err(DecodeError::Thumbnail(reason)) => return Err(StillError::Thumbnail(reason)),
            Err(DecodeError::NotRgb) => None,
        }
    } else {
        None
    };
    let rgb = if let Some(rgb) = decoded {
        rgb
    } else if looks_like_svg(bytes) {
        render_svg(bytes, side)?.0
    } else {
        let mut reader = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| StillError::Corrupt(e.to_string()))?;
        reader.limits(limits());
        reader
            .decode()
            .map_err(|e| StillError::Corrupt(e.to_string()))?
            .into_rgb8()
    };
    let (w, h) = rgb.dimensions();
    let c = w.min(h);
    let square = image::imageops::crop_imm(&rgb, (w - c) / 2, (h - c) / 2, c, c).to_image();
    super::resize_rgb(square.into_raw(), c, c, side, side).map_err(StillError::Thumbnail)
}

/// What an SVG says about itself: the title, description and keywords of its `cc:Work`
/// metadata (as Inkscape and Open Clip Art write them), else its top-level `<title>`/`<desc>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SvgMetadata {
    pub title: String,
    pub description: String,
    pub keywords: Vec<String>,
}

impl SvgMetadata {
    /// A caption: title, description and the keywords the title does not already say.
    pub fn caption(&self) -> String {
        let title_lower = self.title.to_lowercase();
        let keywords: Vec<&str> = self
            .keywords
            .iter()
            .map(String::as_str)
            .filter(|k| !title_lower.contains(&k.to_lowercase()))
            .collect();
        let description = (self.description != self.title).then_some(self.description.as_str());
        [
            Some(self.title.as_str()),
            description,
            Some(&keywords.join(", ")),
        ]
        .into_iter()
        .flatten()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(". ")
    }
}

const SVG_NS: &str = "http://www.w3.org/2000/svg";
const DC_NS: &str = "http://purl.org/dc/elements/1.1/";
/// Creative Commons' namespace, today's and the one older Inkscape files use.
const CC_NS: [&str; 2] = [
    "http://creativecommons.org/ns#",
    "http://web.resource.org/cc/",
];
const RDF_NS: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";

fn clean(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The SVG's own metadata, or `None` when it is not parseable XML or states nothing.
pub fn svg_metadata(bytes: &[u8]) -> Option<SvgMetadata> {
    let text = std::str::from_utf8(bytes).ok()?;
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, opts).ok()?;
    let child_text = |node: roxmltree::Node, ns: &str, name: &str| {
        node.children()
            .find(|c| c.has_tag_name((ns, name)))
            .map(|c| {
                let text: String = c
                    .descendants()
                    .filter(|d| d.is_text())
                    .filter_map(|d| d.text())
                    .collect();
                clean(&text)
            })
            .unwrap_or_default()
    };
    let meta = match doc
        .descendants()
        .find(|n| CC_NS.iter().any(|ns| n.has_tag_name((*ns, "Work"))))
    {
        Some(work) => SvgMetadata {
            title: child_text(work, DC_NS, "title"),
            description: child_text(work, DC_NS, "description"),
            keywords: work
                .children()
                .filter(|c| c.has_tag_name((DC_NS, "subject")))
                .flat_map(|s| s.descendants().filter(|d| d.has_tag_name((RDF_NS, "li"))))
                .filter_map(|li| li.text().map(clean))
                .filter(|k| !k.is_empty())
                .collect(),
        },
        None => SvgMetadata {
            title: child_text(doc.root_element(), SVG_NS, "title"),
            description: child_text(doc.root_element(), SVG_NS, "desc"),
            keywords: Vec::new(),
        },
    };
    (!meta.caption().is_empty()).then_some(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_after_a_long_prolog_is_still_an_svg() {
        let svg = format!(
            "<?xml version=\"1.0\"?>\n<!-- {} -->\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
             width=\"20\" height=\"10\"><rect width=\"20\" height=\"10\"/></svg>",
            "licence text ".repeat(300)
        );
        let still = decode_still(svg.as_bytes()).unwrap();
        assert_eq!(
            (still.mime, still.width, still.height),
            ("image/svg+xml", 20, 10)
        );
    }

    #[test]
    fn svg_metadata_reads_the_work_not_its_agents() {
        let svg = br#"<?xml version="1.0"?>
<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">
<svg xmlns="http://www.w3.org/2000/svg" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:cc="http://creativecommons.org/ns#"
     xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" width="10" height="10">
  <metadata><rdf:RDF><cc:Work rdf:about="">
    <dc:title>bat</dc:title>
    <dc:description>  a  flying
       mammal </dc:description>
    <dc:subject><rdf:Bag><rdf:li>mammal</rdf:li><rdf:li>Bat</rdf:li><rdf:li>night</rdf:li></rdf:Bag></dc:subject>
    <dc:creator><cc:Agent><dc:title>Orlando Karam</dc:title></cc:Agent></dc:creator>
  </cc:Work></rdf:RDF></metadata>
  <rect width="10" height="10"/>
</svg>"#;
        let m = svg_metadata(svg).unwrap();
        assert_eq!(m.title, "bat");
        assert_eq!(m.description, "a flying mammal");
        assert_eq!(m.keywords, ["mammal", "Bat", "night"]);
        assert_eq!(m.caption(), "bat. a flying mammal. mammal, night");

        let plain = br#"<svg xmlns="http://www.w3.org/2000/svg"><title>Red circle</title><circle r="3"/></svg>"#;
        assert_eq!(svg_metadata(plain).unwrap().caption(), "Red circle");
        let bare = br#"<svg xmlns="http://www.w3.org/2000/svg"><circle r="3"/></svg>"#;
        assert_eq!(svg_metadata(bare), None);
        assert_eq!(svg_metadata(b"not xml <"), None);
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn decodes_measures_and_thumbnails() {
        let s = decode_still(&png(600, 300)).unwrap();
        assert_eq!((s.format, s.width, s.height), ("png", 600, 300));
        assert_eq!((s.thumb_width, s.thumb_height), (256, 128));
        assert_eq!(&s.thumb_jpeg[..2], [0xff, 0xd8]);
        let small = decode_still(&png(10, 20)).unwrap();
        assert_eq!((small.thumb_width, small.thumb_height), (10, 20));
    }

    #[test]
    fn a_jpeg_that_fits_is_its_own_thumbnail() {
        let img = image::RgbImage::from_fn(200, 100, |x, y| image::Rgb([x as u8, y as u8, 9]));
        let mut small = Cursor::new(Vec::new());
        img.write_to(&mut small, ImageFormat::Jpeg).unwrap();
        let small = small.into_inner();
        let s = decode_still(&small).unwrap();
        assert_eq!(s.thumb_jpeg, small);
        assert_eq!((s.thumb_width, s.thumb_height), (200, 100));
        let big = image::RgbImage::from_fn(300, 100, |x, y| image::Rgb([x as u8, y as u8, 9]));
        let mut bytes = Cursor::new(Vec::new());
        big.write_to(&mut bytes, ImageFormat::Jpeg).unwrap();
        let s = decode_still(bytes.get_ref()).unwrap();
        assert_ne!(&s.thumb_jpeg, bytes.get_ref());
        assert_eq!((s.thumb_width, s.thumb_height), (256, 85));
    }

    #[test]
    fn refuses_truncated_and_garbage() {
        let bytes = png(64, 64);
        assert!(matches!(
            decode_still(&bytes[..bytes.len() / 2]),
            Err(StillError::Corrupt(_))
        ));
        assert!(matches!(
            decode_still(b"hello there"),
            Err(StillError::UnknownFormat)
        ));
    }

    #[test]
    fn refuses_a_bomb_header_before_allocating() {
        // A real PNG whose IHDR is rewritten to claim 100000×100000 (CRC fixed up).
        let mut bytes = png(8, 8);
        bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32fast::hash(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        match decode_still(&bytes) {
            Err(StillError::TooLarge { width, height }) => {
                assert_eq!((width, height), (100_000, 100_000))
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    fn halves_jpeg(w: u32, h: u32) -> Vec<u8> {
        // Left half red, right half blue.
        let rgb: Vec<u8> = (0..h)
            .flat_map(|_| {
                (0..w).flat_map(move |x| {
                    if x < w / 2 {
                        [220, 30, 30]
                    } else {
                        [30, 30, 220]
                    }
                })
            })
            .collect();
        encode_jpeg(&rgb, w, h, 90).unwrap()
    }

    #[test]
    fn jpegs_are_measured_thumbnailed_and_checked() {
        let jpeg = halves_jpeg(640, 360);
        let s = decode_still(&jpeg).unwrap();
        assert_eq!((s.format, s.width, s.height), ("jpeg", 640, 360));
        assert_eq!((s.thumb_width, s.thumb_height), (256, 144));
        let thumb = image::load_from_memory(&s.thumb_jpeg).unwrap().to_rgb8();
        assert_eq!(thumb.dimensions(), (256, 144));
        let (l, r) = (thumb.get_pixel(30, 70), thumb.get_pixel(226, 70));
        assert!(
            l[0] > 180 && l[2] < 80 && r[2] > 180 && r[0] < 80,
            "{l:?} {r:?}"
        );
        assert!(matches!(
            decode_still(&jpeg[..jpeg.len() * 2 / 3]),
            Err(StillError::Corrupt(_))
        ));
        // The frame header (SOF0: FF C0, length, precision, height, width) rewritten to claim
        // 60000×60000: refused from the header alone.
        let mut bomb = jpeg.clone();
        let sof = bomb.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
        bomb[sof + 5..sof + 9].copy_from_slice(&[0xea, 0x60, 0xea, 0x60]);
        match decode_still(&bomb) {
            Err(StillError::TooLarge { width, height }) => {
                assert_eq!((width, height), (60_000, 60_000))
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn a_cmyk_jpeg_is_read_by_the_other_decoder() {
        let cmyk = [0u8, 200, 200, 20].repeat(300 * 100);
        let mut c = turbojpeg::Compressor::new().unwrap();
        c.set_quality(90).unwrap();
        let image = turbojpeg::Image {
            pixels: &cmyk[..],
            width: 300,
            pitch: 1200,
            height: 100,
            format: turbojpeg::PixelFormat::CMYK,
        };
        let jpeg = c.compress_to_vec(image).unwrap();
        let s = decode_still(&jpeg).unwrap();
        assert_eq!((s.width, s.height, s.thumb_width), (300, 100, 256));
        assert_eq!(square_rgb(&jpeg, 32).unwrap().len(), 32 * 32 * 3);
    }

    #[test]
    fn square_of_a_jpeg_is_its_centre_at_the_asked_side() {
        let sq = square_rgb(&halves_jpeg(640, 360), 64).unwrap();
        assert_eq!(sq.len(), 64 * 64 * 3);
        let px = |x: usize, y: usize| &sq[(y * 64 + x) * 3..(y * 64 + x) * 3 + 3];
        assert!(px(8, 32)[0] > 180 && px(8, 32)[2] < 80, "{:?}", px(8, 32));
        assert!(
            px(56, 32)[2] > 180 && px(56, 32)[0] < 80,
            "{:?}",
            px(56, 32)
        );
        // The same picture as a PNG (decoded at full size) gives nearly the same square.
        let png_sq = square_rgb(&png(64, 64), 64).unwrap();
        assert_eq!(png_sq.len(), sq.len());
    }

    #[test]
    fn svg_rasterised_and_external_refs_refused() {
        let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="512" height="256"><rect width="512" height="256" fill="red"/></svg>"#;
        let s = decode_still(svg).unwrap();
        assert_eq!((s.format, s.width, s.height), ("svg", 512, 256));
        assert_eq!((s.thumb_width, s.thumb_height), (256, 128));
        let ext = br#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10"><image xlink:href="/etc/secret.png" width="10" height="10"/></svg>"#;
        match decode_still(ext) {
            Err(StillError::SvgExternal { href }) => assert_eq!(href, "/etc/secret.png"),
            other => panic!("expected SvgExternal, got {other:?}"),
        }
    }
}
