"""Reports of localization results: markdown tables, flat scalar dicts (MLflow) and FROC plots.

``results`` below is the dict of :meth:`~radlas_monai.metrics.localization.LocalizationMetrics.aggregate`; several
methods side by side are a mapping ``{method_name: results}``. Plots use matplotlib's object API with the Agg
canvas (no pyplot, no global backend switch), so they work headless and in threads.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from radlas_monai.metrics.froc import FROC_FP_RATES

__all__ = [
    "DEFAULT_TABLE_KEYS",
    "as_methods",
    "markdown_table",
    "plot_froc",
    "scalar_metrics",
    "write_markdown_table",
]

#: The rows of :func:`markdown_table` by default.
DEFAULT_TABLE_KEYS: tuple[str, ...] = (
    "pointing_game",
    "mean_iou",
    "iou_mask",
    "dice_mask",
    "box_acc_iou_0.1",
    "box_acc_iou_0.5",
    "box_acc_iobb_0.1",
    "box_acc_iobb_0.5",
    "cnr",
    "pixel_auroc",
    "image_auroc",
    "froc_sens_fp_0.125",
    "froc_sens_fp_1",
    "froc_sens_fp_8",
    "froc_mean_sens",
    "jafroc_fom",
    "n_images",
    "n_lesions",
)

_NON_SCALAR = ("per_class", "ci", "froc_curve")


def as_methods(results: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """``{method: results}`` from one method's results (named ``"method"``) or from several."""
    if "per_class" in results or "pointing_game" in results:
        return {"method": results}
    return dict(results)


def scalar_metrics(results: Mapping[str, Any], include_per_class: bool = True, include_ci: bool = False) -> dict:
    """Flatten one method's results to ``{name: float}``, e.g. for ``mlflow.log_metrics``.

    Args:
        results: one method's aggregate dict.
        include_per_class: add ``"{finding}/{metric}"`` entries.
        include_ci: add ``"{metric}_ci_low"`` / ``"{metric}_ci_high"`` entries.

    Returns:
        Flat dict of floats (NaN where a metric is undefined).
    """
    out = {k: float(v) for k, v in results.items() if k not in _NON_SCALAR}
    if include_ci:
        for key, (low, high) in (results.get("ci") or {}).items():
            out[f"{key}_ci_low"], out[f"{key}_ci_high"] = float(low), float(high)
    if include_per_class:
        for name, values in (results.get("per_class") or {}).items():
            flat = scalar_metrics(values, include_per_class=False, include_ci=include_ci)
            out.update({f"{name}/{k}": v for k, v in flat.items()})
    return out


def _cell(results: Mapping[str, Any], key: str, digits: int) -> str:
    value = results.get(key)
    if value is None:
        return "-"
    value = float(value)
    if math.isnan(value):
        return "n/a"
    if key.startswith("n_"):
        return f"{value:g}"
    text = f"{value:.{digits}f}"
    interval = (results.get("ci") or {}).get(key)
    if interval is not None and not any(math.isnan(float(v)) for v in interval):
        text += f" [{float(interval[0]):.{digits}f}, {float(interval[1]):.{digits}f}]"
    return text


def markdown_table(
    results: Mapping[str, Any],
    keys: Sequence[str] = DEFAULT_TABLE_KEYS,
    finding: str | None = None,
    digits: int = 3,
) -> str:
    """A markdown table with one row per metric and one column per method (values with 95 % CIs when present).

    Args:
        results: one method's aggregate dict, or ``{method: aggregate dict}``.
        keys: the metrics (rows).
        finding: report the per-class breakdown of this finding instead of the overall values.
        digits: decimals.

    Returns:
        The table, ending with a newline.
    """
    methods = as_methods(results)
    columns = {}
    for name, values in methods.items():
        columns[name] = values if finding is None else (values.get("per_class") or {}).get(finding, {})
    header = "| metric | " + " | ".join(columns) + " |"
    rule = "|---|" + "---|" * len(columns)
    rows = [f"| {key} | " + " | ".join(_cell(v, key, digits) for v in columns.values()) + " |" for key in keys]
    return "\n".join([header, rule, *rows]) + "\n"


def write_markdown_table(
    results: Mapping[str, Any],
    path: str | os.PathLike,
    keys: Sequence[str] = DEFAULT_TABLE_KEYS,
    per_class: bool = True,
    digits: int = 3,
) -> Path:
    """Write the overall table, then one table per finding, to a markdown file.

    Args:
        results: one method's aggregate dict, or ``{method: aggregate dict}``.
        path: output ``.md`` path (folders are created).
        keys: the metrics (rows).
        per_class: add a section per finding found in any method's ``per_class``.
        digits: decimals.

    Returns:
        The path written.
    """
    methods = as_methods(results)
    parts = ["# Localization metrics\n", markdown_table(methods, keys, digits=digits)]
    if per_class:
        findings = dict.fromkeys(f for values in methods.values() for f in (values.get("per_class") or {}))
        for finding in findings:
            parts += [f"\n## {finding}\n", markdown_table(methods, keys, finding=finding, digits=digits)]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts))
    return out


def plot_froc(
    results: Mapping[str, Any],
    path: str | os.PathLike,
    fp_rates: Sequence[float] = FROC_FP_RATES,
    finding: str | None = None,
    title: str | None = None,
) -> Path:
    """Draw the FROC curves of one or several methods into a PNG (log-scale FPs per image).

    Args:
        results: one method's aggregate dict, or ``{method: aggregate dict}``.
        path: output PNG path (folders are created).
        fp_rates: FP rates marked on each curve and bounding the x axis.
        finding: plot the per-class curve of this finding.
        title: figure title (default: "FROC" plus the finding).

    Returns:
        The PNG path.

    Raises:
        ValueError: when a method has no ``froc_curve``.
    """
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.5, 4.0), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    low, high = min(fp_rates), max(fp_rates)
    for name, values in as_methods(results).items():
        source = values if finding is None else (values.get("per_class") or {}).get(finding, {})
        curve = source.get("froc_curve")
        if curve is None:
            raise ValueError(f"method {name!r} has no 'froc_curve' (finding={finding!r})")
        fps, sens = np.asarray(curve["fps"], dtype=float), np.asarray(curve["sensitivity"], dtype=float)
        grid = np.geomspace(low / 2, high * 2, 200)
        line = axes.plot(grid, np.interp(grid, fps, sens), label=name)[0]
        axes.plot(fp_rates, np.interp(fp_rates, fps, sens), "o", color=line.get_color(), markersize=4)
    axes.set_xscale("log", base=2)
    axes.set_xlim(low / 2, high * 2)
    axes.set_ylim(0.0, 1.0)
    axes.set_xticks(list(fp_rates))
    axes.set_xticklabels([f"{r:g}" for r in fp_rates])
    axes.set_xlabel("false positives per image")
    axes.set_ylabel("lesion sensitivity")
    axes.set_title(title or ("FROC" if finding is None else f"FROC: {finding}"))
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper left")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, format="png")
    return out
