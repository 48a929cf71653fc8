"""An autoencoder trained on normal radiographs only: the classic reconstruction-residual anomaly baseline.

Trained to reproduce lesion-free images, a small convolutional autoencoder reconstructs what it has seen (normal
anatomy) and fails elsewhere, so ``|x - recon(x)|`` is read as a lesion map (Baur et al., "Autoencoders for
unsupervised anomaly segmentation in brain MR images: a comparative study", MedIA 2021; Schlegl et al.,
f-AnoGAN, MedIA 2019). The network is MONAI's :class:`~monai.networks.nets.AutoEncoder` with a sigmoid output so
reconstructions live in the project's ``[0, 1]`` range; the map is the Gaussian-smoothed absolute residual.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
from monai.networks.nets import AutoEncoder

from radlas_monai.networks.grounding import gaussian_smooth

if TYPE_CHECKING:
    from radlas_monai.baselines.pretrain_variants import PretrainBudget

__all__ = ["NormalAutoEncoder", "NormalAutoencoderMap", "build_normal_autoencoder", "train_normal_autoencoder"]

logger = logging.getLogger(__name__)


class NormalAutoEncoder(nn.Module):
    """MONAI ``AutoEncoder`` (2D, one channel) followed by a sigmoid: ``(B, 1, H, W) -> (B, 1, H, W)`` in ``[0, 1]``.

    Args:
        channels: output channels of the encoder stages (the decoder mirrors them).
        strides: stride of each stage; ``H`` and ``W`` must be divisible by their product.
        num_res_units: residual units per stage.
        norm: MONAI norm name.
        act: MONAI activation name.

    Raises:
        ValueError: when ``channels`` and ``strides`` differ in length.
    """

    def __init__(
        self,
        channels: Sequence[int] = (16, 32, 64, 64),
        strides: Sequence[int] = (2, 2, 2, 2),
        num_res_units: int = 1,
        norm: str | tuple = "batch",
        act: str | tuple = "PRELU",
    ) -> None:
        super().__init__()
        if len(channels) != len(strides):
            raise ValueError(f"channels {tuple(channels)} and strides {tuple(strides)} must have the same length")
        self.downsampling = 1
        for stride in strides:
            self.downsampling *= int(stride)
        self.autoencoder = AutoEncoder(
            spatial_dims=2,
            in_channels=1,
            out_channels=1,
            channels=tuple(channels),
            strides=tuple(strides),
            num_res_units=num_res_units,
            norm=norm,
            act=act,
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``image (B, 1, H, W)``; returns ``(B, 1, H, W)`` in ``[0, 1]``.

        Raises:
            ValueError: for a shape that is not ``(B, 1, H, W)`` with sides divisible by the total stride.
        """
        if image.ndim != 4 or image.shape[1] != 1 or any(s % self.downsampling for s in image.shape[2:]):
            raise ValueError(
                f"NormalAutoEncoder expects (B, 1, H, W) with H and W divisible by {self.downsampling}, "
                f"got {tuple(image.shape)}"
            )
        return torch.sigmoid(self.autoencoder(image))


def build_normal_autoencoder(**kwargs) -> NormalAutoEncoder:
    """The baseline's default network (``channels=(16, 32, 64, 64)``, stride 2 per stage, one residual unit)."""
    return NormalAutoEncoder(**kwargs)


def train_normal_autoencoder(
    network: NormalAutoEncoder,
    normal_images: torch.Tensor,
    budget: PretrainBudget,
    device: str | torch.device = "cpu",
) -> list[float]:
    """Train ``network`` to reconstruct ``normal_images`` (L1 loss), with the shared budget's optimizer and schedule.

    Args:
        network: the autoencoder (moved to ``device`` by the caller).
        normal_images: ``(N, 1, H, W)`` lesion-free radiographs in ``[0, 1]``.
        budget: epochs, batch size, AdamW settings, warm-up and seed
            (:class:`~radlas_monai.baselines.pretrain_variants.PretrainBudget`).
        device: training device.

    Returns:
        Mean L1 loss per epoch.

    Raises:
        ValueError: when ``normal_images`` is not ``(N, 1, H, W)``.
    """
    from radlas_monai.baselines.pretrain_variants import fit_minibatches

    if normal_images.ndim != 4 or normal_images.shape[1] != 1:
        raise ValueError(f"normal_images must be (N, 1, H, W), got {tuple(normal_images.shape)}")
    optimizer = torch.optim.AdamW(network.parameters(), lr=budget.learning_rate, weight_decay=budget.weight_decay)
    l1 = nn.L1Loss()

    def step(index: torch.Tensor) -> float:
        batch = normal_images[index].to(device)
        network.train()
        optimizer.zero_grad(set_to_none=True)
        loss = l1(network(batch), batch)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return fit_minibatches(step, normal_images.shape[0], optimizer, budget, name="normal_autoencoder")


class NormalAutoencoderMap:
    """Localization callable of the baseline: ``image (B, 1, H, W) -> smoothed |image - recon| (B, 1, H, W)``.

    The residual of two ``[0, 1]`` images already lies in ``[0, 1]``; it is *not* re-normalised per image by default,
    so a larger residual on one image than on another stays larger (image-level scores remain comparable).

    Args:
        network: a trained :class:`NormalAutoEncoder`.
        smooth: Gaussian sigma in pixels (0 disables).
        normalize: ``"none"`` (default) or ``"image"`` (per-image min-max to ``[0, 1]``; a flat map becomes zeros).

    Raises:
        ValueError: for an unknown ``normalize``.

    Example:
        >>> lesion_map = NormalAutoencoderMap(build_normal_autoencoder())
        >>> lesion_map(torch.rand(2, 1, 64, 64)).shape
        torch.Size([2, 1, 64, 64])
    """

    def __init__(self, network: nn.Module, smooth: float = 2.0, normalize: str = "none") -> None:
        if normalize not in ("none", "image"):
            raise ValueError(f"normalize must be 'none' or 'image', got {normalize!r}")
        self.network = network
        self.smooth = float(smooth)
        self.normalize = normalize

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        was_training = self.network.training
        self.network.eval()
        try:
            with torch.no_grad():
                recon = self.network(image.float())
        finally:
            self.network.train(was_training)
        residual = gaussian_smooth((image.float() - recon).abs(), self.smooth).clamp(0.0, 1.0)
        if self.normalize == "none":
            return residual
        low = residual.amin(dim=(1, 2, 3), keepdim=True)
        spread = residual.amax(dim=(1, 2, 3), keepdim=True) - low
        scaled = (residual - low) / spread.clamp_min(1e-6)
        return torch.where(spread > 1e-6, scaled, torch.zeros_like(scaled))
