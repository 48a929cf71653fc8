"""Pretraining step throughput: RadLAS versus MONAI's self-supervised ViTAutoEnc recipe at the same encoder size.

Both sides run their real training step (forward, loss, backward, optimizer step) on the same images, at the same
encoder width and depth, image size and batch:

- ``radlas``: :class:`~radlas_monai.engines.pretrain.RadLASPretrainStep` with the pretrain bundle's settings (lesion
  synthesis of the whole batch on the device, :class:`~radlas_monai.losses.RadLASLoss`, AdamW, gradient clipping);
- ``vit_autoenc_recipe``: :class:`~radlas_monai.baselines.ViTAutoEncRecipeStep`, making its two coarse dropout +
  shuffle views of every image (as its data loader would), two forward passes, L1 + ``ContrastiveLoss``, AdamW;
- ``vit_autoenc_recipe_model_only``: the same recipe step on views made beforehand (its views cost nothing), shown
  so that the ratio is not read as a contest of augmentations.

The three are timed interleaved; the FLOPs of each step are counted once, and on a GPU with a known bf16 peak the
model FLOPs utilisation (MFU) is reported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import torch

from radlas_monai.benchmarking.flops import count_flops, model_flops_utilization, peak_bf16_flops
from radlas_monai.benchmarking.inputs import radiograph_batch
from radlas_monai.benchmarking.memory import measure_peak_memory
from radlas_monai.benchmarking.timing import ratio_summary, summarize, time_interleaved

__all__ = [
    "BUNDLE_CROP_SIZE",
    "BUNDLE_LOSS",
    "BUNDLE_SYNTHESIS",
    "build_radlas_step",
    "build_radlas_trainer",
    "build_recipe_step",
    "build_synthesis",
    "fake_engine",
    "pretrain_row",
    "pretrain_rows",
]

logger = logging.getLogger(__name__)

FIELD_OF_VIEW_MM = 350.0
"""The pretrain bundle's ``field_of_view_mm`` (lesion sizes are in mm through ``default_spacing = fov / size``)."""

BUNDLE_SYNTHESIS: dict[str, Any] = {"prob": 0.8, "num_lesions": (1, 3)}
"""``RandLesionSynthesis`` arguments of the pretrain bundle (``configs/train.json``), besides the spacing."""

BUNDLE_LOSS: dict[str, float] = {
    "recon_weight": 1.0,
    "grounding_weight": 1.0,
    "contrastive_weight": 0.1,
    "temperature": 0.1,
    "token_weight": 0.5,
    "lesion_weight": 5.0,
    "bce_weight": 10.0,
    "focal_gamma": 2.0,
}
"""``RadLASLoss`` arguments of the pretrain bundle."""

BUNDLE_CROP_SIZE = 128
"""The pretrain bundle's ``crop_size``: the convolutional path trains on crops of this side (whole smaller images)."""


def fake_engine(network: torch.nn.Module, optimizer: Any, loss_function: Any, device: str | torch.device) -> Any:
    """The few attributes a MONAI trainer gives an ``iteration_update``, so that the real steps run unchanged."""
    return SimpleNamespace(
        network=network,
        optimizer=optimizer,
        loss_function=loss_function,
        non_blocking=False,
        state=SimpleNamespace(device=torch.device(device), iteration=1),
    )


def _prepare(network: torch.nn.Module, device: str | torch.device, channels_last: bool, compile: bool) -> Any:
    network = network.to(device)
    if channels_last:
        network = network.to(memory_format=torch.channels_last)
    return torch.compile(network) if compile else network


def build_synthesis(image_size: int, seed: int) -> Any:
    """The pretrain bundle's lesion synthesis at ``image_size`` (sizes in mm over a 350 mm field of view)."""
    from radlas_monai.transforms.lesion_synthesis import RandLesionSynthesis

    synthesis = RandLesionSynthesis(default_spacing=FIELD_OF_VIEW_MM / image_size, **BUNDLE_SYNTHESIS)
    synthesis.set_random_state(seed)
    return synthesis


def build_radlas_trainer(
    preset: str,
    image_size: int,
    device: str | torch.device,
    *,
    amp: bool = False,
    channels_last: bool = False,
    compile: bool = False,
    seed: int = 0,
) -> Callable[[dict[str, Any]], Any]:
    """The RadLAS pretraining iteration as the pretrain bundle runs it: ``run(batch)`` trains on one collated batch.

    The batch holds ``image`` and optionally ``lung_mask`` ``(B, 1, S, S)``; the bundle's lesion synthesis, loss,
    AdamW (``lr=3e-4``, ``weight_decay=0.05``) and gradient clipping (1.0) are used.
    """
    from radlas_monai.engines.pretrain import RadLASPretrainStep
    from radlas_monai.losses import RadLASLoss
    from radlas_monai.networks import RadLAS

    torch.manual_seed(seed)
    network = RadLAS(preset=preset, img_size=image_size).to(device)
    optimizer = torch.optim.AdamW(network.parameters(), lr=3e-4, weight_decay=0.05)
    step = RadLASPretrainStep(
        build_synthesis(image_size, seed), grad_clip_norm=1.0, amp=amp, crop_size=BUNDLE_CROP_SIZE, seed=seed
    )
    engine = fake_engine(
        _prepare(network, device, channels_last, compile), optimizer, RadLASLoss(**BUNDLE_LOSS).to(device), device
    )
    return lambda batch: step(engine, batch)


def build_radlas_step(
    preset: str, image_size: int, batch: dict[str, torch.Tensor], device: str | torch.device, **options: Any
) -> Callable[[], Any]:
    """One RadLAS pretraining iteration on a fixed ``batch`` (see :func:`build_radlas_trainer` for ``options``)."""
    trainer = build_radlas_trainer(preset, image_size, device, **options)
    return lambda: trainer(batch)


def build_recipe_step(
    preset: str,
    image_size: int,
    images: torch.Tensor,
    device: str | torch.device,
    *,
    views_in_step: bool = True,
    amp: bool = False,
    channels_last: bool = False,
    compile: bool = False,
    seed: int = 0,
) -> Callable[[], Any]:
    """One iteration of MONAI's ViTAutoEnc recipe on ``images``; its views made in the step or beforehand."""
    from radlas_monai.baselines import RecipeViews, ViTAutoEncRecipeStep, build_recipe_optimizer, build_vit_autoenc
    from radlas_monai.baselines.views import make_views_batch

    torch.manual_seed(seed)
    network = build_vit_autoenc(preset, img_size=image_size).to(device)
    views = RecipeViews(keys="image").set_random_state(seed)
    step = ViTAutoEncRecipeStep(views=views, amp=amp)
    engine = fake_engine(
        _prepare(network, device, channels_last, compile), build_recipe_optimizer(network), None, device
    )
    batch: dict[str, torch.Tensor] = {"image": images}
    if not views_in_step:
        view1, view2 = make_views_batch(images, views)
        batch = {"image": images, "image_view1": view1, "image_view2": view2}
    return lambda: step(engine, batch)


def pretrain_row(
    preset: str,
    image_size: int,
    batch_size: int,
    repeats: int,
    device: str | torch.device,
    *,
    amp: bool = False,
    channels_last: bool = False,
    compile: bool = False,
    memory: bool = True,
    flops: bool = True,
    peak_tflops: float | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """One row of the pretraining table: the three steps interleaved for one encoder preset and image size.

    Args:
        preset: encoder preset (same width and depth on both sides).
        image_size: image side.
        batch_size: images per step.
        repeats: interleaved timed rounds (after one warm-up step each).
        device: ``"cpu"`` or a CUDA device.
        amp: bf16 autocast on both sides.
        channels_last: channels-last memory format for both networks.
        compile: ``torch.compile`` both networks.
        memory: measure each side's peak memory (an extra build and two steps per side).
        flops: count each step's FLOPs (one extra step per side) and report MFU where the bf16 peak is known.
        peak_tflops: the device's dense bf16 peak in TFLOP/s (overrides the built-in table).
        seed: seed of the images, weights and augmentations.

    Returns:
        The row: throughputs (images/s), the ratios with their per-round range, spreads, FLOPs, MFU and memory.
    """
    images, lungs = radiograph_batch(batch_size, image_size, device, seed)
    batch = {"image": images, "lung_mask": lungs}
    options = {"amp": amp, "channels_last": channels_last, "compile": compile, "seed": seed}
    builders = {
        "radlas": lambda: build_radlas_step(preset, image_size, batch, device, **options),
        "vit_autoenc_recipe": lambda: build_recipe_step(preset, image_size, images, device, **options),
        "vit_autoenc_recipe_model_only": lambda: build_recipe_step(
            preset, image_size, images, device, views_in_step=False, **options
        ),
    }
    runs = {name: build() for name, build in builders.items()}
    times = time_interleaved(runs, repeats, device, warmup=2 if compile else 1)
    row: dict[str, Any] = {"preset": preset, "size": image_size, "batch": batch_size}
    for name, seconds in times.items():
        row[f"{name}_images_per_s"] = batch_size / summarize(seconds)["median_s"]
    vs_recipe = ratio_summary(times["vit_autoenc_recipe"], times["radlas"])
    row["ratio_radlas_over_recipe"] = vs_recipe["ratio"]
    row["ratio_range"] = [vs_recipe["ratio_min"], vs_recipe["ratio_max"]]
    vs_model_only = ratio_summary(times["vit_autoenc_recipe_model_only"], times["radlas"])
    row["ratio_radlas_over_recipe_model_only"] = vs_model_only["ratio"]
    row.update({f"{name}_spread": summarize(seconds)["spread"] for name, seconds in times.items()})
    if flops:
        peak = peak_bf16_flops(device, peak_tflops)
        for name, run in runs.items():
            step_flops = count_flops(run)
            seconds = summarize(times[name])["median_s"]
            row[f"{name}_gflop_per_image"] = step_flops / batch_size / 1e9
            row[f"{name}_achieved_tflop_per_s"] = step_flops / seconds / 1e12
            row[f"{name}_mfu"] = model_flops_utilization(step_flops, seconds, peak)
    del runs
    if memory:
        for name, build in builders.items():
            row[f"{name}_peak_memory_mib"] = measure_peak_memory(build, 2, device).increase_mib
    return row


def pretrain_rows(
    presets: Sequence[str], image_sizes: Sequence[int], batch_size: int, repeats: int, device: str, **kwargs: Any
) -> list[dict[str, Any]]:
    """:func:`pretrain_row` for every preset and image size."""
    return [
        pretrain_row(preset, size, batch_size, repeats, device, **kwargs) for preset in presets for size in image_sizes
    ]
