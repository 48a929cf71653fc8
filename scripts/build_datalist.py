"""Build a MONAI datalist JSON from a folder, a CSV, or a public dataset in its real layout.

Usage::

    python scripts/build_datalist.py folder /data/cxr --output /data/cxr/datalist.json
    python scripts/build_datalist.py csv labels.csv --findings_column=findings --patient_column=patient
    python scripts/build_datalist.py chexpert /data/CheXpert-v1.0-small --uncertain=ones --output chexpert.json
    python scripts/build_datalist.py siim_acr /data/siim /data/siim_masks --output siim.json
    python scripts/build_datalist.py jsrt_nodule ../shared/data/jsrt_nodule --fold=0 --output jsrt_fold0.json

Sub-commands: ``folder``, ``csv`` and one per dataset adapter (``chestxray14``, ``chexpert``, ``mimic_cxr``,
``vindr_cxr``, ``rsna_pneumonia``, ``siim_acr``, ``jsrt``, ``jsrt_nodule``); ``--help`` after a sub-command lists
its options (those of the matching function in :mod:`radlas_monai.data`). Every command writes the JSON
atomically, with paths relative to the JSON's folder, and prints its path.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable
from pathlib import Path

from radlas_monai.data.adapters import ADAPTERS
from radlas_monai.data.datalist import datalist_from_csv, datalist_from_folder, write_datalist


def folder(root: str, output: str | None = None, **kwargs) -> str:
    """Datalist of every radiograph under ``root`` (see ``datalist_from_folder``); default ``root/datalist.json``."""
    datalist = datalist_from_folder(root, **kwargs)
    return str(write_datalist(datalist, output or Path(root) / "datalist.json", root=root))


def csv(csv_path: str, output: str | None = None, image_root: str | None = None, **kwargs) -> str:
    """Datalist from a CSV (see ``datalist_from_csv``); default output ``<csv folder>/<stem>.datalist.json``."""
    datalist = datalist_from_csv(csv_path, image_root=image_root, **kwargs)
    root = image_root if image_root is not None else Path(csv_path).parent
    default = Path(csv_path).with_name(f"{Path(csv_path).stem}.datalist.json")
    return str(write_datalist(datalist, output or default, root=root))


def adapter_command(name: str, builder: Callable[..., dict]) -> Callable[..., str]:
    """A sub-command running ``builder(root, ...)`` and writing its datalist (default ``root/datalist_<name>.json``)."""

    def command(*args, output: str | None = None, **kwargs) -> str:
        bound = inspect.signature(builder).bind(*args, **kwargs)
        root = os.fspath(bound.arguments["root"])
        datalist = builder(*bound.args, **bound.kwargs)
        return str(write_datalist(datalist, output or Path(root) / f"datalist_{name}.json", root=root))

    signature = inspect.signature(builder)
    output = inspect.Parameter("output", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="str | None")
    command.__signature__ = signature.replace(
        parameters=[*signature.parameters.values(), output], return_annotation=str
    )
    command.__name__ = name
    command.__doc__ = builder.__doc__
    return command


def commands() -> dict[str, Callable[..., str]]:
    """All sub-commands by name."""
    return {"folder": folder, "csv": csv, **{name: adapter_command(name, fn) for name, fn in ADAPTERS.items()}}


def main() -> None:
    import fire

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    fire.Fire(commands())


if __name__ == "__main__":
    main()
