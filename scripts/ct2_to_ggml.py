#!/usr/bin/env python3
"""Convert a CTranslate2 Whisper model (model.bin) to whisper.cpp's GGML format.

Usage:
    python3 scripts/ct2_to_ggml.py --ct2-dir DIR --whisper-assets DIR/whisper/assets --out FILE.bin

DIR is a CTranslate2 Whisper model folder (model.bin, as written by
ct2-transformers-converter); --whisper-assets is the assets folder of the
openai-whisper Python package (mel_filters.npz, gpt2.tiktoken,
multilingual.tiktoken). The output matches what whisper.cpp's
models/convert-pt-to-ggml.py writes from OpenAI's PyTorch checkpoint.
Needs Python 3 and numpy only.
"""
import argparse
import base64
import re
import struct
import sys
from pathlib import Path

import numpy as np

# CTranslate2 DataType ids (include/ctranslate2/types.h).
CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}

# Scalars that CT2 stores as variables. Their values must match what
# whisper.cpp hard-codes, otherwise the converted model would compute
# something else. (decoder/activation 3 = exact GELU.)
EXPECTED_CONFIG = {
    "decoder/activation": 3,
    "decoder/alibi": 0,
    "decoder/pre_norm": 1,
    "decoder/scale_embeddings": 0,
    "decoder/start_from_zero_embedding": 0,
}
# Read for hparams, or not used by whisper.cpp (it has its own alignment-head presets).
OTHER_CONFIG = {"encoder/num_heads", "decoder/num_heads",
                "decoder/alignment_heads", "decoder/alignment_layer"}


def die(msg):
    sys.exit(f"ct2_to_ggml: error: {msg}")


def read_ct2(path):
    """Parse CTranslate2's model.bin (python/ctranslate2/specs/model_spec.py writes it).

    Layout (little endian): u32 binary version, string spec name, u32 spec
    revision, u32 variable count, then per variable: string name, u8 rank,
    u32 dims[rank], u8 dtype id, u32 byte count, data; then u32 alias count
    and (alias, target) string pairs. Strings are u16 length (incl. NUL) + bytes.
    """
    buf = memoryview(Path(path).read_bytes())
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return vals if len(vals) > 1 else vals[0]

    def string():
        nonlocal pos
        n = take("H")
        s = bytes(buf[pos:pos + n - 1]).decode()
        pos += n
        return s

    version = take("I")
    if version < 4:  # older files store item sizes instead of dtype ids
        die(f"unsupported CTranslate2 binary version {version} (need >= 4)")
    spec = string()
    take("I")  # spec revision
    if spec != "WhisperSpec":
        die(f"{path} holds a {spec!r}, not a WhisperSpec")
    variables = {}
    for _ in range(take("I")):
        name = string()
        rank = take("B")
        dims = [take("I") for _ in range(rank)] if rank else []
        dtype_id, nbytes = take("B"), take("I")
        if dtype_id not in CT2_DTYPES:
            die(f"{name}: unsupported CTranslate2 dtype id {dtype_id} "
                "(bfloat16/float8? re-convert the model with --quantization float16)")
        arr = np.frombuffer(buf[pos:pos + nbytes], dtype=CT2_DTYPES[dtype_id])
        pos += nbytes
        variables[name] = arr.reshape(dims) if rank else arr[0]
    aliases = {}
    for _ in range(take("I")):
        alias = string()
        aliases[alias] = string()
    if pos != len(buf):
        die(f"{len(buf) - pos} trailing bytes in {path}: unknown format")
    return variables, aliases


def map_tensors(v):
    """Rename (and split) CT2 variables into OpenAI's state-dict names, which whisper.cpp loads.

    Returns (tensors, used) where used is the set of CT2 names consumed.
    """
    out, used = {}, set()

    def get(name):
        if name not in v:
            die(f"missing CT2 variable {name}")
        used.add(name)
        return v[name]

    def linear(ct2, pt, bias=True):
        out[f"{pt}.weight"] = get(f"{ct2}/weight")
        if bias:
            out[f"{pt}.bias"] = get(f"{ct2}/bias")

    def norm(ct2, pt):  # CT2 LayerNorm gamma/beta == PyTorch weight/bias
        out[f"{pt}.weight"] = get(f"{ct2}/gamma")
        out[f"{pt}.bias"] = get(f"{ct2}/beta")

    def split(ct2, pt_names):
        """Split a fused projection ([q;k;v] or [k;v]) along the output rows."""
        ws = np.split(get(f"{ct2}/weight"), len(pt_names))
        bs = np.split(get(f"{ct2}/bias"), len(pt_names))
        for pt, w, b in zip(pt_names, ws, bs):
            out[f"{pt}.weight"] = w
            # OpenAI's key projection has no bias (CT2 stores zeros). Even a
            # non-zero key bias only adds q.b_k, the same for every key, which
            # softmax cancels, so dropping it is exact.
            if not pt.endswith(".key"):
                out[f"{pt}.bias"] = b

    def layers(prefix):
        return sorted({int(m.group(1)) for k in v for m in [re.match(rf"{prefix}/layer_(\d+)/", k)] if m})

    linear("encoder/conv1", "encoder.conv1")
    linear("encoder/conv2", "encoder.conv2")
    out["encoder.positional_embedding"] = get("encoder/position_encodings/encodings")
    for i in layers("encoder"):
        c, p = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        split(f"{c}/self_attention/linear_0", [f"{p}.attn.query", f"{p}.attn.key", f"{p}.attn.value"])
        linear(f"{c}/self_attention/linear_1", f"{p}.attn.out")
        norm(f"{c}/self_attention/layer_norm", f"{p}.attn_ln")
        linear(f"{c}/ffn/linear_0", f"{p}.mlp.0")
        linear(f"{c}/ffn/linear_1", f"{p}.mlp.2")
        norm(f"{c}/ffn/layer_norm", f"{p}.mlp_ln")
    norm("encoder/layer_norm", "encoder.ln_post")

    out["decoder.token_embedding.weight"] = get("decoder/embeddings/weight")
    out["decoder.positional_embedding"] = get("decoder/position_encodings/encodings")
    for i in layers("decoder"):
        c, p = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        split(f"{c}/self_attention/linear_0", [f"{p}.attn.query", f"{p}.attn.key", f"{p}.attn.value"])
        linear(f"{c}/self_attention/linear_1", f"{p}.attn.out")
        norm(f"{c}/self_attention/layer_norm", f"{p}.attn_ln")
        # Cross-attention: linear_0 = query, linear_1 = fused [key; value], linear_2 = out.
        linear(f"{c}/attention/linear_0", f"{p}.cross_attn.query")
        split(f"{c}/attention/linear_1", [f"{p}.cross_attn.key", f"{p}.cross_attn.value"])
        linear(f"{c}/attention/linear_2", f"{p}.cross_attn.out")
        norm(f"{c}/attention/layer_norm", f"{p}.cross_attn_ln")
        linear(f"{c}/ffn/linear_0", f"{p}.mlp.0")
        linear(f"{c}/ffn/linear_1", f"{p}.mlp.2")
        norm(f"{c}/ffn/layer_norm", f"{p}.mlp_ln")
    norm("decoder/layer_norm", "decoder.ln")
    return out, used


def check_config_and_leftovers(v, aliases, used):
    for name, want in EXPECTED_CONFIG.items():
        if name in v and int(v[name]) != want:
            die(f"{name} = {int(v[name])}, but whisper.cpp assumes {want}")
    # whisper.cpp reuses the token embedding as the output projection.
    proj = "decoder/projection/weight"
    if proj in v:
        if not np.array_equal(v[proj], v["decoder/embeddings/weight"]):
            die(f"{proj} differs from the token embedding; whisper.cpp needs them tied")
        used.add(proj)
    for alias, target in aliases.items():
        if alias != proj or target != "decoder/embeddings/weight":
            die(f"unexpected CT2 alias {alias} -> {target}")
    for name in used:
        if v[name].dtype not in (np.float16, np.float32):
            die(f"{name} is {v[name].dtype}; only float16/float32 CT2 models can be converted "
                "(quantized int8/int16 weights are not supported)")
    leftover = sorted(set(v) - used - set(EXPECTED_CONFIG) - OTHER_CONFIG)
    if leftover:
        die("CT2 variables with no GGML mapping: " + ", ".join(leftover))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ct2-dir", required=True, type=Path, help="CTranslate2 model folder (model.bin)")
    ap.add_argument("--whisper-assets", required=True, type=Path,
                    help="openai-whisper's whisper/assets folder (mel_filters.npz, *.tiktoken)")
    ap.add_argument("--out", required=True, type=Path, help="GGML file to write")
    args = ap.parse_args()

    for need in (args.ct2_dir / "model.bin", args.whisper_assets / "mel_filters.npz"):
        if not need.is_file():
            die(f"{need} not found")
    v, aliases = read_ct2(args.ct2_dir / "model.bin")
    tensors, used = map_tensors(v)
    check_config_and_leftovers(v, aliases, used)

    def n_layers(prefix):
        return sum(1 for k in tensors if re.fullmatch(rf"{prefix}\.blocks\.\d+\.attn_ln\.weight", k))

    # hparams in the order whisper.cpp reads them; sizes come from tensor shapes.
    n_vocab, n_text_state = tensors["decoder.token_embedding.weight"].shape
    n_audio_ctx, n_audio_state = tensors["encoder.positional_embedding"].shape
    n_mels = tensors["encoder.conv1.weight"].shape[1]
    hparams = [
        n_vocab, n_audio_ctx, n_audio_state, int(v["encoder/num_heads"]), n_layers("encoder"),
        tensors["decoder.positional_embedding"].shape[0], n_text_state,
        int(v["decoder/num_heads"]), n_layers("decoder"), n_mels,
        1,  # ftype: f16 weights (small tensors stay f32, see below)
    ]

    with np.load(args.whisper_assets / "mel_filters.npz") as f:
        if f"mel_{n_mels}" not in f:
            die(f"mel_filters.npz has no mel_{n_mels}")
        filters = f[f"mel_{n_mels}"].astype(np.float32)

    # Same rule as whisper.cpp: multilingual models have >= 51865 tokens.
    tok_file = args.whisper_assets / ("multilingual.tiktoken" if n_vocab >= 51865 else "gpt2.tiktoken")
    tokens = []
    for line in tok_file.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            tokens.append((int(rank), base64.b64decode(token)))
    tokens.sort()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".part")  # never leave a half-written model behind
    with open(tmp, "wb") as fout:
        fout.write(struct.pack("<i", 0x67676D6C))  # "ggml"
        fout.write(struct.pack(f"<{len(hparams)}i", *hparams))
        fout.write(struct.pack("<ii", *filters.shape))
        fout.write(filters.tobytes())
        fout.write(struct.pack("<i", len(tokens)))
        for _, tok in tokens:
            fout.write(struct.pack("<i", len(tok)) + tok)
        for name, data in tensors.items():
            if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
                data = data.reshape(-1, 1)  # whisper.cpp broadcasts conv bias as [n, 1]
            # Like convert-pt-to-ggml.py: 1-D tensors, conv biases and positional
            # embeddings as f32 (ggml ops on them expect f32), the rest as f16.
            if data.ndim < 2 or name.endswith(("conv1.bias", "conv2.bias", "positional_embedding")):
                data, ftype = data.astype(np.float32), 0
            else:
                data, ftype = data.astype(np.float16), 1
            key = name.encode()
            fout.write(struct.pack("<iii", data.ndim, len(key), ftype))
            fout.write(struct.pack(f"<{data.ndim}i", *reversed(data.shape)))  # ggml order: innermost first
            fout.write(key)
            fout.write(np.ascontiguousarray(data).tobytes())
    tmp.replace(args.out)
    print(f"wrote {args.out}: {len(tensors)} tensors, n_vocab={n_vocab}, "
          f"{hparams[4]}+{hparams[8]} layers, {len(tokens)} tokens from {tok_file.name}")


if __name__ == "__main__":
    main()
