"""The RadLAS pretraining and validation iterations, wired into MONAI engines by the pretrain bundle.

One training iteration is the method's stages, named and in order::

    synthesize (on the device, whole batch) -> encode -> restore -> ground -> pool -> losses -> backward -> step

With ``crop_size`` (conv restorer), restore and ground run on one native-resolution crop per image
(:func:`sample_crop_corners`), while the ViT encodes the whole image and Task II pools under the whole mask: the
convolutional path then trains on full-resolution detail at a fraction of the whole image's cost.

``SupervisedTrainer(iteration_update=RadLASPretrainStep(...))`` runs it; ``SupervisedEvaluator(iteration_update=
RadLASValidationStep(...))`` evaluates the same synthesis with a fixed seed every time, so validation numbers are
comparable across epochs.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import numpy as np
import torch
from monai.utils import CommonKeys

__all__ = [
    "RadLASPretrainStep",
    "RadLASValidationStep",
    "autocast_context",
    "synthesize_batch",
    "sample_crop_corners",
    "crop",
]

logger = logging.getLogger(__name__)


def autocast_context(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast where the device supports it (CPU, Ampere+ GPUs), fp16 on older GPUs; a no-op when disabled.

    Args:
        device: the device the step runs on.
        enabled: whether mixed precision is on (the bundle's ``amp``).

    Returns:
        A context manager.
    """
    if not enabled:
        return contextlib.nullcontext()
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _to_device(batch: dict[str, Any], key: str, device: torch.device, non_blocking: bool) -> torch.Tensor | None:
    value = batch.get(key)
    if value is None:
        return None
    value = torch.as_tensor(value)
    return (
        value.as_tensor().to(device, non_blocking=non_blocking)
        if hasattr(value, "as_tensor")
        else value.to(device, non_blocking=non_blocking)
    )


def synthesize_batch(
    synthesizer: Any,
    batch: dict[str, Any],
    device: torch.device,
    *,
    image_key: str = CommonKeys.IMAGE,
    lung_mask_key: str | None = "lung_mask",
    non_blocking: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Move a collated batch to ``device`` and write synthetic lesions into it, on the device, for the whole batch.

    Args:
        synthesizer: a :class:`radlas_monai.transforms.RandLesionSynthesis` (batched mode).
        batch: a collated dictionary with ``image_key`` (B, 1, H, W) in [0, 1] and optionally ``lung_mask_key``.
        device: the training device.
        image_key: key of the images.
        lung_mask_key: key of the lung masks (used when present in the batch).
        non_blocking: passed to ``Tensor.to``.

    Returns:
        ``(corrupted, healthy, lesion_mask)``, each (B, 1, H, W) float32 on ``device``; ``lesion_mask`` is the soft
        mask in [0, 1], zero where the image is unchanged.
    """
    image = _to_device(batch, image_key, device, non_blocking)
    if image is None:
        raise KeyError(f"batch has no {image_key!r} key; keys are {sorted(batch)}")
    lung = _to_device(batch, lung_mask_key, device, non_blocking) if lung_mask_key else None
    with torch.no_grad():
        out = synthesizer(image.float(), lung_mask=lung)
    return out.image, out.healthy, out.mask


def sample_crop_corners(
    focus: torch.Tensor | None, size: int, focus_prob: float, random_state: np.random.RandomState, shape: tuple
) -> np.ndarray:
    """Top-left corners of one ``size x size`` crop per image.

    With probability ``focus_prob`` a crop is centred on a random nonzero pixel of ``focus`` (lung fields, or the
    lesion mask when no lung mask is known), shifted to fit the image; otherwise it is placed uniformly.

    Args:
        focus: ``(B, 1, H, W)`` map whose nonzero pixels crops favour, or None.
        size: crop side in pixels (``<= H, W``).
        focus_prob: probability of a focused crop.
        random_state: the draws' source.
        shape: the batch shape ``(B, C, H, W)``.

    Returns:
        ``(B, 2)`` int64 corners ``(row, col)``.

    Raises:
        ValueError: when ``size`` exceeds the image.
    """
    batch, _, height, width = shape
    if not 0 < size <= min(height, width):
        raise ValueError(f"crop_size {size} must lie in (0, {min(height, width)}] for images of {(height, width)}")
    corners = np.stack(
        [random_state.randint(0, height - size + 1, batch), random_state.randint(0, width - size + 1, batch)], 1
    )
    focused = random_state.rand(batch) < focus_prob
    picks = random_state.rand(batch)
    for b in np.nonzero(focused)[0] if focus is not None else ():
        pixels = torch.nonzero(focus[b, 0] > 0)
        if len(pixels):
            row, col = pixels[int(picks[b] * len(pixels))].tolist()
            corners[b] = (min(max(row - size // 2, 0), height - size), min(max(col - size // 2, 0), width - size))
    return corners.astype(np.int64)


def crop(tensor: torch.Tensor, corners: np.ndarray, size: int) -> torch.Tensor:
    """``(B, C, size, size)`` crops of ``tensor (B, C, H, W)`` at ``corners (B, 2)``."""
    return torch.stack([tensor[b, :, r : r + size, c : c + size] for b, (r, c) in enumerate(corners.tolist())])


def _publish(engine: Any, output: dict[str, Any]) -> Any:
    """Hand ``output`` to the engine as MONAI's own iterations do: set it, then fire ``MODEL_COMPLETED``.

    MONAI engines decollate the output (``decollate=True``) and run ``postprocessing`` on that event, so handlers
    written for MONAI (``from_engine([...], first=True)``, ``--tracking mlflow``) read this step's output as they
    read a standard one.
    """
    if not hasattr(engine, "fire_event"):  # a plain ignite engine, or a benchmark's stand-in
        return output
    from monai.engines.utils import IterationEvents

    engine.state.output = output
    engine.fire_event(IterationEvents.MODEL_COMPLETED)
    return engine.state.output


class RadLASPretrainStep:
    """``iteration_update`` for ``monai.engines.SupervisedTrainer``: one RadLAS pretraining iteration.

    Uses the trainer's ``network``, ``optimizer`` and ``loss_function`` (a :class:`radlas_monai.losses.RadLASLoss`).

    Args:
        synthesizer: batched lesion synthesis, run on the training device.
        grad_clip_norm: clip the global gradient norm to this value (``0`` or ``None`` disables clipping).
        amp: mixed precision (bf16 autocast; fp16 with a gradient scaler on GPUs without bf16).
        lung_mask_key: batch key of lung masks, used to place lesions when present (and cropped with the image for a
            loss whose ``uses_lung_mask`` is true, e.g. ``RadLASLoss(outside_weight=...)``).
        pool_with_target: pool tokens under the synthetic lesion mask (teacher forcing, the default: Task II then
            contrasts features of known lesions) instead of under the network's own, still-learning lesion map.
        crop_size: train the convolutional path (conv restorer and grounding) on one ``crop_size`` crop per image
            at the input's resolution (None: whole images). Needs ``pool_with_target``.
        crop_focus_prob: share of crops centred on the lung fields (the lesion mask when the batch has no lungs).
        seed: seed of the crop draws (:meth:`set_random_state`).

    Returns (per call):
        ``engine.state.output``: a dict with ``loss`` and every loss term as floats (for logging), plus the detached
        tensors ``image`` (corrupted), ``healthy``, ``lesion_mask``, ``restored`` and ``lesion_map`` (B, 1, H, W)
        for image handlers.
    """

    def __init__(
        self,
        synthesizer: Any,
        grad_clip_norm: float | None = 1.0,
        amp: bool = False,
        lung_mask_key: str | None = "lung_mask",
        pool_with_target: bool = True,
        crop_size: int | None = None,
        crop_focus_prob: float = 0.7,
        seed: int = 0,
    ) -> None:
        if crop_size is not None and not pool_with_target:
            raise ValueError("crop_size needs pool_with_target=True: crops' maps cannot be pooled over whole images")
        self.synthesizer = synthesizer
        self.grad_clip_norm = grad_clip_norm
        self.amp = amp
        self.lung_mask_key = lung_mask_key
        self.pool_with_target = pool_with_target
        self.crop_size = int(crop_size) if crop_size else None
        self.crop_focus_prob = float(crop_focus_prob)
        self.set_random_state(seed)
        self._scaler: torch.amp.GradScaler | None = None

    def set_random_state(self, seed: int | None = None) -> RadLASPretrainStep:
        """Seed the crop draws (the synthesizer has its own state)."""
        self.R = np.random.RandomState(seed)
        return self

    def _scaler_for(self, engine: Any, device: torch.device) -> torch.amp.GradScaler | None:
        """fp16 needs a gradient scaler: the trainer's own (``amp=True`` creates it, and checkpoints save it)."""
        needs_scaler = self.amp and device.type == "cuda" and not torch.cuda.is_bf16_supported()
        if not needs_scaler:
            return None
        if getattr(engine, "scaler", None) is None:
            if self._scaler is None:
                self._scaler = torch.amp.GradScaler("cuda")
            engine.scaler = self._scaler
        return engine.scaler

    def __call__(self, engine: Any, batchdata: dict[str, Any]) -> dict[str, Any]:
        device = torch.device(engine.state.device)
        network, optimizer, loss_function = engine.network, engine.optimizer, engine.loss_function
        corrupted, healthy, lesion_mask = synthesize_batch(
            self.synthesizer, batchdata, device, lung_mask_key=self.lung_mask_key, non_blocking=engine.non_blocking
        )
        network.train()
        optimizer.zero_grad(set_to_none=True)
        lung = _to_device(batchdata, self.lung_mask_key, device, engine.non_blocking) if self.lung_mask_key else None
        local, target, local_mask, local_lung = None, healthy, lesion_mask, lung
        if self.crop_size is not None and self.crop_size < min(corrupted.shape[-2:]):
            focus = lung if lung is not None else lesion_mask
            corners = sample_crop_corners(focus, self.crop_size, self.crop_focus_prob, self.R, tuple(corrupted.shape))
            local, target, local_mask = (crop(t, corners, self.crop_size) for t in (corrupted, healthy, lesion_mask))
            local_lung = crop(lung, corners, self.crop_size) if lung is not None else None
        with autocast_context(device, self.amp):
            pool_map = lesion_mask if self.pool_with_target else None
            output = network(corrupted, pool_map=pool_map, local_image=local)
            uses_lung = local_lung is not None and getattr(loss_function, "uses_lung_mask", False)
            extra = {"lung_mask": local_lung} if uses_lung else {}
            terms = loss_function(output, target, local_mask, token_mask=lesion_mask, **extra)
        loss = terms["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss.item()} at iteration {engine.state.iteration}: {terms}")
        scaler = self._scaler_for(engine, device)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if self.grad_clip_norm:
            torch.nn.utils.clip_grad_norm_(network.parameters(), self.grad_clip_norm)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        result: dict[str, Any] = {name: float(value.detach()) for name, value in terms.items()}
        result.update(
            {
                CommonKeys.IMAGE: (corrupted if local is None else local).detach(),
                "healthy": target.detach(),
                "lesion_mask": local_mask.detach(),
                "restored": output.restored.detach().float(),
                "lesion_map": output.lesion_map.detach().float(),
            }
        )
        return _publish(engine, result)


class RadLASValidationStep:
    """``iteration_update`` for ``monai.engines.SupervisedEvaluator``: restore and ground synthetically lesioned images.

    The synthesizer is re-seeded at the first iteration of every evaluation run, so each validation sees the same
    lesions and numbers are comparable across epochs.

    Args:
        synthesizer: batched lesion synthesis (its own instance, not the trainer's).
        seed: the seed every validation run starts from.
        amp: bf16 autocast for the forward pass.
        lung_mask_key: batch key of lung masks, used to place lesions when present.
        pixel_stride: subsample pixels by this stride for the pixel AUROC (keeps it cheap at 512 px).

    Returns (per call):
        A dict with ``image``, ``healthy``, ``lesion_mask``, ``restored``, ``lesion_map`` (B, 1, H, W) and
        ``pixel_scores`` / ``pixel_labels`` (P,) flattened, subsampled lesion-map values and binary mask labels for
        ``monai.handlers.ROCAUC``, and the image-level features ``global_embedding`` (B, E) and ``global_feature``
        (B, D, the mean token) for :class:`radlas_monai.metrics.EffectiveRankMetric`.
    """

    def __init__(
        self,
        synthesizer: Any,
        seed: int = 12345,
        amp: bool = False,
        lung_mask_key: str | None = "lung_mask",
        pixel_stride: int = 2,
    ) -> None:
        self.synthesizer = synthesizer
        self.seed = seed
        self.amp = amp
        self.lung_mask_key = lung_mask_key
        self.pixel_stride = pixel_stride

    def __call__(self, engine: Any, batchdata: dict[str, Any]) -> dict[str, Any]:
        if engine.state.iteration == 1:
            self.synthesizer.set_random_state(seed=self.seed)
        device = torch.device(engine.state.device)
        corrupted, healthy, lesion_mask = synthesize_batch(
            self.synthesizer, batchdata, device, lung_mask_key=self.lung_mask_key, non_blocking=engine.non_blocking
        )
        engine.network.eval()
        with torch.no_grad(), autocast_context(device, self.amp):
            output = engine.network(corrupted)
        restored, lesion_map = output.restored.float(), output.lesion_map.float()
        s = self.pixel_stride
        return _publish(
            engine,
            {
                CommonKeys.IMAGE: corrupted,
                "healthy": healthy,
                "lesion_mask": lesion_mask,
                "restored": restored,
                "lesion_map": lesion_map,
                "pixel_scores": lesion_map[..., ::s, ::s].reshape(-1),
                "pixel_labels": (lesion_mask[..., ::s, ::s] > 0.5).reshape(-1).float(),
                "global_embedding": output.global_embedding.float(),
                "global_feature": output.global_feature.float(),
            },
        )
