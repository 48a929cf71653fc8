"""Task II loss: lesion-discrimination contrastive learning."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.utils import LossReduction
from torch.nn.modules.loss import _Loss

__all__ = ["LesionDiscriminationLoss"]


class LesionDiscriminationLoss(_Loss):
    """InfoNCE aligning lesion cues with their image, plus a token-level lesion/normal separation.

    All embeddings are L2-normalised first (``u = e / ||e||``); ``tau`` is the temperature. Let ``A`` be
    the anchors: images whose synthetic lesion mask is non-empty (``has_lesion``).

    Image-level term (InfoNCE, van den Oord et al., "Representation Learning with Contrastive
    Predictive Coding", 2018; SimCLR, Chen et al., ICML 2020) for each ``i`` in ``A``, with anchor
    ``l_i`` (lesion embedding), positive ``g_i`` (its global embedding), negatives ``g_j`` (``j != i``,
    every image of the batch, lesion-free ones included) and the hard negative ``n_i`` (its own
    normal-anatomy embedding)::

        NCE_i = -log  exp(l_i.g_i / tau) / ( sum_j exp(l_i.g_j / tau) + exp(l_i.n_i / tau) )

    Token-level term (prototype contrast, cf. Li et al., "Prototypical Contrastive Learning", ICLR
    2021; supervised contrast, Khosla et al., NeurIPS 2020) for each ``i`` in ``A``, with token
    embeddings ``z_k`` and token lesion fractions ``w_k`` in ``[0, 1]`` taken from the *synthetic* mask,
    prototypes ``P = normalise(sum_k w_k z_k / sum_k w_k)``, ``Q = normalise(sum_k (1 - w_k) z_k / sum_k
    (1 - w_k))`` and ``s_k(X) = exp(z_k.X / tau) / (exp(z_k.P / tau) + exp(z_k.Q / tau))``::

        TOK_i = 1/2 [ sum_k w_k (-log s_k(P)) / sum_k w_k + sum_k (1 - w_k) (-log s_k(Q)) / sum_k (1 - w_k) ]

    (lesion tokens close to the lesion prototype and far from the normal one, and vice versa; the two
    sides are averaged separately so that small lesions are not drowned by normal tokens).
    The loss of image ``i`` is ``NCE_i + token_weight * TOK_i``; lesion-free images are never anchors.
    When no image of the batch has a lesion the loss is 0, still attached to the inputs' graph.

    Args:
        temperature: ``tau > 0``.
        token_weight: weight ``>= 0`` of the token-level term (0 skips it).
        reduction: ``"mean"`` (over anchors), ``"sum"`` (over anchors) or ``"none"`` (a ``(B,)`` tensor,
            0 for lesion-free images).

    Shapes: ``global_embedding``, ``lesion_embedding``, ``normal_embedding`` ``(B, E)``; ``has_lesion``
    ``(B,)`` bool; ``token_embeddings`` ``(B, N, E)`` and ``token_lesion_weight`` ``(B, N)`` (both
    required when ``token_weight > 0``).

    Raises:
        ValueError: for a non-positive temperature, a negative token weight or mismatched shapes.
    """

    def __init__(
        self, temperature: float = 0.1, token_weight: float = 0.5, reduction: LossReduction | str = LossReduction.MEAN
    ) -> None:
        super().__init__(reduction=LossReduction(reduction).value)
        if temperature <= 0 or token_weight < 0:
            raise ValueError(f"need temperature > 0 and token_weight >= 0, got {temperature}, {token_weight}")
        self.temperature = float(temperature)
        self.token_weight = float(token_weight)

    def _check(
        self,
        g: torch.Tensor,
        lesion: torch.Tensor,
        normal: torch.Tensor,
        has_lesion: torch.Tensor,
        tokens: torch.Tensor | None,
        weights: torch.Tensor | None,
    ) -> None:
        if g.ndim != 2 or g.shape != lesion.shape or g.shape != normal.shape:
            raise ValueError(
                f"global, lesion and normal embeddings must be (B, E) of one shape, got {tuple(g.shape)}, "
                f"{tuple(lesion.shape)}, {tuple(normal.shape)}"
            )
        if has_lesion.shape != (g.shape[0],):
            raise ValueError(f"has_lesion must be ({g.shape[0]},), got {tuple(has_lesion.shape)}")
        if self.token_weight > 0:
            if tokens is None or weights is None:
                raise ValueError("token_embeddings and token_lesion_weight are required when token_weight > 0")
            if (
                tokens.ndim != 3
                or tokens.shape[0] != g.shape[0]
                or tokens.shape[2] != g.shape[1]
                or tuple(weights.shape) != tuple(tokens.shape[:2])
            ):
                raise ValueError(
                    f"expected token_embeddings ({g.shape[0]}, N, {g.shape[1]}) and token_lesion_weight "
                    f"({g.shape[0]}, N), got {tuple(tokens.shape)} and {tuple(weights.shape)}"
                )

    def image_term(
        self, global_embedding: torch.Tensor, lesion_embedding: torch.Tensor, normal_embedding: torch.Tensor
    ) -> torch.Tensor:
        """Per-image ``NCE_i`` ``(B,)`` (computed for every image; only anchors are meaningful)."""
        g = F.normalize(global_embedding.float(), dim=1)
        a = F.normalize(lesion_embedding.float(), dim=1)
        n = F.normalize(normal_embedding.float(), dim=1)
        logits = torch.cat([a @ g.t(), (a * n).sum(1, keepdim=True)], dim=1) / self.temperature
        target = torch.arange(g.shape[0], device=g.device)
        return F.cross_entropy(logits, target, reduction="none")

    def token_term(
        self, token_embeddings: torch.Tensor, token_lesion_weight: torch.Tensor, eps: float = 1e-6
    ) -> torch.Tensor:
        """Per-image ``TOK_i`` ``(B,)`` (computed for every image; only anchors are meaningful)."""
        z = F.normalize(token_embeddings.float(), dim=2)
        w = token_lesion_weight.float().clamp(0.0, 1.0)
        v = 1.0 - w
        proto_p = F.normalize(torch.einsum("bn,bne->be", w, z) / w.sum(1, keepdim=True).clamp_min(eps), dim=1)
        proto_q = F.normalize(torch.einsum("bn,bne->be", v, z) / v.sum(1, keepdim=True).clamp_min(eps), dim=1)
        sim = torch.stack([torch.einsum("bne,be->bn", z, proto_p), torch.einsum("bne,be->bn", z, proto_q)], dim=2)
        log_prob = F.log_softmax(sim / self.temperature, dim=2)
        lesion_side = (w * -log_prob[..., 0]).sum(1) / w.sum(1).clamp_min(eps)
        normal_side = (v * -log_prob[..., 1]).sum(1) / v.sum(1).clamp_min(eps)
        return 0.5 * (lesion_side + normal_side)

    def forward(
        self,
        global_embedding: torch.Tensor,
        lesion_embedding: torch.Tensor,
        normal_embedding: torch.Tensor,
        has_lesion: torch.Tensor,
        token_embeddings: torch.Tensor | None = None,
        token_lesion_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Compute the loss (see the class docstring for the formula and shapes)."""
        self._check(
            global_embedding, lesion_embedding, normal_embedding, has_lesion, token_embeddings, token_lesion_weight
        )
        anchors = has_lesion.to(torch.bool)
        per_image = self.image_term(global_embedding, lesion_embedding, normal_embedding)
        if self.token_weight > 0:
            per_image = per_image + self.token_weight * self.token_term(token_embeddings, token_lesion_weight)
        per_image = torch.where(anchors, per_image, torch.zeros_like(per_image))
        if self.reduction == LossReduction.NONE.value:
            return per_image
        total = per_image.sum()
        if self.reduction == LossReduction.SUM.value:
            return total
        return total / anchors.sum().clamp_min(1).to(total.dtype)
