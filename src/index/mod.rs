//! The embedding index of a data set under a run's checkpoint: unit image embeddings (one per
//! distinct image) and caption embeddings, persisted as one safetensors file under
//! `index/<run>/<dataset>.safetensors` and rebuilt only when the checkpoint (its manifest hash)
//! or the data set (a hash of its items) changed. Search is exact top-K by inner product
//! ([`topk`]), optionally re-ranked by the image-text matching head.

pub mod topk;

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::infer::{Loaded, Patches};
use crate::store::Store;
use crate::train::TrainError;

/// What the file's metadata records, besides the two tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Meta {
    checksum: String,
    fingerprint: String,
    images: Vec<String>,
    texts: Vec<TextRow>,
}

pub struct Index {
    pub run: String,
    pub dataset: String,
    /// The checkpoint the embeddings were computed with.
    pub checksum: String,
    /// Image blob hashes, one per row of `image_emb`.
    pub images: Vec<String>,
    /// `[images, P]` row-major unit vectors.
    pub image_emb: Vec<f32>,
    pub texts: Vec<TextRow>,
    pub text_emb: Vec<f32>,
    pub dim: usize,
}

/// A caption row of the index: its item and image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextRow {
    pub item_id: i64,
    pub image_hash: String,
    pub caption: String,
}

/// One search result: an image (with its captions) or a caption.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub score: f32,
    /// Match probability from the ITM head when re-ranked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_score: Option<f32>,
    pub image_hash: String,
    /// The caption's item (text hits), or the first item showing the image (image hits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_id: Option<i64>,
    /// The caption (text hits) or the image's first captions (image hits).
    pub captions: Vec<String>,
    /// Where the image came from (the first item showing it): for captionless images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Where the indexes of `run`'s checkpoints live, one file per data set.
pub fn run_index_dir(store: &Store, run: &str) -> PathBuf {
    store.root().join("index").join(run)
}

fn index_path(store: &Store, run: &str, dataset: &str) -> PathBuf {
    run_index_dir(store, run).join(format!("{dataset}.safetensors"))
}

/// A hash of what the index is computed from: every item's id, image and caption.
fn fingerprint(items: &[crate::store::ItemRow]) -> String {
    let mut h = blake3::Hasher::new();
    for i in items {
        h.update(&i.id.to_le_bytes());
        h.update(i.image_hash.as_bytes());
        h.update(&(i.caption.len() as u64).to_le_bytes());
        h.update(i.caption.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

fn err(path: &std::path::Path, reason: impl ToString) -> TrainError {
    TrainError::Checkpoint {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

impl Index {
    /// The index of `dataset` under `loaded`'s checkpoint: read from disk when it is current,
    /// else computed and written. Returns it and whether it was (re)built.
    pub fn open(store: &Store, loaded: &Loaded, dataset: &str) -> Result<(Self, bool), TrainError> {
        let items = store.items(dataset, None)?;
        if items.is_empty() {
            return Err(TrainError::Data {
                dataset: dataset.into(),
                reason: "has no items to index".into(),
            });
        }
        let fp = fingerprint(&items);
        let path = index_path(store, &loaded.run, dataset);
        if let Ok(Some(ix)) = Self::read(&path, loaded, dataset) {
            if ix.0 == fp {
                return Ok((ix.1, false));
            }
        }
        let ix = Self::build(store, loaded, dataset, &items)?;
        ix.write(&path, &fp)?;
        Ok((ix, true))
    }

    fn build(
        store: &Store,
        loaded: &Loaded,
        dataset: &str,
        items: &[crate::store::ItemRow],
    ) -> Result<Self, TrainError> {
        let mut images: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for i in items {
            if seen.insert(i.image_hash.as_str()) {
                images.push(i.image_hash.clone());
            }
        }
        let texts: Vec<TextRow> = items
            .iter()
            .filter(|i| !i.caption.trim().is_empty())
            .map(|i| TextRow {
                item_id: i.id,
                image_hash: i.image_hash.clone(),
                caption: i.caption.clone(),
            })
            .collect();
        // Images are decoded and embedded a batch at a time: memory stays bounded.
        let mut image_emb = Vec::new();
        for chunk in images.chunks(crate::infer::BATCH) {
            let pix = chunk
                .iter()
                .map(|h| read_patches(store, loaded, h))
                .collect::<Result<Vec<_>, _>>()?;
            let refs: Vec<&Patches> = pix.iter().collect();
            image_emb.extend(
                loaded
                    .embed_images(&refs)?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
            );
        }
        let caps: Vec<&str> = texts.iter().map(|t| t.caption.as_str()).collect();
        let text_emb = loaded.embed_texts(&caps)?.flatten_all()?.to_vec1::<f32>()?;
        Ok(Self {
            run: loaded.run.clone(),
            dataset: dataset.into(),
            checksum: loaded.checksum.clone(),
            images,
            image_emb,
            texts,
            text_emb,
            dim: loaded.config.model.projection_dim,
        })
    }

    /// The stored index and its data fingerprint, if present and made with this checkpoint.
    fn read(
        path: &std::path::Path,
        loaded: &Loaded,
        dataset: &str,
    ) -> Result<Option<(String, Self)>, TrainError> {
        let Ok(bytes) = std::fs::read(path) else {
            return Ok(None);
        };
        let (_, header) =
            safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| err(path, e))?;
        let meta: Meta = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get("tessera"))
            .and_then(|j| serde_json::from_str(j).ok())
            .ok_or_else(|| err(path, "no index metadata"))?;
        if meta.checksum != loaded.checksum {
            return Ok(None);
        }
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| err(path, e))?;
        let floats = |name: &str| -> Result<Vec<f32>, TrainError> {
            let t = st.tensor(name).map_err(|e| err(path, e))?;
            Ok(t.data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
        };
        let dim = loaded.config.model.projection_dim;
        let ix = Self {
            run: loaded.run.clone(),
            dataset: dataset.into(),
            checksum: meta.checksum,
            image_emb: floats("image_emb")?,
            text_emb: floats("text_emb")?,
            images: meta.images,
            texts: meta.texts,
            dim,
        };
        if ix.image_emb.len() != ix.images.len() * dim || ix.text_emb.len() != ix.texts.len() * dim
        {
            return Err(err(path, "tensor sizes do not match the metadata"));
        }
        Ok(Some((meta.fingerprint, ix)))
    }

    /// Writes to a temporary name and renames: a kill leaves the old index or the new one.
    fn write(&self, path: &std::path::Path, fingerprint: &str) -> Result<(), TrainError> {
        let dir = path.parent().expect("index path has a parent");
        std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
        let meta = Meta {
            checksum: self.checksum.clone(),
            fingerprint: fingerprint.into(),
            images: self.images.clone(),
            texts: self.texts.clone(),
        };
        let bytes = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        let (ib, tb) = (bytes(&self.image_emb), bytes(&self.text_emb));
        fn view(
            data: &[u8],
            rows: usize,
            dim: usize,
        ) -> Result<safetensors::tensor::TensorView<'_>, safetensors::SafeTensorError> {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![rows, dim], data)
        }
        let tensors = vec![
            (
                "image_emb",
                view(&ib, self.images.len(), self.dim).map_err(|e| err(path, e))?,
            ),
            (
                "text_emb",
                view(&tb, self.texts.len(), self.dim).map_err(|e| err(path, e))?,
            ),
        ];
        let info = HashMap::from([(
            "tessera".to_string(),
            serde_json::to_string(&meta).expect("meta serialises"),
        )]);
        let tmp = path.with_extension("safetensors.part");
        safetensors::serialize_to_file(tensors, Some(info), &tmp).map_err(|e| err(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| err(path, e))?;
        Ok(())
    }

    /// Rows of `db` closest to `query` (unit vectors), best first.
    fn nearest(
        &self,
        db: &[f32],
        rows: usize,
        query: &[f32],
        k: usize,
    ) -> Result<Vec<(usize, f32)>, TrainError> {
        let mut out = topk::top_k(db, rows, query, 1, self.dim, k)
            .map_err(|e| TrainError::Loader(e.to_string()))?;
        Ok(out.pop().unwrap_or_default())
    }

    /// Images for a text query; `rerank`: re-order the top `k` by ITM match probability.
    pub fn search_text(
        &self,
        store: &Store,
        loaded: &Loaded,
        query: &str,
        k: usize,
        rerank: bool,
    ) -> Result<Vec<Hit>, TrainError> {
        let q = loaded
            .embed_texts(&[query])?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let top = self.nearest(&self.image_emb, self.images.len(), &q, k)?;
        // Per image: its first captions, and the source and id of the first item showing it.
        let mut captions: HashMap<&str, (Vec<String>, &str, i64)> = HashMap::new();
        let items = store.items(&self.dataset, None)?;
        for i in &items {
            let entry = captions
                .entry(i.image_hash.as_str())
                .or_insert_with(|| (Vec::new(), i.source_path.as_str(), i.id));
            if entry.0.len() < 3 && !i.caption.is_empty() {
                entry.0.push(i.caption.clone());
            }
        }
        let mut hits: Vec<Hit> = top
            .into_iter()
            .map(|(r, score)| {
                let shown = captions.get(self.images[r].as_str());
                Hit {
                    score,
                    match_score: None,
                    image_hash: self.images[r].clone(),
                    item_id: shown.map(|c| c.2),
                    captions: shown.map(|c| c.0.clone()).unwrap_or_default(),
                    source: shown.map(|c| c.1.to_string()),
                }
            })
            .collect();
        if rerank && !hits.is_empty() {
            let pix = hits
                .iter()
                .map(|h| read_patches(store, loaded, &h.image_hash))
                .collect::<Result<Vec<_>, _>>()?;
            let refs: Vec<&Patches> = pix.iter().collect();
            let texts = vec![query; hits.len()];
            by_match(&mut hits, loaded.match_scores(&texts, &refs)?);
        }
        Ok(hits)
    }

    /// Captions for an image (decoded model input); `rerank` as in [`Index::search_text`].
    pub fn search_image(
        &self,
        loaded: &Loaded,
        image: &Patches,
        k: usize,
        rerank: bool,
    ) -> Result<Vec<Hit>, TrainError> {
        let q = loaded
            .embed_images(&[image])?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let top = self.nearest(&self.text_emb, self.texts.len(), &q, k)?;
        let mut hits: Vec<Hit> = top
            .into_iter()
            .map(|(r, score)| Hit {
                score,
                match_score: None,
                image_hash: self.texts[r].image_hash.clone(),
                item_id: Some(self.texts[r].item_id),
                captions: vec![self.texts[r].caption.clone()],
                source: None,
            })
            .collect();
        if rerank && !hits.is_empty() {
            let texts: Vec<&str> = hits.iter().map(|h| h.captions[0].as_str()).collect();
            let scores = loaded.match_scores(&texts, &vec![image; hits.len()])?;
            by_match(&mut hits, scores);
        }
        Ok(hits)
    }
}

/// Re-orders hits by their ITM match probabilities (kept on each hit), best first.
fn by_match(hits: &mut [Hit], scores: Vec<f32>) {
    for (h, s) in hits.iter_mut().zip(scores) {
        h.match_score = Some(s);
    }
    hits.sort_by(|a, b| {
        b.match_score
            .unwrap_or(0.0)
            .total_cmp(&a.match_score.unwrap_or(0.0))
    });
}

/// The model input of a stored image blob.
pub fn read_patches(store: &Store, loaded: &Loaded, hash: &str) -> Result<Patches, TrainError> {
    let bytes = std::fs::read(store.blobs().path_of(hash)).map_err(|e| TrainError::Image {
        hash: hash.into(),
        reason: e.to_string(),
    })?;
    loaded.patches(&bytes).map_err(|e| match e {
        TrainError::Image { reason, .. } => TrainError::Image {
            hash: hash.into(),
            reason,
        },
        other => other,
    })
}
