"""Run-length encoding of the SIIM-ACR Pneumothorax Segmentation challenge (``train-rle.csv``).

The format is the one of the challenge's ``mask_functions.py`` (``rle2mask`` / ``mask2rle``):

* pixels are enumerated **column-major** (down the first column, then the next: flat index = ``x * H + y``);
* the string is space-separated pairs ``start length``, where ``start`` is **relative**: the number of
  background pixels between the end of the previous run (or the first pixel) and the start of this run;
* ``"-1"`` means an empty mask (no pneumothorax).

``rle2mask(rle, width, height)`` of ``mask_functions.py`` returns ``flat.reshape(width, height)``, which users
transpose to image orientation; :func:`rle_decode` returns the image-oriented ``(H, W)`` mask directly, so
``rle_decode(s, H, W) == (rle2mask(s, W, H).T > 0)``. :func:`rle_encode` inverts it (and, unlike ``mask2rle``,
also writes a run that ends on the last pixel).

Example::

    mask = rle_decode("1 2 3 1", height=3, width=3)   # pixels (y=1,x=0), (y=2,x=0), (y=0,x=2)
    assert rle_encode(mask) == "1 2 3 1"
"""

from __future__ import annotations

import numpy as np

__all__ = ["EMPTY_RLE", "rle_decode", "rle_encode"]

#: The encoding of an empty mask.
EMPTY_RLE = "-1"


def rle_decode(rle: str, height: int = 1024, width: int = 1024) -> np.ndarray:
    """Decode a SIIM relative, column-major run-length string into a mask.

    Args:
        rle: ``"start length start length ..."`` or ``"-1"`` / empty for an empty mask.
        height: image rows.
        width: image columns.

    Returns:
        ``uint8`` array of shape ``(height, width)``, 1 inside the runs, 0 elsewhere.

    Raises:
        ValueError: an odd number of values, negative values, or runs past the end of the image.
    """
    text = (rle or "").strip()
    flat = np.zeros(int(height) * int(width), dtype=np.uint8)
    if text in ("", EMPTY_RLE):
        return flat.reshape(int(width), int(height)).T.copy()
    try:
        values = np.asarray([int(v) for v in text.split()], dtype=np.int64)
    except ValueError as err:
        raise ValueError(f"run-length string holds a non-integer: {err}") from None
    if values.size % 2:
        raise ValueError(f"run-length string needs start/length pairs, got {values.size} values")
    if (values < 0).any():
        raise ValueError("run-length string holds negative values")
    position = 0
    for start, length in zip(values[0::2], values[1::2]):
        position += int(start)
        end = position + int(length)
        if end > flat.size:
            raise ValueError(f"run ends at pixel {end}, past the {height} x {width} image ({flat.size} pixels)")
        flat[position:end] = 1
        position = end
    return flat.reshape(int(width), int(height)).T.copy()


def rle_encode(mask: np.ndarray) -> str:
    """Encode a 2D mask (nonzero = foreground) as a SIIM relative, column-major run-length string.

    Args:
        mask: ``(H, W)`` array.

    Returns:
        The run-length string, or ``"-1"`` for an empty mask.

    Raises:
        ValueError: ``mask`` is not 2D.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"rle_encode expects an H x W mask, got shape {tuple(mask.shape)}")
    flat = (mask.T.reshape(-1) != 0).astype(np.int8)
    edges = np.diff(np.concatenate([[0], flat, [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if starts.size == 0:
        return EMPTY_RLE
    gaps = starts - np.concatenate([[0], ends[:-1]])
    return " ".join(f"{int(g)} {int(n)}" for g, n in zip(gaps, ends - starts))
