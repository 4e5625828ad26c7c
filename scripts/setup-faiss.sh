#!/usr/bin/env bash
# Sets up faiss (CPU) and numpy in a virtual environment outside the repository, for
# benches/search_compare.py only: Tessera itself never needs it.
# Idempotent: does nothing when the venv already imports faiss and numpy.
#
#   bash scripts/setup-faiss.sh
#
#   TESSERA_FAISS_VENV   where the venv goes (default: ~/.cache/tessera/faiss-venv)
#   TESSERA_FAISS_SPEC   the pip requirement (default: faiss-cpu==1.15.1, one abi3 wheel for
#                        CPython >= 3.10; it bundles OpenBLAS and picks its AVX2 or AVX-512
#                        build at run time)
set -euo pipefail
venv="${TESSERA_FAISS_VENV:-$HOME/.cache/tessera/faiss-venv}"
spec="${TESSERA_FAISS_SPEC:-faiss-cpu==1.15.1}"
log() { echo "setup-faiss: $*" >&2; }
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

check='import faiss, numpy; i = faiss.IndexFlatIP(2); i.add(numpy.eye(2, dtype="float32")); assert i.search(numpy.ones((1, 2), "float32"), 1)[1][0, 0] == 0'
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then
  log "ready: faiss $("$venv/bin/python" -c 'import faiss; print(faiss.__version__)') in $venv"
  exit 0
fi

# Debian's python3 splits venv/ensurepip into python3-venv.
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  log "apt-get install python3-venv"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null \
    || { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
         $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null; }
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
log "pip install $spec numpy"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$spec" numpy
"$venv/bin/python" -c "$check"
log "ready: faiss $("$venv/bin/python" -c 'import faiss; print(faiss.__version__)') in $venv ($(du -sh "$venv" | cut -f1))"
