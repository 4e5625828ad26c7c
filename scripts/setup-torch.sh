#!/usr/bin/env bash
# Sets up a CPU-only PyTorch in a virtual environment outside the repository, for benchmarks and
# for computing reference values once (scripts/minilm_reference.py). Tessera itself never needs it.
# Idempotent: does nothing when the venv already imports torch, safetensors and tokenizers.
#
#   bash scripts/setup-torch.sh              Debian's CPU build of PyTorch (1.13), about 0.6 GB
#   bash scripts/setup-torch.sh --pypi       the current PyTorch from PyPI, about 4.5 GB
#   add --transformers to either             also transformers, for cross-checking the reference
#
#   TESSERA_TORCH_VENV   where the venv goes (default: ~/.cache/tessera/torch-venv)
#
# Why two ways: PyPI's Linux x86-64 torch wheel is the CUDA build (1.2 GB on its own). Its
# libtorch links libcudart, libcublas, libcudnn, libnccl, libcusparse, ... at load time, so
# `pip install --no-deps torch` does not import without the nvidia-* wheels (3 GB more), and
# PyPI has no CPU-only build for this platform. Debian's python3-torch is built without CUDA and
# needs about 570 MB of system packages (OpenBLAS included); its libraries belong to Debian's own
# /usr/bin/python3, so that venv is made from it with --system-site-packages.
# Debian's build only goes fast with OpenBLAS behind libblas.so.3 (libopenblas0-pthread, installed
# here; the reference BLAS is 15 times slower) and uses one intra-op thread unless OMP_NUM_THREADS
# is set: benchmark with OMP_NUM_THREADS=$(nproc).
set -euo pipefail
venv="${TESSERA_TORCH_VENV:-$HOME/.cache/tessera/torch-venv}"
mode=debian transformers=0
for a in "$@"; do
  case "$a" in
    --pypi) mode=pypi ;;
    --debian) mode=debian ;;
    --transformers) transformers=1 ;;
    *) echo "usage: $0 [--pypi|--debian] [--transformers]" >&2; exit 2 ;;
  esac
done
log() { echo "setup-torch: $*" >&2; }
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

apt_install() { # packages...; only the missing ones, refreshing the lists once if needed
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ "${#missing[@]}" -gt 0 ] || return 0
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
         $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
}

check='import torch, numpy, safetensors, tokenizers; assert float(torch.ones(3) @ torch.ones(3)) == 3'
[ "$transformers" = 0 ] || check="$check; import transformers"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then
  log "ready: $("$venv/bin/python" -c 'import torch; print("torch", torch.__version__)') in $venv"
  exit 0
fi

if [ "$mode" = debian ]; then
  apt_install python3-venv python3-torch libopenblas0-pthread
  [ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$venv"
  # numpy stays Debian's 1.x, the one python3-torch is built against
  pkgs=("numpy<2" safetensors tokenizers)
  [ "$transformers" = 0 ] || pkgs+=("transformers<4.46") # newer ones need torch >= 2
else
  python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  pkgs=(torch numpy safetensors tokenizers)
  [ "$transformers" = 0 ] || pkgs+=(transformers)
fi
log "pip install ${pkgs[*]}"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "${pkgs[@]}"
if [ "$mode" = pypi ]; then
  # triton (1 GB) only serves torch.compile on GPUs; torch imports and runs without it
  "$venv/bin/python" -m pip uninstall -q -y triton 2>/dev/null || true
fi
"$venv/bin/python" -c "$check"
log "ready: $("$venv/bin/python" -c 'import torch; print("torch", torch.__version__)') in $venv ($(du -sh "$venv" | cut -f1))"
