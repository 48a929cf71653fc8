"""Benchmarks of the RadLAS pipeline, one function per section, results printed as a table and saved as JSON.

Usage::

    python scripts/benchmark.py lesion_synthesis --sizes=[256,512] --batch_size=32 --repeats=5 --device=cpu \\
        --output=benchmark.json
    python scripts/benchmark.py lesion_synthesis --quick --output=benchmark.json   # CI smoke run (tiny, 1 repeat)

Sections write their results under their own key of the JSON file (other sections already there are kept), so
one file can collect several runs. Every timing is the median over ``repeats`` runs after one warm-up run.

``lesion_synthesis``: throughput (images/s) of :class:`radlas_monai.transforms.RandLesionSynthesis` on whole
batches on the device, without and with lung masks, next to the corruption of MONAI's self-supervised ViTAutoEnc
recipe on the same images: its two coarse dropout + shuffle views per image (:class:`radlas_monai.baselines.
RecipeViews`, the tutorial's ``OneOf`` of two ``RandCoarseDropoutd`` then ``RandCoarseShuffled``), made image by
image as that recipe's data loader does, and their ratio.

``pretrain_throughput``: one real training step of each side at the same encoder size, image size and batch.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import fire
import monai
import torch

from radlas_monai.baselines.views import RecipeViews, make_views_batch
from radlas_monai.transforms.lesion_synthesis import RandLesionSynthesis
from radlas_monai.transforms.lesion_synthesis.regions import default_lung_fields


def time_median(run: Callable[[], Any], repeats: int, device: str = "cpu", warmup: int = 1) -> float:
    """Median wall time in seconds of ``run()`` over ``repeats`` calls, after ``warmup`` untimed calls."""
    synchronize = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
    for _ in range(warmup):
        run()
    synchronize()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        run()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def print_table(title: str, rows: Sequence[dict[str, Any]]) -> None:
    """Print ``rows`` (dicts with the same keys) as an aligned text table under ``title``."""
    if not rows:
        return
    columns = list(rows[0])
    cells = [[_format(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print(f"\n{title}")
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)))


def write_json(path: str | os.PathLike, section: str, result: dict[str, Any]) -> None:
    """Store ``result`` under ``section`` in the JSON file at ``path``, keeping the other sections."""
    path = Path(path)
    report = json.loads(path.read_text()) if path.exists() else {}
    report[section] = result
    report["environment"] = environment()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


def finish_section(
    name: str, title: str, settings: dict[str, Any], rows: list[dict[str, Any]], output: str | None
) -> dict[str, Any]:
    """Print a section's table and write it under ``name`` in the JSON ``output`` (None: do not write).

    Returns:
        The section: ``settings``, the thread count, the statistic used, and ``rows`` under ``results``.
    """
    result = {**settings, "torch_threads": torch.get_num_threads(), "statistic": "median after 1 warm-up run"}
    result["results"] = rows
    print_table(title, rows)
    if output:
        write_json(output, name, result)
    return result


def environment() -> dict[str, Any]:
    """Versions and hardware the numbers were measured with."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def radiograph_batch(batch: int, size: int, device: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic chest-like test images ``(B, 1, S, S)`` in [0, 1] and their lung masks."""
    generator = torch.Generator().manual_seed(seed)
    lung = default_lung_fields(size, size, "cpu").float()
    rows = torch.linspace(0, 1, size).view(1, 1, size, 1)
    phase = torch.rand(batch, 1, 1, 1, generator=generator)
    ribs = 0.08 * torch.sin(2 * torch.pi * (9 * rows + phase)).clamp_min(0)
    texture = 0.04 * torch.rand(batch, 1, size, size, generator=generator)
    images = (0.8 - lung * (0.5 - ribs - texture)).clamp(0, 1)
    return images.to(device), lung.expand(batch, 1, size, size).contiguous().to(device)


def lesion_synthesis(
    sizes: Sequence[int] = (256, 512),
    batch_size: int = 32,
    repeats: int = 5,
    device: str = "cpu",
    output: str | None = "benchmark.json",
    quick: bool = False,
    threads: int | None = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """Lesion-synthesis throughput next to MONAI's coarse dropout + shuffle recipe, on the same images.

    Args:
        sizes: image sides to measure.
        batch_size: images per batch (the lesion synthesis runs on whole batches, the recipe image by image).
        repeats: timed runs per measurement (the median is reported).
        device: ``"cpu"`` or a CUDA device.
        output: JSON file to write the section to (None: do not write).
        quick: CI smoke mode: 64-px images, batches of 4, one repeat (overrides the three above).
        threads: ``torch.set_num_threads`` for the run; default 1, the usual data-loader worker setting (both
            transforms are then measured on one core; on a busy machine, intra-op threads of many small tensor ops
            contend badly). 0 or None keeps torch's default.
        seed: seed of the images and of both transforms.

    Returns:
        The section: settings and one result row per size.
    """
    if quick:
        sizes, batch_size, repeats = (64,), 4, 1
    if threads:
        torch.set_num_threads(int(threads))
    sizes = [int(s) for s in ([sizes] if isinstance(sizes, int) else sizes)]
    rows = [_lesion_synthesis_row(size, batch_size, repeats, device, seed) for size in sizes]
    title = f"lesion synthesis vs. MONAI ViTAutoEnc recipe views ({device}, batch {batch_size})"
    settings = {"device": str(device), "batch_size": batch_size, "repeats": repeats}
    return finish_section("lesion_synthesis", title, settings, rows, output)


def _lesion_synthesis_row(size: int, batch_size: int, repeats: int, device: str, seed: int) -> dict[str, Any]:
    """One row of the lesion-synthesis section: throughputs at one image size."""
    images, lungs = radiograph_batch(batch_size, size, device, seed)
    synthesis = RandLesionSynthesis(prob=0.8)
    synthesis.set_random_state(seed)
    views = RecipeViews(keys="image").set_random_state(seed)
    plain = time_median(lambda: synthesis(images), repeats, device)
    masked = time_median(lambda: synthesis(images, lung_mask=lungs), repeats, device)
    baseline = time_median(lambda: make_views_batch(images, views), repeats, device)
    return {
        "size": size,
        "lesion_synthesis_images_per_s": batch_size / plain,
        "lesion_synthesis_lung_mask_images_per_s": batch_size / masked,
        "coarse_dropout_shuffle_images_per_s": batch_size / baseline,
        "speedup": baseline / plain,
        "speedup_lung_mask": baseline / masked,
    }


def _fake_engine(network: torch.nn.Module, optimizer: Any, loss_function: Any, device: str) -> Any:
    """The few attributes a MONAI trainer gives an ``iteration_update``: the real steps run unchanged."""
    from types import SimpleNamespace

    return SimpleNamespace(
        network=network,
        optimizer=optimizer,
        loss_function=loss_function,
        non_blocking=False,
        state=SimpleNamespace(device=torch.device(device), iteration=1),
    )


def pretrain_throughput(
    presets: Sequence[str] = ("tiny", "small"),
    image_size: int = 256,
    batch_size: int = 8,
    repeats: int = 5,
    device: str = "cpu",
    output: str | None = "benchmark.json",
    quick: bool = False,
    threads: int | None = None,
    amp: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Pretraining step throughput: RadLAS versus MONAI's self-supervised ViTAutoEnc recipe, same encoder and batch.

    Both sides run their real training step (``RadLASPretrainStep`` and ``ViTAutoEncRecipeStep``: forward, loss,
    backward, optimizer step) on the same images. RadLAS's step includes lesion synthesis of the batch on the
    device; the recipe's includes making its two coarse dropout + shuffle views of every image (as its data loader
    would) and two forward passes, one per view.

    Args:
        presets: encoder presets (the same width and depth on both sides).
        image_size: image side.
        batch_size: images per step.
        repeats: timed steps per measurement (the median is reported).
        device: ``"cpu"`` or a CUDA device.
        output: JSON file to write the section to (None: do not write).
        quick: CI smoke mode: tiny preset, 64 px, batch 2, one repeat.
        threads: ``torch.set_num_threads`` (None keeps torch's default).
        amp: bf16 autocast on both sides.
        seed: seed of the images, the weights and the augmentations.

    Returns:
        The section: settings and one row per preset.
    """
    if quick:
        presets, image_size, batch_size, repeats = ("tiny",), 64, 2, 1
    if threads:
        torch.set_num_threads(int(threads))
    presets = [presets] if isinstance(presets, str) else list(presets)
    rows = [_pretrain_row(preset, image_size, batch_size, repeats, device, amp, seed) for preset in presets]
    title = f"pretraining step throughput, RadLAS vs. MONAI ViTAutoEnc SSL recipe ({device})"
    settings = {"device": str(device), "amp": amp, "repeats": repeats}
    return finish_section("pretrain_throughput", title, settings, rows, output)


def _pretrain_row(
    preset: str, image_size: int, batch_size: int, repeats: int, device: str, amp: bool, seed: int
) -> dict:
    """One row of the pretraining section: both real training steps for one encoder preset."""
    from radlas_monai.baselines import ViTAutoEncRecipeStep, build_recipe_optimizer, build_vit_autoenc
    from radlas_monai.baselines.views import RecipeViews
    from radlas_monai.engines.pretrain import RadLASPretrainStep
    from radlas_monai.losses import RadLASLoss
    from radlas_monai.networks import RadLAS

    images, lungs = radiograph_batch(batch_size, image_size, device, seed)
    batch = {"image": images, "lung_mask": lungs}
    torch.manual_seed(seed)
    radlas = RadLAS(preset=preset, img_size=image_size).to(device)
    synthesis = RandLesionSynthesis(prob=0.8)
    synthesis.set_random_state(seed)
    radlas_step = RadLASPretrainStep(synthesis, amp=amp)
    radlas_optimizer = torch.optim.AdamW(radlas.parameters(), lr=3e-4)
    radlas_engine = _fake_engine(radlas, radlas_optimizer, RadLASLoss().to(device), device)
    recipe = build_vit_autoenc(preset, img_size=image_size).to(device)
    recipe_step = ViTAutoEncRecipeStep(views=RecipeViews(keys="image").set_random_state(seed), amp=amp)
    recipe_engine = _fake_engine(recipe, build_recipe_optimizer(recipe), None, device)
    radlas_time = time_median(lambda: radlas_step(radlas_engine, batch), repeats, device)
    recipe_time = time_median(lambda: recipe_step(recipe_engine, {"image": images}), repeats, device)
    return {
        "preset": preset,
        "size": image_size,
        "batch": batch_size,
        "radlas_images_per_s": batch_size / radlas_time,
        "vit_autoenc_recipe_images_per_s": batch_size / recipe_time,
        "ratio_radlas_over_recipe": recipe_time / radlas_time,
    }


def _format(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def _cli(section: Callable[..., dict[str, Any]]) -> Callable[..., None]:
    """Wrap a section for ``fire`` so that its returned dict is not printed again after the table."""

    @functools.wraps(section)
    def run(*args: Any, **kwargs: Any) -> None:
        section(*args, **kwargs)

    return run


if __name__ == "__main__":
    fire.Fire({"lesion_synthesis": _cli(lesion_synthesis), "pretrain_throughput": _cli(pretrain_throughput)})
