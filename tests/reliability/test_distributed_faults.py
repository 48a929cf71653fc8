"""Case 7: distributed faults with ``torchrun`` on CPU (gloo), the pretrain bundle's ``multi_gpu_train.json``.

- One rank exits mid-epoch under ``--max-restarts=1``: torchrun restarts the job, which resumes from
  ``checkpoint_last.pt`` (``--resume True``) and completes.
- One rank hangs forever: the explicit process-group timeout (``ddp_timeout_minutes`` ->
  ``init_process_group(timeout=...)``) makes the other rank's collective fail, and the job fails in bounded time.

The faults come from tests/reliability/fault_injection.py through an extra config file on the documented command
line. A clean two-process run is in tests/bundles/test_pretrain_bundle.py::test_two_process_ddp_on_cpu.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CONFIGS = REPO / "bundles" / "pretrain" / "configs"
TINY = {"image_size": 64, "synthetic_images": 24, "limit": 8, "batch_size": 2, "val_batch_size": 4, "log_interval": 1}
#: the process-group timeout of the hang case; it also bounds how far apart the ranks may reach their first
#: collectives (start-up, data screening, the first all-reduce), so it leaves room for a loaded 2-core machine.
HANG_TIMEOUT_S = 60.0
#: the job must fail within the process-group timeout plus this (teardown of both workers by torchrun).
HANG_MARGIN_S = 90.0


def _torchrun(root: Path, fault: dict, overrides: dict, max_restarts: int, timeout: int) -> tuple[int, str, float]:
    """Run train + multi_gpu_train + a fault config under ``torchrun --nproc_per_node=2``; (rc, output, end time)."""
    from bundle_runner import isolated_env

    fault_config = root / "fault.json"
    fault_config.write_text(
        json.dumps(
            {
                "fault": {"_target_": "fault_injection.RankFault", "rank": "$torch.distributed.get_rank()", **fault},
                "run": ["$@fault.attach(@train#trainer)", "$@train#trainer.run()"],
            }
        )
    )
    files = [CONFIGS / "train.json", CONFIGS / "multi_gpu_train.json", fault_config]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--max-restarts={max_restarts}"]
    # --standalone: c10d rendezvous on a free local port, a fresh round per restart (a static --master_port store
    # hands the restarted ranks the first attempt's gloo addresses, and they wait for each other forever)
    command += ["--standalone", "-m", "monai.bundle", "run"]
    command += ["--config_file", "[" + ",".join(f"'{f}'" for f in files) + "]"]
    for key, value in overrides.items():
        command += [f"--{key}", str(value)]
    env = isolated_env(root)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).strip(os.pathsep)
    env["OMP_NUM_THREADS"] = "1"
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"torchrun did not end within {timeout} s:\n{output[-6000:]}") from None
    return process.returncode, output, time.time()


@pytest.mark.slow
def test_rank_exit_mid_epoch_restarts_resumes_and_completes(tmp_path):
    overrides = {
        **TINY,
        "max_epochs": 2,
        "val_interval": 1,
        "resume": True,
        "output_dir": tmp_path / "eval",
        "ckpt_dir": tmp_path / "models",
    }
    fault = {"fault_rank": 1, "epoch": 2, "iteration": 2, "action": "exit", "stamp": str(tmp_path / "fired")}
    returncode, output, _ = _torchrun(tmp_path, fault, overrides, max_restarts=1, timeout=900)
    assert returncode == 0, output[-6000:]
    assert (tmp_path / "fired").is_file() and "fault injection: rank 1 exits" in output
    assert "resumed from" in output and "at epoch 1" in output, output[-4000:]  # the restart resumed, not restarted
    last = torch.load(tmp_path / "models" / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert int(last["meta"]["epoch"]) == 2
    assert torch.load(tmp_path / "models" / "model.pt", map_location="cpu", weights_only=True)


@pytest.mark.slow
def test_hung_rank_fails_the_job_within_the_process_group_timeout(tmp_path):
    overrides = {
        **TINY,
        "max_epochs": 1,
        "val_interval": 1,
        "ddp_timeout_minutes": HANG_TIMEOUT_S / 60,
        # only rank 0 tracks: its MLflow SQLite set-up before the first all-reduce would eat into the timeout, and
        # this case reads nothing from MLflow
        "tracking_enabled": False,
        "output_dir": tmp_path / "eval",
        "ckpt_dir": tmp_path / "models",
    }
    stamp = tmp_path / "fired"
    fault = {"fault_rank": 1, "epoch": 1, "iteration": 2, "action": "hang", "stamp": str(stamp)}
    returncode, output, ended = _torchrun(tmp_path, fault, overrides, max_restarts=0, timeout=600)
    assert returncode != 0, output[-4000:]
    assert stamp.is_file(), output[-4000:]
    hung_for = ended - float(stamp.read_text())
    assert hung_for < HANG_TIMEOUT_S + HANG_MARGIN_S, f"the job hung {hung_for:.0f} s:\n{output[-4000:]}"


def test_init_process_group_keys_each_torchrun_attempt_apart(monkeypatch):
    """Under torchrun's agent store, attempt N's group lives under its own prefix, so keys left by attempt N-1
    (here: a stale gloo address) are never read (case 7 found restarted jobs waiting on them forever)."""
    import torch.distributed as dist

    from radlas_monai.engines.distributed import init_process_group

    agent_store = dist.TCPStore("127.0.0.1", 0, 1, True)  # what torchrun's agent hosts
    agent_store.set("default_pg/0//cpu//0", b"stale address of attempt 0")
    env = {"RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(agent_store.port)}
    env.update(TORCHELASTIC_RESTART_COUNT="1", TORCHELASTIC_USE_AGENT_STORE="True")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        assert init_process_group(0.5, backend="gloo") is True
        assert init_process_group(0.5, backend="gloo") is False  # once
        assert dist.get_world_size() == 1
        assert agent_store.num_keys() > 1 and agent_store.get("default_pg/0//cpu//0") == b"stale address of attempt 0"
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    with pytest.raises(ValueError, match="timeout"):
        init_process_group(0)
