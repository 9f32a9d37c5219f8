#!/usr/bin/env bash
# Build the book into _build/html. Called by `make book` after scripts/venv.sh.
#
# Staleness policy. MyST-NB's jupyter-cache keys a notebook only on its own cells
# (MyST-NB #299), so a change in imbcl/ alone would let the book serve stale chapters. We
# therefore hash imbcl/**/*.py and pyproject.toml; when that hash differs from the one
# recorded at the previous build, the whole of _build (jupyter cache and Sphinx's environment)
# is wiped and every notebook re-executes. Edits to a notebook alone re-execute that notebook.
#
# Parallelism. Before Sphinx runs, the notebooks in _toc.yml that have no valid cache entry are
# executed into the same jupyter cache with jupyter-cache's local-parallel executor (one
# process per core, each kernel single-threaded); Sphinx then finds them all cached.
set -eo pipefail

cd "$(dirname "$0")/.."
BIN=.venv/bin
export OMP_WAIT_POLICY=PASSIVE

stamp=_build/.imbcl-src-sha256
want=$(find imbcl -name '*.py' -type f -print0 | LC_ALL=C sort -z \
    | xargs -0 sha256sum | cat - pyproject.toml | sha256sum | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
if [ "$want" != "$have" ]; then
    if [ -d _build ]; then
        echo "book: imbcl source or dependencies changed since the last build: wiping _build"
    fi
    rm -rf _build
    mkdir -p _build
    echo "$want" >"$stamp"
fi

IMBCL_THREADS=1 "$BIN/python" scripts/preexecute.py --cache _build/.jupyter_cache --timeout 1200

"$BIN/jupyter-book" build . -W -n --keep-going
echo "book: open _build/html/index.html"
