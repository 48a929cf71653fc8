"""Run bundle configs through the real ``python -m monai.bundle`` command line, isolated in a temporary folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUNDLES = REPO / "bundles"


#: ``python -c`` launcher of ``monai.bundle`` (``bundle_command(..., launcher=[sys.executable, "-c", this])``):
#: SIGKILLs its own process inside the 2nd save of ``checkpoint_last.pt``, after the temporary file is complete and
#: before it replaces the previous checkpoint (the worst moment). With ``val_interval`` 1 that is the epoch-2 save, so
#: the kill lands at the same point of the run whatever the machine's speed.
KILL_INSIDE_SECOND_SAVE = """
import os, runpy, signal, sys
real_replace, saves = os.replace, []
def replace(src, dst, *args, **kwargs):
    if os.fspath(dst).endswith("checkpoint_last.pt"):
        saves.append(dst)
        if len(saves) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, *args, **kwargs)
os.replace = replace
sys.argv = ["monai.bundle", *sys.argv[3:]]
runpy.run_module("monai.bundle", run_name="__main__", alter_sys=True)
"""


def isolated_env(root: Path, threads: int | None = None) -> dict[str, str]:
    """Environment whose MLflow store and synthetic-data cache live under ``root``, never in the user's home.

    Args:
        root: folder of the MLflow store and the synthetic-data cache.
        threads: intra-op threads of the run (``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS``); ``None`` keeps the
            caller's ``OMP_NUM_THREADS`` (2 when unset). One thread for runs compared bit for bit (multi-threaded CPU
            kernels may sum in a different order from run to run) and for each rank of a 2-process run on 2 cores.
    """
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
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(int(threads)), MKL_NUM_THREADS=str(int(threads)))
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
    threads: int | None = None,
) -> subprocess.CompletedProcess:
    """``python -m monai.bundle run --config_file bundles/<bundle>/configs/<config>.json --k v ...``.

    ``threads``: see :func:`isolated_env`.

    Raises:
        AssertionError: with the command's output when it fails.
    """
    command = bundle_command(bundle, config, overrides, launcher)
    # own session: on a timeout the whole group goes (torchrun's workers too), not just the launcher
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=isolated_env(root, threads),
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
