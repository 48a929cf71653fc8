"""Where a bundle lives, whichever folder ``python -m monai.bundle run`` is started from."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["find_bundle_root"]

_REPO_BUNDLES = Path(__file__).resolve().parents[2] / "bundles"


def find_bundle_root(name: str, cwd: str | os.PathLike | None = None) -> str:
    """Locate the folder of bundle ``name`` (the one holding ``configs/``).

    Bundle configs use this as their ``bundle_root`` so the documented command works from the repository root
    (``bundles/<name>``), from inside the bundle folder itself, and from anywhere else when the package is installed
    in editable mode from a checkout. ``--bundle_root /path`` on the command line always wins.

    Args:
        name: the bundle's folder name, e.g. ``"pretrain"``.
        cwd: the folder to search from; the current working directory by default.

    Returns:
        The absolute path of the bundle folder, as a string (configs concatenate it with ``+``).

    Raises:
        FileNotFoundError: when no candidate holds ``configs/metadata.json``; the message lists the candidates.
    """
    here = Path(cwd or os.getcwd()).resolve()
    candidates = [here, here / "bundles" / name, here.parent / name, _REPO_BUNDLES / name]
    for candidate in candidates:
        if candidate.name == name and (candidate / "configs" / "metadata.json").is_file():
            return str(candidate)
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"cannot find bundle {name!r} (looked in {tried}); pass --bundle_root <folder of the bundle>"
    )
