//! Batches: which items a step sees (a fixed function of seed and step, so a resumed run sees
//! what an uninterrupted one would), and building them — decode, crop, tokenize, patchify, tile
//! grouped-ITM grids — on background threads, so the device never waits.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::model::config::{RunConfig, Task};
use crate::model::{PIXEL_MEAN, PIXEL_STD};
use crate::text::Tokenizer;

use super::objectives::grouped_itm;
use super::objectives::mim::normalise_patch;
use super::TrainError;

/// One image-caption pair of the training corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct CorpusItem {
    pub image_hash: String,
    /// The caption, or a VQA item's question.
    pub caption: String,
    /// VQA items: (answer class, soft score) of each answer in the run's vocabulary.
    pub answers: Vec<(u32, f32)>,
}

impl CorpusItem {
    pub fn pair(image_hash: &str, caption: &str) -> Self {
        Self {
            image_hash: image_hash.to_string(),
            caption: caption.to_string(),
            answers: Vec::new(),
        }
    }
}

/// Reads an image blob's bytes by hash.
pub type ReadImage = Box<dyn Fn(&str) -> std::io::Result<Vec<u8>> + Send + Sync>;

/// The pairs a run trains or validates on, and where their images are read from.
pub struct Corpus {
    pub items: Vec<CorpusItem>,
    pub read_image: ReadImage,
}

/// One pair, ready for the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub ids: Vec<u32>,
    pub words: Vec<Option<u32>>,
    /// `[N, P·P·3]` pixels normalised per channel (model input).
    pub patches: Vec<f32>,
    /// `[N, P·P·3]` pixels normalised per patch (MIM target).
    pub targets: Vec<f32>,
    /// Which image this is (pairs sharing an image are not each other's negatives).
    pub image_key: String,
    /// VQA: (answer class, soft score).
    pub answers: Vec<(u32, f32)>,
}

/// One grouped-ITM grid: four captions after `[CLS]`, each followed by `[SEP]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub ids: Vec<u32>,
    /// Start and length of each caption's word pieces in `ids`.
    pub segments: [(usize, usize); 4],
    pub patches: Vec<f32>,
    /// 1 where the caption belongs to its quadrant.
    pub labels: [u32; 4],
}

#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The micro-step this batch belongs to (step × accumulate + micro).
    pub micro_step: u64,
    pub samples: Vec<Sample>,
    pub groups: Vec<Group>,
}

/// Decoded, squared images by hash, shared by the loader threads; bounded in bytes.
pub struct ImageCache {
    map: Mutex<HashMap<String, Arc<Vec<u8>>>>,
    bytes: Mutex<usize>,
    limit: usize,
}

impl ImageCache {
    pub fn new(limit: usize) -> Self {
        Self {
            map: Mutex::default(),
            bytes: Mutex::new(0),
            limit,
        }
    }

    fn get_or_load(
        &self,
        corpus: &Corpus,
        hash: &str,
        side: u32,
    ) -> Result<Arc<Vec<u8>>, TrainError> {
        if let Some(img) = self.map.lock().expect("cache lock").get(hash) {
            return Ok(img.clone());
        }
        let bytes = (corpus.read_image)(hash).map_err(|e| TrainError::Image {
            hash: hash.to_string(),
            reason: e.to_string(),
        })?;
        let rgb = crate::media::square_rgb(&bytes, side).map_err(|e| TrainError::Image {
            hash: hash.to_string(),
            reason: e.to_string(),
        })?;
        let rgb = Arc::new(rgb);
        let mut used = self.bytes.lock().expect("cache lock");
        if *used + rgb.len() <= self.limit {
            *used += rgb.len();
            self.map
                .lock()
                .expect("cache lock")
                .insert(hash.to_string(), rgb.clone());
        }
        Ok(rgb)
    }
}

/// An `s`×`s` RGB image (row-major u8) as `[N, P·P·3]` patches in row-major patch order, each
/// patch's pixels row by row: the model input (normalised per channel) and the MIM target
/// (normalised per patch).
pub fn patchify(rgb: &[u8], s: usize, p: usize) -> (Vec<f32>, Vec<f32>) {
    let g = s / p;
    let dim = p * p * 3;
    let mut input = Vec::with_capacity(g * g * dim);
    let mut target = Vec::with_capacity(g * g * dim);
    for gy in 0..g {
        for gx in 0..g {
            let start = target.len();
            for py in 0..p {
                for px in 0..p {
                    let at = ((gy * p + py) * s + gx * p + px) * 3;
                    for c in 0..3 {
                        let v = rgb[at + c] as f32 / 255.0;
                        input.push((v - PIXEL_MEAN[c]) / PIXEL_STD[c]);
                        target.push(v);
                    }
                }
            }
            normalise_patch(&mut target[start..start + dim]);
        }
    }
    (input, target)
}

/// Symmetry `t` (0..8) of a `side`×`side` RGB square: bit 0 transposes, bit 1 mirrors left to
/// right, bit 2 top to bottom; 0 is the identity.
pub fn dihedral(rgb: &[u8], side: usize, t: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(rgb.len());
    for y in 0..side {
        for x in 0..side {
            let (mut sx, mut sy) = if t & 1 == 1 { (y, x) } else { (x, y) };
            if t & 2 == 2 {
                sx = side - 1 - sx;
            }
            if t & 4 == 4 {
                sy = side - 1 - sy;
            }
            let i = (sy * side + sx) * 3;
            out.extend_from_slice(&rgb[i..i + 3]);
        }
    }
    out
}

/// Builds batches for a corpus under a run configuration.
pub struct BatchBuilder {
    pub corpus: Arc<Corpus>,
    pub cfg: RunConfig,
    pub tokenizer: Arc<Tokenizer>,
    pub cache: Arc<ImageCache>,
    /// Training batches are augmented (random crops, except for VQA, and the square's symmetries
    /// when the config asks); validation ones show the centre.
    pub training: bool,
    pub seed: u64,
}

/// A generator for one purpose at one micro-step: independent of thread and timing.
pub fn step_rng(seed: u64, micro_step: u64, purpose: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    rng.set_stream(micro_step);
    rng
}

pub const PURPOSE_ORDER: u64 = 1;
pub const PURPOSE_AUGMENT: u64 = 2;
pub const PURPOSE_MASK: u64 = 3;
pub const PURPOSE_NEGATIVES: u64 = 4;
pub const PURPOSE_GROUPS: u64 = 5;

impl BatchBuilder {
    /// Corpus indices of micro-step `m`: epochs are seeded permutations, read in order.
    pub fn indices(&self, m: u64) -> Vec<usize> {
        let n = self.corpus.items.len();
        let b = self.cfg.train.batch;
        let mut out = Vec::with_capacity(b);
        let mut perm_epoch = u64::MAX;
        let mut perm: Vec<usize> = Vec::new();
        for k in 0..b as u64 {
            let g = m * b as u64 + k;
            let (epoch, pos) = (g / n as u64, (g % n as u64) as usize);
            if epoch != perm_epoch {
                perm = (0..n).collect();
                perm.shuffle(&mut step_rng(self.seed, epoch, PURPOSE_ORDER));
                perm_epoch = epoch;
            }
            out.push(perm[pos]);
        }
        out
    }

    /// The image's square (with a margin for crops), then a crop of the model's size.
    fn pixels(&self, hash: &str, rng: &mut ChaCha8Rng) -> Result<Vec<u8>, TrainError> {
        let s = self.cfg.model.image_size;
        // A crop could cut away what a VQA question asks about.
        let crops = self.training && !matches!(self.cfg.task, Task::Vqa { .. });
        let margin = if crops { s / 8 } else { 0 };
        let base = self
            .cache
            .get_or_load(&self.corpus, hash, (s + margin) as u32)?;
        if margin == 0 {
            return Ok(base.as_ref().clone());
        }
        let big = s + margin;
        let (oy, ox) = (rng.random_range(0..=margin), rng.random_range(0..=margin));
        let mut out = Vec::with_capacity(s * s * 3);
        for y in 0..s {
            let row = ((oy + y) * big + ox) * 3;
            out.extend_from_slice(&base[row..row + s * 3]);
        }
        Ok(out)
    }

    /// The crop (when cropping), then one of the square's 8 symmetries (when asked for).
    fn augmented_pixels(&self, hash: &str, rng: &mut ChaCha8Rng) -> Result<Vec<u8>, TrainError> {
        let rgb = self.pixels(hash, rng)?;
        if !(self.training && self.cfg.train.dihedral) {
            return Ok(rgb);
        }
        Ok(dihedral(
            &rgb,
            self.cfg.model.image_size,
            rng.random_range(0..8),
        ))
    }

    /// `[N, P·P·3]` input and target pixels of an image of the model's size.
    pub fn patchify(&self, rgb: &[u8]) -> (Vec<f32>, Vec<f32>) {
        patchify(rgb, self.cfg.model.image_size, self.cfg.model.patch_size)
    }

    fn sample(&self, idx: usize, rng: &mut ChaCha8Rng) -> Result<(Sample, Vec<u8>), TrainError> {
        let item = &self.corpus.items[idx];
        let tok = self
            .tokenizer
            .encode(&item.caption, self.cfg.model.max_text_len)?;
        let rgb = self.augmented_pixels(&item.image_hash, rng)?;
        let (patches, targets) = self.patchify(&rgb);
        Ok((
            Sample {
                ids: tok.ids,
                words: tok.words,
                patches,
                targets,
                image_key: item.image_hash.clone(),
                answers: item.answers.clone(),
            },
            rgb,
        ))
    }

    /// The batch of micro-step `m`.
    pub fn build(&self, m: u64) -> Result<Batch, TrainError> {
        let idx = self.indices(m);
        self.build_from(m, &idx)
    }

    /// A batch of the given corpus items (validation uses fixed slices of the held-out set).
    pub fn build_from(&self, m: u64, idx: &[usize]) -> Result<Batch, TrainError> {
        let mut rng = step_rng(self.seed, m, PURPOSE_AUGMENT);
        let mut samples = Vec::with_capacity(idx.len());
        let mut pixels = Vec::with_capacity(idx.len());
        for &i in idx {
            let (s, rgb) = self.sample(i, &mut rng)?;
            samples.push(s);
            pixels.push(rgb);
        }
        let groups = if self.cfg.objectives.grouped_itm.enabled {
            self.groups(m, idx, &pixels)?
        } else {
            Vec::new()
        };
        Ok(Batch {
            micro_step: m,
            samples,
            groups,
        })
    }

    /// One 2×2 grid per four pairs of the batch (at least one).
    fn groups(&self, m: u64, idx: &[usize], pixels: &[Vec<u8>]) -> Result<Vec<Group>, TrainError> {
        let mut rng = step_rng(self.seed, m, PURPOSE_GROUPS);
        let b = idx.len();
        let s = self.cfg.model.image_size;
        let per = (self.cfg.model.max_text_len - 5) / 4;
        let items = &self.corpus.items;
        let image_of = |i: usize| items[i].image_hash.clone();
        let mut out = Vec::new();
        for gi in 0..(b / 4).max(1) {
            let members = [0, 1, 2, 3].map(|q| (gi * 4 + q) % b);
            let plan = grouped_itm::plan(
                members,
                idx,
                &image_of,
                items.len(),
                self.cfg.objectives.grouped_itm.swap_p,
                &mut rng,
            );
            let grid = grouped_itm::tile(members.map(|q| pixels[q].as_slice()), s);
            let (patches, _) = self.patchify(&grid);
            let sp = self.tokenizer.specials;
            let mut ids = vec![sp.cls];
            let mut segments = [(0, 0); 4];
            let mut labels = [0; 4];
            for (q, (cap, own)) in plan.captions.iter().enumerate() {
                let pieces = self.tokenizer.pieces(&items[*cap].caption, per)?;
                let len = pieces.ids.len().max(1);
                segments[q] = (ids.len(), len);
                if pieces.ids.is_empty() {
                    ids.push(sp.sep); // an empty caption is represented by its separator
                } else {
                    ids.extend(pieces.ids);
                }
                ids.push(sp.sep);
                labels[q] = *own as u32;
            }
            out.push(Group {
                ids,
                segments,
                patches,
                labels,
            });
        }
        Ok(out)
    }
}

/// Background threads building the batches of micro-steps `first..end` in order: worker `w`
/// builds every `threads`-th one, and the consumer takes them round-robin.
pub struct Loader {
    receivers: Vec<Receiver<Result<Batch, TrainError>>>,
    next: u64,
    first: u64,
    handles: Vec<JoinHandle<()>>,
}

impl Loader {
    pub fn start(builder: Arc<BatchBuilder>, first: u64, end: u64, threads: usize) -> Self {
        let threads = threads.max(1);
        let mut receivers = Vec::new();
        let mut handles = Vec::new();
        for w in 0..threads as u64 {
            let (tx, rx) = sync_channel(2);
            let b = builder.clone();
            handles.push(std::thread::spawn(move || {
                let mut m = first + w;
                while m < end {
                    if tx.send(b.build(m)).is_err() {
                        return; // the trainer stopped
                    }
                    m += threads as u64;
                }
            }));
            receivers.push(rx);
        }
        Self {
            receivers,
            next: first,
            first,
            handles,
        }
    }

    pub fn next_batch(&mut self) -> Result<Batch, TrainError> {
        let w = ((self.next - self.first) % self.receivers.len() as u64) as usize;
        self.next += 1;
        self.receivers[w]
            .recv()
            .map_err(|_| TrainError::Loader("a batch thread stopped".into()))?
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        // Dropping the receivers ends the workers at their next send.
        self.receivers.clear();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eight_symmetries_are_distinct_rearrangements() {
        // 3×3 pixels, each with its own value.
        let img: Vec<u8> = (0..9u8).flat_map(|v| [v, v, v]).collect();
        let at = |im: &[u8], x: usize, y: usize| im[(y * 3 + x) * 3];
        let all: Vec<Vec<u8>> = (0..8).map(|t| dihedral(&img, 3, t)).collect();
        assert_eq!(all[0], img);
        for (t, im) in all.iter().enumerate() {
            let mut v: Vec<u8> = im.iter().step_by(3).copied().collect();
            v.sort();
            assert_eq!(v, (0..9).collect::<Vec<u8>>(), "symmetry {t} loses pixels");
            assert_eq!(at(im, 1, 1), 4, "the centre stays");
        }
        for a in 0..8 {
            for b in a + 1..8 {
                assert_ne!(all[a], all[b], "symmetries {a} and {b} coincide");
            }
        }
        assert_eq!((at(&all[1], 1, 0), at(&all[1], 0, 1)), (3, 1), "transposed");
        assert_eq!(at(&all[2], 0, 0), 2, "mirrored left to right");
        assert_eq!(at(&all[4], 0, 0), 6, "mirrored top to bottom");
    }
}
