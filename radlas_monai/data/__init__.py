"""Radiographs in, clean tensors out: readers, the loader, datalists, dataset adapters and synthetic radiographs.

Names are imported on first use, so ``import radlas_monai.data`` stays cheap (MONAI, pydicom, ITK and nibabel load
only when a reader needs them):

- :mod:`~radlas_monai.data.loader`: :class:`LoadRadiograph`, :class:`LoadRadiographd` (file -> ``(1, H, W)`` in [0, 1])
- :mod:`~radlas_monai.data.errors`: :class:`RadiographReadError` and its typed subclasses
- :mod:`~radlas_monai.data.writers`: :func:`write_png`, :func:`write_jpeg`, :func:`write_nifti`, :func:`write_dicom`
- :mod:`~radlas_monai.data.datalist`: datalists from folders and CSVs, splits and label fractions by patient
- :mod:`~radlas_monai.data.screening`: :func:`screen_datalist`, :class:`SkipReport`, :class:`SkipBadFiles`
- :mod:`~radlas_monai.data.adapters`: NIH ChestX-ray14, CheXpert, MIMIC-CXR-JPG, VinDr-CXR, RSNA, SIIM-ACR, JSRT
- :mod:`~radlas_monai.data.synthetic`: embedded synthetic chest radiographs with labelled findings
- :mod:`~radlas_monai.data.preview`: :func:`make_contact_sheet`
- :mod:`~radlas_monai.data.vocabulary`: the project's pathology names
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LoadRadiograph": "loader",
    "LoadRadiographd": "loader",
    "RadiographReadError": "errors",
    "EmptyFileError": "errors",
    "TruncatedFileError": "errors",
    "UnsupportedFormatError": "errors",
    "MissingDecoderError": "errors",
    "ImageTooLargeError": "errors",
    "NotA2DImageError": "errors",
    "InvalidPixelDataError": "errors",
    "MissingFileError": "errors",
    "write_png": "writers",
    "write_jpeg": "writers",
    "write_nifti": "writers",
    "write_dicom": "writers",
    "datalist_from_folder": "datalist",
    "datalist_from_csv": "datalist",
    "split_by_patient": "datalist",
    "kfold_by_patient": "datalist",
    "sample_label_fraction": "datalist",
    "write_datalist": "datalist",
    "load_datalist": "datalist",
    "screen_datalist": "screening",
    "SkipReport": "screening",
    "SkipBadFiles": "screening",
    "make_contact_sheet": "preview",
    "PATHOLOGIES": "vocabulary",
    "NO_FINDING": "vocabulary",
    "harmonize_finding": "vocabulary",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
