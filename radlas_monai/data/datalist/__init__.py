"""MONAI decathlon-style datalists: build them from a folder tree or a CSV, split them by patient, write and load them.

A datalist is the JSON every bundle reads with :func:`monai.data.load_decathlon_datalist`::

    {"name": ..., "description": ..., "class_names": [...],
     "training": [{"image": "p1/a.dcm", "label": [0, 1], "findings": ["Nodule"], "patient": "p1", ...}, ...],
     "validation": [...], "test": [...]}

Image and mask paths are relative to the JSON's folder (or absolute). The builders here return paths relative
to the dataset ``root``; :func:`write_datalist` rebases them when the JSON is written somewhere else.

Splits are always made by **patient**, never by image: a patient's images all land in one split, so that no
anatomy leaks from training into evaluation. All randomness comes from a local ``numpy.random.default_rng(seed)``
over the *sorted* patient ids, so a split depends on the seed and the set of patients only, not on item order.

Example::

    from radlas_monai.data.datalist import datalist_from_folder, load_datalist, write_datalist

    datalist = datalist_from_folder("/data/cxr", split=(0.9, 0.1, 0.0))
    write_datalist(datalist, "/data/cxr/datalist.json")
    train_items = load_datalist("/data/cxr/datalist.json", "training")
"""

from __future__ import annotations

from radlas_monai.data.datalist._constants import DEFAULT_EXTENSIONS, PATH_KEYS, SPLIT_KEYS
from radlas_monai.data.datalist.csv_source import datalist_from_csv
from radlas_monai.data.datalist.folder import datalist_from_folder, is_dicom_file, make_datalist, pseudonymize
from radlas_monai.data.datalist.io import load_datalist, write_datalist
from radlas_monai.data.datalist.splits import kfold_by_patient, sample_label_fraction, split_by_patient

__all__ = [
    "DEFAULT_EXTENSIONS",
    "SPLIT_KEYS",
    "PATH_KEYS",
    "is_dicom_file",
    "pseudonymize",
    "make_datalist",
    "datalist_from_folder",
    "datalist_from_csv",
    "split_by_patient",
    "kfold_by_patient",
    "sample_label_fraction",
    "write_datalist",
    "load_datalist",
]
