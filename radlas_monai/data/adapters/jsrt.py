"""JSRT (official release) -> 16-bit PNGs + datalist (Shiraishi et al., AJR 2000;174:71-74).

Real file layout of the release from the Japanese Society of Radiological Technology::

    root/
      JPCLN001.IMG ... JPCLN154.IMG    154 radiographs with one lung nodule
      JPCNN001.IMG ... JPCNN093.IMG     93 without a nodule
      (possibly in sub-folders such as Nodule154images/ and NonNodule93images/ -- they are searched)
      CLNDAT_EN.txt                     nodule list (possibly under Clinical_Information/)
      CNNDAT_EN.TXT                     non-nodule list (file name, age, sex, "non-nodule"): not needed

``.IMG`` files are raw pixels without any header: 2048 x 2048, 16-bit **big-endian** unsigned words holding
12-bit values (0..4095), 0.175 mm pixels, scanned from film. The stored values follow the film's optical
density, so **higher values are darker** (the lungs are high, bone is low; ImageJ opens the files with
"White is zero"). The project convention is MONOCHROME2 (0 = black = air), so :func:`convert_jsrt_raw` writes
``4095 - value``, scaled to the full 16-bit range. The 512-px PNG subset in ``shared/data/jsrt_nodule`` has
dark lungs (mean lung-mask intensity ~100 against ~170 elsewhere, on 0..255), i.e. it follows the same
MONOCHROME2 convention.

``CLNDAT_EN.txt`` has one record per nodule image: file name, degree of subtlety (1 = extremely subtle ..
5 = obvious), nodule size [mm], age, sex, x and y of the nodule centre [pixels of the 2048 grid, origin top-left,
x = column], malignant / benign, anatomic location, diagnosis. The fields are tab-separated, but the location
and diagnosis texts contain spaces and some copies of the file have broken line ends, so records are found by
their file name (``JPCLN\\d{3}.IMG``) and the first seven fields are read as whitespace-separated tokens.

Datalist: every image (converted to ``output_dir/<name>.png``) with ``spacing`` [0.175, 0.175]; nodule images
carry ``findings`` ["Nodule"], ``centers`` [[x, y]], ``radii`` [size_mm / 2 / 0.175] (pixels), the square box
centre +/- radius and ``box_findings``. One image per patient (patient = file stem); split by patient, or into
cross-validation folds (``fold`` / ``num_folds``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from radlas_monai.data.adapters._common import make_item, split_or_fold
from radlas_monai.data.datalist import make_datalist
from radlas_monai.data.errors import EmptyFileError, TruncatedFileError

__all__ = [
    "JSRT_SHAPE",
    "JSRT_SPACING_MM",
    "JSRT_MAX_VALUE",
    "CLASS_NAMES",
    "read_jsrt_raw",
    "convert_jsrt_raw",
    "parse_nodule_list",
    "build_datalist",
]

logger = logging.getLogger(__name__)

JSRT_SHAPE: tuple[int, int] = (2048, 2048)
JSRT_SPACING_MM = 0.175
JSRT_MAX_VALUE = 4095
CLASS_NAMES: tuple[str, ...] = ("Nodule",)
_RECORD = re.compile(r"(JPC[LN]N\d{3})\.IMG", re.IGNORECASE)


def read_jsrt_raw(path: str | os.PathLike) -> np.ndarray:
    """Read a JSRT ``.IMG`` file as stored: ``(2048, 2048)`` uint16, 0..4095, **high = dark**.

    Raises:
        EmptyFileError: zero bytes.
        TruncatedFileError: not exactly 2048 * 2048 * 2 bytes.
    """
    size = os.path.getsize(path)
    expected = JSRT_SHAPE[0] * JSRT_SHAPE[1] * 2
    if size == 0:
        raise EmptyFileError(path, "the JSRT raw file has zero bytes")
    if size != expected:
        raise TruncatedFileError(
            path, f"a JSRT raw file has {expected} bytes (2048 x 2048 big-endian 16 bit), got {size}"
        )
    return np.fromfile(path, dtype=">u2").reshape(JSRT_SHAPE).astype(np.uint16)


def convert_jsrt_raw(img_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Convert a JSRT ``.IMG`` into a MONOCHROME2 16-bit PNG (lungs dark, bone bright).

    The 12-bit stored value ``v`` (values above 4095 are clipped, with a warning) becomes
    ``round((4095 - v) * 65535 / 4095)``: stored 4095 (darkest film, air) -> 0 (black) and stored 0 (brightest
    film, bone) -> 65535 (white), using the full 16-bit range.

    Args:
        img_path: the ``.IMG`` file.
        out_path: the PNG to write (parent folders are created).

    Returns:
        The written path.

    Raises:
        RadiographReadError: (subclasses) the raw file is empty or has the wrong size.
    """
    from radlas_monai.data.writers import write_png

    stored = read_jsrt_raw(img_path)
    if int(stored.max()) > JSRT_MAX_VALUE:
        logger.warning("%s: values above 4095 (max %d) clipped to 12 bits", img_path, int(stored.max()))
    inverted = JSRT_MAX_VALUE - np.minimum(stored, JSRT_MAX_VALUE).astype(np.int64)
    scaled = np.round(inverted * (65535.0 / JSRT_MAX_VALUE)).astype(np.uint16)
    return write_png(scaled, out_path, bit_depth=16)


def _number(token: str) -> float | None:
    try:
        return float(token)
    except ValueError:
        return None  # "?" marks unknown values in the list


def parse_nodule_list(path: str | os.PathLike) -> dict[str, dict]:
    """Parse ``CLNDAT_EN.txt`` into ``{stem: {"subtlety", "size_mm", "age", "sex", "x", "y", "malignancy"}}``.

    Unknown values (``?``) become ``None``.

    Raises:
        ValueError: a record has fewer than seven fields after its file name.
    """
    text = Path(path).read_bytes().decode("latin-1")
    parts = _RECORD.split(text)
    records = {}
    for stem, rest in zip(parts[1::2], parts[2::2]):
        tokens = rest.split()
        if len(tokens) < 7:
            raise ValueError(f"{path}: the record of {stem} has {len(tokens)} fields, expected at least 7: {rest!r}")
        subtlety, size, age, x, y = (_number(tokens[k]) for k in (0, 1, 2, 4, 5))
        records[stem.upper()] = {
            "subtlety": int(subtlety) if subtlety is not None else None,
            "size_mm": size,
            "age": int(age) if age is not None else None,
            "sex": tokens[3].lower(),
            "x": x,
            "y": y,
            "malignancy": tokens[6].lower(),
        }
    return records


def _find(root: Path, pattern: str) -> list[Path]:
    regex = re.compile(pattern, re.IGNORECASE)
    return sorted(p for p in root.rglob("*") if p.is_file() and regex.fullmatch(p.name))


def _nodule_item(image: str, stem: str, record: dict | None) -> dict:
    spacing = [JSRT_SPACING_MM, JSRT_SPACING_MM]
    if not stem.startswith("JPCLN"):
        return make_item(image, [], CLASS_NAMES, stem, spacing=spacing)
    if record is None or record["x"] is None or record["y"] is None:
        logger.warning("JSRT: no nodule position for %s in the nodule list; the item has no centre", stem)
        return make_item(image, list(CLASS_NAMES), CLASS_NAMES, stem, spacing=spacing)
    x, y = record["x"], record["y"]
    extra: dict = {"centers": [[x, y]], "spacing": spacing}
    if record["size_mm"] is not None:
        r = round(record["size_mm"] / 2.0 / JSRT_SPACING_MM, 4)
        extra.update(radii=[r], boxes=[[round(x - r, 4), round(y - r, 4), round(x + r, 4), round(y + r, 4)]],
                     box_findings=["Nodule"])  # fmt: skip
    return make_item(image, list(CLASS_NAMES), CLASS_NAMES, stem, **extra)


def build_datalist(
    root: str | os.PathLike,
    output_dir: str | os.PathLike,
    split: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    fold: int | None = None,
    num_folds: int | None = 5,
    overwrite: bool = False,
) -> dict:
    """Convert the JSRT raw images to PNG and build the nodule datalist.

    Args:
        root: the release folder (``.IMG`` files and ``CLNDAT_EN.txt`` anywhere below it).
        output_dir: where the 16-bit PNGs are written (``<stem>.png``).
        split: fractions of (training, validation, test) when ``fold`` is ``None``.
        seed: seed of the split / folds.
        fold: the held-out cross-validation fold (-> ``"validation"``), or ``None`` for a plain split.
        num_folds: number of folds when ``fold`` is given.
        overwrite: re-convert PNGs that already exist.

    Returns:
        The datalist (paths relative to ``root``; the PNGs may be ``../...``).

    Raises:
        FileNotFoundError: no ``.IMG`` files or no ``CLNDAT_EN.txt`` under ``root``.
    """
    root, output_dir = Path(root), Path(output_dir)
    raws = _find(root, r"JPC[LN]N\d{3}\.IMG")
    lists = _find(root, r"CLNDAT_EN\.TXT")
    if not raws or not lists:
        raise FileNotFoundError(f"JSRT: need JPC*.IMG files and CLNDAT_EN.txt under {root}; found {len(raws)} "
                                f"images and {len(lists)} nodule lists")  # fmt: skip
    records = parse_nodule_list(lists[0])
    items = []
    for raw in raws:
        stem = raw.stem.upper()
        png = output_dir / f"{stem}.png"
        if overwrite or not png.is_file():
            convert_jsrt_raw(raw, png)
        image = Path(os.path.relpath(png.resolve(), root.resolve())).as_posix()
        items.append(_nodule_item(image, stem, records.get(stem)))
    splits = split_or_fold(items, split, seed, fold, num_folds)
    how = f"fold {fold} of {num_folds} held out" if fold is not None else f"split {tuple(split)}"
    description = f"JSRT (official raw release) converted to 16-bit MONOCHROME2 PNG; {how} by patient, seed {seed}"
    return make_datalist("JSRT", description, CLASS_NAMES, splits, seed=seed)
