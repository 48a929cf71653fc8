"""Effective rank / participation ratio (radlas_monai.metrics.effective_rank)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from radlas_monai.metrics import EffectiveRankMetric, effective_rank

# centred, uncorrelated 2-D points: covariance eigenvalues proportional to (sum x^2, sum y^2) = (2, 8)
# -> PR = (2 + 8)^2 / (2^2 + 8^2) = 100 / 68
PLUS = [[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]]


def _isotropic(k: int, dims: int) -> np.ndarray:
    """Rows +-e_i for i < k in ``dims`` dimensions: covariance proportional to diag(1 (k times), 0, ...)."""
    eye = np.eye(dims)[:k]
    return np.concatenate([eye, -eye])


def _rotation(angle: float) -> np.ndarray:
    return np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])


@pytest.mark.parametrize(
    "features, expected",
    [
        [PLUS, 100 / 68],
        [np.array(PLUS) @ _rotation(0.7).T * 3.0 + 5.0, 100 / 68],  # rotated, scaled, translated: same spectrum
        [[[0.0, 0.0], [2.0, 2.0]], 1.0],  # two points span one direction
        # 3 points (0,0), (3,0), (0,3): centred covariance x 2 = [[6, -3], [-3, 6]], eigenvalues 9, 3 -> 144 / 90
        [[[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]], 144 / 90],
        [_isotropic(1, 5), 1.0],
        [_isotropic(3, 5), 3.0],
        [_isotropic(5, 5), 5.0],
        [_isotropic(4, 8), 4.0],  # N = 8 <= D = 8: the Gram-matrix path
        [_isotropic(3, 2 * 3 - 1), 3.0],  # N = 6 > D = 5: the covariance path
    ],
)
def test_effective_rank_hand_computed(features, expected):
    assert effective_rank(torch.as_tensor(np.asarray(features), dtype=torch.float32)) == pytest.approx(expected)
    assert effective_rank(np.asarray(features)) == pytest.approx(expected)  # arrays too


def test_one_dominant_direction_gives_about_one():
    # eigenvalues proportional to (100, 1, 1, 1): PR = 103^2 / (100^2 + 3) ~ 1.06
    scales = np.array([10.0, 1.0, 1.0, 1.0])
    features = _isotropic(4, 4) * scales
    assert effective_rank(features) == pytest.approx(103**2 / (100**2 + 3))
    assert effective_rank(features) < 1.1


def test_random_isotropic_features_approach_their_dimension():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(4000, 8, generator=generator)
    assert effective_rank(features) == pytest.approx(8.0, rel=0.02)
    low_rank = features[:, :3] @ torch.randn(3, 8, generator=generator)
    assert 1.0 <= effective_rank(low_rank) <= 3.0 + 1e-6  # rank 3: at most 3


@pytest.mark.parametrize(
    "features",
    [
        np.array([[1.0, 2.0]]),  # one sample
        np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]),  # no spread
        np.zeros((0, 3)),  # no samples
    ],
)
def test_undefined_effective_rank_is_nan(features):
    assert math.isnan(effective_rank(features))


@pytest.mark.parametrize("shape", [(4,), (2, 3, 4)])
def test_ill_shaped_features_raise(shape):
    with pytest.raises(ValueError, match=r"expected features \(N, D\), got shape"):
        effective_rank(torch.zeros(shape))
    with pytest.raises(ValueError, match=r"expected features \(N, D\)"):
        EffectiveRankMetric()(torch.zeros(shape))


def test_metric_accumulates_batches_and_resets():
    metric = EffectiveRankMetric()
    with pytest.raises(ValueError, match="no data"):
        metric.aggregate()
    metric(torch.tensor(PLUS[:2]))  # each batch alone spans one direction
    metric(torch.tensor(PLUS[2:]))
    assert metric.aggregate() == pytest.approx(100 / 68)
    metric.reset()
    metric(torch.tensor(_isotropic(3, 5), dtype=torch.float32), torch.zeros(6))  # y is ignored
    assert metric.aggregate() == pytest.approx(3.0)


def test_metric_in_an_ignite_handler():
    from ignite.engine import Engine
    from monai.handlers import IgniteMetricHandler

    batches = [torch.tensor(PLUS[:2]), torch.tensor(PLUS[2:])]
    engine = Engine(lambda engine, batch: {"features": batch})
    handler = IgniteMetricHandler(
        metric_fn=EffectiveRankMetric(), output_transform=lambda out: (out["features"], None), save_details=False
    )
    handler.attach(engine, "effective_rank")
    engine.run(batches, max_epochs=1)
    assert engine.state.metrics["effective_rank"] == pytest.approx(100 / 68)
