//! Model and run configuration, read from `models/*.toml`. Unknown keys are errors (a typo
//! must not silently train the default), and shapes are checked before any tensor exists.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ModelError;

/// The architecture: widths, depths, sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Width D of the encoder.
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    /// Width of the feed-forward layer (BERT: 4·D).
    pub intermediate: usize,
    pub vocab_size: usize,
    /// Rows of the text position table (BERT/MiniLM: 512).
    pub max_positions: usize,
    /// Most tokens of one caption, `[CLS]` and `[SEP]` included.
    pub max_text_len: usize,
    /// Images are resized to `image_size`² and cut into `patch_size`² patches.
    pub image_size: usize,
    pub patch_size: usize,
    pub decoder_hidden: usize,
    pub decoder_layers: usize,
    pub decoder_heads: usize,
    /// Width of the contrastive embeddings.
    pub projection_dim: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// 0: patches are embedded by one matrix (ViT). Otherwise each patch is cut into
    /// `stem_cell`² cells that one shared matrix embeds into `stem_channels` features (a
    /// convolution whose kernel is its stride) before a second matrix makes the token: a
    /// non-linear stem, so a patch can tell a curve from a corner before attention.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stem_cell: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stem_channels: usize,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

fn default_eps() -> f64 {
    1e-12
}

impl ModelConfig {
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }

    pub fn patches(&self) -> usize {
        self.grid() * self.grid()
    }

    /// Pixels of one patch (RGB).
    pub fn patch_dim(&self) -> usize {
        self.patch_size * self.patch_size * 3
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |why: String| Err(ModelError::Config(why));
        for (name, v) in [
            ("hidden", self.hidden),
            ("layers", self.layers),
            ("heads", self.heads),
            ("intermediate", self.intermediate),
            ("vocab_size", self.vocab_size),
            ("max_positions", self.max_positions),
            ("image_size", self.image_size),
            ("patch_size", self.patch_size),
            ("decoder_hidden", self.decoder_hidden),
            ("decoder_heads", self.decoder_heads),
            ("projection_dim", self.projection_dim),
        ] {
            if v == 0 {
                return bad(format!("{name} must be positive"));
            }
        }
        if !self.hidden.is_multiple_of(self.heads) {
            return bad(format!(
                "hidden ({}) is not divisible by heads ({})",
                self.hidden, self.heads
            ));
        }
        if !self.decoder_hidden.is_multiple_of(self.decoder_heads) {
            return bad(format!(
                "decoder_hidden ({}) is not divisible by decoder_heads ({})",
                self.decoder_hidden, self.decoder_heads
            ));
        }
        if !self.image_size.is_multiple_of(self.patch_size) {
            return bad(format!(
                "image_size ({}) is not a multiple of patch_size ({})",
                self.image_size, self.patch_size
            ));
        }
        if !self.grid().is_multiple_of(2) {
            return bad(format!(
                "image_size / patch_size ({}) must be even: grouped ITM tiles four images 2×2",
                self.grid()
            ));
        }
        if self.max_text_len < 8 || self.max_text_len > self.max_positions {
            return bad(format!(
                "max_text_len ({}) must be between 8 and max_positions ({})",
                self.max_text_len, self.max_positions
            ));
        }
        if self.layer_norm_eps <= 0.0 {
            return bad("layer_norm_eps must be positive".into());
        }
        if (self.stem_cell == 0) != (self.stem_channels == 0) {
            return bad("stem_cell and stem_channels are set together (or neither)".into());
        }
        if self.stem_cell > 0
            && (self.stem_cell >= self.patch_size
                || !self.patch_size.is_multiple_of(self.stem_cell))
        {
            return bad(format!(
                "stem_cell ({}) must divide patch_size ({}) and be smaller",
                self.stem_cell, self.patch_size
            ));
        }
        Ok(())
    }
}

/// Training hyper-parameters. Every field has a default; the file overrides, the CLI overrides
/// the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub steps: u64,
    pub batch: usize,
    /// Micro-batches whose gradients are summed before one optimizer step.
    pub accumulate: usize,
    pub lr: f64,
    pub min_lr: f64,
    pub warmup_steps: u64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub adam_eps: f64,
    /// Global-norm gradient clipping (0 = off).
    pub grad_clip: f64,
    pub checkpoint_every: u64,
    /// Checkpoints kept per run (older ones are deleted); at least 1.
    pub keep_checkpoints: usize,
    pub validate_every: u64,
    /// Validation pairs used for losses and zero-shot retrieval.
    pub val_items: usize,
    pub seed: u64,
    /// Threads building batches beside the device.
    pub loader_threads: usize,
    /// Share of the training split used (a fixed subset chosen by `seed`): label-efficiency
    /// experiments.
    pub train_fraction: f64,
    /// Random flips and quarter turns of training images (the 8 symmetries of the square), for
    /// data where nothing said or asked depends on left, right, up or down.
    pub dihedral: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 1000,
            batch: 32,
            accumulate: 1,
            lr: 1e-4,
            min_lr: 1e-6,
            warmup_steps: 100,
            weight_decay: 0.05,
            beta1: 0.9,
            beta2: 0.98,
            adam_eps: 1e-8,
            grad_clip: 1.0,
            checkpoint_every: 500,
            keep_checkpoints: 3,
            validate_every: 500,
            val_items: 256,
            seed: 0,
            loader_threads: 2,
            train_fraction: 1.0,
            dihedral: false,
        }
    }
}

/// Masked language modelling: hide a share of the words, predict them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MlmConfig {
    pub enabled: bool,
    pub weight: f64,
    pub mask_ratio: f64,
    /// Hide all word pieces of a chosen word together.
    pub whole_word: bool,
}

impl Default for MlmConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            weight: 1.0,
            mask_ratio: 0.15,
            whole_word: false,
        }
    }
}

/// Masked image modelling: hide a share of the patches, rebuild their pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MimConfig {
    pub enabled: bool,
    pub weight: f64,
    pub mask_ratio: f64,
}

impl Default for MimConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            weight: 1.0,
            mask_ratio: 0.75,
        }
    }
}

/// Alternate modality masking: with probability `p` a pair hides one whole modality (text or
/// image, evenly) and the decoder rebuilds it from the other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AltConfig {
    pub enabled: bool,
    pub weight: f64,
    pub p: f64,
}

impl Default for AltConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            weight: 1.0,
            p: 0.3,
        }
    }
}

/// Image-text matching on `[CLS]`, negatives drawn by in-batch similarity (ALBEF).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ItmConfig {
    pub enabled: bool,
    pub weight: f64,
    /// Steps that draw negatives uniformly before the hard ones start. Early on the contrastive
    /// similarities that pick hard negatives mean little, and a small model from scratch whose
    /// every negative is a near miss can sit at the 1:2 prior for good.
    pub uniform_negative_steps: u64,
}

impl Default for ItmConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            weight: 1.0,
            uniform_negative_steps: 0,
        }
    }
}

/// InfoNCE between unimodal embeddings with a learned temperature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContrastiveConfig {
    pub enabled: bool,
    pub weight: f64,
    pub init_temperature: f64,
}

impl Default for ContrastiveConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            weight: 1.0,
            init_temperature: 0.07,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttMaskMode {
    /// Hide what `[CLS]` attends to most.
    High,
    /// Hide the most attended, but leave a few of them visible as hints.
    Hint,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Teacher {
    /// An exponential moving average of the weights.
    Ema,
    /// The weights being trained (no gradient through the choice).
    Current,
}

/// Attention-guided masking: chooses which words and patches MLM, MIM hide. It has no loss of
/// its own, so no weight; it changes what the masked objectives learn from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttMaskConfig {
    pub enabled: bool,
    pub mode: AttMaskMode,
    /// Share of the hidden tokens left visible in `hint` mode.
    pub hint_ratio: f64,
    /// Random masking for the first steps, while attention means nothing yet.
    pub warmup_steps: u64,
    pub teacher: Teacher,
    pub ema_momentum: f64,
}

impl Default for AttMaskConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            mode: AttMaskMode::High,
            hint_ratio: 0.1,
            warmup_steps: 100,
            teacher: Teacher::Ema,
            ema_momentum: 0.998,
        }
    }
}

/// Grouped ITM: four images tiled 2×2 with four captions, some swapped for captions of other
/// items; each caption is classified as matching its quadrant or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupedItmConfig {
    pub enabled: bool,
    pub weight: f64,
    /// Chance that a caption is swapped for another item's.
    pub swap_p: f64,
}

impl Default for GroupedItmConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            weight: 1.0,
            swap_p: 0.5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Objectives {
    pub mlm: MlmConfig,
    pub mim: MimConfig,
    pub alt: AltConfig,
    pub itm: ItmConfig,
    pub contrastive: ContrastiveConfig,
    pub attmask: AttMaskConfig,
    pub grouped_itm: GroupedItmConfig,
}

/// Objective names as the CLI's `--objectives` takes them.
pub const OBJECTIVE_NAMES: [&str; 7] = [
    "mlm",
    "mim",
    "alt",
    "itm",
    "contrastive",
    "attmask",
    "grouped_itm",
];

impl Objectives {
    /// Turns on exactly the named objectives (a comma list such as `mlm,mim,itm`).
    pub fn select(&mut self, list: &str) -> Result<(), ModelError> {
        let names: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        for n in &names {
            if !OBJECTIVE_NAMES.contains(n) {
                return Err(ModelError::Config(format!(
                    "unknown objective {n:?} (known: {})",
                    OBJECTIVE_NAMES.join(", ")
                )));
            }
        }
        let on = |n: &str| names.contains(&n);
        self.mlm.enabled = on("mlm");
        self.mim.enabled = on("mim");
        self.alt.enabled = on("alt");
        self.itm.enabled = on("itm");
        self.contrastive.enabled = on("contrastive");
        self.attmask.enabled = on("attmask");
        self.grouped_itm.enabled = on("grouped_itm");
        Ok(())
    }

    pub fn enabled(&self) -> Vec<&'static str> {
        let flags = [
            self.mlm.enabled,
            self.mim.enabled,
            self.alt.enabled,
            self.itm.enabled,
            self.contrastive.enabled,
            self.attmask.enabled,
            self.grouped_itm.enabled,
        ];
        OBJECTIVE_NAMES
            .iter()
            .zip(flags)
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect()
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |why: String| Err(ModelError::Config(why));
        let losses = [
            self.mlm.enabled,
            self.mim.enabled,
            self.alt.enabled,
            self.itm.enabled,
            self.contrastive.enabled,
            self.grouped_itm.enabled,
        ];
        if !losses.iter().any(|on| *on) {
            return bad("no objective with a loss is enabled".into());
        }
        for (name, r) in [
            ("mlm.mask_ratio", self.mlm.mask_ratio),
            ("mim.mask_ratio", self.mim.mask_ratio),
        ] {
            if !(r > 0.0 && r < 1.0) {
                return bad(format!("{name} must be in (0, 1), got {r}"));
            }
        }
        for (name, p) in [
            ("alt.p", self.alt.p),
            ("grouped_itm.swap_p", self.grouped_itm.swap_p),
            ("attmask.hint_ratio", self.attmask.hint_ratio),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return bad(format!("{name} must be in [0, 1], got {p}"));
            }
        }
        if !(0.0..1.0).contains(&self.attmask.ema_momentum) {
            return bad("attmask.ema_momentum must be in [0, 1)".into());
        }
        if self.attmask.enabled && !(self.mlm.enabled || self.mim.enabled) {
            return bad("attmask chooses what mlm/mim hide: enable one of them".into());
        }
        if self.contrastive.init_temperature <= 0.0 {
            return bad("contrastive.init_temperature must be positive".into());
        }
        Ok(())
    }
}

/// What a run trains.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Task {
    /// The self-supervised objectives of `[objectives]`.
    #[default]
    Pretrain,
    /// Visual question answering: a classifier over `answers` (the vocabulary, most frequent
    /// first, fixed when the run is created) on `[CLS]` of question + image.
    Vqa { answers: Vec<String> },
    /// Image-text retrieval: the contrastive and ITM (hard negatives) objectives.
    Retrieval,
}

impl Task {
    pub fn name(&self) -> &'static str {
        match self {
            Task::Pretrain => "pretrain",
            Task::Vqa { .. } => "vqa",
            Task::Retrieval => "retrieval",
        }
    }

    /// Size of the VQA head (0: no head).
    pub fn vqa_answers(&self) -> usize {
        match self {
            Task::Vqa { answers } => answers.len(),
            _ => 0,
        }
    }
}

/// The configs shipped in `models/`, by name, built into the binary so every face offers them.
pub const PRESETS: [(&str, &str); 3] = [
    ("tiny", include_str!("../../models/tiny.toml")),
    ("small", include_str!("../../models/small.toml")),
    ("base", include_str!("../../models/base.toml")),
];

/// A whole `models/*.toml`: the architecture, and optionally training defaults and objectives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub model: ModelConfig,
    #[serde(default)]
    pub train: TrainConfig,
    #[serde(default)]
    pub objectives: Objectives,
    #[serde(default)]
    pub task: Task,
}

impl RunConfig {
    pub fn from_toml(text: &str, label: &str) -> Result<Self, ModelError> {
        let cfg: RunConfig = toml::from_str(text).map_err(|e| ModelError::ConfigFile {
            path: label.to_string(),
            reason: e.to_string(),
        })?;
        cfg.validate().map_err(|e| ModelError::ConfigFile {
            path: label.to_string(),
            reason: e.to_string(),
        })?;
        Ok(cfg)
    }

    /// One of [`PRESETS`] by name.
    pub fn preset(name: &str) -> Result<Self, ModelError> {
        let (_, text) = PRESETS.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            let known: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
            ModelError::Config(format!(
                "unknown model config {name:?} (known: {})",
                known.join(", ")
            ))
        })?;
        Self::from_toml(text, &format!("models/{name}.toml"))
    }

    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::ConfigFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        self.model.validate()?;
        self.objectives.validate()?;
        if let Task::Vqa { answers } = &self.task {
            if answers.is_empty() {
                return Err(ModelError::Config(
                    "a VQA run needs at least one answer in its vocabulary".into(),
                ));
            }
        }
        let t = &self.train;
        if t.batch < 2 {
            return Err(ModelError::Config(
                "train.batch must be at least 2 (contrastive and ITM need other pairs)".into(),
            ));
        }
        if t.accumulate == 0
            || t.loader_threads == 0
            || t.checkpoint_every == 0
            || t.keep_checkpoints == 0
        {
            return Err(ModelError::Config(
                "train.accumulate, loader_threads, checkpoint_every and keep_checkpoints must be positive".into(),
            ));
        }
        if !(t.train_fraction > 0.0 && t.train_fraction <= 1.0) {
            return Err(ModelError::Config(format!(
                "train.train_fraction must be in (0, 1], got {}",
                t.train_fraction
            )));
        }
        if t.lr.is_nan() || t.lr <= 0.0 || t.min_lr < 0.0 || t.min_lr > t.lr {
            return Err(ModelError::Config(format!(
                "train.lr ({}) must be positive and ≥ min_lr ({})",
                t.lr, t.min_lr
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = PRESETS[0].1;

    #[test]
    fn shipped_configs_parse_and_validate() {
        for (name, _) in PRESETS {
            let cfg = RunConfig::preset(name).unwrap();
            assert_eq!(cfg.model.hidden % cfg.model.heads, 0, "{name}");
        }
        assert!(RunConfig::preset("huge")
            .unwrap_err()
            .to_string()
            .contains("tiny, small, base"));
        let small = RunConfig::preset("small").unwrap();
        assert_eq!(
            (small.model.hidden, small.model.layers, small.model.heads),
            (384, 6, 12)
        );
        let easyvqa = RunConfig::from_toml(
            include_str!("../../models/easyvqa.toml"),
            "models/easyvqa.toml",
        )
        .unwrap();
        assert_eq!(
            (
                easyvqa.model.patch_size,
                easyvqa.model.stem_cell,
                easyvqa.train.steps,
                easyvqa.train.batch
            ),
            (8, 4, 4000, 64)
        );
        // The label-efficiency recipe pre-trains easyvqa.toml's very model, so both arms
        // fine-tune the same architecture.
        let pretrain = RunConfig::from_toml(
            include_str!("../../models/easyvqa-pretrain.toml"),
            "models/easyvqa-pretrain.toml",
        )
        .unwrap();
        assert_eq!(pretrain.model, easyvqa.model);
        let o = &pretrain.objectives;
        assert_eq!(
            (
                o.mlm.enabled,
                o.contrastive.enabled,
                o.mim.enabled,
                o.itm.enabled
            ),
            (true, true, false, false)
        );
        assert_eq!((o.mlm.mask_ratio, pretrain.train.dihedral), (0.75, true));
    }

    #[test]
    fn unknown_keys_and_impossible_shapes_are_named() {
        let typo = TINY.replace("heads = ", "headz = ");
        let e = RunConfig::from_toml(&typo, "typo.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("typo.toml") && e.contains("headz"), "{e}");

        let odd = TINY.replace("patch_size = 16", "patch_size = 15");
        let e = RunConfig::from_toml(&odd, "odd.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("odd.toml") && e.contains("patch_size"), "{e}");

        let heads = TINY.replacen("heads = 4", "heads = 3", 1);
        let e = RunConfig::from_toml(&heads, "h.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("divisible by heads"), "{e}");

        let stem = |cell: usize, channels: usize| {
            let text = TINY.replace(
                "patch_size = 16",
                &format!("patch_size = 16\nstem_cell = {cell}\nstem_channels = {channels}"),
            );
            RunConfig::from_toml(&text, "stem.toml").map(|c| c.model)
        };
        let ok = stem(4, 32).unwrap();
        assert_eq!((ok.stem_cell, ok.stem_channels), (4, 32));
        for (cell, channels, says) in [
            (5, 32, "must divide patch_size"),
            (16, 32, "must divide patch_size"),
            (4, 0, "set together"),
        ] {
            let e = stem(cell, channels).unwrap_err().to_string();
            assert!(
                e.contains("stem.toml") && e.contains(says),
                "{cell}/{channels}: {e}"
            );
        }
        // A linear-stem config serialises as before (stored run configs stay comparable).
        let plain = RunConfig::from_toml(TINY, "tiny").unwrap();
        assert!(!serde_json::to_string(&plain.model)
            .unwrap()
            .contains("stem"));
    }

    #[test]
    fn select_objectives_by_name() {
        let mut o = Objectives::default();
        o.select("mim,grouped_itm").unwrap();
        assert_eq!(o.enabled(), vec!["mim", "grouped_itm"]);
        let e = o.select("mlm,jigsaw").unwrap_err().to_string();
        assert!(e.contains("jigsaw"), "{e}");
        o.select("attmask").unwrap();
        assert!(o.validate().is_err());
    }
}
