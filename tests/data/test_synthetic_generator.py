"""render_radiograph: determinism, sizes, value range, labels, random draws and argument checks."""

from __future__ import annotations

import numpy as np
import pytest

from radlas_monai.data.synthetic.generator import (
    FIELD_OF_VIEW_MM,
    SyntheticRadiograph,
    draw_findings,
    render_radiograph,
)
from radlas_monai.data.vocabulary import SYNTHETIC_FINDINGS


def _same(a: SyntheticRadiograph, b: SyntheticRadiograph) -> bool:
    return (
        np.array_equal(a.image, b.image)
        and np.array_equal(a.lung_mask, b.lung_mask)
        and a.finding_names == b.finding_names
        and all(np.array_equal(x.mask, y.mask) and x.box == y.box for x, y in zip(a.findings, b.findings))
        and a.label == b.label
    )


@pytest.mark.parametrize("seed", [0, 7, 123456789])
def test_deterministic_per_seed(seed):
    assert _same(render_radiograph(seed, 96), render_radiograph(seed, 96))


def test_different_seeds_differ():
    images = [render_radiograph(s, 96, findings=[]).image for s in range(4)]
    for i in range(4):
        for j in range(i + 1, 4):
            assert np.abs(images[i] - images[j]).mean() > 0.01


def test_no_global_random_state_is_used_or_changed():
    np.random.seed(1)
    before = np.random.get_state()[1].copy()
    first = render_radiograph(5, 64)
    assert np.array_equal(np.random.get_state()[1], before)
    np.random.seed(99)  # a different global state changes nothing
    assert _same(first, render_radiograph(5, 64))


@pytest.mark.parametrize("size", [256, 512])
def test_shapes_dtype_range_and_spacing(size):
    sample = render_radiograph(11, size)
    assert sample.image.shape == (size, size) and sample.image.dtype == np.float32
    assert sample.lung_mask.shape == (size, size) and sample.lung_mask.dtype == np.uint8
    assert float(sample.image.min()) >= 0.0 and float(sample.image.max()) <= 1.0
    assert sample.image.std() > 0.15  # a full-contrast radiograph, not a flat image
    assert (sample.image < 0.05).mean() > 0.02  # air outside the body is black (MONOCHROME2)
    assert sample.spacing == pytest.approx((FIELD_OF_VIEW_MM / size,) * 2)
    assert sample.seed == 11 and len(sample.label) == len(SYNTHETIC_FINDINGS)


def test_lesion_sizes_scale_with_the_image():
    small = render_radiograph(2, 128, findings=["Mass"]).findings[0]
    large = render_radiograph(2, 256, findings=["Mass"]).findings[0]
    assert large.radius == pytest.approx(2 * small.radius)  # same mm, twice the pixels


def test_normal_images_have_no_findings_and_a_zero_label():
    sample = render_radiograph(3, 64, findings=[])
    assert sample.findings == [] and sample.is_normal
    assert sample.label == [0] * len(SYNTHETIC_FINDINGS)
    assert not sample.lesion_mask.any()
    always_normal = [render_radiograph(s, 64, normal_prob=1.0) for s in range(5)]
    assert all(s.is_normal and sum(s.label) == 0 for s in always_normal)


def test_random_draws_follow_normal_prob():
    rng = np.random.default_rng(0)
    draws = [draw_findings(rng, 0.35) for _ in range(2000)]
    normal_share = np.mean([not d for d in draws])
    assert 0.31 < normal_share < 0.39
    assert all(0 <= len(d) <= 3 and len(set(d)) == len(d) for d in draws)
    assert {n for d in draws for n in d} == set(SYNTHETIC_FINDINGS)
    never_normal = [draw_findings(rng, 0.0) for _ in range(200)]
    assert all(never_normal)


def test_random_sample_label_matches_its_findings():
    for seed in range(6):
        sample = render_radiograph(seed, 96, normal_prob=0.0)
        assert sample.findings
        assert sample.label == [int(n in sample.finding_names) for n in SYNTHETIC_FINDINGS]


def test_finding_names_are_harmonized():
    sample = render_radiograph(1, 96, findings=["pleural effusion"])
    assert sample.finding_names == ["Effusion"]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"seed": -1}, ValueError, "non-negative"),
        ({"seed": 0, "image_size": 32}, ValueError, "at least 64"),
        ({"seed": 0, "findings": ["Fracture"]}, ValueError, "cannot render finding 'Fracture'"),
        ({"seed": 0, "findings": ["Banana"]}, ValueError, "cannot render finding 'Banana'"),
        ({"seed": 0, "findings": "Nodule"}, TypeError, "sequence of names"),
        ({"seed": 0, "normal_prob": 1.5}, ValueError, "normal_prob"),
    ],
)
def test_bad_arguments_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        render_radiograph(**kwargs)
