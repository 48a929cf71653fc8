"""Dataset adapters: each turns a public chest X-ray dataset, in its real file layout, into a datalist.

Every adapter module documents its dataset's layout and label policy and exposes
``build_datalist(root, ...) -> dict`` (MONAI decathlon-style, see :mod:`radlas_monai.data.datalist`), with
findings harmonized to the project vocabulary and splits made by patient. :data:`ADAPTERS` maps a short
dataset name to that function::

    from radlas_monai.data.adapters import ADAPTERS
    from radlas_monai.data.datalist import write_datalist

    root = "/data/CheXpert-v1.0-small"
    write_datalist(ADAPTERS["chexpert"](root, uncertain="ones"), "chexpert.json", root=root)
"""

from __future__ import annotations

from collections.abc import Callable

from radlas_monai.data.adapters import (
    chexpert,
    jsrt,
    jsrt_nodule,
    mimic_cxr,
    nih_chestxray14,
    rsna_pneumonia,
    siim_acr,
    vindr_cxr,
)

__all__ = ["ADAPTERS"]

#: Dataset name -> ``build_datalist`` of its adapter.
ADAPTERS: dict[str, Callable[..., dict]] = {
    "chestxray14": nih_chestxray14.build_datalist,
    "chexpert": chexpert.build_datalist,
    "mimic_cxr": mimic_cxr.build_datalist,
    "vindr_cxr": vindr_cxr.build_datalist,
    "rsna_pneumonia": rsna_pneumonia.build_datalist,
    "siim_acr": siim_acr.build_datalist,
    "jsrt": jsrt.build_datalist,
    "jsrt_nodule": jsrt_nodule.build_datalist,
}
