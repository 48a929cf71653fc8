"""NIH ChestX-ray14 -> datalist (Wang et al., "ChestX-ray8", CVPR 2017).

Real file layout (NIH Box release, or the Kaggle copy ``nih-chest-xrays/data``)::

    root/
      Data_Entry_2017.csv          Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,
                                   View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],
                                   (the bracketed names contain commas, so a CSV reader sees the columns
                                   "OriginalImage[Width", "Height]", "OriginalImagePixelSpacing[x", "y]" and, in
                                   the 2017 file, a trailing empty column); Data_Entry_2017_v2020.csv also works
      BBox_List_2017.csv           Image Index,Finding Label,Bbox [x,y,w,h],,,   (again split by the commas:
                                   columns 2..5 are x, y, w, h; trailing empty columns)
      train_val_list.txt           one image name per line (official, patient-disjoint from the test list)
      test_list.txt
      images/00000001_000.png      (NIH: images_001.tar.gz .. images_012.tar.gz all extract to images/)
      images_001/images/*.png      (Kaggle: one folder per archive)

Label policy: ``Finding Labels`` are ``|``-separated names (``No Finding`` = none), harmonized with
:func:`~radlas_monai.data.vocabulary.harmonize_finding`; ``label`` is multi-hot over the 14 findings
(:data:`~radlas_monai.data.vocabulary.CHESTXRAY14_FINDINGS`). Boxes of ``BBox_List_2017.csv`` (984 boxes on
880 images, 8 findings; its ``Infiltrate`` is ``Infiltration``) are ``[x, y, x + w, y + h]`` in the released
1024 x 1024 PNG grid and their findings are added to the image's findings. ``spacing`` is the original pixel
spacing rescaled to the 1024 grid (``OriginalImagePixelSpacing * OriginalImage size / 1024`` per axis).

Splits: the official ``test_list.txt`` -> ``"test"``; ``train_val_list.txt`` is split by ``Patient ID`` into
``"training"`` / ``"validation"``. Listed images missing on disk (a partial download) are left out with a warning.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from radlas_monai.data.adapters._common import find_table, harmonized, keep_existing, make_item, read_table
from radlas_monai.data.datalist import make_datalist, split_by_patient
from radlas_monai.data.vocabulary import CHESTXRAY14_FINDINGS

__all__ = ["build_datalist", "find_images"]

logger = logging.getLogger(__name__)

RELEASED_SIZE = 1024


def find_images(root: Path) -> dict[str, str]:
    """Map image name -> path relative to ``root`` for ``images/*.png`` and ``images_*/images/*.png``."""
    found: dict[str, str] = {}
    folders = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("images"))
    for folder in folders:
        for sub in (folder, folder / "images"):
            if not sub.is_dir():
                continue
            with os.scandir(sub) as entries:
                for entry in entries:
                    if entry.name.lower().endswith(".png") and entry.is_file():
                        found.setdefault(entry.name, Path(os.path.relpath(entry.path, root)).as_posix())
    return found


def _column(header: list[str], name: str, path: Path) -> int:
    if name not in header:
        raise KeyError(f"{path}: missing column {name!r}; the header is {header}")
    return header.index(name)


def _read_entries(path: Path) -> dict[str, dict]:
    header, rows = read_table(path)
    image_col = _column(header, "Image Index", path)
    labels_col = _column(header, "Finding Labels", path)
    patient_col = _column(header, "Patient ID", path)
    size_col = header.index("OriginalImage[Width") if "OriginalImage[Width" in header else None
    spacing_col = header.index("OriginalImagePixelSpacing[x") if "OriginalImagePixelSpacing[x" in header else None
    entries = {}
    for row in rows:
        spacing = None
        if size_col is not None and spacing_col is not None:
            width, height = float(row[size_col]), float(row[size_col + 1])
            sx, sy = float(row[spacing_col]), float(row[spacing_col + 1])
            spacing = [round(sy * height / RELEASED_SIZE, 6), round(sx * width / RELEASED_SIZE, 6)]
        names = [n for n in row[labels_col].split("|") if n.strip()]
        entries[row[image_col].strip()] = {
            "findings": harmonized(names),
            "patient": f"{int(row[patient_col]):08d}",
            "spacing": spacing,
        }
    return entries


def _read_boxes(path: Path) -> dict[str, list[tuple[list[float], str]]]:
    _, rows = read_table(path)  # header "Image Index,Finding Label,Bbox [x,y,w,h],,," is read by position
    boxes: dict[str, list[tuple[list[float], str]]] = {}
    for row in rows:
        x, y, w, h = (float(v) for v in row[2:6])
        finding = harmonized([row[1]])[0]
        box = [round(x, 3), round(y, 3), round(x + w, 3), round(y + h, 3)]
        boxes.setdefault(row[0].strip(), []).append((box, finding))
    return boxes


def _read_list(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


def build_datalist(
    root: str | os.PathLike,
    validation_fraction: float = 0.1,
    seed: int = 0,
    class_names: Sequence[str] = CHESTXRAY14_FINDINGS,
    require_images: bool = True,
) -> dict:
    """Build the ChestX-ray14 datalist (official test list; train_val split by patient).

    Args:
        root: the dataset folder (see the module docstring for its layout).
        validation_fraction: fraction of the train_val images (by patient) that go to ``"validation"``.
        seed: seed of the patient split.
        class_names: classes of ``label``.
        require_images: leave out listed images that are not on disk; ``False`` keeps them, with the path
            ``images/<name>`` when the file is not found.

    Returns:
        The datalist (paths relative to ``root``).

    Raises:
        FileNotFoundError: a table or list file is missing.
    """
    root = Path(root)
    entries = _read_entries(find_table(root, ["Data_Entry_2017.csv", "Data_Entry_2017_v2020.csv"], "ChestX-ray14"))
    box_file = root / "BBox_List_2017.csv"
    boxes = _read_boxes(box_file) if box_file.is_file() else {}
    if not box_file.is_file():
        logger.warning("ChestX-ray14: %s not found; the datalist has no boxes", box_file)
    lists = {
        key: _read_list(find_table(root, [name], "ChestX-ray14"))
        for key, name in (("train_val", "train_val_list.txt"), ("test", "test_list.txt"))
    }
    images = find_images(root)
    splits_in: dict[str, list[dict]] = {}
    for key, names in lists.items():
        items = []
        for name in names:
            entry = entries.get(name)
            if entry is None:
                logger.debug("ChestX-ray14: %s is listed but not in the data entry table", name)
                continue
            image_boxes = boxes.get(name, [])
            findings = harmonized([*entry["findings"], *(f for _, f in image_boxes)])
            items.append(make_item(images.get(name, f"images/{name}"), findings, class_names, entry["patient"],
                                   spacing=entry["spacing"], boxes=[b for b, _ in image_boxes],
                                   box_findings=[f for _, f in image_boxes]))  # fmt: skip
        splits_in[key] = keep_existing(items, root, "ChestX-ray14") if require_images else items
    train_val = split_by_patient(splits_in["train_val"], (1.0 - validation_fraction, validation_fraction), seed=seed)
    description = (
        "NIH ChestX-ray14: official test_list.txt as test; train_val_list.txt split by Patient ID "
        f"({1.0 - validation_fraction:g}/{validation_fraction:g}, seed {seed}); boxes from BBox_List_2017.csv "
        "in the 1024x1024 grid"
    )
    splits = {"training": train_val["training"], "validation": train_val["validation"], "test": splits_in["test"]}
    return make_datalist("ChestX-ray14", description, class_names, splits, seed=seed)
