"""Load a radiograph file as the project's image tensor: ``LoadRadiograph`` / ``LoadRadiographd``.

Output: a :class:`monai.data.MetaTensor`, float32, shape ``(1, H, W)`` (channel first), values in
``[0, 1]``, MONOCHROME2 (0 = black = air, 1 = white = bone), rows = image y and columns = image x in
every format (unlike MONAI's ``PILReader``, nothing is transposed). DICOM, PNG, JPEG and NIfTI files
are identified by content, not suffix; see :mod:`radlas_monai.data.readers` for each format's rules
(windowing, MONOCHROME1, rescale, spacing, 16-bit PNG, NIfTI orientation).

Meta data is built from an allow-list only (:func:`radlas_monai.data.readers.meta.build_meta`,
:data:`~radlas_monai.data.readers.meta.ALLOWED_META_KEYS`); no header is ever copied, so patient
identifiers (DICOM group 0010 and the like) never reach it:

===========================  ===============================================================
``filename_or_obj``          the path, as given
``image_id``                 first 16 hex digits of the SHA-256 of the file's bytes (name outputs by it)
``source_format``            ``"dicom"``, ``"png"``, ``"jpeg"`` or ``"nifti"``
``original_shape``           ``(H, W)``
``spatial_shape``            ``np.array([H, W])`` (MONAI's key)
``spacing``                  ``(row_mm, col_mm)``, only when the file states a valid one
``modality``                 DICOM Modality, only for DICOM files that state one
``photometric_interpretation``  of the source (``"MONOCHROME1"``, ``"RGB"``, ...)
``bits_stored``              significant bits of the stored values
``window``                   ``(low, high)`` mapped to ``(0, 1)``, in stored units after DICOM rescale
``nonfinite_pixels``         NaN / inf pixels replaced by the minimum finite value
``affine``                   ``diag(row_mm, col_mm, 1)`` (1 mm when unknown), float64 ``3 x 3``
``original_affine``          the same
``original_channel_dim``     ``0`` (already channel first: ``EnsureChannelFirst`` is a no-op)
===========================  ===============================================================

Problems that do not prevent reading (NaN pixels, missing spacing, a non-radiograph modality, a
window that saturates most pixels, stored values above BitsStored) are logged as a warning once per
loader instance and kind; messages name the image by its ``image_id``, never by its file name (which may
hold patient identifiers) and never by header values.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform

from radlas_monai.data.readers.base import DEFAULT_MAX_PIXELS, ReadOptions
from radlas_monai.data.readers.dispatch import read_radiograph
from radlas_monai.data.readers.meta import build_meta
from radlas_monai.data.readers.window import DEFAULT_PERCENTILES

__all__ = ["LoadRadiograph", "LoadRadiographd"]

logger = logging.getLogger(__name__)


class LoadRadiograph(Transform):
    """Load one radiograph file as a float32 ``(1, H, W)`` MetaTensor in ``[0, 1]``.

    Args:
        max_pixels: decompression-bomb guard: images whose header declares more pixels are
            rejected before decoding (Pillow's own ``Image.MAX_IMAGE_PIXELS`` still applies to
            PNG / JPEG above it; it is never changed here).
        percentiles: ``(low, high)`` percentiles of the robust window used when a file has no
            window of its own (DICOM without VOI LUT / window, float NIfTI, ``window_16bit="percentile"``).
        window_16bit: 16-bit PNG / uint16 NIfTI windowing: ``"bits"`` (``0 .. 2**b - 1`` with ``b``
            from PNG sBIT or the smallest of 8/10/12/14/16 bits holding the maximum), ``"full"``
            (``/65535``) or ``"percentile"``.
        dicom_backend: ``"auto"`` (pydicom, then ITK/GDCM), ``"pydicom"`` or ``"itk"``.
        reject_constant: raise :class:`~radlas_monai.data.errors.InvalidPixelDataError` for an
            image whose pixels are all equal (set False to load e.g. empty masks).
        strict_modality: reject DICOM files whose modality is not a radiograph (CR, DX, DR, MG,
            RG, IO, PX) instead of warning.
        mask: the files are label masks (lung or lesion masks), not radiographs: a constant
            (e.g. empty) mask is accepted whatever ``reject_constant`` says, and the intensity-range
            warnings meant for radiographs are not given.

    Raises:
        ValueError: invalid arguments (at construction).

    Example::

        image = LoadRadiograph()("chest.dcm")     # MetaTensor (1, H, W), float32, [0, 1]
        image.meta["image_id"], image.meta.get("spacing")
    """

    def __init__(
        self,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        percentiles: Sequence[float] = DEFAULT_PERCENTILES,
        window_16bit: str = "bits",
        dicom_backend: str = "auto",
        reject_constant: bool = True,
        strict_modality: bool = False,
        mask: bool = False,
    ) -> None:
        self.mask = bool(mask)
        self.options = ReadOptions(
            max_pixels=int(max_pixels),
            percentiles=(float(percentiles[0]), float(percentiles[1])),
            window_16bit=window_16bit,
            dicom_backend=dicom_backend,
            reject_constant=bool(reject_constant) and not self.mask,
            strict_modality=bool(strict_modality),
        )
        self._warned: set[str] = set()

    def _warn(self, kind: str, message: str) -> None:
        """Log the first warning of each ``kind`` for this instance; later ones at debug level."""
        if self.mask and kind == "saturated":  # masks are mostly 0 by nature
            logger.debug(message)
            return
        if kind in self._warned:
            logger.debug(message)
            return
        self._warned.add(kind)
        logger.warning("%s (further '%s' warnings of this loader are logged at debug level)", message, kind)

    def __call__(self, filename: str | os.PathLike) -> MetaTensor:
        """Read ``filename``.

        Args:
            filename: path of a DICOM, PNG, JPEG or NIfTI file.

        Returns:
            float32 MetaTensor ``(1, H, W)`` in ``[0, 1]`` with the allow-listed meta data.

        Raises:
            TypeError: ``filename`` is not a path.
            RadiographReadError: a typed subclass naming the file and the reason, for any file
                that cannot be read as one 2D radiograph.
        """
        if not isinstance(filename, (str, os.PathLike)):
            raise TypeError(f"LoadRadiograph expects a file path, got {type(filename).__name__}")
        path = os.fspath(filename)
        pending: list[tuple[str, str]] = []
        decoded = read_radiograph(path, self.options, lambda kind, message: pending.append((kind, message)))
        for kind, message in pending:  # name the image by its id: file names may hold patient identifiers
            self._warn(kind, message.replace(path, f"image {decoded.image_id}"))
        meta, affine = build_meta(path, decoded)
        pixels = torch.from_numpy(np.ascontiguousarray(decoded.pixels, dtype=np.float32))[None]
        return MetaTensor(pixels, affine=affine, meta=meta)


class LoadRadiographd(MapTransform):
    """Dictionary version of :class:`LoadRadiograph`: replaces the path under each key by the image.

    Args:
        keys: keys whose values are file paths (e.g. ``"image"``).
        max_pixels: see :class:`LoadRadiograph`.
        percentiles: see :class:`LoadRadiograph`.
        window_16bit: see :class:`LoadRadiograph`.
        dicom_backend: see :class:`LoadRadiograph`.
        reject_constant: see :class:`LoadRadiograph`.
        strict_modality: see :class:`LoadRadiograph`.
        mask: see :class:`LoadRadiograph`.
        allow_missing_keys: skip keys absent from the input instead of raising ``KeyError``.
    """

    def __init__(
        self,
        keys: KeysCollection,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        percentiles: Sequence[float] = DEFAULT_PERCENTILES,
        window_16bit: str = "bits",
        dicom_backend: str = "auto",
        reject_constant: bool = True,
        strict_modality: bool = False,
        mask: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadRadiograph(
            max_pixels=max_pixels,
            percentiles=percentiles,
            window_16bit=window_16bit,
            dicom_backend=dicom_backend,
            reject_constant=reject_constant,
            strict_modality=strict_modality,
            mask=mask,
        )

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        """Load every key of ``data`` in ``self.keys``; other keys are copied unchanged.

        Raises:
            KeyError: a key is missing and ``allow_missing_keys`` is False.
            RadiographReadError: see :class:`LoadRadiograph`.
        """
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.loader(d[key])
        return d
