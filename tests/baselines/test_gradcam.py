"""Tests for radlas_monai.baselines.gradcam: supervised DenseNet121 + MONAI Grad-CAM baseline."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from radlas_monai.baselines.gradcam import GradCAMMap, build_densenet121, minmax_per_image, train_densenet121
from radlas_monai.baselines.pretrain_variants import PretrainBudget

pytestmark = pytest.mark.usefixtures("one_thread")


class BrightnessNet(nn.Module):
    """Logit k = mean of relu(w_k * image) over pixels, so its Grad-CAM of class k is relu(w_k * image)."""

    def __init__(self, weights: tuple[float, ...] = (1.0,), bias: float = 0.0) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, len(weights), 1, bias=False), nn.ReLU())
        with torch.no_grad():
            self.features[0].weight.copy_(torch.tensor(weights).view(-1, 1, 1, 1))
        self.bias = bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3)) + self.bias


def _spot(size: int = 16, where: tuple[int, int] = (3, 12)) -> torch.Tensor:
    image = torch.zeros(1, 1, size, size)
    y, x = where
    image[0, 0, y - 1 : y + 2, x - 1 : x + 2] = 1.0
    return image


MINMAX_CASES = [
    [torch.tensor([[[[0.0, 1.0], [2.0, 4.0]]]]), torch.tensor([[[[0.0, 0.25], [0.5, 1.0]]]])],
    [torch.full((1, 1, 2, 2), 3.0), torch.zeros(1, 1, 2, 2)],  # flat map -> zeros
]


class TestMinMax:
    @pytest.mark.parametrize("maps, expected", MINMAX_CASES)
    def test_reference(self, maps, expected):
        torch.testing.assert_close(minmax_per_image(maps), expected)

    def test_per_image(self):
        maps = torch.stack([torch.arange(4.0).view(1, 2, 2), 10 * torch.arange(4.0).view(1, 2, 2)])
        out = minmax_per_image(maps)
        torch.testing.assert_close(out[0], out[1])


class TestGradCAMMap:
    def test_peak_on_the_evidence_not_inverted(self):
        # MONAI's default post-processing maps (min, max) -> (1, 0); the baseline must keep high = evidence.
        image = _spot()
        cam = GradCAMMap(BrightnessNet(), target_layer="features.1")(image)
        assert cam.shape == (1, 1, 16, 16)
        flat = int(cam.flatten().argmax())
        assert (flat // 16, flat % 16) in {(y, x) for y in (2, 3, 4) for x in (11, 12, 13)}
        assert float(cam.max()) == pytest.approx(1.0) and float(cam.min()) == pytest.approx(0.0)

    def test_hand_reference(self):
        image = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
        cam = GradCAMMap(BrightnessNet((2.0,)), target_layer="features.1")(image)
        torch.testing.assert_close(cam, minmax_per_image(torch.relu(2.0 * image)))

    def test_scaled_by_probability_and_max_over_classes(self):
        image = _spot()
        net = BrightnessNet((1.0, 0.0), bias=-1.0)  # class 1 has no evidence: its CAM is all zeros
        plain = GradCAMMap(net, class_index=0, target_layer="features.1")(image)
        scaled = GradCAMMap(net, class_index=0, target_layer="features.1", scale_by_probability=True)(image)
        probability = torch.sigmoid(net(image))[0, 0]
        torch.testing.assert_close(scaled, plain * probability)
        both = GradCAMMap(net, class_index=None, target_layer="features.1", scale_by_probability=True)(image)
        torch.testing.assert_close(both, scaled)

    def test_densenet_under_no_grad_keeps_mode(self):
        net = build_densenet121(2)
        net.train()
        with torch.no_grad():  # the localization harness runs every method under no_grad
            cam = GradCAMMap(net, class_index=1)(torch.rand(2, 1, 32, 32))
        assert cam.shape == (2, 1, 32, 32) and torch.isfinite(cam).all()
        assert 0.0 <= float(cam.min()) and float(cam.max()) <= 1.0
        assert net.training

    @pytest.mark.parametrize("image", [torch.rand(1, 2, 8, 8), torch.rand(8, 8)])
    def test_bad_shape_raises(self, image):
        with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
            GradCAMMap(BrightnessNet(), target_layer="features.1")(image)

    def test_bad_class_raises(self):
        with pytest.raises(ValueError, match="class_index"):
            GradCAMMap(BrightnessNet(), class_index=-1, target_layer="features.1")


class TestDenseNet:
    def test_build(self):
        net = build_densenet121(3)
        assert net(torch.rand(2, 1, 32, 32)).shape == (2, 3)
        with pytest.raises(ValueError, match="num_classes"):
            build_densenet121(0)

    def test_train_learns_brightness(self):
        # bright images are class 1: a few steps must lower the loss (deterministic, seeded budget); the training
        # function is network-agnostic, a tiny conv net keeps the test fast (DenseNet121 runs in test_build)
        generator = torch.Generator().manual_seed(0)
        labels = torch.tensor([[1.0], [0.0]] * 4)
        images = torch.rand(8, 1, 32, 32, generator=generator) * 0.2 + labels.view(-1, 1, 1, 1) * 0.6
        torch.manual_seed(0)
        net = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1)
        )
        budget = PretrainBudget(image_size=32, epochs=6, batch_size=4, learning_rate=3e-2, warmup_epochs=0)
        history = train_densenet121(net, images, labels, budget)
        assert len(history) == 6 and all(torch.isfinite(torch.tensor(history)))
        assert history[-1] < history[0]

    def test_label_mismatch_raises(self):
        budget = PretrainBudget(image_size=32, epochs=1, batch_size=2)
        with pytest.raises(ValueError, match="label rows"):
            train_densenet121(build_densenet121(1), torch.rand(4, 1, 32, 32), torch.zeros(3, 1), budget)
