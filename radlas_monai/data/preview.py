"""Contact sheets of a datalist: look at the data before training on it.

:func:`make_contact_sheet` draws a grid of a split's images (read with
:class:`~radlas_monai.data.loader.LoadRadiograph`, so DICOM / PNG / JPEG / NIfTI all work) with
their annotations on top: the lung mask outline in cyan, lesion mask outlines in red, boxes in
yellow labelled with their finding names (or circles from ``centers`` / ``radii`` when an item has
no boxes), and the image id with its findings as a caption. It works for any datalist that
follows the project's contract; keys an item lacks are simply not drawn.

Example::

    from radlas_monai.data.preview import make_contact_sheet

    make_contact_sheet("data/datalist.json", "preview.png", split="validation", max_images=8)
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy.ndimage import binary_erosion

from radlas_monai.data.datalist import load_datalist
from radlas_monai.data.errors import RadiographReadError
from radlas_monai.data.loader import LoadRadiograph

__all__ = ["LUNG_COLOUR", "LESION_COLOUR", "BOX_COLOUR", "make_contact_sheet"]

logger = logging.getLogger(__name__)

LUNG_COLOUR = (0, 200, 255)
LESION_COLOUR = (255, 48, 48)
BOX_COLOUR = (255, 210, 0)
_CAPTION_BACKGROUND = (0, 0, 0)


def _font(tile_size: int) -> ImageFont.ImageFont:
    size = max(9, tile_size // 20)
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap font size
        return ImageFont.load_default()


def _image_id(path: str) -> str:
    name = Path(path).name
    for suffix in (".nii.gz", ".nii", ".dcm", ".dicom", ".png", ".jpg", ".jpeg"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _outline(mask: np.ndarray) -> np.ndarray:
    return mask & ~binary_erosion(mask, border_value=0)


def _read_mask(loader: LoadRadiograph, path: str) -> np.ndarray:
    """Nonzero pixels of a mask file: PNG / JPEG through Pillow (raw values), other formats through the loader."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("L") if image.mode not in ("L", "I", "I;16", "1") else image) > 0
    except (OSError, ValueError):  # not a raster Pillow reads: DICOM, NIfTI
        return loader(path)[0].numpy() > 0


def _mask_on_tile(loader: LoadRadiograph, path: str, size: tuple[int, int]) -> np.ndarray | None:
    """Read a mask (any format), resized to the tile's image ``size`` (w, h); None when unreadable."""
    try:
        mask = _read_mask(loader, path)
    except (RadiographReadError, OSError) as err:
        logger.warning("preview: skipping mask %s: %s", path, err)
        return None
    resized = Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.NEAREST)
    return np.asarray(resized) > 0


def _draw_label(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, font, colour) -> None:
    left, top, right, bottom = draw.textbbox(xy, text, font=font)
    draw.rectangle([left - 1, top - 1, right + 1, bottom + 1], fill=_CAPTION_BACKGROUND)
    draw.text(xy, text, fill=colour, font=font)


def _caption(item: dict) -> str:
    findings = item.get("findings")
    if findings is None and "box_findings" in item:
        findings = sorted(set(item["box_findings"]))
    text = _image_id(str(item["image"]))
    if findings is not None:
        text += ": " + (", ".join(findings) if findings else "normal")
    return text


def _render_tile(item: dict, tile_size: int, image_loader: LoadRadiograph, mask_loader: LoadRadiograph, font):
    tile = Image.new("RGB", (tile_size, tile_size), (0, 0, 0))
    draw = ImageDraw.Draw(tile)
    try:
        image = image_loader(item["image"])[0].numpy()
    except (RadiographReadError, OSError) as err:
        logger.warning("preview: cannot read %s: %s", item["image"], err)
        text = f"{_image_id(str(item['image']))}: unreadable ({type(err).__name__})"
        _draw_label(draw, (2, 2), text, font, LESION_COLOUR)
        return tile
    height, width = image.shape
    scale = tile_size / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    offset = ((tile_size - size[0]) // 2, (tile_size - size[1]) // 2)
    grey = Image.fromarray(np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)).resize(size, Image.BILINEAR)
    tile.paste(grey.convert("RGB"), offset)
    pixels = np.array(tile)
    for key, colour in (("lung_mask", LUNG_COLOUR), ("mask", LESION_COLOUR)):
        if isinstance(item.get(key), str):
            mask = _mask_on_tile(mask_loader, item[key], size)
            if mask is not None:
                view = pixels[offset[1] : offset[1] + size[1], offset[0] : offset[0] + size[0]]
                view[_outline(mask)] = colour
    tile = Image.fromarray(pixels)
    draw = ImageDraw.Draw(tile)

    def to_tile(x: float, y: float) -> tuple[float, float]:
        return offset[0] + x * scale, offset[1] + y * scale

    boxes = item.get("boxes") or []
    names = item.get("box_findings") or [""] * len(boxes)
    for box, name in zip(boxes, names):
        (x0, y0), (x1, y1) = to_tile(box[0], box[1]), to_tile(box[2], box[3])
        draw.rectangle([x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)], outline=BOX_COLOUR)
        if name:
            height = draw.textbbox((0, 0), name, font=font)[3]
            _draw_label(draw, (x0 + 1, max(y0 - height - 2, 0)), name, font, BOX_COLOUR)
    if not boxes:
        for centre, radius in zip(item.get("centers") or [], item.get("radii") or []):
            (cx, cy), r = to_tile(centre[0], centre[1]), float(radius) * scale
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=BOX_COLOUR)
    _draw_label(draw, (2, 2), _caption(item), font, (255, 255, 255))
    return tile


def make_contact_sheet(
    datalist_path: str | os.PathLike,
    output_png: str | os.PathLike,
    split: str = "training",
    max_images: int = 16,
    columns: int = 4,
    tile_size: int = 256,
) -> Path:
    """Draw the first ``max_images`` items of a split as an annotated grid and save it as PNG.

    Args:
        datalist_path: a datalist JSON following the project's contract (paths relative to it or absolute).
        output_png: destination PNG; parent folders are created.
        split: the datalist key to draw (``"training"``, ``"validation"``, ``"test"``).
        max_images: at most this many items, in datalist order.
        columns: tiles per row.
        tile_size: side of each square tile in pixels (images are letterboxed into it).

    Returns:
        The written path. The sheet is ``min(columns, n) * tile_size`` wide and
        ``ceil(n / columns) * tile_size`` high for ``n`` drawn items, RGB.

    Raises:
        ValueError: non-positive sizes, or a split that is absent or empty.
        FileNotFoundError: no datalist at ``datalist_path``.
    """
    if int(max_images) < 1 or int(columns) < 1 or int(tile_size) < 16:
        raise ValueError(
            f"need max_images >= 1, columns >= 1, tile_size >= 16; got {max_images}, {columns}, {tile_size}"
        )
    items = load_datalist(datalist_path, split)[: int(max_images)]
    if not items:
        raise ValueError(f"split {split!r} of {datalist_path} is empty: nothing to draw")
    count, columns, tile_size = len(items), int(columns), int(tile_size)
    rows = math.ceil(count / columns)
    sheet = Image.new("RGB", (min(columns, count) * tile_size, rows * tile_size), (0, 0, 0))
    image_loader, mask_loader = LoadRadiograph(), LoadRadiograph(mask=True)
    font = _font(tile_size)
    for index, item in enumerate(items):
        tile = _render_tile(item, tile_size, image_loader, mask_loader, font)
        sheet.paste(tile, ((index % columns) * tile_size, (index // columns) * tile_size))
    output = Path(output_png)
    output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(output, format="PNG")
    logger.info("contact sheet of %d %s images written to %s", count, split, output)
    return output
