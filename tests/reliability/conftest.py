"""Shared set-up of the reliability campaign (issue 9).

Puts the helper folders of the other test packages on ``sys.path`` (the campaign reuses the byte-level forgers of
``tests/data/radiograph_fixtures.py``, the bundle runner of ``tests/bundles/bundle_runner.py`` and the tiny MONAI Label
bundles of ``tests/label/label_fixtures.py`` instead of copying them) and holds the session fixtures shared by the
case families: one pretrain run and one localization inference run over the bad-file corpus and the PHI DICOM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for helper_dir in ("data", "bundles", "label", "reliability"):
    if str(TESTS / helper_dir) not in sys.path:
        sys.path.insert(0, str(TESTS / helper_dir))

from bundle_runner import KILL_INSIDE_SECOND_SAVE  # noqa: E402
from campaign import (  # noqa: E402
    REPO,
    TINY_PRETRAIN,
    CampaignRun,
    hold_store_lock,
    write_good_pngs,
    write_hostile_configs,
    write_phi_dicom,
)


def one_thread_env(root: Path) -> dict[str, str]:
    """The bundle runner's isolated environment on one intra-op thread: multi-threaded CPU kernels may sum in a
    different order from run to run, and the resume case compares runs bit for bit."""
    from bundle_runner import isolated_env

    return isolated_env(root, threads=1)


@pytest.fixture(scope="session")
def campaign(tmp_path_factory) -> CampaignRun:
    """One seeded pretrain run (``train.json``, 2 epochs) whose training split holds the whole bad-file corpus, the
    PHI DICOM and good PNGs; the MLflow store is locked under ``BEGIN EXCLUSIVE`` from the run's creation until the
    end of epoch 1. Shared by the bad-input, PHI, checkpoint and tracking families (one bundle run instead of four).
    """
    from bundle_runner import bundle_command
    from corpus import build_corpus

    root = tmp_path_factory.mktemp("campaign")
    corpus = build_corpus(root / "inputs" / "corpus")
    goods = write_good_pngs(root / "inputs" / "good", 6)
    phi_file = write_phi_dicom(root / "inputs" / "patients")
    # the PHI file first: the loader's once-per-kind warnings are about it
    training = [{"image": str(p)} for p in [phi_file] + goods[:4]] + [{"image": str(e.path)} for e in corpus]
    validation = [{"image": str(p)} for p in goods[4:]]
    # case 5: a data file full of values a bundle ConfigParser would evaluate; none of them may ever run
    evaluate = f"$open({str(root / 'evaluated-marker')!r}, 'w').write('x')"
    for item in training[1:5]:
        item.update(findings=[evaluate], patient=evaluate, note={"_target_": "builtins.open", "file": evaluate})
    datalist = root / "inputs" / "datalist.json"
    content = {"name": "campaign", "description": evaluate, "training": training, "validation": validation}
    datalist.write_text(json.dumps(content))
    overrides = {**TINY_PRETRAIN, "datalist": datalist, "val_interval": 1}
    run = CampaignRun(root, datalist, corpus, phi_file, overrides)
    out = {**overrides, "output_dir": root / "eval", "ckpt_dir": root / "models"}
    log = (root / "train.log").open("w")
    process = subprocess.Popen(
        bundle_command("pretrain", "train", out),
        cwd=REPO,
        env=one_thread_env(root),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        db = root / "mlruns" / "mlflow.db"
        run.lock_held_s = hold_store_lock(db, process, root / "models" / "checkpoint_last.pt", 600)
        process.wait(timeout=900)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
    run.output = (root / "train.log").read_text()
    assert process.returncode == 0, run.output[-6000:]
    return run


@pytest.fixture(scope="session")
def localized(campaign, tmp_path_factory):
    """Lesion-localization inference over a folder holding the corpus, good PNGs and the PHI DICOM."""
    import shutil

    from bundle_runner import run_bundle

    root = tmp_path_factory.mktemp("localize")
    inputs = root / "inputs"
    shutil.copytree(campaign.root / "inputs" / "corpus", inputs / "corpus")
    shutil.copytree(campaign.root / "inputs" / "good", inputs / "good")
    shutil.copy(campaign.phi_file, inputs / campaign.phi_file.name)
    write_hostile_configs(inputs, root / "evaluated-marker")
    result = run_bundle(
        root,
        "lesion_localization",
        "inference",
        {
            "image_size": 64,
            "ckpt_path": campaign.root / "models" / "model.pt",
            "dataset_dir": inputs,
            "output_dir": root / "out",
            "min_area": 4,
        },
        cwd=inputs,  # hostile logging.conf and configs/ in the working folder and the data folder
    )
    return root, inputs, result.stdout + result.stderr


@pytest.fixture(scope="session")
def crashed_and_resumed(campaign, tmp_path_factory) -> CampaignRun:
    """The campaign's run again (same data, seed and store layout), SIGKILLed inside its epoch-2 checkpoint save,
    then restarted with ``--resume True``. ``extra`` records what was on disk right after the kill."""
    import torch
    from bundle_runner import bundle_command

    root = tmp_path_factory.mktemp("killed")
    run = CampaignRun(root, campaign.datalist, campaign.corpus, campaign.phi_file, campaign.overrides)
    out = {**campaign.overrides, "output_dir": root / "eval", "ckpt_dir": root / "models"}
    command = bundle_command("pretrain", "train", out, launcher=[sys.executable, "-c", KILL_INSIDE_SECOND_SAVE])
    killed = subprocess.run(command, cwd=REPO, env=one_thread_env(root), capture_output=True, text=True, timeout=900)
    last = root / "models" / "checkpoint_last.pt"
    run.extra["killed_returncode"] = killed.returncode
    run.extra["killed_output"] = killed.stdout + killed.stderr
    run.extra["epoch_after_kill"] = int(torch.load(last, map_location="cpu", weights_only=True)["meta"]["epoch"])
    run.extra["temp_files_after_kill"] = sorted(p.name for p in last.parent.glob(".checkpoint_last.pt.*"))
    resumed = subprocess.run(
        bundle_command("pretrain", "train", {**out, "resume": True}),
        cwd=REPO,
        env=one_thread_env(root),
        capture_output=True,
        text=True,
        timeout=900,
    )
    run.output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, run.output[-6000:]
    return run
