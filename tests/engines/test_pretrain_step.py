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
    with torch.no_grad():
        output = network(first["image"])  # the image-level features, for the effective-rank metrics
    assert torch.allclose(first["global_embedding"], output.global_embedding)
    assert torch.allclose(first["global_feature"], output.global_feature)
    assert first["global_embedding"].ndim == first["global_feature"].ndim == 2


def test_crop_corners_stay_inside_and_favour_the_focus():
    import numpy as np

    from radlas_monai.engines.pretrain import crop, sample_crop_corners

    focus = torch.zeros(64, 1, 128, 128)
    focus[..., 100:110, 10:20] = 1
    corners = sample_crop_corners(focus, 32, 1.0, np.random.RandomState(0), tuple(focus.shape))
    assert corners.shape == (64, 2) and corners.min() >= 0 and corners.max() <= 128 - 32
    crops = crop(focus, corners, 32)
    assert crops.shape == (64, 1, 32, 32) and bool((crops.flatten(1).sum(1) > 0).all())  # every crop sees the focus
    uniform = sample_crop_corners(focus, 32, 0.0, np.random.RandomState(0), tuple(focus.shape))
    assert float((crop(focus, uniform, 32).flatten(1).sum(1) > 0).float().mean()) < 0.5
    with pytest.raises(ValueError, match="crop_size 200"):
        sample_crop_corners(None, 200, 0.5, np.random.RandomState(0), tuple(focus.shape))


def test_pretrain_step_trains_the_conv_path_on_crops():
    torch.manual_seed(0)
    network = RadLAS(preset="tiny", img_size=64)
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3)
    synthesis = RandLesionSynthesis(prob=1.0)
    synthesis.set_random_state(0)
    step = RadLASPretrainStep(synthesis, crop_size=32, seed=3)
    output = step(_engine(network, optimizer), _batch())
    assert output["lesion_map"].shape == output["restored"].shape == output["image"].shape == (2, 1, 32, 32)
    assert output["lesion_mask"].shape == (2, 1, 32, 32) and output["loss"] == output["loss"]
    with pytest.raises(ValueError, match="pool_with_target"):
        RadLASPretrainStep(synthesis, crop_size=32, pool_with_target=False)


def test_crop_draws_follow_the_step_seed():
    def corners(seed):
        torch.manual_seed(0)
        network = RadLAS(preset="tiny", img_size=64)
        synthesis = RandLesionSynthesis(prob=1.0).set_random_state(0)
        out = RadLASPretrainStep(synthesis, crop_size=32, seed=seed)(
            _engine(network, torch.optim.SGD(network.parameters(), lr=0.0)), _batch()
        )
        return out["healthy"]

    assert torch.equal(corners(1), corners(1)) and not torch.equal(corners(1), corners(2))


def test_pretrain_step_hands_the_cropped_lung_mask_to_the_loss():
    seen = {}

    class Recording(RadLASLoss):
        def forward(self, output, healthy, lesion_mask, token_mask=None, lung_mask=None):
            seen["lung"], seen["mask"] = lung_mask, lesion_mask
            return super().forward(output, healthy, lesion_mask, token_mask=token_mask, lung_mask=lung_mask)

    torch.manual_seed(0)
    network = RadLAS(preset="tiny", img_size=64)
    engine = _engine(network, torch.optim.SGD(network.parameters(), lr=0.0))
    engine.loss_function = Recording(outside_weight=5.0)
    batch = _batch()
    out = RadLASPretrainStep(RandLesionSynthesis(prob=1.0).set_random_state(0), crop_size=32, seed=3)(engine, batch)
    assert seen["lung"].shape == (2, 1, 32, 32) and 0 < float(seen["lung"].mean()) < 1
    # the lung crop is taken at the image crop's corner: find that corner in the healthy image
    for b in range(2):
        hits = [
            (r, c)
            for r in range(33)
            for c in range(33)
            if torch.equal(batch["image"][b, :, r : r + 32, c : c + 32], out["healthy"][b])
        ]
        assert len(hits) == 1
        r, c = hits[0]
        assert torch.equal(seen["lung"][b], batch["lung_mask"][b, :, r : r + 32, c : c + 32])
    assert float((seen["mask"] * (1 - seen["lung"])).sum()) < 0.05 * float(seen["mask"].sum())  # lesions in lungs


def test_pretrain_step_keeps_lung_masks_from_losses_that_do_not_use_them():
    seen = {}

    class Recording(RadLASLoss):
        def forward(self, output, healthy, lesion_mask, token_mask=None, lung_mask=None):
            seen["lung"] = lung_mask
            return super().forward(output, healthy, lesion_mask, token_mask=token_mask, lung_mask=lung_mask)

    torch.manual_seed(0)
    network = RadLAS(preset="tiny", img_size=64)
    engine = _engine(network, torch.optim.SGD(network.parameters(), lr=0.0))
    engine.loss_function = Recording()  # outside_weight 1: a loss without a lung_mask argument works the same
    assert not engine.loss_function.uses_lung_mask and Recording(outside_weight=2.0).uses_lung_mask
    RadLASPretrainStep(RandLesionSynthesis(prob=1.0).set_random_state(0), crop_size=32, seed=3)(engine, _batch())
    assert seen["lung"] is None
