"""Which radiographs a bundle trains on: a datalist, a folder of radiographs, or the embedded synthetic data.

Bundles call :func:`resolve_datalist` once and :func:`load_screened_split` per split, so that every bundle treats
``dataset_dir`` / ``datalist`` the same way and bad files are skipped and reported the same way.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

__all__ = ["resolve_datalist", "load_screened_split", "is_normal", "inference_items"]

logger = logging.getLogger(__name__)


def resolve_datalist(
    dataset_dir: str | os.PathLike | None = None,
    datalist: str | os.PathLike | None = None,
    output_dir: str | os.PathLike = ".",
    *,
    synthetic_images: int = 200,
    image_size: int = 256,
    seed: int = 0,
    val_fraction: float = 0.1,
) -> str:
    """Decide the datalist JSON a run uses.

    Precedence: ``datalist`` (a datalist JSON) > ``dataset_dir`` (a folder of radiographs, searched recursively for
    DICOM / PNG / JPEG / NIfTI; a datalist JSON is written to ``output_dir/datalist.json`` so the run records what it
    used) > the embedded synthetic radiographs (generated once into the per-user cache, then reused).

    Args:
        dataset_dir: a folder of radiographs, or empty/None.
        datalist: a datalist JSON, or empty/None.
        output_dir: where a datalist built from ``dataset_dir`` is written.
        synthetic_images: how many synthetic radiographs the default dataset has.
        image_size: size of the synthetic radiographs.
        seed: seed of the synthetic dataset and of the folder split.
        val_fraction: validation share when splitting a folder (by patient).

    Returns:
        The path of the datalist JSON.

    Raises:
        FileNotFoundError: ``datalist`` or ``dataset_dir`` is given but does not exist.
        ValueError: ``dataset_dir`` holds no radiograph.
    """
    if datalist:
        path = Path(datalist).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"datalist {path} does not exist")
        logger.info("using datalist %s", path)
        return str(path)
    if dataset_dir:
        from radlas_monai.data.datalist import datalist_from_folder, write_datalist

        root = Path(dataset_dir).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"dataset_dir {root} is not a folder")
        built = datalist_from_folder(root, split=(1.0 - val_fraction, val_fraction, 0.0), seed=seed)
        count = sum(len(built.get(k, [])) for k in ("training", "validation", "test"))
        if count == 0:
            raise ValueError(f"no DICOM, PNG, JPEG or NIfTI radiograph found under {root}")
        # paths in a folder datalist are relative to the folder; make them absolute before moving the JSON away
        for split in ("training", "validation", "test"):
            for item in built.get(split, []):
                item["image"] = str((root / item["image"]).resolve())
        out = Path(output_dir) / "datalist.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        write_datalist(built, out)
        logger.info("built datalist %s from %d radiographs under %s", out, count, root)
        return str(out)
    from radlas_monai.data.synthetic import ensure_synthetic_dataset

    path = ensure_synthetic_dataset(num_images=synthetic_images, image_size=image_size, seed=seed)
    logger.info("no dataset_dir or datalist given: using the embedded synthetic radiographs, datalist %s", path)
    return str(path)


def load_screened_split(
    datalist: str | os.PathLike,
    split: str,
    output_dir: str | os.PathLike = ".",
    *,
    keys: tuple[str, ...] = ("image",),
    strict: bool = False,
    screen: bool = True,
    limit: int = 0,
    pool: str = "all",
) -> list[dict]:
    """Load one split of a datalist and leave out files that cannot be read, with a report.

    Args:
        datalist: path of the datalist JSON.
        split: ``"training"``, ``"validation"`` or ``"test"``.
        output_dir: where the skip report ``skipped_<split>.json`` is written.
        keys: item keys holding files to check.
        strict: fail at the first bad file instead of skipping it.
        screen: read every file once before training (set ``False`` only for very large, already-checked
            datasets: a file that cannot be read then stops the run when the dataset loads it).
        limit: keep only the first ``limit`` items (``0`` keeps all): for smoke runs.
        pool: ``"all"`` items, or only the ``"normal"`` ones (:func:`is_normal`: ``"normal": true``, or a ``label``
            with no finding), e.g. to pretrain only on images without findings.

    Returns:
        The readable items, in datalist order, with absolute paths.

    Raises:
        ValueError: for an unknown ``pool``, or ``pool="normal"`` when no item of the split is marked normal.
    """
    from radlas_monai.data.datalist import load_datalist

    if pool not in ("all", "normal"):
        raise ValueError(f"pool must be 'all' or 'normal', got {pool!r}")
    items = load_datalist(datalist, split=split)
    if pool == "normal":
        normal = [item for item in items if is_normal(item)]
        if items and not normal:
            raise ValueError(
                f"pool='normal' but none of the {len(items)} {split!r} items of {datalist} is marked normal: give "
                'normal images "normal": true or a label without findings (an empty findings cell in the CSV '
                "of scripts/build_datalist.py csv), or use pool='all'"
            )
        items = normal
    if limit:
        items = items[:limit]
    if not screen or not items:
        return items
    from radlas_monai.data.screening import screen_datalist

    report_path = Path(output_dir) / f"skipped_{split}.json"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    good, _ = screen_datalist(items, keys=keys, strict=strict, report_path=report_path)
    return good


def is_normal(item: dict) -> bool:
    """Whether a datalist item is marked normal: ``"normal"`` given (truthy), else a ``label`` with no finding.

    Items with neither (unlabelled) are not normal: a normal-only pool needs normals to be marked.
    """
    if "normal" in item:
        return bool(item["normal"])
    label = item.get("label")
    return label is not None and not any(float(v) for v in np.atleast_1d(np.asarray(label, dtype=float)))


def inference_items(
    dataset_dir: str | os.PathLike | None = None,
    datalist: str | os.PathLike | None = None,
    output_dir: str | os.PathLike = ".",
    *,
    split: str = "test",
    strict: bool = False,
    limit: int = 0,
    synthetic_images: int = 200,
    image_size: int = 256,
    seed: int = 0,
) -> list[dict]:
    """The radiographs an inference run reads, screened, with a skip report for files that cannot be read.

    Precedence: ``datalist`` (its ``split``) > every radiograph under ``dataset_dir`` > the ``split`` of the embedded
    synthetic dataset (so the bundle's inference runs with no data at all).

    Args:
        dataset_dir: a folder of radiographs (searched recursively), or empty/None.
        datalist: a datalist JSON, or empty/None.
        output_dir: where ``skipped_<split>.json`` is written.
        split: which split of a datalist (or of the synthetic dataset) to read.
        strict: fail at the first unreadable file instead of skipping it.
        limit: keep only the first ``limit`` items (``0`` keeps all).
        synthetic_images: size of the default synthetic dataset.
        image_size: image size of the default synthetic dataset.
        seed: seed of the default synthetic dataset.

    Returns:
        Items ``{"image": path, ...}`` that read cleanly.
    """
    if not datalist and dataset_dir:
        from radlas_monai.data.datalist import datalist_from_folder, write_datalist

        root = Path(dataset_dir).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"dataset_dir {root} is not a folder")
        built = datalist_from_folder(root, split=(0.0, 0.0, 1.0), seed=seed)
        for item in built.get("test", []):
            item["image"] = str((root / item["image"]).resolve())
        datalist = Path(output_dir) / "datalist.json"
        datalist.parent.mkdir(parents=True, exist_ok=True)
        write_datalist(built, datalist)
        split = "test"
    elif not datalist:
        datalist = resolve_datalist(
            None, None, output_dir, synthetic_images=synthetic_images, image_size=image_size, seed=seed
        )
    items = load_screened_split(datalist, split, output_dir, keys=("image",), strict=strict, limit=limit)
    if not items:
        raise ValueError(f"no readable radiograph in split {split!r} of {datalist}")
    return [{"image": item["image"]} for item in items]
