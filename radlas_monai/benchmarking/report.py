"""Reporting: aligned text tables and one JSON file with a key per section.

Tables are returned as text; the command line (``scripts/benchmark.py``) decides where they go (stdout).
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import monai
import torch

__all__ = ["format_table", "write_json", "finish_section", "environment"]

STATISTIC = "median over interleaved repeats after warm-up"


def _format(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "-".join(_format(v) for v in value)
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return "-" if value is None else str(value)


def format_table(title: str, rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """``rows`` as an aligned text table under ``title`` (empty text for no rows).

    Args:
        title: the line above the table.
        rows: dicts of plain values (lists are shown as ``a-b``, None as ``-``).
        columns: the keys to show, in order; default the union of the rows' keys.

    Returns:
        The table, lines joined by newlines.
    """
    if not rows:
        return ""
    if columns is None:
        columns = []
        for row in rows:
            columns += [c for c in row if c not in columns]
    cells = [[_format(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [title, "  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    """Versions and hardware the numbers were measured with."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def write_json(path: str | os.PathLike, section: str, result: dict[str, Any]) -> None:
    """Store ``result`` under ``section`` in the JSON file at ``path``, keeping the file's other sections."""
    path = Path(path)
    report = json.loads(path.read_text()) if path.exists() else {}
    report[section] = result
    report["environment"] = environment()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


def finish_section(
    name: str,
    title: str,
    settings: dict[str, Any],
    rows: list[dict[str, Any]],
    output: str | os.PathLike | None,
    columns: Sequence[str] | None = None,
    echo: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Show a section's table with ``echo`` and write the section under ``name`` in the JSON ``output``.

    Args:
        name: the section's JSON key.
        title: the table's title.
        settings: what the section was run with (device, sizes, repeats, ...).
        rows: the table rows (plain JSON values).
        output: the JSON file, or None.
        columns: the keys shown in the table (the JSON keeps every key); default all.
        echo: receives the table text (the command line passes ``print``); None: not shown.

    Returns:
        The section: ``settings``, the thread count, the statistic used, and ``rows`` under ``results``.
    """
    result = {**settings, "torch_threads": torch.get_num_threads(), "statistic": STATISTIC, "results": rows}
    if echo is not None:
        echo("\n" + format_table(title, rows, columns))
    if output:
        write_json(output, name, result)
    return result
