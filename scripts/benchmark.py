"""RadLAS performance benchmark (issue 8): one command, every comparison side by side, a table and a JSON report.

Usage::

    python scripts/benchmark.py all --output=benchmark.json                 # every section, CPU defaults
    python scripts/benchmark.py all --device=cuda --output=benchmark.json   # GPU: base preset, bf16 autocast, MFU
    python scripts/benchmark.py all --quick                                 # CI smoke run (tiny sizes, 1 repeat)
    python scripts/benchmark.py pretrain_throughput --presets "['tiny']" --repeats 3   # one section

Sections (each also a command of its own; each writes its JSON key, other keys of the file are kept):

1. ``pretrain_throughput``: training step images/s, RadLAS (lesion synthesis included) versus MONAI's ViTAutoEnc
   recipe at the same encoder, size and batch (:mod:`radlas_monai.benchmarking.pretrain`); FLOPs, and MFU on GPUs.
2. ``lesion_synthesis``: batched lesion synthesis on the device versus the recipe's views and versus the model's
   training step; ``data_loader``: the pretrain bundle's cached loader feeding real steps
   (:mod:`radlas_monai.benchmarking.pipeline`).
3. ``localization``: lesion-map latency per image at 512 px, batch 1 and 16, RadLAS versus DenseNet121 + Grad-CAM
   (:mod:`radlas_monai.benchmarking.localization`).
4. Peak memory of every contender (process RSS on CPU, ``torch.cuda.max_memory_allocated`` on GPU).

Every figure is a median over repeats after warm-up; contenders of one comparison run interleaved (A, B, A, B) in
one process, and each ratio is given with the range of its per-round ratios (the noise).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import fire
import torch

from radlas_monai.benchmarking.localization import LOCALIZATION_PRESET, localization_row
from radlas_monai.benchmarking.pipeline import LOADERS, loader_row, synthesis_row
from radlas_monai.benchmarking.pretrain import pretrain_rows
from radlas_monai.benchmarking.report import finish_section, format_table, write_json

logger = logging.getLogger("radlas_monai.benchmark")

TARGETS = {
    "pretrain_throughput": 1.0,  # RadLAS step images/s over the ViTAutoEnc recipe's, equal encoder
    "lesion_synthesis": 10.0,  # synthesis images/s over the model's training images/s, same size
    "localization": 2.0,  # DenseNet121 + Grad-CAM time over RadLAS time at 512 px
    "data_loader": 1.0,  # loader headroom: step time over the wait for a batch
}


def _setup(device: str, threads: int | None, amp: bool | None, quick: bool = False) -> tuple[str, bool]:
    """Apply the thread count (``--quick`` defaults to one: CI shares its cores), check the device, resolve amp."""
    threads = threads or (1 if quick else None)
    if threads:
        torch.set_num_threads(int(threads))
    device = str(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"--device {device} was asked for but torch sees no CUDA device")
    return device, bool(device.startswith("cuda") if amp is None else amp)


def _ints(values: int | Sequence[int]) -> list[int]:
    return [int(values)] if isinstance(values, (int, str)) else [int(v) for v in values]


def _strings(values: str | Sequence[str]) -> list[str]:
    return [values] if isinstance(values, str) else [str(v) for v in values]


def pretrain_throughput(
    presets: Sequence[str] | None = None,
    image_sizes: Sequence[int] | None = None,
    batch_size: int | None = None,
    repeats: int = 5,
    device: str = "cpu",
    output: str | None = "benchmark.json",
    quick: bool = False,
    threads: int | None = None,
    amp: bool | None = None,
    channels_last: bool = False,
    compile: bool = False,
    memory: bool = True,
    peak_tflops: float | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Pretraining step throughput, RadLAS versus MONAI's ViTAutoEnc SSL recipe (same encoder, size and batch).

    Args:
        presets: encoder presets; default ``tiny`` and ``small`` on CPU, ``base`` on GPU.
        image_sizes: image sides; default 256 on CPU, 224 and 512 on GPU.
        batch_size: images per step; default 8 on CPU, 32 on GPU.
        repeats: interleaved timed rounds (the median is reported).
        device: ``"cpu"`` or a CUDA device.
        output: JSON file to write the section to (None: do not write).
        quick: CI smoke mode: tiny preset, 64 px, batch 2, one repeat.
        threads: ``torch.set_num_threads`` (None keeps torch's default; 1 with ``quick``).
        amp: bf16 autocast on both sides; default on for CUDA, off on CPU.
        channels_last: channels-last memory format for both networks' convolutions.
        compile: ``torch.compile`` both networks.
        memory: measure each side's peak memory.
        peak_tflops: the device's dense bf16 peak (TFLOP/s) for MFU when the built-in table does not know it.
        seed: seed of the images, weights and augmentations.

    Returns:
        The section: settings and one row per preset and size.
    """
    device, amp = _setup(device, threads, amp, quick)
    cuda = device.startswith("cuda")
    presets = _strings(presets or (("base",) if cuda else ("tiny", "small")))
    image_sizes = _ints(image_sizes or ((224, 512) if cuda else (256,)))
    batch_size = int(batch_size or (32 if cuda else 8))
    if quick:
        presets, image_sizes, batch_size, repeats = ["tiny"], [64], 2, 1
    options = {"amp": amp, "channels_last": channels_last, "compile": compile, "memory": memory}
    rows = pretrain_rows(
        presets, image_sizes, batch_size, repeats, device, peak_tflops=peak_tflops, seed=seed, **options
    )
    columns = [
        "preset", "size", "batch", "radlas_images_per_s", "vit_autoenc_recipe_images_per_s",
        "vit_autoenc_recipe_model_only_images_per_s", "ratio_radlas_over_recipe", "ratio_range",
        "ratio_radlas_over_recipe_model_only", "radlas_gflop_per_image", "vit_autoenc_recipe_gflop_per_image",
        "radlas_mfu", "radlas_peak_memory_mib", "vit_autoenc_recipe_peak_memory_mib",
    ]  # fmt: skip
    title = f"1. pretraining step throughput (images/s), RadLAS vs. MONAI ViTAutoEnc SSL recipe ({device}, amp={amp})"
    settings = {"device": device, "amp": amp, "channels_last": channels_last, "compile": compile, "repeats": repeats}
    return finish_section("pretrain_throughput", title, settings, rows, output, columns, echo=print)


def lesion_synthesis(
    sizes: Sequence[int] = (256, 512),
    batch_size: int = 16,
    repeats: int = 5,
    device: str = "cpu",
    output: str | None = "benchmark.json",
    quick: bool = False,
    threads: int | None = None,
    amp: bool | None = None,
    memory: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """Lesion synthesis on the device vs. the recipe's coarse dropout + shuffle views vs. the RadLAS training step.

    Args:
        sizes: image sides.
        batch_size: images per batch (the pretrain bundle's 16).
        repeats: interleaved timed rounds.
        device: ``"cpu"`` or a CUDA device (the synthesis runs there, as in training).
        output: JSON file (None: do not write).
        quick: CI smoke mode: 64 px, batch 2, one repeat.
        threads: ``torch.set_num_threads`` (None keeps torch's default, the training process's setting).
        amp: bf16 autocast in the training step; default on for CUDA.
        memory: measure the peak memory of the synthesis and of the views.
        seed: seed of the images and of every transform.

    Returns:
        The section: settings and one row per size.
    """
    device, amp = _setup(device, threads, amp, quick)
    sizes = _ints(sizes)
    if quick:
        sizes, batch_size, repeats = [64], 2, 1
    rows = [synthesis_row(s, batch_size, repeats, device, amp=amp, memory=memory, seed=seed) for s in sizes]
    columns = [
        "size", "batch", "lesion_synthesis_lung_mask_images_per_s", "lesion_synthesis_images_per_s",
        "coarse_dropout_shuffle_images_per_s", "radlas_tiny_training_images_per_s", "speedup_vs_recipe_views",
        "synthesis_over_training", "synthesis_over_training_range", "synthesis_peak_memory_mib",
        "recipe_views_peak_memory_mib",
    ]  # fmt: skip
    title = f"2a. lesion synthesis (images/s) vs. recipe views vs. RadLAS tiny training step ({device})"
    settings = {"device": device, "amp": amp, "batch_size": batch_size, "repeats": repeats}
    return finish_section("lesion_synthesis", title, settings, rows, output, columns, echo=print)


def data_loader(
    loaders: Sequence[str] = LOADERS,
    num_images: int = 64,
    source_size: int = 512,
    image_size: int = 256,
    batch_size: int = 16,
    epochs: int = 2,
    num_workers: int = 0,
    device: str = "cpu",
    output: str | None = "benchmark.json",
    quick: bool = False,
    threads: int | None = None,
    amp: bool | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The pretrain bundle's cached loader feeding real RadLAS (tiny) training steps: does the model ever wait?

    Args:
        loaders: ``DataLoader`` (the bundle's) and/or ``ThreadDataLoader``.
        num_images: PNG radiographs written to a temporary folder and cached.
        source_size: side of those files (resized by the bundle's ``Resized`` to ``image_size``).
        image_size: training size.
        batch_size: images per batch.
        epochs: timed epochs of the fed loop.
        num_workers: loader workers (the bundle's default is 0).
        device: the training device.
        output: JSON file (None: do not write).
        quick: CI smoke mode: 8 images of 64 px at 64 px, batch 2, one epoch.
        threads: ``torch.set_num_threads`` (None keeps torch's default; 1 with ``quick``).
        amp: bf16 autocast in the step; default on for CUDA.
        seed: seed of the images, the shuffling and the step.

    Returns:
        The section: settings and one row per loader.
    """
    device, amp = _setup(device, threads, amp, quick)
    if quick:
        num_images, source_size, image_size, batch_size, epochs = 8, 64, 64, 2, 1
    options = {"num_workers": num_workers, "amp": amp, "seed": seed}
    rows = [
        loader_row(kind, num_images, source_size, image_size, batch_size, epochs, device, **options)
        for kind in _strings(loaders)
    ]
    title = f"2b. pretrain bundle loader (CacheDataset) feeding RadLAS tiny training steps ({device})"
    settings = {"device": device, "amp": amp, "epochs": epochs}
    return finish_section("data_loader", title, settings, rows, output, None, echo=print)


def localization(
    batch_sizes: Sequence[int] = (1, 16),
    image_size: int = 512,
    repeats: int = 5,
    device: str = "cpu",
    output: str | None = "benchmark.json",
    quick: bool = False,
    threads: int | None = None,
    amp: bool | None = None,
    channels_last: bool = False,
    memory: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """Lesion-map latency per image, RadLAS (preset tiny, the lesion_localization bundle's) vs. DenseNet121 + Grad-CAM.

    Args:
        batch_sizes: batch sizes to measure.
        image_size: input side (512, the bundle's inference size).
        repeats: interleaved timed rounds.
        device: ``"cpu"`` or a CUDA device.
        output: JSON file (None: do not write).
        quick: CI smoke mode: 64 px, batches 1 and 2, one repeat.
        threads: ``torch.set_num_threads`` (None keeps torch's default; 1 with ``quick``).
        amp: bf16 autocast on both sides; default on for CUDA.
        channels_last: channels-last memory format for both networks.
        memory: measure each side's peak memory.
        seed: seed of the images.

    Returns:
        The section: settings and one row per batch size.
    """
    device, amp = _setup(device, threads, amp, quick)
    batch_sizes = _ints(batch_sizes)
    if quick:
        batch_sizes, image_size, repeats = [1, 2], 64, 1
    options = {"amp": amp, "channels_last": channels_last, "memory": memory, "seed": seed}
    rows = [localization_row(b, image_size, repeats, device, **options) for b in batch_sizes]
    title = f"3. localization latency per image, RadLAS {LOCALIZATION_PRESET} vs. DenseNet121 + Grad-CAM ({device})"
    settings = {"device": device, "amp": amp, "channels_last": channels_last, "repeats": repeats}
    return finish_section("localization", title, settings, rows, output, None, echo=print)


def _target_rows(sections: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per measured ratio with its target, for the closing table of ``all``."""
    picks = {
        "pretrain_throughput": ("ratio_radlas_over_recipe", lambda r: f"{r['preset']} {r['size']} px"),
        "lesion_synthesis": ("synthesis_over_training", lambda r: f"{r['size']} px"),
        "localization": ("speedup", lambda r: f"{r['size']} px, batch {r['batch']}"),
        "data_loader": ("loader_headroom", lambda r: r["loader"]),
    }
    rows = []
    for name, (key, label) in picks.items():
        for row in sections.get(name, {}).get("results", []):
            rows.append(
                {
                    "section": name,
                    "case": label(row),
                    "ratio": row[key],
                    "target": TARGETS[name],
                    "met": row[key] >= TARGETS[name],
                }
            )
    return rows


def run_all(
    device: str = "cpu",
    output: str | None = "benchmark.json",
    quick: bool = False,
    repeats: int = 5,
    threads: int | None = None,
    amp: bool | None = None,
    memory: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """Every section with its defaults for ``device``, then one table of the ratios against their targets.

    Args:
        device: ``"cpu"`` or a CUDA device.
        output: JSON file (None: do not write).
        quick: CI smoke mode for every section.
        repeats: interleaved timed rounds of every timed section.
        threads: ``torch.set_num_threads`` (None keeps torch's default; 1 with ``quick``).
        amp: bf16 autocast; default on for CUDA, off on CPU.
        memory: measure peak memory.
        seed: seed of everything.

    Returns:
        ``{section name: section}`` plus ``targets``: the ratio rows.
    """
    common = {"device": device, "output": output, "quick": quick, "threads": threads, "amp": amp, "seed": seed}
    sections = {
        "pretrain_throughput": pretrain_throughput(repeats=repeats, memory=memory, **common),
        "lesion_synthesis": lesion_synthesis(repeats=repeats, memory=memory, **common),
        "data_loader": data_loader(**common),
        "localization": localization(repeats=repeats, memory=memory, **common),
    }
    targets = _target_rows(sections)
    print("\n" + format_table("targets: each ratio measured side by side in this run", targets))
    if output:
        write_json(output, "targets", {"results": targets})
    return {**sections, "targets": targets}


def _cli(section: Callable[..., dict[str, Any]]) -> Callable[..., None]:
    """Wrap a section for ``fire`` so that its returned dict is not printed again after the table."""

    @functools.wraps(section)
    def run(*args: Any, **kwargs: Any) -> None:
        section(*args, **kwargs)

    return run


if __name__ == "__main__":
    logging.basicConfig(level=os.environ.get("RADLAS_LOG_LEVEL", "WARNING"))
    fire.Fire(
        {
            "all": _cli(run_all),
            "pretrain_throughput": _cli(pretrain_throughput),
            "lesion_synthesis": _cli(lesion_synthesis),
            "data_loader": _cli(data_loader),
            "localization": _cli(localization),
        }
    )
