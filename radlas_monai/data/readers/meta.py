"""The allow-listed meta data of a loaded radiograph (no header is ever copied into it).

Kept free of MONAI imports so that readers and scripts can build and check it cheaply;
:class:`~radlas_monai.data.loader.LoadRadiograph` attaches it to its MetaTensor (which adds
MONAI's own ``"space"`` key). The keys are documented in :mod:`radlas_monai.data.loader`.
"""

from __future__ import annotations

import numpy as np
import torch

from radlas_monai.data.readers.base import DecodedImage

__all__ = ["ALLOWED_META_KEYS", "build_meta"]

#: Every key :func:`build_meta` may write. Anything else in a loaded image's meta came from a later transform.
ALLOWED_META_KEYS = frozenset(
    {
        "filename_or_obj",
        "image_id",
        "source_format",
        "original_shape",
        "spatial_shape",
        "spacing",
        "modality",
        "photometric_interpretation",
        "bits_stored",
        "window",
        "nonfinite_pixels",
        "original_affine",
        "original_channel_dim",
    }
)


def build_meta(path: str, decoded: DecodedImage) -> tuple[dict, torch.Tensor]:
    """The allow-listed meta dictionary and the affine of a decoded image.

    Args:
        path: the file, stored as ``filename_or_obj``.
        decoded: the reader's result.

    Returns:
        ``(meta, affine)``; ``affine`` is ``diag(row_mm, col_mm, 1)`` (1 mm when the spacing is
        unknown), float64 ``3 x 3``; ``spacing`` and ``modality`` are present only when known.
    """
    height, width = decoded.pixels.shape
    row_mm, col_mm = decoded.spacing if decoded.spacing is not None else (1.0, 1.0)
    affine = torch.diag(torch.tensor([row_mm, col_mm, 1.0], dtype=torch.float64))
    meta: dict = {
        "filename_or_obj": path,
        "image_id": decoded.image_id,
        "source_format": decoded.source_format,
        "original_shape": (int(height), int(width)),
        "spatial_shape": np.array([height, width], dtype=np.int64),
        "photometric_interpretation": decoded.photometric_interpretation,
        "bits_stored": int(decoded.bits_stored or 0),
        "window": (float(decoded.window[0]), float(decoded.window[1])),
        "nonfinite_pixels": int(decoded.nonfinite_pixels),
        "original_affine": affine.clone(),
        "original_channel_dim": 0,
    }
    if decoded.spacing is not None:
        meta["spacing"] = (float(row_mm), float(col_mm))
    if decoded.modality:
        meta["modality"] = decoded.modality
    return meta, affine
