//! Where a model's tensors come from: freshly initialised trainable variables (from a seeded
//! generator, so the same seed gives the same model on every machine), or fixed tensors
//! (a teacher, a loaded checkpoint used for inference).

use std::collections::BTreeMap;

use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone, Copy)]
pub enum Init {
    Zeros,
    Ones,
    /// Normal with this standard deviation (BERT: 0.02).
    Normal(f64),
    Const(f64),
}

enum Source {
    Fresh { rng: Box<ChaCha8Rng> },
    Fixed(BTreeMap<String, Tensor>),
}

/// Hands out a model's parameters by name, creating or looking them up.
pub struct Builder {
    source: Source,
    pub dtype: DType,
    pub device: Device,
    /// Trainable variables created so far, by name (empty for fixed sources).
    pub vars: BTreeMap<String, Var>,
}

impl Builder {
    /// Fresh, trainable parameters drawn from a generator seeded with `seed`.
    pub fn fresh(seed: u64, dtype: DType, device: &Device) -> Self {
        Self {
            source: Source::Fresh {
                rng: Box::new(ChaCha8Rng::seed_from_u64(seed)),
            },
            dtype,
            device: device.clone(),
            vars: BTreeMap::new(),
        }
    }

    /// Fixed tensors (no gradients): a teacher or an inference model.
    pub fn fixed(tensors: BTreeMap<String, Tensor>, dtype: DType, device: &Device) -> Self {
        Self {
            source: Source::Fixed(tensors),
            dtype,
            device: device.clone(),
            vars: BTreeMap::new(),
        }
    }

    pub fn get<S: Into<Shape>>(&mut self, name: &str, shape: S, init: Init) -> Result<Tensor> {
        let shape = shape.into();
        match &mut self.source {
            Source::Fresh { rng } => {
                let n = shape.elem_count();
                let values: Vec<f32> = match init {
                    Init::Zeros => vec![0.0; n],
                    Init::Ones => vec![1.0; n],
                    Init::Const(c) => vec![c as f32; n],
                    Init::Normal(std) => (0..n).map(|_| normal(rng) * std as f32).collect(),
                };
                let t = Tensor::from_vec(values, shape, &self.device)?.to_dtype(self.dtype)?;
                let var = Var::from_tensor(&t)?;
                let out = var.as_tensor().clone();
                if self.vars.insert(name.to_string(), var).is_some() {
                    candle_core::bail!("parameter {name} created twice");
                }
                Ok(out)
            }
            Source::Fixed(map) => {
                let t = map
                    .get(name)
                    .ok_or_else(|| candle_core::Error::Msg(format!("no tensor named {name}")))?;
                if t.shape() != &shape {
                    candle_core::bail!(
                        "tensor {name} has shape {:?}, the model needs {:?}",
                        t.dims(),
                        shape.dims()
                    );
                }
                t.to_dtype(self.dtype)?.to_device(&self.device)
            }
        }
    }
}

/// A standard normal draw (Box–Muller), so initialisation depends on our seed alone.
fn normal(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}
