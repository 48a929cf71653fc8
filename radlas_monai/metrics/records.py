"""Per-image results of the localization metrics, and their (weighted) summary over a set of images.

An :class:`ImageRecord` holds everything the metrics need from one image, so no map is kept: per-lesion pointing
hits, best box overlaps and FROC ratings, the FP mark scores, per-image IoU / Dice / CNR and the two pixel
histograms. :class:`RecordTable` stacks records into flat arrays and summarises them for any image weights
(1 for the point estimate, bootstrap multiplicities for confidence intervals) and any finding.

Subsets: the breakdown for finding ``c`` uses the images that have ``c`` plus the normal images, and only the
lesions of finding ``c`` (pixel-level metrics of those images still use their whole lesion region). Images with
findings but no lesion region (image-level labels only) count for image AUROC only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from radlas_monai.metrics.auroc import auc_from_histograms
from radlas_monai.metrics.froc import froc_sensitivities

__all__ = ["ImageRecord", "RecordTable", "metric_key"]


def metric_key(prefix: str, value: float) -> str:
    """Key of a thresholded metric, e.g. ``metric_key("iou", 0.1) == "iou_0.1"`` (MLflow-safe characters)."""
    return f"{prefix}_{value:g}"


@dataclass
class ImageRecord:
    """What the localization metrics keep of one image (see the module docstring)."""

    normal: bool
    localized: bool
    findings: tuple[str, ...]
    lesion_findings: tuple[str, ...]
    pointing: np.ndarray
    best_iou: np.ndarray
    best_iobb: np.ndarray
    lesion_ratings: np.ndarray
    fp_ratings: np.ndarray
    iou: np.ndarray
    dice: np.ndarray
    iou_mask: float
    dice_mask: float
    cnr: float
    pos_hist: np.ndarray
    neg_hist: np.ndarray
    image_score: float
    group: str | None = None


def _wmean(values: np.ndarray, weights: np.ndarray) -> float:
    """Weighted mean over the finite values (NaN when no weight is left)."""
    ok = np.isfinite(values) & (weights > 0)
    total = weights[ok].sum()
    return float((values[ok] * weights[ok]).sum() / total) if total > 0 else float("nan")


class RecordTable:
    """Flat arrays of many :class:`ImageRecord` for fast weighted summaries.

    Args:
        records: the images' records.
        iou_thresholds: thresholds the records' ``iou``/``dice`` were computed at.
        box_thresholds: T(IoU) / T(IoBB) values.
        fp_rates: FP-per-image rates of the FROC sensitivities.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        iou_thresholds: Sequence[float],
        box_thresholds: Sequence[float],
        fp_rates: Sequence[float],
    ) -> None:
        if not records:
            raise ValueError("no images to summarise: call update() before aggregate()")
        self.iou_thresholds, self.box_thresholds, self.fp_rates = tuple(iou_thresholds), box_thresholds, fp_rates
        self.n = len(records)
        self.normal = np.array([r.normal for r in records])
        self.localized = np.array([r.localized for r in records])
        self.findings = [set(r.findings) | set(r.lesion_findings) for r in records]
        self.image_score = np.array([r.image_score for r in records], dtype=np.float64)
        self.iou = np.array([r.iou for r in records], dtype=np.float64).reshape(self.n, -1)
        self.dice = np.array([r.dice for r in records], dtype=np.float64).reshape(self.n, -1)
        self.iou_mask = np.array([r.iou_mask for r in records], dtype=np.float64)
        self.dice_mask = np.array([r.dice_mask for r in records], dtype=np.float64)
        self.cnr = np.array([r.cnr for r in records], dtype=np.float64)
        self.pos_hist = np.stack([r.pos_hist for r in records]).astype(np.float64)
        self.neg_hist = np.stack([r.neg_hist for r in records]).astype(np.float64)
        self.lesion_image = np.concatenate([np.full(len(r.lesion_findings), i) for i, r in enumerate(records)])
        self.lesion_image = self.lesion_image.astype(np.int64)
        self.lesion_finding = np.array([f for r in records for f in r.lesion_findings], dtype=object)
        self.lesion_pointing = np.concatenate([r.pointing for r in records]).astype(bool)
        self.lesion_iou = np.concatenate([r.best_iou for r in records]).astype(np.float64)
        self.lesion_iobb = np.concatenate([r.best_iobb for r in records]).astype(np.float64)
        self.lesion_rating = np.concatenate([r.lesion_ratings for r in records]).astype(np.float64)
        self.fp_image = np.concatenate([np.full(len(r.fp_ratings), i) for i, r in enumerate(records)]).astype(np.int64)
        self.fp_rating = np.concatenate([r.fp_ratings for r in records]).astype(np.float64)
        self.max_fp = np.array([r.fp_ratings.max() if len(r.fp_ratings) else -np.inf for r in records])
        self.groups = [r.group for r in records]
        pair_keys = list(zip(self.lesion_image.tolist(), self.lesion_finding.tolist()))
        unique_pairs = list(dict.fromkeys(pair_keys))
        index = {pair: k for k, pair in enumerate(unique_pairs)}
        self.lesion_pair = np.array([index[p] for p in pair_keys], dtype=np.int64)
        self.pair_image = np.array([p[0] for p in unique_pairs], dtype=np.int64)
        self.pair_finding = np.array([p[1] for p in unique_pairs], dtype=object)
        self.pair_hit = np.zeros(len(unique_pairs), dtype=bool)
        np.logical_or.at(self.pair_hit, self.lesion_pair, self.lesion_pointing)
        self._precompute_ranks()
        self._selections: dict[str | None, tuple[np.ndarray, np.ndarray]] = {}

    def _precompute_ranks(self) -> None:
        """Scores never change between bootstrap resamples, only weights: rank them once, so every summary is
        a few weighted ``bincount`` calls (no sorting)."""
        _, self.image_code = np.unique(self.image_score, return_inverse=True)
        self.n_image_codes = int(self.image_code.max()) + 1
        joint = np.concatenate([self.lesion_rating, self.max_fp])
        _, codes = np.unique(joint, return_inverse=True)
        self.jafroc_lesion_code, self.jafroc_image_code = (
            codes[: self.lesion_rating.size],
            codes[self.lesion_rating.size :],
        )
        self.n_jafroc_codes = int(codes.max()) + 1 if codes.size else 1
        scores = np.concatenate([self.lesion_rating, self.fp_rating])
        thresholds = np.unique(scores[np.isfinite(scores)])[::-1]  # descending
        self.froc_thresholds = thresholds
        # position of each finite rating among the descending thresholds; -inf ratings are never counted
        self.froc_lesion_finite = np.isfinite(self.lesion_rating)
        self.froc_lesion_code = np.searchsorted(-thresholds, -self.lesion_rating[self.froc_lesion_finite])
        self.froc_fp_finite = np.isfinite(self.fp_rating)
        self.froc_fp_code = np.searchsorted(-thresholds, -self.fp_rating[self.froc_fp_finite])

    def _hist(self, codes: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
        return np.bincount(codes, weights=weights, minlength=size) if codes.size else np.zeros(size)

    def _froc_points(self, w_scored: np.ndarray, lesion_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The FROC curve as :func:`~radlas_monai.metrics.froc.froc_curve` computes it, from the precomputed ranks."""
        size = self.froc_thresholds.size
        tp = np.cumsum(self._hist(self.froc_lesion_code, lesion_w[self.froc_lesion_finite], size))
        fp_w = w_scored[self.fp_image][self.froc_fp_finite]
        fp = np.cumsum(self._hist(self.froc_fp_code, fp_w, size))
        fps = np.r_[0.0, fp / w_scored.sum()]
        sens = np.r_[0.0, tp / lesion_w.sum()]
        last_of_run = np.r_[fps[1:] != fps[:-1], True]
        return fps[last_of_run], sens[last_of_run]

    def class_names(self) -> list[str]:
        """Every finding of the table, sorted."""
        return sorted(set().union(*self.findings))

    def _selection(self, finding: str | None) -> tuple[np.ndarray, np.ndarray]:
        if finding not in self._selections:
            if finding is None:
                images, lesions = np.ones(self.n, dtype=bool), np.ones(self.lesion_image.size, dtype=bool)
            else:
                images = np.array([finding in f for f in self.findings]) | self.normal
                lesions = self.lesion_finding == finding
            self._selections[finding] = (images, lesions)
        return self._selections[finding]

    def _weights(self, weights: np.ndarray | None, finding: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(w, w_scored, lesion_w)``: image weights of the subset, of its images whose marks can be judged
        (a lesion region or normal), and of the subset's lesions."""
        images, lesions = self._selection(finding)
        base = np.ones(self.n) if weights is None else np.asarray(weights, dtype=np.float64)
        w = base * images
        w_scored = w * (self.localized | self.normal)
        return w, w_scored, w_scored[self.lesion_image] * lesions

    def froc(self, weights: np.ndarray | None = None, finding: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(fps_per_image, sensitivity)`` of the FROC curve of the (weighted) subset (NaN without lesions)."""
        _, w_scored, lw = self._weights(weights, finding)
        if w_scored.sum() <= 0 or lw.sum() <= 0:
            return np.zeros(1), np.full(1, np.nan)
        return self._froc_points(w_scored, lw)

    def summarize(self, weights: np.ndarray | None = None, finding: str | None = None) -> dict[str, float]:
        """All scalar metrics of the (weighted) subset of images for ``finding`` (``None``: all images)."""
        w, w_scored, lw = self._weights(weights, finding)
        out: dict[str, float] = {
            "n_images": float(w.sum()),
            "n_abnormal": float(w[~self.normal].sum()),
            "n_normal": float(w[self.normal].sum()),
            "n_lesions": float(lw.sum()),
        }
        out["pointing_game"] = self._pointing(w_scored, finding)
        wl = w_scored * self.localized
        for k, t in enumerate(self.iou_thresholds):
            out[metric_key("iou", t)] = _wmean(self.iou[:, k], wl)
            out[metric_key("dice", t)] = _wmean(self.dice[:, k], wl)
        out["mean_iou"] = _wmean(self.iou.mean(axis=1), wl)
        out["iou_mask"], out["dice_mask"] = _wmean(self.iou_mask, wl), _wmean(self.dice_mask, wl)
        for t in self.box_thresholds:
            total = lw.sum()
            out[metric_key("box_acc_iou", t)] = float((lw * (self.lesion_iou > t)).sum() / total) if total else np.nan
            out[metric_key("box_acc_iobb", t)] = float((lw * (self.lesion_iobb > t)).sum() / total) if total else np.nan
        out["cnr"] = _wmean(self.cnr, wl)
        out["pixel_auroc"] = auc_from_histograms(w_scored @ self.pos_hist, w_scored @ self.neg_hist)
        out["image_auroc"] = auc_from_histograms(
            self._hist(self.image_code, w * ~self.normal, self.n_image_codes),
            self._hist(self.image_code, w * self.normal, self.n_image_codes),
        )
        out.update(self._froc_metrics(w_scored, lw))
        return out

    def _pointing(self, w_scored: np.ndarray, finding: str | None) -> float:
        """Hit rate over (image, finding) pairs: a pair hits when the peak hits any of its lesions."""
        pair_w = w_scored[self.pair_image] * (True if finding is None else self.pair_finding == finding)
        total = pair_w.sum()
        return float((pair_w * self.pair_hit).sum() / total) if total > 0 else float("nan")

    def _froc_metrics(self, w_scored: np.ndarray, lesion_weights: np.ndarray) -> dict[str, float]:
        out: dict[str, float] = {}
        if w_scored.sum() > 0 and lesion_weights.sum() > 0:
            values = froc_sensitivities(*self._froc_points(w_scored, lesion_weights), self.fp_rates)
        else:
            values = np.full(len(self.fp_rates), np.nan)
        for rate, value in zip(self.fp_rates, values):
            out[metric_key("froc_sens_fp", rate)] = float(value)
        out["froc_mean_sens"] = float(np.mean(values))
        size = self.n_jafroc_codes
        lesions = self._hist(self.jafroc_lesion_code, lesion_weights, size)
        out["jafroc_fom"] = auc_from_histograms(lesions, self._hist(self.jafroc_image_code, w_scored, size))
        normals = self._hist(self.jafroc_image_code, w_scored * self.normal, size)
        out["jafroc_fom_normals"] = auc_from_histograms(lesions, normals)
        return out
