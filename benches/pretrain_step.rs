//! Pre-training step rate of `Trainer::train_step` on synthetic but realistic batches, the
//! share of candle's measured GEMM peak it reaches, and the process's peak memory.
//!
//!   cargo bench --bench pretrain_step -- --config small --batch 32 --steps 3 \
//!       --objectives mlm,mim,itm,contrastive --json target/bench/pretrain_step_small.json
//!
//! Options (all optional): `--config tiny|small|base` (models/<config>.toml, default tiny),
//! `--batch B` (32), `--steps N` timed steps (10), `--warmup W` untimed steps first (1),
//! `--objectives LIST` (mlm,mim,itm,contrastive), `--json OUT` (default
//! target/bench/pretrain_step_<config>.json), `--breakdown` (also times the forward pass alone
//! and forward + backward, to split a step into forward / backward / clip + AdamW).
//!
//! Batches are deterministic (SplitMix64, a fixed function of step and sample, mirrored by
//! benches/pretrain_torch.py so both see the same caption lengths and hence the same shapes):
//! captions of 16–30 pieces, `[CLS]`=101 first and `[SEP]`=102 last, word-piece ids drawn from
//! the vocabulary's word range, one word per piece; images are smooth colour gradients plus
//! noise, normalised per channel as `BatchBuilder::patchify` does, with per-patch-normalised MIM
//! targets; every sample has its own image key. Each step gets a fresh batch (its own micro
//! step, so its own masks), as in training.
//!
//! The JSON holds every step time, the median, the analytic FLOPs of each step (formula at
//! `step_flops`), the GEMM peak (best f32 matmul of 1024² and 2048² through candle), the share
//! of that peak reached, and the peak resident set size (VmHWM of /proc/self/status).
//! benches/pretrain_compare.py runs this beside the PyTorch version and tabulates both.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use tessera::model::RunConfig;
use tessera::train::batch::{patchify, step_rng, Batch, Sample, PURPOSE_MASK};
use tessera::train::masking::{build_indices, random_masks};
use tessera::train::Trainer;

/// SplitMix64: deterministic, and trivially mirrored in Python.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The generator of sample `i` of micro-step `step` (the Python bench uses the same seeds).
fn sample_seed(step: u64, i: u64) -> u64 {
    0x7e55_e2a0_0000_0000 ^ (step << 20) ^ i
}

const CLS: u32 = 101;
const SEP: u32 = 102;
/// BERT's uncased vocabulary: ids below this are padding, unused slots, specials, characters.
const FIRST_WORD: u64 = 1996;
const MIN_LEN: u64 = 16;
const MAX_LEN: u64 = 30;

/// Caption ids of sample `i` of `step`: `[CLS]`, 14–28 word pieces, `[SEP]`.
fn caption(step: u64, i: u64, vocab: u64) -> Vec<u32> {
    let mut r = SplitMix(sample_seed(step, i));
    let len = MIN_LEN + r.next() % (MAX_LEN - MIN_LEN + 1);
    let mut ids = vec![CLS];
    ids.extend((0..len - 2).map(|_| (FIRST_WORD + r.next() % (vocab - FIRST_WORD)) as u32));
    ids.push(SEP);
    ids
}

/// An `s`×`s` RGB image: a colour gradient in a random direction plus noise.
fn image(step: u64, i: u64, s: usize) -> Vec<u8> {
    let mut r = SplitMix(sample_seed(step, i) ^ 0x5eed_1a6e);
    let unit = |r: &mut SplitMix| (r.next() >> 11) as f32 / (1u64 << 53) as f32;
    let base: [f32; 3] = [unit(&mut r), unit(&mut r), unit(&mut r)].map(|x| 40.0 + 170.0 * x);
    let (dx, dy) = (unit(&mut r) - 0.5, unit(&mut r) - 0.5);
    let mut out = Vec::with_capacity(s * s * 3);
    for y in 0..s {
        for x in 0..s {
            let g = 80.0 * (dx * x as f32 + dy * y as f32) / s as f32;
            for b in base {
                let noise = (r.next() % 25) as f32 - 12.0;
                out.push((b + g + noise).clamp(0.0, 255.0) as u8);
            }
        }
    }
    out
}

fn make_batch(cfg: &RunConfig, step: u64, b: usize) -> Batch {
    let m = &cfg.model;
    let samples = (0..b as u64)
        .map(|i| {
            let ids = caption(step, i, m.vocab_size as u64);
            let len = ids.len();
            let mut words = vec![None];
            words.extend((0..len as u32 - 2).map(Some));
            words.push(None);
            let (patches, targets) =
                patchify(&image(step, i, m.image_size), m.image_size, m.patch_size);
            Sample {
                ids,
                words,
                patches,
                targets,
                image_key: format!("bench-{step}-{i}"),
                answers: Vec::new(),
            }
        })
        .collect();
    Batch {
        micro_step: step,
        samples,
        groups: Vec::new(),
    }
}

/// Shapes of one step that decide its work.
#[derive(Debug, Clone, Copy, Default)]
struct Shapes {
    b: usize,
    /// Padded caption length.
    lt: usize,
    /// Encoder length of the masked pass (longest visible sequence).
    tv: usize,
    /// Hidden words (MLM rows) and hidden patches (MIM rows) of the batch.
    mlm: usize,
    mim: usize,
}

/// The step's shapes, from the same masking code and generator the trainer uses.
fn shapes(cfg: &RunConfig, batch: &Batch) -> Shapes {
    let o = &cfg.objectives;
    let n = cfg.model.patches();
    let samples = &batch.samples;
    let lt = samples.iter().map(|s| s.ids.len()).max().unwrap_or(1);
    let mut sh = Shapes {
        b: samples.len(),
        lt,
        ..Default::default()
    };
    if o.mlm.enabled || o.mim.enabled || o.alt.enabled {
        let mut rng = step_rng(cfg.train.seed, batch.micro_step, PURPOSE_MASK);
        let spec = random_masks(samples, n, o, &mut rng);
        let ix = build_indices(&spec, samples, lt, n);
        sh.tv = ix.tv;
        sh.mlm = if o.mlm.enabled { ix.mlm_rows.len() } else { 0 };
        sh.mim = if o.mim.enabled { ix.mim_rows.len() } else { 0 };
    }
    sh
}

/// Matmul FLOPs of the forward passes of one training step, × 3 for forward + backward.
///
/// A GEMM of `[m, k] @ [k, n]` is 2·m·k·n FLOPs. With B pairs, D = hidden, F = intermediate,
/// L = layers, V = vocab, N = patches, PD = P·P·3, E = projection_dim, Dd/Ld = decoder width and
/// depth, Lt = padded caption length, Tv = masked encoder length, M/K = hidden words/patches:
///
///   enc(b, T, D, F, L) = L · [ 2·b·T·(4·D² + 2·D·F)      Q, K, V, output; FF up and down
///                              + 2 · 2·b·T²·D ]          Q·Kᵀ and P·V over all heads
///   forward = 2·B·N·PD·D                                 patch projection (shared by passes)
///     [mlm/mim] + enc(B, Tv, D, F, L)                    encoder over the visible tokens
///               + 2·B·Tv·D·Dd + enc(B, Lt+N, Dd, 4·Dd, Ld)   decoder input, decoder
///               + M·(2·Dd·D + 2·D·V)                     MLM transform, tied word logits
///               + K·2·Dd·PD                              MIM pixel head
///     [itm/contrastive] + enc(B, Lt, ...) + enc(B, 1+N, ...)   text-only, image-only passes
///               + 2 · 2·B·D·E                            text and image projections
///     [contrastive] + 2·B²·E                             similarity logits
///     [itm]     + enc(3·B, Lt+N, ...) + 2·3B·D·2         fused pass over 3B pairs, ITM head
///   step = 3 · forward
///
/// The ×3 (backward = 2 × forward) slightly overcounts the patch projection, whose input needs
/// no gradient; embedding gathers, norms, softmax and the optimizer are not GEMMs and not
/// counted. Padded positions are counted: both implementations compute them.
fn step_flops(cfg: &RunConfig, sh: Shapes) -> f64 {
    let m = &cfg.model;
    let o = &cfg.objectives;
    let f = |x: usize| x as f64;
    let (b, d, ff, l) = (f(sh.b), f(m.hidden), f(m.intermediate), f(m.layers));
    let (n, pd, v, e) = (
        f(m.patches()),
        f(m.patch_dim()),
        f(m.vocab_size),
        f(m.projection_dim),
    );
    let (dd, ld) = (f(m.decoder_hidden), f(m.decoder_layers));
    let (lt, tv) = (f(sh.lt), f(sh.tv));
    let enc = |b: f64, t: f64, d: f64, ff: f64, l: f64| {
        l * (2.0 * b * t * (4.0 * d * d + 2.0 * d * ff) + 2.0 * 2.0 * b * t * t * d)
    };
    let mut fwd = 2.0 * b * n * pd * d;
    if o.mlm.enabled || o.mim.enabled || o.alt.enabled {
        fwd += enc(b, tv, d, ff, l);
        fwd += 2.0 * b * tv * d * dd + enc(b, lt + n, dd, 4.0 * dd, ld);
        fwd += f(sh.mlm) * (2.0 * dd * d + 2.0 * d * v);
        fwd += f(sh.mim) * 2.0 * dd * pd;
    }
    if o.itm.enabled || o.contrastive.enabled {
        fwd += enc(b, lt, d, ff, l) + enc(b, 1.0 + n, d, ff, l);
        fwd += 2.0 * 2.0 * b * d * e;
        if o.contrastive.enabled {
            fwd += 2.0 * b * b * e;
        }
        if o.itm.enabled {
            fwd += enc(3.0 * b, lt + n, d, ff, l) + 2.0 * 3.0 * b * d * 2.0;
        }
    }
    3.0 * fwd
}

/// Best f32 GEMM rate of candle on this machine, in GFLOP/s, per size.
fn gemm_peak() -> candle_core::Result<Vec<(usize, f64)>> {
    let dev = Device::Cpu;
    let mut out = Vec::new();
    for (n, reps) in [(1024usize, 10), (2048, 4)] {
        let a = Tensor::randn(0f32, 1.0, (n, n), &dev)?;
        let b = Tensor::randn(0f32, 1.0, (n, n), &dev)?;
        a.matmul(&b)?; // warm-up: pool threads, pages
        let mut best = f64::INFINITY;
        for _ in 0..reps {
            let t = Instant::now();
            let c = a.matmul(&b)?;
            best = best.min(t.elapsed().as_secs_f64());
            drop(c);
        }
        out.push((n, 2.0 * (n as f64).powi(3) / best / 1e9));
    }
    Ok(out)
}

/// Peak resident set size of this process (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let k = v.len();
    if k == 0 {
        f64::NAN
    } else if k % 2 == 1 {
        v[k / 2]
    } else {
        (v[k / 2 - 1] + v[k / 2]) / 2.0
    }
}

struct Args {
    config: String,
    batch: usize,
    steps: usize,
    warmup: usize,
    objectives: String,
    json: Option<PathBuf>,
    breakdown: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        config: "tiny".into(),
        batch: 32,
        steps: 10,
        warmup: 1,
        objectives: "mlm,mim,itm,contrastive".into(),
        json: None,
        breakdown: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut val = |name: &str| it.next().unwrap_or_else(|| panic!("{name} needs a value"));
        match k.as_str() {
            "--config" => a.config = val("--config"),
            "--batch" => a.batch = val("--batch").parse().expect("--batch N"),
            "--steps" => a.steps = val("--steps").parse().expect("--steps N"),
            "--warmup" => a.warmup = val("--warmup").parse().expect("--warmup N"),
            "--objectives" => a.objectives = val("--objectives"),
            "--json" => a.json = Some(PathBuf::from(val("--json"))),
            "--breakdown" => a.breakdown = true,
            "--bench" => {} // cargo bench passes it to harness-less benches
            other => panic!("unknown argument {other:?}"),
        }
    }
    assert!(a.steps > 0, "--steps must be positive");
    a
}

fn main() {
    // As the CLI does before training: freed activations stay in the process.
    tessera::train::keep_freed_memory();
    let args = parse_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cfg = RunConfig::load(&root.join(format!("models/{}.toml", args.config)))
        .expect("model config loads");
    cfg.objectives
        .select(&args.objectives)
        .expect("known objectives");
    cfg.train.batch = args.batch;
    cfg.validate().expect("valid config");

    let gemm = gemm_peak().expect("GEMM peak");
    let peak = gemm.iter().map(|g| g.1).fold(0.0, f64::max);

    let specials = tessera::text::Tokenizer::built_in().specials;
    let mut trainer = Trainer::new(cfg.clone(), Device::Cpu, specials).expect("trainer");
    let params: usize = trainer.vars.values().map(|v| v.elem_count()).sum();
    let rss_model = peak_rss_mib();

    let total = args.warmup + args.steps;
    let mut times = Vec::new();
    let mut flops = Vec::new();
    let mut last = Vec::new();
    let mut step_shapes = Vec::new();
    for s in 0..total {
        let batch = make_batch(&cfg, s as u64, args.batch);
        let sh = shapes(&cfg, &batch);
        let t = Instant::now();
        last = trainer.train_step(&[batch]).expect("train step");
        let dt = t.elapsed().as_secs_f64();
        let timed = s >= args.warmup;
        eprintln!(
            "{} step {s}: {dt:.3} s (lt {}, tv {}, mlm {}, mim {})",
            if timed { "timed " } else { "warm-up" },
            sh.lt,
            sh.tv,
            sh.mlm,
            sh.mim
        );
        if timed {
            times.push(dt);
            flops.push(step_flops(&cfg, sh));
            step_shapes.push(sh);
        }
    }
    let med = median(&times);
    let mean_flops = flops.iter().sum::<f64>() / flops.len() as f64;
    // Rate of each step's own FLOPs over its own time, then the median: robust to one slow step.
    let rates: Vec<f64> = flops.iter().zip(&times).map(|(f, t)| f / t / 1e9).collect();
    let achieved = median(&rates);
    let share = achieved / peak;

    // Optional split of a step: forward alone, forward + backward.
    let mut breakdown = serde_json::Value::Null;
    if args.breakdown {
        let (mut fw, mut fb) = (Vec::new(), Vec::new());
        for s in 0..args.steps.min(3) {
            let batch = make_batch(&cfg, (total + s) as u64, args.batch);
            let seed = cfg.train.seed;
            let t = Instant::now();
            let l = trainer
                .losses(&trainer.model, &batch, seed, trainer.step)
                .expect("losses");
            fw.push(t.elapsed().as_secs_f64());
            drop(l);
            let t = Instant::now();
            let l = trainer
                .losses(&trainer.model, &batch, seed, trainer.step)
                .expect("losses");
            let g = l.total.backward().expect("backward");
            fb.push(t.elapsed().as_secs_f64());
            drop(g);
        }
        let (f, fbm) = (median(&fw), median(&fb));
        eprintln!(
            "breakdown: forward {f:.3} s, backward {:.3} s, clip + AdamW + rest {:.3} s",
            fbm - f,
            med - fbm
        );
        breakdown = serde_json::json!({
            "forward_s": f, "forward_backward_s": fbm,
            "backward_s": fbm - f, "optimizer_and_rest_s": med - fbm,
        });
    }
    let rss = peak_rss_mib();

    let sh = step_shapes[0];
    println!(
        "\ntessera pretrain_step: {} (params {:.1} M), batch {}, objectives {}, {} threads",
        args.config,
        params as f64 / 1e6,
        args.batch,
        cfg.objectives.enabled().join(","),
        candle_core::utils::get_num_threads()
    );
    println!("  {:<28} {:>12}", "median s/step", format!("{med:.3}"));
    println!("  {:<28} {:>12}", "steps/s", format!("{:.3}", 1.0 / med));
    println!(
        "  {:<28} {:>12}",
        "GFLOP/step (matmul, ×3)",
        format!("{:.1}", mean_flops / 1e9)
    );
    println!(
        "  {:<28} {:>12}",
        "achieved GFLOP/s",
        format!("{achieved:.1}")
    );
    for (n, g) in &gemm {
        println!(
            "  {:<28} {:>12}",
            format!("GEMM {n}³ GFLOP/s"),
            format!("{g:.1}")
        );
    }
    println!(
        "  {:<28} {:>12}",
        "share of GEMM peak",
        format!("{:.1}%", 100.0 * share)
    );
    println!("  {:<28} {:>12}", "peak RSS MiB", format!("{rss:.0}"));
    println!(
        "  {:<28} {:>12}",
        "first timed lt/tv/mlm/mim",
        format!("{}/{}/{}/{}", sh.lt, sh.tv, sh.mlm, sh.mim)
    );

    let report = serde_json::json!({
        "impl": "tessera",
        "config": args.config,
        "batch": args.batch,
        "objectives": cfg.objectives.enabled(),
        "threads": candle_core::utils::get_num_threads(),
        "params": params,
        "warmup_steps": args.warmup,
        "step_seconds": times,
        "median_s": med,
        "steps_per_s": 1.0 / med,
        "step_flops": flops,
        "mean_step_gflop": mean_flops / 1e9,
        "achieved_gflops": achieved,
        "gemm_gflops": gemm.iter().map(|(n, g)| (n.to_string(), *g)).collect::<std::collections::BTreeMap<_, _>>(),
        "gemm_peak_gflops": peak,
        "peak_share": share,
        "peak_rss_mib": rss,
        "rss_after_init_mib": rss_model,
        "shapes": step_shapes.iter().map(|s| serde_json::json!({
            "lt": s.lt, "tv": s.tv, "mlm_rows": s.mlm, "mim_rows": s.mim})).collect::<Vec<_>>(),
        "last_metrics": last.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        "breakdown": breakdown,
    });
    let out = args
        .json
        .unwrap_or_else(|| root.join(format!("target/bench/pretrain_step_{}.json", args.config)));
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).expect("output folder");
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report).unwrap()).expect("write json");
    println!("  wrote {}", out.display());
}
