#!/usr/bin/env python3
"""Tessera's pre-training step written in PyTorch (CPU), for benches/pretrain_compare.py.

The same architecture as src/model (a BERT-style post-LN encoder over [CLS] + word pieces +
image patches; M3AE decoder; MLM head tied to the word embeddings; MIM pixel head; ITM head on
[CLS] of a fused pass over 3B pairs with hard negatives; contrastive InfoNCE between the
text-only and image-only passes with a learned logit scale), the same shapes (read from the
same models/*.toml), the same objectives and masking ratios, and the same synthetic batches as
benches/pretrain_step.rs: caption lengths and ids come from the same SplitMix64 seeds, so every
step has the same padded length, encoder length and numbers of hidden words and patches;
pixels are drawn by the same recipe from numpy's generator (same sizes, not the same values).
AdamW(lr 1e-4, betas 0.9/0.98, eps 1e-8, weight decay 0.05 on matrices) and clip_grad_norm 1.0.

Run with the venv of scripts/setup-torch.sh and all cores:

  OMP_NUM_THREADS=$(nproc) ~/.cache/tessera/torch-venv/bin/python benches/pretrain_torch.py \\
      --config small --batch 32 --steps 3 --json target/bench/pretrain_torch_small.json

Prints a table and writes JSON: step times, median, analytic FLOPs per step (the formula of
pretrain_step.rs), torch.matmul GEMM peak (1024², 2048²), share of it reached, peak RSS (VmHWM).
"""

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count()))

import tomllib  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MASK64 = (1 << 64) - 1
CLS, SEP, PAD = 101, 102, 0
FIRST_WORD, MIN_LEN, MAX_LEN = 1996, 16, 30
PIXEL_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
PIXEL_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class SplitMix:
    def __init__(self, seed):
        self.s = seed & MASK64

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK64
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)


def sample_seed(step, i):
    return (0x7E55E2A000000000 ^ (step << 20) ^ i) & MASK64


def caption(step, i, vocab):
    r = SplitMix(sample_seed(step, i))
    n = MIN_LEN + r.next() % (MAX_LEN - MIN_LEN + 1)
    return [CLS] + [FIRST_WORD + r.next() % (vocab - FIRST_WORD) for _ in range(n - 2)] + [SEP]


def image(step, i, s):
    """A colour gradient in a random direction plus noise, as pretrain_step.rs draws it."""
    g = np.random.default_rng(sample_seed(step, i) ^ 0x5EED1A6E)
    base = 40.0 + 170.0 * g.random(3)
    dx, dy = g.random(2) - 0.5
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float64)
    grad = 80.0 * (dx * xx + dy * yy) / s
    noise = g.integers(0, 25, size=(s, s, 3)) - 12.0
    return np.clip(base[None, None, :] + grad[:, :, None] + noise, 0, 255).astype(np.uint8)


def patchify(rgb, p):
    """[N, P·P·3] input (normalised per channel) and target (normalised per patch)."""
    s = rgb.shape[0]
    g = s // p
    v = rgb.astype(np.float32) / 255.0
    v = v.reshape(g, p, g, p, 3).transpose(0, 2, 1, 3, 4)  # gy, gx, py, px, c
    inp = ((v - PIXEL_MEAN) / PIXEL_STD).reshape(g * g, p * p * 3)
    t = v.reshape(g * g, p * p * 3)
    t = (t - t.mean(1, keepdims=True)) / np.sqrt(t.var(1, keepdims=True) + 1e-6)
    return np.ascontiguousarray(inp, dtype=np.float32), np.ascontiguousarray(t, dtype=np.float32)


def make_batch(m, step, b):
    out = []
    for i in range(b):
        ids = caption(step, i, m["vocab_size"])
        inp, tgt = patchify(image(step, i, m["image_size"]), m["patch_size"])
        out.append({"ids": ids, "patches": inp, "targets": tgt, "key": f"bench-{step}-{i}"})
    return out


def hidden_count(n, ratio, keep_one):
    """As src/train/masking.rs: round half away from zero, at least one, never all patches."""
    if n == 0:
        return 0
    k = max(int(math.floor(n * ratio + 0.5)), 1)
    return min(k, n - 1) if keep_one else min(k, n)


# ---------------------------------------------------------------------------------------------
# The model (src/model/mod.rs, src/model/layers.rs)


def linear(i, o):
    layer = nn.Linear(i, o)
    nn.init.normal_(layer.weight, std=0.02)
    nn.init.zeros_(layer.bias)
    return layer


def table(*shape):
    return nn.Parameter(torch.randn(*shape) * 0.02)


def attention_bias(mask):
    b, t = mask.shape
    return ((mask - 1.0) * 1e4).view(b, 1, 1, t)


class Block(nn.Module):
    """A post-LN BERT layer: attention, add & norm, erf-GELU feed-forward, add & norm."""

    def __init__(self, d, heads, ff, eps):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value, self.out = (linear(d, d) for _ in range(4))
        self.attention_norm = nn.LayerNorm(d, eps=eps)
        self.intermediate = linear(d, ff)
        self.output = linear(ff, d)
        self.output_norm = nn.LayerNorm(d, eps=eps)

    def forward(self, x, bias):
        b, t, d = x.shape
        h, dh = self.heads, d // self.heads

        def split(y):
            return y.view(b, t, h, dh).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(dh) + bias
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        x = self.attention_norm(x + self.out(ctx))
        return self.output_norm(x + self.output(F.gelu(self.intermediate(x))))


class Model(nn.Module):
    def __init__(self, m, init_temperature=0.07):
        super().__init__()
        d, dd, eps = m["hidden"], m["decoder_hidden"], m.get("layer_norm_eps", 1e-12)
        self.d, self.dd = d, dd
        self.g = m["image_size"] // m["patch_size"]
        self.n = self.g * self.g
        pd = m["patch_size"] ** 2 * 3
        self.word_embeddings = table(m["vocab_size"], d)
        self.position_embeddings = table(m["max_positions"], d)
        self.token_type_embeddings = table(2, d)
        self.text_norm = nn.LayerNorm(d, eps=eps)
        self.patch = linear(pd, d)
        self.row_position = table(self.g, d)
        self.col_position = table(self.g, d)
        self.image_norm = nn.LayerNorm(d, eps=eps)
        self.layers = nn.ModuleList(
            Block(d, m["heads"], m["intermediate"], eps) for _ in range(m["layers"])
        )
        # decoder
        self.dec_input = linear(d, dd)
        self.mask_token = table(dd)
        self.dec_text_position = table(m["max_text_len"], dd)
        self.dec_image_position = table(self.n, dd)
        self.dec_token_type = table(2, dd)
        self.dec_layers = nn.ModuleList(
            Block(dd, m["decoder_heads"], 4 * dd, eps) for _ in range(m["decoder_layers"])
        )
        self.dec_norm = nn.LayerNorm(dd, eps=eps)
        self.pixel_head = linear(dd, pd)
        self.word_transform = linear(dd, d)
        self.word_norm = nn.LayerNorm(d, eps=eps)
        self.word_bias = nn.Parameter(torch.zeros(m["vocab_size"]))
        # heads
        self.itm_head = linear(d, 2)
        self.group_head = linear(d, 2)  # unused here, as in Tessera when grouped ITM is off
        self.text_projection = linear(d, m["projection_dim"])
        self.image_projection = linear(d, m["projection_dim"])
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))

    def embed_text(self, ids):
        lt = ids.shape[1]
        x = F.embedding(ids, self.word_embeddings)
        x = x + self.position_embeddings[:lt] + self.token_type_embeddings[0]
        return self.text_norm(x)

    def embed_image(self, patches):
        pos = (self.row_position[:, None, :] + self.col_position[None, :, :]).reshape(self.n, -1)
        return self.image_norm(self.patch(patches) + pos + self.token_type_embeddings[1])

    def encode(self, x, key_mask):
        bias = attention_bias(key_mask)
        for layer in self.layers:
            x = layer(x, bias)
        return x

    def decode(self, enc, restore, lt, key_mask):
        b, tv, _ = enc.shape
        visible = self.dec_input(enc).reshape(b * tv, self.dd)
        tab = torch.cat([visible, self.mask_token[None, :]], 0)
        x = tab[restore].view(b, lt + self.n, self.dd)
        pos = torch.cat(
            [
                self.dec_text_position[:lt] + self.dec_token_type[0],
                self.dec_image_position + self.dec_token_type[1],
            ],
            0,
        )
        h = x + pos
        bias = attention_bias(key_mask)
        for layer in self.dec_layers:
            h = layer(h, bias)
        return self.dec_norm(h)

    def mlm_logits(self, rows):
        h = self.word_norm(F.gelu(self.word_transform(rows)))
        return h @ self.word_embeddings.t() + self.word_bias

    def contrastive_scale(self):
        return self.logit_scale.clamp(0.0, math.log(100.0)).exp()


# ---------------------------------------------------------------------------------------------
# Masking and index tables (src/train/masking.rs) and the losses (src/train/trainer.rs)


def build_indices(samples, lt, n, mlm_ratio, mim_ratio, rng):
    b, full = len(samples), lt + n
    text_hidden, image_hidden, visible = [], [], []
    for s in samples:
        ln = len(s["ids"])
        cand = list(range(1, max(ln - 1, 1)))
        th = set(rng.sample(cand, hidden_count(len(cand), mlm_ratio, False)))
        ih = set(rng.sample(range(n), hidden_count(n, mim_ratio, True)))
        text_hidden.append(th)
        image_hidden.append(ih)
        visible.append([p for p in range(ln) if p not in th] + [lt + p for p in range(n) if p not in ih])
    tv = max(len(v) for v in visible)
    enc_rows, enc_mask, restore, dec_mask = [], [], [], []
    mlm_rows, mlm_targets, mim_rows, mim_targets = [], [], [], []
    mask_row = b * tv
    for i, vis in enumerate(visible):
        base = i * full
        slot = [mask_row] * full
        for j in range(tv):
            if j < len(vis):
                enc_rows.append(base + vis[j])
                enc_mask.append(1.0)
                slot[vis[j]] = i * tv + j
            else:
                enc_rows.append(base)
                enc_mask.append(0.0)
        ln = len(samples[i]["ids"])
        restore.extend(slot)
        dec_mask.extend(0.0 if ln <= p < lt else 1.0 for p in range(full))
        for p in sorted(text_hidden[i]):
            mlm_rows.append(base + p)
            mlm_targets.append(samples[i]["ids"][p])
        for p in sorted(image_hidden[i]):
            mim_rows.append(base + lt + p)
            mim_targets.append(i * n + p)
    t = lambda v: torch.tensor(v, dtype=torch.long)  # noqa: E731
    return {
        "tv": tv,
        "enc_rows": t(enc_rows),
        "enc_mask": torch.tensor(enc_mask).view(b, tv),
        "restore": t(restore),
        "dec_mask": torch.tensor(dec_mask).view(b, full),
        "mlm_rows": t(mlm_rows),
        "mlm_targets": t(mlm_targets),
        "mim_rows": t(mim_rows),
        "mim_targets": t(mim_targets),
    }


def draw_negatives(sim, keys, temperature, gen):
    """For each row, a column not sharing the row's image, with probability ∝ exp(sim / τ)."""
    b = sim.shape[0]
    same = torch.tensor([[keys[i] == keys[j] for j in range(b)] for i in range(b)])
    w = (sim / temperature).masked_fill(same, float("-inf")).softmax(-1)
    return torch.multinomial(w, 1, generator=gen).squeeze(1)


def losses(model, samples, objectives, m, rng, gen):
    b, n = len(samples), model.n
    lt = max(len(s["ids"]) for s in samples)
    ids = torch.tensor([s["ids"] + [PAD] * (lt - len(s["ids"])) for s in samples])
    text_mask = torch.tensor([[1.0] * len(s["ids"]) + [0.0] * (lt - len(s["ids"])) for s in samples])
    patches = torch.from_numpy(np.stack([s["patches"] for s in samples]))
    e_text = model.embed_text(ids)
    e_img = model.embed_image(patches)
    parts, figures, shapes = {}, {}, {"lt": lt}

    if "mlm" in objectives or "mim" in objectives:
        ix = build_indices(samples, lt, n, 0.15, 0.75, rng)
        shapes.update(tv=ix["tv"], mlm_rows=len(ix["mlm_rows"]), mim_rows=len(ix["mim_rows"]))
        full = torch.cat([e_text, e_img], 1).reshape(b * (lt + n), model.d)
        enc_in = full[ix["enc_rows"]].view(b, ix["tv"], model.d)
        h = model.encode(enc_in, ix["enc_mask"])
        dec = model.decode(h, ix["restore"], lt, ix["dec_mask"]).reshape(b * (lt + n), model.dd)
        if "mlm" in objectives:
            logits = model.mlm_logits(dec[ix["mlm_rows"]])
            parts["mlm"] = F.cross_entropy(logits, ix["mlm_targets"])
            figures["mlm_acc"] = (logits.argmax(-1) == ix["mlm_targets"]).float().mean().item()
        if "mim" in objectives:
            targets = torch.from_numpy(np.concatenate([s["targets"] for s in samples]))
            pred = model.pixel_head(dec[ix["mim_rows"]])
            parts["mim"] = F.mse_loss(pred, targets[ix["mim_targets"]])
    else:
        shapes.update(tv=0, mlm_rows=0, mim_rows=0)

    if "contrastive" in objectives or "itm" in objectives:
        ht = model.encode(e_text, text_mask)
        img_in = torch.cat([e_text[:, :1], e_img], 1)
        hi = model.encode(img_in, torch.ones(b, 1 + n))
        t_emb = F.normalize(model.text_projection(ht[:, 0]), dim=-1, eps=1e-12)
        i_emb = F.normalize(model.image_projection(hi[:, 0]), dim=-1, eps=1e-12)
        scale = model.contrastive_scale()
        if "contrastive" in objectives:
            logits = t_emb @ i_emb.t() * scale
            tgt = torch.arange(b)
            parts["contrastive"] = (F.cross_entropy(logits, tgt) + F.cross_entropy(logits.t(), tgt)) / 2
        if "itm" in objectives:
            keys = [s["key"] for s in samples]
            with torch.no_grad():
                sim = t_emb @ i_emb.t()
                temp = 1.0 / scale.item()
                neg_img = draw_negatives(sim, keys, temp, gen)
                neg_txt = draw_negatives(sim.t(), keys, temp, gen)
            all_ = torch.arange(b)
            t_idx = torch.cat([all_, all_, neg_txt])
            i_idx = torch.cat([all_, neg_img, all_])
            x = torch.cat([e_text[t_idx], e_img[i_idx]], 1)
            mask = torch.cat([text_mask[t_idx], torch.ones(3 * b, n)], 1)
            h = model.encode(x, mask)
            logits = model.itm_head(h[:, 0])
            labels = (torch.arange(3 * b) < b).long()
            parts["itm"] = F.cross_entropy(logits, labels)
            figures["itm_acc"] = (logits.argmax(-1) == labels).float().mean().item()

    total = sum(parts.values())
    return total, parts, figures, shapes


def train_step(model, opt, samples, objectives, m, rng, gen):
    opt.zero_grad(set_to_none=True)
    total, parts, figures, shapes = losses(model, samples, objectives, m, rng, gen)
    metrics = {"loss": total.item(), **{f"{k}_loss": v.item() for k, v in parts.items()}, **figures}
    total.backward()
    metrics["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
    opt.step()
    return metrics, shapes


def step_flops(m, objectives, b, sh):
    """The formula of benches/pretrain_step.rs `step_flops`: matmul FLOPs of the forward × 3."""
    d, ff, L = m["hidden"], m["intermediate"], m["layers"]
    g = m["image_size"] // m["patch_size"]
    n, pd, v, e = g * g, m["patch_size"] ** 2 * 3, m["vocab_size"], m["projection_dim"]
    dd, ld = m["decoder_hidden"], m["decoder_layers"]
    lt, tv = sh["lt"], sh["tv"]

    def enc(b, t, d, ff, L):
        return L * (2 * b * t * (4 * d * d + 2 * d * ff) + 2 * 2 * b * t * t * d)

    fwd = 2 * b * n * pd * d
    if "mlm" in objectives or "mim" in objectives:
        fwd += enc(b, tv, d, ff, L)
        fwd += 2 * b * tv * d * dd + enc(b, lt + n, dd, 4 * dd, ld)
        fwd += sh["mlm_rows"] * (2 * dd * d + 2 * d * v)
        fwd += sh["mim_rows"] * 2 * dd * pd
    if "itm" in objectives or "contrastive" in objectives:
        fwd += enc(b, lt, d, ff, L) + enc(b, 1 + n, d, ff, L)
        fwd += 2 * 2 * b * d * e
        if "contrastive" in objectives:
            fwd += 2 * b * b * e
        if "itm" in objectives:
            fwd += enc(3 * b, lt + n, d, ff, L) + 2 * 3 * b * d * 2
    return 3.0 * fwd


def gemm_peak():
    out = {}
    with torch.no_grad():
        for n, reps in ((1024, 10), (2048, 4)):
            a, b = torch.randn(n, n), torch.randn(n, n)
            a @ b
            best = math.inf
            for _ in range(reps):
                t = time.perf_counter()
                a @ b
                best = min(best, time.perf_counter() - t)
            out[str(n)] = 2 * n**3 / best / 1e9
    return out


def peak_rss_mib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--objectives", default="mlm,mim,itm,contrastive")
    ap.add_argument("--json")
    ap.add_argument("--breakdown", action="store_true")
    a = ap.parse_args()
    objectives = [o.strip() for o in a.objectives.split(",") if o.strip()]
    unknown = set(objectives) - {"mlm", "mim", "itm", "contrastive"}
    if unknown:
        sys.exit(f"pretrain_torch.py implements mlm, mim, itm, contrastive; not {sorted(unknown)}")

    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    m = tomllib.loads((ROOT / "models" / f"{a.config}.toml").read_text())["model"]
    gemm = gemm_peak()
    peak = max(gemm.values())

    model = Model(m)
    params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-4, betas=(0.9, 0.98), eps=1e-8,
    )
    import random

    rng = random.Random(0)
    gen = torch.Generator().manual_seed(0)
    rss_init = peak_rss_mib()

    times, flops, shapes_all, metrics = [], [], [], {}
    total = a.warmup + a.steps
    for s in range(total):
        samples = make_batch(m, s, a.batch)
        t = time.perf_counter()
        metrics, sh = train_step(model, opt, samples, objectives, m, rng, gen)
        dt = time.perf_counter() - t
        timed = s >= a.warmup
        print(f"{'timed ' if timed else 'warm-up'} step {s}: {dt:.3f} s (lt {sh['lt']}, tv {sh['tv']}, "
              f"mlm {sh['mlm_rows']}, mim {sh['mim_rows']})", file=sys.stderr)
        if timed:
            times.append(dt)
            flops.append(step_flops(m, objectives, a.batch, sh))
            shapes_all.append(sh)
    med = statistics.median(times)
    mean_flops = sum(flops) / len(flops)
    achieved = statistics.median(f / t / 1e9 for f, t in zip(flops, times))

    breakdown = None
    if a.breakdown:
        fw, fb = [], []
        for s in range(min(a.steps, 3)):
            samples = make_batch(m, total + s, a.batch)
            t = time.perf_counter()
            tot, *_ = losses(model, samples, objectives, m, rng, gen)
            tot.item()
            fw.append(time.perf_counter() - t)
            del tot
            opt.zero_grad(set_to_none=True)
            t = time.perf_counter()
            tot, *_ = losses(model, samples, objectives, m, rng, gen)
            tot.backward()
            fb.append(time.perf_counter() - t)
            opt.zero_grad(set_to_none=True)
        f, fbm = statistics.median(fw), statistics.median(fb)
        print(f"breakdown: forward {f:.3f} s, backward {fbm - f:.3f} s, clip + AdamW + rest {med - fbm:.3f} s",
              file=sys.stderr)
        breakdown = {"forward_s": f, "forward_backward_s": fbm, "backward_s": fbm - f,
                     "optimizer_and_rest_s": med - fbm}
    rss = peak_rss_mib()

    sh = shapes_all[0]
    print(f"\ntorch pretrain_step: {a.config} (params {params / 1e6:.1f} M), batch {a.batch}, "
          f"objectives {','.join(objectives)}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    rows = [("median s/step", f"{med:.3f}"), ("steps/s", f"{1 / med:.3f}"),
            ("GFLOP/step (matmul, ×3)", f"{mean_flops / 1e9:.1f}"), ("achieved GFLOP/s", f"{achieved:.1f}")]
    rows += [(f"GEMM {k}³ GFLOP/s", f"{v:.1f}") for k, v in gemm.items()]
    rows += [("share of GEMM peak", f"{100 * achieved / peak:.1f}%"), ("peak RSS MiB", f"{rss:.0f}"),
             ("first timed lt/tv/mlm/mim", f"{sh['lt']}/{sh['tv']}/{sh['mlm_rows']}/{sh['mim_rows']}")]
    for k, v in rows:
        print(f"  {k:<28} {v:>12}")
    report = {
        "impl": "torch", "torch_version": torch.__version__, "config": a.config, "batch": a.batch,
        "objectives": objectives, "threads": torch.get_num_threads(), "params": params,
        "warmup_steps": a.warmup, "step_seconds": times, "median_s": med, "steps_per_s": 1 / med,
        "step_flops": flops, "mean_step_gflop": mean_flops / 1e9, "achieved_gflops": achieved,
        "gemm_gflops": gemm, "gemm_peak_gflops": peak, "peak_share": achieved / peak,
        "peak_rss_mib": rss, "rss_after_init_mib": rss_init, "shapes": shapes_all,
        "last_metrics": metrics, "breakdown": breakdown,
    }
    out = Path(a.json) if a.json else ROOT / "target" / "bench" / f"pretrain_torch_{a.config}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"  wrote {out}")


if __name__ == "__main__":
    main()
