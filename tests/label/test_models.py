from __future__ import annotations

import json

import pytest
import torch
from label_fixtures import CLASS_NAMES, IMAGE_SIZE, write_tiny_bundles

from radlas_monai.label.models import (
    build_classifier,
    build_lesion_network,
    classification_bundle_spec,
    lesion_bundle_spec,
    read_plain_values,
)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    return write_tiny_bundles(tmp_path_factory.mktemp("bundles"))


def test_read_plain_values_never_returns_expressions(tmp_path):
    marker = tmp_path / "evaluated"
    config = {"preset": "tiny", "image_size": f"$open({str(marker)!r}, 'w')", "names": ["@ref"], "n": 3}
    (tmp_path / "c.json").write_text(json.dumps(config))
    assert read_plain_values(tmp_path / "c.json", ["preset", "image_size", "names", "n", "absent"]) == {
        "preset": "tiny",
        "n": 3,
    }
    assert not marker.exists()
    assert read_plain_values(tmp_path / "missing.json", ["preset"]) == {}


def test_lesion_spec_falls_back_to_pretrain_checkpoint(bundles):
    spec = lesion_bundle_spec(bundles / "lesion_localization")
    assert spec.checkpoint == bundles / "pretrain" / "models" / "model.pt"
    assert (spec.preset, spec.image_size, spec.values["min_area"]) == ("tiny", IMAGE_SIZE, 4)


def test_networks_are_built_and_loaded(bundles):
    lesion = build_lesion_network(lesion_bundle_spec(bundles / "lesion_localization"))
    spec = classification_bundle_spec(bundles / "finetune_classification")
    classifier = build_classifier(spec)
    x = torch.rand(1, 1, IMAGE_SIZE, IMAGE_SIZE)
    with torch.inference_mode():
        heat = lesion(x)
        probabilities = classifier(x).probabilities()
    assert heat.shape == (1, 1, IMAGE_SIZE, IMAGE_SIZE) and float(heat.min()) >= 0 and float(heat.max()) <= 1
    assert probabilities.shape == (1, len(CLASS_NAMES)) and spec.values["class_names"] == CLASS_NAMES
    assert not lesion.training and not classifier.training


def test_missing_classifier_checkpoint_names_the_command(tmp_path):
    spec = classification_bundle_spec(tmp_path)
    with pytest.raises(FileNotFoundError, match="finetune_classification/configs/train.json"):
        build_classifier(spec)


def test_bad_image_size_is_rejected(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "inference.json").write_text(json.dumps({"image_size": -3}))
    with pytest.raises(ValueError, match="image_size must be a positive int"):
        lesion_bundle_spec(tmp_path)
