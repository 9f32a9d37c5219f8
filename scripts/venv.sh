#!/usr/bin/env bash
# Create or refresh the project's virtual env in .venv.
#
# The env is (re)installed only when the dependency specification changed: the key is the
# sha256 of pyproject.toml's *content* (not its mtime, which is new in every fresh clone),
# recorded in .venv/.deps-sha256 after a successful install. imbcl is installed editable,
# so edits under imbcl/ never need a reinstall.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
VENV=.venv
STAMP="$VENV/.deps-sha256"

want=$(sha256sum pyproject.toml | cut -d' ' -f1)

if [ ! -x "$VENV/bin/python" ]; then
    echo "venv: creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi

have=$(cat "$STAMP" 2>/dev/null || true)
if [ "$have" = "$want" ]; then
    echo "venv: up to date (pyproject.toml sha256 ${want:0:12})"
    exit 0
fi

echo "venv: installing dependencies (pyproject.toml sha256 ${want:0:12}, was ${have:0:12})"
rm -f "$STAMP"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e .
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (imbcl)" >/dev/null
echo "$want" >"$STAMP"
echo "venv: ready"
