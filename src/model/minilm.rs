//! Starting `small` from all-MiniLM-L6-v2's BERT weights: every tensor of the file is mapped
//! by name onto the text embeddings and the encoder; a missing, unexpected or misshapen tensor
//! is an error naming it, never a silent skip.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{Device, Var};

use super::{load_tensors, ModelError, Result};

/// Tensors of the file we deliberately leave out: a buffer, and BERT's pooler (sentence
/// embeddings are mean-pooled, and our `[CLS]` heads are our own).
const NOT_USED: [&str; 3] = [
    "embeddings.position_ids",
    "pooler.dense.weight",
    "pooler.dense.bias",
];

/// What loading changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// Our parameters now holding the file's values.
    pub loaded: usize,
    /// Our parameters the file has nothing for (image side, decoder, heads): kept fresh.
    pub fresh: usize,
}

/// Copies the BERT tensors of `path` into `vars`.
pub fn load_bert_into(vars: &BTreeMap<String, Var>, path: &Path) -> Result<InitReport> {
    let err = |reason: String| ModelError::Weights {
        path: path.display().to_string(),
        reason,
    };
    let file = load_tensors(path, &Device::Cpu)?;
    let mut loaded = 0;
    for (name, tensor) in &file {
        if NOT_USED.contains(&name.as_str()) {
            continue;
        }
        let var = vars.get(name).ok_or_else(|| {
            err(format!(
                "tensor {name} has no place in the model (check the config's layers and names)"
            ))
        })?;
        if var.dims() != tensor.dims() {
            return Err(err(format!(
                "tensor {name} has shape {:?}, the model's is {:?} (check the config's widths)",
                tensor.dims(),
                var.dims()
            )));
        }
        var.set(&tensor.to_dtype(var.dtype())?.to_device(var.device())?)?;
        loaded += 1;
    }
    // The encoder and text embeddings must all come from the file.
    for name in vars.keys() {
        let bert_side = name.starts_with("embeddings.") || name.starts_with("encoder.");
        if bert_side && !file.contains_key(name) {
            return Err(err(format!("the file has no tensor {name}")));
        }
    }
    Ok(InitReport {
        loaded,
        fresh: vars.len() - loaded,
    })
}
