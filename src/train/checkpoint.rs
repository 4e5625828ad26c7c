//! Checkpoints: a folder per step holding the weights, the optimizer's moments, the teacher's
//! weights (AttMask with an EMA teacher) as safetensors, and `state.json` (step, optimizer step,
//! seed — the whole state of our counter-based generators — and the run config). A manifest lists
//! each file's BLAKE3; the store keeps the manifest's own hash, so a tampered or truncated file
//! is caught before anything is loaded. Written to a temporary folder and renamed into place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::model::{load_tensors, save_tensors, RunConfig};

use super::TrainError;

pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    pub format: u32,
    /// Optimizer steps completed.
    pub step: u64,
    /// AdamW's own step counter (bias correction).
    pub adam_t: u64,
    /// Every random choice is drawn from (seed, micro-step, purpose), so seed and step are the
    /// generators' whole state.
    pub seed: u64,
    pub config: RunConfig,
}

/// What a checkpoint holds.
pub struct Checkpoint {
    pub state: CheckpointState,
    pub params: BTreeMap<String, Tensor>,
    pub adam_m: BTreeMap<String, Tensor>,
    pub adam_v: BTreeMap<String, Tensor>,
    pub teacher: Option<BTreeMap<String, Tensor>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    files: BTreeMap<String, String>,
}

const PARAMS: &str = "model.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
const TEACHER: &str = "teacher.safetensors";
const STATE: &str = "state.json";
const MANIFEST: &str = "manifest.json";

fn io(path: &Path, e: std::io::Error) -> TrainError {
    TrainError::Checkpoint {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Writes `ckpt` as `dir` (which must not exist yet) and returns the manifest's hash.
pub fn write(dir: &Path, ckpt: &Checkpoint) -> Result<String, TrainError> {
    let parent = dir.parent().expect("checkpoint dir has a parent");
    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".ckpt-")
        .tempdir_in(parent)
        .map_err(|e| io(parent, e))?;
    save_tensors(&ckpt.params, &tmp.path().join(PARAMS))?;
    let mut opt = BTreeMap::new();
    for (k, v) in &ckpt.adam_m {
        opt.insert(format!("m.{k}"), v.clone());
    }
    for (k, v) in &ckpt.adam_v {
        opt.insert(format!("v.{k}"), v.clone());
    }
    save_tensors(&opt, &tmp.path().join(OPTIMIZER))?;
    if let Some(t) = &ckpt.teacher {
        save_tensors(t, &tmp.path().join(TEACHER))?;
    }
    let state = serde_json::to_vec_pretty(&ckpt.state).expect("state serialises");
    std::fs::write(tmp.path().join(STATE), state).map_err(|e| io(tmp.path(), e))?;
    let mut files = BTreeMap::new();
    for name in [PARAMS, OPTIMIZER, TEACHER, STATE] {
        let p = tmp.path().join(name);
        if p.exists() {
            let h = crate::store::hash_file(&p).map_err(|e| io(&p, e))?;
            files.insert(name.to_string(), h);
        }
    }
    let manifest = serde_json::to_vec_pretty(&Manifest { files }).expect("manifest serialises");
    std::fs::write(tmp.path().join(MANIFEST), &manifest).map_err(|e| io(tmp.path(), e))?;
    for name in [PARAMS, OPTIMIZER, TEACHER, STATE, MANIFEST] {
        let p = tmp.path().join(name);
        if p.exists() {
            std::fs::File::open(&p)
                .and_then(|f| f.sync_all())
                .map_err(|e| io(&p, e))?;
        }
    }
    let kept = tmp.keep();
    if dir.exists() {
        // A folder left by a run killed after the rename but before the store recorded it.
        std::fs::remove_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    std::fs::rename(&kept, dir).map_err(|e| io(dir, e))?;
    Ok(blake3::hash(&manifest).to_hex().to_string())
}

/// Reads and verifies the checkpoint in `dir` against the manifest hash the store recorded.
pub fn read(dir: &Path, checksum: &str, device: &Device) -> Result<Checkpoint, TrainError> {
    let bad = |path: PathBuf, reason: String| TrainError::Checkpoint {
        path: path.display().to_string(),
        reason,
    };
    let mpath = dir.join(MANIFEST);
    let manifest_bytes = std::fs::read(&mpath).map_err(|e| io(&mpath, e))?;
    if blake3::hash(&manifest_bytes).to_hex().as_str() != checksum {
        return Err(bad(
            mpath,
            "manifest does not match the checksum the store recorded (tampered or corrupt)".into(),
        ));
    }
    let manifest: Manifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| bad(mpath.clone(), e.to_string()))?;
    for (name, want) in &manifest.files {
        let p = dir.join(name);
        let got = crate::store::hash_file(&p).map_err(|e| io(&p, e))?;
        if &got != want {
            return Err(bad(
                p,
                "contents do not match the manifest's checksum (tampered or corrupt)".into(),
            ));
        }
    }
    let spath = dir.join(STATE);
    let state: CheckpointState =
        serde_json::from_slice(&std::fs::read(&spath).map_err(|e| io(&spath, e))?)
            .map_err(|e| bad(spath.clone(), e.to_string()))?;
    if state.format != FORMAT {
        return Err(bad(
            spath,
            format!("checkpoint format {} is not {FORMAT}", state.format),
        ));
    }
    let params = load_tensors(&dir.join(PARAMS), device)?;
    let mut adam_m = BTreeMap::new();
    let mut adam_v = BTreeMap::new();
    for (k, v) in load_tensors(&dir.join(OPTIMIZER), device)? {
        if let Some(n) = k.strip_prefix("m.") {
            adam_m.insert(n.to_string(), v);
        } else if let Some(n) = k.strip_prefix("v.") {
            adam_v.insert(n.to_string(), v);
        }
    }
    let teacher = if manifest.files.contains_key(TEACHER) {
        Some(load_tensors(&dir.join(TEACHER), device)?)
    } else {
        None
    };
    Ok(Checkpoint {
        state,
        params,
        adam_m,
        adam_v,
        teacher,
    })
}

/// Bytes on disk of the checkpoint folder `dir` (0 when it is gone).
pub fn size_on_disk(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}
