"""``RandLesionSynthesis``: write synthetic lesion-like corruptions into radiographs (RadLAS Task I).

The network learns to restore the healthy image from the corrupted one, and the soft lesion mask supervises its
grounding head. See :mod:`radlas_monai.transforms.lesion_synthesis` for the families and the design.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.transforms import RandomizableTransform
from monai.utils import TransformBackends

from radlas_monai.transforms.lesion_synthesis.convert import (
    as_batch,
    is_batched,
    restore_outputs,
    spacing_array,
    spacing_pair,
)
from radlas_monai.transforms.lesion_synthesis.families import (
    LESION_FAMILIES,
    LesionFamily,
    LesionPatches,
    build_families,
    family_probabilities,
)
from radlas_monai.transforms.lesion_synthesis.patches import LesionCanvas, PatchIndex
from radlas_monai.transforms.lesion_synthesis.regions import LungContext, LungFields, LungRegions, lung_patches

__all__ = ["RandLesionSynthesis", "LesionSynthesisResult", "FAMILY_PARAMS"]

logger = logging.getLogger(__name__)

#: Number of uniform draws every lesion hands to its family (``LesionPatches.params``).
FAMILY_PARAMS = 8
# Columns of the per-lesion uniform draws: family choice, centre (cell, row and column jitter), lung side,
# donor image, donor centre (cell, row and column jitter); the family's own draws follow.
_FAMILY, _CENTRE, _SIDE, _DONOR, _DONOR_CENTRE, _OWN = 0, slice(1, 4), 4, 5, slice(6, 9), 9
_NUM_DRAWS = _OWN + FAMILY_PARAMS
#: lung-placed lesions are centred at least this share of their half extent inside the lung (no half-discs)
_CORE_DEPTH = 0.8


@dataclass
class LesionSynthesisResult:
    """What :class:`RandLesionSynthesis` returns (tensors for tensor input, numpy arrays for numpy input).

    Attributes:
        image: the corrupted radiograph(s): same shape, type, dtype, device (and MetaTensor meta) as the input;
            bit-identical to ``healthy`` wherever ``mask == 0``, within [0, 1] wherever ``mask > 0``.
        healthy: the input object itself, unchanged (the restoration target; not a copy).
        mask: float32 soft lesion mask (the opacity ``alpha``) in [0, 1], same shape as ``image``; the image differs
            from ``healthy`` only where ``mask > 0`` (use :meth:`binary_mask` for a binary mask).
        family_code: the family map as compact uint8 (see :attr:`family`).
    """

    image: NdarrayOrTensor
    healthy: NdarrayOrTensor
    mask: NdarrayOrTensor
    family_code: NdarrayOrTensor

    @functools.cached_property
    def family(self) -> NdarrayOrTensor:
        """int64 map, same shape as ``image``: 0 = no lesion, ``k`` = ``LESION_FAMILIES[k - 1]`` (the family with the
        largest opacity at the pixel). Converted from :attr:`family_code` on first access, so callers that never
        read it (e.g. a training step that only needs image, healthy and mask) do not pay for an int64 map."""
        code = self.family_code
        return code.astype(np.int64) if isinstance(code, np.ndarray) else code.long()

    def binary_mask(self, threshold: float = 0.0) -> NdarrayOrTensor:
        """Binary lesion mask ``mask > threshold`` (bool, same type as ``mask``)."""
        return self.mask > threshold


class RandLesionSynthesis(RandomizableTransform):
    """Write random lesion-like corruptions into the lung fields of a radiograph or of a whole batch.

    Five families (``LESION_FAMILIES``, see :mod:`radlas_monai.transforms.lesion_synthesis.families`): round
    nodules/masses, patchy airspace opacities, foreign-patch blends from another radiograph, basal effusion-like
    opacity and apical/lateral pneumothorax-like lucency. Each image is left untouched with probability ``1 - prob``,
    so the network also learns the identity on healthy input; the others get ``num_lesions`` lesions.

    Every lesion is rendered on a small patch around it and composed back as
    ``image = healthy + alpha * (lesioned - healthy)`` (overlapping lesions add up); the soft opacity ``alpha`` is
    the returned mask, already multiplied by a slightly dilated, soft-edged lung field, and pixels where it is 0 keep
    their input value bit for bit.

    Sizes are in millimetres when the pixel spacing is known (``spacing`` argument, else ``default_spacing``) and in
    pixels otherwise. Lesion centres are drawn inside the lung mask when one is given, otherwise inside two fixed
    ellipses at the relative positions of the lungs on a PA chest film
    (:func:`~radlas_monai.transforms.lesion_synthesis.regions.default_lung_fields`). Effusions sit at the base and
    pneumothoraces at the apex of one lung side (the bounding box of the lung fields in that half of the image).

    Randomness: every parameter of a call (all images of a batch at once) is drawn from ``self.R`` in
    :meth:`randomize`; texture noise comes from a ``torch.Generator`` on the input's device seeded from ``self.R``.
    Global random states are never used. The synthesis runs under ``torch.no_grad``; outputs carry no gradient.

    Args:
        prob: probability that an image receives lesions (``1 - prob`` is the healthy fraction).
        num_lesions: inclusive range (or exact number) of lesions per lesioned image.
        family_probs: relative probability of each family per lesion, as ``{name: p}`` (missing names get 0) or a
            sequence in ``LESION_FAMILIES`` order; default ``DEFAULT_FAMILY_PROBS``.
        family_kwargs: constructor arguments per family (sizes, contrasts, ...), e.g.
            ``{"nodule": {"diameter": [5, 30], "contrast": [0.1, 0.3]}}``.
        default_spacing: pixel spacing in mm, one value or ``(row, col)``, used when a call gives none; None reads
            sizes in pixels.
        lung_dilation: how far lesions may spill over the lung mask's edge: the lesion mask is multiplied by the lung
            field softly dilated over twice this distance, in mm (pixels when sizes are in pixels).

    Raises:
        ValueError: for unknown family names, invalid family probabilities or a bad lesion count.

    Example:
        >>> synth = RandLesionSynthesis(prob=1.0).set_random_state(0)
        >>> out = synth(torch.rand(8, 1, 256, 256), spacing=(1.4, 1.4))
        >>> out.image.shape, out.mask.dtype, out.family.dtype
        (torch.Size([8, 1, 256, 256]), torch.float32, torch.int64)
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        prob: float = 0.8,
        num_lesions: tuple[int, int] | int = (1, 3),
        family_probs: Mapping[str, float] | Sequence[float] | None = None,
        family_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
        default_spacing: float | Sequence[float] | None = None,
        lung_dilation: float = 1.5,
    ) -> None:
        RandomizableTransform.__init__(self, prob=prob)
        low, high = (num_lesions, num_lesions) if isinstance(num_lesions, int) else tuple(num_lesions)
        if not 1 <= int(low) <= int(high):
            raise ValueError(f"num_lesions must be an int >= 1 or a range 1 <= low <= high, got {num_lesions}")
        self.num_lesions = (int(low), int(high))
        self.family_probs = family_probabilities(family_probs)
        self.families: tuple[LesionFamily, ...] = build_families(family_kwargs)
        self.default_spacing = None if default_spacing is None else spacing_pair(default_spacing)
        if lung_dilation < 0:
            raise ValueError(f"lung_dilation must be >= 0, got {lung_dilation}")
        self.lung_dilation = float(lung_dilation)
        self.lungs = LungRegions()
        self._draw: dict[str, Any] | None = None

    def randomize(self, data: int | None = None) -> None:
        """Draw every parameter of one call from ``self.R`` (a fixed number of draws per image).

        Args:
            data: the batch size (None for a single image).
        """
        batch = 1 if data is None else int(data)
        low, high = self.num_lesions
        apply = self.R.rand(batch) < self.prob
        self._draw = {
            "apply": apply,
            "count": self.R.randint(low, high + 1, size=batch),
            "uniform": self.R.rand(batch, high, _NUM_DRAWS).astype(np.float32),
            "seed": int(self.R.randint(0, 2**31 - 1)),
        }
        self._do_transform = bool(apply.any())

    def __call__(
        self,
        img: NdarrayOrTensor,
        lung_mask: NdarrayOrTensor | None = None,
        spacing: float | Sequence[float] | NdarrayOrTensor | None = None,
        foreign: NdarrayOrTensor | None = None,
        randomize: bool = True,
    ) -> LesionSynthesisResult:
        """Corrupt ``img``.

        Args:
            img: ``(C, H, W)`` or ``(B, C, H, W)`` radiograph(s) in [0, 1], numpy or torch, any floating dtype (the
                synthesis computes in float32; ``image`` is returned in the input's dtype).
            lung_mask: nonzero = lung; ``(H, W)``, ``(1 | C, H, W)`` or ``(B, 1 | C, H, W)``. Images whose mask is
                empty fall back to the default ellipses (with a warning).
            spacing: pixel spacing in mm: one value, ``(row, col)`` or ``(B, 2)``; None uses ``default_spacing``.
            foreign: donor radiograph(s) for the foreign-patch family, shaped like ``img`` (or one ``(C, H, W)``
                image for a batch). None takes donors from another image of the batch, or, for a single image, from
                a horizontally flipped region of the image itself.
            randomize: False reuses the previous draw (e.g. to corrupt a second, aligned image identically).

        Returns:
            :class:`LesionSynthesisResult`; without lesions ``image`` is a copy of the input.

        Raises:
            ValueError: for a bad shape, a non-float dtype, mismatched masks, donors or spacings, or
                ``randomize=False`` with a draw for another batch size.
        """
        x = as_batch(img)
        if randomize:
            self.randomize(x.shape[0] if is_batched(img) else None)
        if self._draw is None or len(self._draw["apply"]) != x.shape[0]:
            got = None if self._draw is None else len(self._draw["apply"])
            raise ValueError(f"randomize=False needs a previous draw for {x.shape[0]} images, got one for {got}")
        with torch.no_grad():
            if spacing is None:
                spacing = self.default_spacing if self.default_spacing is not None else 1.0
            mm = spacing_array(spacing, x.shape[0])
            radius = int(round(self.lung_dilation / float(mm.mean())))
            lungs = self.lungs.resolve(lung_mask, x, radius)
            donors = None if foreign is None else as_batch(foreign, like=x, name="foreign")
            canvas = LesionCanvas(tuple(x.shape), x.device)
            self._render(x, lungs, mm, radius, donors, canvas)
            image, mask, family = canvas.compose(x)
        image, mask, family = restore_outputs(img, image, mask, family)
        return LesionSynthesisResult(image=image, healthy=img, mask=mask, family_code=family)

    def _lesion_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Image index, family index and uniform draws ``(N, _NUM_DRAWS)`` of every lesion of the current draw."""
        assert self._draw is not None
        slots = np.arange(self.num_lesions[1])[None, :] < self._draw["count"][:, None]
        slots &= self._draw["apply"][:, None]
        draws = self._draw["uniform"][slots]
        family = np.searchsorted(np.cumsum(self.family_probs), draws[:, _FAMILY], side="right")
        return np.nonzero(slots)[0], np.minimum(family, len(LESION_FAMILIES) - 1), draws

    def _render(
        self,
        x: torch.Tensor,
        lungs: LungContext,
        mm: np.ndarray,
        radius: int,
        donors: torch.Tensor | None,
        canvas: LesionCanvas,
    ) -> None:
        """Render every lesion of the current draw onto ``canvas``, family by family."""
        assert self._draw is not None
        image_index, family_index, draws = self._lesion_table()
        generator = torch.Generator(device=x.device)
        generator.manual_seed(self._draw["seed"])
        for k in range(len(self.families)):
            chosen = family_index == k
            if chosen.any():
                lesions = _Lesions(image_index[chosen], draws[chosen].astype(np.float64), mm[image_index[chosen]])
                self._render_family(k, lesions, x, lungs, radius, donors, canvas, generator)

    def _render_family(
        self,
        k: int,
        lesions: _Lesions,
        x: torch.Tensor,
        lungs: LungContext,
        radius: int,
        donors: torch.Tensor | None,
        canvas: LesionCanvas,
        generator: torch.Generator,
    ) -> None:
        """Place, cut out, render and keep the lesions of family ``k``, in groups of similar size."""
        family, image_size = self.families[k], tuple(x.shape[-2:])
        depth = None
        if family.placement == "lung":  # the size does not depend on the place: keep the lesion inside the lung
            extent = family.half_extent(lesions.draws[:, _OWN:], np.zeros((len(lesions.batch), 2)))
            depth = _CORE_DEPTH * (extent / lesions.spacing).max(axis=1)
        centre, side_box, lateral = _place(family, lesions, lungs.fields, depth)
        side_size = np.stack((side_box[:, 1] - side_box[:, 0], side_box[:, 3] - side_box[:, 2]), axis=1)
        reach = np.ceil(family.half_extent(lesions.draws[:, _OWN:], side_size) / lesions.spacing).astype(int) + 1
        for group in _size_groups(reach):
            size = tuple(int(2 * r + 1) for r in reach[group].max(axis=0))
            index = PatchIndex.around(lesions.batch[group], centre[group], size, image_size, x.device)
            core, soft = lung_patches(index, lungs.lung, radius, lungs.soft)
            spacing = lesions.spacing[group]
            patches = LesionPatches(
                healthy=index.gather(x),
                lung=soft,
                lung_core=core,
                rows_mm=(index.rows + 0.5 - centre[group, :1]) * spacing[:, :1],
                cols_mm=(index.cols + 0.5 - centre[group, 1:]) * spacing[:, 1:],
                params=lesions.draws[group, _OWN:],
                spacing=spacing,
                side_box=side_box[group],
                lateral_sign=lateral[group],
                donor=_donor(index, lesions.draws[group], x, donors, lungs.fields) if family.needs_donor else None,
            )
            alpha, target = family.render(patches, generator)
            canvas.add(index, alpha * soft, target, patches.healthy, k + 1)


@dataclass
class _Lesions:
    """The lesions of one family: image index ``(N,)``, uniform draws ``(N, _NUM_DRAWS)``, spacing ``(N, 2)``."""

    batch: np.ndarray
    draws: np.ndarray
    spacing: np.ndarray


def _place(
    family: LesionFamily, lesions: _Lesions, fields: LungFields, min_depth: np.ndarray | None = None
) -> tuple[np.ndarray, ...]:
    """Centres ``(N, 2)`` in pixels, lung-side boxes ``(N, 4)`` in mm relative to them, lateral signs ``(N,)``.

    ``min_depth`` ``(N,)``: least distance of a lung-placed centre from the lung's edge, in pixels.
    """
    u, spacing = lesions.draws, lesions.spacing
    if family.placement == "lung":
        centre = fields.sample(lesions.batch, u[:, _CENTRE], min_depth)
        lateral = np.where(centre[:, 1] >= fields.width / 2, 1.0, -1.0)
        return centre, np.zeros((len(u), 4)), lateral
    boxes = fields.side_boxes()
    side = (u[:, _SIDE] >= 0.5).astype(np.int64)
    box = boxes[lesions.batch if boxes.shape[0] > 1 else np.zeros_like(lesions.batch), side]
    lateral = side * 2.0 - 1.0
    half_h = (box[:, 1] - box[:, 0]) / 2 * spacing[:, 0]
    half_w = (box[:, 3] - box[:, 2]) / 2 * spacing[:, 1]
    centred = np.stack((-half_h, half_h, -half_w, half_w), axis=1)
    offset = family.anchor(u[:, _OWN:], centred)
    row = (box[:, 0] + box[:, 1]) / 2 + offset[:, 0] / spacing[:, 0]
    col = (box[:, 2] + box[:, 3]) / 2 + offset[:, 1] * lateral / spacing[:, 1]
    shift = np.stack((offset[:, 0], offset[:, 0], offset[:, 1], offset[:, 1]), axis=1)
    return np.stack((row, col), axis=1), centred - shift, lateral


def _donor(
    index: PatchIndex, u: np.ndarray, x: torch.Tensor, donors: torch.Tensor | None, fields: LungFields
) -> torch.Tensor:
    """Donor pixels per patch: the ``foreign`` image(s), another image of the batch, or a flipped own region."""
    batch, count = index.batch, x.shape[0]
    if donors is None and count > 1:
        step = 1 + np.minimum(np.floor(u[:, _DONOR] * (count - 1)).astype(np.int64), count - 2)
        source, donor_batch = x, (batch + step) % count
    else:
        source, donor_batch = (x if donors is None else donors), batch
    centre = fields.sample(donor_batch, u[:, _DONOR_CENTRE])
    patch = PatchIndex.around(donor_batch, centre, index.size, index.image_size, x.device).gather(source)
    return patch.flip(-1) if donors is None and count == 1 else patch


def _size_groups(reach: np.ndarray) -> list[np.ndarray]:
    """Split lesions into (at most two) groups of similar patch size, so small lesions get small patches.

    Args:
        reach: ``(N, 2)`` half sizes in pixels.

    Returns:
        Index arrays of the groups.
    """
    size = reach.max(axis=1)
    everyone = np.arange(len(size))
    small, large = float(size.min()), float(size.max())
    if len(size) < 4 or large <= 2.0 * small:
        return [everyone]
    split = (small * large) ** 0.5
    return [everyone[size <= split], everyone[size > split]]
