"""Tests for radlas_monai.baselines.views: the ViTAutoEnc recipe's two augmented views."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from radlas_monai.baselines.views import RecipeViews, make_views_batch

pytestmark = pytest.mark.usefixtures("one_thread")


SIZE = 256


def _image(seed: int = 0, size: int = SIZE) -> torch.Tensor:
    return torch.rand(1, size, size, generator=torch.Generator().manual_seed(seed))


def _changed(view: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(view).as_subclass(torch.Tensor) != image


# [init kwargs, (min changed fraction, max changed fraction), values are a permutation of the image's]
MODE_CASES = [
    # hole dropout only: at most 6 holes of at most 32 x 32 px are replaced
    [{"mode_weights": (1.0, 0.0), "shuffle_prob": 0.0}, (1e-4, 6 * 32 * 32 / SIZE**2), False],
    # inverse dropout only: at most 6 holes of at most 64 x 64 px keep the image, the rest is replaced
    [{"mode_weights": (0.0, 1.0), "shuffle_prob": 0.0}, (1 - 6 * 64 * 64 / SIZE**2, 1.0), False],
    # shuffle only: 10 regions of 8 x 8 px are permuted in place
    [{"dropout_prob": 0.0, "shuffle_prob": 1.0}, (1e-4, 10 * 8 * 8 / SIZE**2), True],
]


@pytest.mark.parametrize("kwargs, bounds, permutation", MODE_CASES)
def test_each_recipe_augmentation_changes_what_it_should(kwargs, bounds, permutation):
    image = _image()
    views = RecipeViews(keys="image", **kwargs).set_random_state(seed=3)
    out = views({"image": image.clone()})
    for key in ("image_view1", "image_view2"):
        view = torch.as_tensor(out[key]).as_subclass(torch.Tensor)
        fraction = float(_changed(view, image).float().mean())
        assert bounds[0] <= fraction <= bounds[1], (key, fraction)
        assert float(view.min()) >= float(image.min()) and float(view.max()) <= float(image.max())
        if permutation:
            torch.testing.assert_close(view.flatten().sort().values, image.flatten().sort().values)


def test_views_add_new_keys_and_leave_the_original_untouched():
    image = _image()
    data = {"image": image.clone(), "patient": "p1"}
    out = RecipeViews(keys="image").set_random_state(seed=0)(data)
    assert sorted(out) == ["image", "image_view1", "image_view2", "patient"]
    torch.testing.assert_close(torch.as_tensor(out["image"]).as_subclass(torch.Tensor), image)
    assert sorted(data) == ["image", "patient"]  # the input mapping is not modified
    assert _changed(out["image_view1"], image).any() and _changed(out["image_view2"], image).any()
    assert not torch.equal(torch.as_tensor(out["image_view1"]), torch.as_tensor(out["image_view2"]))


def test_set_random_state_makes_views_reproducible():
    image = _image()
    first = RecipeViews().set_random_state(seed=11)({"image": image.clone()})
    again = RecipeViews().set_random_state(seed=11)({"image": image.clone()})
    other = RecipeViews().set_random_state(seed=12)({"image": image.clone()})
    for key in ("image_view1", "image_view2"):
        assert torch.equal(torch.as_tensor(first[key]), torch.as_tensor(again[key]))
    assert not torch.equal(torch.as_tensor(first["image_view1"]), torch.as_tensor(other["image_view1"]))


def test_one_draw_per_view_is_shared_by_all_keys():
    image = _image()
    views = RecipeViews(keys=["image", "twin"], shuffle_prob=0.0).set_random_state(seed=5)
    out = views({"image": image.clone(), "twin": image.clone()})
    # hole placement is shared; the random fill values are drawn per key, so compare where pixels changed
    assert torch.equal(_changed(out["image_view1"], image), _changed(out["twin_view1"], image))
    assert not torch.equal(_changed(out["image_view1"], image), _changed(out["image_view2"], image))


def test_numpy_images_are_accepted_and_left_untouched():
    image = _image().numpy()
    out = RecipeViews().set_random_state(seed=0)({"image": image.copy()})
    assert isinstance(out["image_view1"], torch.Tensor)  # MONAI's coarse transforms return tensors
    assert tuple(out["image_view1"].shape) == image.shape
    np.testing.assert_array_equal(out["image"], image)


@pytest.mark.parametrize(
    "kwargs, data, error",
    [
        [{}, {"image": torch.rand(1, 1, 16, 16)}, ValueError],
        [{}, {"image": torch.rand(16, 16)}, ValueError],
        [{}, {"image": torch.rand(1, 16, 16), "image_view1": torch.rand(1, 16, 16)}, KeyError],
        [{}, {"other": torch.rand(1, 16, 16)}, KeyError],
    ],
)
def test_ill_formed_input_raises(kwargs, data, error):
    with pytest.raises(error):
        RecipeViews(**kwargs)(data)


@pytest.mark.parametrize(
    "kwargs",
    [{"view_suffixes": ("_a", "_a")}, {"view_suffixes": ("_a",)}, {"hole_size": (32, 5)}, {"keep_size": (0, 4)}],
)
def test_bad_settings_raise(kwargs):
    with pytest.raises(ValueError):
        RecipeViews(**kwargs)


def test_make_views_batch_applies_the_transform_to_every_image():
    images = torch.rand(3, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    before = images.clone()
    view1, view2 = make_views_batch(images, RecipeViews(shuffle_prob=1.0).set_random_state(seed=2))
    assert view1.shape == view2.shape == images.shape
    assert view1.dtype == view2.dtype == torch.float32 and type(view1) is torch.Tensor
    assert torch.equal(images, before)
    reference = RecipeViews(shuffle_prob=1.0).set_random_state(seed=2)
    for i in range(3):
        out = reference({"image": images[i].clone()})
        assert torch.equal(view1[i], torch.as_tensor(out["image_view1"]).as_subclass(torch.Tensor))
        assert torch.equal(view2[i], torch.as_tensor(out["image_view2"]).as_subclass(torch.Tensor))
        assert (view1[i] != images[i]).any() and (view2[i] != images[i]).any()


def test_make_views_batch_rejects_unbatched_images():
    with pytest.raises(ValueError, match="B, C, H, W"):
        make_views_batch(torch.rand(1, 64, 64), RecipeViews())
