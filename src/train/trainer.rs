//! One optimizer step: the passes each enabled objective needs, their weighted sum, gradients
//! (accumulated over micro-batches), clipping, AdamW, and the EMA teacher.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var};

use crate::model::config::{RunConfig, Task, Teacher};
use crate::model::{snapshot, Model};
use crate::text::Specials;

use super::batch::{step_rng, Batch, Group, Sample, PURPOSE_MASK, PURPOSE_NEGATIVES};
use super::checkpoint::{Checkpoint, CheckpointState, FORMAT};
use super::masking::{build_indices, hidden_count, random_masks, word_positions, MaskSpec};
use super::objectives::{alt, attmask, contrastive, itm, mim, mlm, vqa};
use super::optim::{clip_global_norm, lr_at, AdamW};
use super::TrainError;

/// The losses of one batch: the weighted total (with graph) and each part's value.
pub struct Losses {
    /// What to back-propagate: the weighted sum of the losses still in the graph.
    pub total: Tensor,
    /// The weighted sum of every loss (the `loss` metric).
    pub value: f64,
    /// (metric name, unweighted loss).
    pub parts: Vec<(&'static str, Tensor)>,
    /// Accuracies and other figures without gradients.
    pub figures: Vec<(&'static str, f64)>,
    /// Parameter gradients already computed by a pass back-propagated on its own (the fused ITM
    /// pass, to halve peak memory), scaled as asked.
    pub early_grads: BTreeMap<String, Tensor>,
}

impl Losses {
    /// Every figure as (name, value), the total as `loss`.
    pub fn metrics(&self) -> Result<Vec<(String, f64)>, TrainError> {
        let mut out = vec![("loss".to_string(), self.value)];
        for (n, t) in &self.parts {
            out.push((format!("{n}_loss"), scalar(t)?));
        }
        for (n, v) in &self.figures {
            out.push((n.to_string(), *v));
        }
        Ok(out)
    }
}

pub fn scalar(t: &Tensor) -> Result<f64, TrainError> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

pub struct Trainer {
    pub cfg: RunConfig,
    pub device: Device,
    pub model: Model,
    pub vars: BTreeMap<String, Var>,
    pub opt: AdamW,
    /// EMA teacher weights (AttMask with `teacher = "ema"`).
    pub teacher: Option<BTreeMap<String, Tensor>>,
    /// Optimizer steps completed.
    pub step: u64,
    pub specials: Specials,
}

/// Padded `[B, L]` ids and `[B, L]` mask of token lists.
pub(crate) fn pad_ids(
    lists: &[&[u32]],
    pad: u32,
    device: &Device,
) -> Result<(Tensor, Tensor, usize), TrainError> {
    let l = lists.iter().map(|x| x.len()).max().unwrap_or(1);
    let mut ids = Vec::with_capacity(lists.len() * l);
    let mut mask = Vec::with_capacity(lists.len() * l);
    for x in lists {
        ids.extend_from_slice(x);
        ids.extend(std::iter::repeat_n(pad, l - x.len()));
        mask.extend(std::iter::repeat_n(1f32, x.len()));
        mask.extend(std::iter::repeat_n(0f32, l - x.len()));
    }
    let b = lists.len();
    Ok((
        Tensor::from_vec(ids, (b, l), device)?,
        Tensor::from_vec(mask, (b, l), device)?,
        l,
    ))
}

/// Adds `g` to the gradient accumulated under `name`.
fn add_grad(
    grads: &mut BTreeMap<String, Tensor>,
    name: &str,
    g: &Tensor,
) -> Result<(), TrainError> {
    let sum = match grads.remove(name) {
        Some(prev) => (prev + g)?,
        None => g.clone(),
    };
    grads.insert(name.to_string(), sum);
    Ok(())
}

fn u32s(v: &[u32], device: &Device) -> Result<Tensor, TrainError> {
    Ok(Tensor::from_slice(v, v.len(), device)?)
}

impl Trainer {
    pub fn new(cfg: RunConfig, device: Device, specials: Specials) -> Result<Self, TrainError> {
        cfg.validate()?;
        let (model, vars) = Model::fresh_with_head(
            &cfg.model,
            cfg.objectives.contrastive.init_temperature,
            cfg.task.vqa_answers(),
            cfg.train.seed,
            &device,
        )?;
        let teacher = (cfg.objectives.attmask.enabled
            && cfg.objectives.attmask.teacher == Teacher::Ema)
            .then(|| snapshot(&vars));
        Ok(Self {
            opt: AdamW::new(&cfg.train),
            cfg,
            device,
            model,
            vars,
            teacher,
            step: 0,
            specials,
        })
    }

    /// Restores weights, optimizer and teacher from a checkpoint taken with the same config.
    pub fn restore(&mut self, ckpt: Checkpoint) -> Result<(), TrainError> {
        self.set_weights(&ckpt.params, "the checkpoint", |_| false)?;
        self.opt.m = ckpt.adam_m;
        self.opt.v = ckpt.adam_v;
        self.opt.t = ckpt.state.adam_t;
        self.teacher = ckpt
            .teacher
            .or(self.teacher.take().map(|_| snapshot(&self.vars)));
        self.step = ckpt.state.step;
        Ok(())
    }

    /// Starts from another run's weights: every variable the parent has, by name and shape;
    /// the VQA head may be missing there (it starts fresh), anything else missing is an error.
    pub fn load_weights(
        &mut self,
        params: &BTreeMap<String, Tensor>,
        from: &str,
    ) -> Result<(), TrainError> {
        self.set_weights(params, from, |name| {
            name.starts_with(crate::model::VqaHead::PREFIX)
        })
    }

    /// Sets every variable from `params` (by name, shapes checked); a variable `params` lacks
    /// is an error unless `may_lack` says it keeps its own value.
    fn set_weights(
        &self,
        params: &BTreeMap<String, Tensor>,
        from: &str,
        may_lack: impl Fn(&str) -> bool,
    ) -> Result<(), TrainError> {
        for (name, var) in &self.vars {
            let Some(t) = params.get(name) else {
                if may_lack(name) {
                    continue;
                }
                return Err(TrainError::Checkpoint {
                    path: from.into(),
                    reason: format!(
                        "tensor {name} is missing (a checkpoint of another architecture?)"
                    ),
                });
            };
            if t.dims() != var.dims() {
                return Err(TrainError::Checkpoint {
                    path: from.into(),
                    reason: format!(
                        "tensor {name} has shape {:?}, the model needs {:?} (another architecture)",
                        t.dims(),
                        var.dims()
                    ),
                });
            }
            var.set(&t.to_device(&self.device)?)?;
        }
        Ok(())
    }

    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            state: CheckpointState {
                format: FORMAT,
                step: self.step,
                adam_t: self.opt.t,
                seed: self.cfg.train.seed,
                config: self.cfg.clone(),
            },
            params: snapshot(&self.vars),
            adam_m: self.opt.m.clone(),
            adam_v: self.opt.v.clone(),
            teacher: self.teacher.clone(),
        }
    }

    /// The model that chooses AttMask's hidden tokens.
    fn teacher_model(&self) -> Result<Option<Model>, TrainError> {
        Ok(match &self.teacher {
            Some(t) => Some(Model::from_tensors(
                &self.cfg.model,
                t.clone(),
                &self.device,
            )?),
            None => None,
        })
    }

    /// The losses of `batch` under `model`. `seed` and the batch's micro-step fix every random
    /// choice; `step` decides whether AttMask is past its warm-up.
    pub fn losses(
        &self,
        model: &Model,
        batch: &Batch,
        seed: u64,
        step: u64,
    ) -> Result<Losses, TrainError> {
        self.losses_with(model, batch, seed, step, None)
    }

    /// As [`Trainer::losses`]; with `split = Some(scale)` the fused ITM pass — the largest
    /// activations of a step — is back-propagated at once (its loss scaled by `scale`), its
    /// parameter gradients returned in `early_grads`, and its gradient with respect to the
    /// shared embeddings re-injected into `total` as `Σ e·∂L/∂e`, so the sum of both backward
    /// passes is the exact gradient while the two graphs never live at the same time.
    pub fn losses_with(
        &self,
        model: &Model,
        batch: &Batch,
        seed: u64,
        step: u64,
        split: Option<f64>,
    ) -> Result<Losses, TrainError> {
        let o = &self.cfg.objectives;
        let dev = &self.device;
        let samples = &batch.samples;
        let b = samples.len();
        let n = self.cfg.model.patches();
        let pd = self.cfg.model.patch_dim();
        let (ids, text_mask, patches) = self.inputs(samples)?;
        let lt = ids.dim(1)?;
        let e_text = model.embed_text(&ids)?;
        let e_img = model.embed_image(&patches)?;

        let mut total: Option<Tensor> = None;
        let mut value = 0f64;
        let mut parts = Vec::new();
        let mut figures = Vec::new();
        let mut early_grads = BTreeMap::new();
        let mut add = |name: &'static str,
                       loss: Tensor,
                       weight: f64,
                       in_graph: bool,
                       total: &mut Option<Tensor>|
         -> Result<(), TrainError> {
            value += weight * scalar(&loss)?;
            if in_graph {
                let w = (&loss * weight)?;
                *total = Some(match total.take() {
                    Some(t) => (t + w)?,
                    None => w,
                });
            }
            parts.push((name, loss));
            Ok(())
        };

        if let Task::Vqa { answers } = &self.cfg.task {
            // Fine-tuning for VQA: the classifier's loss alone, on whole pairs.
            let x = Tensor::cat(&[&e_text, &e_img], 1)?;
            let m = Tensor::cat(&[&text_mask, &Tensor::ones((b, n), DType::F32, dev)?], 1)?;
            let targets: Vec<&[(u32, f32)]> =
                samples.iter().map(|s| s.answers.as_slice()).collect();
            let (loss, score) = vqa::loss(model, &x, &m, &targets, answers.len(), dev)?;
            add("vqa", loss, 1.0, true, &mut total)?;
            figures.push(("vqa_score", score));
        } else if o.mlm.enabled || o.mim.enabled || o.alt.enabled {
            let spec = self.mask_spec(batch, seed, step)?;
            let ix = build_indices(&spec, samples, lt, n);
            let d = self.cfg.model.hidden;
            let full = Tensor::cat(&[&e_text, &e_img], 1)?.reshape((b * (lt + n), d))?;
            let enc_in = full
                .index_select(&u32s(&ix.enc_rows, dev)?, 0)?
                .reshape((b, ix.tv, d))?;
            let enc_mask = Tensor::from_vec(ix.enc_mask.clone(), (b, ix.tv), dev)?;
            let (h, _) = model.encode(&enc_in, &enc_mask, false)?;
            let dec_mask = Tensor::from_vec(ix.dec_mask.clone(), (b, lt + n), dev)?;
            let dec = model.decode(&h, &u32s(&ix.restore, dev)?, lt, &dec_mask)?;
            let dec = dec.reshape((b * (lt + n), self.cfg.model.decoder_hidden))?;
            let targets: Vec<f32> = samples
                .iter()
                .flat_map(|s| s.targets.iter().copied())
                .collect();
            let targets = Tensor::from_vec(targets, (b * n, pd), dev)?;
            if o.mlm.enabled && !ix.mlm_rows.is_empty() {
                let (loss, acc) = mlm::loss(
                    model,
                    &dec,
                    &u32s(&ix.mlm_rows, dev)?,
                    &u32s(&ix.mlm_targets, dev)?,
                )?;
                add("mlm", loss, o.mlm.weight, true, &mut total)?;
                figures.push(("mlm_acc", acc));
            }
            if o.mim.enabled && !ix.mim_rows.is_empty() {
                let loss = mim::loss(
                    model,
                    &dec,
                    &u32s(&ix.mim_rows, dev)?,
                    &targets,
                    &u32s(&ix.mim_targets, dev)?,
                )?;
                add("mim", loss, o.mim.weight, true, &mut total)?;
            }
            if o.alt.enabled {
                let tr = u32s(&ix.alt_text_rows, dev)?;
                let tt = u32s(&ix.alt_text_targets, dev)?;
                let ir = u32s(&ix.alt_image_rows, dev)?;
                let it = u32s(&ix.alt_image_targets, dev)?;
                let text = (!ix.alt_text_rows.is_empty()).then_some((&tr, &tt));
                let image = (!ix.alt_image_rows.is_empty()).then_some((&ir, &targets, &it));
                if let Some(loss) = alt::loss(model, &dec, text, image)? {
                    add("alt", loss, o.alt.weight, true, &mut total)?;
                }
            }
        }

        let pretraining = !matches!(self.cfg.task, Task::Vqa { .. });
        if pretraining && (o.contrastive.enabled || o.itm.enabled) {
            let (ht, _) = model.encode(&e_text, &text_mask, false)?;
            let cls_emb = e_text.narrow(1, 0, 1)?;
            let img_in = Tensor::cat(&[&cls_emb, &e_img], 1)?;
            let (hi, _) =
                model.encode(&img_in, &Tensor::ones((b, 1 + n), DType::F32, dev)?, false)?;
            let t_emb = model.text_embedding(&Model::cls(&ht)?)?;
            let i_emb = model.image_embedding(&Model::cls(&hi)?)?;
            let scale = model.contrastive_scale()?;
            let alike = super::objectives::alike_pairs(samples);
            if o.contrastive.enabled {
                add(
                    "contrastive",
                    contrastive::loss(&t_emb, &i_emb, &scale, &alike)?,
                    o.contrastive.weight,
                    true,
                    &mut total,
                )?;
            }
            if o.itm.enabled {
                let sim = contrastive::similarity(&t_emb, &i_emb)?;
                let sim_t: Vec<Vec<f32>> = (0..b)
                    .map(|j| (0..b).map(|i| sim[i][j]).collect())
                    .collect();
                // An infinite temperature weighs every negative alike.
                let temp = if step < o.itm.uniform_negative_steps {
                    f32::INFINITY
                } else {
                    (1.0 / scalar(&scale)?) as f32
                };
                let mut rng = step_rng(seed, batch.micro_step, PURPOSE_NEGATIVES);
                let neg_img = itm::draw_negatives(&sim, &alike, temp, &mut rng);
                let neg_txt = itm::draw_negatives(&sim_t, &alike, temp, &mut rng);
                let all: Vec<u32> = (0..b as u32).collect();
                let t_idx: Vec<u32> = all
                    .iter()
                    .copied()
                    .chain(all.iter().copied())
                    .chain(neg_txt.iter().map(|&x| x as u32))
                    .collect();
                let i_idx: Vec<u32> = all
                    .iter()
                    .copied()
                    .chain(neg_img.iter().map(|&x| x as u32))
                    .chain(all.iter().copied())
                    .collect();
                let (ti, ii) = (u32s(&t_idx, dev)?, u32s(&i_idx, dev)?);
                // Split off: the pass starts from detached copies of the embeddings.
                let cut = match split {
                    Some(_) => Some((
                        Var::from_tensor(&e_text.detach())?,
                        Var::from_tensor(&e_img.detach())?,
                    )),
                    None => None,
                };
                let (et, ei) = match &cut {
                    Some((t, i)) => (t.as_tensor(), i.as_tensor()),
                    None => (&e_text, &e_img),
                };
                // Split: positives, text-with-negative-image and image-with-negative-text pass
                // and back-propagate one after another, so only one third lives at a time.
                let rows = 3 * b;
                let chunk = if split.is_some() { b } else { rows };
                let labels: Vec<u32> = (0..rows).map(|k| (k < b) as u32).collect();
                let mut whole = None;
                let mut itm_value = 0f64;
                let mut right = 0f64;
                let mut emb_grads: [Option<Tensor>; 2] = [None, None];
                for start in (0..rows).step_by(chunk) {
                    let len = chunk.min(rows - start);
                    let (tc, ic) = (ti.narrow(0, start, len)?, ii.narrow(0, start, len)?);
                    let x = Tensor::cat(&[et.index_select(&tc, 0)?, ei.index_select(&ic, 0)?], 1)?;
                    let m = Tensor::cat(
                        &[
                            text_mask.index_select(&tc, 0)?,
                            Tensor::ones((len, n), DType::F32, dev)?,
                        ],
                        1,
                    )?;
                    let (h, _) = model.encode(&x, &m, false)?;
                    let logits = model.itm_logits(&Model::cls(&h)?)?;
                    let lab = u32s(&labels[start..start + len], dev)?;
                    right += super::objectives::accuracy(&logits, &lab)? * len as f64;
                    // This chunk's share of the mean over all 3B pairs.
                    let loss = (mlm::ce(&logits, &lab)? * (len as f64 / rows as f64))?;
                    match (split, &cut) {
                        (Some(scale), Some((vt, vi))) => {
                            itm_value += scalar(&loss)?;
                            let g = (&loss * (o.itm.weight * scale))?.backward()?;
                            self.collect_grads(&g, &mut early_grads)?;
                            for (slot, v) in emb_grads.iter_mut().zip([vt, vi]) {
                                if let Some(ge) = g.get(v.as_tensor()) {
                                    *slot = Some(match slot.take() {
                                        Some(prev) => (prev + ge)?,
                                        None => ge.clone(),
                                    });
                                }
                            }
                        }
                        _ => whole = Some(loss),
                    }
                }
                figures.push(("itm_acc", right / rows as f64));
                match (split, whole) {
                    (Some(scale), _) => {
                        // d/dθ Σ e·(∂L/∂e) = (∂e/∂θ)ᵀ ∂L/∂e: the ITM gradient through the embeddings.
                        for (e, ge) in [&e_text, &e_img].into_iter().zip(emb_grads) {
                            if let Some(ge) = ge {
                                let inject = ((e * ge)?.sum_all()? / scale)?;
                                total = Some(match total.take() {
                                    Some(t) => (t + inject)?,
                                    None => inject,
                                });
                            }
                        }
                        let shown = Tensor::new(itm_value as f32, dev)?;
                        add("itm", shown, o.itm.weight, false, &mut total)?;
                    }
                    (None, Some(loss)) => add("itm", loss, o.itm.weight, true, &mut total)?,
                    (None, None) => unreachable!("one chunk without split"),
                }
            }
        }

        if pretraining && o.grouped_itm.enabled && !batch.groups.is_empty() {
            let (loss, acc) = self.grouped_loss(model, &batch.groups)?;
            add("grouped_itm", loss, o.grouped_itm.weight, true, &mut total)?;
            figures.push(("grouped_itm_acc", acc));
        }

        let total = total.ok_or_else(|| {
            TrainError::Loader("no objective produced a loss for this batch".into())
        })?;
        Ok(Losses {
            total,
            value,
            parts,
            figures,
            early_grads,
        })
    }

    /// Adds the parameters' gradients of one backward pass to `into`, by name.
    fn collect_grads(
        &self,
        g: &candle_core::backprop::GradStore,
        into: &mut BTreeMap<String, Tensor>,
    ) -> Result<(), TrainError> {
        for (name, var) in &self.vars {
            if let Some(gv) = g.get(var.as_tensor()) {
                add_grad(into, name, gv)?;
            }
        }
        Ok(())
    }

    /// What `batch` hides: random masks (and alternate-modality choices) from the batch's
    /// generator, then, once AttMask is past its warm-up, the most attended words and patches
    /// in place of the random ones.
    pub fn mask_spec(&self, batch: &Batch, seed: u64, step: u64) -> Result<MaskSpec, TrainError> {
        let o = &self.cfg.objectives;
        let samples = &batch.samples;
        let n = self.cfg.model.patches();
        let mut rng = step_rng(seed, batch.micro_step, PURPOSE_MASK);
        let mut spec = random_masks(samples, n, o, &mut rng);
        if !(o.attmask.enabled && step >= o.attmask.warmup_steps) {
            return Ok(spec);
        }
        let attention = self.cls_attention(samples)?;
        let lt = samples.iter().map(|s| s.ids.len()).max().unwrap_or(1);
        for (i, s) in samples.iter().enumerate() {
            if spec.whole[i].is_some() {
                continue;
            }
            let att = &attention[i];
            if o.mlm.enabled {
                let cand: Vec<usize> = word_positions(s.ids.len()).collect();
                let k = hidden_count(cand.len(), o.mlm.mask_ratio, false);
                let chosen = attmask::choose(
                    &cand,
                    att,
                    k,
                    o.attmask.mode,
                    o.attmask.hint_ratio,
                    &mut rng,
                );
                spec.text_hidden[i].iter_mut().for_each(|h| *h = false);
                chosen.iter().for_each(|&p| spec.text_hidden[i][p] = true);
            }
            if o.mim.enabled {
                let cand: Vec<usize> = (lt..lt + n).collect();
                let k = hidden_count(n, o.mim.mask_ratio, true);
                let chosen = attmask::choose(
                    &cand,
                    att,
                    k,
                    o.attmask.mode,
                    o.attmask.hint_ratio,
                    &mut rng,
                );
                spec.image_hidden[i].iter_mut().for_each(|h| *h = false);
                chosen
                    .iter()
                    .for_each(|&p| spec.image_hidden[i][p - lt] = true);
            }
        }
        Ok(spec)
    }

    /// Padded ids `[B, Lt]`, their mask, and patches `[B, N, P·P·3]` of `samples`.
    fn inputs(&self, samples: &[Sample]) -> Result<(Tensor, Tensor, Tensor), TrainError> {
        let lists: Vec<&[u32]> = samples.iter().map(|s| s.ids.as_slice()).collect();
        let (ids, mask, _) = pad_ids(&lists, self.specials.pad, &self.device)?;
        let patches: Vec<f32> = samples
            .iter()
            .flat_map(|s| s.patches.iter().copied())
            .collect();
        let shape = (
            samples.len(),
            self.cfg.model.patches(),
            self.cfg.model.patch_dim(),
        );
        Ok((ids, mask, Tensor::from_vec(patches, shape, &self.device)?))
    }

    fn grouped_loss(&self, model: &Model, groups: &[Group]) -> Result<(Tensor, f64), TrainError> {
        let dev = &self.device;
        let g = groups.len();
        let n = self.cfg.model.patches();
        let lists: Vec<&[u32]> = groups.iter().map(|x| x.ids.as_slice()).collect();
        let (ids, mask, lg) = pad_ids(&lists, self.specials.pad, dev)?;
        let patches: Vec<f32> = groups
            .iter()
            .flat_map(|x| x.patches.iter().copied())
            .collect();
        let patches = Tensor::from_vec(patches, (g, n, self.cfg.model.patch_dim()), dev)?;
        let x = Tensor::cat(&[model.embed_text(&ids)?, model.embed_image(&patches)?], 1)?;
        let m = Tensor::cat(&[mask, Tensor::ones((g, n), DType::F32, dev)?], 1)?;
        let (h, _) = model.encode(&x, &m, false)?;
        // Mean of each caption's word pieces: a [G, 4, Lg] averaging matrix.
        let mut w = vec![0f32; g * 4 * lg];
        for (gi, grp) in groups.iter().enumerate() {
            for (q, &(start, len)) in grp.segments.iter().enumerate() {
                for p in start..start + len {
                    w[(gi * 4 + q) * lg + p] = 1.0 / len as f32;
                }
            }
        }
        let w = Tensor::from_vec(w, (g, 4, lg), dev)?;
        let pooled = w
            .matmul(&h.narrow(1, 0, lg)?.contiguous()?)?
            .reshape((g * 4, self.cfg.model.hidden))?;
        let logits = model.group_logits(&pooled)?;
        let labels: Vec<u32> = groups.iter().flat_map(|x| x.labels).collect();
        let labels = u32s(&labels, dev)?;
        Ok((
            mlm::ce(&logits, &labels)?,
            super::objectives::accuracy(&logits, &labels)?,
        ))
    }

    /// `[CLS]` attention of the teacher's last layer over each sample's full, unmasked pair:
    /// text positions `0..Lt`, then patches `Lt..Lt+N`.
    pub fn cls_attention(&self, samples: &[Sample]) -> Result<Vec<Vec<f32>>, TrainError> {
        let teacher = self.teacher_model()?;
        let model = teacher.as_ref().unwrap_or(&self.model);
        let (ids, text_mask, patches) = self.inputs(samples)?;
        let b = samples.len();
        let n = self.cfg.model.patches();
        let x = Tensor::cat(&[model.embed_text(&ids)?, model.embed_image(&patches)?], 1)?.detach();
        let m = Tensor::cat(
            &[text_mask, Tensor::ones((b, n), DType::F32, &self.device)?],
            1,
        )?;
        let (_, cls) = model.encode(&x, &m, true)?;
        Ok(cls
            .expect("asked for attention")
            .detach()
            .to_vec2::<f32>()?)
    }

    /// One optimizer step over `micro` batches (gradient accumulation). Returns the metrics:
    /// each loss averaged over the micro-batches, accuracies, `lr` and `grad_norm`.
    pub fn train_step(&mut self, micro: &[Batch]) -> Result<Vec<(String, f64)>, TrainError> {
        let k = micro.len() as f64;
        let mut grads: BTreeMap<String, Tensor> = BTreeMap::new();
        let mut sums: BTreeMap<String, f64> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for batch in micro {
            let mut losses = self.losses_with(
                &self.model,
                batch,
                self.cfg.train.seed,
                self.step,
                Some(1.0 / k),
            )?;
            for (name, gv) in std::mem::take(&mut losses.early_grads) {
                add_grad(&mut grads, &name, &gv)?;
            }
            for (name, v) in losses.metrics()? {
                if !sums.contains_key(&name) {
                    order.push(name.clone());
                }
                *sums.entry(name).or_default() += v / k;
            }
            let g = (losses.total / k)?.backward()?;
            self.collect_grads(&g, &mut grads)?;
        }
        let loss = sums["loss"];
        if !loss.is_finite() {
            return Err(TrainError::Diverged {
                step: self.step + 1,
                value: loss,
            });
        }
        let norm = clip_global_norm(&mut grads, self.cfg.train.grad_clip)?;
        let lr = lr_at(self.step, &self.cfg.train);
        self.opt.step(&self.vars, &grads, lr)?;
        if let Some(t) = self.teacher.as_mut() {
            let m = self.cfg.objectives.attmask.ema_momentum;
            for (name, var) in &self.vars {
                if let Some(prev) = t.get_mut(name) {
                    *prev = ((&*prev * m)? + (var.as_tensor().detach() * (1.0 - m))?)?;
                }
            }
        }
        self.step += 1;
        let mut out: Vec<(String, f64)> = order
            .into_iter()
            .map(|n| {
                let v = sums[&n];
                (n, v)
            })
            .collect();
        out.push(("lr".into(), lr));
        out.push(("grad_norm".into(), norm));
        Ok(out)
    }

    /// Mean of each loss over `batches` without gradients, plus zero-shot retrieval R@1 from
    /// the contrastive head over all their pairs.
    pub fn validate(&self, batches: &[Batch]) -> Result<Vec<(String, f64)>, TrainError> {
        let mut sums: BTreeMap<String, f64> = BTreeMap::new();
        let mut order = Vec::new();
        let mut t_embs = Vec::new();
        let mut i_embs = Vec::new();
        let mut embedded = Vec::new();
        let seed = self.cfg.train.seed ^ 0x7661_6c69_6461_7465; // validation's own draws
        for batch in batches {
            let l = self.losses(&self.model, batch, seed, u64::MAX)?;
            for (name, v) in l.metrics()? {
                if !sums.contains_key(&name) {
                    order.push(name.clone());
                }
                *sums.entry(name).or_default() += v / batches.len() as f64;
            }
            if !matches!(self.cfg.task, Task::Vqa { .. }) {
                let (t, i) = self.embed_pairs(&batch.samples)?;
                t_embs.push(t);
                i_embs.push(i);
                embedded.extend(batch.samples.iter());
            }
        }
        let mut out: Vec<(String, f64)> = order
            .into_iter()
            .map(|n| {
                let v = sums[&n];
                (n, v)
            })
            .collect();
        if !t_embs.is_empty() {
            let sim =
                contrastive::similarity(&Tensor::cat(&t_embs, 0)?, &Tensor::cat(&i_embs, 0)?)?;
            let alike = super::objectives::alike_pairs(&embedded);
            let (t2i, i2t) = contrastive::recall_at_1(&sim, &alike);
            out.push(("r1_text_to_image".into(), t2i));
            out.push(("r1_image_to_text".into(), i2t));
        }
        Ok(out)
    }

    /// Unit text and image embeddings of pairs (unimodal passes, no gradient).
    pub fn embed_pairs(&self, samples: &[Sample]) -> Result<(Tensor, Tensor), TrainError> {
        let dev = &self.device;
        let model = &self.model;
        let b = samples.len();
        let (ids, mask, patches) = self.inputs(samples)?;
        let ht = model.encode_text(&ids, &mask)?;
        let cls = Tensor::from_vec(vec![self.specials.cls; b], (b, 1), dev)?;
        let hi = model.encode_image(&cls, &patches)?;
        Ok((
            model.text_embedding(&Model::cls(&ht)?)?.detach(),
            model.image_embedding(&Model::cls(&hi)?)?.detach(),
        ))
    }
}
