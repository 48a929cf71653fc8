"""``RandLesionSynthesisd``: the dictionary version of :class:`RandLesionSynthesis` for MONAI pipelines."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import MapTransform, RandomizableTransform
from monai.utils import ensure_tuple

from radlas_monai.transforms.lesion_synthesis.array import RandLesionSynthesis

__all__ = ["RandLesionSynthesisd", "SPACING_META_KEY", "meta_spacing"]

#: Meta key holding the pixel spacing ``(row_mm, col_mm)`` of an image (the datalist's ``"spacing"`` field).
SPACING_META_KEY = "spacing"


def meta_spacing(img: Any) -> np.ndarray | None:
    """Pixel spacing ``(row, col)`` (or ``(B, 2)`` for a collated batch) from a MetaTensor's meta, else None.

    Args:
        img: an image, typically a :class:`monai.data.MetaTensor` whose ``meta["spacing"]`` was set by the loader.

    Returns:
        float64 array of shape ``(2,)`` or ``(B, 2)``, or None when the image carries no spacing.
    """
    if not isinstance(img, MetaTensor) or img.meta.get(SPACING_META_KEY) is None:
        return None
    value = img.meta[SPACING_META_KEY]
    if isinstance(value, (list, tuple)):
        parts = [np.asarray(_numpy(v), dtype=np.float64) for v in value]
        # default collation turns [row, col] per sample into [tensor(B), tensor(B)]
        array = np.stack(parts, axis=-1) if img.ndim == 4 and parts and parts[0].ndim == 1 else np.asarray(parts)
    else:
        array = np.asarray(_numpy(value), dtype=np.float64)
    return array[..., :2]


def _numpy(value: Any) -> Any:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value


class RandLesionSynthesisd(RandomizableTransform, MapTransform):
    """Dictionary-based wrapper of :class:`RandLesionSynthesis`.

    Draws once per call and applies the same lesions to every key (the keys must share their spatial shape). The
    corrupted image replaces each key; the healthy input goes to ``healthy_key`` (one per key), and the soft lesion
    mask and family map of the draw go to ``mask_key`` and ``family_key``. Untouched images (probability
    ``1 - prob``) get these keys too (a zero mask), so batches always collate. Existing keys are never overwritten:
    the transform raises instead. MetaTensor inputs keep their meta; the pixel spacing is read from
    ``meta["spacing"]`` when present (else ``default_spacing``, else sizes are in pixels).

    Args:
        keys: image keys to corrupt.
        lung_mask_key: key of a lung mask (nonzero = lung) shaped like the image; None uses the default lung ellipses.
        healthy_key: output key(s) for the healthy input, one per key.
        mask_key: output key for the soft lesion mask (float32, same shape as the image).
        family_key: output key for the family map (int64, 0 = none, ``k`` = ``LESION_FAMILIES[k - 1]``).
        foreign_key: key of a donor radiograph for the foreign-patch family (see :class:`RandLesionSynthesis`);
            None or absent uses another image of the batch or a flipped region of the same image.
        prob: probability that an image receives lesions.
        num_lesions: inclusive range of lesions per lesioned image.
        family_probs: relative family probabilities (see :class:`RandLesionSynthesis`).
        family_kwargs: constructor arguments per family (see :class:`RandLesionSynthesis`).
        default_spacing: spacing in mm used when the image carries none; None reads sizes in pixels.
        lung_dilation: how far lesions may spill over the lung mask's edge (mm, or pixels without spacing).
        allow_missing_keys: don't raise for missing image keys (nothing is written when all are missing).

    Raises:
        ValueError: when the number of ``healthy_key`` entries does not match ``keys``.

    Example:
        >>> t = RandLesionSynthesisd(keys="image", lung_mask_key="lung_mask", prob=1.0)
        >>> out = t.set_random_state(0)({"image": torch.rand(1, 64, 64), "lung_mask": torch.ones(1, 64, 64)})
        >>> sorted(out)
        ['image', 'image_healthy', 'lesion_family', 'lesion_mask', 'lung_mask']
    """

    backend = RandLesionSynthesis.backend

    def __init__(
        self,
        keys: KeysCollection,
        lung_mask_key: str | None = None,
        healthy_key: str | Sequence[str] = "image_healthy",
        mask_key: str = "lesion_mask",
        family_key: str = "lesion_family",
        foreign_key: str | None = None,
        prob: float = 0.8,
        num_lesions: tuple[int, int] | int = (1, 3),
        family_probs: Mapping[str, float] | Sequence[float] | None = None,
        family_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
        default_spacing: float | Sequence[float] | None = None,
        lung_dilation: float = 1.5,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob=prob)
        self.healthy_keys = ensure_tuple(healthy_key)
        if len(self.healthy_keys) != len(self.keys):
            raise ValueError(
                f"healthy_key needs one output key per image key {list(self.keys)}, got {list(self.healthy_keys)}"
            )
        self.lung_mask_key = lung_mask_key
        self.mask_key = mask_key
        self.family_key = family_key
        self.foreign_key = foreign_key
        self.synthesis = RandLesionSynthesis(
            prob=prob,
            num_lesions=num_lesions,
            family_probs=family_probs,
            family_kwargs=family_kwargs,
            default_spacing=default_spacing,
            lung_dilation=lung_dilation,
        )

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> RandLesionSynthesisd:
        """Seed this transform and the array transform it wraps (which owns the draws)."""
        super().set_random_state(seed, state)
        self.synthesis.set_random_state(seed, state)
        return self

    def randomize(self, data: int | None = None) -> None:
        """Draw the lesions for ``data`` images (None = one image); see :meth:`RandLesionSynthesis.randomize`."""
        self.synthesis.randomize(data)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        """Corrupt the images of ``data``.

        Args:
            data: a dictionary with the image keys (and optionally the lung mask and foreign keys).

        Returns:
            A new dictionary with the corrupted images and the new output keys.

        Raises:
            ValueError: when an output key already exists in ``data``.
            KeyError: when an image key is missing (unless ``allow_missing_keys``) or ``lung_mask_key`` is absent.
        """
        d = dict(data)
        missing = [key for key in self.keys if key not in d]
        if missing and not self.allow_missing_keys:
            raise KeyError(f"keys {missing} are not in the data (keys: {list(d)}); set allow_missing_keys=True")
        present = [(key, healthy) for key, healthy in zip(self.keys, self.healthy_keys) if key in d]
        if not present:
            return d
        outputs = [healthy for _, healthy in present] + [self.mask_key, self.family_key]
        clash = [key for key in outputs if key in d]
        if clash:
            raise ValueError(f"output keys {clash} already exist in the data; choose other healthy/mask/family keys")
        if self.lung_mask_key is not None and self.lung_mask_key not in d:
            raise KeyError(f"lung_mask_key {self.lung_mask_key!r} is not in the data (keys: {list(d)})")
        lung = None if self.lung_mask_key is None else d[self.lung_mask_key]
        foreign = None if self.foreign_key is None else d.get(self.foreign_key)
        for i, (key, healthy_key) in enumerate(present):
            result = self.synthesis(
                d[key], lung_mask=lung, spacing=meta_spacing(d[key]), foreign=foreign, randomize=i == 0
            )
            d[key], d[healthy_key] = result.image, result.healthy
            if i == 0:
                d[self.mask_key], d[self.family_key] = result.mask, result.family
        return d
