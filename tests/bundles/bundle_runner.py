"""Run bundle configs through the real ``python -m monai.bundle`` command line, isolated in a temporary folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUNDLES = REPO / "bundles"


def isolated_env(root: Path) -> dict[str, str]:
    """Environment whose MLflow store and synthetic-data cache live under ``root``, never in the user's home."""
    env = dict(os.environ)
    env.update(
        {
            "RADLAS_MLFLOW_DIR": str(root / "mlruns"),
            "RADLAS_DATA_DIR": str(root / "synthetic"),
            "MLFLOW_TRACKING_URI": "",
            "MPLBACKEND": "Agg",
            "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "2"),
        }
    )
    env.pop("MLFLOW_TRACKING_URI")
    return env


def bundle_command(
    bundle: str, config: str | list[str], overrides: dict[str, object], launcher: list[str] | None = None
) -> list[str]:
    """The ``python -m monai.bundle run`` command line for ``bundles/<bundle>/configs/<config>.json``."""
    configs = [config] if isinstance(config, str) else config
    files = [str(BUNDLES / bundle / "configs" / f"{c}.json") for c in configs]
    config_arg = files[0] if len(files) == 1 else "[" + ",".join(f"'{f}'" for f in files) + "]"
    command = (launcher or [sys.executable]) + ["-m", "monai.bundle", "run", "--config_file", config_arg]
    for key, value in overrides.items():
        command += [f"--{key}", str(value)]
    return command


def run_bundle(
    root: Path,
    bundle: str,
    config: str | list[str],
    overrides: dict[str, object],
    *,
    launcher: list[str] | None = None,
    cwd: Path = REPO,
    timeout: int = 900,
) -> subprocess.CompletedProcess:
    """``python -m monai.bundle run --config_file bundles/<bundle>/configs/<config>.json --k v ...``.

    Raises:
        AssertionError: with the command's output when it fails.
    """
    command = bundle_command(bundle, config, overrides, launcher)
    # own session: on a timeout the whole group goes (torchrun's workers too), not just the launcher
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=isolated_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(
            f"{' '.join(command)} timed out after {timeout} s:\n{stdout[-4000:]}\n{stderr[-4000:]}"
        ) from None
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    assert result.returncode == 0, (
        f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    )
    return result
