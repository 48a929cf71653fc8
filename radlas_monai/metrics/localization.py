"""All localization metrics of a lesion-map method, accumulated image by image (like ``monai.metrics.Cumulative``).

Per image, :class:`LocalizationMetrics` localizes the map once with the project's single implementation
(:func:`~radlas_monai.interpret.localize.localize`: mask, boxes, marks) and keeps a small
:class:`~radlas_monai.metrics.records.ImageRecord`; :meth:`LocalizationMetrics.aggregate` summarises:

* ``pointing_game`` (Zhang et al. 2018), see :mod:`~radlas_monai.metrics.pointing`;
* ``iou_T`` / ``dice_T`` at thresholds of the normalised map, ``mean_iou`` over them, ``iou_mask`` / ``dice_mask``
  of the localized mask, see :mod:`~radlas_monai.metrics.overlap`;
* ``box_acc_iou_T`` / ``box_acc_iobb_T`` (Wang et al. 2017), see :mod:`~radlas_monai.metrics.box_accuracy`;
* ``cnr``, see :mod:`~radlas_monai.metrics.cnr`;
* ``pixel_auroc`` and ``image_auroc`` (map maximum as image score), see :mod:`~radlas_monai.metrics.auroc`;
* ``froc_sens_fp_{r}`` (sensitivity at ``r`` = 0.125 .. 8 FPs per image), ``froc_mean_sens`` (their mean, the
  CPM of LUNA16), ``jafroc_fom`` (JAFROC-1, all images) and ``jafroc_fom_normals`` (JAFROC, normal images only), see
  :mod:`~radlas_monai.metrics.froc`;
* counts ``n_images``, ``n_abnormal``, ``n_normal``, ``n_lesions``;

plus ``per_class`` (the same keys per finding, see :mod:`~radlas_monai.metrics.records` for the subsets),
``ci`` (percentile-bootstrap intervals resampling patients, or images, see :mod:`~radlas_monai.metrics.bootstrap`)
and ``froc_curve`` (``fps`` / ``sensitivity`` lists, for plots). Pixel-level and per-image metrics are means over
images with a lesion region; lesion-level ones are over lesions; FPs count on every image, normals included.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from radlas_monai.interpret.localize import localize
from radlas_monai.interpret.threshold import as_heatmap
from radlas_monai.metrics.annotation import LesionAnnotation
from radlas_monai.metrics.auroc import PixelAUROC, value_histogram
from radlas_monai.metrics.bootstrap import bootstrap_ci
from radlas_monai.metrics.box_accuracy import BOX_THRESHOLDS, best_box_overlaps
from radlas_monai.metrics.cnr import contrast_to_noise_ratio
from radlas_monai.metrics.froc import FROC_FP_RATES, match_marks
from radlas_monai.metrics.overlap import MEAN_IOU_THRESHOLDS, iou_dice, overlap_at_thresholds
from radlas_monai.metrics.pointing import lesion_pointing_hits
from radlas_monai.metrics.records import ImageRecord, RecordTable

__all__ = ["LocalizationMetrics"]


class LocalizationMetrics:
    """Accumulate lesion maps with their ground truth and compute every localization metric.

    Example::

        metric = LocalizationMetrics(bootstrap=1000, seed=0)
        for item, heatmap in zip(datalist, maps):       # heatmap (H, W) on the item's pixel grid
            metric(heatmap, item)                       # item: a datalist item with its mask loaded
        results = metric.aggregate()                    # {"pointing_game": ..., "per_class": {...}, "ci": {...}}

    Args:
        class_names: findings of the per-class breakdown (default: every finding seen, sorted).
        pointing_tolerance: pointing-game slack in pixels around each lesion region.
        iou_thresholds: thresholds of the normalised map for IoU / Dice (their mean is ``mean_iou``).
        box_thresholds: T(IoU) / T(IoBB) values of box accuracy.
        fp_rates: FPs per image at which FROC sensitivity is reported.
        localize_kwargs: arguments of :func:`~radlas_monai.interpret.localize.localize` (threshold method, min_area,
            max_boxes, min_distance, max_peaks, peak_threshold) that make the mask, boxes and marks.
        n_bins: histogram bins of the streaming pixel AUROC.
        bootstrap: number of bootstrap resamples for confidence intervals (0 disables them).
        confidence: interval coverage.
        seed: seed of the bootstrap (a local generator).
        group_key: item key of the resampling unit (patients); images without it are their own unit.
        per_class_ci: also compute intervals of the per-class metrics.
        base_dir: folder that relative ``mask`` paths of items are resolved against.

    Raises:
        ValueError: on invalid settings.
    """

    def __init__(
        self,
        class_names: Sequence[str] | None = None,
        pointing_tolerance: float = 0.0,
        iou_thresholds: Sequence[float] = MEAN_IOU_THRESHOLDS,
        box_thresholds: Sequence[float] = BOX_THRESHOLDS,
        fp_rates: Sequence[float] = FROC_FP_RATES,
        localize_kwargs: Mapping[str, Any] | None = None,
        n_bins: int = 1000,
        bootstrap: int = 1000,
        confidence: float = 0.95,
        seed: int = 0,
        group_key: str | None = "patient",
        per_class_ci: bool = True,
        base_dir: str | os.PathLike | None = None,
    ) -> None:
        if pointing_tolerance < 0 or bootstrap < 0:
            raise ValueError(f"need pointing_tolerance >= 0, bootstrap >= 0; got {pointing_tolerance}, {bootstrap}")
        if not 0.0 < confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {confidence}")
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.pointing_tolerance = float(pointing_tolerance)
        self.iou_thresholds = tuple(float(t) for t in iou_thresholds)
        self.box_thresholds = tuple(float(t) for t in box_thresholds)
        self.fp_rates = tuple(float(r) for r in fp_rates)
        self.localize_kwargs = dict(localize_kwargs or {})
        self.pixel_auroc = PixelAUROC(n_bins)
        self.bootstrap, self.confidence, self.seed = int(bootstrap), float(confidence), int(seed)
        self.group_key, self.per_class_ci, self.base_dir = group_key, bool(per_class_ci), base_dir
        self.records: list[ImageRecord] = []

    def reset(self) -> None:
        """Forget all images."""
        self.records = []
        self.pixel_auroc.reset()

    def update(self, heatmap: Any, annotation: Any) -> list[ImageRecord]:
        """Add one image, or a batch.

        Args:
            heatmap: one map ``(H, W)`` / ``(1, H, W)`` with ``annotation`` a datalist item (mapping) or a
                :class:`~radlas_monai.metrics.annotation.LesionAnnotation`; or a batch ``(B, 1, H, W)`` /
                ``(B, H, W)`` with a sequence of ``B`` annotations. Numpy arrays or torch tensors.
            annotation: see above. Item coordinates must be on the map's pixel grid; a ``mask`` may be an array
                or a path (relative to ``base_dir``).

        Returns:
            The new records.

        Raises:
            ValueError: on a batch size that differs from the number of annotations, or bad shapes.
        """
        if isinstance(annotation, (Mapping, LesionAnnotation)):
            return [self._add(heatmap, annotation)]
        annotations = list(annotation)
        if len(np.shape(heatmap)) not in (3, 4) or np.shape(heatmap)[0] != len(annotations):
            raise ValueError(
                f"expected a batch (B, 1, H, W) or (B, H, W) with B = {len(annotations)} annotations, "
                f"got heatmap shape {tuple(np.shape(heatmap))}"
            )
        return [self._add(heatmap[i], a) for i, a in enumerate(annotations)]

    __call__ = update

    def _add(self, heatmap: Any, annotation: Mapping[str, Any] | LesionAnnotation) -> ImageRecord:
        heat = as_heatmap(heatmap)
        group = None
        if isinstance(annotation, Mapping):
            group = annotation.get(self.group_key) if self.group_key else None
            annotation = LesionAnnotation.from_item(annotation, heat.shape, base_dir=self.base_dir)
        elif annotation.shape != heat.shape:
            raise ValueError(f"heatmap shape {heat.shape} differs from the annotation's {annotation.shape}")
        record = self._evaluate(heat, annotation, None if group is None else str(group))
        self.records.append(record)
        self.pixel_auroc.pos_hist += record.pos_hist
        self.pixel_auroc.neg_hist += record.neg_hist
        return record

    def _evaluate(self, heat: np.ndarray, annotation: LesionAnnotation, group: str | None) -> ImageRecord:
        loc = localize(heat, **self.localize_kwargs)
        pred_boxes = np.asarray([b.box for b in loc.boxes], dtype=np.float64).reshape(-1, 4)
        best_iou, best_iobb = best_box_overlaps(annotation.gt_boxes(), pred_boxes)
        lesion_ratings, fp_ratings = match_marks(loc.peaks, annotation)
        nan_t = np.full(len(self.iou_thresholds), np.nan)
        iou, dice, iou_mask, dice_mask, cnr = nan_t, nan_t, np.nan, np.nan, np.nan
        n_bins = self.pixel_auroc.n_bins
        pos_hist, neg_hist = np.zeros(n_bins, np.int64), np.zeros(n_bins, np.int64)
        if annotation.has_localization:
            region = annotation.region_mask()
            iou, dice = overlap_at_thresholds(heat, region, self.iou_thresholds)
            iou_mask, dice_mask = iou_dice(loc.mask, region)
            cnr = contrast_to_noise_ratio(heat, region)
            pos_hist, neg_hist = self.pixel_auroc.histograms(heat, region)
        elif annotation.is_normal:
            neg_hist = value_histogram(heat, n_bins)
        return ImageRecord(
            normal=annotation.is_normal,
            localized=annotation.has_localization,
            findings=tuple(annotation.findings),
            lesion_findings=tuple(annotation.lesion_findings()),
            pointing=lesion_pointing_hits(heat, annotation, self.pointing_tolerance),
            best_iou=best_iou,
            best_iobb=best_iobb,
            lesion_ratings=lesion_ratings,
            fp_ratings=fp_ratings,
            iou=iou,
            dice=dice,
            iou_mask=float(iou_mask),
            dice_mask=float(dice_mask),
            cnr=float(cnr),
            pos_hist=pos_hist,
            neg_hist=neg_hist,
            image_score=float(loc.image_score),
            group=group,
        )

    def table(self) -> RecordTable:
        """The accumulated records as a :class:`~radlas_monai.metrics.records.RecordTable`."""
        return RecordTable(self.records, self.iou_thresholds, self.box_thresholds, self.fp_rates)

    def aggregate(self, with_ci: bool | None = None) -> dict[str, Any]:
        """Summarise all images so far.

        Args:
            with_ci: compute bootstrap intervals (default: when ``bootstrap > 0``).

        Returns:
            ``{metric: value, ..., "per_class": {finding: {metric: value, ..., "ci": {...}}},
            "ci": {metric: [low, high]}, "froc_curve": {"fps": [...], "sensitivity": [...]}}``.

        Raises:
            ValueError: when no image was added.
        """
        table = self.table()
        names = self.class_names if self.class_names is not None else table.class_names()
        out: dict[str, Any] = dict(table.summarize())
        fps, sens = table.froc()
        out["froc_curve"] = {"fps": fps.tolist(), "sensitivity": sens.tolist()}
        out["per_class"] = {name: dict(table.summarize(finding=name)) for name in names}
        for name in names:
            fps, sens = table.froc(finding=name)
            out["per_class"][name]["froc_curve"] = {"fps": fps.tolist(), "sensitivity": sens.tolist()}
        if with_ci is None:
            with_ci = self.bootstrap > 0
        if with_ci:
            out["ci"], per_class_ci = self._intervals(table, names)
            for name in names:
                out["per_class"][name]["ci"] = per_class_ci.get(name, {})
        return out

    def _intervals(self, table: RecordTable, names: Sequence[str]) -> tuple[dict, dict[str, dict]]:
        """Bootstrap intervals of the overall metrics (and per class), from the same resamples."""
        findings = list(names) if self.per_class_ci else []

        def statistic(weights: np.ndarray) -> dict[str, float]:
            values = {f"\x00{k}": v for k, v in table.summarize(weights).items()}
            for name in findings:
                values.update({f"{name}\x00{k}": v for k, v in table.summarize(weights, finding=name).items()})
            return values

        groups = [g if g is not None else f"\x01image{i}" for i, g in enumerate(table.groups)]
        raw = bootstrap_ci(statistic, table.n, self.bootstrap, self.confidence, self.seed, groups=groups)
        overall: dict[str, list[float]] = {}
        per_class: dict[str, dict[str, list[float]]] = {}
        for key, (low, high) in raw.items():
            name, metric = key.split("\x00", 1)
            if metric.startswith("n_"):
                continue
            (overall if not name else per_class.setdefault(name, {}))[metric] = [low, high]
        return overall, per_class
