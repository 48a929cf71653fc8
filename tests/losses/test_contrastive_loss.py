"""Tests for radlas_monai.losses.contrastive.LesionDiscriminationLoss."""

from __future__ import annotations

import math

import pytest
import torch

from radlas_monai.losses.contrastive import LesionDiscriminationLoss

B, N, E = 4, 6, 5


def _inputs(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    weights = torch.zeros(B, N)
    weights[0, :2] = torch.tensor([1.0, 0.5])
    weights[2, 3] = 1.0
    return {
        "global_embedding": torch.randn(B, E, generator=g),
        "lesion_embedding": torch.randn(B, E, generator=g),
        "normal_embedding": torch.randn(B, E, generator=g),
        "has_lesion": torch.tensor([True, False, True, False]),
        "token_embeddings": torch.randn(B, N, E, generator=g),
        "token_lesion_weight": weights,
    }


def _unit(v: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v] if norm > 0 else v


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b))


def _nce_reference(x: dict, tau: float, i: int) -> float:
    a = _unit(x["lesion_embedding"][i].tolist())
    gs = [_unit(x["global_embedding"][j].tolist()) for j in range(B)]
    n = _unit(x["normal_embedding"][i].tolist())
    denominator = sum(math.exp(_dot(a, g) / tau) for g in gs) + math.exp(_dot(a, n) / tau)
    return -math.log(math.exp(_dot(a, gs[i]) / tau) / denominator)


def _token_reference(x: dict, tau: float, i: int) -> float:
    z = [_unit(x["token_embeddings"][i, k].tolist()) for k in range(N)]
    w = x["token_lesion_weight"][i].tolist()
    p = _unit([sum(w[k] * z[k][e] for k in range(N)) / sum(w) for e in range(E)])
    q = _unit([sum((1 - w[k]) * z[k][e] for k in range(N)) / sum(1 - v for v in w) for e in range(E)])
    lesion_side = normal_side = 0.0
    for k in range(N):
        ep, eq = math.exp(_dot(z[k], p) / tau), math.exp(_dot(z[k], q) / tau)
        lesion_side += w[k] * -math.log(ep / (ep + eq))
        normal_side += (1 - w[k]) * -math.log(eq / (ep + eq))
    return 0.5 * (lesion_side / sum(w) + normal_side / sum(1 - v for v in w))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"temperature": 0.5, "token_weight": 0.0},
        {"temperature": 0.2, "token_weight": 2.0},
        {"reduction": "none"},
        {"reduction": "sum"},
    ],
)
def test_matches_reference(kwargs: dict) -> None:
    x = _inputs()
    tau, tw = kwargs.get("temperature", 0.1), kwargs.get("token_weight", 0.5)
    per_image = [
        _nce_reference(x, tau, i) + tw * _token_reference(x, tau, i) if x["has_lesion"][i] else 0.0 for i in range(B)
    ]
    out = LesionDiscriminationLoss(**kwargs)(**x)
    reduction = kwargs.get("reduction", "mean")
    expected = {"none": torch.tensor(per_image), "sum": torch.tensor(sum(per_image))}.get(
        reduction, torch.tensor(sum(per_image) / 2)
    )
    torch.testing.assert_close(out, expected)


def test_aligned_pairs_score_lower_than_shuffled() -> None:
    x = _inputs()
    x["has_lesion"] = torch.ones(B, dtype=torch.bool)
    x["lesion_embedding"] = x["global_embedding"] + 0.1 * x["lesion_embedding"]  # lesion cue ~ own image
    loss = LesionDiscriminationLoss(token_weight=0.0)
    aligned = float(loss(**x))
    shuffled = dict(x, lesion_embedding=x["lesion_embedding"][torch.tensor([1, 2, 3, 0])])
    assert aligned < float(loss(**shuffled))


def test_separated_tokens_score_lower_than_mixed() -> None:
    x = _inputs()
    loss = LesionDiscriminationLoss(token_weight=1.0)
    lesion_dir, normal_dir = torch.eye(E)[0], torch.eye(E)[1]
    w = x["token_lesion_weight"]
    separated = w[..., None] * lesion_dir + (1 - w[..., None]) * normal_dir
    mixed = separated[:, torch.randperm(N, generator=torch.Generator().manual_seed(0))]
    assert loss.token_term(separated, w)[0] < loss.token_term(mixed, w)[0]


def test_lesion_free_images_are_negatives_never_anchors() -> None:
    x = _inputs()
    loss = LesionDiscriminationLoss()
    base = loss(**x)
    changed = dict(x, lesion_embedding=x["lesion_embedding"].clone(), token_embeddings=x["token_embeddings"].clone())
    changed["lesion_embedding"][1] += 5.0  # image 1 has no lesion: its lesion cue is not used
    changed["token_embeddings"][1] += 5.0
    torch.testing.assert_close(loss(**changed), base)
    as_negative = dict(x, global_embedding=x["global_embedding"].clone())
    as_negative["global_embedding"][1] = -as_negative["global_embedding"][1]  # but its global embedding is a negative
    assert not torch.allclose(loss(**as_negative), base)


def test_no_lesion_batch_gives_zero_with_a_graph() -> None:
    x = {k: v.clone().requires_grad_() if v.is_floating_point() else v for k, v in _inputs().items()}
    x["has_lesion"] = torch.zeros(B, dtype=torch.bool)
    out = LesionDiscriminationLoss()(**x)
    assert out.detach().item() == 0.0 and out.requires_grad
    out.backward()
    assert all(torch.equal(x[k].grad, torch.zeros_like(x[k])) for k in ("global_embedding", "token_embeddings"))


def test_gradients_finite_including_zero_lesion_embeddings() -> None:
    x = {k: v.clone().requires_grad_() if v.is_floating_point() else v for k, v in _inputs().items()}
    with torch.no_grad():
        x["lesion_embedding"][1] = 0.0  # what pooling gives for an empty map
    LesionDiscriminationLoss()(**x).backward()
    for k in ("global_embedding", "lesion_embedding", "normal_embedding", "token_embeddings"):
        assert torch.isfinite(x[k].grad).all(), k
    assert x["lesion_embedding"].grad[0].abs().sum() > 0


@pytest.mark.parametrize(
    "change, match",
    [
        ({"lesion_embedding": torch.zeros(B, E + 1)}, rf"\({B}, {E}\), \({B}, {E + 1}\), \({B}, {E}\)"),
        ({"has_lesion": torch.ones(B + 1, dtype=torch.bool)}, rf"has_lesion must be \({B},\), got \({B + 1},\)"),
        ({"token_lesion_weight": torch.zeros(B, N + 1)}, rf"got \({B}, {N}, {E}\) and \({B}, {N + 1}\)"),
        ({"token_embeddings": None}, "required when token_weight > 0"),
    ],
)
def test_bad_shapes_raise(change: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LesionDiscriminationLoss()(**{**_inputs(), **change})


@pytest.mark.parametrize("kwargs", [{"temperature": 0.0}, {"token_weight": -0.1}])
def test_bad_hyper_parameters_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="temperature > 0"):
        LesionDiscriminationLoss(**kwargs)
