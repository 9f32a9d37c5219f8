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
#
# One Dask cluster. The notebooks' training goes through imbcl.sweep; for the whole build one
# `dask scheduler` + `dask worker` (one single-threaded worker per core) serves every kernel
# through IMBCL_SCHEDULER (scripts/book_cluster.sh), so notebooks executing at once share it
# instead of each starting a cluster. It is stopped on exit, also on failure or Ctrl-C.
# Sweep progress lines ("[ch2] 40/180 tasks: 12 cached, 0 failed") go to
# _build/sweep-progress.log and are shown here; preexecute.py prints each notebook's start and
# end. The results store (_build/store) survives the wipe below: its keys cover imbcl's source
# and library versions, so an entry from other source is never read.
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
    mkdir -p _build
    find _build -mindepth 1 -maxdepth 1 ! -name store -exec rm -rf {} +
    echo "$want" >"$stamp"
fi

# shellcheck source=scripts/book_cluster.sh
source scripts/book_cluster.sh
trap stop_all EXIT
trap 'exit 130' INT TERM
start_cluster _build "$BIN"
export IMBCL_PROGRESS=0 IMBCL_PROGRESS_LOG="$PWD/_build/sweep-progress.log"
show_progress "$IMBCL_PROGRESS_LOG"

IMBCL_THREADS=1 run_in_group "$BIN/python" scripts/preexecute.py \
    --cache _build/.jupyter_cache --timeout 1200

"$BIN/jupyter-book" build . -W -n --keep-going
cp _build/scorecard.json _build/html/scorecard.json  # written by book/scorecard.ipynb
echo "book: open _build/html/index.html (claims as JSON: _build/html/scorecard.json)"
