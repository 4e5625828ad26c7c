//! A trained run loaded for inference: the weights of its latest checkpoint on a device, and the
//! batched passes evaluation, the index and the explorer share — text and image embeddings,
//! image-text matching scores, VQA answer probabilities, and `[CLS]`'s attention over patches.

use candle_core::{DType, Device, Tensor, D};

use crate::model::config::Task;
use crate::model::{select_device, DeviceChoice, Model, RunConfig};
use crate::store::Store;
use crate::text::Tokenizer;
use crate::train::batch::patchify;
use crate::train::trainer::pad_ids;
use crate::train::{checkpoint, TrainError};

/// Pairs per forward pass: bounds activation memory on every device.
pub const BATCH: usize = 64;

pub struct Loaded {
    pub run: String,
    pub config: RunConfig,
    pub model: Model,
    /// The checkpoint's step and manifest hash (what an index is keyed by).
    pub step: u64,
    pub checksum: String,
    pub device: Device,
    pub tokenizer: Tokenizer,
}

/// One answer of a VQA run with its probability.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Answer {
    pub answer: String,
    pub probability: f32,
}

/// An image ready for the model: `[N, P·P·3]` normalised patches.
pub type Patches = Vec<f32>;

impl Loaded {
    /// The latest checkpoint of `run`, its checksum verified.
    pub fn open(store: &Store, run: &str, device: DeviceChoice) -> Result<Self, TrainError> {
        let row = store.run(run)?;
        let point = store.resume_point(row.id)?.ok_or_else(|| TrainError::Run {
            run: run.into(),
            reason: "has no checkpoint yet".into(),
        })?;
        let device = select_device(device)?;
        let ckpt = checkpoint::read(&store.root().join(&point.path), &point.checksum, &device)?;
        let config = ckpt.state.config.clone();
        let model = Model::from_tensors(&config.model, ckpt.params, &device)?;
        Ok(Self {
            run: run.into(),
            config,
            model,
            step: point.step,
            checksum: point.checksum,
            device,
            tokenizer: Tokenizer::built_in(),
        })
    }

    /// The VQA answer vocabulary (empty for other tasks).
    pub fn answers(&self) -> &[String] {
        match &self.config.task {
            Task::Vqa { answers } => answers,
            _ => &[],
        }
    }

    /// Decodes an image file's bytes (raster or SVG) into the model's input.
    pub fn patches(&self, bytes: &[u8]) -> Result<Patches, TrainError> {
        let m = &self.config.model;
        let rgb = crate::media::square_rgb(bytes, m.image_size as u32).map_err(|e| {
            TrainError::Image {
                hash: String::new(),
                reason: e.to_string(),
            }
        })?;
        Ok(patchify(&rgb, m.image_size, m.patch_size).0)
    }

    fn ids(&self, texts: &[&str]) -> Result<(Tensor, Tensor), TrainError> {
        let max = self.config.model.max_text_len;
        let lists = texts
            .iter()
            .map(|t| Ok(self.tokenizer.encode(t, max)?.ids))
            .collect::<Result<Vec<_>, TrainError>>()?;
        let refs: Vec<&[u32]> = lists.iter().map(|l| l.as_slice()).collect();
        let (ids, mask, _) = pad_ids(&refs, self.tokenizer.specials.pad, &self.device)?;
        Ok((ids, mask))
    }

    fn patch_tensor(&self, images: &[&Patches]) -> Result<Tensor, TrainError> {
        let m = &self.config.model;
        let flat: Vec<f32> = images.iter().flat_map(|p| p.iter().copied()).collect();
        Ok(Tensor::from_vec(
            flat,
            (images.len(), m.patches(), m.patch_dim()),
            &self.device,
        )?)
    }

    /// Unit text embeddings `[n, P]` (text-only passes).
    pub fn embed_texts(&self, texts: &[&str]) -> Result<Tensor, TrainError> {
        let mut out = Vec::new();
        for chunk in texts.chunks(BATCH) {
            let (ids, mask) = self.ids(chunk)?;
            let h = self.model.encode_text(&ids, &mask)?;
            out.push(self.model.text_embedding(&Model::cls(&h)?)?);
        }
        self.stack(out, self.config.model.projection_dim)
    }

    /// Unit image embeddings `[n, P]` (image-only passes).
    pub fn embed_images(&self, images: &[&Patches]) -> Result<Tensor, TrainError> {
        let mut out = Vec::new();
        for chunk in images.chunks(BATCH) {
            let cls = Tensor::from_vec(
                vec![self.tokenizer.specials.cls; chunk.len()],
                (chunk.len(), 1),
                &self.device,
            )?;
            let h = self.model.encode_image(&cls, &self.patch_tensor(chunk)?)?;
            out.push(self.model.image_embedding(&Model::cls(&h)?)?);
        }
        self.stack(out, self.config.model.projection_dim)
    }

    fn stack(&self, parts: Vec<Tensor>, width: usize) -> Result<Tensor, TrainError> {
        if parts.is_empty() {
            return Ok(Tensor::zeros((0, width), DType::F32, &self.device)?);
        }
        Ok(Tensor::cat(&parts, 0)?)
    }

    /// The fused pass over text-image pairs: last hidden states, the mask, and the text length.
    fn joint(
        &self,
        texts: &[&str],
        images: &[&Patches],
        want_cls: bool,
    ) -> Result<(Tensor, Tensor, Option<Tensor>, usize), TrainError> {
        let (ids, tmask) = self.ids(texts)?;
        let lt = ids.dim(1)?;
        let b = texts.len();
        let n = self.config.model.patches();
        let x = Tensor::cat(
            &[
                self.model.embed_text(&ids)?,
                self.model.embed_image(&self.patch_tensor(images)?)?,
            ],
            1,
        )?;
        let m = Tensor::cat(&[tmask, Tensor::ones((b, n), DType::F32, &self.device)?], 1)?;
        let (h, cls) = self.model.encode(&x, &m, want_cls)?;
        Ok((h, m, cls, lt))
    }

    /// Probability that each caption matches its image (the ITM head).
    pub fn match_scores(
        &self,
        texts: &[&str],
        images: &[&Patches],
    ) -> Result<Vec<f32>, TrainError> {
        let mut out = Vec::with_capacity(texts.len());
        for (t, i) in texts.chunks(BATCH).zip(images.chunks(BATCH)) {
            let (h, _, _, _) = self.joint(t, i, false)?;
            let p = candle_nn::ops::softmax(&self.model.itm_logits(&Model::cls(&h)?)?, D::Minus1)?;
            out.extend(p.narrow(1, 1, 1)?.squeeze(1)?.to_vec1::<f32>()?);
        }
        Ok(out)
    }

    /// Answer probabilities `[questions][answers]` of a VQA run.
    pub fn answer_probabilities(
        &self,
        questions: &[&str],
        images: &[&Patches],
    ) -> Result<Vec<Vec<f32>>, TrainError> {
        let head = self
            .model
            .vqa_head
            .as_ref()
            .ok_or_else(|| TrainError::Run {
                run: self.run.clone(),
                reason: format!(
                    "is a {} run, not a VQA fine-tuning run: it has no answer head",
                    self.config.task.name()
                ),
            })?;
        let mut out = Vec::with_capacity(questions.len());
        for (q, i) in questions.chunks(BATCH).zip(images.chunks(BATCH)) {
            let (h, _, _, _) = self.joint(q, i, false)?;
            let p = candle_nn::ops::softmax(&head.forward(&Model::cls(&h)?)?, D::Minus1)?;
            out.extend(p.to_vec2::<f32>()?);
        }
        Ok(out)
    }

    /// The `top` most probable answers of a VQA run to `question` about `image`, best first.
    pub fn ask(
        &self,
        question: &str,
        image: &Patches,
        top: usize,
    ) -> Result<Vec<Answer>, TrainError> {
        let probs = self.answer_probabilities(&[question], &[image])?;
        let mut ranked: Vec<(usize, f32)> = probs[0].iter().copied().enumerate().collect();
        ranked.sort_by(|x, y| y.1.total_cmp(&x.1));
        Ok(ranked
            .into_iter()
            .take(top)
            .map(|(i, p)| Answer {
                answer: self.answers()[i].clone(),
                probability: p,
            })
            .collect())
    }

    /// The picture (`bytes`, any format the importer takes) as a `side`×`side` square with
    /// [`Loaded::patch_attention`] for `text` blended over it as a heat map.
    pub fn attention_overlay(
        &self,
        bytes: &[u8],
        text: &str,
        image: &Patches,
        side: u32,
    ) -> Result<image::RgbImage, TrainError> {
        let rgb = crate::media::square_rgb(bytes, side).map_err(|e| TrainError::Image {
            hash: String::new(),
            reason: e.to_string(),
        })?;
        let att = self.patch_attention(text, image)?;
        let g = self.config.model.grid();
        let blended = crate::media::heatmap::overlay(&rgb, side as usize, &att, g, 0.5);
        Ok(image::RgbImage::from_raw(side, side, blended).expect("overlay keeps the size"))
    }

    /// The last layer's `[CLS]` attention over the image's patches (summing to 1), for a text
    /// and an image, row-major over the patch grid.
    pub fn patch_attention(&self, text: &str, image: &Patches) -> Result<Vec<f32>, TrainError> {
        let (_, _, cls, lt) = self.joint(&[text], &[image], true)?;
        let cls = cls.expect("asked for attention").to_vec2::<f32>()?;
        let patches = &cls[0][lt..];
        let sum: f32 = patches.iter().sum();
        Ok(patches
            .iter()
            .map(|a| a / sum.max(f32::MIN_POSITIVE))
            .collect())
    }
}
