"""Tests for radlas_monai.transforms.lesion_synthesis.RandLesionSynthesis (the array transform)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from scipy import ndimage

from radlas_monai.transforms.lesion_synthesis import LESION_FAMILIES, RandLesionSynthesis
from radlas_monai.transforms.lesion_synthesis.poisson import laplacian
from radlas_monai.transforms.lesion_synthesis.regions import default_lung_fields


def radiographs(batch: int = 4, size: int = 96, seed: int = 0) -> torch.Tensor:
    """Chest-like test images: bright body, darker lung fields with rib-like stripes and fine texture."""
    g = torch.Generator().manual_seed(seed)
    lung = default_lung_fields(size, size, "cpu").float()[0, 0]
    rows = torch.linspace(0, 1, size)[:, None]
    phase = torch.rand(batch, 1, 1, generator=g)
    ribs = 0.08 * torch.sin(2 * torch.pi * (9 * rows[None] + phase)).clamp_min(0)
    texture = 0.03 * torch.rand(batch, size, size, generator=g)
    exposure = 0.1 * torch.arange(batch).view(-1, 1, 1) / max(1, batch - 1)
    image = 0.8 - lung * (0.5 - ribs - texture - exposure)
    return image[:, None].contiguous()


def lung_masks(batch: int = 4, size: int = 96) -> torch.Tensor:
    return default_lung_fields(size, size, "cpu").float().expand(batch, 1, size, size).contiguous()


def run(seed: int = 0, x: torch.Tensor | None = None, **kwargs):
    call = {k: kwargs.pop(k) for k in ("lung_mask", "spacing", "foreign") if k in kwargs}
    transform = RandLesionSynthesis(**kwargs)
    transform.set_random_state(seed)
    return transform(radiographs() if x is None else x, **call)


SHAPE_CASES = [
    [(1, 64, 64)],
    [(3, 48, 40)],
    [(2, 1, 64, 64)],
    [(5, 1, 48, 80)],
    [(2, 3, 40, 40)],
]


@pytest.mark.parametrize("shape", [c[0] for c in SHAPE_CASES])
def test_shapes_dtypes_and_identity_outside_mask(shape: tuple[int, ...]) -> None:
    x = torch.rand(shape)
    out = run(1, x, prob=1.0, num_lesions=3)
    assert out.image.shape == out.mask.shape == out.family.shape == x.shape
    assert out.image.dtype == torch.float32 and out.mask.dtype == torch.float32 and out.family.dtype == torch.int64
    assert out.healthy is x
    untouched = out.mask == 0
    assert torch.equal(out.image[untouched], x[untouched])
    assert bool((out.mask > 0).any())
    assert torch.equal(out.family > 0, out.mask > 0)
    assert float(out.image.min()) >= 0.0 and float(out.image.max()) <= 1.0
    assert float(out.mask.min()) >= 0.0 and float(out.mask.max()) <= 1.0


def test_image_is_a_new_tensor_and_input_is_unchanged() -> None:
    x = radiographs()
    before = x.clone()
    out = run(0, x, prob=0.0)
    assert torch.equal(x, before)
    assert torch.equal(out.image, x) and out.image.data_ptr() != x.data_ptr()
    assert float(out.mask.abs().sum()) == 0.0 and int(out.family.abs().sum()) == 0
    out = run(0, x, prob=1.0)
    assert torch.equal(x, before)
    assert out.binary_mask().dtype == torch.bool and torch.equal(out.binary_mask(), out.mask > 0)


def test_determinism_with_set_random_state() -> None:
    a, b, c = run(7, prob=1.0), run(7, prob=1.0), run(8, prob=1.0)
    for name in ("image", "mask", "family"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.mask, c.mask)
    single = radiographs(1)[0]
    assert torch.equal(run(3, single, prob=1.0).image, run(3, single, prob=1.0).image)


def test_global_random_states_untouched() -> None:
    np_state, py_state, torch_state = np.random.get_state(), random.getstate(), torch.get_rng_state()
    run(0, prob=1.0, num_lesions=3, lung_mask=lung_masks(), spacing=1.5)
    run(0, radiographs(1)[0], prob=1.0)
    after = np.random.get_state()
    assert np_state[0] == after[0] and np.array_equal(np_state[1], after[1]) and np_state[2:] == after[2:]
    assert random.getstate() == py_state
    assert torch.equal(torch.get_rng_state(), torch_state)


@pytest.mark.parametrize("dilation", [0.0, 2.0])
def test_lesions_stay_in_the_dilated_lung_mask(dilation: float) -> None:
    lung = torch.zeros(6, 1, 96, 96)
    lung[:, :, 20:80, 10:40] = 1
    lung[:, :, 30:85, 55:88] = 1
    lung[3] = 0
    lung[3, :, 40:60, 40:60] = 1  # one small square lung
    out = run(2, radiographs(6), prob=1.0, num_lesions=3, lung_mask=lung, spacing=1.0, lung_dilation=dilation)
    reach = 2 * int(round(dilation))  # soft dilation reaches exactly 0 at 2r pixels (square neighbourhood)
    allowed = ndimage.binary_dilation(lung.numpy() > 0, np.ones((1, 1, 2 * reach + 1, 2 * reach + 1)))
    assert bool((out.mask > 0).any())
    assert float(out.mask[torch.as_tensor(~allowed)].abs().max()) == 0.0
    assert bool((out.mask[3] > 0).any())


def test_lesion_centres_without_mask_use_default_lung_fields() -> None:
    out = run(4, radiographs(8), prob=1.0, num_lesions=1, family_probs={"nodule": 1.0}, lung_dilation=0.0)
    inside = default_lung_fields(96, 96, "cpu").expand(8, 1, 96, 96)
    assert bool((out.mask > 0).any()) and float(out.mask[~inside].abs().max()) == 0.0


def test_healthy_fraction_is_respected() -> None:
    out = run(11, radiographs(200, size=48), prob=0.8, num_lesions=1)
    touched = (out.mask.flatten(1) > 0).any(dim=1).float()
    assert abs(1.0 - float(touched.mean()) - 0.2) < 0.08
    assert not bool((run(11, radiographs(50, size=48), prob=0.0).mask > 0).any())


FAMILY_CASES = [
    ["nodule", 1.0],
    ["airspace_opacity", 1.0],
    ["foreign_patch", 0.0],
    ["effusion", 1.0],
    ["pneumothorax", -1.0],
]


@pytest.mark.parametrize("family,sign", FAMILY_CASES)
def test_each_family_draws_a_visible_lesion(family: str, sign: float) -> None:
    x = radiographs(4)
    kwargs = {"foreign_patch": {"match": (0.0, 0.0), "opacity": (1.0, 1.0)}}  # raw donors from the other images
    out = run(5, x, prob=1.0, num_lesions=1, family_probs={family: 1.0}, family_kwargs=kwargs, spacing=2.0)
    index = LESION_FAMILIES.index(family) + 1
    for b in range(4):
        inside = out.mask[b] > 0.3
        assert int(inside.sum()) > 0, f"{family}: image {b} has an empty lesion mask"
        assert torch.equal(torch.unique(out.family[b][out.mask[b] > 0]), torch.tensor([index]))
        change = (out.image[b] - x[b])[inside]
        assert float(change.abs().mean()) > 0.01, f"{family}: image {b} barely changed"
        if sign:
            assert float(change.mean()) * sign > 0, f"{family}: wrong direction of change in image {b}"


def test_size_in_mm_follows_the_spacing() -> None:
    kwargs = {
        "prob": 1.0,
        "num_lesions": 1,
        "family_probs": {"nodule": 1.0},
        "family_kwargs": {"nodule": {"diameter": (16, 16), "aspect": (1, 1), "lobulation": (0, 0)}},
        "lung_mask": torch.ones(2, 1, 128, 128),
    }
    coarse = run(0, radiographs(2, size=128), spacing=1.0, **kwargs)
    fine = run(0, radiographs(2, size=128), spacing=0.5, **kwargs)
    ratio = float((fine.mask > 0).sum()) / float((coarse.mask > 0).sum())
    assert 3.2 < ratio < 4.8, ratio


def test_numpy_float64_input() -> None:
    x = radiographs(1)[0].double().numpy()
    out = run(6, x, prob=1.0, num_lesions=2)
    assert isinstance(out.image, np.ndarray) and out.image.dtype == np.float64
    assert out.mask.dtype == np.float32 and out.family.dtype == np.int64 and out.healthy is x
    assert np.array_equal(out.image[out.mask == 0], x[out.mask == 0])
    assert (out.mask > 0).any() and out.image.min() >= 0 and out.image.max() <= 1


def test_metatensor_keeps_meta_and_gradients_are_not_tracked() -> None:
    x = MetaTensor(radiographs(2), meta={"filename_or_obj": "chest.png"})
    out = run(0, x, prob=1.0)
    assert isinstance(out.image, MetaTensor) and out.image.meta["filename_or_obj"] == "chest.png"
    leaf = radiographs(2).requires_grad_(True)
    out = run(0, leaf, prob=1.0)
    assert not out.image.requires_grad and not out.mask.requires_grad
    with torch.no_grad():
        again = run(0, radiographs(2), prob=1.0)
    assert torch.equal(again.image, out.image)


def test_spacing_per_image_and_foreign_donor() -> None:
    x = radiographs(2)
    out = run(
        9,
        x,
        prob=1.0,
        family_probs={"foreign_patch": 1.0},
        family_kwargs={"foreign_patch": {"diameter": (30.0, 40.0), "opacity": (1.0, 1.0)}},
        foreign=torch.zeros(1, 96, 96),
        spacing=[[1, 1], [2, 2]],
    )
    core = out.mask > 0.9
    assert bool(core.any())
    # a flat donor blended in the gradient domain brings no structure: inside the opaque core the image's own
    # fine structure (its Laplacian) is replaced by a smooth, harmonic fill of the surroundings
    before, after = (laplacian(img).abs()[core].mean() for img in (x, out.image))
    assert float(after) < 0.5 * float(before)
    assert torch.equal(out.image[out.mask == 0], x[out.mask == 0])


def test_randomize_false_repeats_the_draw() -> None:
    transform = RandLesionSynthesis(prob=1.0)
    transform.set_random_state(0)
    first = transform(radiographs(3))
    second = transform(radiographs(3), randomize=False)
    assert torch.equal(first.image, second.image)
    with pytest.raises(ValueError, match="previous draw"):
        transform(radiographs(2), randomize=False)


@pytest.mark.parametrize(
    "kwargs,call,match",
    [
        [{"family_probs": {"tumour": 1.0}}, {}, "unknown lesion families"],
        [{"family_probs": [1, 0]}, {}, "needs 5 values"],
        [{"family_probs": {"nodule": 0.0}}, {}, "not all zero"],
        [{"family_kwargs": {"cyst": {}}}, {}, "unknown lesion families"],
        [{"num_lesions": (3, 1)}, {}, "num_lesions"],
        [{}, {"img": torch.rand(64, 64)}, r"\(C, H, W\)"],
        [{}, {"img": torch.zeros(1, 64, 64, dtype=torch.uint8)}, "floating-point"],
        [{}, {"lung_mask": torch.ones(1, 32, 32)}, "lung_mask must match"],
        [{}, {"spacing": (1.0, -1.0)}, "positive"],
        [{}, {"spacing": (1.0, 1.0, 1.0)}, "spacing must be"],
        [{}, {"foreign": torch.rand(1, 32, 32)}, "foreign must be shaped"],
    ],
)
def test_invalid_arguments_raise(kwargs: dict, call: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        transform = RandLesionSynthesis(**kwargs)
        transform(call.pop("img", torch.rand(1, 64, 64)), **call)


def test_empty_lung_mask_falls_back_to_default_fields(caplog: pytest.LogCaptureFixture) -> None:
    lung = lung_masks(2)
    lung[1] = 0
    out = run(0, radiographs(2), prob=1.0, lung_mask=lung)
    assert "empty" in caplog.text
    assert bool((out.mask[1] > 0).any())
