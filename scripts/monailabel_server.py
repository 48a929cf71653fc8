"""Start the RadLAS MONAI Label server (127.0.0.1 by default; see radlas_monai/label/README.md).

Example::

    python scripts/monailabel_server.py --port 8000
    python scripts/monailabel_server.py --studies /data/cxr --port 8000 --allow_origins '["http://localhost:3000"]'
"""

from __future__ import annotations

import logging

import fire

from radlas_monai.label.server import serve

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    fire.Fire(serve)
