#!/usr/bin/env bash
# Runs every check and test Tessera has, on a fresh Debian machine too: installs the system
# packages, fetches the real test assets into ~/.cache/tessera/assets, builds the front end,
# then fmt, clippy, the engine's and the app's Rust tests, the front end's Playwright tests in
# Chromium, and the real app in a real window (scripts/app-e2e.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tessera/target}"

scripts/setup.sh
scripts/fetch-assets.sh
scripts/ui.sh
cargo fmt --all -- --check
# One feature set for the whole workspace, so the engine and the app share one build.
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
(cd ui && npx playwright test)
scripts/app-e2e.sh
