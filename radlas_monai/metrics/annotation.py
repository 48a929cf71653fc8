"""The ground truth of one image for the localization metrics, read from a datalist item.

A datalist item (see the project's datalist contract) may carry ``boxes`` / ``box_findings``, ``centers`` /
``radii``, a lesion ``mask`` and ``findings``. :meth:`LesionAnnotation.from_item` turns them into *lesions*, each
with one **acceptance region** used by the pointing game and FROC:

* a circle when the lesion has a centre and radius (``centers[i]``, ``radii[i]``; the JAFROC convention of an
  acceptance radius), else
* its box (``boxes[i]``; ``centers`` and ``boxes`` describe the same lesions when both are given), else
* when the item has only a ``mask``, each 8-connected component of the mask is a lesion.

A lesion's finding is ``box_findings[i]``, else the image's only finding, else :data:`UNSPECIFIED_FINDING`.
The **pixel region** (IoU, Dice, CNR, pixel AUROC) is the ``mask`` when given (and not empty), else the union of
the lesions' acceptance regions. An image is *normal* when it has no findings, no lesions and an empty (or no)
mask. Pixel ``(x, y)`` (column, row) is inside a box ``[x0, y0, x1, y1]`` when ``x0 <= x < x1`` and
``y0 <= y < y1``, inside a circle when ``(x - cx)^2 + (y - cy)^2 <= r^2``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from radlas_monai.interpret.components import boxes_to_mask, label_components

__all__ = ["UNSPECIFIED_FINDING", "Lesion", "LesionAnnotation"]

#: The finding name of a lesion whose finding the item does not say.
UNSPECIFIED_FINDING = "unspecified"


@dataclass(frozen=True)
class Lesion:
    """One annotated lesion: its finding and exactly one acceptance region (circle, box or mask component).

    Attributes:
        finding: finding name.
        center: ``(x, y)`` with ``radius`` for a circular region.
        radius: acceptance radius in pixels.
        box: ``(x0, y0, x1, y1)`` (x1/y1 exclusive); the region when there is no circle, and the ground-truth box
            of box accuracy (else the circle's bounding box is used).
        component: label of the lesion's mask component in :attr:`LesionAnnotation.components` (mask-only items).
    """

    finding: str
    center: tuple[float, float] | None = None
    radius: float | None = None
    box: tuple[float, float, float, float] | None = None
    component: int | None = None

    def bounding_box(self, components: np.ndarray | None = None) -> tuple[float, float, float, float]:
        """The lesion's ground-truth box ``[x0, y0, x1, y1]`` (its box, the circle's or the component's)."""
        if self.box is not None:
            return self.box
        if self.center is not None and self.radius is not None:
            (cx, cy), r = self.center, self.radius
            return (cx - r, cy - r, cx + r, cy + r)
        if components is None or self.component is None:
            raise ValueError(f"lesion {self} has no region")
        ys, xs = np.nonzero(components == self.component)
        return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def _pairs(item: Mapping[str, Any], key: str, width: int) -> list[list[float]]:
    values = item.get(key) or []
    array = np.asarray(values, dtype=np.float64)
    if array.size and (array.ndim != 2 or array.shape[1] != width):
        raise ValueError(f"item {key!r} must be a list of {width}-element lists, got shape {array.shape}")
    return array.reshape(-1, width).tolist()


def _load_mask(value: Any, shape: tuple[int, int], base_dir: str | os.PathLike | None) -> np.ndarray:
    if isinstance(value, (str, os.PathLike)):
        from PIL import Image

        path = os.path.join(base_dir, value) if base_dir is not None else value
        with Image.open(path) as image:
            value = np.asarray(image)
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    mask = np.asarray(value)
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.shape != tuple(shape):
        raise ValueError(f"lesion mask shape {mask.shape} differs from the heat map shape {tuple(shape)}")
    return mask != 0


@dataclass
class LesionAnnotation:
    """Ground truth of one image on an ``(H, W)`` grid.

    Attributes:
        shape: ``(H, W)``.
        findings: the image's finding names (empty for a normal image).
        lesions: the annotated lesions.
        mask: ``(H, W)`` bool lesion mask, or ``None``.
        components: ``(H, W)`` labels of the mask's components when lesions come from the mask, else ``None``.
    """

    shape: tuple[int, int]
    findings: tuple[str, ...] = ()
    lesions: tuple[Lesion, ...] = ()
    mask: np.ndarray | None = None
    components: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def from_item(
        cls, item: Mapping[str, Any], shape: Sequence[int], base_dir: str | os.PathLike | None = None
    ) -> LesionAnnotation:
        """Read the fields of a datalist item (see the module docstring).

        Args:
            item: mapping with optional ``findings``, ``boxes``, ``box_findings``, ``centers``, ``radii``, ``mask``
                (an ``(H, W)`` array / tensor, or a path of a mask image relative to ``base_dir``).
            shape: ``(H, W)`` of the heat map the annotation is compared with (same grid as the item's coordinates).
            base_dir: folder that relative mask paths are resolved against.

        Returns:
            The annotation.

        Raises:
            ValueError: on inconsistent list lengths, malformed boxes/centres, centres without radii, or a mask of
                another shape.
        """
        if len(shape) != 2:
            raise ValueError(f"expected shape (H, W), got {tuple(shape)}")
        shape2 = (int(shape[0]), int(shape[1]))
        boxes, centers = _pairs(item, "boxes", 4), _pairs(item, "centers", 2)
        radii = [float(r) for r in (item.get("radii") or [])]
        box_findings = list(item.get("box_findings") or [])
        findings = tuple(str(f) for f in (item.get("findings") or []))
        if centers and len(radii) != len(centers):
            raise ValueError(f"item has {len(centers)} centers but {len(radii)} radii")
        if centers and boxes and len(centers) != len(boxes):
            raise ValueError(f"item has {len(centers)} centers but {len(boxes)} boxes; they must pair up")
        count = max(len(centers), len(boxes))
        if box_findings and len(box_findings) != count:
            raise ValueError(f"item has {len(box_findings)} box_findings for {count} lesions")
        default = findings[0] if len(findings) == 1 else UNSPECIFIED_FINDING
        names = [str(box_findings[i]) if box_findings else default for i in range(count)]
        lesions = [
            Lesion(
                finding=names[i],
                center=(centers[i][0], centers[i][1]) if centers else None,
                radius=radii[i] if centers else None,
                box=tuple(boxes[i]) if boxes else None,  # type: ignore[arg-type]
            )
            for i in range(count)
        ]
        mask = None if item.get("mask") is None else _load_mask(item["mask"], shape2, base_dir)
        components = None
        if not lesions and mask is not None and mask.any():
            components, n = label_components(mask, connectivity=2)
            lesions = [Lesion(finding=default, component=i) for i in range(1, n + 1)]
        if not findings:
            findings = tuple(sorted({lesion.finding for lesion in lesions} - {UNSPECIFIED_FINDING}))
        return cls(shape=shape2, findings=findings, lesions=tuple(lesions), mask=mask, components=components)

    @property
    def is_normal(self) -> bool:
        """No findings, no lesions and no lesion pixels."""
        return not self.findings and not self.lesions and (self.mask is None or not self.mask.any())

    @property
    def has_localization(self) -> bool:
        """Whether the image has a lesion region to score maps against (lesions or a non-empty mask)."""
        return bool(self.lesions) or (self.mask is not None and bool(self.mask.any()))

    def lesion_findings(self) -> list[str]:
        """Finding name of every lesion, in order."""
        return [lesion.finding for lesion in self.lesions]

    def gt_boxes(self) -> np.ndarray:
        """``(L, 4)`` ground-truth boxes of the lesions (see :meth:`Lesion.bounding_box`)."""
        return np.asarray([les.bounding_box(self.components) for les in self.lesions], dtype=np.float64).reshape(-1, 4)

    def region_mask(self) -> np.ndarray:
        """``(H, W)`` bool pixel region: the mask if given and not empty, else the union of the acceptance regions."""
        if self.mask is not None and (self.mask.any() or not self.lesions):
            return self.mask
        region = np.zeros(self.shape, dtype=bool)
        ys, xs = np.ogrid[: self.shape[0], : self.shape[1]]
        for lesion in self.lesions:
            if lesion.center is not None and lesion.radius is not None:
                (cx, cy), r = lesion.center, lesion.radius
                region |= (xs - cx) ** 2 + (ys - cy) ** 2 <= r * r
            elif lesion.box is not None:
                region |= boxes_to_mask([lesion.box], self.shape)
        return region

    def hits(self, xs: Sequence[float], ys: Sequence[float], tolerance: float = 0.0) -> np.ndarray:
        """Which points fall in which lesion's acceptance region, within ``tolerance`` pixels of it.

        Args:
            xs: ``(P,)`` point columns.
            ys: ``(P,)`` point rows.
            tolerance: extra distance (pixels) outside the region that still counts (0: inside only).

        Returns:
            bool ``(P, L)``.
        """
        px, py = np.asarray(xs, dtype=np.float64).ravel(), np.asarray(ys, dtype=np.float64).ravel()
        out = np.zeros((px.size, len(self.lesions)), dtype=bool)
        for j, lesion in enumerate(self.lesions):
            if lesion.center is not None and lesion.radius is not None:
                (cx, cy), r = lesion.center, lesion.radius
                out[:, j] = (px - cx) ** 2 + (py - cy) ** 2 <= (r + tolerance) ** 2
            elif lesion.box is not None:
                x0, y0, x1, y1 = lesion.box
                inside = (px >= x0) & (px < x1) & (py >= y0) & (py < y1)
                dx = np.maximum(np.maximum(x0 - px, px - x1), 0.0)
                dy = np.maximum(np.maximum(y0 - py, py - y1), 0.0)
                out[:, j] = inside | ((tolerance > 0) & (dx**2 + dy**2 <= tolerance**2))
            else:
                out[:, j] = self._component_hits(lesion.component, px, py, tolerance)
        return out

    def _component_hits(self, label: int | None, px: np.ndarray, py: np.ndarray, tolerance: float) -> np.ndarray:
        assert self.components is not None and label is not None
        height, width = self.shape
        ix, iy = np.rint(px).astype(np.int64), np.rint(py).astype(np.int64)
        valid = (ix >= 0) & (ix < width) & (iy >= 0) & (iy < height)
        region = self.components == label
        if tolerance > 0:
            region = ndimage.distance_transform_edt(~region) <= tolerance
        hit = np.zeros(px.size, dtype=bool)
        hit[valid] = region[iy[valid], ix[valid]]
        return hit
