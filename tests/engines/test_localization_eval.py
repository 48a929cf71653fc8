"""The localization evaluation harness: annotations at the evaluated resolution, methods side by side, reports."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from radlas_monai.data.writers import write_png
from radlas_monai.engines.localization_data import (
    LoadAnnotatedRadiograph,
    collate_annotated,
    has_annotation,
    rescale_annotation,
)
from radlas_monai.engines.localization_eval import (
    ClassifierEvidenceMap,
    LocalizationEvalStep,
    bundle_methods,
    evaluate_localization,
    method_table,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    "item, shape, size, expected",
    [
        (
            {"boxes": [[10, 20, 31, 41]], "box_findings": ["Nodule"], "findings": ["Nodule"]},
            (80, 40),
            20,
            {"boxes": [[5, 5, 16, 11]], "box_findings": ["Nodule"], "centers": [], "radii": []},
        ),
        (
            {"centers": [[20.0, 40.0]], "radii": [8.0], "findings": ["Nodule"], "patient": "p1"},
            (80, 40),
            20,
            {"boxes": [], "centers": [[10.0, 10.0]], "radii": [8.0 * np.sqrt(0.5 * 0.25)], "patient": "p1"},
        ),
    ],
)
def test_annotations_are_rescaled_to_the_evaluated_grid(item, shape, size, expected):
    out = rescale_annotation(item, shape, size)
    for key, value in expected.items():
        if key == "radii":
            np.testing.assert_allclose(out[key], value)
        else:
            assert out[key] == value, key
    assert out["findings"] == item["findings"]


def test_annotation_consistency_is_checked():
    with pytest.raises(ValueError, match="2 centers but 1 radii"):
        rescale_annotation({"image": "a.png", "centers": [[1, 1], [2, 2]], "radii": [1]}, (8, 8), 8)


@pytest.mark.parametrize(
    "item, expected",
    [({"findings": []}, True), ({"label": [0, 1]}, False), ({"findings": ["Mass"], "centers": [[1, 1]]}, True)],
)
def test_which_items_can_be_scored(item, expected):
    assert has_annotation(item) is expected


def _lesion_image(rng, shape, box):
    image = (rng.random(shape) * 60).astype(np.uint8)
    x0, y0, x1, y1 = box
    image[y0:y1, x0:x1] = 250
    return image


@pytest.fixture()
def annotated(tmp_path):
    """Non-square radiographs with one bright 'lesion' each (box + mask), and two normal images."""
    rng = np.random.default_rng(0)
    items = []
    for i, (shape, box) in enumerate([((48, 64), [40, 8, 52, 20]), ((64, 48), [6, 30, 18, 42])] * 2):
        image = write_png(_lesion_image(rng, shape, box), tmp_path / f"img{i}.png")
        mask = np.zeros(shape, np.uint8)
        mask[box[1] : box[3], box[0] : box[2]] = 255
        items.append(
            {
                "image": str(image),
                "mask": str(write_png(mask, tmp_path / f"mask{i}.png")),
                "boxes": [box],
                "box_findings": ["Nodule"],
                "findings": ["Nodule"],
                "patient": f"p{i}",
            }
        )
    for i in range(2):
        path = write_png((rng.random((40, 40)) * 60).astype(np.uint8), tmp_path / f"normal{i}.png")
        items.append({"image": str(path), "findings": [], "patient": f"n{i}"})
    return items


def test_loader_resizes_image_and_mask_together(annotated):
    sample = LoadAnnotatedRadiograph(image_size=32)(annotated[0])
    assert tuple(sample["image"].shape) == (1, 32, 32) and len(sample["image_id"]) == 16
    mask = sample["annotation"]["mask"]
    assert mask.shape == (32, 32) and mask.dtype == bool
    ys, xs = np.nonzero(mask)  # box [40, 8, 52, 20] of a 64 x 48 image -> x * 0.5, y * 2 / 3
    assert (
        (xs.min(), xs.max() + 1) == (20, 26)
        and abs(ys.min() - 8 * 32 / 48) <= 1
        and abs(ys.max() + 1 - 20 * 32 / 48) <= 1
    )
    assert sample["annotation"]["boxes"] == [[20, 5, 26, 14]]
    batch = collate_annotated([sample, sample])
    assert tuple(batch["image"].shape) == (2, 1, 32, 32) and len(batch["annotation"]) == 2


def test_good_method_beats_bad_method_side_by_side(annotated, tmp_path):
    methods = {"intensity": lambda x: x, "inverted": lambda x: 1.0 - x}
    out = tmp_path / "eval"
    results = evaluate_localization(methods, annotated, image_size=32, output_dir=out, batch_size=4, bootstrap=20)
    assert list(results) == ["intensity", "inverted"]
    assert results["intensity"]["pointing_game"] == 1.0 and results["inverted"]["pointing_game"] == 0.0
    assert results["intensity"]["pixel_auroc"] > 0.95 > results["inverted"]["pixel_auroc"]
    assert results["intensity"]["n_images"] == 6 and results["intensity"]["n_lesions"] == 4
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["intensity"]["pointing_game"] == 1.0 and "ci" in saved["intensity"]
    table = (out / "metrics.md").read_text()
    assert table.count("| intensity | 1.000") == 1 and "| inverted | 0.000" in table
    assert (out / "froc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "skipped.json").read_text())["skipped"] == []


def test_bad_files_are_skipped_and_reported(annotated, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10)
    items = annotated + [{"image": str(tmp_path / "broken.png"), "findings": []}]
    results = evaluate_localization({"id": lambda x: x}, items, 32, tmp_path / "eval", bootstrap=0)
    assert results["id"]["n_images"] == 6
    skipped = json.loads((tmp_path / "eval" / "skipped.json").read_text())["skipped"]
    assert [s["path"].endswith("broken.png") for s in skipped] == [True]


def test_methods_must_return_maps_shaped_like_the_input():
    step = LocalizationEvalStep({"pooled": lambda x: x.mean(dim=(2, 3))})
    batch = {"image": torch.zeros(2, 1, 8, 8), "annotation": [{}, {}]}
    with pytest.raises(ValueError, match="'pooled'"):
        step(SimpleNamespace(state=SimpleNamespace(device="cpu")), batch)


def test_bundle_methods_and_classifier_evidence():
    class Classifier(torch.nn.Module):
        def forward(self, image):
            evidence = torch.zeros(image.shape[0], 2, *image.shape[2:])
            evidence[:, 0, :2], evidence[:, 1, 2:] = 1.0, 0.5
            return SimpleNamespace(logits=torch.tensor([[0.0, 100.0]]), evidence_maps=evidence)

    methods = bundle_methods(lambda x: x, Classifier(), {"residual": lambda x: x})
    assert list(methods) == ["radlas", "radlas_classifier", "residual"]
    evidence = methods["radlas_classifier"](torch.zeros(1, 1, 4, 4))
    np.testing.assert_allclose(evidence[0, 0, :2], 0.5)  # sigmoid(0) * 1.0
    np.testing.assert_allclose(evidence[0, 0, 2:], 0.5)  # sigmoid(100) * 0.5
    assert isinstance(methods["radlas_classifier"], ClassifierEvidenceMap)
    with pytest.raises(ValueError, match="clash"):
        bundle_methods(lambda x: x, None, {"radlas": lambda x: x})


def test_method_table_has_one_row_per_method():
    results = {"a": {"pointing_game": 0.5, "ci": {"pointing_game": [0.25, 0.75]}}, "b": {"pointing_game": float("nan")}}
    table = method_table(results, keys=("pointing_game",))
    assert table.splitlines() == [
        "| method | pointing_game |",
        "|---|---|",
        "| a | 0.500 [0.250, 0.750] |",
        "| b | n/a |",
    ]
