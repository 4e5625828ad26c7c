//! Grouped image-text matching: four images tiled 2×2 into one, four captions in one text,
//! some swapped for captions of other items; for each caption, does it belong to its quadrant?

use rand::Rng;

/// One group's text and labels, before tokenization.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupPlan {
    /// The four images, by index into the batch, in quadrant order (TL, TR, BL, BR).
    pub images: [usize; 4],
    /// For each quadrant, the caption shown (index into the corpus) and whether it is the
    /// quadrant's own.
    pub captions: [(usize, bool); 4],
}

/// Plans a group from four batch members (`members`, corpus indices `corpus_of`), swapping each
/// caption with probability `swap_p` for the caption of a corpus item showing another image.
pub fn plan(
    members: [usize; 4],
    corpus_of: &[usize],
    image_of: &dyn Fn(usize) -> String,
    corpus_len: usize,
    swap_p: f64,
    rng: &mut impl Rng,
) -> GroupPlan {
    let mut captions = [(0, true); 4];
    for (q, &m) in members.iter().enumerate() {
        let own = corpus_of[m];
        captions[q] = (own, true);
        if corpus_len > 1 && rng.random_bool(swap_p) {
            // A few tries for an item with a different image; keep the own caption otherwise.
            for _ in 0..16 {
                let other = rng.random_range(0..corpus_len);
                if image_of(other) != image_of(own) {
                    captions[q] = (other, false);
                    break;
                }
            }
        }
    }
    GroupPlan {
        images: members,
        captions,
    }
}

/// Tiles four `s`×`s` RGB images (row-major u8) into one, each shrunk to half size by 2×2
/// averaging: quadrant q sits at row q/2, column q%2.
pub fn tile(images: [&[u8]; 4], s: usize) -> Vec<u8> {
    let h = s / 2;
    let mut out = vec![0u8; s * s * 3];
    for (q, img) in images.iter().enumerate() {
        let (oy, ox) = ((q / 2) * h, (q % 2) * h);
        for y in 0..h {
            for x in 0..h {
                for c in 0..3 {
                    let at = |yy: usize, xx: usize| img[(yy * s + xx) * 3 + c] as u32;
                    let sum = at(2 * y, 2 * x)
                        + at(2 * y, 2 * x + 1)
                        + at(2 * y + 1, 2 * x)
                        + at(2 * y + 1, 2 * x + 1);
                    out[((oy + y) * s + ox + x) * 3 + c] = ((sum + 2) / 4) as u8;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn labels_say_whether_the_caption_is_the_quadrants_own() {
        let corpus_of = [10, 11, 12, 13];
        let image_of = |i: usize| format!("img{}", i % 20);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let (mut swapped, mut kept) = (0, 0);
        for _ in 0..100 {
            let g = plan([0, 1, 2, 3], &corpus_of, &image_of, 40, 0.5, &mut rng);
            for (q, (cap, own)) in g.captions.iter().enumerate() {
                let is_own = *cap == corpus_of[q];
                assert_eq!(*own, is_own, "label matches the caption shown");
                if !own {
                    assert_ne!(image_of(*cap), image_of(corpus_of[q]));
                    swapped += 1;
                } else {
                    kept += 1;
                }
            }
        }
        assert!(swapped > 150 && kept > 150, "{swapped} {kept}");
        let none = plan([0, 1, 2, 3], &corpus_of, &image_of, 40, 0.0, &mut rng);
        assert!(none.captions.iter().all(|c| c.1));
    }

    #[test]
    fn tiles_quadrants_in_place() {
        let s = 4;
        let imgs: Vec<Vec<u8>> = (0..4).map(|q| vec![(q * 60) as u8; s * s * 3]).collect();
        let out = tile([&imgs[0], &imgs[1], &imgs[2], &imgs[3]], s);
        let px = |y: usize, x: usize| out[(y * s + x) * 3];
        assert_eq!((px(0, 0), px(0, 3), px(3, 0), px(3, 3)), (0, 60, 120, 180));
    }
}
