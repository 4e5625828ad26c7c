//! The model and its pre-training objectives on the CPU with the `tiny` config: gradients of
//! our layers against finite differences, each objective lowering its loss, masking
//! properties, determinism, exact resume, MiniLM's weights, and bad input.

mod common;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use tessera::model::params::Builder;
use tessera::model::{Model, RunConfig};
use tessera::text::Tokenizer;
use tessera::train::batch::{dihedral, Batch, BatchBuilder, Corpus, CorpusItem, ImageCache};
use tessera::train::{checkpoint, Trainer};

const COLOURS: [(&str, [u8; 3]); 4] = [
    ("red", [220, 30, 30]),
    ("green", [30, 200, 60]),
    ("blue", [40, 60, 230]),
    ("yellow", [240, 220, 40]),
];
const SHAPES: [&str; 4] = ["square", "circle", "stripe", "cross"];

/// 16 pictures (a coloured shape on grey) with captions that name colour and shape.
fn corpus() -> Corpus {
    let mut images = BTreeMap::new();
    let mut items = Vec::new();
    for (ci, (cname, rgb)) in COLOURS.iter().enumerate() {
        for (si, shape) in SHAPES.iter().enumerate() {
            let img = image::RgbImage::from_fn(64, 64, |x, y| {
                let (dx, dy) = (x as i32 - 32, y as i32 - 32);
                let inside = match si {
                    0 => dx.abs() < 18 && dy.abs() < 18,
                    1 => dx * dx + dy * dy < 20 * 20,
                    2 => (y / 8) % 2 == 0,
                    _ => dx.abs() < 6 || dy.abs() < 6,
                };
                image::Rgb(if inside { *rgb } else { [128, 128, 128] })
            });
            let mut png = Cursor::new(Vec::new());
            img.write_to(&mut png, image::ImageFormat::Png).unwrap();
            let hash = format!("img-{ci}-{si}");
            images.insert(hash.clone(), png.into_inner());
            items.push(CorpusItem::pair(
                &hash,
                &format!("a {cname} {shape} on a grey background"),
            ));
        }
    }
    Corpus {
        items,
        read_image: Box::new(move |h| {
            images
                .get(h)
                .cloned()
                .ok_or_else(|| std::io::Error::other("no such image"))
        }),
    }
}

fn tiny(objectives: &str) -> RunConfig {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/models/tiny.toml");
    let mut cfg = RunConfig::load(std::path::Path::new(path)).unwrap();
    cfg.objectives.select(objectives).unwrap();
    cfg.objectives.attmask.warmup_steps = 0;
    cfg.train.batch = 8;
    cfg.train.lr = 1e-3;
    cfg.train.warmup_steps = 0;
    cfg.train.steps = 1000;
    cfg
}

fn builder(cfg: &RunConfig) -> BatchBuilder {
    BatchBuilder {
        corpus: Arc::new(corpus()),
        cfg: cfg.clone(),
        tokenizer: Arc::new(Tokenizer::built_in()),
        cache: Arc::new(ImageCache::new(1 << 26)),
        training: true,
        seed: cfg.train.seed,
    }
}

fn trainer(cfg: &RunConfig) -> Trainer {
    Trainer::new(cfg.clone(), Device::Cpu, Tokenizer::built_in().specials).unwrap()
}

fn metric(m: &[(String, f64)], name: &str) -> f64 {
    m.iter()
        .find(|x| x.0 == name)
        .unwrap_or_else(|| panic!("no {name} in {m:?}"))
        .1
}

#[test]
fn dihedral_shows_each_training_image_turned_and_validation_images_as_they_are() {
    let mut cfg = tiny("mlm");
    // VQA: no crops, so every training image is exactly one symmetry of the picture.
    cfg.task = tessera::model::config::Task::Vqa {
        answers: vec!["red".into()],
    };
    cfg.train.dihedral = true;
    let train = builder(&cfg);
    let val = BatchBuilder {
        training: false,
        ..builder(&cfg)
    };
    let pictures = corpus();
    let plain = |i: usize| {
        let bytes = (pictures.read_image)(&pictures.items[i].image_hash).unwrap();
        tessera::media::square_rgb(&bytes, 64).unwrap()
    };
    let mut turned = 0;
    for m in 0..4 {
        let idx = train.indices(m);
        let batch = train.build_from(m, &idx).unwrap();
        for (sample, &i) in batch.samples.iter().zip(&idx) {
            let t = (0..8)
                .find(|&t| train.patchify(&dihedral(&plain(i), 64, t)).0 == sample.patches)
                .expect("a training image that is no symmetry of its picture");
            turned += usize::from(t != 0);
        }
        for (sample, &i) in val.build_from(m, &idx).unwrap().samples.iter().zip(&idx) {
            assert!(
                val.patchify(&plain(i)).0 == sample.patches,
                "validation image changed"
            );
        }
    }
    // 32 draws of 8 symmetries: about 28 are not the identity.
    assert!(
        turned >= 16,
        "only {turned} of 32 training images were turned"
    );
    cfg.train.dihedral = false;
    let b = builder(&cfg);
    let idx = b.indices(0);
    for (sample, &i) in b.build_from(0, &idx).unwrap().samples.iter().zip(&idx) {
        assert!(
            b.patchify(&plain(i)).0 == sample.patches,
            "turned without --dihedral"
        );
    }
}

#[test]
fn each_objective_alone_lowers_its_loss_on_a_fixed_batch() {
    for (objectives, loss) in [
        ("mlm", "mlm_loss"),
        ("mim", "mim_loss"),
        ("alt", "alt_loss"),
        ("itm", "itm_loss"),
        ("contrastive", "contrastive_loss"),
        ("grouped_itm", "grouped_itm_loss"),
        ("mim,attmask", "mim_loss"),
    ] {
        let mut cfg = tiny(objectives);
        cfg.objectives.alt.p = 1.0;
        let batch = builder(&cfg).build(0).unwrap();
        let mut t = trainer(&cfg);
        let first = metric(&t.train_step(std::slice::from_ref(&batch)).unwrap(), loss);
        let mut last = first;
        for _ in 0..40 {
            last = metric(&t.train_step(std::slice::from_ref(&batch)).unwrap(), loss);
        }
        assert!(
            last < first * 0.8,
            "{objectives}: {loss} went {first:.4} → {last:.4}"
        );
    }
}

#[test]
fn same_seed_same_losses_and_resume_is_bit_identical() {
    let cfg = tiny("mlm,mim,itm,contrastive,grouped_itm,attmask,alt");
    let b = builder(&cfg);
    let batches: Vec<Batch> = (0..4).map(|m| b.build(m).unwrap()).collect();
    let run = |t: &mut Trainer, range: std::ops::Range<usize>| -> Vec<Vec<(String, f64)>> {
        range
            .map(|i| t.train_step(std::slice::from_ref(&batches[i])).unwrap())
            .collect()
    };
    let mut a = trainer(&cfg);
    let straight = run(&mut a, 0..4);
    let mut again = trainer(&cfg);
    assert_eq!(run(&mut again, 0..4), straight, "same seed, same losses");

    let mut first = trainer(&cfg);
    run(&mut first, 0..2);
    let dir = tempfile::tempdir().unwrap();
    let ckpt_dir = dir.path().join("step-2");
    let sum = checkpoint::write(&ckpt_dir, &first.checkpoint()).unwrap();
    drop(first);
    let mut resumed = trainer(&cfg);
    resumed
        .restore(checkpoint::read(&ckpt_dir, &sum, &Device::Cpu).unwrap())
        .unwrap();
    assert_eq!(resumed.step, 2);
    assert_eq!(
        run(&mut resumed, 2..4),
        straight[2..].to_vec(),
        "resume continues exactly"
    );
    for (name, var) in &a.vars {
        let x = var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let y = resumed.vars[name]
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(x == y, "{name} differs after resume");
    }
}

#[test]
fn tampered_or_corrupt_checkpoints_are_refused() {
    let cfg = tiny("mlm");
    let t = trainer(&cfg);
    let dir = tempfile::tempdir().unwrap();
    let ckpt_dir = dir.path().join("c");
    let sum = checkpoint::write(&ckpt_dir, &t.checkpoint()).unwrap();
    let weights = ckpt_dir.join("model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0x40;
    std::fs::write(&weights, &bytes).unwrap();
    let e = checkpoint::read(&ckpt_dir, &sum, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("tampered"),
        "{e}"
    );
    let e = checkpoint::read(&ckpt_dir, "0000", &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("manifest") && e.contains("checksum"), "{e}");
}

#[test]
fn attmask_hides_the_most_attended_patches() {
    let mut cfg = tiny("mim,attmask");
    cfg.objectives.attmask.teacher = tessera::model::config::Teacher::Current;
    let batch = builder(&cfg).build(0).unwrap();
    let t = trainer(&cfg);
    let attention = t.cls_attention(&batch.samples).unwrap();
    let spec = t.mask_spec(&batch, cfg.train.seed, 10).unwrap();
    let lt = batch.samples.iter().map(|s| s.ids.len()).max().unwrap();
    for (i, hidden) in spec.image_hidden.iter().enumerate() {
        let att = &attention[i][lt..];
        let k = hidden.iter().filter(|h| **h).count();
        assert_eq!(k, 12, "75% of 16 patches");
        let min_hidden = (0..16)
            .filter(|&p| hidden[p])
            .map(|p| att[p])
            .fold(f32::INFINITY, f32::min);
        let max_visible = (0..16)
            .filter(|&p| !hidden[p])
            .map(|p| att[p])
            .fold(f32::NEG_INFINITY, f32::max);
        assert!(
            min_hidden >= max_visible,
            "sample {i}: hid {min_hidden} but showed {max_visible}"
        );
    }
    // Before the warm-up ends the masks are random, not attention-ranked.
    cfg.objectives.attmask.warmup_steps = 100;
    let t = trainer(&cfg);
    assert_ne!(t.mask_spec(&batch, cfg.train.seed, 10).unwrap(), spec);
}

#[test]
fn grouped_itm_batches_label_each_caption_by_its_quadrant() {
    let mut cfg = tiny("grouped_itm");
    cfg.objectives.grouped_itm.swap_p = 0.5;
    let b = builder(&cfg);
    let tok = Tokenizer::built_in();
    let (mut pos, mut neg) = (0, 0);
    for m in 0..10 {
        let batch = b.build(m).unwrap();
        assert_eq!(batch.groups.len(), 2, "one grid per four pairs");
        let idx = b.indices(m);
        for (g, group) in batch.groups.iter().enumerate() {
            for q in 0..4 {
                let (start, len) = group.segments[q];
                let shown = &group.ids[start..start + len];
                let own = &b.corpus.items[idx[g * 4 + q]].caption;
                // Each caption is cut to a quarter of the text length.
                let per = (cfg.model.max_text_len - 5) / 4;
                let is_own = shown == tok.pieces(own, per).unwrap().ids.as_slice();
                assert_eq!(
                    group.labels[q] == 1,
                    is_own,
                    "{:?} vs {own:?}",
                    tok.decode(shown)
                );
                if is_own {
                    pos += 1
                } else {
                    neg += 1
                }
            }
        }
    }
    assert!(pos > 10 && neg > 10, "{pos} {neg}");
}

/// Analytic gradients of our layers (patch projection, 2-D positions, attention, layer norm,
/// the gather/restore of M3AE masking, decoder, pixel head) against central differences, in f64.
#[test]
fn gradients_match_finite_differences() {
    let mut cfg = tiny("mim").model;
    cfg.hidden = 16;
    cfg.heads = 2;
    cfg.intermediate = 32;
    cfg.layers = 1;
    cfg.decoder_hidden = 8;
    cfg.decoder_heads = 2;
    cfg.image_size = 32;
    cfg.vocab_size = 200;
    let dev = Device::Cpu;
    let mut b = Builder::fresh(7, DType::F64, &dev);
    let model = Model::build(&cfg, 0.07, &mut b).unwrap();
    let vars = b.vars;
    let n = cfg.patches();
    let pd = cfg.patch_dim();
    let ids = Tensor::new(&[[101u32, 50, 60, 102]], &dev).unwrap();
    let wave = |k: usize, len: usize| (0..len).map(move |i| ((i * 7 + k) as f64 * 0.37).sin());
    let patches = Tensor::from_iter(wave(0, n * pd), &dev)
        .unwrap()
        .reshape((1, n, pd))
        .unwrap();
    let target = Tensor::from_iter(wave(3, 2 * pd), &dev)
        .unwrap()
        .reshape((2, pd))
        .unwrap();
    // Visible: text 0..4 and patches 0, 2; hidden: patches 1, 3 (rows 4+1, 4+3 of the full table).
    let loss = |m: &Model| -> Tensor {
        let full = Tensor::cat(
            &[
                m.embed_text(&ids).unwrap(),
                m.embed_image(&patches).unwrap(),
            ],
            1,
        )
        .unwrap()
        .reshape((4 + n, cfg.hidden))
        .unwrap();
        let vis = Tensor::new(&[0u32, 1, 2, 3, 4, 6], &dev).unwrap();
        let enc_in = full.index_select(&vis, 0).unwrap().unsqueeze(0).unwrap();
        let mask = Tensor::ones((1, 6), DType::F64, &dev).unwrap();
        let (h, _) = m.encode(&enc_in, &mask, false).unwrap();
        let restore = Tensor::new(&[0u32, 1, 2, 3, 4, 6, 5, 6], &dev).unwrap();
        let dmask = Tensor::ones((1, 4 + n), DType::F64, &dev).unwrap();
        let dec = m
            .decode(&h, &restore, 4, &dmask)
            .unwrap()
            .reshape((4 + n, cfg.decoder_hidden))
            .unwrap();
        let rows = Tensor::new(&[5u32, 7], &dev).unwrap();
        let pred = m.mim_pixels(&dec.index_select(&rows, 0).unwrap()).unwrap();
        (pred - &target).unwrap().sqr().unwrap().sum_all().unwrap()
    };
    let grads = loss(&model).backward().unwrap();
    let scale = 1e-3
        * vars
            .values()
            .filter_map(|v| grads.get(v.as_tensor()))
            .map(|g| {
                g.abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap()
            })
            .fold(0f64, f64::max);
    for name in [
        "image_embeddings.patch.weight",
        "image_embeddings.row_position",
        "encoder.layer.0.attention.self.query.weight",
        "encoder.layer.0.attention.self.key.bias",
        "encoder.layer.0.output.LayerNorm.weight",
        "embeddings.LayerNorm.bias",
        "decoder.mask_token",
        "decoder.layer.0.intermediate.dense.weight",
    ] {
        let var = &vars[name];
        let g = grads
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let base = var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        for &i in &[0, base.len() / 2, base.len() - 1] {
            let eps = 1e-5;
            let eval = |delta: f64| {
                let mut v = base.clone();
                v[i] += delta;
                var.set(&Tensor::from_vec(v, var.shape(), &dev).unwrap())
                    .unwrap();
                let l = loss(&model).to_scalar::<f64>().unwrap();
                var.set(&Tensor::from_vec(base.clone(), var.shape(), &dev).unwrap())
                    .unwrap();
                l
            };
            let numeric = (eval(eps) - eval(-eps)) / (2.0 * eps);
            // candle's GELU gradient uses 1/√(2π) rounded to six digits, so where gradients nearly
            // cancel (attention at initialisation) agreement is judged against the model's
            // gradient scale; a wrong gradient is off by far more.
            let err = (numeric - g[i]).abs() / numeric.abs().max(g[i].abs()).max(scale);
            assert!(
                err < 1e-3,
                "{name}[{i}]: analytic {} vs numeric {numeric}",
                g[i]
            );
        }
    }
}

/// all-MiniLM-L6-v2 loaded into `small` gives sentence-transformers' embedding. Reference values
/// computed once with PyTorch by `scripts/minilm_reference.py` (hand-written BERT in float64,
/// mean pooling, L2 norm; cross-checked against transformers' BertModel to 1e-7).
#[test]
fn minilm_weights_give_the_reference_sentence_embedding() {
    let file = common::assets().join("minilm/model.safetensors");
    let cfg = RunConfig::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/small.toml"),
    )
    .unwrap();
    let (model, vars) = Model::fresh(&cfg.model, 0.07, 0, &Device::Cpu).unwrap();
    let report = tessera::model::minilm::load_bert_into(&vars, &file).unwrap();
    assert_eq!(
        report.loaded, 101,
        "every BERT tensor but the buffer and pooler"
    );
    let tok = Tokenizer::built_in();
    let reference: [(&str, [f64; 8]); 2] = [
        (
            "A man is eating food.",
            [
                0.033241573,
                0.004406064,
                -0.006276945,
                0.048378713,
                -0.138702247,
                -0.033617409,
                0.101128325,
                -0.054384974,
            ],
        ),
        (
            "Two dogs play in the snow near a red barn.",
            [
                0.044328171,
                -0.072657952,
                0.031264697,
                -0.014272296,
                -0.074352356,
                0.068255951,
                -0.076133497,
                0.047508857,
            ],
        ),
    ];
    let mut embs = Vec::new();
    for (text, want) in reference {
        let ids = tok.encode(text, 64).unwrap().ids;
        let len = ids.len();
        let ids = Tensor::from_vec(ids, (1, len), &Device::Cpu).unwrap();
        let mask = Tensor::ones((1, len), DType::F32, &Device::Cpu).unwrap();
        let e = model
            .sentence_embedding(&ids, &mask)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (k, w) in want.iter().enumerate() {
            assert!(
                (e[k] as f64 - w).abs() < 2e-5,
                "{text:?}[{k}]: {} vs {w}",
                e[k]
            );
        }
        embs.push(e);
    }
    let cos: f32 = embs[0].iter().zip(&embs[1]).map(|(a, b)| a * b).sum();
    assert!((cos as f64 + 0.116833106).abs() < 1e-5, "cosine {cos}");
}

#[test]
fn weights_of_the_wrong_shape_are_named() {
    let file = common::assets().join("minilm/model.safetensors");
    let (_, vars) = Model::fresh(&tiny("mlm").model, 0.07, 0, &Device::Cpu).unwrap();
    let e = tessera::model::minilm::load_bert_into(&vars, &file)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("shape") && e.contains("embeddings"),
        "{e}"
    );
}

/// Back-propagating the fused ITM pass on its own (to halve peak memory) gives the same
/// gradient as one backward pass over everything.
#[test]
fn split_itm_backward_gives_the_full_gradient() {
    let cfg = tiny("mlm,mim,itm,contrastive");
    let batch = builder(&cfg).build(0).unwrap();
    let t = trainer(&cfg);
    let whole = t.losses_with(&t.model, &batch, 0, 0, None).unwrap();
    let g_whole = whole.total.backward().unwrap();
    let split = t.losses_with(&t.model, &batch, 0, 0, Some(1.0)).unwrap();
    assert!((split.value - whole.value).abs() < 1e-5 * whole.value.abs());
    assert!(!split.early_grads.is_empty());
    let g_rest = split.total.backward().unwrap();
    let mut checked = 0;
    for (name, var) in &t.vars {
        let Some(a) = g_whole.get(var.as_tensor()) else {
            continue;
        };
        let b = match (g_rest.get(var.as_tensor()), split.early_grads.get(name)) {
            (Some(x), Some(y)) => (x + y).unwrap(),
            (Some(x), None) => x.clone(),
            (None, Some(y)) => y.clone(),
            (None, None) => panic!("{name} lost its gradient"),
        };
        let diff = (a - &b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let size = a
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff <= 1e-4 * size.max(1e-3), "{name}: {diff} of {size}");
        checked += 1;
    }
    assert!(checked > 20);
}

/// Gradient accumulation averages the micro-batches' gradients: two micro-batches that are the
/// same batch make the same update as that batch alone.
#[test]
fn accumulation_averages_micro_batch_gradients() {
    let mut cfg = tiny("mlm,mim,itm,contrastive");
    let batch = builder(&cfg).build(0).unwrap();
    let mut once = trainer(&cfg);
    let m1 = once.train_step(std::slice::from_ref(&batch)).unwrap();
    cfg.train.accumulate = 2;
    let mut twice = trainer(&cfg);
    let m2 = twice.train_step(&[batch.clone(), batch]).unwrap();
    assert!((metric(&m1, "loss") - metric(&m2, "loss")).abs() < 1e-9);
    assert!(
        (metric(&m1, "grad_norm") - metric(&m2, "grad_norm")).abs()
            < 1e-5 * metric(&m1, "grad_norm")
    );
    for (name, var) in &once.vars {
        let d = (var.as_tensor() - twice.vars[name].as_tensor())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d < 1e-6, "{name} differs by {d}");
    }
}

/// ITM draws its negatives uniformly for `uniform_negative_steps`, then by similarity: only the
/// step decides, so the same batch's ITM loss changes when that stretch ends.
#[test]
fn itm_draws_uniform_negatives_for_its_first_steps() {
    let mut cfg = tiny("itm,contrastive");
    let batch = builder(&cfg).build(0).unwrap();
    let itm_loss = |t: &Trainer, step: u64| {
        metric(
            &t.losses(&t.model, &batch, 0, step)
                .unwrap()
                .metrics()
                .unwrap(),
            "itm_loss",
        )
    };
    let hard = trainer(&cfg);
    assert_eq!(itm_loss(&hard, 0), itm_loss(&hard, 5));
    cfg.objectives.itm.uniform_negative_steps = 5;
    let uniform = trainer(&cfg);
    assert_eq!(itm_loss(&uniform, 0), itm_loss(&uniform, 4));
    assert_ne!(itm_loss(&uniform, 4), itm_loss(&uniform, 5));
}
