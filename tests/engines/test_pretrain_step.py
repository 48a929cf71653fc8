"""One RadLAS pretraining iteration and one validation iteration, outside the bundle."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from radlas_monai.engines.pretrain import RadLASPretrainStep, RadLASValidationStep, synthesize_batch
from radlas_monai.losses import RadLASLoss
from radlas_monai.networks import RadLAS
from radlas_monai.transforms import RandLesionSynthesis


def _engine(network, optimizer=None, iteration=1):
    return SimpleNamespace(
        network=network,
        optimizer=optimizer,
        loss_function=RadLASLoss(),
        non_blocking=False,
        state=SimpleNamespace(device=torch.device("cpu"), iteration=iteration),
    )


def _batch(size=64, batch=2):
    generator = torch.Generator().manual_seed(0)
    lung = torch.zeros(batch, 1, size, size)
    lung[..., 8:56, 6:28] = 1
    lung[..., 8:56, 36:58] = 1
    return {"image": 0.2 + 0.6 * torch.rand(batch, 1, size, size, generator=generator), "lung_mask": lung}


def test_synthesize_batch_keeps_the_healthy_target():
    synthesis = RandLesionSynthesis(prob=1.0)
    synthesis.set_random_state(0)
    corrupted, healthy, mask = synthesize_batch(synthesis, _batch(), torch.device("cpu"))
    assert corrupted.shape == healthy.shape == mask.shape == (2, 1, 64, 64)
    assert mask.sum() > 0 and torch.equal(corrupted[mask == 0], healthy[mask == 0])
    with pytest.raises(KeyError, match="image"):
        synthesize_batch(synthesis, {"lung_mask": mask}, torch.device("cpu"))


@pytest.mark.parametrize("amp", [False, True])
def test_pretrain_step_updates_weights_and_reports_every_term(amp):
    torch.manual_seed(0)
    network = RadLAS(preset="tiny", img_size=64)
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in network.parameters()]
    synthesis = RandLesionSynthesis(prob=1.0)
    synthesis.set_random_state(0)
    output = RadLASPretrainStep(synthesis, amp=amp)(_engine(network, optimizer), _batch())
    assert {"loss", "loss_reconstruction", "loss_grounding", "loss_contrastive"} <= set(output)
    assert all(isinstance(output[k], float) and output[k] == output[k] for k in ("loss", "loss_grounding"))
    assert output["lesion_map"].shape == output["restored"].shape == (2, 1, 64, 64)
    changed = sum(not torch.equal(a, b) for a, b in zip(before, network.parameters()))
    assert changed > len(before) // 2


def test_validation_step_repeats_the_same_lesions_every_run():
    torch.manual_seed(0)
    network = RadLAS(preset="tiny", img_size=64)
    step = RadLASValidationStep(RandLesionSynthesis(prob=1.0), seed=7, pixel_stride=4)
    first = step(_engine(network, iteration=1), _batch())
    step(_engine(network, iteration=2), _batch())  # draws other lesions
    again = step(_engine(network, iteration=1), _batch())  # a new validation run starts over
    assert torch.equal(first["lesion_mask"], again["lesion_mask"])
    assert first["pixel_scores"].shape == first["pixel_labels"].shape == (2 * 16 * 16,)
    assert set(first["pixel_labels"].unique().tolist()) <= {0.0, 1.0}
