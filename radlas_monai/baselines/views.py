"""The two augmented views of MONAI's self-supervised ViTAutoEnc recipe, for 2D radiographs.

The recipe is MONAI's tutorial ``self_supervised_pretraining/vit_unetr_ssl/ssl_train.ipynb`` (also
``ssl_script_train.py``). After copying the image (the copy is the reconstruction target), each of two views gets,
independently and per image on the CPU in the data loader:

1. ``OneOf`` (equal weights) of two ``RandCoarseDropoutd`` (``prob=1``, ``holes=6``):
   hole dropout (``dropout_holes=True``, hole sides 5..32 px, holes filled with uniform noise in the image's range)
   or inverse dropout (``dropout_holes=False``, 20..64 px: only the holes keep the image, the rest is noise);
2. ``RandCoarseShuffled`` (``prob=0.8``, ``holes=10``, 8 px): pixels shuffled within small regions.

The tutorial's sizes are absolute (voxels of 96^3 crops with 16^3 patches); they are kept as absolute pixels here,
so they keep the same relation to the ViT patch size (16) at any image size. Every value is a constructor argument.
:class:`RecipeViews` writes ``<key>_view1`` and ``<key>_view2`` and leaves ``<key>`` (the target) untouched;
:func:`make_views_batch` applies it to each image of a collated batch (what the loader does per step).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import Compose, MapTransform, OneOf, RandCoarseDropoutd, RandCoarseShuffled, Randomizable
from monai.utils import MAX_SEED
from monai.utils.type_conversion import convert_to_tensor

__all__ = ["RecipeViews", "make_views_batch"]

logger = logging.getLogger(__name__)


def _copy(value: Any) -> Any:
    """An independent copy of an image (the MONAI coarse transforms write into their input's buffer)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    raise TypeError(f"RecipeViews expects a torch.Tensor or numpy.ndarray image, got {type(value).__name__}")


class RecipeViews(Randomizable, MapTransform):
    """Dictionary transform: the two randomly corrupted views of MONAI's ViTAutoEnc self-supervised recipe.

    For every key ``k`` writes ``k + view_suffixes[0]`` and ``k + view_suffixes[1]``, each an independently
    augmented copy of ``d[k]`` (a channel-first image ``(C, H, W)``, radiographs ``(1, H, W)`` in ``[0, 1]``);
    ``d[k]`` itself is left unchanged (it is the recipe's reconstruction target). With several keys, one draw per
    view is shared by all keys (MONAI's dictionary convention), the two views always draw independently.

    Args:
        keys: keys of the images to make views of.
        view_suffixes: suffixes of the two output keys.
        dropout_prob: probability of the coarse-dropout step (the tutorial's ``prob=1.0``).
        holes: number of rectangles of either dropout mode (tutorial: 6).
        hole_size: ``(min, max)`` side in pixels of dropped holes, ``dropout_holes=True`` (tutorial: 5, 32).
        keep_size: ``(min, max)`` side in pixels of kept holes, inverse dropout ``dropout_holes=False``
            (tutorial: 20, 64).
        mode_weights: relative probabilities of ``(hole dropout, inverse dropout)`` in the ``OneOf`` (tutorial:
            equal).
        shuffle_prob: probability of the coarse shuffle (tutorial: 0.8).
        shuffle_holes: number of shuffled regions (tutorial: 10).
        shuffle_size: side in pixels of the shuffled regions (tutorial: 8).
        allow_missing_keys: do not raise when a key is missing.

    Raises:
        ValueError: for equal view suffixes or sizes out of order.

    Example:
        >>> views = RecipeViews(keys="image")
        >>> views.set_random_state(seed=0)
        >>> out = views({"image": torch.rand(1, 256, 256)})
        >>> sorted(out)
        ['image', 'image_view1', 'image_view2']
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        view_suffixes: Sequence[str] = ("_view1", "_view2"),
        dropout_prob: float = 1.0,
        holes: int = 6,
        hole_size: Sequence[int] = (5, 32),
        keep_size: Sequence[int] = (20, 64),
        mode_weights: Sequence[float] = (1.0, 1.0),
        shuffle_prob: float = 0.8,
        shuffle_holes: int = 10,
        shuffle_size: int = 8,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        if len(view_suffixes) != 2 or view_suffixes[0] == view_suffixes[1]:
            raise ValueError(f"view_suffixes must be two different suffixes, got {tuple(view_suffixes)}")
        for name, size in (("hole_size", hole_size), ("keep_size", keep_size)):
            if len(size) != 2 or not 0 < size[0] <= size[1]:
                raise ValueError(f"{name} must be (min, max) with 0 < min <= max, got {tuple(size)}")
        self.view_suffixes = (str(view_suffixes[0]), str(view_suffixes[1]))
        settings = {
            "dropout_prob": dropout_prob,
            "holes": holes,
            "hole_size": tuple(hole_size),
            "keep_size": tuple(keep_size),
            "mode_weights": tuple(mode_weights),
            "shuffle_prob": shuffle_prob,
            "shuffle_holes": shuffle_holes,
            "shuffle_size": shuffle_size,
        }
        self.view_transforms = tuple(
            self._build_view([f"{k}{suffix}" for k in self.keys], **settings) for suffix in self.view_suffixes
        )

    def _build_view(
        self,
        view_keys: list[str],
        *,
        dropout_prob: float,
        holes: int,
        hole_size: tuple[int, int],
        keep_size: tuple[int, int],
        mode_weights: tuple[float, float],
        shuffle_prob: float,
        shuffle_holes: int,
        shuffle_size: int,
    ) -> Compose:
        """One view's pipeline, exactly the tutorial's ``OneOf(dropout, inverse dropout) -> shuffle``."""
        missing = self.allow_missing_keys
        dropout = RandCoarseDropoutd(
            keys=view_keys,
            prob=dropout_prob,
            holes=holes,
            spatial_size=hole_size[0],
            dropout_holes=True,
            max_spatial_size=hole_size[1],
            allow_missing_keys=missing,
        )
        inverse = RandCoarseDropoutd(
            keys=view_keys,
            prob=dropout_prob,
            holes=holes,
            spatial_size=keep_size[0],
            dropout_holes=False,
            max_spatial_size=keep_size[1],
            allow_missing_keys=missing,
        )
        shuffle = RandCoarseShuffled(
            keys=view_keys,
            prob=shuffle_prob,
            holes=shuffle_holes,
            spatial_size=shuffle_size,
            allow_missing_keys=missing,
        )
        return Compose([OneOf([dropout, inverse], weights=list(mode_weights)), shuffle])

    def view_keys(self, key: Hashable) -> tuple[str, str]:
        """The two output keys written for input ``key``."""
        return f"{key}{self.view_suffixes[0]}", f"{key}{self.view_suffixes[1]}"

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> RecipeViews:
        """Seed this transform; each view's pipeline gets its own seed drawn from :attr:`R`."""
        super().set_random_state(seed=seed, state=state)
        for pipeline in self.view_transforms:
            pipeline.set_random_state(seed=int(self.R.randint(MAX_SEED, dtype="uint32")))
        return self

    def randomize(self, data: Any | None = None) -> None:
        """No draw here: the wrapped MONAI transforms draw per call from states seeded by :meth:`set_random_state`."""

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Add the two views of every key to a copy of ``data``.

        Raises:
            KeyError: when an output key already exists in ``data`` (it would be overwritten).
            ValueError: when an image is not channel-first 2D ``(C, H, W)``.
        """
        d = dict(data)
        for key in self.key_iterator(d):
            if np.ndim(d[key]) != 3:
                raise ValueError(
                    f"RecipeViews expects {key!r} as a channel-first 2D image (C, H, W), "
                    f"got shape {tuple(np.shape(d[key]))}"
                )
            for view_key in self.view_keys(key):
                if view_key in d:
                    raise KeyError(f"RecipeViews would overwrite the existing key {view_key!r}")
                d[view_key] = _copy(d[key])
        for pipeline in self.view_transforms:
            d = pipeline(d)
        return d


def make_views_batch(
    images: torch.Tensor, transform: RecipeViews, key: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the per-image view transform to every image of a batch, as the recipe's data loader does.

    Each image is moved to the CPU, transformed, and the views are stacked and moved back to ``images.device``;
    ``images`` is not modified. This is what the recipe costs per step when its loader makes the views.

    Args:
        images: ``(B, C, H, W)`` batch (radiographs ``(B, 1, H, W)`` in ``[0, 1]``).
        transform: the :class:`RecipeViews` to apply (its random state advances).
        key: the input key the transform reads; default its first key.

    Returns:
        ``(view1, view2)``, each ``(B, C, H, W)`` float32 plain tensors on ``images.device``.

    Raises:
        ValueError: when ``images`` is not 4D.
    """
    if images.ndim != 4:
        raise ValueError(f"make_views_batch expects images of shape (B, C, H, W), got {tuple(images.shape)}")
    key = transform.keys[0] if key is None else key
    key1, key2 = transform.view_keys(key)
    cpu = images.detach().to("cpu", torch.float32)
    firsts, seconds = [], []
    for image in cpu:
        out = transform({key: image})
        firsts.append(convert_to_tensor(out[key1], track_meta=False))
        seconds.append(convert_to_tensor(out[key2], track_meta=False))
    view1 = torch.stack(firsts).to(images.device, torch.float32)
    view2 = torch.stack(seconds).to(images.device, torch.float32)
    return view1, view2
