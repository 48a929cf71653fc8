"""``RandLesionSynthesis``: write synthetic lesion-like corruptions into radiographs (RadLAS Task I).

The network learns to restore the healthy image from the corrupted one, and the soft lesion mask supervises its
grounding head. See :mod:`radlas_monai.transforms.lesion_synthesis` for the families and the design.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.transforms import RandomizableTransform
from monai.utils import TransformBackends, convert_to_dst_type

from radlas_monai.transforms.lesion_synthesis.families import (
    DEFAULT_FAMILY_PROBS,
    FAMILY_CLASSES,
    LESION_FAMILIES,
    LesionFamily,
    LesionPatches,
)
from radlas_monai.transforms.lesion_synthesis.patches import LesionCanvas, PatchIndex
from radlas_monai.transforms.lesion_synthesis.regions import LungFields, default_lung_fields, lung_patches

__all__ = ["RandLesionSynthesis", "LesionSynthesisResult"]

logger = logging.getLogger(__name__)

# Columns of the per-lesion uniform draws: family choice, centre (cell, row, col jitter), lung side,
# donor image, donor centre (cell, row, col jitter); the family's own draws follow.
_FAMILY, _CENTRE, _SIDE, _DONOR, _DONOR_CENTRE, _OWN = 0, slice(1, 4), 4, 5, slice(6, 9), 9
FAMILY_PARAMS = 8
_NUM_DRAWS = _OWN + FAMILY_PARAMS
_GRID_CELLS = 64  # lesion centres are drawn on a grid of about 64 cells along the image's short side


@dataclass
class LesionSynthesisResult:
    """What :class:`RandLesionSynthesis` returns (tensors for tensor input, numpy arrays for numpy input).

    Attributes:
        image: the corrupted radiograph(s), same shape, type, dtype and device as the input; identical to ``healthy``
            wherever ``mask == 0``, within [0, 1] wherever ``mask > 0``.
        healthy: the input itself, unchanged (the restoration target).
        mask: float32 soft lesion mask (opacity ``alpha``) in [0, 1], same shape as ``image``; 0 exactly where the
            image was left unchanged, so ``mask > 0`` is the binary lesion mask.
        family: int64 map of the same shape: 0 = no lesion, ``k`` = ``LESION_FAMILIES[k - 1]`` (the family with the
            largest opacity at the pixel).
    """

    image: NdarrayOrTensor
    healthy: NdarrayOrTensor
    mask: NdarrayOrTensor
    family: NdarrayOrTensor

    def binary_mask(self, threshold: float = 0.0) -> NdarrayOrTensor:
        """Binary lesion mask ``mask > threshold`` (bool, same type as ``mask``)."""
        return self.mask > threshold


class RandLesionSynthesis(RandomizableTransform):
    """Write 1-3 random lesion-like corruptions into the lung fields of each radiograph of a single image or a batch.

    Five families (``LESION_FAMILIES``): round nodules/masses, patchy airspace opacities, foreign-patch blends from
    another radiograph, basal effusion-like opacity and apical/lateral pneumothorax-like lucency; see their classes in
    :mod:`radlas_monai.transforms.lesion_synthesis.families`. Each image is left untouched with probability
    ``1 - prob``, so the network also learns the identity on healthy input.

    Every lesion is rendered on a small patch around it and composed back as
    ``image = healthy + alpha * (lesioned - healthy)``; the soft opacity ``alpha`` is the returned mask, multiplied by
    a slightly dilated, soft-edged lung field, and pixels where it is 0 keep their input value bit for bit.

    Sizes are in millimetres when the pixel spacing is known (``spacing`` argument, else ``default_spacing``) and in
    pixels otherwise. Lesion centres are drawn inside the lung mask when one is given; otherwise inside two fixed
    ellipses at relative positions of a PA chest film (:func:`~.regions.default_lung_fields`). Effusions sit at the
    base and pneumothoraces at the apex of one lung side (the bounding box of the mask in that half of the image).

    Randomness: every parameter of a call (all images of a batch at once) is drawn from ``self.R`` in
    :meth:`randomize`; texture noise comes from a ``torch.Generator`` on the input's device seeded from ``self.R``.
    Global random states are never used. The synthesis runs under ``torch.no_grad``; outputs carry no gradient.

    Args:
        prob: probability that an image receives lesions (``1 - prob`` is the healthy fraction).
        num_lesions: inclusive range of the number of lesions per lesioned image.
        family_probs: relative probability of each family per lesion, as ``{name: p}`` (missing names get 0) or a
            sequence in ``LESION_FAMILIES`` order; default ``DEFAULT_FAMILY_PROBS``.
        family_kwargs: constructor arguments per family (sizes, contrasts, ...), e.g.
            ``{"nodule": {"diameter": [5, 30], "contrast": [0.1, 0.3]}}``.
        default_spacing: pixel spacing ``(row, col)`` or one value in mm used when a call gives none; None reads
            sizes in pixels.
        lung_dilation: how far lesions may spill over the lung mask's edge, in mm (pixels when sizes are in
            pixels); the lesion mask is multiplied by the lung mask dilated by this, softened over as much again.

    Raises:
        ValueError: for an unknown family name, negative or all-zero family probabilities or a bad lesion count.

    Example:
        >>> synth = RandLesionSynthesis(prob=1.0)
        >>> synth.set_random_state(0)
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
        lung_dilation: float = 3.0,
    ) -> None:
        RandomizableTransform.__init__(self, prob=prob)
        low, high = (num_lesions, num_lesions) if isinstance(num_lesions, int) else tuple(num_lesions)
        if not 1 <= low <= high:
            raise ValueError(f"num_lesions must be an int >= 1 or a range 1 <= low <= high, got {num_lesions}")
        self.num_lesions = (int(low), int(high))
        self.family_probs = _normalised_probs(family_probs)
        kwargs = dict(family_kwargs or {})
        unknown = sorted(set(kwargs) - set(LESION_FAMILIES))
        if unknown:
            raise ValueError(f"unknown lesion families {unknown} in family_kwargs; known: {list(LESION_FAMILIES)}")
        self.families: tuple[LesionFamily, ...] = tuple(
            FAMILY_CLASSES[name](**dict(kwargs.get(name, {}))) for name in LESION_FAMILIES
        )
        self.default_spacing = None if default_spacing is None else _spacing_pair(default_spacing)
        self.lung_dilation = float(lung_dilation)
        self._draw: dict[str, Any] | None = None
        self._default_lungs: dict[tuple[int, int, str], tuple[torch.Tensor, LungFields]] = {}

    def randomize(self, data: int | None = None) -> None:
        """Draw every parameter of one call from ``self.R``.

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
            img: ``(C, H, W)`` or ``(B, C, H, W)`` float radiograph(s) in [0, 1], numpy or torch (any float dtype;
                the synthesis computes in float32 and returns ``image`` in the input's dtype).
            lung_mask: nonzero = lung; ``(H, W)``, ``(1 | C, H, W)`` or ``(B, 1 | C, H, W)``. Images whose mask is
                empty fall back to the default ellipses (with a warning).
            spacing: pixel spacing in mm, one value, ``(row, col)`` or ``(B, 2)``; None uses ``default_spacing``.
            foreign: donor radiograph(s) for the foreign-patch family, shaped like ``img`` (or ``(C, H, W)`` for a
                batch); None takes donors from another image of the batch, or, for a single image, from a flipped
                region of the image itself.
            randomize: False reuses the previous draw (e.g. to corrupt a second, aligned image identically).

        Returns:
            :class:`LesionSynthesisResult`; for an input without lesions ``image`` is a copy of the input.

        Raises:
            ValueError: for a bad shape, a non-float dtype, mismatched masks or spacings, or ``randomize=False``
                with a draw for another batch size.
        """
        x = _as_batch(img)
        batch, channels, height, width = x.shape
        if randomize:
            self.randomize(batch if _is_batched(img) else None)
        if self._draw is None or len(self._draw["apply"]) != batch:
            got = None if self._draw is None else len(self._draw["apply"])
            raise ValueError(f"randomize=False needs a previous draw for {batch} images, got one for {got}")
        with torch.no_grad():
            lung, fields = self._lung_fields(lung_mask, x)
            mm = self._spacing(spacing, batch, x.device)
            donors = None if foreign is None else _as_batch(foreign, like=x)
            canvas = LesionCanvas((batch, channels, height, width), x.device)
            self._render(x, lung, fields, mm, donors, canvas)
            image, mask, family = canvas.compose(x)
        return _outputs(img, image, mask, family)

    def _spacing(self, spacing: Any, batch: int, device: torch.device) -> torch.Tensor:
        """``(B, 2)`` float32 spacing in mm (ones when sizes are read in pixels)."""
        if spacing is None:
            spacing = self.default_spacing if self.default_spacing is not None else 1.0
        values = torch.as_tensor(np.asarray(_to_numpy(spacing), dtype=np.float32), device=device)
        if values.ndim == 0 or values.numel() == 1:
            values = values.reshape(1, 1).expand(batch, 2)
        elif values.shape == (2,):
            values = values.reshape(1, 2).expand(batch, 2)
        elif tuple(values.shape) != (batch, 2):
            raise ValueError(f"spacing must be one value, (row, col) or ({batch}, 2), got shape {tuple(values.shape)}")
        if not bool(torch.all(values > 0)):
            raise ValueError(f"spacing must be positive, got {values.tolist()}")
        return values.contiguous()

    def _lung_fields(self, lung_mask: NdarrayOrTensor | None, x: torch.Tensor) -> tuple[torch.Tensor, LungFields]:
        """``(B or 1, 1, H, W)`` lung fields (nonzero = lung) on the device of ``x``, and their coarse grid."""
        batch, _, height, width = x.shape
        key = (height, width, str(x.device))
        if key not in self._default_lungs:
            lung = default_lung_fields(height, width, x.device)
            self._default_lungs[key] = (lung, LungFields(lung, self._cell(height, width)))
        default, default_fields = self._default_lungs[key]
        if lung_mask is None:
            return default, default_fields
        lung = torch.as_tensor(lung_mask).as_subclass(torch.Tensor).to(x.device)
        lung = lung.reshape(1, 1, *lung.shape) if lung.ndim == 2 else lung
        lung = lung.unsqueeze(0) if lung.ndim == 3 else lung
        if lung.ndim != 4 or tuple(lung.shape[-2:]) != (height, width) or lung.shape[0] not in (1, batch):
            raise ValueError(
                f"lung_mask must match the image's spatial shape {(height, width)} and batch of {batch}, "
                f"got shape {tuple(lung.shape)}"
            )
        if lung.shape[1] > 1:
            lung = (lung != 0).any(dim=1, keepdim=True)
        fields = LungFields(lung, self._cell(height, width))
        if bool(fields.empty.any()):
            logger.warning(
                "%d lung mask(s) are empty or too small; using the default lung ellipses there", int(fields.empty.sum())
            )
            lung = torch.where(fields.empty.view(-1, 1, 1, 1), default, lung != 0)
            fields = LungFields(lung, self._cell(height, width))
        return lung, fields

    @staticmethod
    def _cell(height: int, width: int) -> int:
        return max(1, min(height, width) // _GRID_CELLS)

    def _lesion_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Image index, family index and uniform draws ``(N, _NUM_DRAWS)`` of every lesion of the current draw."""
        assert self._draw is not None
        slots = np.arange(self.num_lesions[1])[None, :] < self._draw["count"][:, None]
        slots &= self._draw["apply"][:, None]
        image_index = np.nonzero(slots)[0]
        draws = self._draw["uniform"][slots]
        cumulative = np.cumsum(self.family_probs)
        family = np.searchsorted(cumulative / cumulative[-1], draws[:, _FAMILY], side="right")
        return image_index, np.minimum(family, len(LESION_FAMILIES) - 1), draws

    def _render(
        self,
        x: torch.Tensor,
        lung: torch.Tensor,
        fields: LungFields,
        mm: torch.Tensor,
        donors: torch.Tensor | None,
        canvas: LesionCanvas,
    ) -> None:
        """Render every lesion of the current draw onto ``canvas``, family by family, in groups of similar size."""
        assert self._draw is not None
        image_index, family_index, draws = self._lesion_table()
        if len(image_index) == 0:
            return
        generator = torch.Generator(device=x.device)
        generator.manual_seed(self._draw["seed"])
        height, width = x.shape[-2:]
        sided = any(self.families[k].placement == "side" for k in set(family_index.tolist()))
        boxes = fields.side_boxes() if sided else None
        radius = int(round(self.lung_dilation / float(mm.mean())))
        for k, family in enumerate(self.families):
            chosen = family_index == k
            if not chosen.any():
                continue
            batch = torch.as_tensor(image_index[chosen], device=x.device)
            u = torch.as_tensor(draws[chosen], device=x.device)
            spacing = mm[batch]
            centre, side_box, lateral = self._place(family, batch, u, spacing, fields, boxes, width)
            reach = torch.ceil(family.half_extent(u[:, _OWN:], _side_size(side_box)) / spacing).long() + 1
            for group in _size_groups(reach):
                index = PatchIndex.around(batch[group], centre[group], _patch_size(reach[group], height, width),
                                          (height, width))
                core, soft = lung_patches(index, lung, radius)
                patches = LesionPatches(
                    healthy=index.gather(x),
                    lung=soft,
                    lung_core=core,
                    dy=((index.rows.float() + 0.5 - centre[group, :1]) * spacing[group, :1])[:, None, :, None],
                    dx=((index.cols.float() + 0.5 - centre[group, 1:]) * spacing[group, 1:])[:, None, None, :],
                    params=u[group, _OWN:],
                    spacing=spacing[group],
                    side_box=side_box[group],
                    lateral_sign=lateral[group].view(-1, 1, 1, 1),
                    donor=self._donor(index, u[group], x, donors, fields) if family.needs_donor else None,
                )
                alpha, target = family.render(patches, generator)
                canvas.add(index, alpha * soft, target, patches.healthy, k + 1)

    @staticmethod
    def _place(
        family: LesionFamily,
        batch: torch.Tensor,
        u: torch.Tensor,
        spacing: torch.Tensor,
        fields: LungFields,
        boxes: torch.Tensor | None,
        width: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Centres ``(N, 2)`` in pixels, side boxes ``(N, 4)`` in mm relative to them, lateral signs ``(N,)``."""
        if family.placement == "lung":
            centre = fields.sample(batch, u[:, _CENTRE])
            lateral = torch.where(centre[:, 1] >= width / 2, 1.0, -1.0)
            return centre, torch.zeros((len(batch), 4), device=u.device), lateral
        assert boxes is not None
        side = (u[:, _SIDE] >= 0.5).long()
        box = (boxes[batch] if boxes.shape[0] > 1 else boxes.expand(len(batch), -1, -1))[torch.arange(len(batch)), side]
        lateral = side.float() * 2.0 - 1.0
        half_h = (box[:, 1] - box[:, 0]) / 2 * spacing[:, 0]
        half_w = (box[:, 3] - box[:, 2]) / 2 * spacing[:, 1]
        centred = torch.stack((-half_h, half_h, -half_w, half_w), dim=1)
        offset = family.anchor(u[:, _OWN:], centred)
        centre = torch.stack(
            (
                (box[:, 0] + box[:, 1]) / 2 + offset[:, 0] / spacing[:, 0],
                (box[:, 2] + box[:, 3]) / 2 + offset[:, 1] * lateral / spacing[:, 1],
            ),
            dim=1,
        )
        shift = torch.stack((offset[:, 0], offset[:, 0], offset[:, 1], offset[:, 1]), dim=1)
        return centre, centred - shift, lateral

    @staticmethod
    def _donor(
        index: PatchIndex,
        u: torch.Tensor,
        x: torch.Tensor,
        donors: torch.Tensor | None,
        fields: LungFields,
    ) -> torch.Tensor:
        """Donor pixels for each patch: the ``foreign`` image, another image of the batch, or a flipped region."""
        batch = index.batch
        if donors is None and x.shape[0] > 1:
            source = x
            step = 1 + torch.floor(u[:, _DONOR] * (x.shape[0] - 1)).long().clamp(max=x.shape[0] - 2)
            donor_batch = (batch + step) % x.shape[0]
        else:
            source = x if donors is None else donors
            donor_batch = batch
        centre = fields.sample(donor_batch, u[:, _DONOR_CENTRE])
        size = (index.rows.shape[1], index.cols.shape[1])
        patch = PatchIndex.around(donor_batch, centre, size, (index.height, index.width)).gather(source)
        return patch.flip(-1) if donors is None and x.shape[0] == 1 else patch


def _size_groups(reach: torch.Tensor) -> list[torch.Tensor]:
    """Split lesions into (at most two) groups of similar patch size, so small lesions get small patches.

    Args:
        reach: ``(N, 2)`` half sizes in pixels.

    Returns:
        Index tensors of the groups.
    """
    size = reach.amax(dim=1).float()
    everyone = torch.arange(len(size), device=reach.device)
    small, large = float(size.min()), float(size.max())
    if len(size) < 4 or large <= 2.0 * small:
        return [everyone]
    split = (small * large) ** 0.5
    return [everyone[size <= split], everyone[size > split]]


def _patch_size(reach: torch.Tensor, height: int, width: int) -> tuple[int, int]:
    """Odd patch size covering the largest reach of a group, at most twice the image."""
    rows, cols = (int(v) for v in reach.amax(dim=0).tolist())
    return min(2 * rows + 1, 2 * height + 1), min(2 * cols + 1, 2 * width + 1)


def _side_size(side_box: torch.Tensor) -> torch.Tensor:
    """``(N, 2)`` height and width in mm of side boxes ``(top, bottom, medial, lateral)``."""
    return torch.stack((side_box[:, 1] - side_box[:, 0], side_box[:, 3] - side_box[:, 2]), dim=1)


def _normalised_probs(family_probs: Mapping[str, float] | Sequence[float] | None) -> np.ndarray:
    """Family probabilities in ``LESION_FAMILIES`` order, validated."""
    if family_probs is None:
        family_probs = DEFAULT_FAMILY_PROBS
    if isinstance(family_probs, Mapping):
        unknown = sorted(set(family_probs) - set(LESION_FAMILIES))
        if unknown:
            raise ValueError(f"unknown lesion families {unknown} in family_probs; known: {list(LESION_FAMILIES)}")
        values = [float(family_probs.get(name, 0.0)) for name in LESION_FAMILIES]
    else:
        values = [float(p) for p in family_probs]
        if len(values) != len(LESION_FAMILIES):
            raise ValueError(f"family_probs needs {len(LESION_FAMILIES)} values ({list(LESION_FAMILIES)}), got {values}")
    probs = np.asarray(values, dtype=np.float64)
    if np.any(probs < 0) or not math.isfinite(probs.sum()) or probs.sum() <= 0:
        raise ValueError(f"family_probs must be non-negative with a positive sum, got {values}")
    return probs / probs.sum()


def _spacing_pair(spacing: float | Sequence[float]) -> tuple[float, float]:
    """``(row, col)`` from one value or a pair; both positive."""
    values = np.asarray(_to_numpy(spacing), dtype=np.float64).reshape(-1)
    if values.size == 1:
        values = np.repeat(values, 2)
    if values.size != 2 or np.any(values <= 0):
        raise ValueError(f"spacing must be one positive value or a positive (row, col) pair, got {spacing}")
    return float(values[0]), float(values[1])


def _to_numpy(value: Any) -> Any:
    """Tensors to numpy (on the CPU); anything else unchanged."""
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value


def _is_batched(img: NdarrayOrTensor) -> bool:
    return len(img.shape) == 4


def _as_batch(img: NdarrayOrTensor, like: torch.Tensor | None = None) -> torch.Tensor:
    """A plain float32 ``(B, C, H, W)`` tensor view/copy of ``img`` (a donor is checked against ``like``)."""
    what = "foreign" if like is not None else "img"
    if len(img.shape) not in (3, 4):
        raise ValueError(f"{what} must be (C, H, W) or (B, C, H, W), got shape {tuple(img.shape)}")
    tensor = torch.as_tensor(img) if isinstance(img, np.ndarray) else img
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{what} must be a numpy array or a torch tensor, got {type(img).__name__}")
    if not tensor.is_floating_point():
        raise ValueError(f"{what} must be a floating-point radiograph in [0, 1], got dtype {tensor.dtype}")
    tensor = tensor.as_subclass(torch.Tensor).detach()
    tensor = tensor.unsqueeze(0) if tensor.ndim == 3 else tensor
    if like is not None:
        tensor = tensor.to(like.device)
        if tensor.shape[1:] != like.shape[1:] or tensor.shape[0] not in (1, like.shape[0]):
            raise ValueError(f"foreign must be shaped like the image {tuple(like.shape[1:])}, "
                             f"got {tuple(tensor.shape)}")
    return tensor.to(torch.float32).contiguous()


def _outputs(
    img: NdarrayOrTensor, image: torch.Tensor, mask: torch.Tensor, family: torch.Tensor
) -> LesionSynthesisResult:
    """Bring the batched float32 results back to the input's shape, type, dtype and device."""
    channels = img.shape[-3]
    if not _is_batched(img):
        image, mask, family = image[0], mask[0], family[0]
    if channels > 1:
        mask = mask.expand_as(image).contiguous()
        family = family.expand_as(image).contiguous()
    if isinstance(img, np.ndarray):
        source = torch.as_tensor(img)
        out = torch.where(mask > 0, image.to(source.dtype), source) if img.dtype != np.float32 else image
        return LesionSynthesisResult(out.numpy(), img, mask.numpy(), family.numpy())
    plain = img.as_subclass(torch.Tensor)
    if plain.dtype != torch.float32:
        image = torch.where(mask > 0, image.to(plain.dtype), plain.detach())
    image = convert_to_dst_type(image, img)[0]
    mask = convert_to_dst_type(mask, img, dtype=torch.float32)[0]
    family = convert_to_dst_type(family, img, dtype=torch.int64)[0]
    return LesionSynthesisResult(image, img, mask, family)
