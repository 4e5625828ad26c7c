#!/usr/bin/env bash
# Runs every check and test Tessera has, on a fresh Debian machine too: installs the system
# packages, fetches the real test assets into ~/.cache/tessera/assets, then fmt, clippy, tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tessera/target}"

scripts/setup.sh
scripts/fetch-assets.sh
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
