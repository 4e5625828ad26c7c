//! AdamW with decoupled weight decay, a linear warm-up then cosine learning-rate schedule, and
//! global-norm gradient clipping. Written here rather than taken from candle-nn so that its
//! state (moments and step) is ours to checkpoint and restore exactly.

use std::collections::BTreeMap;

use candle_core::{Result, Tensor, Var};

use crate::model::TrainConfig;

/// The learning rate after `step` optimizer steps (0-based).
pub fn lr_at(step: u64, t: &TrainConfig) -> f64 {
    if t.warmup_steps > 0 && step < t.warmup_steps {
        return t.lr * (step + 1) as f64 / t.warmup_steps as f64;
    }
    let span = t.steps.saturating_sub(t.warmup_steps).max(1) as f64;
    let progress = ((step - t.warmup_steps.min(step)) as f64 / span).min(1.0);
    t.min_lr + 0.5 * (t.lr - t.min_lr) * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// Scales `grads` so their global L2 norm is at most `max_norm` (0 = no clipping); returns
/// the norm before clipping.
pub fn clip_global_norm(grads: &mut BTreeMap<String, Tensor>, max_norm: f64) -> Result<f64> {
    let mut sq = 0f64;
    for g in grads.values() {
        sq += g
            .sqr()?
            .sum_all()?
            .to_dtype(candle_core::DType::F64)?
            .to_scalar::<f64>()?;
    }
    let norm = sq.sqrt();
    if max_norm > 0.0 && norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for g in grads.values_mut() {
            *g = (&*g * scale)?;
        }
    }
    Ok(norm)
}

/// Matrices decay; vectors (biases, norms), scalars and position/type tables of one row do not.
fn decays(name: &str, var: &Var) -> bool {
    var.rank() >= 2 && !name.contains("LayerNorm")
}

pub struct AdamW {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Optimizer steps taken.
    pub t: u64,
    pub m: BTreeMap<String, Tensor>,
    pub v: BTreeMap<String, Tensor>,
}

impl AdamW {
    pub fn new(cfg: &TrainConfig) -> Self {
        Self {
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            eps: cfg.adam_eps,
            weight_decay: cfg.weight_decay,
            t: 0,
            m: BTreeMap::new(),
            v: BTreeMap::new(),
        }
    }

    /// One update of every variable that has a gradient.
    pub fn step(
        &mut self,
        vars: &BTreeMap<String, Var>,
        grads: &BTreeMap<String, Tensor>,
        lr: f64,
    ) -> Result<()> {
        self.t += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let c1 = 1.0 - b1.powi(self.t as i32);
        let c2 = 1.0 - b2.powi(self.t as i32);
        for (name, var) in vars {
            let Some(g) = grads.get(name) else { continue };
            let m = match self.m.get(name) {
                Some(m) => ((m * b1)? + (g * (1.0 - b1))?)?,
                None => (g * (1.0 - b1))?,
            };
            let v = match self.v.get(name) {
                Some(v) => ((v * b2)? + (g.sqr()? * (1.0 - b2))?)?,
                None => (g.sqr()? * (1.0 - b2))?,
            };
            let update = ((&m / c1)? / ((&v / c2)?.sqrt()? + self.eps)?)?;
            let p = var.as_tensor();
            let mut next = (p - (update * lr)?)?;
            if self.weight_decay > 0.0 && decays(name, var) {
                next = (next - (p * (lr * self.weight_decay))?)?;
            }
            var.set(&next)?;
            self.m.insert(name.clone(), m);
            self.v.insert(name.clone(), v);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine_to_min() {
        let t = TrainConfig {
            steps: 110,
            warmup_steps: 10,
            lr: 1.0,
            min_lr: 0.1,
            ..Default::default()
        };
        assert!((lr_at(0, &t) - 0.1).abs() < 1e-12);
        assert!((lr_at(9, &t) - 1.0).abs() < 1e-12);
        assert!((lr_at(10, &t) - 1.0).abs() < 1e-12);
        assert!((lr_at(60, &t) - 0.55).abs() < 1e-9);
        assert!((lr_at(110, &t) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn clipping_bounds_the_global_norm() {
        let dev = candle_core::Device::Cpu;
        let mut g = BTreeMap::new();
        g.insert("a".to_string(), Tensor::new(&[3f32, 0.0], &dev).unwrap());
        g.insert("b".to_string(), Tensor::new(&[0f32, 4.0], &dev).unwrap());
        let norm = clip_global_norm(&mut g, 1.0).unwrap();
        assert!((norm - 5.0).abs() < 1e-6);
        let after = clip_global_norm(&mut g, 0.0).unwrap();
        assert!((after - 1.0).abs() < 1e-4);
    }

    #[test]
    fn adamw_moves_against_the_gradient() {
        let dev = candle_core::Device::Cpu;
        let var = Var::new(&[[1f32, -1.0]], &dev).unwrap();
        let vars = BTreeMap::from([("w".to_string(), var.clone())]);
        let grads = BTreeMap::from([(
            "w".to_string(),
            Tensor::new(&[[0.5f32, -2.0]], &dev).unwrap(),
        )]);
        let mut opt = AdamW::new(&TrainConfig {
            weight_decay: 0.0,
            ..Default::default()
        });
        opt.step(&vars, &grads, 0.1).unwrap();
        let w = var.as_tensor().to_vec2::<f32>().unwrap();
        // The first Adam step moves each weight by lr against the gradient's sign.
        assert!(
            (w[0][0] - 0.9).abs() < 1e-5 && (w[0][1] + 0.9).abs() < 1e-5,
            "{w:?}"
        );
        assert_eq!(opt.t, 1);
    }
}
