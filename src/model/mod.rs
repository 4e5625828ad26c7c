//! The single-stream vision-language transformer (DESIGN.md, "The model"): one BERT-style
//! encoder over `[CLS]` + word pieces + image patches; a light decoder that rebuilds hidden
//! words and patches from the encoder's view of the visible ones (M3AE); heads for image-text
//! matching, grouped matching and contrastive embeddings.

pub mod config;
pub mod device;
pub mod fused;
pub mod layers;
pub mod minilm;
pub mod params;

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Module, Tensor, Var, D};

pub use config::{ModelConfig, Objectives, RunConfig, TrainConfig};
pub use device::{device_name, select_device, DeviceChoice};
use layers::{attention_bias, l2_normalize, Block, LayerNorm, Linear, PatchStem};
use params::{Builder, Init};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("{path}: {reason}")]
    ConfigFile { path: String, reason: String },
    #[error("{path}: {reason}")]
    Weights { path: String, reason: String },
    #[error("device {0} is not available: {1}")]
    Device(String, String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, ModelError>;

/// Per-channel mean and standard deviation images are normalised with (ImageNet's).
pub const PIXEL_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const PIXEL_STD: [f32; 3] = [0.229, 0.224, 0.225];

pub struct Decoder {
    pub input: Linear,
    pub mask_token: Tensor,
    pub text_position: Tensor,
    pub image_position: Tensor,
    pub token_type: Tensor,
    pub layers: Vec<Block>,
    pub norm: LayerNorm,
    pub pixel_head: Linear,
    pub word_transform: Linear,
    pub word_norm: LayerNorm,
    pub word_bias: Tensor,
}

/// The VQA classifier on `[CLS]` (ViLT's: D → 2D, layer norm, GELU, → answers).
pub struct VqaHead {
    pub hidden: Linear,
    pub norm: LayerNorm,
    pub out: Linear,
}

impl VqaHead {
    pub const PREFIX: &'static str = "vqa_head";

    fn new(b: &mut Builder, d: usize, answers: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            hidden: Linear::new(b, "vqa_head.hidden", d, 2 * d)?,
            norm: LayerNorm::new(b, "vqa_head.LayerNorm", 2 * d, eps)?,
            out: Linear::new(b, "vqa_head.out", 2 * d, answers)?,
        })
    }

    /// Answer logits `[B, K]` for `[CLS]` states `[B, D]`.
    pub fn forward(&self, cls: &Tensor) -> Result<Tensor> {
        let h = self.norm.forward(&self.hidden.forward(cls)?)?;
        Ok(self.out.forward(&fused::gelu(&h)?)?)
    }
}

pub struct Model {
    pub cfg: ModelConfig,
    pub word_embeddings: Tensor,
    pub position_embeddings: Tensor,
    pub token_type_embeddings: Tensor,
    pub text_norm: LayerNorm,
    pub stem: PatchStem,
    pub row_position: Tensor,
    pub col_position: Tensor,
    pub image_norm: LayerNorm,
    pub layers: Vec<Block>,
    pub decoder: Decoder,
    pub itm_head: Linear,
    pub group_head: Linear,
    pub text_projection: Linear,
    pub image_projection: Linear,
    pub logit_scale: Tensor,
    /// Present in VQA runs.
    pub vqa_head: Option<VqaHead>,
}

impl Model {
    /// Builds the model from `b`: fresh variables or fixed tensors, by name.
    pub fn build(cfg: &ModelConfig, init_temperature: f64, b: &mut Builder) -> Result<Self> {
        cfg.validate()?;
        let (d, dd, eps) = (cfg.hidden, cfg.decoder_hidden, cfg.layer_norm_eps);
        let g = cfg.grid();
        let n02 = Init::Normal(0.02);
        let layers = (0..cfg.layers)
            .map(|i| {
                Block::new(
                    b,
                    &format!("encoder.layer.{i}"),
                    d,
                    cfg.heads,
                    cfg.intermediate,
                    eps,
                )
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let decoder = Decoder {
            input: Linear::new(b, "decoder.input", d, dd)?,
            mask_token: b.get("decoder.mask_token", dd, n02)?,
            text_position: b.get("decoder.text_position", (cfg.max_text_len, dd), n02)?,
            image_position: b.get("decoder.image_position", (cfg.patches(), dd), n02)?,
            token_type: b.get("decoder.token_type", (2, dd), n02)?,
            layers: (0..cfg.decoder_layers)
                .map(|i| {
                    Block::new(
                        b,
                        &format!("decoder.layer.{i}"),
                        dd,
                        cfg.decoder_heads,
                        4 * dd,
                        eps,
                    )
                })
                .collect::<candle_core::Result<Vec<_>>>()?,
            norm: LayerNorm::new(b, "decoder.LayerNorm", dd, eps)?,
            pixel_head: Linear::new(b, "decoder.pixel_head", dd, cfg.patch_dim())?,
            word_transform: Linear::new(b, "decoder.word_transform", dd, d)?,
            word_norm: LayerNorm::new(b, "decoder.word_LayerNorm", d, eps)?,
            word_bias: b.get("decoder.word_bias", cfg.vocab_size, Init::Zeros)?,
        };
        Ok(Self {
            word_embeddings: b.get(
                "embeddings.word_embeddings.weight",
                (cfg.vocab_size, d),
                n02,
            )?,
            position_embeddings: b.get(
                "embeddings.position_embeddings.weight",
                (cfg.max_positions, d),
                n02,
            )?,
            token_type_embeddings: b.get("embeddings.token_type_embeddings.weight", (2, d), n02)?,
            text_norm: LayerNorm::new(b, "embeddings.LayerNorm", d, eps)?,
            stem: PatchStem::new(b, cfg.patch_size, cfg.stem_cell, cfg.stem_channels, d, eps)?,
            row_position: b.get("image_embeddings.row_position", (g, d), n02)?,
            col_position: b.get("image_embeddings.col_position", (g, d), n02)?,
            image_norm: LayerNorm::new(b, "image_embeddings.LayerNorm", d, eps)?,
            layers,
            decoder,
            itm_head: Linear::new(b, "itm_head", d, 2)?,
            group_head: Linear::new(b, "grouped_itm_head", d, 2)?,
            text_projection: Linear::new(b, "text_projection", d, cfg.projection_dim)?,
            image_projection: Linear::new(b, "image_projection", d, cfg.projection_dim)?,
            logit_scale: b.get(
                "logit_scale",
                (),
                Init::Const((1.0 / init_temperature).ln()),
            )?,
            vqa_head: None,
            cfg: cfg.clone(),
        })
    }

    /// Adds a VQA head over `answers` answers from `b` (after [`Model::build`] with the same
    /// builder, so a fresh model's variables stay in one map).
    pub fn add_vqa_head(&mut self, b: &mut Builder, answers: usize) -> Result<()> {
        self.vqa_head = Some(VqaHead::new(
            b,
            self.cfg.hidden,
            answers,
            self.cfg.layer_norm_eps,
        )?);
        Ok(())
    }

    /// Answer logits `[B, K]` of question-image pairs: `x` `[B, T, D]` embeddings with `mask`.
    pub fn vqa_logits(&self, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let head = self.vqa_head.as_ref().ok_or_else(|| {
            ModelError::Config("this model has no VQA head (not a VQA fine-tuning run)".into())
        })?;
        let (h, _) = self.encode(x, mask, false)?;
        head.forward(&Self::cls(&h)?)
    }

    /// A fresh, trainable model and its variables by name.
    pub fn fresh(
        cfg: &ModelConfig,
        init_temperature: f64,
        seed: u64,
        device: &Device,
    ) -> Result<(Self, BTreeMap<String, Var>)> {
        Self::fresh_with_head(cfg, init_temperature, 0, seed, device)
    }

    /// As [`Model::fresh`], with a VQA head over `vqa_answers` answers when that is not 0.
    pub fn fresh_with_head(
        cfg: &ModelConfig,
        init_temperature: f64,
        vqa_answers: usize,
        seed: u64,
        device: &Device,
    ) -> Result<(Self, BTreeMap<String, Var>)> {
        let mut b = Builder::fresh(seed, DType::F32, device);
        let mut m = Self::build(cfg, init_temperature, &mut b)?;
        if vqa_answers > 0 {
            m.add_vqa_head(&mut b, vqa_answers)?;
        }
        Ok((m, b.vars))
    }

    /// A fixed (inference or teacher) model from named tensors; with a VQA head when they hold
    /// one.
    pub fn from_tensors(
        cfg: &ModelConfig,
        tensors: BTreeMap<String, Tensor>,
        device: &Device,
    ) -> Result<Self> {
        let answers = tensors
            .get("vqa_head.out.weight")
            .map(|w| w.dim(0))
            .transpose()?;
        let mut b = Builder::fixed(tensors, DType::F32, device);
        let mut m = Self::build(cfg, 0.07, &mut b)?;
        if let Some(k) = answers {
            m.add_vqa_head(&mut b, k)?;
        }
        Ok(m)
    }

    /// Word + position + type(0) embeddings, normalised: `[B, Lt]` ids → `[B, Lt, D]`.
    pub fn embed_text(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, lt) = ids.dims2()?;
        let d = self.cfg.hidden;
        let words = self
            .word_embeddings
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, lt, d))?;
        let pos = self.position_embeddings.narrow(0, 0, lt)?;
        let ty = self.token_type_embeddings.narrow(0, 0, 1)?;
        let x = words.broadcast_add(&pos.broadcast_add(&ty)?)?;
        Ok(self.text_norm.forward(&x)?)
    }

    /// Patch pixels `[B, N, P·P·3]` → linear + 2-D position + type(1), normalised.
    pub fn embed_image(&self, patches: &Tensor) -> Result<Tensor> {
        let (g, d) = (self.cfg.grid(), self.cfg.hidden);
        let pos = self
            .row_position
            .unsqueeze(1)?
            .broadcast_add(&self.col_position.unsqueeze(0)?)?
            .reshape((g * g, d))?;
        let ty = self.token_type_embeddings.narrow(0, 1, 1)?;
        let x = self
            .stem
            .forward(patches)?
            .broadcast_add(&pos.broadcast_add(&ty)?)?;
        Ok(self.image_norm.forward(&x)?)
    }

    /// The encoder over `x` `[B, T, D]` with `key_mask` `[B, T]` (1 = token, 0 = padding).
    /// With `want_cls`, also the last layer's `[CLS]` attention over the tokens, `[B, T]`.
    pub fn encode(
        &self,
        x: &Tensor,
        key_mask: &Tensor,
        want_cls: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let bias = attention_bias(key_mask)?;
        let mut h = x.clone();
        let mut cls = None;
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            let (y, c) = layer.forward(&h, &bias, want_cls && i == last)?;
            h = y;
            if c.is_some() {
                cls = c;
            }
        }
        Ok((h, cls))
    }

    /// The decoder: encoder outputs of the visible tokens `[B, Tv, D]` are projected and put
    /// back in place by `restore` (`[B·(Lt+N)]` rows of the table [visible…, mask token]); the
    /// hidden places hold the mask token. Returns `[B, Lt+N, Dd]`.
    pub fn decode(
        &self,
        enc: &Tensor,
        restore: &Tensor,
        lt: usize,
        key_mask: &Tensor,
    ) -> Result<Tensor> {
        let dec = &self.decoder;
        let (b, tv, _) = enc.dims3()?;
        let dd = self.cfg.decoder_hidden;
        let n = self.cfg.patches();
        let visible = dec.input.forward(enc)?.reshape((b * tv, dd))?;
        let table = Tensor::cat(&[visible, dec.mask_token.reshape((1, dd))?], 0)?;
        let x = table.index_select(restore, 0)?.reshape((b, lt + n, dd))?;
        let pos = Tensor::cat(
            &[
                dec.text_position
                    .narrow(0, 0, lt)?
                    .broadcast_add(&dec.token_type.narrow(0, 0, 1)?)?,
                dec.image_position
                    .broadcast_add(&dec.token_type.narrow(0, 1, 1)?)?,
            ],
            0,
        )?;
        let mut h = x.broadcast_add(&pos)?;
        let bias = attention_bias(key_mask)?;
        for layer in &dec.layers {
            h = layer.forward(&h, &bias, false)?.0;
        }
        Ok(dec.norm.forward(&h)?)
    }

    /// Word logits `[M, vocab]` for decoder rows `[M, Dd]`, tied to the word embeddings.
    pub fn mlm_logits(&self, rows: &Tensor) -> Result<Tensor> {
        let dec = &self.decoder;
        let h = fused::gelu(&dec.word_transform.forward(rows)?)?;
        let h = dec.word_norm.forward(&h)?;
        Ok(h.matmul(&self.word_embeddings.t()?)?
            .broadcast_add(&dec.word_bias)?)
    }

    /// Predicted (normalised) pixels `[K, P·P·3]` for decoder rows `[K, Dd]`.
    pub fn mim_pixels(&self, rows: &Tensor) -> Result<Tensor> {
        Ok(self.decoder.pixel_head.forward(rows)?)
    }

    /// `[CLS]` (first token) of `[B, T, D]` hidden states.
    pub fn cls(h: &Tensor) -> Result<Tensor> {
        Ok(h.narrow(1, 0, 1)?.squeeze(1)?)
    }

    pub fn itm_logits(&self, cls: &Tensor) -> Result<Tensor> {
        Ok(self.itm_head.forward(cls)?)
    }

    pub fn group_logits(&self, pooled: &Tensor) -> Result<Tensor> {
        Ok(self.group_head.forward(pooled)?)
    }

    /// Unit-length text embedding from a text-only pass's `[CLS]`.
    pub fn text_embedding(&self, cls: &Tensor) -> Result<Tensor> {
        Ok(l2_normalize(&self.text_projection.forward(cls)?)?)
    }

    pub fn image_embedding(&self, cls: &Tensor) -> Result<Tensor> {
        Ok(l2_normalize(&self.image_projection.forward(cls)?)?)
    }

    /// exp(logit_scale), capped at 100 as CLIP does.
    pub fn contrastive_scale(&self) -> Result<Tensor> {
        Ok(self.logit_scale.clamp(0.0, 100f64.ln())?.exp()?)
    }

    /// Text-only pass: `[B, Lt]` ids and `[B, Lt]` mask → hidden states `[B, Lt, D]`.
    pub fn encode_text(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        Ok(self.encode(&self.embed_text(ids)?, mask, false)?.0)
    }

    /// Image-only pass: `[CLS]` + patches. `cls_ids` is `[B, 1]` of the `[CLS]` id.
    pub fn encode_image(&self, cls_ids: &Tensor, patches: &Tensor) -> Result<Tensor> {
        let (b, n, _) = patches.dims3()?;
        let x = Tensor::cat(&[self.embed_text(cls_ids)?, self.embed_image(patches)?], 1)?;
        let mask = Tensor::ones((b, 1 + n), DType::F32, x.device())?;
        Ok(self.encode(&x, &mask, false)?.0)
    }

    /// Sentence embedding as sentence-transformers computes it for MiniLM: mean of the
    /// text-only hidden states over real tokens, L2-normalised.
    pub fn sentence_embedding(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let h = self.encode_text(ids, mask)?;
        let m = mask.to_dtype(h.dtype())?.unsqueeze(D::Minus1)?;
        let sum = h.broadcast_mul(&m)?.sum(1)?;
        let mean = sum.broadcast_div(&m.sum(1)?)?;
        Ok(l2_normalize(&mean)?)
    }
}

/// Writes named tensors as safetensors.
pub fn save_tensors(tensors: &BTreeMap<String, Tensor>, path: &Path) -> Result<()> {
    let map: std::collections::HashMap<String, Tensor> = tensors
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    candle_core::safetensors::save(&map, path).map_err(|e| ModelError::Weights {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Reads named tensors from a safetensors file.
pub fn load_tensors(path: &Path, device: &Device) -> Result<BTreeMap<String, Tensor>> {
    let map = candle_core::safetensors::load(path, device).map_err(|e| ModelError::Weights {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(map.into_iter().collect())
}

/// The current values of variables, by name.
pub fn snapshot(vars: &BTreeMap<String, Var>) -> BTreeMap<String, Tensor> {
    vars.iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
        .collect()
}
