"""Representation quality of each pretraining: linear-probe and fine-tune AUROC at 10 % and 100 % of labels (issue 4).

Usage::

    python scripts/compare_classification.py --dataset jsrt --image_size 128 --epochs 8 --output_dir /tmp/cmp_cls
    python scripts/compare_classification.py --dataset synthetic --output_dir /tmp/cmp_cls_syn
    python scripts/compare_classification.py --quick --output_dir /tmp/cmp_cls_quick       # CI smoke run

Encoders (same ViT size, each pretrained on the training images with the same budget by
:mod:`radlas_monai.baselines.pretrain_variants`, reusing the cache that ``compare_localization.py`` fills):
``radlas`` (Task I + II), ``reconstruction_only`` (Task I), ``vit_autoenc`` (MONAI's recipe, its ViT loaded into a
:class:`~radlas_monai.networks.RadLASEncoder`) and ``random`` (the same encoder, seeded initialisation).

One protocol for every encoder, on the global feature (mean patch token, ``forward_pooled``), so that the rows
differ only in the pretraining:

- ``linear_probe``: frozen encoder, features standardised on the training labels, a linear layer trained with
  full-batch AdamW (BCE, ``probe_steps`` steps);
- ``finetune``: encoder + linear layer trained end to end (AdamW, ``finetune_lr``, ``finetune_epochs`` epochs,
  the budget's batch size).

``--protocol radlas_classifier`` instead runs the finetune bundle's recipe
(:func:`radlas_monai.engines.finetune_recipe.train_and_evaluate_classifier`: ``RadLASClassifier`` with evidence
pooling, ``linear_probe`` / ``full`` modes, ``finetune_epochs`` epochs, model selection on the labelled training
subset, never on the evaluation images); RadLAS and reconstruction-only load ``pretrained_parts="all"`` (their
grounding head too), ViTAutoEnc ``"encoder"``, random ``from_scratch``. AUROC from its report, without CI.

Labels: ``label_fractions`` of the training *patients*, drawn with
:func:`~radlas_monai.data.datalist.sample_label_fraction` separately among normal and abnormal patients (so both
classes are present). AUROC: mean over classes with positives and negatives in the evaluation images, with a
percentile bootstrap 95 % CI over evaluation images.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import fire
import numpy as np
import torch
import torch.nn as nn

from radlas_monai.baselines import pretrain_variants as pv

logger = logging.getLogger("compare_classification")

ENCODERS = ("radlas", "reconstruction_only", "vit_autoenc", "random")
MODES = ("linear_probe", "finetune")


def pretrained_encoders(
    data: pv.ExperimentData, budget: pv.PretrainBudget, work_dir: Path, device: str, force: bool
) -> dict[str, tuple[str | None, Any]]:
    """``name -> (encoder checkpoint or None, TrainedModel or None)`` for every compared encoder."""
    images, masks = data.train_images, data.train_lung_masks
    radlas = pv.pretrain_radlas(images, budget, work_dir, lung_masks=masks, device=device, force=force)
    recon = pv.pretrain_reconstruction_only(images, budget, work_dir, lung_masks=masks, device=device, force=force)
    vit = pv.pretrain_vit_autoenc(images, budget, work_dir, device=device, force=force)
    return {
        "radlas": (str(radlas.checkpoint), radlas),
        "reconstruction_only": (str(recon.checkpoint), recon),
        "vit_autoenc": (str(vit.checkpoint.parent / "encoder.pt"), vit),
        "random": (None, None),
    }


def build_encoder(checkpoint: str | None, budget: pv.PretrainBudget) -> nn.Module:
    """A :class:`RadLASEncoder` of the budget's preset, loaded strictly from ``checkpoint`` (seeded random if None)."""
    from radlas_monai.networks.encoder import RadLASEncoder

    encoder = pv.seeded_build(budget.seed, lambda: RadLASEncoder.from_preset(budget.preset, img_size=budget.image_size))
    if checkpoint is not None:
        encoder.load_from_pretrain(checkpoint, strict=True)
    return encoder


def label_subset(items: Sequence[dict], fraction: float, seed: int) -> list[int]:
    """Indices of the training items whose labels are used: ``fraction`` of normal and of abnormal patients."""
    from radlas_monai.data.datalist import sample_label_fraction

    keep: set[int] = set()
    for abnormal in (False, True):
        group = [dict(item, _index=i) for i, item in enumerate(items) if bool(sum(item.get("label") or [])) == abnormal]
        if group:
            keep.update(item["_index"] for item in sample_label_fraction(group, fraction, seed=seed))
    return sorted(keep)


def mean_auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean AUROC over classes with both labels present (``nan`` when none)."""
    from radlas_monai.metrics.classification import roc_auc_per_class

    values = roc_auc_per_class(scores, labels)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def auroc_with_ci(scores: np.ndarray, labels: np.ndarray, resamples: int, seed: int) -> dict[str, float]:
    """Mean AUROC and its percentile bootstrap 95 % CI over evaluation images."""
    from radlas_monai.metrics.bootstrap import bootstrap_weights, percentile_interval

    value = mean_auroc(scores, labels)
    if resamples <= 0:
        return {"auroc": value, "ci_low": float("nan"), "ci_high": float("nan")}
    samples = []
    for weights in bootstrap_weights(len(scores), resamples, seed=seed):
        index = np.repeat(np.arange(len(scores)), weights.astype(int))
        samples.append(mean_auroc(scores[index], labels[index]))
    finite = [s for s in samples if np.isfinite(s)]
    low, high = percentile_interval(finite) if finite else (float("nan"), float("nan"))
    return {"auroc": value, "ci_low": low, "ci_high": high}


def pooled_features(encoder: nn.Module, images: torch.Tensor, device: str, batch: int = 32) -> torch.Tensor:
    """Frozen global features ``(N, D)``."""
    encoder = encoder.to(device).eval()
    with torch.no_grad():
        return torch.cat(
            [encoder.forward_pooled(images[i : i + batch].to(device)).cpu() for i in range(0, len(images), batch)]
        )


def linear_probe(
    train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, steps: int, seed: int
) -> np.ndarray:
    """Full-batch AdamW logistic regression on standardised features; returns test probabilities ``(N, K)``."""
    mean, std = train_x.mean(0, keepdim=True), train_x.std(0, keepdim=True).clamp_min(1e-6)
    head = pv.seeded_build(seed, lambda: nn.Linear(train_x.shape[1], train_y.shape[1]))
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-2, weight_decay=1e-2)
    criterion = nn.BCEWithLogitsLoss()
    x = (train_x - mean) / std
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        criterion(head(x), train_y).backward()
        optimizer.step()
    with torch.no_grad():
        return torch.sigmoid(head((test_x - mean) / std)).numpy()


class EncoderClassifier(nn.Module):
    """Encoder + linear layer on the mean token: ``(B, 1, H, W) -> logits (B, K)``."""

    def __init__(self, encoder: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.num_features, num_classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder.forward_pooled(image))


def finetune(
    encoder: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    test_images: torch.Tensor,
    budget: pv.PretrainBudget,
    device: str,
) -> np.ndarray:
    """End-to-end fine-tuning with the budget's schedule; returns test probabilities ``(N, K)``."""
    model = pv.seeded_build(budget.seed, lambda: EncoderClassifier(encoder, labels.shape[1])).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=budget.learning_rate, weight_decay=budget.weight_decay)
    criterion = nn.BCEWithLogitsLoss()

    def step(index: torch.Tensor) -> float:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(images[index].to(device)), labels[index].to(device))
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    pv.fit_minibatches(step, len(images), optimizer, budget, name="finetune")
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(test_images[i : i + 32].to(device)).cpu() for i in range(0, len(test_images), 32)])
    return torch.sigmoid(logits).numpy()


def recipe_auroc(
    checkpoint: str | None,
    name: str,
    mode: str,
    data: pv.ExperimentData,
    index: torch.Tensor,
    tune_budget: pv.PretrainBudget,
    device: str,
) -> dict[str, float]:
    """AUROC of the finetune bundle's recipe on the evaluation images (``--protocol radlas_classifier``)."""
    from radlas_monai.engines.finetune_recipe import train_and_evaluate_classifier

    labelled = [data.train_items[i] for i in index.tolist()]
    report = train_and_evaluate_classifier(
        labelled,
        labelled,  # model selection on the labelled training subset: the evaluation images stay unseen
        data.test_items,
        data.class_names,
        checkpoint,
        pretrained_parts="encoder" if name == "vit_autoenc" else "all",
        finetune_mode="linear_probe" if mode == "linear_probe" else "full",
        epochs=tune_budget.epochs,
        from_scratch=checkpoint is None,
        preset=tune_budget.preset,
        image_size=tune_budget.image_size,
        batch_size=tune_budget.batch_size,
        device=device,
        seed=tune_budget.seed,
    )
    return {"auroc": float(report["mean"]["auroc"]), "ci_low": float("nan"), "ci_high": float("nan")}


def format_table(rows: list[dict[str, Any]], fractions: Sequence[float]) -> str:
    """Markdown: one row per encoder, one column per (mode, label fraction), ``AUROC [95 % CI]``."""
    columns = [(mode, f) for mode in MODES for f in fractions]
    header = "| encoder | " + " | ".join(f"{m} {f:.0%} labels" for m, f in columns) + " |"
    lines = [header, "|---|" + "---|" * len(columns)]
    for encoder in dict.fromkeys(r["encoder"] for r in rows):
        cells = []
        for mode, fraction in columns:
            row = next(r for r in rows if r["encoder"] == encoder and r["mode"] == mode and r["fraction"] == fraction)
            ci = f" [{row['ci_low']:.3f}, {row['ci_high']:.3f}]" if np.isfinite(row["ci_low"]) else ""
            cells.append(f"{row['auroc']:.3f}{ci}" if np.isfinite(row["auroc"]) else "n/a")
        lines.append(f"| {encoder} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(
    dataset: str = "synthetic",
    output_dir: str = "comparison_classification",
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
    label_fractions: Sequence[float] = (0.1, 1.0),
    finetune_epochs: int | None = None,
    finetune_lr: float = 1e-4,
    probe_steps: int = 300,
    bootstrap: int = 1000,
    protocol: str = "global_feature",
    force: bool = False,
) -> dict[str, Any]:
    """Pretrain (or reuse) every encoder, probe and fine-tune it at each label fraction, write the AUROC table.

    Args:
        dataset: ``synthetic`` or ``jsrt``.
        output_dir: where ``comparison.md`` / ``comparison.json`` go.
        quick: tiny CI run (64 px, 1 epoch, 12 training / 8 evaluation images, 1 fine-tune epoch).
        image_size, epochs, batch_size, learning_rate, preset, seed: the pretraining budget (as
            ``compare_localization.py``; same values reuse the same checkpoints).
        device: ``cpu`` or ``cuda``.
        work_dir: checkpoint cache (default ``~/.cache/radlas_monai/experiments/<dataset>[_quick]``).
        jsrt_root: the JSRT nodule folder.
        label_fractions: fractions of training patients whose labels are used.
        finetune_epochs: fine-tuning epochs (default 5; 1 with ``quick``).
        finetune_lr: fine-tuning AdamW learning rate.
        probe_steps: full-batch steps of the linear probe.
        bootstrap: bootstrap resamples of the AUROC CIs (0: none).
        protocol: ``global_feature`` (linear layer on the mean token, every encoder alike) or
            ``radlas_classifier`` (the finetune bundle's recipe).
        force: retrain the pretrainings even when cached.

    Returns:
        The report (also in ``comparison.json``).
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stdout)
    if protocol not in ("global_feature", "radlas_classifier"):
        raise ValueError(f"protocol must be 'global_feature' or 'radlas_classifier', got {protocol!r}")
    start = time.perf_counter()
    budget = pv.PretrainBudget(
        image_size=image_size or (64 if quick else 256),
        preset=preset,
        epochs=epochs or (1 if quick else 20),
        batch_size=batch_size or (4 if quick else 16),
        learning_rate=learning_rate,
        seed=seed,
    )
    fractions = [
        float(f) for f in (label_fractions if isinstance(label_fractions, (list, tuple)) else [label_fractions])
    ]
    tune_budget = pv.PretrainBudget(
        **{**budget.to_dict(), "epochs": finetune_epochs or (1 if quick else 5), "learning_rate": finetune_lr}
    )
    folder = Path(work_dir) if work_dir else pv.default_work_dir(dataset + ("_quick" if quick else ""))
    data = pv.prepare_experiment_data(
        dataset, budget.image_size, quick=quick, jsrt_root=jsrt_root, seed=seed, synthetic_images=24 if quick else 200
    )
    encoders = pretrained_encoders(data, budget, folder, device, force)
    test_labels = data.test_labels.numpy()
    rows = []
    for name, (checkpoint, _) in encoders.items():
        features = {}
        for fraction in fractions:
            index = torch.tensor(label_subset(data.train_items, fraction, seed))
            images, labels = data.train_images[index], data.train_labels[index]
            for mode in MODES:
                logger.info("%s / %s / %.0f %% labels (%d images)", name, mode, 100 * fraction, len(index))
                if protocol == "radlas_classifier":
                    result = recipe_auroc(checkpoint, name, mode, data, index, tune_budget, device)
                    rows.append(
                        {"encoder": name, "mode": mode, "fraction": fraction, "n_labelled": len(index), **result}
                    )
                    logger.info("  AUROC %.3f", result["auroc"])
                    continue
                if mode == "linear_probe":
                    if not features:
                        encoder = build_encoder(checkpoint, budget)
                        features = {
                            "train": pooled_features(encoder, data.train_images, device),
                            "test": pooled_features(encoder, data.test_images, device),
                        }
                    scores = linear_probe(features["train"][index], labels, features["test"], probe_steps, seed)
                else:
                    scores = finetune(
                        build_encoder(checkpoint, budget), images, labels, data.test_images, tune_budget, device
                    )
                result = auroc_with_ci(scores, test_labels, 20 if quick else bootstrap, seed)
                rows.append({"encoder": name, "mode": mode, "fraction": fraction, "n_labelled": len(index), **result})
                logger.info("  AUROC %.3f [%.3f, %.3f]", result["auroc"], result["ci_low"], result["ci_high"])
    table = format_table(rows, fractions)
    report = {
        "dataset": dataset,
        "command": "python scripts/compare_classification.py " + shlex.join(sys.argv[1:]),
        "data": data.description,
        "class_names": data.class_names,
        "n_train_images": len(data.train_items),
        "n_eval_images": len(data.test_items),
        "pretrain_budget": budget.to_dict(),
        "finetune_budget": tune_budget.to_dict(),
        "probe_steps": probe_steps,
        "protocol": protocol,
        "encoders": {k: (v[0] or "random initialisation (seeded)") for k, v in encoders.items()},
        "rows": rows,
        "table_markdown": table,
        "wall_seconds": round(time.perf_counter() - start, 1),
    }
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    (out / "comparison.md").write_text(
        f"# Classification comparison ({dataset}, protocol {protocol})\n\n"
        f"Command: `{report['command']}`\n\nData: {data.description}; "
        f"AUROC on {len(data.test_items)} evaluation images (mean over classes, 95 % bootstrap CI).\n\n"
        f"Pretraining budget: `{json.dumps(budget.to_dict())}`; fine-tuning: {tune_budget.epochs} epochs, "
        f"lr {finetune_lr}; linear probe: {probe_steps} full-batch steps.\n\n{table}"
    )
    print(table, flush=True)
    return report


if __name__ == "__main__":
    fire.Fire(main, serialize=lambda report: None)  # the table is printed; the report is in comparison.json
