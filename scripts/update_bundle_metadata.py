"""Rewrite the version fields of every bundle's ``configs/metadata.json`` from the installed environment.

Usage::

    python scripts/update_bundle_metadata.py                 # every bundle under bundles/
    python scripts/update_bundle_metadata.py --bundles finetune_classification
    python scripts/update_bundle_metadata.py --check         # exit 1 and list the drift, change nothing

Fields: ``monai_version``, ``pytorch_version`` (without a local suffix such as ``+cpu``), ``numpy_version`` and
every package already listed in ``required_packages_version`` (distribution names, e.g. ``pytorch-ignite``). Exact
installed versions are written (the Model Zoo convention: the environment the bundle was verified in); the quality
gate (``tests/bundles/test_model_zoo_gate.py``) compares them with the environment at major.minor. Key order and
the 4-space JSON layout are kept. Run it in the environment whose numbers the README reports.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
BUNDLES_DIR = REPO / "bundles"
#: metadata key -> installed distribution
TOP_LEVEL_PACKAGES = {"monai_version": "monai", "pytorch_version": "torch", "numpy_version": "numpy"}


def public_version(version: str) -> str:
    """``"2.13.0+cpu"`` -> ``"2.13.0"`` (PEP 440 local version label dropped)."""
    return version.split("+", 1)[0]


def installed_version(distribution: str) -> str:
    """Installed version of ``distribution`` without its local label.

    Raises:
        metadata.PackageNotFoundError: it is not installed.
    """
    return public_version(metadata.version(distribution))


def updated_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``meta`` whose version fields hold the installed versions (key order kept).

    Raises:
        metadata.PackageNotFoundError: a package listed in ``required_packages_version`` is not installed (the
            message names it).
    """
    updated = dict(meta)
    for key, distribution in TOP_LEVEL_PACKAGES.items():
        updated[key] = installed_version(distribution)
    required = {}
    for distribution in meta.get("required_packages_version", {}):
        try:
            required[distribution] = installed_version(distribution)
        except metadata.PackageNotFoundError as err:
            raise metadata.PackageNotFoundError(
                f"{distribution} (listed in required_packages_version) is not installed"
            ) from err
    updated["required_packages_version"] = required
    return updated


def version_drift(meta: Mapping[str, Any], updated: Mapping[str, Any]) -> list[str]:
    """``"key: old -> new"`` for every version field that :func:`updated_metadata` changes."""
    drift = [f"{k}: {meta.get(k)} -> {updated[k]}" for k in TOP_LEVEL_PACKAGES if meta.get(k) != updated[k]]
    old = meta.get("required_packages_version", {})
    for name, version in updated["required_packages_version"].items():
        if old.get(name) != version:
            drift.append(f"required_packages_version.{name}: {old.get(name)} -> {version}")
    return drift


def metadata_files(bundles_dir: str | os.PathLike = BUNDLES_DIR, bundles: Sequence[str] | None = None) -> list[Path]:
    """``<bundles_dir>/<bundle>/configs/metadata.json`` of the named bundles (default: every bundle that has one)."""
    root = Path(bundles_dir)
    if bundles:
        files = [root / name / "configs" / "metadata.json" for name in bundles]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise FileNotFoundError(f"no metadata.json: {missing}")
        return files
    return sorted(root.glob("*/configs/metadata.json"))


def update_bundle_metadata(
    bundles_dir: str = str(BUNDLES_DIR), bundles: Sequence[str] | str | None = None, check: bool = False
) -> dict[str, list[str]]:
    """Write installed versions into every ``metadata.json`` (or, with ``check``, only report the drift).

    Args:
        bundles_dir: the folder holding the bundles.
        bundles: bundle names (default: all).
        check: change nothing; exit with status 1 when some file differs from the environment.

    Returns:
        ``{metadata file: ["key: old -> new", ...]}`` for the files that differ(ed).
    """
    names = [bundles] if isinstance(bundles, str) else bundles
    changes: dict[str, list[str]] = {}
    for path in metadata_files(bundles_dir, names):
        meta = json.loads(path.read_text())
        updated = updated_metadata(meta)
        drift = version_drift(meta, updated)
        if not drift:
            continue
        changes[str(path)] = drift
        if not check:
            path.write_text(json.dumps(updated, indent=4) + "\n")
            logger.info("%s: %s", path, "; ".join(drift))
    if check and changes:
        for path, drift in changes.items():
            logger.error("%s is out of date: %s", path, "; ".join(drift))
        sys.exit(1)
    return changes


if __name__ == "__main__":
    import fire

    logging.basicConfig(level=logging.INFO, format="%(levelname)s - %(message)s")
    fire.Fire(update_bundle_metadata)
