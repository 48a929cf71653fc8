#!/usr/bin/env bash
# Install the project with the MONAI Label stack into the current Python environment (use a venv / conda env),
# at the exact versions the test suite passed with (requirements/constraints.txt): CPU torch, pydicom 2.4.4,
# numpy < 2, monailabel 0.8.5 without its declared dependencies (no CUDA torch, no sam2, no torchvision, no itk
# metapackage). Then: scripts/start_monailabel.sh
# The project's test command runs it, so CI tests the same stack (label and onnx extras included).
# Usage: scripts/install_label.sh            (PYTHON=/path/to/python to choose the interpreter;
#        RADLAS_CONSTRAINTS=requirements/constraints.in to resolve afresh under the caps only: scripts/update_pins.sh)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python}"
C="${RADLAS_CONSTRAINTS:-requirements/constraints.txt}"
"$PY" -m pip install -c "$C" torch==2.13.0 -e ".[dev,label,onnx]"
"$PY" -m pip install -c "$C" --no-deps -r requirements/label-nodeps.txt
# Refuse an environment that pulled GPU builds or the packages the stack must not have.
if "$PY" -m pip list --format=freeze 2>/dev/null | grep -iE '^(nvidia-|torchvision==|sam-?2==|triton==)'; then
    echo "install_label.sh: unexpected GPU / SAM packages above; use a fresh environment" >&2
    exit 1
fi
"$PY" -c "import monailabel.interfaces.app, radlas_monai.label.params; import pydicom, numpy; \
print('MONAI Label stack ready: pydicom', pydicom.__version__, 'numpy', numpy.__version__)"
