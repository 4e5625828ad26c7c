//! Which words and patches a pair hides, and the index tables that carry out that choice on the
//! device: the encoder gathers only the visible tokens (M3AE), the decoder puts them back in
//! place beside mask tokens, and the losses gather the hidden places' outputs.

use rand::seq::SliceRandom;
use rand::Rng;

use crate::model::config::Objectives;

use super::batch::Sample;

/// A modality a pair hides entirely (alternate modality masking).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modality {
    Text,
    Image,
}

/// What one batch hides: per sample, a flag per text position (`ids.len()`) and per patch.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskSpec {
    pub text_hidden: Vec<Vec<bool>>,
    pub image_hidden: Vec<Vec<bool>>,
    /// The modality each sample hides entirely, if alternate masking chose it.
    pub whole: Vec<Option<Modality>>,
}

/// Positions of a caption that may be hidden: the word pieces, not `[CLS]`/`[SEP]`.
pub fn word_positions(len: usize) -> std::ops::Range<usize> {
    1..len.saturating_sub(1).max(1)
}

/// How many of `n` candidates a ratio hides: at least one, and (for patches) never all.
pub fn hidden_count(n: usize, ratio: f64, keep_one: bool) -> usize {
    if n == 0 {
        return 0;
    }
    let k = ((n as f64) * ratio).round() as usize;
    let k = k.max(1);
    if keep_one {
        k.min(n - 1)
    } else {
        k.min(n)
    }
}

/// Random masks: `mlm.mask_ratio` of the word pieces (whole words when asked), `mim.mask_ratio`
/// of the patches, and with probability `alt.p` one whole modality instead.
pub fn random_masks(
    samples: &[Sample],
    patches: usize,
    o: &Objectives,
    rng: &mut impl Rng,
) -> MaskSpec {
    let mut spec = MaskSpec {
        text_hidden: Vec::with_capacity(samples.len()),
        image_hidden: Vec::with_capacity(samples.len()),
        whole: Vec::with_capacity(samples.len()),
    };
    for s in samples {
        let len = s.ids.len();
        let whole = (o.alt.enabled && rng.random_bool(o.alt.p)).then(|| {
            if rng.random_bool(0.5) {
                Modality::Text
            } else {
                Modality::Image
            }
        });
        let mut text = vec![false; len];
        let mut image = vec![false; patches];
        match whole {
            Some(Modality::Text) => text[1..].iter_mut().for_each(|h| *h = true),
            Some(Modality::Image) => image.iter_mut().for_each(|h| *h = true),
            None => {
                if o.mlm.enabled {
                    hide_words(s, &mut text, o.mlm.mask_ratio, o.mlm.whole_word, rng);
                }
                if o.mim.enabled {
                    let k = hidden_count(patches, o.mim.mask_ratio, true);
                    let mut order: Vec<usize> = (0..patches).collect();
                    order.shuffle(rng);
                    order[..k].iter().for_each(|&i| image[i] = true);
                }
            }
        }
        spec.text_hidden.push(text);
        spec.image_hidden.push(image);
        spec.whole.push(whole);
    }
    spec
}

fn hide_words(s: &Sample, hidden: &mut [bool], ratio: f64, whole_word: bool, rng: &mut impl Rng) {
    let cand: Vec<usize> = word_positions(s.ids.len()).collect();
    let k = hidden_count(cand.len(), ratio, false);
    if !whole_word {
        let mut order = cand;
        order.shuffle(rng);
        order[..k].iter().for_each(|&i| hidden[i] = true);
        return;
    }
    // Whole words in random order until at least k pieces are hidden.
    let mut words: Vec<u32> = cand.iter().filter_map(|&i| s.words[i]).collect();
    words.dedup();
    words.shuffle(rng);
    let mut n = 0;
    for w in words {
        if n >= k {
            break;
        }
        for &i in &cand {
            if s.words[i] == Some(w) {
                hidden[i] = true;
                n += 1;
            }
        }
    }
}

/// Index tables for one masked pass over a batch whose captions are padded to `lt` and whose
/// images have `n` patches. Rows of the "full" token table are `b·(lt+n) + position` (text
/// positions first, then patches); rows of the patch-target table are `b·n + patch`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MaskIndices {
    pub lt: usize,
    /// Encoder length: the longest visible sequence of the batch.
    pub tv: usize,
    /// `[B·tv]` full-table rows the encoder sees (padding repeats the sample's `[CLS]`).
    pub enc_rows: Vec<u32>,
    /// `[B·tv]` 1 for real tokens, 0 for padding.
    pub enc_mask: Vec<f32>,
    /// `[B·(lt+n)]` rows of [encoder outputs (B·tv)…, mask token] that fill the decoder.
    pub restore: Vec<u32>,
    /// `[B·(lt+n)]` 1 where the decoder attends (everything but text padding).
    pub dec_mask: Vec<f32>,
    pub mlm_rows: Vec<u32>,
    pub mlm_targets: Vec<u32>,
    pub mim_rows: Vec<u32>,
    pub mim_targets: Vec<u32>,
    pub alt_text_rows: Vec<u32>,
    pub alt_text_targets: Vec<u32>,
    pub alt_image_rows: Vec<u32>,
    pub alt_image_targets: Vec<u32>,
}

pub fn build_indices(spec: &MaskSpec, samples: &[Sample], lt: usize, n: usize) -> MaskIndices {
    let b = samples.len();
    let full = lt + n;
    let visible: Vec<Vec<usize>> = (0..b)
        .map(|i| {
            let len = samples[i].ids.len();
            let text = (0..len).filter(|&p| !spec.text_hidden[i][p]);
            let image = (0..n).filter(|&p| !spec.image_hidden[i][p]).map(|p| lt + p);
            text.chain(image).collect()
        })
        .collect();
    let tv = visible.iter().map(Vec::len).max().unwrap_or(1);
    let mut ix = MaskIndices {
        lt,
        tv,
        ..Default::default()
    };
    let mask_row = (b * tv) as u32;
    for (i, vis) in visible.iter().enumerate() {
        let base = (i * full) as u32;
        let mut slot = vec![None; full];
        for j in 0..tv {
            match vis.get(j) {
                Some(&p) => {
                    ix.enc_rows.push(base + p as u32);
                    ix.enc_mask.push(1.0);
                    slot[p] = Some((i * tv + j) as u32);
                }
                None => {
                    ix.enc_rows.push(base);
                    ix.enc_mask.push(0.0);
                }
            }
        }
        let s = &samples[i];
        let len = s.ids.len();
        for (p, sl) in slot.iter().enumerate() {
            ix.restore.push(sl.unwrap_or(mask_row));
            ix.dec_mask.push(if p < lt && p >= len { 0.0 } else { 1.0 });
        }
        let whole = spec.whole[i];
        for p in word_positions(len) {
            if spec.text_hidden[i][p] {
                let (rows, targets) = if whole == Some(Modality::Text) {
                    (&mut ix.alt_text_rows, &mut ix.alt_text_targets)
                } else {
                    (&mut ix.mlm_rows, &mut ix.mlm_targets)
                };
                rows.push(base + p as u32);
                targets.push(s.ids[p]);
            }
        }
        for p in 0..n {
            if spec.image_hidden[i][p] {
                let (rows, targets) = if whole == Some(Modality::Image) {
                    (&mut ix.alt_image_rows, &mut ix.alt_image_targets)
                } else {
                    (&mut ix.mim_rows, &mut ix.mim_targets)
                };
                rows.push(base + (lt + p) as u32);
                targets.push((i * n + p) as u32);
            }
        }
    }
    ix
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    pub(crate) fn sample(len: usize, n: usize) -> Sample {
        let mut ids = vec![101];
        ids.extend((0..len - 2).map(|i| 2000 + i as u32));
        ids.push(102);
        let mut words = vec![None];
        words.extend((0..len - 2).map(|i| Some(i as u32 / 2)));
        words.push(None);
        Sample {
            ids,
            words,
            patches: vec![0.0; n * 3],
            targets: vec![0.0; n * 3],
            image_key: format!("img{len}"),
            answers: Vec::new(),
        }
    }

    #[test]
    fn ratios_are_kept_and_specials_never_hidden() {
        let mut o = Objectives::default();
        o.mlm.mask_ratio = 0.25;
        o.mim.mask_ratio = 0.75;
        let samples: Vec<Sample> = (0..6).map(|i| sample(10 + i, 16)).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let spec = random_masks(&samples, 16, &o, &mut rng);
        for (s, (t, im)) in samples
            .iter()
            .zip(spec.text_hidden.iter().zip(&spec.image_hidden))
        {
            let words = s.ids.len() - 2;
            assert_eq!(
                t.iter().filter(|h| **h).count(),
                hidden_count(words, 0.25, false)
            );
            assert!(!t[0] && !t[s.ids.len() - 1], "[CLS]/[SEP] hidden");
            assert_eq!(im.iter().filter(|h| **h).count(), 12);
        }
    }

    #[test]
    fn whole_word_masking_hides_every_piece_of_a_word() {
        let mut o = Objectives::default();
        o.mlm.whole_word = true;
        o.mlm.mask_ratio = 0.3;
        let s = sample(12, 4);
        for seed in 0..20 {
            let spec = random_masks(
                std::slice::from_ref(&s),
                4,
                &o,
                &mut ChaCha8Rng::seed_from_u64(seed),
            );
            for p in word_positions(12) {
                for q in word_positions(12) {
                    if s.words[p] == s.words[q] {
                        assert_eq!(spec.text_hidden[0][p], spec.text_hidden[0][q]);
                    }
                }
            }
        }
    }

    #[test]
    fn alternate_masking_hides_exactly_one_whole_modality() {
        let mut o = Objectives::default();
        o.alt.enabled = true;
        o.alt.p = 1.0;
        let samples: Vec<Sample> = (0..40).map(|i| sample(6 + i % 5, 16)).collect();
        let spec = random_masks(&samples, 16, &o, &mut ChaCha8Rng::seed_from_u64(9));
        let mut seen = (0, 0);
        for i in 0..samples.len() {
            let t = &spec.text_hidden[i];
            let im = &spec.image_hidden[i];
            match spec.whole[i].unwrap() {
                Modality::Text => {
                    seen.0 += 1;
                    assert!(t[1..].iter().all(|h| *h) && !t[0]);
                    assert!(im.iter().all(|h| !*h), "the other modality stays whole");
                }
                Modality::Image => {
                    seen.1 += 1;
                    assert!(im.iter().all(|h| *h));
                    assert!(t.iter().all(|h| !*h));
                }
            }
        }
        assert!(seen.0 > 5 && seen.1 > 5, "{seen:?}");
    }

    #[test]
    fn indices_route_visible_to_encoder_and_hidden_to_targets_only() {
        let o = Objectives::default();
        let samples = vec![sample(7, 16), sample(5, 16)];
        let spec = random_masks(&samples, 16, &o, &mut ChaCha8Rng::seed_from_u64(1));
        let (lt, n) = (7, 16);
        let ix = build_indices(&spec, &samples, lt, n);
        let full = lt + n;
        #[allow(clippy::needless_range_loop)]
        for i in 0..2 {
            let rows: Vec<u32> = (0..ix.tv)
                .filter(|&j| ix.enc_mask[i * ix.tv + j] == 1.0)
                .map(|j| ix.enc_rows[i * ix.tv + j])
                .collect();
            // Nothing hidden reaches the encoder.
            for &r in &rows {
                let p = r as usize - i * full;
                if p < lt {
                    assert!(!spec.text_hidden[i][p]);
                } else {
                    assert!(!spec.image_hidden[i][p - lt]);
                }
            }
            // Every hidden place is filled with the mask token in the decoder, and every
            // visible place with its own encoder output.
            for p in 0..full {
                let r = ix.restore[i * full + p];
                let hidden = if p < lt {
                    p < samples[i].ids.len() && spec.text_hidden[i][p]
                } else {
                    spec.image_hidden[i][p - lt]
                };
                let pad = p < lt && p >= samples[i].ids.len();
                if hidden || pad {
                    assert_eq!(r as usize, 2 * ix.tv);
                } else {
                    assert_eq!(ix.enc_rows[r as usize] as usize, i * full + p);
                }
            }
        }
        assert_eq!(ix.mim_rows.len(), 24);
        assert_eq!(ix.mlm_rows.len(), ix.mlm_targets.len());
        for (&r, &t) in ix.mlm_rows.iter().zip(&ix.mlm_targets) {
            let (i, p) = (r as usize / full, r as usize % full);
            assert_eq!(samples[i].ids[p], t);
        }
    }
}
