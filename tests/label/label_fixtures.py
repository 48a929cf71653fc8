"""Test inputs for the MONAI Label tests: tiny bundles (64 px networks) and a studies folder, written per test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

CLASS_NAMES = ["Nodule", "Effusion", "Cardiomegaly"]
IMAGE_SIZE = 64


def write_tiny_bundles(root: Path) -> Path:
    """``root/{pretrain, lesion_localization, finetune_classification}`` with tiny 64 px checkpoints."""
    from radlas_monai.networks import RadLAS
    from radlas_monai.networks.classifier import RadLASClassifier

    torch.manual_seed(0)  # test-only: deterministic random weights
    (root / "pretrain" / "models").mkdir(parents=True)
    torch.save(RadLAS(preset="tiny", img_size=IMAGE_SIZE).state_dict(), root / "pretrain" / "models" / "model.pt")
    lesion = root / "lesion_localization" / "configs"
    lesion.mkdir(parents=True)
    config = {"preset": "tiny", "image_size": IMAGE_SIZE, "ckpt_path": "$@pretrain_root + '/models/model.pt'"}
    (lesion / "inference.json").write_text(json.dumps({**config, "min_area": 4, "threshold_method": "otsu"}))
    finetune = root / "finetune_classification"
    (finetune / "configs").mkdir(parents=True)
    (finetune / "models").mkdir()
    values = {"class_names": CLASS_NAMES, "preset": "tiny", "image_size": IMAGE_SIZE, "multi_label": True}
    (finetune / "configs" / "train.json").write_text(json.dumps(values))
    classifier = RadLASClassifier(CLASS_NAMES, preset="tiny", img_size=IMAGE_SIZE, from_scratch=True)
    torch.save(classifier.state_dict(), finetune / "models" / "model.pt")
    return root


def radiograph(height: int, width: int) -> np.ndarray:
    """A smooth non-square test image in [0, 1] with a bright blob (rows = y)."""
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    image = 0.3 + 0.4 * cols / width + 0.1 * rows / height
    image += 0.3 * np.exp(-((rows - height * 0.4) ** 2 + (cols - width * 0.6) ** 2) / 40.0)
    return np.clip(image, 0, 1).astype(np.float32)


def write_studies(folder: Path) -> Path:
    """``study-png.png`` (70 x 90) and ``study-dx.dcm`` (80 x 96, DX) in ``folder``."""
    from radlas_monai.data.writers import write_dicom, write_png

    folder.mkdir(parents=True, exist_ok=True)
    write_png(radiograph(70, 90), folder / "study-png.png")
    write_dicom(radiograph(80, 96), folder / "study-dx.dcm", modality="DX")
    return folder
