"""The LocalizationMetrics accumulator end to end (radlas_monai.metrics.localization)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from radlas_monai.metrics.auroc import roc_auc
from radlas_monai.metrics.bootstrap import bootstrap_weights
from radlas_monai.metrics.froc import FROC_FP_RATES, froc_curve, froc_sensitivities, jafroc_fom
from radlas_monai.metrics.localization import LocalizationMetrics

SIZE = 32
JSRT = Path(__file__).resolve().parents[3] / "shared" / "data" / "jsrt_nodule"


def _bump(x: float, y: float, height: float, sigma: float = 2.0, size: int = SIZE) -> np.ndarray:
    ys, xs = np.mgrid[:size, :size]
    return (height * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))).astype(np.float32)


# (map, item): a nodule found, a mass missed (the peak is elsewhere), a normal image with a weak bump
CASES = [
    (_bump(8, 8, 1.0), {"patient": "p1", "findings": ["Nodule"], "centers": [[8, 8]], "radii": [3]}),
    (
        _bump(5, 25, 0.8),
        {"patient": "p2", "findings": ["Mass"], "boxes": [[20, 20, 28, 28]], "box_findings": ["Mass"]},
    ),
    (_bump(16, 16, 0.5), {"patient": "p3", "findings": []}),
]


def _filled(**kwargs) -> LocalizationMetrics:
    metric = LocalizationMetrics(**{"bootstrap": 0, **kwargs})
    for heat, item in CASES:
        metric(heat, item)
    return metric


def test_hand_checked_values():
    out = _filled().aggregate()
    assert (out["n_images"], out["n_abnormal"], out["n_normal"], out["n_lesions"]) == (3, 2, 1, 2)
    assert out["pointing_game"] == 0.5
    assert out["image_auroc"] == 1.0  # map maxima 1.0, 0.8 (abnormal) > 0.5 (normal)
    assert out["box_acc_iobb_0.1"] == 0.5 and out["box_acc_iou_0.9"] == 0.0
    # FROC marks: nodule rated 1.0; the mass image's and the normal image's peaks are FPs (.8, .5) on 3 images
    assert out["froc_sens_fp_1"] == 0.5 and out["froc_sens_fp_0.125"] == 0.5
    # JAFROC-1: lesions (1.0, -inf) vs highest FP per image (-inf, .8, .5): 1.0 beats all; -inf ties the first
    assert out["jafroc_fom"] == pytest.approx((3 + 0.5) / 6)
    assert out["jafroc_fom_normals"] == pytest.approx((1 + 0) / 2)
    assert out["pixel_auroc"] > 0.5 and out["cnr"] > 0 and 0 < out["mean_iou"] < 1
    assert out["froc_curve"]["fps"][0] == 0.0 and len(out["froc_curve"]["fps"]) == len(out["froc_curve"]["sensitivity"])


def test_per_class_breakdown():
    out = _filled().aggregate()
    assert set(out["per_class"]) == {"Mass", "Nodule"}
    nodule, mass = out["per_class"]["Nodule"], out["per_class"]["Mass"]
    assert (nodule["n_images"], nodule["n_lesions"], nodule["pointing_game"]) == (2, 1, 1.0)
    assert (mass["n_images"], mass["n_lesions"], mass["pointing_game"]) == (2, 1, 0.0)
    assert nodule["box_acc_iobb_0.1"] == 1.0 and mass["box_acc_iobb_0.1"] == 0.0
    assert mass["froc_sens_fp_8"] == 0.0 and nodule["froc_sens_fp_8"] == 1.0
    named = _filled(class_names=["Nodule", "Effusion"]).aggregate()["per_class"]
    assert list(named) == ["Nodule", "Effusion"] and math.isnan(named["Effusion"]["pointing_game"])


def test_confidence_intervals_are_seeded_and_bracket_the_estimate():
    a = _filled(bootstrap=40, seed=7).aggregate()
    b = _filled(bootstrap=40, seed=7).aggregate()
    assert a["ci"] == b["ci"]
    low, high = a["ci"]["pointing_game"]
    assert 0.0 <= low <= a["pointing_game"] <= high <= 1.0
    assert "n_images" not in a["ci"] and set(a["per_class"]["Nodule"]["ci"]) >= {"pointing_game", "jafroc_fom"}
    json.dumps(a)  # plain types throughout


def test_batches_tensors_and_reset():
    single = _filled().aggregate()
    batched = LocalizationMetrics(bootstrap=0)
    batched(torch.tensor(np.stack([h for h, _ in CASES]))[:, None], [item for _, item in CASES])
    assert batched.aggregate()["pointing_game"] == single["pointing_game"]
    assert len(batched.records) == 3
    batched.reset()
    with pytest.raises(ValueError, match="no images"):
        batched.aggregate()


@pytest.mark.parametrize("seed", [0, 1])
def test_weighted_summaries_match_the_pure_functions(seed):
    """The table's rank-based fast path (used for every bootstrap resample) equals the reference functions."""
    rng = np.random.default_rng(seed)
    metric = LocalizationMetrics(bootstrap=0, localize_kwargs={"min_distance": 2, "max_peaks": 6})
    for i in range(14):
        heat = rng.random((SIZE, SIZE)).astype(np.float32)
        item = {"findings": []}
        if i % 3:
            centres = rng.uniform(4, SIZE - 4, size=(1 + i % 2, 2)).round(1).tolist()
            item = {"findings": ["Nodule"], "centers": centres, "radii": [4.0] * len(centres)}
        metric(heat, item)
    table = metric.table()
    weights = bootstrap_weights(table.n, 1, seed=seed)[0]
    got = table.summarize(weights)
    lw, fw = weights[table.lesion_image], weights[table.fp_image]
    fps, sens, _ = froc_curve(table.lesion_rating, table.fp_rating, weights.sum(), lw, fw)
    expected_sens = froc_sensitivities(fps, sens, FROC_FP_RATES)
    assert [got[f"froc_sens_fp_{r:g}"] for r in FROC_FP_RATES] == pytest.approx(expected_sens.tolist())
    assert got["jafroc_fom"] == pytest.approx(jafroc_fom(table.lesion_rating, table.max_fp, lw, weights))
    assert got["jafroc_fom_normals"] == pytest.approx(
        jafroc_fom(table.lesion_rating, table.max_fp, lw, weights * table.normal)
    )
    assert got["image_auroc"] == pytest.approx(roc_auc(table.image_score, ~table.normal, weights))
    np.testing.assert_allclose(table.froc(weights)[0], fps)


@pytest.mark.parametrize(
    "heat, annotation, match",
    [
        [np.zeros((2, 1, SIZE, SIZE)), [CASES[0][1]], "B = 1"],
        [np.zeros((SIZE, SIZE + 1)), {"findings": ["Nodule"], "mask": np.zeros((SIZE, SIZE))}, "differs"],
    ],
)
def test_bad_inputs(heat, annotation, match):
    with pytest.raises(ValueError, match=match):
        LocalizationMetrics(bootstrap=0)(heat, annotation)


@pytest.mark.skipif(not JSRT.exists(), reason="needs the JSRT nodule subset in ../shared (not part of the repo)")
def test_jsrt_oracle_and_random_maps():
    """On real JSRT annotations, a map peaking on each nodule scores perfectly and a random one does not."""
    from radlas_monai.data.adapters.jsrt_nodule import build_datalist

    datalist = build_datalist(JSRT, split=(1.0, 0.0, 0.0))
    nodules = [i for i in datalist["training"] if i.get("centers")][:6]
    items = nodules + [i for i in datalist["training"] if not i.get("centers")][:6]
    rng = np.random.default_rng(0)
    oracle, random = LocalizationMetrics(bootstrap=0), LocalizationMetrics(bootstrap=0)
    ys, xs = np.mgrid[:512, :512]
    for item in items:
        if item.get("centers"):
            (cx, cy), r = item["centers"][0], item["radii"][0]
            heat = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * r**2)).astype(np.float32)
        else:
            heat = np.zeros((512, 512), np.float32)
        oracle(heat, item)
        random(rng.random((512, 512)).astype(np.float32), item)
    good, bad = oracle.aggregate(), random.aggregate()
    assert (
        good["n_lesions"] == 6
        and good["n_normal"] == 6
        and good["pointing_game"] == 1.0
        and good["froc_sens_fp_0.125"] == 1.0
    )
    assert good["box_acc_iou_0.1"] == 1.0 and good["image_auroc"] == 1.0
    assert bad["pointing_game"] < 0.3 and bad["froc_mean_sens"] < good["froc_mean_sens"]
