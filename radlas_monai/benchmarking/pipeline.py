"""Data pipeline throughput: lesion synthesis and the pretrain bundle's loader, each against the model's step rate.

- :func:`synthesis_row`: the bundle's :class:`~radlas_monai.transforms.RandLesionSynthesis` on a whole batch on the
  training device (with and without lung masks) next to the ViTAutoEnc recipe's two coarse dropout + shuffle views
  per image (what its loader does per step) and next to the RadLAS training step (tiny preset) at the same size
  and batch, all four interleaved. Target: synthesis at least 10x the model's training throughput.
- :func:`loader_row`: the pretrain bundle's own ``preprocessing`` (read from ``bundles/pretrain/configs/train.json``:
  ``LoadRadiographd`` + ``Resized`` + ``EnsureTyped`` + ``SelectItemsd``) in a ``CacheDataset`` and a
  ``DataLoader`` (the bundle's) or ``ThreadDataLoader``, feeding real RadLAS training steps. Each iteration times the
  wait for the next batch and the step separately, so the loader's headroom (step time / wait) and the fraction of
  the loop spent waiting are measured in the same loop. Target: the model never waits for the loader.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from radlas_monai.benchmarking.inputs import radiograph_batch, write_radiograph_folder
from radlas_monai.benchmarking.memory import PeakMemory, measure_peak_memory
from radlas_monai.benchmarking.pretrain import build_radlas_step, build_radlas_trainer, build_synthesis
from radlas_monai.benchmarking.timing import ratio_summary, summarize, time_interleaved

__all__ = ["LOADERS", "bundle_preprocessing", "loader_row", "synthesis_row"]

logger = logging.getLogger(__name__)

LOADERS = ("DataLoader", "ThreadDataLoader")


def synthesis_row(
    size: int,
    batch_size: int,
    repeats: int,
    device: str | torch.device,
    *,
    preset: str = "tiny",
    amp: bool = False,
    memory: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """One row of the lesion-synthesis table at one image size (see the module docstring).

    Returns:
        Throughputs (images/s), the ratios ``synthesis / recipe views`` and ``synthesis / training step`` with their
        per-round range, and the peak memory of the synthesis and of the recipe's views.
    """
    from radlas_monai.baselines.views import RecipeViews, make_views_batch

    images, lungs = radiograph_batch(batch_size, size, device, seed)
    with_mask, without_mask = build_synthesis(size, seed), build_synthesis(size, seed)
    views = RecipeViews(keys="image").set_random_state(seed)
    runs = {
        "synthesis": lambda: with_mask(images, lung_mask=lungs),
        "synthesis_no_lung_mask": lambda: without_mask(images),
        "recipe_views": lambda: make_views_batch(images, views),
        "training_step": build_radlas_step(preset, size, {"image": images, "lung_mask": lungs}, device, amp=amp),
    }
    times = time_interleaved(runs, repeats, device)
    median = {name: summarize(seconds)["median_s"] for name, seconds in times.items()}
    vs_views = ratio_summary(times["recipe_views"], times["synthesis"])
    vs_step = ratio_summary(times["training_step"], times["synthesis"])
    row: dict[str, Any] = {
        "size": size,
        "batch": batch_size,
        "lesion_synthesis_lung_mask_images_per_s": batch_size / median["synthesis"],
        "lesion_synthesis_images_per_s": batch_size / median["synthesis_no_lung_mask"],
        "coarse_dropout_shuffle_images_per_s": batch_size / median["recipe_views"],
        f"radlas_{preset}_training_images_per_s": batch_size / median["training_step"],
        "speedup_vs_recipe_views": vs_views["ratio"],
        "speedup_vs_recipe_views_range": [vs_views["ratio_min"], vs_views["ratio_max"]],
        "synthesis_over_training": vs_step["ratio"],
        "synthesis_over_training_range": [vs_step["ratio_min"], vs_step["ratio_max"]],
        "spread": max(summarize(seconds)["spread"] for seconds in times.values()),
    }
    if memory:

        def build_synthesis_run() -> Any:
            synthesis = build_synthesis(size, seed)
            return lambda: synthesis(images, lung_mask=lungs)

        def build_views_run() -> Any:
            recipe_views = RecipeViews(keys="image").set_random_state(seed)
            return lambda: make_views_batch(images, recipe_views)

        row["synthesis_peak_memory_mib"] = measure_peak_memory(build_synthesis_run, 2, device).increase_mib
        row["recipe_views_peak_memory_mib"] = measure_peak_memory(build_views_run, 2, device).increase_mib
    return row


def bundle_preprocessing(image_size: int, bundle: str = "pretrain") -> Any:
    """The ``preprocessing`` transform of a bundle's ``configs/train.json``, parsed with ``image_size``.

    Raises:
        FileNotFoundError: when the bundle cannot be found (see
            :func:`~radlas_monai.engines.paths.find_bundle_root`).
    """
    from monai.bundle import ConfigParser

    from radlas_monai.engines.paths import find_bundle_root

    parser = ConfigParser()
    parser.read_config(Path(find_bundle_root(bundle)) / "configs" / "train.json")
    parser["image_size"] = int(image_size)
    return parser.get_parsed_content("preprocessing")


def _make_loader(kind: str, dataset: Any, batch_size: int, num_workers: int, seed: int) -> Any:
    from monai.data import DataLoader, ThreadDataLoader

    if kind not in LOADERS:
        raise ValueError(f"loader must be one of {LOADERS}, got {kind!r}")
    generator = torch.Generator().manual_seed(seed)
    common = {"batch_size": batch_size, "shuffle": True, "num_workers": num_workers, "generator": generator}
    if kind == "ThreadDataLoader":
        return ThreadDataLoader(dataset, buffer_size=1, **common)
    return DataLoader(dataset, **common)


def _fed_loop(loader: Any, train: Any, epochs: int) -> tuple[list[float], list[float]]:
    """Run ``train`` on every batch of ``epochs`` epochs; per iteration, the wait for the batch and the step time."""
    waits, steps = [], []
    for _ in range(epochs):
        iterator = iter(loader)
        while True:
            start = time.perf_counter()
            batch = next(iterator, None)
            fetched = time.perf_counter()
            if batch is None:
                break
            train(batch)
            waits.append(fetched - start)
            steps.append(time.perf_counter() - fetched)
    return waits, steps


def loader_row(
    loader: str,
    num_images: int,
    source_size: int,
    image_size: int,
    batch_size: int,
    epochs: int,
    device: str | torch.device,
    *,
    num_workers: int = 0,
    preset: str = "tiny",
    amp: bool = False,
    folder: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """One row of the loader table: the bundle's cached pipeline feeding real training steps.

    Args:
        loader: ``"DataLoader"`` (the bundle's) or ``"ThreadDataLoader"``.
        num_images: radiographs written to disk and cached.
        source_size: side of the files (the loader reads and resizes them to ``image_size``).
        image_size: the training size.
        batch_size: images per batch.
        epochs: timed epochs (after one untimed loader-only epoch and one warm-up step).
        device: the training device.
        num_workers: loader and cache workers (the bundle's default is 0).
        preset: RadLAS preset of the training step.
        amp: bf16 autocast in the step.
        folder: where the files are written (default a temporary folder, removed afterwards).
        seed: seed of the images, the shuffling and the step.

    Returns:
        Cache fill rate, loader-only rate, and from the fed loop the loader and model rates, the loader's headroom
        (``median step / median wait``), the fraction of the loop spent waiting, and the loader's peak memory.
    """
    from monai.data import CacheDataset

    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        items = write_radiograph_folder(tmp, num_images, source_size, seed)
        preprocessing = bundle_preprocessing(image_size)
        with PeakMemory("cpu") as meter:
            start = time.perf_counter()
            dataset = CacheDataset(
                items, preprocessing, cache_rate=1.0, num_workers=num_workers or None, progress=False
            )
            cache_s = time.perf_counter() - start
            data_loader = _make_loader(loader, dataset, batch_size, num_workers, seed)
            start = time.perf_counter()
            count = sum(int(batch["image"].shape[0]) for batch in data_loader)
            loader_only_s = time.perf_counter() - start
    train = build_radlas_trainer(preset, image_size, device, amp=amp, seed=seed)
    train(next(iter(data_loader)))  # warm-up step
    waits, steps = _fed_loop(data_loader, train, max(1, int(epochs)))
    wait, step = statistics.median(waits), statistics.median(steps)
    return {
        "loader": loader,
        "num_workers": num_workers,
        "images": num_images,
        "source_size": source_size,
        "size": image_size,
        "batch": batch_size,
        "cache_fill_images_per_s": num_images / cache_s,
        "loader_only_images_per_s": count / loader_only_s,
        "loader_images_per_s": batch_size / wait if wait > 0 else float("inf"),
        f"radlas_{preset}_training_images_per_s": batch_size / step,
        "loader_headroom": step / wait if wait > 0 else float("inf"),
        "wait_fraction": sum(waits) / (sum(waits) + sum(steps)),
        "loader_peak_memory_mib": meter.result.increase_mib if meter.result else None,
    }
