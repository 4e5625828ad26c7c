#!/usr/bin/env bash
# The real app in a real window: prepares a data directory with the CLI (the composed video
# ingested, an easy-VQA subset imported, a tiny run pre-trained and fine-tuned for VQA), then
# drives the built app under Xvfb through tauri-driver + WebKitWebDriver (ui/e2e/window.mjs):
# browse, search a caption, search images by text, ask a question; screenshots go to
# ui/test-results/window/. Called by scripts/test.sh after the app is built.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tessera/target}"
assets="${TESSERA_ASSETS:-$HOME/.cache/tessera/assets}"
tools="$HOME/.cache/tessera/tools"
tessera="$CARGO_TARGET_DIR/debug/tessera"
app="$CARGO_TARGET_DIR/debug/tessera-app"

# tauri-driver: the WebDriver front for Tauri apps (crates.io), built once into the cache.
if [ ! -x "$tools/bin/tauri-driver" ]; then
  cargo install --quiet --locked --root "$tools" tauri-driver@2.1.0
fi

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
data="$work/data"

# A small easy-VQA: the first 300 training and 100 test images with their questions.
python3 - "$assets/easy-vqa/data" "$work/easy-vqa" <<'PY'
import json, os, shutil, sys
src, dst = sys.argv[1:]
for split, n in (("train", 300), ("test", 100)):
    os.makedirs(f"{dst}/{split}/images")
    qs = [q for q in json.load(open(f"{src}/{split}/questions.json")) if q[2] < n]
    json.dump(qs, open(f"{dst}/{split}/questions.json", "w"))
    for i in range(n):
        shutil.copy(f"{src}/{split}/images/{i}.png", f"{dst}/{split}/images/{i}.png")
shutil.copy(f"{src}/answers.txt", f"{dst}/answers.txt")
PY

t() { "$tessera" --data-dir "$data" "$@" >/dev/null; }
t models install tiny.en --from "$assets/whisper/ggml-tiny.en.bin"
t ingest --dataset e2e-video "$assets/composed/talk.mp4"
t import easy-vqa "$work/easy-vqa" --dataset e2e-vqa
t pretrain --dataset e2e-vqa --config models/tiny.toml --objectives mlm,itm,contrastive \
  --steps 40 --batch 16 --run e2e-pre --device cpu
t finetune vqa --dataset e2e-vqa --from e2e-pre --steps 60 --batch 32 --lr 1e-3 \
  --run e2e-ask --device cpu
t ablate --dataset e2e-vqa --downstream vqa --vary objectives=mlm+itm --seeds 1 --steps 10 \
  --config models/tiny.toml --batch 16 --name e2e-abl --device cpu

export DISPLAY=:97
Xvfb "$DISPLAY" -screen 0 1400x900x24 -nolisten tcp >/dev/null 2>&1 &
pids+=($!)
"$tools/bin/tauri-driver" --port 4444 --native-port 4445 \
  --native-driver "$(command -v WebKitWebDriver)" >"$work/driver.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/127.0.0.1/4444) 2>/dev/null && break
  sleep 0.2
done

mkdir -p ui/test-results/window
TESSERA_APP="$app" TESSERA_E2E_DATA="$data" SHOTS="ui/test-results/window" \
  node ui/e2e/window.mjs || { echo "--- tauri-driver log" >&2; tail -50 "$work/driver.log" >&2; exit 1; }
