"""Rewrite the version fields of every bundle's ``configs/metadata.json`` from the project's lock file.

Usage::

    python scripts/update_bundle_metadata.py                 # every bundle under bundles/
    python scripts/update_bundle_metadata.py --bundles finetune_classification
    python scripts/update_bundle_metadata.py --check         # exit 1 and list the drift, change nothing

Fields: ``monai_version``, ``pytorch_version``, ``numpy_version`` and every package already listed in
``required_packages_version`` (distribution names, e.g. ``pytorch-ignite``). The versions come from
``requirements/constraints.txt``, the exact stack the test suite passed with and that every install command of the
project uses (the Model Zoo convention: the environment the bundle was verified in), never from whatever happens to
be installed; ``radlas_monai`` itself records the package's own version. The quality gate
(``tests/bundles/test_model_zoo_gate.py``) compares metadata with that file. ``scripts/update_pins.sh`` moves the pins
forward and calls this script. Key order and the 4-space JSON layout are kept.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
BUNDLES_DIR = REPO / "bundles"
CONSTRAINTS = REPO / "requirements" / "constraints.txt"
PROJECT = "radlas_monai"
#: metadata key -> distribution
TOP_LEVEL_PACKAGES = {"monai_version": "monai", "pytorch_version": "torch", "numpy_version": "numpy"}


def public_version(version: str) -> str:
    """``"2.13.0+cpu"`` -> ``"2.13.0"`` (PEP 440 local version label dropped)."""
    return version.split("+", 1)[0]


def canonical_name(distribution: str) -> str:
    """PEP 503 normalised name: ``"PyTorch_Ignite"`` -> ``"pytorch-ignite"``."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def project_version() -> str:
    """The version of the package in this checkout (``radlas_monai.__version__``, read without importing it)."""
    text = (REPO / PROJECT / "__init__.py").read_text()
    match = re.search(r"^__version__\s*=\s*[\"']([^\"']+)[\"']", text, re.MULTILINE)
    if match is None:
        raise ValueError(f"no __version__ in {REPO / PROJECT / '__init__.py'}")
    return match.group(1)


def pinned_versions(constraints: str | os.PathLike = CONSTRAINTS) -> dict[str, str]:
    """``{canonical distribution name: exact version}`` of every ``name==version`` line of a constraints file.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a requirement line is not an exact ``name==version`` pin (the message names the line).
    """
    pins = {}
    for number, raw in enumerate(Path(constraints).read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^=<>!~;\s]+)", line)
        if match is None:
            raise ValueError(f"{constraints}:{number}: expected an exact pin name==version, got {raw!r}")
        pins[canonical_name(match.group(1))] = public_version(match.group(2))
    pins[canonical_name(PROJECT)] = project_version()
    return pins


def pinned_version(distribution: str, pins: Mapping[str, str]) -> str:
    """The pinned version of ``distribution``.

    Raises:
        KeyError: it is not pinned (the message names it and the file).
    """
    try:
        return pins[canonical_name(distribution)]
    except KeyError:
        raise KeyError(f"{distribution} is not pinned in {CONSTRAINTS.relative_to(REPO)}") from None


def updated_metadata(meta: Mapping[str, Any], pins: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``meta`` whose version fields hold the pinned versions (key order kept).

    Raises:
        KeyError: a package listed in ``required_packages_version`` is not pinned (the message names it).
    """
    updated = dict(meta)
    for key, distribution in TOP_LEVEL_PACKAGES.items():
        updated[key] = pinned_version(distribution, pins)
    updated["required_packages_version"] = {
        distribution: pinned_version(distribution, pins) for distribution in meta.get("required_packages_version", {})
    }
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
    bundles_dir: str = str(BUNDLES_DIR),
    bundles: Sequence[str] | str | None = None,
    check: bool = False,
    constraints: str = str(CONSTRAINTS),
) -> dict[str, list[str]]:
    """Write the pinned versions into every ``metadata.json`` (or, with ``check``, only report the drift).

    Args:
        bundles_dir: the folder holding the bundles.
        bundles: bundle names (default: all).
        check: change nothing; exit with status 1 when some file differs from the lock file.
        constraints: the lock file (default ``requirements/constraints.txt``).

    Returns:
        ``{metadata file: ["key: old -> new", ...]}`` for the files that differ(ed).
    """
    names = [bundles] if isinstance(bundles, str) else bundles
    pins = pinned_versions(constraints)
    changes: dict[str, list[str]] = {}
    for path in metadata_files(bundles_dir, names):
        meta = json.loads(path.read_text())
        updated = updated_metadata(meta, pins)
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
