#!/usr/bin/env bash
# Installs the system packages Tessera builds and runs with, on Debian/Ubuntu (elsewhere it
# only checks for cargo and Node.js).
# Idempotent: does nothing when everything is already there.
set -euo pipefail

packages=(ffmpeg cmake nasm clang libclang-dev pkg-config python3 python3-pip
  # the desktop app (Tauri 2 on WebKitGTK) and its tests: a virtual display, WebKit's
  # WebDriver for the real window, Chromium for the front end's Playwright tests
  libwebkit2gtk-4.1-dev libgtk-3-dev xvfb xauth webkit2gtk-driver chromium)
missing=()
if ! command -v dpkg >/dev/null; then
  # macOS and other systems: the README names what to install (brew install ffmpeg cmake node).
  packages=()
fi
for p in ${packages[@]+"${packages[@]}"}; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust with rustup first" >&2; exit 1; }
# The front end builds with Vite, which needs Node.js 20 or newer.
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
[ "$node_major" -ge 20 ] || { echo "setup: Node.js 20 or newer (with npm) is needed for the app's front end" >&2; exit 1; }
# numpy for the model converter (scripts/ct2_to_ggml.py); Debian's own copy when pip may not install.
python3 -c 'import numpy' 2>/dev/null || python3 -m pip install -q numpy 2>/dev/null \
  || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"; $sudo apt-get install -y -qq python3-numpy >/dev/null; }
