"""Case 2: patient identifiers, in a DICOM header *and* its file name, never leave the input.

The DICOM of :func:`conftest.write_phi_dicom` (name, ID, birth date, institution in the header; name, ID and birth
date in the file name; modality OT and no spacing so that the loader warns about this very file) goes through one
training run and one localization inference run (the campaign's bundle runs) and a MONAI Label request
(test_servers.py). No identifier may appear in the logs, the MLflow store (database bytes and artifacts), the
caches, the output files or their names. Meta data built from an allow-list is unit-tested in
tests/data/test_loader.py::test_patient_identifiers_never_reach_meta_or_logs (header values, file named ``phi.dcm``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from campaign import PHI_TOKENS, write_phi_dicom

from radlas_monai.data.loader import LoadRadiograph


def leaks(folder: Path, skip: tuple[Path, ...] = ()) -> list[str]:
    """Every file under ``folder`` (outside ``skip``) whose name or bytes hold a PHI token."""
    found = []
    for path in sorted(folder.rglob("*")):
        if any(path.is_relative_to(s) for s in skip) or not path.is_file():
            continue
        data = path.read_bytes()
        hits = [t for t in PHI_TOKENS if t in path.name or t.encode() in data or t.encode("utf-16-le") in data]
        if hits:
            found.append(f"{path.relative_to(folder)}: {hits}")
    return found


def test_loader_warnings_name_the_image_id_not_the_file(tmp_path, caplog):
    """The loader warns about the PHI file (OT modality, no spacing) without its file name, at every level."""
    path = write_phi_dicom(tmp_path)
    with caplog.at_level(logging.DEBUG, logger="radlas_monai"):
        image = LoadRadiograph()(path)
        LoadRadiograph()(path)
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("modality" in m for m in warned) and any("spacing" in m for m in warned)
    assert all(f"image {image.meta['image_id']}" in m for m in warned)
    assert not [t for t in PHI_TOKENS if t in caplog.text]
    assert not [t for t in PHI_TOKENS if t in repr({k: v for k, v in image.meta.items() if k != "filename_or_obj"})]


@pytest.mark.slow
def test_training_run_keeps_identifiers_out_of_logs_store_artifacts_and_outputs(campaign):
    assert campaign.phi_file.name.startswith(PHI_TOKENS[0])
    skipped = (campaign.root / "eval" / "skipped_training.json").read_text()
    assert campaign.phi_file.name not in skipped  # it was read and trained on, not left out
    assert (campaign.root / "mlruns" / "mlflow.db").is_file() and any((campaign.root / "mlruns").rglob("*.png"))
    assert not [t for t in PHI_TOKENS if t in campaign.output], "identifier in the training log"
    assert not leaks(campaign.root, skip=(campaign.root / "inputs",))


@pytest.mark.slow
def test_inference_run_keeps_identifiers_out_of_logs_and_outputs(localized):
    root, inputs, output = localized
    assert not [t for t in PHI_TOKENS if t in output], "identifier in the inference log"
    assert not leaks(root, skip=(inputs,))
