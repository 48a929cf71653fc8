"""Tests for radlas_monai.baselines.normal_autoencoder: autoencoder trained on normal radiographs, residual map."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from radlas_monai.baselines.normal_autoencoder import (
    NormalAutoEncoder,
    NormalAutoencoderMap,
    build_normal_autoencoder,
    train_normal_autoencoder,
)
from radlas_monai.baselines.pretrain_variants import PretrainBudget, train_normal_autoencoder_variant
from radlas_monai.networks.grounding import gaussian_smooth

pytestmark = pytest.mark.usefixtures("one_thread")


class ConstantReconstruction(nn.Module):
    """Reconstructs every image as a constant grey: the residual is ``|x - value|`` (hand reference)."""

    def __init__(self, value: float = 0.5) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, self.value)


class TestNetwork:
    def test_forward_range_and_shape(self):
        with torch.no_grad():
            out = build_normal_autoencoder()(torch.rand(2, 1, 32, 32))
        assert out.shape == (2, 1, 32, 32)
        assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0

    @pytest.mark.parametrize("shape", [(2, 2, 32, 32), (2, 1, 30, 32), (32, 32)])
    def test_bad_shape_raises(self, shape):
        with pytest.raises(ValueError, match="divisible by 16"):
            build_normal_autoencoder()(torch.rand(*shape))

    def test_bad_arguments_raise(self):
        with pytest.raises(ValueError, match="same length"):
            NormalAutoEncoder(channels=(8, 16), strides=(2,))


class TestResidualMap:
    @pytest.mark.parametrize("smooth", [0.0, 1.5])
    def test_hand_reference(self, smooth):
        image = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
        out = NormalAutoencoderMap(ConstantReconstruction(0.5), smooth=smooth)(image)
        torch.testing.assert_close(out, gaussian_smooth((image - 0.5).abs(), smooth))

    def test_not_normalised_keeps_image_ranking(self):
        image = torch.zeros(2, 1, 16, 16)
        image[0, 0, 4:8, 4:8] = 1.0
        image[1, 0, 4:8, 4:8] = 0.2
        out = NormalAutoencoderMap(ConstantReconstruction(0.0), smooth=0.0)(image)
        assert float(out[0].max()) == pytest.approx(1.0) and float(out[1].max()) == pytest.approx(0.2)
        scaled = NormalAutoencoderMap(ConstantReconstruction(0.0), smooth=0.0, normalize="image")(image)
        assert float(scaled[1].max()) == pytest.approx(1.0) and float(scaled.min()) == 0.0

    def test_bad_normalize_raises(self):
        with pytest.raises(ValueError, match="normalize"):
            NormalAutoencoderMap(ConstantReconstruction(), normalize="global")


class TestTraining:
    def test_loss_decreases_and_is_deterministic(self):
        generator = torch.Generator().manual_seed(0)
        normals = gaussian_smooth(torch.rand(8, 1, 32, 32, generator=generator), 2.0)
        budget = PretrainBudget(image_size=32, epochs=4, batch_size=4, learning_rate=3e-3, warmup_epochs=0)
        runs = []
        for _ in range(2):
            torch.manual_seed(0)
            net = build_normal_autoencoder(channels=(4, 8), strides=(2, 2))
            runs.append(train_normal_autoencoder(net, normals, budget))
        assert runs[0] == runs[1]
        assert runs[0][-1] < runs[0][0]

    def test_variant_trains_on_normal_images_only(self, tmp_path):
        images = torch.rand(6, 1, 32, 32, generator=torch.Generator().manual_seed(1))
        labels = torch.tensor([[0.0], [1.0], [0.0], [1.0], [0.0], [0.0]])
        budget = PretrainBudget(image_size=32, epochs=1, batch_size=2)
        trained = train_normal_autoencoder_variant(images, labels, budget, tmp_path)
        assert trained.settings["num_images"] == 4 and trained.settings["normal_only"]
        assert trained.checkpoint.is_file() and len(trained.history) == 1
        with pytest.raises(ValueError, match="no normal image"):
            train_normal_autoencoder_variant(images, torch.ones(6, 1), budget, tmp_path / "other")
