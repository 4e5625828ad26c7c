# A PyTorch replica of Tessera's easy-VQA fine-tuning from scratch (post-LN BERT single stream,
# hMLP patch stem, row/col positions, ViLT VQA head, softmax CE, AdamW, warmup + cosine), to
# find which change of recipe reaches 99 % before spending CPU hours on it; meant for a GPU.
#   python3 benches/easyvqa_replica.py NAME...   (NAMEs: the variants in V below)
# EASY_VQA=the easy-vqa data folder (default: the asset cache's), OUT=where results go
# (all.jsonl: one line per evaluation and per finished variant), SMOKE=1: 30 steps each.
import json, math, os, sys, time, random
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F
from PIL import Image

D = os.environ.get("EASY_VQA", os.path.expanduser("~/.cache/tessera/assets/easy-vqa/data"))
dev = "cuda" if torch.cuda.is_available() else "cpu"
torch.backends.cuda.matmul.allow_tf32 = True


def load(split):
    qs = json.load(open(f"{D}/{split}/questions.json"))
    ids = sorted({q[2] for q in qs})
    imgs = {}
    for i in ids:
        imgs[i] = np.asarray(Image.open(f"{D}/{split}/images/{i}.png").convert("RGB"))
    return qs, imgs


answers = [l.strip() for l in open(f"{D}/answers.txt") if l.strip()]
A = {a: i for i, a in enumerate(answers)}
trq, trimg = load("train")
teq, teimg = load("test")
words = sorted({w for q in trq + teq for w in q[0].replace("?", " ?").split()})
W = {w: i + 3 for i, w in enumerate(words)}  # 0 pad, 1 cls, 2 sep
T = 24


def enc(q):
    t = [1] + [W[w] for w in q.replace("?", " ?").split()] + [2]
    return t + [0] * (T - len(t))


def tensors(qs, imgs):
    keys = sorted(imgs)
    kidx = {k: j for j, k in enumerate(keys)}
    im = torch.tensor(np.stack([imgs[k] for k in keys]), dtype=torch.uint8)
    tok = torch.tensor([enc(q[0]) for q in qs])
    ans = torch.tensor([A[q[1]] for q in qs])
    iid = torch.tensor([kidx[q[2]] for q in qs])
    return im.to(dev), tok.to(dev), ans.to(dev), iid.to(dev)


TR = tensors(trq, trimg)
TE = tensors(teq, teimg)
MEAN = torch.tensor([0.485, 0.456, 0.406], device=dev).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225], device=dev).view(1, 3, 1, 1)


class Block(nn.Module):
    def __init__(s, d, h, ff, pre):
        super().__init__()
        s.att = nn.MultiheadAttention(d, h, batch_first=True)
        s.n1, s.n2 = nn.LayerNorm(d, eps=1e-12), nn.LayerNorm(d, eps=1e-12)
        s.f1, s.f2 = nn.Linear(d, ff), nn.Linear(ff, d)
        s.pre = pre

    def forward(s, x, pad):
        if s.pre:
            y = s.n1(x)
            x = x + s.att(y, y, y, key_padding_mask=pad, need_weights=False)[0]
            return x + s.f2(F.gelu(s.f1(s.n2(x))))
        x = s.n1(x + s.att(x, x, x, key_padding_mask=pad, need_weights=False)[0])
        return s.n2(x + s.f2(F.gelu(s.f1(x))))


class Net(nn.Module):
    def __init__(s, c):
        super().__init__()
        d, p, cell, ch = c["hidden"], c["patch"], c["cell"], c["ch"]
        s.c = c
        g = 64 // p
        s.wemb = nn.Embedding(len(W) + 3, d)
        s.pos = nn.Parameter(torch.randn(T, d) * 0.02)
        s.typ = nn.Parameter(torch.randn(2, d) * 0.02)
        s.tn = nn.LayerNorm(d, eps=1e-12)
        if cell:
            s.cell = nn.Linear(cell * cell * 3, ch)
            s.celln = nn.LayerNorm(ch, eps=1e-12)
            s.patch = nn.Linear((p // cell) ** 2 * ch, d)
        else:
            s.patch = nn.Linear(p * p * 3, d)
        s.row = nn.Parameter(torch.randn(g, d) * 0.02)
        s.col = nn.Parameter(torch.randn(g, d) * 0.02)
        s.imn = nn.LayerNorm(d, eps=1e-12)
        s.blocks = nn.ModuleList(
            [Block(d, c["heads"], 4 * d, c.get("pre", False)) for _ in range(c["layers"])]
        )
        s.fn = nn.LayerNorm(d) if c.get("pre", False) else nn.Identity()
        s.h1, s.hn, s.h2 = nn.Linear(d, 2 * d), nn.LayerNorm(2 * d), nn.Linear(2 * d, len(answers))
        for m in s.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=0.02)

    def patches(s, x):  # x [B,3,64,64] normalised -> [B, g*g, d]
        c = s.c
        p, cell = c["patch"], c["cell"]
        B = x.shape[0]
        g = 64 // p
        if cell:
            k = p // cell
            h = x.reshape(B, 3, g, k, cell, g, k, cell).permute(0, 2, 5, 3, 6, 4, 7, 1)
            h = h.reshape(B, g * g, k * k, cell * cell * 3)
            h = F.gelu(s.celln(s.cell(h)))
            return s.patch(h.reshape(B, g * g, -1))
        h = x.reshape(B, 3, g, p, g, p).permute(0, 2, 4, 3, 5, 1).reshape(B, g * g, p * p * 3)
        return s.patch(h)

    def forward(s, img, tok):
        x = (img.permute(0, 3, 1, 2).float() / 255 - MEAN) / STD
        g = 64 // s.c["patch"]
        pe = (s.row[:, None, :] + s.col[None, :, :]).reshape(g * g, -1)
        iv = s.imn(s.patches(x) + pe + s.typ[1])
        tv = s.tn(s.wemb(tok) + s.pos + s.typ[0])
        h = torch.cat([tv, iv], 1)
        pad = torch.cat([tok == 0, torch.zeros(tok.shape[0], iv.shape[1], dtype=torch.bool, device=dev)], 1)
        for b in s.blocks:
            h = b(h, pad)
        cls = s.fn(h[:, 0])
        return s.h2(F.gelu(s.hn(s.h1(cls))))


def dihedral(img):  # per-sample random element of D4 on [B,H,W,3]
    t = torch.randint(0, 8, (img.shape[0],), device=dev)
    out = img.clone()
    for k in range(8):
        sel = t == k
        if sel.any():
            y = img[sel]
            if k >= 4:
                y = y.flip(2)
            out[sel] = torch.rot90(y, k % 4, (1, 2))
    return out


def evaluate(net):
    net.eval()
    ok = 0
    with torch.no_grad():
        for i in range(0, len(TE[1]), 2048):
            tok, ans, iid = TE[1][i : i + 2048], TE[2][i : i + 2048], TE[3][i : i + 2048]
            ok += (net(TE[0][iid], tok).argmax(-1) == ans).sum().item()
    net.train()
    return ok / len(TE[1])


def run(c):
    torch.manual_seed(c.get("seed", 0))
    net = Net(c).to(dev)
    steps, bs, lr = c["steps"], c["batch"], c["lr"]
    decay = [p for n, p in net.named_parameters() if p.dim() >= 2 and "pos" not in n and "row" not in n and "col" not in n]
    rest = [p for n, p in net.named_parameters() if not (p.dim() >= 2 and "pos" not in n and "row" not in n and "col" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": c.get("wd", 0.01)}, {"params": rest, "weight_decay": 0}], lr=lr, betas=(0.9, 0.999), eps=1e-8)
    warm, minlr = c.get("warmup", 200), c.get("min_lr", 1e-5)
    n = len(TR[1])
    curve = []
    t0 = time.time()
    for step in range(steps):
        if step < warm:
            cur = lr * (step + 1) / warm
        else:
            pr = (step - warm) / max(1, steps - warm)
            cur = minlr + 0.5 * (lr - minlr) * (1 + math.cos(math.pi * pr))
        for gp in opt.param_groups:
            gp["lr"] = cur
        idx = torch.randint(0, n, (bs,), device=dev)
        img = TR[0][TR[3][idx]]
        if c.get("dihedral", True):
            img = dihedral(img)
        loss = F.cross_entropy(net(img, TR[1][idx]), TR[2][idx], label_smoothing=c.get("ls", 0.0))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if c.get("clip"):
            nn.utils.clip_grad_norm_(net.parameters(), c["clip"])
        opt.step()
        if (step + 1) % c.get("every", 1000) == 0 or step + 1 == steps:
            curve.append((step + 1, round(loss.item(), 4), round(100 * evaluate(net), 2)))
            with open(os.environ.get("OUT", "/tmp") + "/all.jsonl", "a") as f:
                f.write(json.dumps({"name": c["name"], "pt": curve[-1], "secs": round(time.time() - t0, 1)}) + "\n")
    return {"cfg": c, "curve": curve, "secs": round(time.time() - t0, 1)}


BASE = dict(hidden=128, layers=4, heads=4, patch=8, cell=4, ch=64, batch=64, lr=1e-3, steps=3000)
V = {
    "base3k": {},
    "base12k": dict(steps=12000, every=2000),
    "p4s2_6k": dict(patch=4, cell=2, steps=6000),
    "lr3e-4_12k": dict(lr=3e-4, steps=12000, every=2000),
    "nodih_6k": dict(dihedral=False, steps=6000),
    "pre_6k": dict(pre=True, steps=6000),
    "c2_6k": dict(cell=2, steps=6000),
    "lin_p8_6k": dict(cell=0, steps=6000),
    "b256_3k": dict(batch=256, steps=3000, lr=2e-3),
    "h96l3_12k": dict(hidden=96, layers=3, heads=4, steps=12000, every=2000),
    "p16c4_12k": dict(patch=16, cell=4, steps=12000, every=2000),
    "lr5e-4_6k": dict(lr=5e-4, steps=6000),
    "wd0.1_6k": dict(wd=0.1, steps=6000),
    "clip1_6k": dict(clip=1.0, steps=6000),
    "b32_12k": dict(batch=32, steps=12000, every=2000),
    "base6k_s1": dict(steps=6000, seed=1),
    "nd_p4s2": dict(patch=4, cell=2, steps=6000, dihedral=False),
    "nd_lr3e-4": dict(lr=3e-4, steps=6000, dihedral=False),
    "nd_pre": dict(pre=True, steps=6000, dihedral=False),
    "nd_h256l6": dict(hidden=256, layers=6, heads=8, steps=6000, dihedral=False),
    "nd_p4lin": dict(patch=4, cell=0, steps=6000, dihedral=False),
}
names = sys.argv[1:]
out = os.environ.get("OUT", "/tmp")
for name in names:
    c = {**BASE, **V[name], "name": name}
    if os.environ.get("SMOKE"):
        c.update(steps=30, every=15)
    r = run(c)
    r["name"] = name
    print(json.dumps(r), flush=True)
    with open(f"{out}/all.jsonl", "a") as f:
        f.write(json.dumps(r) + "\n")
