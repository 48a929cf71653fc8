"""Tests for radlas_monai.transforms.lesion_synthesis.RandLesionSynthesisd (the dictionary transform)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose

from radlas_monai.transforms.lesion_synthesis import RandLesionSynthesis, RandLesionSynthesisd
from radlas_monai.transforms.lesion_synthesis.dictionary import meta_spacing
from radlas_monai.transforms.lesion_synthesis.poisson import laplacian
from radlas_monai.transforms.lesion_synthesis.regions import default_lung_fields


def image(seed: int = 0, size: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lung = default_lung_fields(size, size, "cpu").float()[0]
    return (0.8 - 0.5 * lung + 0.05 * torch.rand(1, size, size, generator=g)).contiguous()


def sample(**extra) -> dict:
    return {"image": image(), "lung_mask": default_lung_fields(64, 64, "cpu").float()[0], **extra}


def test_outputs_go_to_new_keys_and_meta_is_kept() -> None:
    img = MetaTensor(image(), meta={"spacing": [2.0, 2.0], "filename_or_obj": "a.png"})
    t = RandLesionSynthesisd(keys="image", lung_mask_key="lung_mask", prob=1.0).set_random_state(0)
    out = t({"image": img, "lung_mask": sample()["lung_mask"]})
    assert set(out) == {"image", "image_healthy", "lesion_mask", "lesion_family", "lung_mask"}
    assert out["image_healthy"] is img
    assert isinstance(out["image"], MetaTensor) and out["image"].meta["filename_or_obj"] == "a.png"
    assert out["lesion_mask"].dtype == torch.float32 and out["lesion_family"].dtype == torch.int64
    assert out["lesion_mask"].shape == img.shape and bool((out["lesion_mask"] > 0).any())
    untouched = out["lesion_mask"] == 0
    assert torch.equal(out["image"].as_tensor()[untouched], img.as_tensor()[untouched])


def test_spacing_is_read_from_meta() -> None:
    img = MetaTensor(image(), meta={"spacing": [0.5, 0.5]})
    out = RandLesionSynthesisd(keys="image", prob=1.0).set_random_state(3)({"image": img})
    reference = RandLesionSynthesis(prob=1.0)
    reference.set_random_state(3)
    expected = reference(image(), spacing=(0.5, 0.5))
    assert torch.equal(out["lesion_mask"].as_tensor(), expected.mask)
    in_pixels = RandLesionSynthesisd(keys="image", prob=1.0).set_random_state(3)({"image": image()})
    assert not torch.equal(in_pixels["lesion_mask"], expected.mask)


@pytest.mark.parametrize(
    "value,batched,expected",
    [
        [[0.7, 0.7], False, [0.7, 0.7]],
        [torch.tensor([0.5, 0.6, 1.0]), False, [0.5, 0.6]],
        [[torch.tensor([0.5, 0.7]), torch.tensor([0.5, 0.8])], True, [[0.5, 0.5], [0.7, 0.8]]],
        [None, False, None],
    ],
)
def test_meta_spacing(value, batched: bool, expected) -> None:
    data = torch.zeros(2, 1, 8, 8) if batched else torch.zeros(1, 8, 8)
    got = meta_spacing(MetaTensor(data, meta={} if value is None else {"spacing": value}))
    assert (got is None) if expected is None else np.allclose(got, expected)


def test_same_draw_for_every_key_and_one_healthy_key_each() -> None:
    t = RandLesionSynthesisd(keys=["image", "copy"], healthy_key=["image_healthy", "copy_healthy"], prob=1.0)
    out = t.set_random_state(1)({"image": image(), "copy": image()})
    assert torch.equal(out["image"], out["copy"])
    assert torch.equal(out["image_healthy"], out["copy_healthy"]) and not torch.equal(out["image"], out["copy_healthy"])
    with pytest.raises(ValueError, match="one output key per image key"):
        RandLesionSynthesisd(keys=["image", "copy"])


def test_set_random_state_is_forwarded() -> None:
    first = RandLesionSynthesisd(keys="image", prob=1.0).set_random_state(5)(sample())
    second = RandLesionSynthesisd(keys="image", prob=1.0).set_random_state(5)(sample())
    other = RandLesionSynthesisd(keys="image", prob=1.0).set_random_state(6)(sample())
    assert torch.equal(first["image"], second["image"]) and torch.equal(first["lesion_mask"], second["lesion_mask"])
    assert not torch.equal(first["lesion_mask"], other["lesion_mask"])


def test_untouched_images_still_get_all_output_keys() -> None:
    out = RandLesionSynthesisd(keys="image", prob=0.0).set_random_state(0)(sample())
    assert torch.equal(out["image"], out["image_healthy"]) and float(out["lesion_mask"].sum()) == 0.0
    assert int(out["lesion_family"].sum()) == 0


def test_allow_missing_keys() -> None:
    t = RandLesionSynthesisd(keys=["image", "other"], healthy_key=["h1", "h2"], prob=1.0, allow_missing_keys=True)
    out = t.set_random_state(0)(sample())
    assert {"h1", "lesion_mask", "lesion_family"} <= set(out) and "h2" not in out
    assert set(t({"x": 1})) == {"x"}
    strict = RandLesionSynthesisd(keys=["image", "other"], healthy_key=["h1", "h2"], prob=1.0)
    with pytest.raises(KeyError, match="other"):
        strict(sample())


@pytest.mark.parametrize("existing", ["image_healthy", "lesion_mask", "lesion_family"])
def test_existing_output_key_raises(existing: str) -> None:
    data = sample(**{existing: torch.zeros(1)})
    with pytest.raises(ValueError, match=existing):
        RandLesionSynthesisd(keys="image", prob=1.0)(data)


def test_missing_lung_mask_key_raises() -> None:
    with pytest.raises(KeyError, match="lung"):
        RandLesionSynthesisd(keys="image", lung_mask_key="lung")({"image": image()})


def test_lung_mask_and_foreign_keys_in_a_compose() -> None:
    lung = torch.zeros(1, 64, 64)
    lung[:, 10:50, 5:30] = 1
    t = Compose(
        [
            RandLesionSynthesisd(
                keys="image",
                lung_mask_key="lung",
                foreign_key="donor",
                prob=1.0,
                num_lesions=3,
                family_probs={"foreign_patch": 1.0},
                lung_dilation=0.0,
            )
        ]
    ).set_random_state(2)
    out = t({"image": image(), "lung": lung, "donor": torch.zeros(1, 64, 64)})
    assert bool((out["lesion_mask"] > 0).any())
    assert float(out["lesion_mask"][lung == 0].abs().max()) == 0.0
    core = out["lesion_mask"][None] > 0.9  # a flat donor, gradient-domain blended: the core loses its fine structure
    before, after = (laplacian(out[key][None]).abs()[core].mean() for key in ("image_healthy", "image"))
    assert bool(core.any()) and float(after) < 0.5 * float(before)
