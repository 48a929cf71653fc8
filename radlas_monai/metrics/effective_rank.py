"""Effective rank (participation ratio) of a set of feature vectors: how many directions a representation uses.

For features ``X`` ``(N, D)``, centred over the ``N`` samples, with sample covariance ``C = X_c^T X_c / (N - 1)``
and its eigenvalues ``lambda_1 ... lambda_D``::

    PR = (sum_i lambda_i)^2 / sum_i lambda_i^2 = trace(C)^2 / ||C||_F^2

``PR`` lies in ``[1, min(N - 1, D)]``: ``k`` for features spread evenly over ``k`` orthogonal directions, close to
``1`` when one direction dominates (a collapsed representation). It is invariant to rotating, translating and
scaling the features. Computed through the trace and Frobenius norm, in float64, without an eigendecomposition
(the smaller of ``X_c X_c^T`` and ``X_c^T X_c`` is used: both have the same nonzero eigenvalues).

The participation ratio as a measure of dimensionality: Gao, Trautmann, Yu, Santhanam, Ryu, Shenoy and Ganguli,
"A theory of multineuronal dimensionality, dynamics and measurement", bioRxiv 214262, 2017; applied to deep network
representations by Recanatesi et al., "Dimensionality compression and expansion in deep neural networks",
arXiv:1906.00443, 2019. (RankMe, Garrido et al., ICML 2023, uses the entropy-based effective rank of Roy and
Vetterli, 2007, instead: a related but different number.)

Over a data set, :class:`EffectiveRankMetric` collects the features of every batch (synchronised across processes
like any MONAI ``Cumulative``) and reports the participation ratio of all of them.
"""

from __future__ import annotations

from typing import Any

import torch
from monai.metrics import CumulativeIterationMetric

__all__ = ["effective_rank", "EffectiveRankMetric"]


def _features(features: Any) -> torch.Tensor:
    x = features.detach() if isinstance(features, torch.Tensor) else torch.as_tensor(features)
    if x.ndim != 2:
        raise ValueError(f"expected features (N, D), got shape {tuple(x.shape)}")
    return x


def effective_rank(features: Any) -> float:
    """Participation ratio ``(sum lambda)^2 / sum lambda^2`` of the covariance of ``features`` (module docstring).

    Args:
        features: ``(N, D)`` tensor or array, one row per sample.

    Returns:
        the effective rank in ``[1, min(N - 1, D)]``; NaN with fewer than two samples or when every sample is the
        same (zero covariance).

    Raises:
        ValueError: ``features`` is not 2-D.

    Example:
        >>> effective_rank(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]]))  # lambda ~ (2, 8)
        1.4705882352941178
    """
    x = _features(features).to(torch.float64)
    n, d = x.shape
    if n < 2:
        return float("nan")
    centred = x - x.mean(dim=0, keepdim=True)
    gram = centred @ centred.T if n <= d else centred.T @ centred
    trace = gram.diagonal().sum()
    frobenius_sq = gram.square().sum()
    if not frobenius_sq > 0:
        return float("nan")
    return float(trace.square() / frobenius_sq)


class EffectiveRankMetric(CumulativeIterationMetric):
    """Effective rank (participation ratio) of the features of a whole data set, a MONAI ``Cumulative`` metric.

    Call it on batches of features ``y_pred`` ``(B, D)`` (``y`` is ignored); :meth:`aggregate` returns
    :func:`effective_rank` of all rows collected since the last ``reset()``. In an ignite engine::

        IgniteMetricHandler(metric_fn=EffectiveRankMetric(), output_transform=lambda out: (out["features"], None),
                            save_details=False)

    Example:
        >>> metric = EffectiveRankMetric()
        >>> _ = metric(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        >>> _ = metric(torch.tensor([[0.0, 2.0], [0.0, -2.0]]))
        >>> metric.aggregate()
        1.4705882352941178
    """

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:  # noqa: ARG002
        """The batch's features ``(B, D)`` as float32 rows for the buffer.

        Raises:
            ValueError: ``y_pred`` is not ``(B, D)``.
        """
        return _features(y_pred).float()

    def aggregate(self) -> float:
        """:func:`effective_rank` of every feature row collected so far.

        Raises:
            ValueError: no features were collected.
        """
        features = self.get_buffer()
        if not isinstance(features, torch.Tensor):
            raise ValueError("EffectiveRankMetric has no data: call it on (B, D) feature batches first")
        return effective_rank(features)
