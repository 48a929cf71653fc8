"""VinDr-CXR -> datalist (Nguyen et al., "VinDr-CXR", Scientific Data 2022).

Two real layouts are read.

PhysioNet release (``root`` = ``physionet.org/files/vindr-cxr/1.0.0``)::

    root/
      annotations/annotations_train.csv    image_id,rad_id,class_name,x_min,y_min,x_max,y_max
                                           (3 of 17 radiologists per image; one row per box, and one row with
                                           blank coordinates per reader who saw "No finding")
      annotations/annotations_test.csv     same columns; the 5-radiologist consensus of the test set
      annotations/image_labels_train.csv   image_id,rad_id,<28 labels: 22 local + 6 global>   (0/1, per reader)
      annotations/image_labels_test.csv    image_id,<28 labels>   ("Other disease" instead of "Other diseases")
      train/<image_id>.dicom               (15,000 images)
      test/<image_id>.dicom                (3,000 images)

Kaggle "VinBigData" competition (``root`` = ``vinbigdata-chest-xray-abnormalities-detection``)::

    root/
      train.csv      image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max   (14 local classes + "No finding")
      train/<image_id>.dicom, test/<image_id>.dicom   (test labels were never released: no "test" split)

Label policy: class names are harmonized (``Pleural effusion`` -> ``Effusion``, ``ILD`` -> ``Interstitial Lung
Disease``, ``Rib fracture`` / ``Clavicle fracture`` -> ``Fracture``, ...); the combined ``Nodule/Mass`` class
becomes ``nodule_mass_as`` (``Nodule`` by default: VinDr does not separate the two). Labels without a vocabulary
entry (``Enlarged PA``, ``Lung cavity``, ``Lung cyst``, ``Mediastinal shift`` and the diagnoses ``COPD``,
``Lung tumor``, ``Tuberculosis``, ``Other disease(s)``) are left out. ``No finding`` = none.

Several radiologists per training image (``box_policy``):

* ``"union"``: every reader's boxes (duplicates included) and every finding any reader reported;
* ``"consensus"``: a finding counts when at least ``min_readers`` readers reported it; boxes of one finding
  from different readers are clustered greedily (a box joins the cluster whose mean box it overlaps with
  IoU >= ``iou_threshold`` and that has no box of the same reader yet), and clusters with ``min_readers``
  readers become their mean box.

The test annotations are already a consensus and are used as they are. VinDr-CXR has no patient ids (they
were removed in de-identification), so each image is its own patient; the official training images are
split into training / validation, the official test set is ``"test"``. Boxes are in the DICOM pixel grid.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from radlas_monai.data.adapters._common import keep_existing, make_item, parse_float, read_records
from radlas_monai.data.datalist import make_datalist, split_by_patient
from radlas_monai.data.vocabulary import NO_FINDING, harmonize_finding

__all__ = ["VINDR_CLASSES", "build_datalist", "vindr_finding", "consensus_boxes"]

logger = logging.getLogger(__name__)

_UNMAPPED = {"enlarged pa", "lung cavity", "lung cyst", "mediastinal shift", "copd", "lung tumor", "tuberculosis",
             "other disease", "other diseases"}  # fmt: skip
_NOT_LABELS = {"image_id", "rad_id", "rad_ID", "class_id"}


def vindr_finding(name: str, nodule_mass_as: str = "Nodule") -> str | None:
    """The project finding of a VinDr label name, :data:`NO_FINDING`, or ``None`` for labels left out."""
    key = " ".join(name.strip().lower().split())
    if key == "nodule/mass":
        return harmonize_finding(nodule_mass_as)
    if key in _UNMAPPED:
        return None
    try:
        return harmonize_finding(name)
    except KeyError:
        _warn_unknown(name)
        return None


@functools.cache
def _warn_unknown(name: str) -> None:  # once per name
    logger.warning("VinDr-CXR label %r has no vocabulary entry; left out", name)


#: The 14 local findings of the Kaggle release (harmonized): the default classes.
VINDR_CLASSES: tuple[str, ...] = tuple(
    vindr_finding(n)  # type: ignore[misc]
    for n in ("Aortic enlargement", "Atelectasis", "Calcification", "Cardiomegaly", "Consolidation", "ILD",
              "Infiltration", "Lung Opacity", "Nodule/Mass", "Other lesion", "Pleural effusion",
              "Pleural thickening", "Pneumothorax", "Pulmonary fibrosis")
)  # fmt: skip


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _mean_box(boxes: list[list[float]]) -> list[float]:
    return [round(sum(b[k] for b in boxes) / len(boxes), 2) for k in range(4)]


def consensus_boxes(
    boxes: Sequence[tuple[str, list[float]]], min_readers: int = 2, iou_threshold: float = 0.4
) -> list[list[float]]:
    """Merge one finding's boxes from several readers into consensus boxes (see the module docstring).

    Args:
        boxes: ``(reader, [x0, y0, x1, y1])`` in reading order.
        min_readers: readers a cluster needs to be kept.
        iou_threshold: IoU with a cluster's mean box needed to join it.

    Returns:
        The mean box of every kept cluster, in order of the clusters' first box.
    """
    clusters: list[tuple[list[list[float]], set[str]]] = []
    for reader, box in boxes:
        scores = [(_iou(_mean_box(members), box), k) for k, (members, readers) in enumerate(clusters)
                  if reader not in readers]  # fmt: skip
        best = max(scores, default=(0.0, -1))
        if best[1] >= 0 and best[0] >= iou_threshold:
            clusters[best[1]][0].append(box)
            clusters[best[1]][1].add(reader)
        else:
            clusters.append(([box], {reader}))
    return [_mean_box(members) for members, readers in clusters if len(readers) >= min_readers]


class _Image:
    """Everything the readers said about one image."""

    def __init__(self) -> None:
        self.reader_findings: dict[str, set[str]] = {}
        self.boxes: list[tuple[str, str, list[float]]] = []  # (reader, finding, box)

    def add_finding(self, reader: str, finding: str | None) -> None:
        findings = self.reader_findings.setdefault(reader, set())
        if finding and finding != NO_FINDING:
            findings.add(finding)


def _read_annotations(path: Path, images: dict[str, _Image], nodule_mass_as: str) -> None:
    for row in read_records(path, required=("image_id", "class_name")):
        reader = row.get("rad_id") or row.get("rad_ID") or "consensus"
        finding = vindr_finding(row["class_name"], nodule_mass_as)
        image = images.setdefault(row["image_id"], _Image())
        image.add_finding(reader, finding)
        coords = [parse_float(row.get(k, "")) for k in ("x_min", "y_min", "x_max", "y_max")]
        if finding and finding != NO_FINDING and None not in coords:
            image.boxes.append((reader, finding, [round(c, 2) for c in coords]))  # type: ignore[arg-type]


def _read_image_labels(path: Path, images: dict[str, _Image], nodule_mass_as: str) -> None:
    for row in read_records(path, required=("image_id",)):
        reader = row.get("rad_id") or row.get("rad_ID") or "consensus"
        image = images.setdefault(row["image_id"], _Image())
        image.add_finding(reader, None)
        for column, value in row.items():
            if column not in _NOT_LABELS and parse_float(value) == 1.0:
                image.add_finding(reader, vindr_finding(column, nodule_mass_as))


def _to_item(image_id: str, image: _Image, folder: str, class_names: Sequence[str], policy: dict) -> dict:
    readers = image.reader_findings
    counts: dict[str, int] = {}
    for findings in readers.values():
        for finding in findings:
            counts[finding] = counts.get(finding, 0) + 1
    needed = policy["min_readers"] if policy["consensus"] else 1
    order = {name: k for k, name in enumerate(class_names)}
    findings = sorted((f for f, n in counts.items() if n >= needed), key=lambda f: (order.get(f, len(order)), f))
    if policy["consensus"]:
        boxes, box_findings = [], []
        for finding in dict.fromkeys(f for _, f, _ in image.boxes):
            merged = consensus_boxes([(r, b) for r, f, b in image.boxes if f == finding], policy["min_readers"],
                                     policy["iou_threshold"])  # fmt: skip
            boxes += merged
            box_findings += [finding] * len(merged)
    else:
        boxes, box_findings = [b for _, _, b in image.boxes], [f for _, f, _ in image.boxes]
    return make_item(f"{folder}/{image_id}.dicom", findings, class_names, image_id, boxes=boxes,
                     box_findings=box_findings)  # fmt: skip


def _load_split(root: Path, tables: Sequence[Path], nodule_mass_as: str) -> dict[str, _Image]:
    images: dict[str, _Image] = {}
    for table in tables:
        if table.is_file():
            reader = _read_image_labels if table.name.startswith("image_labels") else _read_annotations
            reader(table, images, nodule_mass_as)
    return images


def build_datalist(
    root: str | os.PathLike,
    box_policy: str = "union",
    min_readers: int = 2,
    iou_threshold: float = 0.4,
    validation_fraction: float = 0.1,
    seed: int = 0,
    class_names: Sequence[str] = VINDR_CLASSES,
    nodule_mass_as: str = "Nodule",
    require_images: bool = True,
) -> dict:
    """Build the VinDr-CXR datalist from the PhysioNet or the Kaggle layout.

    Args:
        root: the release folder (see the module docstring).
        box_policy: ``"union"`` or ``"consensus"`` for the multi-reader training labels.
        min_readers: readers needed for a consensus finding / box.
        iou_threshold: IoU for clustering boxes of different readers (consensus).
        validation_fraction: fraction of the official training images for ``"validation"``.
        seed: seed of the split.
        class_names: classes of ``label``.
        nodule_mass_as: the finding that ``Nodule/Mass`` becomes (``"Nodule"`` or ``"Mass"``).
        require_images: leave out images that are not on disk.

    Returns:
        The datalist (paths relative to ``root``).

    Raises:
        FileNotFoundError: neither layout's annotation table exists.
        ValueError: unknown ``box_policy``.
    """
    if box_policy not in ("union", "consensus"):
        raise ValueError(f"box_policy must be 'union' or 'consensus', got {box_policy!r}")
    root = Path(root)
    notes = root / "annotations"
    if (notes / "annotations_train.csv").is_file():
        train = _load_split(root, [notes / "annotations_train.csv", notes / "image_labels_train.csv"], nodule_mass_as)
        test = _load_split(root, [notes / "annotations_test.csv", notes / "image_labels_test.csv"], nodule_mass_as)
        layout = "PhysioNet"
    elif (root / "train.csv").is_file():
        train, test, layout = _load_split(root, [root / "train.csv"], nodule_mass_as), {}, "Kaggle"
    else:
        raise FileNotFoundError(f"VinDr-CXR: neither annotations/annotations_train.csv nor train.csv under {root}")
    policy = {"consensus": box_policy == "consensus", "min_readers": int(min_readers), "iou_threshold": iou_threshold}
    as_is = {"consensus": False, "min_readers": 1, "iou_threshold": iou_threshold}
    train_items = [_to_item(i, image, "train", class_names, policy) for i, image in sorted(train.items())]
    test_items = [_to_item(i, image, "test", class_names, as_is) for i, image in sorted(test.items())]
    if require_images:
        train_items = keep_existing(train_items, root, "VinDr-CXR train")
        test_items = keep_existing(test_items, root, "VinDr-CXR test")
    split = split_by_patient(train_items, (1.0 - validation_fraction, validation_fraction), seed=seed)
    description = (
        f"VinDr-CXR ({layout} layout): official training images split per image "
        f"({1.0 - validation_fraction:g}/{validation_fraction:g}, seed {seed}), official test set as test; "
        f"multi-reader labels: {box_policy}" + (f" (>= {min_readers} readers)" if box_policy == "consensus" else "")
    )
    splits = {"training": split["training"], "validation": split["validation"], "test": test_items}
    return make_datalist("VinDr-CXR", description, class_names, splits, seed=seed, box_policy=box_policy)
