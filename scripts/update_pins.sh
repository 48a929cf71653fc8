#!/usr/bin/env bash
# Move the project's pins forward in one command:
#   1. a fresh virtual environment resolves the newest stack under the caps in requirements/constraints.in;
#   2. its exact versions are written to requirements/constraints.txt (the lock every install command uses);
#   3. the bundles' metadata.json versions are rewritten from that file (scripts/update_bundle_metadata.py);
#   4. the whole test suite runs in that environment.
# Review and commit the changed files only when step 4 passed.
# Usage: bash scripts/update_pins.sh [pytest args]      (PYTHON=python3.11 to choose the interpreter;
#        KEEP_VENV=1 keeps the environment, printed at the end)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"
VENV="$(mktemp -d)/venv"
"$PY" -m venv "$VENV"
trap '[ "${KEEP_VENV:-0}" = 1 ] && echo "environment kept: $VENV" || rm -rf "$(dirname "$VENV")"' EXIT
RADLAS_CONSTRAINTS=requirements/constraints.in PYTHON="$VENV/bin/python" bash scripts/install_label.sh
{
    sed -n '/^#/p' requirements/constraints.txt
    "$VENV/bin/python" -m pip freeze --all | grep -viE '^(-e |pip==|radlas[-_]monai)' | grep -v '^#' \
        | sed 's/+cpu$//' | sort -f
} > requirements/constraints.txt.new
mv requirements/constraints.txt.new requirements/constraints.txt
"$VENV/bin/python" scripts/update_bundle_metadata.py
git --no-pager diff --stat -- requirements/constraints.txt bundles/*/configs/metadata.json || true
MPLBACKEND=Agg "$VENV/bin/python" -m pytest tests "$@"
