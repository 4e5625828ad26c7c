#!/usr/bin/env python3
"""Reference sentence embeddings of all-MiniLM-L6-v2, for Tessera's Rust tests.

How to run (once; the printed numbers are hard-coded in the Rust test):

    bash scripts/fetch-assets.sh      # puts the model into $TESSERA_ASSETS/minilm (default ~/.cache/tessera/assets)
    bash scripts/setup-torch.sh       # CPU PyTorch venv in ~/.cache/tessera/torch-venv
    ~/.cache/tessera/torch-venv/bin/python scripts/minilm_reference.py [--assets DIR] [--check-transformers]

What it computes is sentence-transformers' pipeline for this model: the `tokenizers` WordPiece
tokenizer from tokenizer.json, a BERT encoder written out here in plain PyTorch (no
`transformers`), mean pooling over the attention mask, then L2 normalisation. Both sentences go
through the model as one padded batch, so the attention mask is exercised.
--check-transformers also runs `transformers.BertModel` (if it is installed) and prints the
largest difference from the hand-written encoder.
"""
import argparse
import json
import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tokenizers import Tokenizer

SENTENCES = ["A man is eating food.", "Two dogs play in the snow near a red barn."]


def bert(w, cfg, ids, mask):
    """BERT encoder (post-LN). ids, mask: [batch, seq] int64. Returns [batch, seq, hidden]."""
    eps = cfg["layer_norm_eps"]
    heads = cfg["num_attention_heads"]
    b, n = ids.shape
    d = cfg["hidden_size"]
    hd = d // heads

    def ln(x, p):
        return F.layer_norm(x, (d,), w[p + ".weight"], w[p + ".bias"], eps)

    def lin(x, p):
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    pos = torch.arange(n)
    x = (w["embeddings.word_embeddings.weight"][ids]
         + w["embeddings.position_embeddings.weight"][pos][None]
         + w["embeddings.token_type_embeddings.weight"][0][None, None])
    x = ln(x, "embeddings.LayerNorm")
    # additive mask over keys: 0 where attended, a large negative number on padding
    bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def split(t):  # [b, n, d] -> [b, heads, n, hd]
            return t.view(b, n, heads, hd).transpose(1, 2)

        q = split(lin(x, p + "attention.self.query"))
        k = split(lin(x, p + "attention.self.key"))
        v = split(lin(x, p + "attention.self.value"))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + bias
        ctx = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)
        x = ln(x + lin(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        h = lin(x, p + "intermediate.dense")
        h = 0.5 * h * (1.0 + torch.erf(h / math.sqrt(2.0)))  # exact (erf) GELU
        x = ln(x + lin(h, p + "output.dense"), p + "output.LayerNorm")
    return x


def embed(hidden, mask):
    """Mean pooling over the attention mask, then L2 normalisation."""
    m = mask[..., None].to(hidden.dtype)
    mean = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return F.normalize(mean, p=2, dim=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = os.path.join(os.environ.get("TESSERA_ASSETS", os.path.expanduser("~/.cache/tessera/assets")), "minilm")
    ap.add_argument("--assets", default=default, help="folder with model.safetensors, config.json, tokenizer.json")
    ap.add_argument("--check-transformers", action="store_true", help="compare with transformers.BertModel")
    a = ap.parse_args()

    torch.manual_seed(0)
    cfg = json.load(open(os.path.join(a.assets, "config.json")))
    w = load_file(os.path.join(a.assets, "model.safetensors"))
    tok = Tokenizer.from_file(os.path.join(a.assets, "tokenizer.json"))
    # tokenizer.json itself pads to a fixed 128 and truncates at 128; sentence-transformers
    # truncates at max_seq_length 256 and pads to the longest sentence of the batch.
    tok.enable_truncation(max_length=256)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(SENTENCES)
    ids = torch.tensor([e.ids for e in enc])
    mask = torch.tensor([e.attention_mask for e in enc])

    with torch.no_grad():
        emb = embed(bert(w, cfg, ids, mask), mask)  # float32, as sentence-transformers
        w64 = {k: (v.double() if v.is_floating_point() else v) for k, v in w.items()}
        emb64 = embed(bert(w64, cfg, ids, mask), mask)
        # each sentence alone (no padding) must give the same embedding as in the batch
        alone = torch.cat([embed(bert(w, cfg, ids[i:i + 1, :int(mask[i].sum())], mask[i:i + 1, :int(mask[i].sum())]),
                                 mask[i:i + 1, :int(mask[i].sum())]) for i in range(len(SENTENCES))])

    # The printed numbers come from the float64 run: float32 runs differ by ~1e-7 between
    # BLAS builds, enough to flip the 6th decimal now and then.
    print(f"torch {torch.__version__}")
    for i, s in enumerate(SENTENCES):
        n = int(mask[i].sum())
        print(f"sentence {i}: {s!r}")
        print(f"  tokens: {enc[i].tokens[:n]}")
        print(f"  ids:    {enc[i].ids[:n]}")
        print("  emb[:8]: [" + ", ".join(f"{v:.6f}" for v in emb64[i, :8].tolist()) + "]")
    print(f"cosine: {float(emb64[0] @ emb64[1]):.6f}")
    print(f"float32 check: max|emb32-emb64| = {(emb.double() - emb64).abs().max().item():.2e}, "
          f"cosine32 = {float(emb[0] @ emb[1]):.6f}")
    print(f"padding check: max|batched-alone| = {(emb - alone).abs().max().item():.2e}")

    if a.check_transformers:
        try:
            from transformers import BertConfig, BertModel
            conf = BertConfig(**{k: v for k, v in cfg.items() if not k.startswith("_")})
            model = BertModel(conf, add_pooling_layer=True).eval()
        except ImportError as e:  # not installed, or too new for this torch
            print(f"transformers check skipped: {str(e).strip().splitlines()[0]}")
            return
        missing, unexpected = model.load_state_dict(w, strict=False)
        assert not [k for k in missing if "position_ids" not in k], missing
        with torch.no_grad():
            hid = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
            ref = bert(w, cfg, ids, mask)
        m = mask[..., None].bool()
        diff_h = (hid - ref).masked_select(m).abs().max().item()
        diff_e = (embed(hid, mask) - emb).abs().max().item()
        import transformers
        print(f"transformers {transformers.__version__} BertModel: max|hidden diff| = {diff_h:.2e}, "
              f"max|embedding diff| = {diff_e:.2e}")


if __name__ == "__main__":
    main()
