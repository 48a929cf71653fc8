"""A real MONAI Label server in a subprocess for the tests, and a proxy-free HTTP client that talks to it.

Servers run with every proxy variable pointed at a dead local port, so any outbound connection they tried (model
zoo, SAM checkpoints, DICOMweb) would fail the start or the requests.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
DEAD_PROXY = "http://127.0.0.1:9"
MAX_UPLOAD_MB = 1
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the test client talks to 127.0.0.1 directly


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data) in files.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        parts.append(head.encode() + b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def png_bytes(array: np.ndarray) -> bytes:
    """An 8-bit PNG of a float image in [0, 1]."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.round(array * 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _lower_keys(headers) -> dict[str, str]:
    """Response headers as a plain dict keyed by lower-case names."""
    return {name.lower(): value for name, value in headers.items()}


class Server:
    """HTTP access to a server on 127.0.0.1; ``root``, ``log`` (its stdout + stderr) and ``process`` once started."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"

    def request(self, method, path, fields=None, files=None, headers=None, timeout=120):
        data, extra = None, dict(headers or {})
        if fields is not None or files is not None:
            data, content_type = multipart(fields or {}, files or {})
            extra["Content-Type"] = content_type
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=extra)
        # header names are case-insensitive (RFC 9110): returned lower-cased, so lookups do not depend on the server
        try:
            with OPENER.open(req, timeout=timeout) as response:
                return response.status, _lower_keys(response.headers), response.read()
        except urllib.error.HTTPError as err:
            return err.code, _lower_keys(err.headers), err.read()

    def infer(self, model, query="output=json", params=None, upload=None, timeout=120):
        fields = {"params": json.dumps(params) if isinstance(params, dict) else params} if params is not None else {}
        files = {"file": upload} if upload else None
        return self.request("POST", f"/infer/{model}?{query}", fields=fields or None, files=files, timeout=timeout)


def server_env(cache: Path) -> dict[str, str]:
    """The test environment with dead proxies, one thread and the label cache at ``cache``."""
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = DEAD_PROXY
    env.update(RADLAS_LABEL_CACHE=str(cache), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def radlas_server_command(studies: Path, bundles: Path, port: int, *extra: str) -> list[str]:
    """``scripts/monailabel_server.py`` on ``studies`` with the bundles under ``bundles``."""
    return [
        sys.executable,
        str(REPO / "scripts" / "monailabel_server.py"),
        f"--studies={studies}",
        f"--port={port}",
        f"--lesion_bundle={bundles / 'lesion_localization'}",
        f"--classification_bundle={bundles / 'finetune_classification'}",
        "--device=cpu",
        *extra,
    ]


@contextmanager
def running_server(command: Sequence[str], root: Path, port: int, env: dict[str, str]) -> Iterator[Server]:
    """Run ``command`` in ``root`` until ``GET /info/`` answers 200; stop it on exit.

    The yielded :class:`Server` has ``root``, ``log`` (the server's stdout and stderr) and ``process``.
    """
    log_path = root / "server.log"
    log = log_path.open("w")
    process = subprocess.Popen(list(command), cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    client = Server(port)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if client.request("GET", "/info/", timeout=5)[0] == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"server did not start:\n{log_path.read_text()[-3000:]}")
        client.root, client.log, client.process = root, log_path, process
        yield client
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
