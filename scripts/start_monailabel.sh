#!/usr/bin/env bash
# Start the RadLAS MONAI Label server on 127.0.0.1 (studies default: synthetic radiographs in the cache).
# Usage: scripts/start_monailabel.sh [--studies DIR] [--port 8000] [--host 127.0.0.1] [--max_upload_mb 128]
# Needs the label install: scripts/install_label.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec "${PYTHON:-python}" scripts/monailabel_server.py "$@"
