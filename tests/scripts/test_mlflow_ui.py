"""The MLflow UI launcher: loopback by default, non-loopback refused without opt-in, a real UI answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "mlflow_ui.py"


def _run(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_non_loopback_refused_without_opt_in() -> None:
    done = _run("--host", "0.0.0.0", "--dry_run", "True")
    assert done.returncode != 0
    assert "refusing to listen on '0.0.0.0'" in done.stderr and "allow_remote" in done.stderr


def test_opt_in_warns_and_defaults_to_the_resolved_store(tmp_path: Path) -> None:
    env = {**os.environ, "RADLAS_MLFLOW_DIR": str(tmp_path / "store")}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = _run("--host", "0.0.0.0", "--allow_remote", "True", "--dry_run", "True", env=env)
    assert done.returncode == 0, done.stderr
    assert "WITHOUT authentication" in done.stderr
    assert f"sqlite:///{(tmp_path / 'store' / 'mlflow.db').as_posix()}" in done.stdout
    default = _run("--dry_run", "True", env=env)
    assert "--host 127.0.0.1" in default.stdout and "--port 5000" in default.stdout


def _start_ui(env: dict, log_path: Path) -> tuple[subprocess.Popen, int, bytes]:
    """Start the UI on a free loopback port and wait for ``/health``; (server, port, body: b"" when it never answered).

    The port is probed free and then bound by the server: another process may take it in between, so a server that
    exits because its port is in use is started again on a new one.
    """
    # loopback requests never go through the machine's http_proxy (which urlopen would follow)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for _ in range(3):
        port = _free_port()
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                [sys.executable, str(SCRIPT), "--port", str(port)], env=env, stdout=log, stderr=log
            )
        try:
            deadline, body = time.monotonic() + 240, b""
            while time.monotonic() < deadline and server.poll() is None:
                try:
                    with opener.open(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                        body = response.read()
                        break
                except OSError:
                    time.sleep(0.5)
        except BaseException:
            _stop(server)
            raise
        lost_port = server.poll() is not None and "in use" in log_path.read_text(errors="replace").lower()
        if not lost_port:
            break
    return server, port, body


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=20)


@pytest.mark.slow
def test_ui_serves_on_loopback(tmp_path: Path) -> None:
    env = {**os.environ, "RADLAS_MLFLOW_DIR": str(tmp_path / "store")}
    env.pop("MLFLOW_TRACKING_URI", None)
    log_path = tmp_path / "ui.log"  # a file, not a pipe nobody reads while the server runs
    server, port, body = _start_ui(env, log_path)
    try:
        assert server.poll() is None, log_path.read_text(errors="replace")[-2000:]
        assert body.strip() == b"OK"
        assert (tmp_path / "store" / "mlflow.db").is_file()  # the store was created on first start
        listening = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout if _has_ss() else ""
        if listening:
            bound = [line for line in listening.splitlines() if f":{port} " in line]
            assert bound and all("127.0.0.1" in line for line in bound), bound
    finally:
        _stop(server)


def _has_ss() -> bool:
    from shutil import which

    return which("ss") is not None
