"""Supervised DenseNet121 + Grad-CAM: the post-hoc explanation baseline RadLAS's grounded evidence should beat.

The classifier is MONAI's :class:`~monai.networks.nets.DenseNet121` (``spatial_dims=2, in_channels=1,
out_channels=K``, Huang et al., CVPR 2017; CheXNet's backbone, Rajpurkar et al. 2017) trained with multi-label BCE.
Its explanation is MONAI's :class:`~monai.visualize.GradCAM` (Selvaraju et al., ICCV 2017) on the last dense
feature map (``class_layers.relu``), upsampled to the image.

MONAI's default Grad-CAM post-processing (``default_normalizer``) maps each map's (min, max) to (1, 0), i.e. it
*inverts* the map. :class:`GradCAMMap` therefore passes its own per-image min-max normaliser, so 1 is where the
class evidence is strongest.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
from monai.networks.nets import DenseNet121
from monai.visualize import GradCAM

if TYPE_CHECKING:
    from radlas_monai.baselines.pretrain_variants import PretrainBudget

__all__ = ["GradCAMMap", "build_densenet121", "minmax_per_image", "train_densenet121"]

logger = logging.getLogger(__name__)

DEFAULT_TARGET_LAYER = "class_layers.relu"
"""DenseNet121's last feature map after the final norm and ReLU (``image_size / 32`` per side)."""


def build_densenet121(num_classes: int, **kwargs) -> DenseNet121:
    """MONAI ``DenseNet121(spatial_dims=2, in_channels=1, out_channels=num_classes)``; ``kwargs`` override.

    Raises:
        ValueError: when ``num_classes < 1``.
    """
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return DenseNet121(**{"spatial_dims": 2, "in_channels": 1, "out_channels": int(num_classes), **kwargs})


def train_densenet121(
    network: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    budget: PretrainBudget,
    device: str | torch.device = "cpu",
) -> list[float]:
    """Supervised multi-label training (``BCEWithLogitsLoss``) with the shared budget's optimizer and schedule.

    Args:
        network: the classifier (moved to ``device`` by the caller), logits ``(B, K)``.
        images: ``(N, 1, H, W)`` radiographs in ``[0, 1]``.
        labels: ``(N, K)`` multi-hot labels.
        budget: epochs, batch size, AdamW settings, warm-up and seed
            (:class:`~radlas_monai.baselines.pretrain_variants.PretrainBudget`).
        device: training device.

    Returns:
        Mean loss per epoch.

    Raises:
        ValueError: when images and labels disagree in count or images are not ``(N, 1, H, W)``.
    """
    from radlas_monai.baselines.pretrain_variants import fit_minibatches

    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must be (N, 1, H, W), got {tuple(images.shape)}")
    labels = labels.reshape(labels.shape[0], -1).float()
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"got {labels.shape[0]} label rows for {images.shape[0]} images")
    optimizer = torch.optim.AdamW(network.parameters(), lr=budget.learning_rate, weight_decay=budget.weight_decay)
    criterion = nn.BCEWithLogitsLoss()

    def step(index: torch.Tensor) -> float:
        network.train()
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(network(images[index].to(device)), labels[index].to(device))
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return fit_minibatches(step, images.shape[0], optimizer, budget, name="densenet121")


def minmax_per_image(maps: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Min-max normalise each map of ``(B, C, H, W)`` to ``[0, 1]`` (high stays high); flat maps become zeros."""
    maps = torch.as_tensor(maps).float()
    low = maps.amin(dim=tuple(range(1, maps.ndim)), keepdim=True)
    spread = maps.amax(dim=tuple(range(1, maps.ndim)), keepdim=True) - low
    scaled = (maps - low) / spread.clamp_min(eps)
    return torch.where(spread > eps, scaled, torch.zeros_like(scaled))


class GradCAMMap:
    """Localization callable: ``image (B, 1, H, W) -> Grad-CAM map (B, 1, H, W)`` in ``[0, 1]``.

    With ``class_index=None`` every class is mapped and the pixel-wise maximum over classes is returned (with
    ``scale_by_probability``: ``max_k p_k * cam_k``, as the classifier evidence map of the localization harness).

    Args:
        network: a trained classifier (e.g. :func:`build_densenet121`); it is run in eval mode (its previous mode is
            restored).
        class_index: the class whose evidence is mapped, or None for the maximum over all classes.
        target_layer: the layer Grad-CAM reads (``class_layers.relu`` for MONAI's DenseNet121).
        scale_by_probability: multiply each normalised map by the class probability ``sigmoid(logit)``, so that
            maps of confidently normal images are faint (image-level scores become the classifier's confidence).

    Raises:
        ValueError: when ``class_index < 0``.

    Example:
        >>> cam = GradCAMMap(build_densenet121(1))
        >>> cam(torch.rand(2, 1, 64, 64)).shape
        torch.Size([2, 1, 64, 64])
    """

    def __init__(
        self,
        network: nn.Module,
        class_index: int | None = 0,
        target_layer: str = DEFAULT_TARGET_LAYER,
        scale_by_probability: bool = False,
    ) -> None:
        if class_index is not None and int(class_index) < 0:
            raise ValueError(f"class_index must be >= 0 or None, got {class_index}")
        self.network = network
        self.class_index = None if class_index is None else int(class_index)
        self.scale_by_probability = bool(scale_by_probability)
        self.cam = GradCAM(nn_module=network, target_layers=target_layer, postprocessing=minmax_per_image)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """Grad-CAM maps ``(B, 1, H, W)`` of ``image (B, 1, H, W)``.

        Raises:
            ValueError: when ``image`` is not ``(B, 1, H, W)``.
        """
        if image.ndim != 4 or image.shape[1] != 1:
            raise ValueError(f"GradCAMMap expects images (B, 1, H, W), got {tuple(image.shape)}")
        was_training = self.network.training
        self.network.eval()
        try:
            with torch.no_grad():
                probabilities = torch.sigmoid(self.network(image.float()).float())
            classes = range(probabilities.shape[1]) if self.class_index is None else [self.class_index]
            maps = []
            for k in classes:
                with torch.enable_grad():
                    cam = self.cam(image.float(), class_idx=k).detach().float()
                if self.scale_by_probability:
                    cam = cam * probabilities[:, k].view(-1, 1, 1, 1)
                maps.append(cam)
        finally:
            self.network.train(was_training)
        return torch.stack(maps).amax(dim=0).clamp(0.0, 1.0)
