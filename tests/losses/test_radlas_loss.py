"""Tests for radlas_monai.losses.radlas_loss.RadLASLoss (the combined pretraining objective)."""

from __future__ import annotations

import pytest
import torch

from radlas_monai.losses.contrastive import LesionDiscriminationLoss
from radlas_monai.losses.grounding import GroundingLoss
from radlas_monai.losses.radlas_loss import RadLASLoss
from radlas_monai.losses.reconstruction import LesionWeightedReconstructionLoss
from radlas_monai.networks.pooling import token_lesion_weights
from radlas_monai.networks.radlas import RadLAS, RadLASOutput

pytestmark = pytest.mark.usefixtures("one_thread")


KEYS = {"loss", "loss_reconstruction", "loss_grounding", "loss_contrastive", "lesion_fraction"}


@pytest.fixture(scope="module")
def batch() -> tuple[RadLAS, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    net = RadLAS(img_size=32, embed_dim=16)
    torch.nn.init.normal_(net.decoder.unet.final_conv.weight, std=0.05)
    g = torch.Generator().manual_seed(1)
    healthy = torch.rand(3, 1, 32, 32, generator=g) * 0.6
    mask = torch.zeros_like(healthy)
    mask[0, :, 4:12, 8:20] = 1.0
    mask[1, :, 20:28, 2:10] = 1.0
    corrupted = (healthy + 0.3 * mask).clamp(0, 1)  # image 2 is left untouched
    return net, corrupted, healthy, mask


def _output(net: RadLAS, corrupted: torch.Tensor, mask: torch.Tensor) -> RadLASOutput:
    return net(corrupted, pool_map=mask)


def test_terms_and_total(batch) -> None:
    net, corrupted, healthy, mask = batch
    out = _output(net, corrupted, mask)
    loss = RadLASLoss(recon_weight=2.0, grounding_weight=0.5, contrastive_weight=0.3, temperature=0.2, token_weight=1.0)
    terms = loss(out, healthy, mask)
    assert set(terms) == KEYS and all(v.ndim == 0 for v in terms.values())
    recon = LesionWeightedReconstructionLoss(lesion_weight=5.0)(out.restored, healthy, mask)
    ground = GroundingLoss()(out.grounding_logits, mask)
    contrast = LesionDiscriminationLoss(temperature=0.2, token_weight=1.0)(
        out.global_embedding,
        out.lesion_embedding,
        out.normal_embedding,
        torch.tensor([True, True, False]),
        out.token_embeddings,
        token_lesion_weights(mask, (2, 2)),
    )
    torch.testing.assert_close(terms["loss_reconstruction"], recon)
    torch.testing.assert_close(terms["loss_grounding"], ground)
    torch.testing.assert_close(terms["loss_contrastive"], contrast)
    torch.testing.assert_close(terms["loss"], 2.0 * recon + 0.5 * ground + 0.3 * contrast)
    torch.testing.assert_close(terms["lesion_fraction"], torch.tensor(2 / 3))


def test_backward_reaches_every_trainable_part(batch) -> None:
    net, corrupted, healthy, mask = batch
    net.zero_grad()
    RadLASLoss()(_output(net, corrupted, mask), healthy, mask)["loss"].backward()
    for name in ("encoder", "decoder", "grounding_head", "projector"):
        grads = [p.grad for p in getattr(net, name).parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), name
        assert sum(float(g.abs().sum()) for g in grads) > 0, name


def test_zero_weight_terms_are_skipped(batch) -> None:
    net, corrupted, healthy, mask = batch
    terms = RadLASLoss(grounding_weight=0.0, contrastive_weight=0.0)(_output(net, corrupted, mask), healthy, mask)
    assert terms["loss_grounding"].item() == terms["loss_contrastive"].item() == 0.0
    torch.testing.assert_close(terms["loss"], terms["loss_reconstruction"])


def test_lesion_free_batch(batch) -> None:
    net, _, healthy, _ = batch
    empty = torch.zeros_like(healthy)
    terms = RadLASLoss()(_output(net, healthy, empty), healthy, empty)
    assert terms["loss_contrastive"].item() == 0.0 and terms["lesion_fraction"].item() == 0.0
    assert terms["loss"].requires_grad and torch.isfinite(terms["loss"])


def test_min_lesion_pixels_decides_the_anchors(batch) -> None:
    net, corrupted, healthy, mask = batch
    out = _output(net, corrupted, mask)
    # mask 0 covers 96 pixels, mask 1 covers 64: with a threshold of 80 only image 0 is an anchor
    assert float(RadLASLoss(min_lesion_pixels=80.0)(out, healthy, mask)["lesion_fraction"]) == pytest.approx(1 / 3)


def test_missing_grounding_head_raises(batch) -> None:
    _, corrupted, healthy, mask = batch
    torch.manual_seed(0)
    out = RadLAS(img_size=32, grounding_head=False)(corrupted)
    with pytest.raises(ValueError, match="no grounding head"):
        RadLASLoss()(out, healthy, mask)
    assert torch.isfinite(RadLASLoss(grounding_weight=0.0)(out, healthy, mask)["loss"])


def test_bad_shapes_and_weights_raise(batch) -> None:
    net, corrupted, healthy, mask = batch
    out = _output(net, corrupted, mask)
    with pytest.raises(ValueError, match=r"lesion_mask \(3, 1, 16, 16\) must match restored \(3, 1, 32, 32\)"):
        RadLASLoss()(out, healthy, mask[..., :16, :16])
    with pytest.raises(ValueError, match="recon_weight"):
        RadLASLoss(recon_weight=-1.0)


def test_token_mask_drives_task_two_when_the_conv_path_ran_on_crops(batch) -> None:
    net, corrupted, healthy, mask = batch
    crop = (..., slice(0, 16), slice(0, 16))
    out = net(corrupted, pool_map=mask, local_image=corrupted[crop])
    loss = RadLASLoss(min_lesion_pixels=1.0)
    terms = loss(out, healthy[crop], mask[crop], token_mask=mask)
    # image 1's lesion lies outside the crop: it still counts as lesioned for Task II through the whole mask
    assert float(terms["lesion_fraction"]) == pytest.approx(2 / 3)
    assert float(loss(out, healthy[crop], mask[crop])["lesion_fraction"]) == pytest.approx(1 / 3)
    expected_recon = loss.reconstruction(out.restored, healthy[crop], mask[crop])
    torch.testing.assert_close(terms["loss_reconstruction"], expected_recon)
    with pytest.raises(ValueError, match="differ in batch"):
        loss(out, healthy[crop], mask[crop], token_mask=mask[:2])
