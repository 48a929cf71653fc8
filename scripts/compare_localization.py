"""Localization baselines side by side, same data and budget: one command, one table (issue 5).

Usage::

    python scripts/compare_localization.py --dataset jsrt --image_size 128 --epochs 10 --output_dir /tmp/cmp_loc
    python scripts/compare_localization.py --dataset synthetic --output_dir /tmp/cmp_loc_syn
    python scripts/compare_localization.py --quick --output_dir /tmp/cmp_loc_quick        # CI smoke run

Every method is trained on the *training* images only (:mod:`radlas_monai.baselines.pretrain_variants`, cached
under ``--work_dir``) and scored on the held-out evaluation images by
:func:`radlas_monai.engines.localization_eval.evaluate_localization`:

- ``radlas``: RadLAS (Task I + II) lesion map (full-resolution conv restorer + U-Net grounding, trained on
  ``--crop_size`` crops);
- ``reconstruction_only``: RadLAS pretrained without Task II, its lesion map (NSA-style: same network and Poisson
  patches, no contrastive task);
- ``radlas_previous_recipe``: the first RadLAS recipe (restorer on ViT tokens, small half-resolution grounding head,
  whole images), same budget;
- ``log_blob``: training-free multi-scale Laplacian-of-Gaussian blob filter;
- ``random_lung_point``: chance, a random pixel of the default lung fields;
- ``vit_autoenc_residual``: MONAI's ViTAutoEnc recipe, smoothed ``|x - recon|`` (not re-normalised per image, so
  the map maximum still ranks images);
- ``normal_ae_residual``: conv autoencoder trained on the normal training images, smoothed ``|x - recon|``;
- ``densenet121_gradcam``: supervised DenseNet121 (training labels), MONAI Grad-CAM scaled by the class
  probability (``max_k p_k * cam_k``).

Writes ``comparison.md`` / ``comparison.json`` (table, command, what was trained on what) next to the harness's
``metrics.json`` / ``metrics.md`` / ``froc.png``.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fire
import torch

from radlas_monai.baselines import pretrain_variants as pv
from radlas_monai.networks.grounding import gaussian_smooth

logger = logging.getLogger("compare_localization")

METHOD_NAMES = (
    "radlas",
    "reconstruction_only",
    "radlas_previous_recipe",
    "vit_autoenc_residual",
    "normal_ae_residual",
    "densenet121_gradcam",
    "log_blob",
    "random_lung_point",
)
#: the trained model each method needs (training-free methods need none)
TRAINED_BY_METHOD = {
    "radlas": "radlas",
    "reconstruction_only": "reconstruction_only",
    "radlas_previous_recipe": "radlas_previous_recipe",
    "vit_autoenc_residual": "vit_autoenc",
    "normal_ae_residual": "normal_autoencoder",
    "densenet121_gradcam": "densenet121",
}


def residual_map(network: torch.nn.Module, smooth: float = 2.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """``image -> smoothed |image - recon|`` for a ``ViTAutoEnc`` (its output is ``(recon, hidden_states)``)."""

    def run(image: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            recon = network(image)[0].float()
        return gaussian_smooth((image.float() - recon).abs(), smooth).clamp(0.0, 1.0)

    return run


def train_all(
    data: pv.ExperimentData,
    budget: pv.PretrainBudget,
    work_dir: Path,
    device: str,
    force: bool,
    methods: tuple[str, ...] = METHOD_NAMES,
    crop_size: int | None = None,
    loss_kwargs: dict[str, Any] | None = None,
    pool: str = "all",
) -> dict:
    """Train (or reuse) the models the chosen ``methods`` need on the training images; ``name -> TrainedModel``.

    ``loss_kwargs`` (default :data:`~radlas_monai.baselines.pretrain_variants.RECIPE_LOSS`) is the RadLAS loss of
    ``radlas`` and ``reconstruction_only``; ``pool`` (``"all"`` or ``"normal"``) their pretraining images (every
    training image, or only those labelled normal)."""
    images, masks, labels = data.train_images, data.train_lung_masks, data.train_labels
    ssl_images, ssl_masks = images, masks
    if pool == "normal":
        from radlas_monai.engines.data import is_normal  # the pretrain bundle's `pool: normal` rule

        normal = torch.tensor([is_normal(item) for item in data.train_items])
        ssl_images, ssl_masks = images[normal], (masks[normal] if masks is not None else None)
    elif pool != "all":
        raise ValueError(f"pool must be 'all' or 'normal', got {pool!r}")
    common: dict[str, Any] = {"device": device, "force": force}
    recipe: dict[str, Any] = {
        "crop_size": crop_size,
        "loss_kwargs": pv.RECIPE_LOSS if loss_kwargs is None else loss_kwargs,
    }
    needed = {TRAINED_BY_METHOD[m] for m in methods if m in TRAINED_BY_METHOD}
    jobs: dict[str, Callable[[], pv.TrainedModel]] = {
        "radlas": lambda: pv.pretrain_radlas(ssl_images, budget, work_dir, lung_masks=ssl_masks, **recipe, **common),
        "reconstruction_only": lambda: pv.pretrain_reconstruction_only(
            ssl_images, budget, work_dir, lung_masks=ssl_masks, **recipe, **common
        ),
        "radlas_previous_recipe": lambda: pv.pretrain_radlas(
            images,
            budget,
            work_dir,
            lung_masks=masks,
            method="radlas_previous_recipe",
            network_kwargs=pv.PREVIOUS_RECIPE,
            **common,
        ),
        "vit_autoenc": lambda: pv.pretrain_vit_autoenc(images, budget, work_dir, **common),
        "normal_autoencoder": lambda: pv.train_normal_autoencoder_variant(images, labels, budget, work_dir, **common),
        "densenet121": lambda: pv.train_densenet121_variant(images, labels, budget, work_dir, **common),
    }
    return {name: job() for name, job in jobs.items() if name in needed}


def build_methods(trained: dict, budget: pv.PretrainBudget, device: str, methods: tuple[str, ...]) -> dict:
    """The localization callables ``image (B, 1, S, S) -> map (B, 1, S, S)`` of the chosen ``methods``."""
    from radlas_monai.baselines.gradcam import GradCAMMap, build_densenet121
    from radlas_monai.baselines.normal_autoencoder import NormalAutoencoderMap, build_normal_autoencoder
    from radlas_monai.baselines.training_free import LoGBlobMap, RandomLungPointMap
    from radlas_monai.handlers.checkpoint_io import load_network_weights
    from radlas_monai.networks import RadLASLesionMap

    def radlas(name: str, network_kwargs: dict | None = None) -> Callable:
        return RadLASLesionMap(pv.load_radlas(trained[name].checkpoint, budget, device, network_kwargs)).eval()

    def densenet() -> Callable:
        network = build_densenet121(int(trained["densenet121"].settings["num_classes"]))
        network = load_network_weights(network, trained["densenet121"].checkpoint).to(device).eval()
        return GradCAMMap(network, class_index=None, scale_by_probability=True)

    def normal_ae() -> Callable:
        network = load_network_weights(build_normal_autoencoder(), trained["normal_autoencoder"].checkpoint)
        return NormalAutoencoderMap(network.to(device).eval())

    scale = budget.image_size / 256  # nodule radii: 2.5-9 px at 256 px (0.7 mm at 512 px: 3.5-13 mm)
    builders: dict[str, Callable[[], Callable]] = {
        "radlas": lambda: radlas("radlas"),
        "reconstruction_only": lambda: radlas("reconstruction_only"),
        "radlas_previous_recipe": lambda: radlas("radlas_previous_recipe", pv.PREVIOUS_RECIPE),
        "vit_autoenc_residual": lambda: residual_map(
            pv.load_vit_autoenc(trained["vit_autoenc"].checkpoint, budget, device)
        ),
        "normal_ae_residual": normal_ae,
        "densenet121_gradcam": densenet,
        "log_blob": lambda: LoGBlobMap(radii_px=tuple(r * scale for r in (2.5, 4.0, 6.0, 9.0))),
        "random_lung_point": lambda: RandomLungPointMap(seed=0, sigma=max(1.0, 2.0 * scale)),
    }
    return {name: builders[name]() for name in methods}


def provenance(data: pv.ExperimentData, trained: dict, pool: str = "all") -> list[dict[str, Any]]:
    """What each method was trained on (and for how long), for the report."""
    n_train, n_normal = len(data.train_items), int((data.train_labels.sum(dim=1) == 0).sum())
    ssl = f"{n_train} training images, no labels" if pool == "all" else f"the {n_normal} normal training images"
    what = {
        "radlas": f"{ssl} (synthetic lesions, Task I + II)",
        "reconstruction_only": f"{ssl} (synthetic lesions, Task I only)",
        "radlas_previous_recipe": f"{n_train} training images, no labels (first RadLAS recipe, Task I + II)",
        "vit_autoenc": f"{n_train} training images, no labels (MONAI ViTAutoEnc recipe)",
        "normal_autoencoder": f"the {n_normal} normal training images, no labels beyond 'normal'",
        "densenet121": f"{n_train} training images with their image-level labels ({', '.join(data.class_names)})",
    }
    return [
        {
            "model": name,
            "trained_on": what[name],
            "checkpoint": str(model.checkpoint),
            "settings_hash": model.settings.get("settings_hash") or pv.settings_hash(model.settings),
            "train_seconds": model.seconds,
            "reused": model.reused,
            "final_loss": model.history[-1] if model.history else None,
        }
        for name, model in trained.items()
    ]


def write_report(output_dir: Path, report: dict[str, Any], table: str) -> None:
    """``comparison.json`` and ``comparison.md``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "comparison.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    lines = [
        f"# Localization comparison ({report['dataset']})\n",
        f"Command: `{report['command']}`\n",
        f"Data: {report['data']}; {report['n_eval_images']} evaluation images.\n",
        f"Budget (every model): `{json.dumps(report['budget'])}`\n",
        table,
        "\n| model | trained on | train s | reused |\n|---|---|---|---|",
        *[f"| {p['model']} | {p['trained_on']} | {p['train_seconds']} | {p['reused']} |" for p in report["trained"]],
        "",
    ]
    (output_dir / "comparison.md").write_text("\n".join(lines))


def main(
    dataset: str = "synthetic",
    output_dir: str = "comparison_localization",
    quick: bool = False,
    image_size: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float = 3e-4,
    preset: str = "tiny",
    seed: int = 0,
    device: str = "cpu",
    work_dir: str | None = None,
    jsrt_root: str = str(pv.JSRT_ROOT),
    bootstrap: int = 200,
    force: bool = False,
    crop_size: int | None = None,
    methods: str | tuple[str, ...] | list[str] = METHOD_NAMES,
    model_seed: int | None = None,
    validation: bool = False,
    loss: dict[str, Any] | None = None,
    pool: str = "all",
) -> dict[str, Any]:
    """Train every compared model on the training split and score their maps on the evaluation split.

    Args:
        dataset: ``synthetic`` or ``jsrt``.
        output_dir: where the reports go.
        quick: tiny CI run (64 px, 1 epoch, 12 training / 8 evaluation images, 20 bootstrap resamples).
        image_size: side in pixels (default 256; 64 with ``quick``).
        epochs: epochs of every training (default 20; 1 with ``quick``).
        batch_size: batch of every training (default 16; 4 with ``quick``).
        learning_rate: AdamW learning rate of every training.
        preset: RadLAS / ViTAutoEnc encoder size.
        seed: seed of the split, initialisations and batch order.
        model_seed: seed of the initialisations, batch order and synthesis only (default ``seed``): other training
            seeds on the same split.
        device: ``cpu`` or ``cuda``.
        work_dir: checkpoint cache (default ``~/.cache/radlas_monai/experiments/<dataset>[_quick]``).
        jsrt_root: the JSRT nodule folder.
        bootstrap: bootstrap resamples of the 95 % CIs.
        force: retrain even when a cached checkpoint matches.
        crop_size: RadLAS trains its convolutional path on crops of this side (default: half the image side from
            256 px up, whole images below).
        methods: the methods to compare (default: all of ``METHOD_NAMES``), e.g. ``"[radlas,log_blob]"``.
        validation: JSRT only: train on the fit part of the training half and score its validation part (choosing
            settings without the test half; see :func:`~radlas_monai.baselines.experiment_data.jsrt_split`).
        loss: RadLAS loss settings replacing the recipe's (``RECIPE_LOSS``), e.g.
            ``'{"bce_weight": 10, "focal_gamma": 2, "outside_weight": 5}'``.
        pool: the images RadLAS (and reconstruction-only) pretrain on: ``"all"`` training images (mixed: findings
            are trained as healthy) or only the ``"normal"`` ones (same epochs, so fewer steps).

    Returns:
        The report dictionary (also written to ``comparison.json``).
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stdout)
    from radlas_monai.engines.localization_eval import evaluate_localization, method_table

    start = time.perf_counter()
    budget = pv.PretrainBudget(
        image_size=image_size or (64 if quick else 256),
        preset=preset,
        epochs=epochs or (1 if quick else 20),
        batch_size=batch_size or (4 if quick else 16),
        learning_rate=learning_rate,
        seed=seed if model_seed is None else model_seed,
    )
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    unknown = sorted(set(methods) - set(METHOD_NAMES))
    if unknown:
        raise ValueError(f"unknown methods {unknown}; known: {list(METHOD_NAMES)}")
    if crop_size is None and budget.image_size >= 256:
        crop_size = budget.image_size // 2
    folder = Path(work_dir) if work_dir else pv.default_work_dir(dataset + ("_quick" if quick else ""))
    data = pv.prepare_experiment_data(
        dataset,
        budget.image_size,
        quick=quick,
        jsrt_root=jsrt_root,
        seed=seed,
        synthetic_images=24 if quick else 200,
        validation=validation,
    )
    loss_kwargs = dict(pv.RECIPE_LOSS if loss is None else loss)
    logger.info("%s: %d training / %d evaluation images", data.description, len(data.train_items), len(data.test_items))
    trained = train_all(data, budget, folder, device, force, methods, crop_size, loss_kwargs, pool)
    callables = build_methods(trained, budget, device, methods)
    out = Path(output_dir)
    results = evaluate_localization(
        callables,
        data.test_items,
        budget.image_size,
        out,
        device=device,
        bootstrap=20 if quick else bootstrap,
        seed=seed,
    )
    table = method_table(results)
    report = {
        "dataset": dataset,
        "command": "python scripts/compare_localization.py " + shlex.join(sys.argv[1:]),
        "data": data.description,
        "n_train_images": len(data.train_items),
        "n_eval_images": len(data.test_items),
        "budget": budget.to_dict(),
        "radlas_crop_size": crop_size,
        "radlas_loss": loss_kwargs,
        "validation_run": validation,
        "radlas_pool": pool,
        "trained": provenance(data, trained, pool),
        "table_markdown": table,
        "results": results,
        "wall_seconds": round(time.perf_counter() - start, 1),
    }
    write_report(out, report, table)
    print(table, flush=True)
    logger.info("comparison written to %s", out / "comparison.md")
    return report


if __name__ == "__main__":
    fire.Fire(main, serialize=lambda report: None)  # the table is printed; the report is in comparison.json
