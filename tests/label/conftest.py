"""One real RadLAS MONAI Label server for the whole label test session (tiny 64 px networks, two studies).

test_server.py speaks plain HTTP to it, test_client.py MONAI Label's own client; starting it once keeps both fast.
"""

from __future__ import annotations

import pytest
from label_fixtures import write_studies, write_tiny_bundles
from label_server import MAX_UPLOAD_MB, free_port, radlas_server_command, running_server, server_env


@pytest.fixture(scope="session")
def studies(tmp_path_factory):
    return write_studies(tmp_path_factory.mktemp("studies"))


@pytest.fixture(scope="session")
def server(tmp_path_factory, studies):
    """``scripts/monailabel_server.py`` on 127.0.0.1 with ``--max_upload_mb 1``; ``state`` is its label cache."""
    root = tmp_path_factory.mktemp("label")
    bundles = write_tiny_bundles(root / "bundles")
    port = free_port()
    command = radlas_server_command(studies, bundles, port, f"--max_upload_mb={MAX_UPLOAD_MB}")
    with running_server(command, root, port, server_env(root / "cache")) as client:
        client.bundles = bundles
        client.marker = root / "evaluated-marker"
        client.state = root / "cache"
        yield client
